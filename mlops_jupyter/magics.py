"""IPython adapter: ``%load_ext mlops_jupyter`` registers ``%%track`` and ``%runs``.

``%%track`` is handled without wrapping the cell in a function call, so the cell runs exactly
as it would without the magic (same namespace, display, ``Out[n]``, exceptions and traceback):

* an input transformer turns the ``%%track ...`` line into a comment (line numbers unchanged);
* ``pre_run_cell`` parses the options and opens the run (status ``running``);
* an AST transformer adds taps around fit/predict/score/metric calls (see
  :mod:`mlops_jupyter.capture.instrument`);
* ``post_run_cell`` captures, commits the run and shows its summary.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

from .argv import attach_dash_values
from .capture.instrument import TAPS, CallSite, Taps
from .errors import MLOpsError
from .tracker import RunContext, Tracker, UsageError, parse_options

_TRACK_LINE = re.compile(r"^\s*%%track(?:\s|$)")
_extension: NotebookTracking | None = None


def _first_line(cell: str) -> str:
    for line in cell.splitlines():
        if line.strip():
            return line
    return ""


def strip_track_line(lines: list[str]) -> list[str]:
    """Input transformer: ``%%track ...`` becomes a comment, keeping line numbers.

    Pure (IPython also calls it to check whether input is complete). When another cell magic
    follows on the next line, the ``%%track`` line is dropped so that magic stays first.
    """
    if not lines or not _TRACK_LINE.match(lines[0]):
        return lines
    rest = lines[1:]
    if rest and rest[0].lstrip().startswith("%%"):
        return rest
    return ["# " + lines[0].lstrip()] + rest


class _Instrument(ast.NodeTransformer):
    def __init__(self, owner: NotebookTracking) -> None:
        self.owner = owner

    def visit_Module(self, node: ast.Module) -> ast.Module:
        return self.owner.instrument(node)


class NotebookTracking:
    """The kernel-side state: one tracker, the taps, the run of the executing cell."""

    def __init__(self, shell: Any, tracker: Tracker | None = None) -> None:
        self.shell = shell
        self.tracker = tracker or Tracker(start_dir=os.getcwd())
        self.taps = Taps()
        self.ctx: RunContext | None = None
        self.sites: list[CallSite] = []
        self.facts: Any = None
        self.source = ""
        from .capture.cell_source import Lineage
        from .store.cell_history import CellHistory

        self._history = CellHistory()

        self.lineage = Lineage()
        self._transformer = _Instrument(self)
        self._handles: dict[str, Any] = {}
        self._summaries: dict[str, Any] = {}
        self.tracker.on_explained = self._explained

    # ----------------------------------------------------------- registration
    def register(self) -> None:
        shell = self.shell
        if strip_track_line not in shell.input_transformers_cleanup:
            shell.input_transformers_cleanup.append(strip_track_line)
        shell.ast_transformers.append(self._transformer)
        shell.events.register("pre_run_cell", self.pre_run_cell)
        shell.events.register("post_run_cell", self.post_run_cell)
        shell.register_magic_function(track, "cell", "track")
        shell.register_magic_function(runs, "line", "runs")
        shell.register_magic_function(model_card_magic, "line", "model_card")
        from .registry_magics import MAGICS

        for name, function in MAGICS.items():
            shell.register_magic_function(function, "line", name)
        shell.user_ns[TAPS] = self.taps
        shell.user_ns_hidden[TAPS] = self.taps
        threading.Thread(target=_warm_up, name="mlops-jupyter-warm-up", daemon=True).start()

    def unregister(self) -> None:
        shell = self.shell
        if strip_track_line in shell.input_transformers_cleanup:
            shell.input_transformers_cleanup.remove(strip_track_line)
        if self._transformer in shell.ast_transformers:
            shell.ast_transformers.remove(self._transformer)
        shell.events.unregister("pre_run_cell", self.pre_run_cell)
        shell.events.unregister("post_run_cell", self.post_run_cell)

    # ----------------------------------------------------------------- events
    def pre_run_cell(self, info: Any) -> None:
        raw = info.raw_cell or ""
        self.ctx = None
        if not _TRACK_LINE.match(_first_line(raw)):
            return
        line = _first_line(raw).strip()[len("%%track") :]
        try:
            options = parse_options(line)
            from .config import settings

            configured = settings()
            notebook = notebook_path(self.shell, configured.notebook)
            self.ctx = self.tracker.begin(
                options,
                default_experiment=configured.experiment
                or (Path(notebook).stem if notebook else "default"),
                source=raw,
                execution_count=self.shell.execution_count - 1,
                notebook_path=notebook,
                kernel_id=kernel_id(),
            )
        except UsageError as exc:
            print(f"{exc} -- this run was not tracked", file=sys.stderr)
            return
        except MLOpsError as exc:  # the store could not be opened or written: run untracked
            print(f"mlops-jupyter: not tracked: {exc}", file=sys.stderr)
            return
        except Exception as exc:
            print(f"mlops-jupyter: not tracked ({type(exc).__name__}: {exc})", file=sys.stderr)
            return
        self.source = raw
        self.sites, self.facts = [], None
        self.taps.start()

    def instrument(self, tree: ast.Module) -> ast.Module:
        """AST transformer hook: add taps to the tracked cell (never raises); learn every
        cell's top-level assignments (where data came from) for later tracked cells."""
        if self.ctx is None:
            try:
                self.lineage.learn(tree, os.getcwd())
            except Exception:  # lineage is a help, never a reason for a cell to fail
                pass
            return tree
        if self.facts is not None:
            return tree
        try:
            from .capture.cell_source import analyse
            from .capture.instrument import instrument

            self.facts = analyse(tree)
            for name in self.facts.loaded - set(self.facts.reads):
                files = self.lineage.sources(name)
                if files:
                    self.facts.earlier_reads[name] = files
            self.lineage.learn(tree, os.getcwd())
            new_tree, self.sites = instrument(tree)
            return new_tree
        except Exception as exc:
            self.ctx.capture_errors.append(
                {"step": "instrument", "error": f"{type(exc).__name__}: {exc}"}
            )
            return tree

    def post_run_cell(self, result: Any) -> None:
        count = result.execution_count
        if count is not None:
            self._remember(count, result.info.raw_cell if result.info else "")
        ctx, self.ctx = self.ctx, None
        if ctx is None:
            return
        records = self.taps.stop()
        error = result.error_in_exec or result.error_before_exec
        try:
            summary = self.tracker.finish(
                ctx,
                error=error,
                namespace=self.shell.user_ns,
                sites=self.sites,
                records=records,
                facts=self.facts,
                history=self._history.before_last() if count is not None else self._history,
                workdir=os.getcwd(),
            )
        except Exception as exc:  # the store write failed: say so in one line, keep going
            print(f"mlops-jupyter: run {ctx.run_id[:8]} not saved: {exc}", file=sys.stderr)
            return
        finally:
            self.sites, self.facts = [], None
        self._show(summary, ctx.options.quiet)

    # ---------------------------------------------------------------- display
    def _show(self, summary: Any, quiet: bool) -> None:
        from IPython.display import display

        if quiet:
            warning = summary.warning_line()
            if warning:
                print(warning, file=sys.stderr)
            return
        handle = display(summary, display_id=True)
        if summary.shap == "pending" and handle is not None:
            self._handles[summary.run_id] = handle
            self._summaries[summary.run_id] = summary

    def _explained(self, run_id: str, result: Any) -> None:
        handle = self._handles.pop(run_id, None)
        summary = self._summaries.pop(run_id, None)
        if handle is None or summary is None:
            return
        summary.shap = result.status
        summary.shap_top = result.top_features(5)
        summary.shap_reason = result.reason
        try:
            handle.update(summary)
        except Exception:  # the frontend is gone: the store has the explanation anyway
            pass

    def _remember(self, count: int, source: str) -> None:
        self._history.append(count, source)


def _warm_up() -> None:
    """Read package versions once, off the cell's critical path. (numpy and the hashing are
    not imported ahead: a cell with data to hash has imported numpy itself.)"""
    try:
        from .capture.environment import environment

        environment()
    except Exception:
        pass


def notebook_path(shell: Any, configured: str | None = None) -> str | None:
    """The notebook file of this kernel: VS Code's variable, the Jupyter session name, the
    ``notebook`` setting (``configured``), else the notebook a batch runner (nbconvert,
    papermill) was given."""
    for value in (
        shell.user_ns.get("__vsc_ipynb_file__"),
        os.environ.get("JPY_SESSION_NAME"),
        configured,
    ):
        if value:
            return str(value)
    return runner_notebook()


_RUNNERS = ("nbconvert", "papermill", "jupyter-execute")


@functools.cache
def runner_notebook(pid: int | None = None) -> str | None:
    """The notebook on the command line of the process that started this kernel, when that is
    ``jupyter nbconvert --execute NB`` or ``papermill NB OUT``: they run a kernel per notebook
    and do not tell it which. None when it cannot be known for sure (another parent, several
    notebooks named, no ``/proc``)."""
    parent = os.getppid() if pid is None else pid
    try:
        with open(f"/proc/{parent}/cmdline", "rb") as handle:
            args = [a.decode("utf-8", "surrogateescape") for a in handle.read().split(b"\0") if a]
        cwd = os.readlink(f"/proc/{parent}/cwd")
    except OSError:
        return None
    if not any(runner in arg for arg in args[:3] for runner in _RUNNERS):
        return None
    notebooks = [a for a in args[1:] if a.endswith(".ipynb") and not a.startswith("-")]
    if not notebooks:
        return None
    if "papermill" not in " ".join(args[:3]) and len(notebooks) > 1:
        return None  # nbconvert with several notebooks: which one this kernel runs is unknown
    path = Path(notebooks[0])
    return str(path if path.is_absolute() else Path(cwd) / path)


def kernel_id() -> str | None:
    try:
        from ipykernel.connect import get_connection_file

        name = Path(get_connection_file()).stem
    except Exception:  # not an ipykernel (plain IPython)
        return None
    return name.removeprefix("kernel-")


def track(line: str, cell: str) -> None:
    """Track this cell as a run: params, metrics, data hashes, model, SHAP, code, environment.

    %%track [-e EXPERIMENT] [-n NAME] [--data VAR[,VAR...]] [--model VAR]
            [--metric VAR[,VAR...]] [--param KEY=VALUE ...] [--tag KEY=VALUE ...]
            [--no-shap] [--shap-rows N] [--quiet]

    ``%%track`` must be the first line of the cell. (This function only runs when the cell
    was not transformed, e.g. through ``run_cell_magic``; it explains how to use it.)
    """
    raise UsageError(
        "%%track must be the first line of a cell, with mlops_jupyter loaded "
        "(%load_ext mlops_jupyter) before the cell runs"
    )


def runs(line: str) -> Any:
    """%runs [-e EXPERIMENT] [-n LIMIT] [--sort KEY] [--status STATUS]: the runs as a DataFrame."""
    import argparse
    import shlex

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:
            raise UsageError(f"%runs: {message}")

    parser = Parser(prog="%runs", add_help=False)
    parser.add_argument("-e", "--experiment")
    parser.add_argument("-n", "--limit", type=int)
    parser.add_argument("--sort", default="-started_at")
    parser.add_argument("--status")
    args = parser.parse_args(attach_dash_values(shlex.split(line), ["--sort"]))
    tracker = _extension.tracker if _extension is not None else Tracker()
    return tracker.store.runs(
        experiment=args.experiment, status=args.status, limit=args.limit, order_by=args.sort
    )


def model_card_magic(line: str) -> Any:
    """%model_card REF [-o PATH] [--format html|json|md] [--edit] [--techdoc]

    Show the model card of a run (id or unique prefix) or MODEL:VERSION; write it with -o;
    --edit shows a form for the human-written sections (saved to the store, versioned);
    --techdoc shows (or writes, as .html or .md) a MODEL:VERSION's EU AI Act technical
    documentation (Annex IV) instead.
    """
    import argparse
    import shlex

    from IPython.display import display

    from .cards.model import build_card, card_format

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:
            raise UsageError(f"%model_card: {message}")

    parser = Parser(prog="%model_card", add_help=False)
    parser.add_argument("ref")
    parser.add_argument("-o", "--output")
    parser.add_argument("--format", choices=["html", "json", "md"])
    parser.add_argument("--edit", action="store_true")
    parser.add_argument("--techdoc", action="store_true")
    args = parser.parse_args(shlex.split(line))
    if args.techdoc:
        return _techdoc(args)
    tracker = _extension.tracker if _extension is not None else Tracker()
    tracker.wait(timeout=60)  # an explanation still being computed belongs on the card
    card = build_card(args.ref, store=tracker.store)
    if args.edit:
        from .widgets.card_editor import CardEditor

        return CardEditor(card, tracker.store, tracker.user)
    if args.output:
        path = card.save(
            args.output, card_format(args.output, args.format, "--format html|json|md")
        )
        print(f"wrote {path}")
    display(card)
    return None


def _techdoc(args: Any) -> None:
    """``%model_card MODEL:VERSION --techdoc [-o PATH]``: the Annex IV documentation."""
    from IPython.display import display

    from .cards.model import build_card
    from .cards.techdoc import build_techdoc, check_versioned, techdoc_format

    if args.edit:
        raise UsageError("%model_card: --techdoc and --edit do not go together")
    kind = techdoc_format(args.output, args.format, "--format html|md") if args.output else None
    check_versioned(args.ref)
    tracker = _extension.tracker if _extension is not None else Tracker()
    tracker.wait(timeout=60)  # an explanation still being computed belongs in it
    doc = build_techdoc(build_card(args.ref, store=tracker.store))
    if args.output:
        print(f"wrote {doc.save(args.output, kind)}")
    display(doc)


def load_ipython_extension(shell: Any) -> None:
    global _extension
    if _extension is not None:
        _extension.unregister()
    from . import api

    _extension = NotebookTracking(shell, api.default_tracker())
    _extension.register()


def unload_ipython_extension(shell: Any) -> None:
    global _extension
    if _extension is not None:
        _extension.unregister()
        _extension = None
