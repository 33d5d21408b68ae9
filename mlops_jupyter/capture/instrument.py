"""Instrument a cell's AST so that a run sees what the cell fitted, predicted and scored.

Calls such as ``model.fit(X, y)``, ``model.predict(X)``, ``model.score(X, y)`` and metric
functions (``accuracy_score(y, p)``, ``cross_validate(...)``) get *taps*: tiny functions that
record the receiver, the arguments or the result and hand them back unchanged. A tap returns
before the user's call runs, so an exception inside the user's code has no extra frame in its
traceback; locations are copied from the original nodes, so line numbers do not move.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .cell_source import is_metric_name

TAPS = "__mlops_jupyter_taps__"
FIT_METHODS = frozenset({"fit", "fit_transform", "fit_predict", "partial_fit"})
EVAL_METHODS = frozenset(
    {"predict", "predict_proba", "predict_log_proba", "decision_function", "score"}
)
_METRIC_SUFFIXES = ("_score", "_error", "_loss", "_deviance")
_METRIC_NAMES = frozenset(
    {
        "log_loss",
        "classification_report",
        "cross_validate",
        "cross_val_score",
        "hinge_loss",
        "validation_curve",
        "learning_curve",
    }
)
CURVE_FUNCTIONS = frozenset({"validation_curve", "learning_curve"})
_LOGGING_CALLS = frozenset({"log_metric", "log_metrics", "log_param", "log_params"})
_RESULTS_KEPT = 100_000  # per call site: a curve longer than this keeps its first values
CALLS_KEPT = 100  # per fit/eval site: the receiver and arguments of each of its first calls


def is_metric_function_name(name: str) -> bool:
    """Whether a called name looks like a scikit-learn metric (checked again at run time)."""
    return name in _METRIC_NAMES or name.endswith(_METRIC_SUFFIXES)


@dataclass
class CallSite:
    """One instrumented call in the cell source."""

    site: int
    kind: str  # "fit" | "eval" | "metric" | "value" (a metric-like name assigned in a loop)
    method: str  # fit / predict / score / the metric function's name
    line: int
    receiver_name: str | None  # source text of the receiver (``model``), if any
    arg_names: dict[int | str, str]  # source text of each argument
    assigned_to: str | None  # ``acc`` in ``acc = accuracy_score(...)``
    is_result: bool = False  # assigned to a name, or a top-level expression statement
    in_loop: bool = False  # inside a for/while body or a comprehension


@dataclass
class CallRecord:
    """What a call site saw at run time: the last call's receiver and arguments, and every
    result in order (a metric computed step by step in a loop is a curve)."""

    receiver: Any = None
    function: Any = None
    args: dict[int | str, Any] = field(default_factory=dict)
    result: Any = None
    has_result: bool = False
    calls: int = 0
    results: list[Any] = field(default_factory=list)
    earlier: list[tuple[Any, dict[int | str, Any]]] = field(default_factory=list)

    def each_call(self) -> list[tuple[Any, dict[int | str, Any]]]:
        """(receiver, arguments) of every call kept, the last one included."""
        return [*self.earlier, (self.receiver, self.args)] if self.calls else []


class Taps:
    """The object the instrumented code calls; it only stores references.

    It stays in the user namespace between runs (a generator made in a tracked cell may run
    later); while no run is active it records nothing.
    """

    def __init__(self) -> None:
        self.records: dict[int, CallRecord] = {}
        # values of metric-like names assigned in loops, by site: the cell appends to these
        # lists directly (a C call, ~10x cheaper than a tap), so a long loop stays fast
        self.series: defaultdict[int, list[Any]] = defaultdict(list)
        self.active = False

    def start(self) -> None:
        self.records = {}
        self.series = defaultdict(list)
        self.active = True

    def stop(self) -> dict[int, CallRecord]:
        records, self.records, self.active = self.records, {}, False
        for site, values in self.series.items():
            if values:
                records[site] = CallRecord(
                    result=values[-1], has_result=True, calls=len(values), results=values
                )
        self.series = defaultdict(list)
        return records

    def _record(self, site: int) -> CallRecord:
        if not self.active:
            return CallRecord()  # discarded
        record = self.records.get(site)
        if record is None:
            record = self.records[site] = CallRecord()
        return record

    def recv(self, site: int, obj: Any) -> Any:
        record = self._record(site)
        if record.calls and len(record.earlier) < CALLS_KEPT - 1:  # a loop: keep each fit
            record.earlier.append((record.receiver, record.args))
            record.args = {}
        record.receiver = obj
        record.calls += 1
        return obj

    def func(self, site: int, fn: Any) -> Any:
        record = self._record(site)
        record.function = fn
        record.calls += 1
        return fn

    def arg(self, site: int, key: int | str, value: Any) -> Any:
        self._record(site).args[key] = value
        return value

    def last(self, site: int, value: Any) -> Any:
        """A prediction: only the latest is kept (a metric on it is that model's)."""
        record = self._record(site)
        record.result = value
        record.has_result = True
        return value

    def result(self, site: int, value: Any) -> Any:
        record = self._record(site)
        record.result = value
        record.has_result = True
        if len(record.results) < _RESULTS_KEPT:
            record.results.append(value)
        return value


_PREDICTIONS = frozenset({"predict", "predict_proba", "decision_function"})


def _name_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _source(node: ast.AST, limit: int = 80) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Instrumenter(ast.NodeTransformer):
    def __init__(self) -> None:
        self.sites: list[CallSite] = []
        self._assigned: dict[int, str] = {}
        self._results: set[int] = set()
        self._logged: set[int] = set()  # calls inside log_metric(...) and the like
        self._loops = 0

    def _tap(self, method: str, site: int, *args: ast.expr, like: ast.AST) -> ast.Call:
        call = ast.Call(
            func=ast.Attribute(
                value=ast.Name(id=TAPS, ctx=ast.Load()), attr=method, ctx=ast.Load()
            ),
            args=[ast.Constant(site), *args],
            keywords=[],
        )
        return ast.copy_location(call, like)

    def _skip(self, node: ast.AST) -> ast.AST:
        """Function, class and lambda bodies run later, maybe outside any run: left alone."""
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = _skip

    def visit_Assign(self, node: ast.Assign) -> ast.AST | list[ast.stmt]:
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            self._assigned[id(node.value)] = node.targets[0].id
            self._results.add(id(node.value))
        visited = self.generic_visit(node)
        if not self._loops:
            return visited
        names = [
            t.id
            for target in node.targets
            for t in (target.elts if isinstance(target, ast.Tuple) else [target])
            if isinstance(t, ast.Name) and is_metric_name(t.id)
        ]
        if not names:
            return visited
        out: list[ast.stmt] = [visited]  # type: ignore[list-item]
        for name in names:  # `val_loss = ...` then `TAPS.series[site].append(val_loss)`
            site = len(self.sites)
            series = ast.Subscript(
                value=ast.Attribute(
                    value=ast.Name(id=TAPS, ctx=ast.Load()), attr="series", ctx=ast.Load()
                ),
                slice=ast.Constant(site),
                ctx=ast.Load(),
            )
            append = ast.Call(
                func=ast.Attribute(value=series, attr="append", ctx=ast.Load()),
                args=[ast.Name(id=name, ctx=ast.Load())],
                keywords=[],
            )
            out.append(ast.copy_location(ast.Expr(value=append), node))
            self.sites.append(
                CallSite(site, "value", name, node.lineno, None, {}, name, True, True)
            )
        return out

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        if not self._loops:
            self._results.add(id(node.value))
        return self.generic_visit(node)

    def _loop(self, node: ast.AST) -> ast.AST:
        self._loops += 1
        try:
            return self.generic_visit(node)
        finally:
            self._loops -= 1

    visit_For = visit_AsyncFor = visit_While = _loop
    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _loop

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if _name_of(node.func) in _LOGGING_CALLS:  # the user logs these values themselves
            self._logged.update(id(a) for a in ast.walk(node) if isinstance(a, ast.Call))
        assigned = self._assigned.get(id(node))
        is_result = id(node) in self._results
        func = node.func
        method = _name_of(func)
        # names from the source as written, before inner calls get their own taps
        receiver_name = _source(func.value) if isinstance(func, ast.Attribute) else None
        arg_names: dict[int | str, str] = {
            i: _source(a) for i, a in enumerate(node.args) if not isinstance(a, ast.Starred)
        }
        arg_names.update({k.arg: _source(k.value) for k in node.keywords if k.arg is not None})
        self.generic_visit(node)  # inner calls first: X.fit(...).predict(...) taps both
        func = node.func
        if method is None or id(node) in self._logged:
            return node
        if isinstance(func, ast.Attribute) and method in FIT_METHODS | EVAL_METHODS:
            kind = "fit" if method in FIT_METHODS else "eval"
        elif is_metric_function_name(method):
            kind = "metric"
        else:
            return node
        site = len(self.sites)
        new_args: list[ast.expr] = []
        for index, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                new_args.append(arg)
                continue
            new_args.append(self._tap("arg", site, ast.Constant(index), arg, like=arg))
        new_keywords = []
        for keyword in node.keywords:
            if keyword.arg is None:  # **kwargs
                new_keywords.append(keyword)
                continue
            tapped = self._tap("arg", site, ast.Constant(keyword.arg), keyword.value, like=keyword)
            new_keywords.append(
                ast.copy_location(ast.keyword(arg=keyword.arg, value=tapped), keyword)
            )
        if kind == "metric":
            new_func: ast.expr = self._tap("func", site, func, like=func)
        else:
            assert isinstance(func, ast.Attribute)
            receiver = self._tap("recv", site, func.value, like=func.value)
            new_func = ast.copy_location(
                ast.Attribute(value=receiver, attr=func.attr, ctx=ast.Load()), func
            )
        new_call: ast.expr = ast.copy_location(
            ast.Call(func=new_func, args=new_args, keywords=new_keywords), node
        )
        if kind == "metric" or method in ("score", "fit_transform"):  # T = vec.fit_transform
            new_call = self._tap("result", site, new_call, like=node)
        elif method in _PREDICTIONS and not self._loops:  # whose predictions a metric is on
            new_call = self._tap("last", site, new_call, like=node)
        self.sites.append(
            CallSite(
                site,
                kind,
                method,
                node.lineno,
                receiver_name,
                arg_names,
                assigned,
                is_result=is_result,
                in_loop=self._loops > 0,
            )
        )
        return new_call


def instrument(tree: ast.Module) -> tuple[ast.Module, list[CallSite]]:
    """Instrument ``tree`` in place; return it and its call sites.

    In place because the tree is IPython's own copy for this execution (copying an AST costs
    more than everything else ``%%track`` does to a cell).
    """
    instrumenter = _Instrumenter()
    new_tree = instrumenter.visit(tree)
    if instrumenter.sites:
        ast.fix_missing_locations(new_tree)
    return new_tree, instrumenter.sites
