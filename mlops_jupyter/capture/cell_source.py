"""What the cell's source says: literal parameters, assigned names, files read."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

_METRIC_TOKENS = frozenset(
    {
        "accuracy",
        "acc",
        "f1",
        "precision",
        "recall",
        "auc",
        "logloss",
        "loss",
        "losses",
        "accuracies",
        "errors",
        "rmse",
        "mse",
        "mae",
        "r2",
        "score",
        "rmsle",
        "msle",
        "rae",
        "rse",
        "mape",
        "smape",
        "medae",
        "nll",
        "perplexity",
        "mcc",
        "kappa",
        "brier",
        "auroc",
        "auprc",
        "error",
        "err",
    }
)
# a metric word next to one of these names a setting, not a result (loss_weight, score_threshold)
_SETTING_TOKENS = frozenset(
    {
        "threshold",
        "weight",
        "weights",
        "fn",
        "func",
        "function",
        "type",
        "name",
        "names",
        "param",
        "params",
        "n",
        "num",
        "count",
        "min",
        "max",
        "target",
        "fns",
    }
)


def is_metric_name(name: str) -> bool:
    """``val_accuracy``, ``f1_macro``, ``test_rmse``, ``roc_auc``... but not ``loss_weight``."""
    tokens = name.lower().strip("_").split("_")
    return bool(_METRIC_TOKENS.intersection(tokens)) and not _SETTING_TOKENS.intersection(tokens)


@dataclass
class CellSource:
    """Static facts about a cell."""

    literals: dict[str, Any] = field(default_factory=dict)  # top-level ``name = <literal>``
    assigned: list[str] = field(default_factory=list)  # every name bound anywhere, in order
    reads: dict[str, str] = field(default_factory=dict)  # variable -> literal path of read_*()
    loaded: set[str] = field(default_factory=set)  # every name the cell reads
    top_level: list[str] = field(default_factory=list)  # names its top-level statements bind
    # variable -> (variable read, file) it was computed from in earlier cells (see Lineage)
    earlier_reads: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def _literal(node: ast.expr) -> tuple[bool, Any]:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    return _is_plain(value), value


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    return False


def _read_path(node: ast.expr) -> str | None:
    """``pd.read_csv("data/x.csv", ...)`` -> ``data/x.csv``."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    first = node.args[0]
    if name.startswith("read_") and isinstance(first, ast.Constant):
        return first.value if isinstance(first.value, str) else None
    return None


def analyse(tree: ast.Module) -> CellSource:
    """Collect literals (top level only: a counter in a loop body is not a parameter)."""
    facts = CellSource()
    for statement in tree.body:
        target, value = None, None
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        if isinstance(statement, ast.Assign):
            facts.top_level += [
                t.id
                for target_ in statement.targets
                for t in (target_.elts if isinstance(target_, ast.Tuple) else [target_])
                if isinstance(t, ast.Name)
            ]
        elif isinstance(target, ast.Name):
            facts.top_level.append(target.id)
        if isinstance(target, ast.Name) and value is not None:
            ok, literal = _literal(value)
            if ok and not target.id.startswith("_"):
                facts.literals[target.id] = literal
            path = _read_path(value)
            if path is not None:
                facts.reads[target.id] = path
    seen: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store) and node.id not in seen:
                seen.add(node.id)
                facts.assigned.append(node.id)
            elif isinstance(node.ctx, ast.Load):
                facts.loaded.add(node.id)
    return facts


@dataclass
class Lineage:
    """Across the cells of a kernel: the file each variable was read from
    (``df = pd.read_csv("data.csv")``) and the names each variable was computed from
    (``X = df.drop(columns="y")``), from top-level assignments only. It lets a tracked cell
    that fits on ``X`` name ``data.csv`` as its source when an earlier, untracked cell read it.
    """

    reads: dict[str, str] = field(default_factory=dict)  # variable -> absolute file path
    uses: dict[str, set[str]] = field(default_factory=dict)  # variable -> names it came from

    def learn(self, tree: ast.Module, cwd: str) -> None:
        import os

        for statement in tree.body:
            if isinstance(statement, ast.Assign):
                targets, value = statement.targets, statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                targets, value = [statement.target], statement.value
            else:
                continue
            names = [
                t.id
                for target in targets
                for t in (target.elts if isinstance(target, ast.Tuple | ast.List) else [target])
                if isinstance(t, ast.Name)
            ]
            if not names:
                continue
            path = _read_path(value)
            used = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
            for name in names:
                self.uses[name] = used - {name}
                if path is not None:
                    self.reads[name] = os.path.join(cwd, path)
                else:
                    self.reads.pop(name, None)

    def sources(self, name: str, limit: int = 1000) -> list[tuple[str, str]]:
        """The files ``name`` was computed from, following earlier assignments, with the
        variable each was read into."""
        found: list[tuple[str, str]] = []
        todo, seen = [name], {name}
        while todo and len(seen) < limit:
            current = todo.pop()
            path = self.reads.get(current)
            if path is not None and (current, path) not in found:
                found.append((current, path))
            for used in self.uses.get(current, ()):
                if used not in seen:
                    seen.add(used)
                    todo.append(used)
        return found
