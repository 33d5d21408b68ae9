"""Command-line spellings shared by the CLI and the magics."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def attach_dash_values(argv: Sequence[str], options: Iterable[str]) -> list[str]:
    """``--sort -metrics.acc`` -> ``--sort=-metrics.acc`` for ``options`` whose values may
    start with ``-`` (argparse would read such a value as an option of its own)."""
    wanted = set(options)
    out: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if item in wanted and i + 1 < len(items) and items[i + 1].startswith("-"):
            value = items[i + 1]
            if len(value) > 1 and not value.startswith("--"):
                out.append(f"{item}={value}")
                i += 2
                continue
        out.append(item)
        i += 1
    return out
