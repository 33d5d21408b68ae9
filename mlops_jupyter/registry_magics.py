"""IPython adapter for the registry: %register, %promote, %approve, %reject, %models,
%monitor."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from .tracker import UsageError


def _parse(prog: str, line: str, build: Any) -> argparse.Namespace:
    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:
            raise UsageError(f"{prog}: {message}")

    parser = Parser(prog=prog, add_help=False)
    build(parser)
    return parser.parse_args(shlex.split(line))


def _registry() -> Any:
    from .api import sign_with

    return sign_with()


def register_magic(line: str) -> Any:
    """%register RUN MODEL [--risk-tier low|medium|high]: register a run's model."""
    args = _parse(
        "%register",
        line,
        lambda p: (
            p.add_argument("run"),
            p.add_argument("model"),
            p.add_argument("--risk-tier", choices=["low", "medium", "high"]),
        ),
    )
    version = _registry().register(args.run, args.model, args.risk_tier)
    print(f"registered {version.ref} (run {version.run_id[:8]})")
    return version


def promote_magic(line: str) -> Any:
    """%promote MODEL:VERSION --to STAGE [-m MESSAGE] [--answers BATCH ...]
    %promote RUN --model MODEL --to STAGE [-m MESSAGE]   (registers the run first)

    ``--answers``: monitored batches that drifted, which the new version answers."""
    from .widgets.promotion import PromotionPanel

    args = _parse(
        "%promote",
        line,
        lambda p: (
            p.add_argument("ref"),
            p.add_argument("--model"),
            p.add_argument("--to", required=True, choices=["staging", "production", "archived"]),
            p.add_argument("-m", "--message", default=""),
            p.add_argument("--answers", nargs="+", default=[], metavar="BATCH"),
        ),
    )
    registry = _registry()
    if args.model:
        version = registry.register(args.ref, args.model)
        name, number = version.model, version.version
        print(f"registered {version.ref} (run {version.run_id[:8]})")
    else:
        name, _, text = args.ref.rpartition(":")
        if not name or not text.isdigit():
            raise UsageError("%promote: give MODEL:VERSION, or RUN --model MODEL")
        number = int(text)
    from .api import default_tracker

    default_tracker().wait(timeout=120)  # a SHAP explanation still computing is not missing
    request = registry.request_promotion(name, number, args.to, args.message, args.answers)
    return PromotionPanel(registry, request)


def approve_magic(line: str) -> Any:
    """%approve REQUEST [-m COMMENT]: sign off a promotion request."""
    from .widgets.promotion import PromotionPanel

    args = _parse(
        "%approve",
        line,
        lambda p: (
            p.add_argument("request", type=int),
            p.add_argument("-m", "--message", default=""),
        ),
    )
    registry = _registry()
    return PromotionPanel(registry, registry.approve(args.request, args.message))


def reject_magic(line: str) -> Any:
    """%reject REQUEST -m COMMENT: reject a promotion request (closes it)."""
    from .widgets.promotion import PromotionPanel

    args = _parse(
        "%reject",
        line,
        lambda p: (
            p.add_argument("request", type=int),
            p.add_argument("-m", "--message", required=True),
        ),
    )
    registry = _registry()
    return PromotionPanel(registry, registry.reject(args.request, args.message))


def models_magic(line: str) -> Any:
    """%models: the registered models with their production and staging versions."""
    import pandas as pd

    rows = _registry().models()
    return pd.DataFrame(rows, columns=["model", "risk_tier", "versions", "production", "staging"])


def _variable(name: str | None, option: str) -> Any:
    """The notebook variable ``name`` (None when the option was not given)."""
    if name is None:
        return None
    from IPython import get_ipython

    shell = get_ipython()
    namespace = shell.user_ns if shell is not None else {}
    if name not in namespace:
        raise UsageError(f"%monitor: {option} {name}: no such variable in the notebook")
    return namespace[name]


def monitor_magic(line: str) -> Any:
    """%monitor MODEL[:VERSION] --data VAR [--labels VAR] [--predictions VAR] [--stage STAGE]
    [--batch-id ID] [--keep-sample N]: record a production batch and show its drift per
    feature; without --data, --labels (and --predictions) for the recorded batch --batch-id."""
    from .monitoring import record_batch
    from .monitoring.batch import STAGES

    args = _parse(
        "%monitor",
        line,
        lambda p: (
            p.add_argument("model"),
            p.add_argument("--data"),
            p.add_argument("--labels"),
            p.add_argument("--predictions"),
            p.add_argument("--stage", default="production", choices=list(STAGES)),
            p.add_argument("--batch-id"),
            p.add_argument("--keep-sample", type=int, default=0, metavar="N"),
        ),
    )
    if args.data is None and (args.labels is None or args.batch_id is None):
        raise UsageError(
            "%monitor: give --data VAR (a batch), or --labels VAR --predictions VAR --batch-id "
            "ID (labels for a recorded batch)"
        )
    from .api import default_tracker, sign_with

    return record_batch(
        sign_with(label=default_tracker().user),
        args.model,
        _variable(args.data, "--data"),
        predictions=_variable(args.predictions, "--predictions"),
        y_true=_variable(args.labels, "--labels"),
        stage=args.stage,
        batch_id=args.batch_id,
        keep_sample=args.keep_sample,
    )


def compare_magic(line: str) -> Any:
    """%compare RUN RUN [RUN ...]  or  %compare -e EXPERIMENT --last N: runs side by side."""
    from .api import default_tracker
    from .compare import compare_runs
    from .widgets.compare import CompareView

    args = _parse(
        "%compare",
        line,
        lambda p: (
            p.add_argument("runs", nargs="*"),
            p.add_argument("-e", "--experiment"),
            p.add_argument("--last", type=int),
        ),
    )
    store = default_tracker().store
    ids = list(args.runs)
    if args.last:
        if ids:
            raise UsageError("%compare: give run ids or --last N, not both")
        table = store.runs(experiment=args.experiment, limit=args.last)
        ids = list(table["run_id"])[::-1]
        if len(ids) < 2:
            names = list(store.experiments()["experiment"])
            where = f"experiment {args.experiment!r}" if args.experiment else "this store"
            raise UsageError(
                f"%compare: {where} has {len(ids)} run{'s' * (len(ids) != 1)}, compare needs 2 "
                f"to 10 (experiments in {store.directory}: {', '.join(names) or 'none'}; a "
                "notebook run by a tool that does not name it records to its own experiment: "
                "set MLOPS_JUPYTER_EXPERIMENT or use %%track -e)"
            )
    return CompareView(compare_runs(store, ids), store=store)  # redraws when SHAP lands


MAGICS = {
    "register": register_magic,
    "promote": promote_magic,
    "approve": approve_magic,
    "reject": reject_magic,
    "models": models_magic,
    "monitor": monitor_magic,
    "compare": compare_magic,
}
