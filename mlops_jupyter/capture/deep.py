"""Deep-learning training cells (PyTorch, duck-typed: nothing here imports torch): the
optimizer's and the network's settings as parameters, the network as the model, tensors the
cell set up as data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_EVAL_WORDS = ("test", "val", "valid", "eval", "holdout")


def _is_torch(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "torch"


def is_optimizer(value: Any) -> bool:
    """A ``torch.optim`` optimizer (anything with ``param_groups`` and ``defaults``)."""
    return isinstance(getattr(value, "defaults", None), dict) and hasattr(value, "param_groups")


def is_network(value: Any) -> bool:
    """A ``torch.nn.Module`` (has ``parameters()``, ``state_dict()`` and ``forward``)."""
    return all(callable(getattr(value, a, None)) for a in ("parameters", "state_dict", "forward"))


def is_tensor(value: Any) -> bool:
    return _is_torch(value) and hasattr(value, "detach") and hasattr(value, "shape")


def _plain(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, int | float) for v in value):
        return list(value)
    return None


def network_params(names: list[str], namespace: Mapping[str, Any]) -> dict[str, Any]:
    """``opt.lr``, ``opt.momentum``... of optimizers and ``model.class``,
    ``model.n_parameters``, ``model.architecture`` of networks the cell assigned."""
    params: dict[str, Any] = {}
    for name in names:
        value = namespace.get(name)
        if value is None:
            continue
        if is_optimizer(value):
            params[f"{name}.class"] = type(value).__name__
            for key, setting in value.defaults.items():
                plain = _plain(setting)
                if plain is not None or setting is None:
                    params[f"{name}.{key}"] = plain
        elif is_network(value) and _is_torch(value):
            try:
                count = sum(int(p.numel()) for p in value.parameters())
            except Exception:
                count = None
            params[f"{name}.class"] = type(value).__name__
            if count:  # a network, not a loss function
                params[f"{name}.n_parameters"] = count
                params[f"{name}.architecture"] = repr(value)
    return params


def networks(names: list[str], namespace: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The torch networks with learnt parameters the cell assigned (not its loss modules)."""
    out = []
    for name in names:
        value = namespace.get(name)
        if value is None or not is_network(value) or not _is_torch(value):
            continue
        try:
            learnt = any(True for _ in value.parameters())
        except Exception:
            learnt = False
        if learnt:
            out.append((name, value))
    return out


def tensor_data(names: list[str], namespace: Mapping[str, Any]) -> list[tuple[Any, str, str]]:
    """Data tensors the cell set up at its top level: leaves (no ``grad_fn``) with a batch
    dimension; ``X_val``/``y_test``-like names are evaluation data, the others training data."""
    out = []
    for name in names:
        value = namespace.get(name)
        if value is None or not is_tensor(value) or getattr(value, "grad_fn", None) is not None:
            continue
        if getattr(value, "requires_grad", False) or len(value.shape) == 0:
            continue  # a parameter being learnt, or a scalar
        role = "eval" if any(w in name.lower() for w in _EVAL_WORDS) else "train"
        out.append((value, role, name))
    return out
