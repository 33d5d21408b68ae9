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
        if isinstance(target, ast.Name) and value is not None:
            ok, literal = _literal(value)
            if ok and not target.id.startswith("_"):
                facts.literals[target.id] = literal
            path = _read_path(value)
            if path is not None:
                facts.reads[target.id] = path
    seen: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id not in seen:
            seen.add(node.id)
            facts.assigned.append(node.id)
    return facts
