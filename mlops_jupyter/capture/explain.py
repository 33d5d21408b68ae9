"""SHAP explanations of a captured model (shap is imported only here, in the explainer process).

TreeExplainer for tree ensembles, LinearExplainer for linear models, a model-agnostic
permutation explainer otherwise (one pass each way, 25 background rows, to bound its cost).
A Pipeline is explained on its final estimator, fed the transformed features and named by
``get_feature_names_out``. Multi-class models give one set of values per class.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_BACKGROUND = 100
AGNOSTIC_BACKGROUND = 25  # model-agnostic cost grows with background rows x evaluations


@dataclass
class ExplanationResult:
    status: str  # ok | failed | unsupported
    reason: str | None = None
    explainer: str | None = None
    feature_names: list[str] | None = None
    classes: list[Any] | None = None
    mean_abs: Any = None  # [per feature] or {class: [per feature]}
    base_values: Any = None
    n_rows: int | None = None
    matrix: bytes | None = None  # .npy bytes of the SHAP values (no pickle)

    def top_features(self, k: int = 5) -> list[tuple[str, float]]:
        """The k features with the largest mean |SHAP| (summed over classes)."""
        if self.status != "ok" or not self.feature_names or self.mean_abs is None:
            return []
        if isinstance(self.mean_abs, dict):
            totals = np.sum([np.asarray(v) for v in self.mean_abs.values()], axis=0)
        else:
            totals = np.asarray(self.mean_abs)
        order = np.argsort(-totals, kind="stable")[:k]
        return [(self.feature_names[i], float(totals[i])) for i in order]


def _library(data: Any) -> str | None:
    """``polars`` or ``pyarrow`` for their objects (checked by module: nothing imported)."""
    module = type(data).__module__
    for library in ("polars", "pyarrow"):
        if module == library or module.startswith(library + "."):
            return library
    return None


def _rows(data: Any, limit: int) -> Any:
    """At most ``limit`` rows, evenly spaced (deterministic)."""
    n = data.shape[0]
    if n <= limit:
        return data
    index = np.linspace(0, n - 1, limit).round().astype(int)
    if hasattr(data, "iloc"):
        return data.iloc[index]
    if _library(data) == "pyarrow":  # a Table or RecordBatch: [] selects a column
        return data.take(index)
    return data[index]


def sample_rows(data: Any, limit: int) -> Any:
    """A private copy of at most ``limit`` evenly spaced rows (lists become arrays).

    polars and pyarrow frames stay frames, so their column names reach the explanation."""
    if not hasattr(data, "shape"):
        data = np.asarray(data)
    picked = _rows(data, limit)
    library = _library(picked)
    if library == "polars":
        return picked.clone()  # copy-on-write: later in-place edits of ``data`` never show
    if library == "pyarrow":
        return picked  # immutable
    return picked.copy() if hasattr(picked, "copy") else np.array(picked)


def _dense(data: Any) -> Any:
    """A matrix SHAP takes: sparse made dense, polars and pyarrow frames as numpy arrays (their
    column names are read by :func:`_feature_names` before this)."""
    library = _library(data)
    if library == "polars":
        return data.to_numpy()
    if library == "pyarrow":
        return np.column_stack([np.asarray(column) for column in data.columns])
    return data.toarray() if hasattr(data, "toarray") else data


def _column_names(data: Any) -> list[str] | None:
    if _library(data) == "pyarrow":  # a Table's .columns are its arrays, not their names
        schema = getattr(data, "schema", None)
        return [str(name) for name in schema.names] if schema is not None else None
    columns = getattr(data, "columns", None)
    return [str(c) for c in columns] if columns is not None else None


def _feature_names(data: Any, n: int, model: Any = None) -> list[str]:
    """The data's column names (pandas, polars, pyarrow), else the names ``model`` was fitted
    with (data converted to numpy before it reached us), else ``x0``, ``x1``, ..."""
    columns = _column_names(data)
    if columns is not None and len(columns) == n:
        return columns
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is not None and len(fitted) == n:
        return [str(c) for c in fitted]
    return [f"x{i}" for i in range(n)]


def _split_pipeline(model: Any, X: Any, background: Any) -> tuple[Any, Any, Any, list[str] | None]:
    steps = getattr(model, "steps", None)
    if not steps or len(steps) < 2:
        return model, X, background, None
    head, final = model[:-1], model[-1]
    names: list[str] | None
    try:
        names = [str(n) for n in head.get_feature_names_out()]
    except Exception:  # a step without get_feature_names_out
        names = None
    return final, _dense(head.transform(X)), _dense(head.transform(background)), names


def _named(predict: Any, model: Any) -> Any:
    """Call ``predict`` with the column names the model was fitted with (no sklearn warning)."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return predict

    def predict_named(data: Any) -> Any:
        import pandas as pd

        return predict(pd.DataFrame(data, columns=names))

    return predict_named


def _kind(model: Any) -> str:
    name = type(model).__name__
    if hasattr(model, "tree_") or hasattr(model, "estimators_") and "Forest" in name:
        return "tree"
    if any(s in name for s in ("XGB", "LGBM", "CatBoost", "GradientBoosting", "HistGradient")):
        return "tree"
    if "Forest" in name or "Tree" in name:
        return "tree"
    if hasattr(model, "coef_") and hasattr(model, "intercept_"):
        return "linear"
    return "agnostic"


def explain(
    model: Any,
    X: Any,
    background: Any | None = None,
    max_rows: int = 200,
    feature_names: list[str] | None = None,
) -> ExplanationResult:
    """Explain ``model`` on up to ``max_rows`` rows of ``X`` (background: at most 100 rows).

    ``feature_names`` name the columns when ``X`` carries none (a matrix a fitted vectorizer
    made); they are used when their number matches the features the model sees."""
    try:
        import shap
    except ImportError as exc:
        return ExplanationResult("unsupported", f"shap is not installed ({exc})")
    model = getattr(model, "best_estimator_", model)  # a fitted search: its best model
    background = X if background is None else background
    sample = _rows(X, max_rows)
    back = _rows(background, MAX_BACKGROUND)
    final, sample_t, back_t, names = _split_pipeline(model, sample, back)
    n_features = int(np.shape(sample_t)[1])
    if feature_names and len(feature_names) == n_features and final is model:
        names = list(feature_names)
    if not names or len(names) != n_features:
        names = _feature_names(sample_t, n_features, final)
    sample_t = _dense(sample_t)
    back_t = _dense(back_t)
    kind = _kind(final)
    fallback = None
    if kind == "tree":
        try:
            explainer = shap.TreeExplainer(final)
            label = "TreeExplainer"
        except Exception as exc:  # not a tree model shap knows: fall back to model-agnostic
            kind = "agnostic"
            fallback = (
                f"TreeExplainer refused {type(final).__name__} ({type(exc).__name__}: "
                f"{str(exc)[:120]}); explained with PermutationExplainer instead"
            )
    if kind == "linear":
        explainer = shap.LinearExplainer(final, np.asarray(back_t, dtype=float))
        label = "LinearExplainer"
    if kind == "agnostic":
        predict = getattr(final, "predict_proba", None) or getattr(final, "predict", None)
        if predict is None:
            return ExplanationResult("unsupported", f"{type(final).__name__} cannot predict")
        small_background = _rows(np.asarray(back_t), AGNOSTIC_BACKGROUND)
        explainer = shap.PermutationExplainer(_named(predict, final), small_background)
        label = "PermutationExplainer"
    if kind == "agnostic":
        evals = 2 * n_features + 1  # one forward and one backward pass per row
        values_obj = explainer(np.asarray(sample_t), max_evals=evals, silent=True)
    else:
        values_obj = explainer(np.asarray(sample_t) if kind == "linear" else sample_t)
    values = np.asarray(values_obj.values, dtype=float)
    base = np.asarray(values_obj.base_values, dtype=float)
    classes = getattr(final, "classes_", None)
    result = ExplanationResult(
        "ok", fallback, explainer=label, feature_names=names, n_rows=len(values)
    )
    if values.ndim == 3:
        labels = [
            c.item() if hasattr(c, "item") else c
            for c in (classes if classes is not None else range(values.shape[2]))
        ]
        result.classes = labels
        result.mean_abs = {
            str(label_): np.abs(values[:, :, i]).mean(axis=0).tolist()
            for i, label_ in enumerate(labels)
        }
        result.base_values = base.reshape(len(values), -1).mean(axis=0).tolist()
    else:
        result.mean_abs = np.abs(values).mean(axis=0).tolist()
        result.base_values = float(base.mean())
    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=False)
    result.matrix = buffer.getvalue()
    return result
