"""Benchmark: hash_data against a memory copy, raw BLAKE3, pandas and MLflow, side by side.

    python benchmarks/hashing.py            # full sizes, writes the table into benchmarks/README.md
    python benchmarks/hashing.py --quick    # small sizes, prints only (a smoke run)

Workloads: a 1 GiB float64 frame (16 columns), 2 GiB numpy arrays (float64, int64 and float32
in C order, and a float64 matrix stored column-major as ``DataFrame.to_numpy()`` returns it), a
1,000,000-row frame with a ~100 MB string column in pandas' default string dtype and in object
dtype, and a 5,000,000-row frame of a categorical, a datetime, a zoned datetime and a period
column. Every figure is the best of
three runs, except MLflow's digest (one run: it is slow); the extra memory is the peak that
tracemalloc sees during one run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import blake3
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import best_of, cli_main, machine, table  # noqa: E402

from mlops_jupyter import hash_data  # noqa: E402


@dataclass
class Workload:
    name: str
    frame: pd.DataFrame | np.ndarray  # what hash_data is given
    raw: np.ndarray  # the data bytes, contiguous, for the copy and raw BLAKE3 references


def numeric_workload(nbytes: int) -> Workload:
    rows = nbytes // (16 * 8)
    values = np.random.default_rng(0).random((16, rows)).T  # one consolidated block
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(16)])
    raw = np.ascontiguousarray(values.T).view(np.uint8).reshape(-1)
    return Workload(f"numeric {nbytes / 2**30:.2g} GiB, 16 float64 columns", frame, raw)


def array_workloads(nbytes: int) -> list[Workload]:
    """numpy arrays: hash_data against BLAKE3 on the same bytes, for each numeric layout."""
    rng = np.random.default_rng(0)
    floats = rng.random(nbytes // 8)
    side = 16
    column_major = floats.reshape(side, -1).T  # what to_numpy() of a 16-column frame returns
    size = f"{nbytes / 2**30:.2g} GiB"
    float32 = rng.random(nbytes // 4, dtype=np.float32)
    return [
        Workload(f"numpy float64 array, {size}", floats, floats.view(np.uint8)),
        Workload(f"numpy int64 array, {size}", floats.view(np.int64), floats.view(np.uint8)),
        Workload(f"numpy float32 array, {size}", float32, float32.view(np.uint8)),
        Workload(
            f"numpy float64 {column_major.shape[0]:,} x {side}, column-major, {size}",
            column_major,
            np.ascontiguousarray(column_major).view(np.uint8).reshape(-1),
        ),
    ]


def string_workloads(rows: int) -> list[Workload]:
    rng = np.random.default_rng(0)
    lengths = rng.integers(50, 150, rows)
    alphabet = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789 ", dtype=np.uint8)
    text = alphabet[rng.integers(0, alphabet.size, int(lengths.sum()))].tobytes().decode()
    ends = np.cumsum(lengths)
    starts = ends - lengths
    values = [text[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    raw = np.frombuffer(text.encode(), dtype=np.uint8)
    mb = raw.nbytes / 1e6
    return [
        Workload(
            f"strings {rows:,} rows, {mb:.0f} MB, default dtype",
            pd.DataFrame({"text": pd.Series(values)}),
            raw,
        ),
        Workload(
            f"strings {rows:,} rows, {mb:.0f} MB, object dtype",
            pd.DataFrame({"text": pd.Series(values, dtype=object)}),
            raw,
        ),
    ]


def temporal_workload(rows: int) -> Workload:
    """Categorical codes and categories, datetimes, zoned datetimes and periods."""
    rng = np.random.default_rng(0)
    categories = np.array([f"category {i}" for i in range(1000)], dtype=object)
    codes = rng.integers(0, 1000, rows).astype(np.int16)
    start = np.datetime64("2020-01-01T00:00:00", "ns")
    when = start + rng.integers(0, 10**15, rows).astype("timedelta64[ns]")
    frame = pd.DataFrame({
        "category": pd.Categorical.from_codes(codes, categories=categories),
        "when": when,
        "when_zoned": pd.DatetimeIndex(when).tz_localize("UTC").tz_convert("Europe/Paris"),
        "day": pd.PeriodIndex(pd.DatetimeIndex(when), freq="D"),
    })  # fmt: skip
    raw = np.concatenate([
        codes.view(np.uint8), when.view(np.uint8), when.view(np.uint8),
        frame["day"].array.asi8.view(np.uint8),
    ])  # fmt: skip
    return Workload(f"categorical + datetime + zoned + period, {rows:,} rows", frame, raw)


def before_zoned(frame: pd.DataFrame) -> Callable[[], object]:
    """hash_data as it was before zoned datetimes were hashed from their buffers: their
    values went through Python objects (the same work: make an object column of them, and
    hash that)."""
    return lambda: hash_data(frame.astype({"when_zoned": object}))


def peak_memory(fn: Callable[[], object]) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def memory_copy(raw: np.ndarray) -> Callable[[], object]:
    target = np.empty_like(raw)
    target.fill(1)  # touched, so page faults are not measured

    def copy() -> None:
        np.copyto(target, raw)

    return copy


def raw_blake3(raw: np.ndarray, threads: int) -> Callable[[], object]:
    return lambda: blake3.blake3(raw, max_threads=threads).digest()


def mlflow_digest() -> Callable[[pd.DataFrame], str] | None:
    try:
        import logging

        import mlflow.data  # noqa: F401

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        from mlflow.data.pandas_dataset import from_pandas
    except ImportError:
        return None
    return lambda frame: from_pandas(frame).digest


def run(quick: bool) -> str:
    numeric_bytes = (64 << 20) if quick else (1 << 30)
    array_bytes = (64 << 20) if quick else (2 << 30)
    string_rows = 50_000 if quick else 1_000_000
    temporal_rows = 200_000 if quick else 5_000_000
    workloads = [
        numeric_workload(numeric_bytes),
        *array_workloads(array_bytes),
        *string_workloads(string_rows),
        temporal_workload(temporal_rows),
    ]
    digest = mlflow_digest()
    rows_out: list[list[str]] = []
    for work in workloads:
        n_rows = len(work.frame)
        size = work.raw.nbytes
        print(f"\n{work.name}", flush=True)
        copy_s = best_of(memory_copy(work.raw))
        blake3_s = best_of(raw_blake3(work.raw, -1))
        is_frame = isinstance(work.frame, pd.DataFrame)
        candidates: list[tuple[str, Callable[[], object], str, int]] = [
            ("memory copy (np.copyto)", memory_copy(work.raw), "-", 3),
            ("BLAKE3 of the raw bytes, 1 thread", raw_blake3(work.raw, 1), "-", 3),
            ("BLAKE3 of the raw bytes, all cores", raw_blake3(work.raw, -1), "-", 3),
            ("**hash_data** (mlops-jupyter)", lambda w=work: hash_data(w.frame), "all", 3),
        ]
        if is_frame:
            candidates.append((
                "pandas hash_pandas_object",
                lambda w=work: pd.util.hash_pandas_object(w.frame).to_numpy(),
                "all",
                3,
            ))  # fmt: skip
        if "zoned" in work.name:
            candidates.insert(4, ("hash_data before (zoned datetimes through Python objects)",
                                  before_zoned(work.frame), "all", 1))  # fmt: skip
        if digest is not None and is_frame:
            covered = f"first {min(n_rows, 10_000):,}"
            candidates.append(("MLflow dataset digest", lambda w=work: digest(w.frame), covered, 1))
        for label, fn, covered, repeat in candidates:
            if label.startswith("memory copy"):
                seconds = copy_s
            elif label.endswith("all cores"):
                seconds = blake3_s
            else:
                seconds = best_of(fn, repeat)
            extra = "-" if "hash" not in label else f"{peak_memory(fn) / 2**20:,.0f} MiB"
            rate = size / seconds / 1e9
            rows_out.append(
                [
                    work.name,
                    label,
                    f"{seconds * 1000:,.1f} ms",
                    f"{rate:,.2f} GB/s",
                    f"{seconds / copy_s:,.1f}x",
                    f"{seconds / blake3_s:,.2f}x",
                    covered if covered != "all" else f"all {n_rows:,}",
                    extra,
                ]
            )
            print(f"  {label:40s} {seconds * 1000:10.1f} ms {rate:8.2f} GB/s", flush=True)
    if digest is None:
        print("\n(MLflow not installed: pip install -e '.[bench]' to add its digest)")
    header = ["workload", "method", "time", "throughput", "vs copy", "vs BLAKE3 all cores",
              "rows covered", "extra memory"]  # fmt: skip
    return (
        f"Machine: {machine()}. numpy {np.__version__}, pandas {pd.__version__}, "
        f"blake3 {blake3.__version__}.\n\n"
        "Throughput is the data bytes (the numeric values; the UTF-8 text; the codes and int64 "
        "values) divided by the time; a frame's hash also covers its index, which the raw "
        "bytes do not. Best of 3 runs; MLflow and the before row one run; extra "
        "memory is tracemalloc's peak during one run.\n\n" + table(header, rows_out)
    )


def main() -> None:
    cli_main(__doc__, "hashing", run, quick_help="small sizes, print only")


if __name__ == "__main__":
    main()
