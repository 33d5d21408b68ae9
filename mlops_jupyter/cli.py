"""``mlops-jupyter`` command line: a thin translation of the Python API.

Every command takes ``--store PATH``; errors go to stderr with exit code 1, usage errors (a
misspelled option) with 2; ``promote`` exits 3 when blocked, ``audit verify`` 4 on a failure,
``monitor`` 5 when the batch drifted (so a schedule can alert).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ._version import __version__
from .errors import MLOpsError


def _store(args: argparse.Namespace) -> Any:
    from .store import Store

    return Store.open(args.store, create=False)


def cmd_runs(args: argparse.Namespace) -> int:
    selection = dict(
        experiment=args.experiment, status=args.status, limit=args.limit, order_by=args.sort
    )
    with _store(args) as store:
        if args.json:
            print(json.dumps(store.run_summaries(**selection), indent=2, ensure_ascii=False))
            return 0
        frame = store.runs(**selection)
    if frame.empty:
        print("no runs" + (f" in experiment {args.experiment!r}" if args.experiment else ""))
        return 0
    shown = frame.copy()
    shown["run_id"] = shown["run_id"].str[:8]
    shown["name"] = shown["name"].fillna("-")
    shown["started_at"] = shown["started_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    shown["duration_s"] = shown["duration_s"].round(3)
    if args.experiment:
        shown = shown.drop(columns=["experiment"])
    columns, hidden = _table_columns(shown, args.columns, _terminal_width())
    print(shown[columns].to_string(index=False, na_rep="-", max_colwidth=40))
    if hidden:
        print(
            f"({hidden} more column{'s' if hidden > 1 else ''} not shown: choose with "
            "--columns KEY,KEY..., or --json for everything)"
        )
    return 0


_ALWAYS = ("run_id", "name", "status")


def _terminal_width() -> int:
    """The terminal's width (or ``COLUMNS``); unlimited when writing to a pipe or file."""
    import os
    import shutil

    if not os.environ.get("COLUMNS") and not sys.stdout.isatty():
        return 1 << 30
    return shutil.get_terminal_size((120, 24)).columns


def _table_columns(frame: Any, chosen: str | None, width: int) -> tuple[list[str], int]:
    """The columns to print and how many were left out: the ones ``--columns`` names (a
    ``metrics.``/``params.`` prefix may be left off), else as many as fit ``width``."""
    available = list(frame.columns)
    if chosen:
        names = []
        for name in (n.strip() for n in chosen.split(",") if n.strip()):
            match = next(
                (c for c in (name, f"metrics.{name}", f"params.{name}") if c in available), None
            )
            if match is None:
                raise ValueError(
                    f"no column {name!r} in this listing; columns: {', '.join(available)}"
                )
            names.append(match)
        return [c for c in _ALWAYS if c in available and c not in names] + names, 0
    base = [c for c in available if not c.startswith(("params.", "metrics."))]
    ordered = base + [c for c in available if c.startswith("metrics.")]
    ordered += [c for c in available if c.startswith("params.")]
    picked: list[str] = []
    used = 0
    for column in ordered:
        longest = max((len(str(v)) for v in frame[column]), default=0)
        needed = min(40, max(len(column), longest)) + 2
        if column in _ALWAYS or used + needed <= width:
            picked.append(column)
            used += needed
    return picked, len(ordered) - len(picked)


def cmd_show(args: argparse.Namespace) -> int:
    with _store(args) as store:
        run = store.get_run(args.run)
    if args.json:
        print(json.dumps(run.to_dict(), indent=2, ensure_ascii=False, default=str))
        return 0
    lines = [
        f"run        {run.run_id}",
        f"experiment {run.experiment}" + (f"   name {run.name}" if run.name else ""),
        f"status     {run.status}",
        f"started    {run.started_at:%Y-%m-%d %H:%M:%S} UTC"
        + (f"   duration {run.duration_s:.3f} s" if run.duration_s is not None else ""),
    ]
    if run.notebook_path:
        lines.append(f"notebook   {run.notebook_path}")
    if run.git_commit:
        lines.append(f"git        {run.git_commit}" + (" (dirty)" if run.git_dirty else ""))
    if run.params:
        lines.append("params")
        lines += [f"  {k} = {json.dumps(v, ensure_ascii=False)}" for k, v in run.params.items()]
    if run.metrics:
        lines.append("metrics")
        lines += [f"  {k} = {v:.6g}" for k, v in run.metrics.items()]
    if run.datasets:
        lines.append("data")
        lines += [f"  {d.role:<6} {d.variable or '-':<12} {d.hash}" for d in run.datasets]
    if run.explanation:
        lines.append(f"explanation {run.explanation.status}")
    if run.error:
        lines.append("error")
        lines += ["  " + line for line in run.error.rstrip().splitlines()]
    for problem in run.capture_errors:
        lines.append(f"capture error: {problem}")
    print("\n".join(lines))
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    from .cards.model import build_card, card_format

    kind = card_format(args.output, args.format, "--format html|json|md")  # before the work
    with _store(args) as store:
        card = build_card(args.ref, store=store)
    path = card.save(args.output, kind)
    c = card.completeness
    state = "complete" if c["complete"] else f"missing: {', '.join(c['gaps'])}"
    print(f"wrote {path} ({c['filled']}/{c['required']} parts; {state})")
    return 0


def cmd_techdoc(args: argparse.Namespace) -> int:
    from .cards.model import build_card
    from .cards.techdoc import build_techdoc, check_versioned, techdoc_format

    kind = techdoc_format(args.output, args.format, "--format html|md")  # before the work
    check_versioned(args.ref)
    with _store(args) as store:
        doc = build_techdoc(build_card(args.ref, store=store))
    path = doc.save(args.output, kind)
    print(f"wrote {path} (Annex IV points 1-9; {len(doc.missing)} items to be written by a person)")
    return 0


def cmd_card_sections(args: argparse.Namespace) -> int:
    import yaml

    from .cards.model import HUMAN_SECTIONS, resolve_subject
    from .config import current_user
    from .errors import IdentityError
    from .identity import sshsig

    try:
        with open(args.source, encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle)
    except OSError as exc:
        raise ValueError(f"cannot read {args.source}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{args.source} is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict) or not loaded:
        raise ValueError(f"{args.source} must map section names to text")
    unknown = sorted(set(loaded) - set(HUMAN_SECTIONS))
    if unknown:
        raise ValueError(
            f"{args.source}: unknown section(s) {', '.join(map(str, unknown))}; "
            f"known: {', '.join(HUMAN_SECTIONS)}"
        )
    with _store(args) as store:
        registry = _registry(store, args)
        author, sign = args.author or current_user(), None
        try:
            signer, author = registry.signer, registry.principal
            sign = lambda data: sshsig.sign(signer, data)  # noqa: E731
        except IdentityError:  # no key: the author is recorded as a label
            pass
        subject, _, _ = resolve_subject(store, args.ref)
        for key, text in loaded.items():
            if not isinstance(text, str | int | float):
                raise ValueError(f"{args.source}: section {key!r} must be text")
            revision = store.set_card_section(subject, key, str(text).strip(), author, sign)
            print(f"{key}: revision {revision} by {author}" + (" (signed)" if sign else ""))
        registry.anchor()
    return 0


def _registry(store: Any, args: argparse.Namespace) -> Any:
    from .identity.keys import load_signer
    from .registry.registry import Registry

    key = getattr(args, "key", None)
    return Registry(store, load_signer(key) if key else None, label=getattr(args, "user", None))


def _print_request(request: Any) -> None:
    print(
        f"request #{request.id}: {request.model}:{request.version} {request.from_stage} -> "
        f"{request.to_stage}: {request.status} "
        f"({len(request.approvals)}/{request.required_signoffs} sign-offs)"
    )
    print(f"  requested by {request.requester} ({request.requester_key or 'unsigned'})")
    for batch in request.answers:
        drifting = ", ".join(batch["drifting"]) or "no feature"
        print(
            f"  answers batch {batch['batch_id'][:24]} of {request.model}:{batch['version']}: "
            f"{batch['decision']} ({drifting} drifting)"
        )
    for gate in request.gates:
        print(f"  {'PASS' if gate.passed else 'FAIL'} {gate.gate}: {gate.message}")
    for s in request.signoffs:
        print(
            f"  {s.decision} by {s.principal} ({s.fingerprint or 'unsigned'}): "
            f"{'signature verified' if s.verified else 'not signed'}"
            + (f"; {s.note}" if s.note else "")
            + (f" — {s.comment}" if s.comment else "")
        )
    for who, _, why in request.not_counted:
        print(f"  not counted: {who}: {why}")
    if request.reason:
        print(f"  blocked: {request.reason}")
    print(f"audit head {request.audit_head}")


def _model_version(text: str) -> tuple[str, int]:
    name, _, version = text.rpartition(":")
    if not name or not version.isdigit():
        raise ValueError(f"expected MODEL:VERSION (e.g. churn:3), got {text!r}")
    return name, int(version)


def cmd_register(args: argparse.Namespace) -> int:
    with _store(args) as store:
        version = _registry(store, args).register(args.run, args.model, args.risk_tier)
    print(f"registered {version.ref} (run {version.run_id[:8]})")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    model, version = _model_version(args.ref)
    with _store(args) as store:
        request = _registry(store, args).request_promotion(
            model, version, args.to, args.message, answers=args.answers
        )
    _print_request(request)
    return 0 if request.status != "blocked" else 3


def cmd_approve(args: argparse.Namespace) -> int:
    with _store(args) as store:
        _print_request(_registry(store, args).approve(args.request, args.message))
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    with _store(args) as store:
        _print_request(_registry(store, args).reject(args.request, args.message))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    with _store(args) as store:
        rows = _registry(store, args).models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no registered models")
    for row in rows:
        print(
            f"{row['model']:<24} tier {row['risk_tier']:<6} versions {row['versions']:<3} "
            f"production {row['production'] or '-'}  staging {row['staging'] or '-'}"
        )
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    import datetime as dt

    with _store(args) as store:
        entries = _registry(store, args).history(args.model)
    if args.json:
        print(json.dumps(entries, indent=2, default=str))
        return 0
    for e in entries:
        when = dt.datetime.fromtimestamp(e["ts"], dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        extra = {k: v for k, v in e.items() if k not in ("seq", "ts", "actor", "action", "subject")}
        print(
            f"{e['seq']:>5} {when} {e['actor']:<12} {e['action']:<10} {e['subject']:<16} "
            f"{json.dumps(extra, ensure_ascii=False)}"
        )
    return 0


DRIFT_EXIT = 5


def _read_table(path: str) -> Any:
    """A parquet or CSV file as a DataFrame (by its suffix; ``.gz`` and the like allowed)."""
    from pathlib import Path

    import pandas as pd

    suffixes = [s.lower() for s in Path(path).suffixes]
    if not Path(path).is_file():
        raise ValueError(f"cannot read {path}: no such file")
    try:
        if ".parquet" in suffixes or ".pq" in suffixes:
            return pd.read_parquet(path)
        if ".csv" in suffixes:
            return pd.read_csv(path)
    except Exception as exc:  # pandas and pyarrow raise many kinds for a bad file
        raise ValueError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    raise ValueError(f"cannot read {path}: expected a .parquet or .csv file")


def _take_column(frame: Any, column: str | None, option: str) -> Any:
    if column is None:
        return None
    if column not in frame.columns:
        raise ValueError(
            f"{option} {column}: no such column in the file (columns: "
            f"{', '.join(map(str, frame.columns))})"
        )
    return frame.pop(column)


def cmd_monitor(args: argparse.Namespace) -> int:
    from .monitoring import record_batch
    from .monitoring.report import to_text

    frame = _read_table(args.file)
    labels = _take_column(frame, args.labels, "--labels")
    predictions = _take_column(frame, args.predictions, "--predictions")
    if len(frame.columns) == 0:  # only labels and predictions: for a batch recorded before
        if labels is None or args.batch_id is None:
            raise ValueError(
                f"{args.file} has no feature columns left: give --labels and --batch-id to "
                "add labels to a recorded batch"
            )
        frame = None
    with _store(args) as store:
        report = record_batch(
            _registry(store, args),
            args.model,
            frame,
            predictions=predictions,
            y_true=labels,
            stage=args.stage,
            batch_id=args.batch_id,
            keep_sample=args.keep_sample,
        )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(to_text(report))
    return DRIFT_EXIT if report.decision == "drift" else 0


def cmd_audit(args: argparse.Namespace) -> int:
    from .registry.audit import verify, verify_bundle

    if args.bundle:
        if args.expect_head:
            raise ValueError("--expect-head checks a store; a bundle carries its own anchor")
        report = verify_bundle(args.bundle)
    else:
        with _store(args) as store:
            report = verify(store, args.expect_head, _registry(store, args))
    print(report)
    return 0 if report.ok else 4


def cmd_audit_export(args: argparse.Namespace) -> int:
    from .registry.audit import export

    with _store(args) as store:
        path = export(store, args.output, _registry(store, args))
    print(f"wrote {path}: verify it with `mlops-jupyter audit verify --bundle {path}`")
    return 0


def _signers_path(args: argparse.Namespace) -> Any:
    """The allowed-signers file for this project, without creating a store."""
    from pathlib import Path

    from .config import settings
    from .registry.policy import governance_dir
    from .registry.registry import ALLOWED_SIGNERS_FILENAME
    from .store.discovery import find_store_dir, is_url

    if args.allowed_signers:
        return Path(args.allowed_signers)
    configured = settings().allowed_signers
    if configured:
        return Path(configured).expanduser()
    explicit = None if is_url(args.store) else args.store  # a team store: this project's files
    return governance_dir(find_store_dir(explicit=explicit)) / ALLOWED_SIGNERS_FILENAME


def cmd_keys_init(args: argparse.Namespace) -> int:
    from .config import current_user, settings
    from .registry.registry import enroll

    principal = args.principal or current_user()
    print(enroll(_signers_path(args), principal, args.key or settings().signing_key))
    return 0


def cmd_keys_show(args: argparse.Namespace) -> int:
    from .config import settings
    from .errors import IdentityError
    from .identity.keys import load_signer
    from .registry.registry import load_allowed_signers

    path = _signers_path(args)
    print(f"allowed signers {path}" + ("" if path.is_file() else " (missing)"))
    try:
        signer = load_signer(args.key or settings().signing_key)
    except IdentityError as exc:
        print(f"key: none ({exc})")
        return 1
    print(f"key {signer.source} ({signer.fingerprint})")
    signers = load_allowed_signers(path)
    names = signers.principals_for(signer.key_blob) if signers is not None else []
    if not names:
        print("principal: none: this key is not in the allowed signers (mlops-jupyter keys init)")
        return 1
    print(f"principal {names[0]}")
    return 0


def _team_and_local(args: argparse.Namespace, team: str | None) -> tuple[Any, Any]:
    """The team store (``team``, else the one configured or named by the project) and this
    project's local store (``--store`` when it is a directory, else the discovered one)."""
    from .store import Store
    from .store.discovery import find_store, find_store_dir, is_url

    url = team or find_store(explicit=args.store if is_url(args.store) else None)
    if not is_url(url):
        raise ValueError(
            "no team store: give its URL (--to / --from postgresql://HOST/DB), set "
            "MLOPS_JUPYTER_STORE, or name it as store under [tool.mlops-jupyter] in pyproject.toml"
        )
    local_dir = find_store_dir(explicit=None if is_url(args.store) else args.store, use_env=False)
    return Store.open(str(url)), local_dir


def _sync_progress(verb: str) -> Any:
    def show(report: Any, total: int) -> None:
        done = report.copied + report.skipped
        print(f"{verb} {done}/{total} runs, {report.blob_bytes / 1e6:.1f} MB of blobs",
              file=sys.stderr, flush=True)  # fmt: skip

    return show


def cmd_push(args: argparse.Namespace) -> int:
    from .registry.registry import Registry
    from .registry.transfer import push_statements
    from .store import Store
    from .store.sync import copy_runs

    team, local_dir = _team_and_local(args, args.to)
    with team, Store.open(local_dir, create=False) as local:
        report = copy_runs(
            local, team, experiment=args.experiment, progress=_sync_progress("pushed")
        )
        registry = Registry(team)
        statements = push_statements(
            local, team, registry.signers, lambda ids: copy_runs(local, team, run_ids=ids)
        )
        if statements.imported or statements.appended:
            registry.anchor()
        print(f"pushed to {team.engine.where()}: {report}; {statements}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from .registry.registry import Registry
    from .registry.transfer import StatementConflictError, pull_statements
    from .store import Store
    from .store.sync import copy_runs

    team, local_dir = _team_and_local(args, getattr(args, "from"))
    with team, Store.open(local_dir) as local:
        ids: list[str] | None = list(args.run) or None
        if ids is None and args.experiment is None:  # the runs behind registered versions
            ids = [r[0] for r in team._read("SELECT DISTINCT run_id FROM model_versions")]
        if ids:
            ids = [team.resolve_run_id(i) for i in ids]
        report = copy_runs(
            team, local, experiment=args.experiment, run_ids=ids,
            progress=_sync_progress("pulled"),
        )  # fmt: skip
        where = f"pulled from {team.engine.where()} into {local.directory}: {report}"
        if args.no_registry:
            print(where)
            return 0
        registry = _with_governance_of(Registry(team), Registry(local))
        try:
            statements = pull_statements(
                team, local, registry.signers, lambda ids: copy_runs(team, local, run_ids=ids)
            )
        except StatementConflictError as exc:
            print(f"{where}; registry not pulled: {exc}")
            return 1
        if statements.appended:
            registry.anchor()
        print(f"{where}; {statements}")
    return 0


def _with_governance_of(source: Any, target: Any) -> Any:
    """``target``, given the allowed signers and policy of ``source`` where it has none (a pull
    into a folder outside the project), so the copy verifies and gates as the original."""
    import shutil

    for name in (source.allowed_signers_path, source.directory / "policy.toml"):
        mine = target.directory / name.name
        if name.is_file() and not mine.exists() and name.resolve() != mine.resolve():
            target.directory.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(name, mine)
            print(f"copied {name} to {mine}", file=sys.stderr)
    return target


def cmd_team_init(args: argparse.Namespace) -> int:
    from .store.discovery import find_store, is_url
    from .store.postgres_schema import roles_sql

    if args.sql:
        print(roles_sql())
        return 0
    url = args.url or find_store(explicit=args.store)
    if not is_url(url):
        raise ValueError(
            "team init sets up a PostgreSQL team store: give its URL (mlops-jupyter team init "
            "postgresql://OWNER@HOST/DB) or set MLOPS_JUPYTER_STORE to it"
        )
    from .store.postgres import describe, team_init

    for line in team_init(str(url), args.writer, args.reader):
        print(f"{describe(str(url))}: {line}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    with _store(args) as store:
        registry = _registry(store, args)
        if args.allowed_signers:
            from pathlib import Path

            registry.allowed_signers_path = Path(args.allowed_signers)
        revoked = registry.revoke(args.who, args.message)
    print(f"revoked {', '.join(revoked)}: later statements signed with it fail verification")
    return 0


def build_parser() -> argparse.ArgumentParser:
    store_help = (
        "store directory (.mlops) or its store.db; default: MLOPS_JUPYTER_STORE, else "
        "discovered from the working directory"
    )
    # --store is accepted before and after the command; SUPPRESS keeps a value given before
    # the command from being reset by the subcommand's default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", metavar="PATH", default=argparse.SUPPRESS, help=store_help)
    parser = argparse.ArgumentParser(
        prog="mlops-jupyter", description="Inspect the runs tracked by mlops-jupyter."
    )
    parser.add_argument("--store", metavar="PATH", default=None, help=store_help)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    runs = commands.add_parser("runs", parents=[common], help="list runs, newest first")
    runs.add_argument("-e", "--experiment", help="only runs of this experiment")
    runs.add_argument("--status", choices=["running", "finished", "failed", "interrupted"])
    runs.add_argument("-n", "--limit", type=int, help="at most this many runs")
    runs.add_argument(
        "--sort",
        help="sort key: started_at, duration_s, name, status, metrics.KEY or params.KEY; "
        "prefix - for descending (--sort -metrics.accuracy); a key no run has is an error",
    )
    runs.add_argument(
        "--columns",
        metavar="KEY,KEY...",
        help="the columns to show (metrics.KEY, params.KEY, or KEY alone); by default as "
        "many as fit the terminal",
    )
    runs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    runs.set_defaults(func=cmd_runs)

    show = commands.add_parser("show", parents=[common], help="everything recorded about a run")
    show.add_argument("run", metavar="RUN", help="run id or a unique prefix (4+ characters)")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(func=cmd_show)

    card = commands.add_parser(
        "card", parents=[common], help="write the model card of a run or model:version"
    )
    card.add_argument("ref", metavar="REF", help="run id (or unique prefix) or MODEL:VERSION")
    card.add_argument("-o", "--output", required=True, metavar="PATH", help="file to write")
    card.add_argument(
        "--format", choices=["html", "json", "md"], help="default: from the file's suffix"
    )
    card.set_defaults(func=cmd_card)

    techdoc = commands.add_parser(
        "techdoc",
        parents=[common],
        help="write the EU AI Act technical documentation (Annex IV) of a model:version",
    )
    techdoc.add_argument("ref", metavar="MODEL:VERSION", help="a registered model version")
    techdoc.add_argument("-o", "--output", required=True, metavar="PATH", help="file to write")
    techdoc.add_argument("--format", choices=["html", "md"], help="default: from the file's suffix")
    techdoc.set_defaults(func=cmd_techdoc)

    sections = commands.add_parser(
        "card-sections",
        parents=[common],
        help="store human-written card sections from a YAML file",
    )
    sections.add_argument("ref", metavar="REF", help="run id (or unique prefix) or MODEL:VERSION")
    sections.add_argument(
        "--from", dest="source", required=True, metavar="FILE.yaml", help="section: text mapping"
    )
    sections.add_argument(
        "--author", help="author label when you have no signing key (default: the configured user)"
    )
    sections.set_defaults(func=cmd_card_sections)

    user_help = "a label recorded beside your principal (identity comes from your key)"
    key_help = "sign with this private key (default: MLOPS_JUPYTER_KEY, ~/.ssh/id_ed25519, agent)"
    register = commands.add_parser(
        "register", parents=[common], help="register a run's model as a new version"
    )
    register.add_argument("run", metavar="RUN", help="run id or unique prefix")
    register.add_argument("model", metavar="MODEL", help="model name")
    register.add_argument("--risk-tier", choices=["low", "medium", "high"], help="new models")
    register.add_argument("--user", help=user_help)
    register.add_argument("--key", metavar="PATH", help=key_help)
    register.set_defaults(func=cmd_register)

    promote = commands.add_parser(
        "promote", parents=[common], help="request a promotion (runs the policy gates)"
    )
    promote.add_argument("ref", metavar="MODEL:VERSION")
    promote.add_argument("--to", required=True, choices=["staging", "production", "archived"])
    promote.add_argument("-m", "--message", default="", help="why")
    promote.add_argument(
        "--answers",
        action="append",
        default=[],
        metavar="BATCH",
        help="a monitored batch (its id) that drifted, which this version answers (repeatable)",
    )
    promote.add_argument("--user", help=user_help)
    promote.add_argument("--key", metavar="PATH", help=key_help)
    promote.set_defaults(func=cmd_promote)

    approve = commands.add_parser("approve", parents=[common], help="sign off a request")
    approve.add_argument("request", metavar="REQUEST", type=int, help="request number")
    approve.add_argument("-m", "--message", default="", help="comment")
    approve.add_argument("--user", help=user_help)
    approve.add_argument("--key", metavar="PATH", help=key_help)
    approve.set_defaults(func=cmd_approve)

    reject = commands.add_parser("reject", parents=[common], help="reject a request")
    reject.add_argument("request", metavar="REQUEST", type=int, help="request number")
    reject.add_argument("-m", "--message", required=True, help="why (required)")
    reject.add_argument("--user", help=user_help)
    reject.add_argument("--key", metavar="PATH", help=key_help)
    reject.set_defaults(func=cmd_reject)

    models = commands.add_parser("models", parents=[common], help="registered models")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(func=cmd_models)

    history = commands.add_parser("history", parents=[common], help="a model's audit trail")
    history.add_argument("model", metavar="MODEL")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(func=cmd_history)

    monitor = commands.add_parser(
        "monitor",
        parents=[common],
        help="record a production batch against its model version: drift per feature "
        "(exit 5 on drift)",
    )
    monitor.add_argument("model", metavar="MODEL[:VERSION]")
    monitor.add_argument("file", metavar="FILE", help="the batch, a .parquet or .csv file")
    monitor.add_argument("--labels", metavar="COLUMN", help="the column holding the true labels")
    monitor.add_argument(
        "--predictions", metavar="COLUMN", help="the column holding the model's predictions"
    )
    monitor.add_argument(
        "--stage",
        default="production",
        choices=["none", "staging", "production", "archived"],
        help="the stage whose version served the batch (default: production)",
    )
    monitor.add_argument(
        "--batch-id",
        metavar="ID",
        help="name the batch (default: its hash); a FILE of only --labels and --predictions "
        "adds them to the recorded batch ID",
    )
    monitor.add_argument(
        "--keep-sample",
        type=int,
        default=0,
        metavar="N",
        help="keep N of the batch's rows (at random) beside its profile (default: none)",
    )
    monitor.add_argument("--json", action="store_true", help="print JSON")
    monitor.add_argument("--user", help=user_help)
    monitor.add_argument("--key", metavar="PATH", help=key_help)
    monitor.set_defaults(func=cmd_monitor)

    audit = commands.add_parser("audit", parents=[common], help="audit log checks")
    audit_commands = audit.add_subparsers(
        dest="audit_command", required=True, metavar="verify|export"
    )
    verify = audit_commands.add_parser(
        "verify", parents=[common], help="check the chain, signatures, registry rows and anchor"
    )
    verify.add_argument(
        "--expect-head", metavar="HASH", help="fail unless the log still contains this head"
    )
    verify.add_argument("--bundle", metavar="DIR", help="verify an exported bundle instead")
    verify.set_defaults(func=cmd_audit)
    export = audit_commands.add_parser(
        "export", parents=[common], help="write a bundle others can verify without the store"
    )
    export.add_argument("-o", "--output", required=True, metavar="DIR", help="bundle directory")
    export.set_defaults(func=cmd_audit_export)

    push = commands.add_parser(
        "push",
        parents=[common],
        help="copy this project's finished runs and signed registry history to the team store",
    )
    push.add_argument("--to", metavar="URL", help="the team store (default: the configured one)")
    push.add_argument("-e", "--experiment", help="only this experiment's runs")
    push.set_defaults(func=cmd_push)
    pull = commands.add_parser(
        "pull",
        parents=[common],
        help="copy the team's registry, its versions' runs and cards for offline review",
    )
    pull.add_argument("--from", metavar="URL", help="the team store (default: the configured one)")
    pull.add_argument("-e", "--experiment", help="this experiment's runs")
    pull.add_argument(
        "--no-registry",
        action="store_true",
        help="only runs: leave the models, versions and audit log (pull them into a store "
        "without registry history of its own)",
    )
    pull.add_argument(
        "--run", action="append", default=[], metavar="RUN", help="this run (repeatable)"
    )
    pull.set_defaults(func=cmd_pull)

    team = commands.add_parser("team", parents=[common], help="a team store on PostgreSQL")
    team_commands = team.add_subparsers(dest="team_command", required=True, metavar="init")
    team_init = team_commands.add_parser(
        "init",
        parents=[common],
        help="create the schema, the mlops_writer and mlops_reader roles and their grants",
    )
    team_init.add_argument(
        "url", nargs="?", metavar="URL", help="postgresql://OWNER@HOST/DB (default: --store)"
    )
    team_init.add_argument(
        "--writer", action="append", default=[], metavar="LOGIN",
        help="make this login role a writer (repeatable)",
    )  # fmt: skip
    team_init.add_argument(
        "--reader", action="append", default=[], metavar="LOGIN",
        help="make this login role a reader (repeatable)",
    )  # fmt: skip
    team_init.add_argument(
        "--sql", action="store_true", help="print the roles' SQL for a database admin instead"
    )
    team_init.set_defaults(func=cmd_team_init)

    signers_help = "allowed-signers file (default: beside the policy)"
    keys = commands.add_parser("keys", parents=[common], help="signing keys and allowed signers")
    keys_commands = keys.add_subparsers(
        dest="keys_command", required=True, metavar="init|show|revoke"
    )
    init = keys_commands.add_parser(
        "init", parents=[common], help="get a signing key and add it to the allowed signers"
    )
    init.add_argument("--principal", help="who you are (default: the configured user)")
    init.add_argument("--key", metavar="PATH", help="key file (default: ~/.ssh/id_ed25519)")
    init.add_argument("--allowed-signers", metavar="FILE", help=signers_help)
    init.set_defaults(func=cmd_keys_init)
    show = keys_commands.add_parser("show", parents=[common], help="the key and principal in use")
    show.add_argument("--key", metavar="PATH", help=key_help)
    show.add_argument("--allowed-signers", metavar="FILE", help=signers_help)
    show.set_defaults(func=cmd_keys_show)
    revoke = keys_commands.add_parser(
        "revoke", parents=[common], help="revoke a principal's key (a signed, logged act)"
    )
    revoke.add_argument("who", metavar="PRINCIPAL|FINGERPRINT")
    revoke.add_argument("-m", "--message", default="", help="why")
    revoke.add_argument("--key", metavar="PATH", help=key_help)
    revoke.add_argument("--allowed-signers", metavar="FILE", help=signers_help)
    revoke.set_defaults(func=cmd_keys_revoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; exit codes: 0 ok, 1 an error, 2 a usage error (a misspelled option),
    3 a blocked promotion, 4 a failed audit verification, 5 a monitored batch that drifted."""
    from .argv import attach_dash_values

    parser = build_parser()
    args = parser.parse_args(attach_dash_values(sys.argv[1:] if argv is None else argv, ["--sort"]))
    try:
        return int(args.func(args))
    except (MLOpsError, ValueError, KeyError) as exc:
        print(f"mlops-jupyter: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. piped into head
        return 0


if __name__ == "__main__":
    sys.exit(main())
