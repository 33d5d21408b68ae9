"""hash_data: layout independence, sensitivity to every value, determinism, errors."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import threading
from pathlib import Path

import blake3
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlops_jupyter import hash_data
from mlops_jupyter.capture import hash_buffers, hash_frames


def mixed_frame() -> pd.DataFrame:
    """Every column kind the contract names, with missing values where the dtype allows."""
    n = 6
    return pd.DataFrame(
        {
            "f64": [0.5, np.nan, 2.5, -1.0, 1e300, 7.0],
            "i64": np.arange(n, dtype=np.int64) * 3,
            "i8": np.arange(n, dtype=np.int8),
            "u32": np.arange(n, dtype=np.uint32) + 7,
            "flag": [True, False, True, True, False, False],
            "when": pd.date_range("2024-03-30", periods=n, freq="7h"),
            "when_tz": pd.date_range("2024-03-30", periods=n, freq="7h", tz="Europe/Paris"),
            "delta": pd.to_timedelta(np.arange(n), unit="s"),
            "cat": pd.Categorical(["a", "b", "a", None, "c", "b"]),
            "text": pd.Series(["x", "yy", None, "zzz", "", "é"], dtype="str"),
            "string": pd.Series(["x", "yy", None, "zzz", "", "é"], dtype="string"),
            "obj": pd.Series(["x", "yy", None, "zzz", "", "é"], dtype=object),
            "mixed": pd.Series([1, "two", 3.5, None, (1, 2), b"raw"], dtype=object),
            "Int64": pd.array([1, None, 3, 4, None, 6], dtype="Int64"),
            "Float64": pd.array([1.5, None, 3.0, 4.0, 5.0, None], dtype="Float64"),
            "boolean": pd.array([True, None, False, True, True, False], dtype="boolean"),
            "arrow_int": pd.array([1, 2, None, 4, 5, 6], dtype="int64[pyarrow]"),
            "period": pd.period_range("2024-01", periods=n, freq="M"),
            "interval": pd.IntervalIndex.from_breaks(np.arange(n + 1)),
        },
        index=pd.Index([f"r{i}" for i in range(n)], name="row"),
    )


def test_format_is_scheme_and_64_hex_digits() -> None:
    digest = hash_data(np.arange(10))
    scheme, hexpart = digest.split(":")
    assert scheme == "mj1-blake3"
    assert len(hexpart) == 64 and int(hexpart, 16) >= 0


def test_numpy_encoding_matches_the_documented_frames() -> None:
    """The byte stream is specified: a JSON meta frame then a raw little-endian buffer frame."""
    arr = np.arange(4, dtype="<i8").reshape(2, 2)
    meta = json.dumps({"dtype": "<i8", "kind": "ndarray", "shape": [2, 2]}, separators=(",", ":"))
    expected = blake3.blake3(
        b"M"
        + struct.pack("<Q", len(meta))
        + meta.encode()
        + b"B"
        + struct.pack("<Q", 32)
        + arr.tobytes()
    ).hexdigest()
    assert hash_data(arr) == f"mj1-blake3:{expected}"


@pytest.mark.parametrize("dtype", ["f8", "f4", "i4", "u2", "c16", "M8[ns]", "m8[us]", "?", "U3"])
def test_numpy_layouts_hash_equal(dtype: str) -> None:
    base = (np.arange(60) % 7).astype(dtype).reshape(3, 4, 5)
    expected = hash_data(base)
    big = np.zeros((6, 8, 10), dtype=dtype)
    big[::2, ::2, ::2] = base
    assert hash_data(np.asfortranarray(base)) == expected
    assert hash_data(big[::2, ::2, ::2]) == expected  # strided view
    assert hash_data(base.transpose(2, 1, 0).copy().transpose(2, 1, 0)) == expected
    if dtype not in ("?", "U3"):
        swapped = base.astype(np.dtype(dtype).newbyteorder(">"))
        assert hash_data(swapped) == expected


def test_chunked_streaming_equals_single_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    arr = np.random.default_rng(1).random((50, 7))
    frame = mixed_frame()
    expected = (hash_data(arr), hash_data(np.asfortranarray(arr)), hash_data(frame))
    monkeypatch.setattr(hash_buffers, "CHUNK_BYTES", 24)
    monkeypatch.setattr(hash_buffers, "VIEW_BYTES", 40)
    assert (hash_data(arr), hash_data(np.asfortranarray(arr)), hash_data(frame)) == expected
    assert expected[0] == expected[1]


def _hash_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "mlops-jupyter-hash"]


def test_background_hashing_streams_exactly_the_specified_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Large buffers are hashed in a worker thread, contiguous data in place in VIEW_BYTES
    pieces, a column-major matrix copied tile by tile, NaNs canonicalised piece by piece: the
    stream is still exactly the documented frames of the canonical C-order bytes."""
    monkeypatch.setattr(hash_frames, "BACKGROUND_BYTES", 1 << 15)
    monkeypatch.setattr(hash_buffers, "CHUNK_BYTES", 1 << 13)
    monkeypatch.setattr(hash_buffers, "VIEW_BYTES", 1 << 15)
    matrix = np.random.default_rng(3).random((3000, 40))
    matrix[17, 3] = np.frombuffer(struct.pack("<Q", 0x7FF8_0000_0000_BEEF), dtype="<f8")[0]
    matrix[2999, 39] = -np.nan
    canonical = matrix.copy()
    canonical[np.isnan(canonical)] = np.nan
    meta = json.dumps(
        {"dtype": "<f8", "kind": "ndarray", "shape": [3000, 40]}, separators=(",", ":")
    )
    expected = blake3.blake3(
        b"M" + struct.pack("<Q", len(meta)) + meta.encode()
        + b"B" + struct.pack("<Q", canonical.nbytes) + canonical.tobytes()
    ).hexdigest()  # fmt: skip
    assert hash_data(matrix) == f"mj1-blake3:{expected}"
    column_major = np.asfortranarray(matrix)
    assert not column_major.flags.c_contiguous
    assert hash_data(column_major) == f"mj1-blake3:{expected}"
    assert hash_data(matrix.astype(">f8")) == f"mj1-blake3:{expected}"
    assert _hash_threads() == []  # the worker is stopped once the hash is returned


def test_an_error_after_a_large_column_stops_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hash_frames, "BACKGROUND_BYTES", 1 << 15)
    frame = pd.DataFrame({"big": np.zeros(10_000), "odd": [object()] * 10_000})
    with pytest.raises(TypeError, match="cannot hash a value of type builtins.object"):
        hash_data(frame)
    assert _hash_threads() == []
    assert hash_data(frame[["big"]]) == hash_data(pd.DataFrame({"big": np.zeros(10_000)}))


def test_frame_layouts_hash_equal() -> None:
    values = np.random.default_rng(2).random((1000, 4))
    consolidated = pd.DataFrame(values, columns=list("abcd"))
    split = pd.DataFrame({"a": values[:, 0].copy()})
    for i, name in enumerate("bcd", start=1):
        split[name] = values[:, i].copy()
    assert consolidated._mgr.nblocks == 1 and split._mgr.nblocks == 4  # really different layouts
    assert hash_data(split) == hash_data(consolidated)

    sliced = consolidated.iloc[100:200]
    fresh = pd.DataFrame(values[100:200].copy(), columns=list("abcd"), index=range(100, 200))
    assert hash_data(sliced) == hash_data(fresh)
    assert hash_data(pd.DataFrame(np.asfortranarray(values), columns=list("abcd"))) == hash_data(
        consolidated
    )


def test_chunked_and_sliced_arrow_strings_hash_equal() -> None:
    words = pd.Series([f"word-{i}" * (i % 5) for i in range(200)], dtype="str")
    chunked = pd.concat([words.iloc[:70], words.iloc[70:150], words.iloc[150:]])
    assert chunked.array._pa_array.num_chunks == 3
    assert hash_data(chunked) == hash_data(words)
    # an offset slice of a bigger buffer vs a compact copy
    sliced = words.iloc[50:120]
    compact = pd.Series(list(words.iloc[50:120]), index=range(50, 120), dtype="str")
    assert hash_data(sliced) == hash_data(compact)


def test_every_single_value_change_is_detected() -> None:
    frame = mixed_frame()
    base = hash_data(frame)
    replacements = {
        "f64": 0.25,
        "i64": 1000,
        "i8": 99,
        "u32": 1,
        "flag": None,  # flip
        "when": pd.Timestamp("2001-01-01 00:00:00.000001"),
        "when_tz": pd.Timestamp("2001-01-01", tz="Europe/Paris"),
        "delta": pd.Timedelta(1, unit="us"),
        "cat": "c",
        "text": "changed",
        "string": "changed",
        "obj": "changed",
        "mixed": "changed",
        "Int64": 42,
        "Float64": 42.5,
        "boolean": None,  # flip
        "arrow_int": 42,
        "period": pd.Period("1999-01", freq="M"),
        "interval": pd.Interval(100, 101),
    }
    seen = {base}
    for column, new in replacements.items():
        for row in (0, len(frame) - 1):  # first and very last row
            changed = frame.copy()
            old = changed[column].iloc[row]
            value = (not old) if new is None else new
            if column == "cat" and old == "c":
                value = "a"
            changed.loc[changed.index[row], column] = value
            assert not changed.equals(frame), (column, row)
            digest = hash_data(changed)
            assert digest not in seen, f"change in {column!r} row {row} not detected"
            seen.add(digest)


def test_labels_dtypes_and_index_are_covered() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]})
    base = hash_data(frame)
    assert hash_data(frame.rename(columns={"a": "A"})) != base
    assert hash_data(frame[["b", "a"]]) != base
    assert hash_data(frame.astype({"a": "float64"})) != base  # equal values, other dtype
    assert hash_data(frame.astype({"a": "Int64"})) != base
    assert hash_data(frame.set_axis([0, 1, 5])) != base  # an index label
    assert hash_data(frame.rename_axis("id")) != base  # the index name
    assert hash_data(frame.iloc[:2]) != base
    # a RangeIndex is the int64 index it stands for
    assert hash_data(frame.set_axis(pd.Index([0, 1, 2], dtype="int64"))) == base
    # column labels by value: object and str column indexes with the same names agree
    frame_obj = frame.set_axis(pd.Index(["a", "b"], dtype=object), axis=1)
    assert hash_data(frame_obj) == base


def test_multiindex_levels_and_names() -> None:
    index = pd.MultiIndex.from_tuples([("x", 1), ("x", 2), ("y", 1)], names=["k", "n"])
    frame = pd.DataFrame({"v": [1.0, 2.0, 3.0]}, index=index)
    base = hash_data(frame)
    other = pd.MultiIndex.from_tuples([("x", 1), ("x", 2), ("y", 9)], names=["k", "n"])
    assert hash_data(frame.set_axis(other)) != base
    assert hash_data(frame.rename_axis(["k", "m"])) != base
    columns = pd.MultiIndex.from_tuples([("m", "v")])
    assert hash_data(frame.set_axis(columns, axis=1)) != base


def test_nan_and_none_are_deterministic() -> None:
    quiet = np.array([1.0, np.nan])
    payload = np.array([1.0, 0.0])
    payload.view(np.uint64)[1] = 0x7FF8_0000_DEAD_BEEF  # a NaN with another bit pattern
    negative = np.array([1.0, -np.nan])
    assert np.isnan(payload[1]) and np.isnan(negative[1])
    assert hash_data(payload) == hash_data(quiet) == hash_data(negative)
    assert hash_data(np.array([1.0, 0.0])) != hash_data(quiet)
    assert hash_data(np.array([0.0])) != hash_data(np.array([-0.0]))
    obj_none = pd.Series(["a", None], dtype=object)
    obj_nan = pd.Series(["a", np.nan], dtype=object)
    assert hash_data(obj_none) == hash_data(obj_nan)  # both missing, as pandas sees them
    assert hash_data(obj_none) != hash_data(pd.Series(["a", "None"], dtype=object))
    assert hash_data(obj_none) != hash_data(pd.Series(["a", ""], dtype=object))
    # nullable arrays: whatever sits under the mask does not matter, the mask does
    masked = pd.array([1, 2], dtype="Int64")
    masked[1] = pd.NA
    assert hash_data(pd.Series(masked)) == hash_data(pd.Series([1, None], dtype="Int64"))
    assert hash_data(pd.Series([1, 0], dtype="Int64")) != hash_data(pd.Series(masked))


def test_hash_in_subprocess_equals_parent() -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from test_hashing import mixed_frame; from mlops_jupyter import hash_data;"
        "print(hash_data(mixed_frame()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == hash_data(mixed_frame())


def test_lists_tuples_series_index() -> None:
    a, b = np.arange(3), np.arange(3) + 1
    assert hash_data([a, b]) == hash_data([a.copy(), b.copy()])
    assert hash_data([a, b]) != hash_data([b, a])
    assert hash_data([a, b]) != hash_data((a, b))
    assert hash_data([a]) != hash_data(a)
    series = pd.Series([1.0, 2.0], name="y")
    assert hash_data(series) != hash_data(series.rename("z"))
    assert hash_data(series) != hash_data(series.to_frame())
    assert hash_data(pd.Index([1, 2])) != hash_data(pd.Index([1, 3]))


def test_no_stale_hash_after_in_place_mutation() -> None:
    arr = np.zeros(1000)
    frame = pd.DataFrame({"x": np.zeros(1000)})
    before = (hash_data(arr), hash_data(frame))
    arr[-1] = 1.0
    frame.iloc[-1, 0] = 1.0
    assert hash_data(arr) != before[0]
    assert hash_data(frame) != before[1]


def test_files_hash_by_content(tmp_path: Path) -> None:
    data = np.random.default_rng(3).bytes(100_000)
    first = tmp_path / "a.csv"
    second = tmp_path / "copy-with-other-name.csv"
    first.write_bytes(data)
    second.write_bytes(data)
    assert hash_data(first) == hash_data(str(second))
    second.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # the very last byte
    assert hash_data(second) != hash_data(first)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert hash_data(empty) != hash_data(first)

    folder = tmp_path / "parquet"
    (folder / "part").mkdir(parents=True)
    (folder / "part" / "0.bin").write_bytes(b"zero")
    (folder / "1.bin").write_bytes(b"one")
    base = hash_data(folder)
    (folder / "1.bin").rename(folder / "2.bin")
    assert hash_data(folder) != base  # relative paths are part of a directory's hash


def test_missing_path_and_unsupported_types() -> None:
    with pytest.raises(FileNotFoundError, match="no-such-file.csv"):
        hash_data("no-such-file.csv")
    for bad in (42, {"a": 1}, 3.5, None, object(), pa.scalar(1), [1, 2]):
        with pytest.raises(TypeError, match="hash_data\\(\\) takes a pandas DataFrame"):
            hash_data(bad)
    with pytest.raises(TypeError, match="long double|float64"):
        hash_data(np.zeros(3, dtype=np.longdouble))


def test_unhashable_object_cell_names_its_type() -> None:
    class Opaque:
        pass

    frame = pd.DataFrame({"x": [1, Opaque()]})
    with pytest.raises(TypeError, match="Opaque"):
        hash_data(frame)


def test_object_cells_with_arrays_and_containers() -> None:
    cells = pd.Series([np.arange(3), {"k": [1, 2]}, {1, 2}, None], dtype=object)
    same = pd.Series([np.arange(3), {"k": [1, 2]}, {2, 1}, None], dtype=object)
    other = pd.Series([np.arange(3), {"k": [1, 3]}, {2, 1}, None], dtype=object)
    assert hash_data(cells) == hash_data(same)
    assert hash_data(cells) != hash_data(other)


def test_zoned_datetimes_and_periods_hash_their_int64_values() -> None:
    """A zoned datetime column is hashed from its int64 values with its unit and zone (it
    went through Python objects at microsecond precision): a nanosecond, the zone, the unit
    and a missing value each change the hash; periods likewise with their frequency."""
    when = pd.Series(pd.date_range("2024-03-30", periods=4, freq="7h", tz="Europe/Paris"))
    when = when.astype("datetime64[ns, Europe/Paris]")
    base = hash_data(when)
    later = when.copy()
    later.iloc[2] += pd.Timedelta(1, unit="ns")
    missing = when.copy()
    missing.iloc[1] = pd.NaT
    assert len({base, hash_data(later), hash_data(missing)}) == 3
    assert hash_data(when.dt.tz_convert("UTC")) != base  # the same instants in another zone
    assert hash_data(when.astype("datetime64[us, Europe/Paris]")) != base
    assert hash_data(when.copy()) == base and hash_data(missing.copy()) == hash_data(missing)
    months = pd.Series(pd.period_range("2024-01", periods=4, freq="M"))
    assert hash_data(months) == hash_data(months.copy())
    assert hash_data(months) != hash_data(pd.Series(pd.period_range("2024-01", periods=4)))
