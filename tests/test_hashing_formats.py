"""hash_data on polars, pyarrow, scipy.sparse and lists of strings; their names in profiles and
SHAP explanations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from scipy import sparse

from mlops_jupyter import hash_data
from mlops_jupyter.capture import hash_buffers
from mlops_jupyter.capture.explain import explain, sample_rows
from mlops_jupyter.capture.profile import describe, kind_of


def polars_frame(n: int = 8) -> pl.DataFrame:
    """A column of every polars dtype family, with nulls where they can be."""
    return pl.DataFrame(
        {
            "x1": pl.Series([float(i) / 4 for i in range(n - 1)] + [None], dtype=pl.Float64),
            "x2": pl.Series(list(range(n)), dtype=pl.Int64),
            "x3": pl.Series([i % 3 for i in range(n)], dtype=pl.UInt8),
            "flag": [i % 2 == 0 for i in range(n - 1)] + [None],
            "text": [f"word {i}" * (i % 3) for i in range(n - 1)] + [None],
            "cat": pl.Series(["a", "b", "c", "a"] * (n // 4), dtype=pl.Categorical),
            "enum": pl.Series(["lo", "hi"] * (n // 2), dtype=pl.Enum(["lo", "hi", "mid"])),
            "day": [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(n)],
            "when": pl.Series(range(n), dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "price": pl.Series([f"{i}.25" for i in range(n)]).cast(pl.Decimal(10, 2)),
            "tokens": [[f"t{i}", f"t{i + 1}"] for i in range(n - 1)] + [None],
            "point": [{"x": i, "y": -i} for i in range(n)],
            "raw": [bytes([i, i + 1]) for i in range(n)],
        }
    )


def rechunked(frame: pl.DataFrame, cuts: tuple[int, ...]) -> pl.DataFrame:
    bounds = [0, *cuts, frame.height]
    parts = [frame[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]
    return pl.concat(parts, rechunk=False)


# ----------------------------------------------------------------- polars


def test_polars_chunking_does_not_change_the_hash() -> None:
    frame = polars_frame(40)
    chunked = rechunked(frame, (3, 17, 30))
    assert chunked.n_chunks() == 4 and frame.n_chunks() == 1  # really different layouts
    assert hash_data(chunked) == hash_data(frame)
    assert hash_data(chunked.rechunk()) == hash_data(frame)
    assert hash_data(chunked["text"]) == hash_data(frame["text"])
    # a slice with an offset into bigger buffers vs a compact copy of the same rows
    sliced = frame[5:25]
    compact = pl.DataFrame({name: sliced[name].to_list() for name in sliced.columns}).cast(
        sliced.schema
    )
    assert hash_data(sliced) == hash_data(compact)


def test_polars_chunked_streaming_equals_single_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = polars_frame(40)
    expected = hash_data(frame)
    monkeypatch.setattr(hash_buffers, "CHUNK_BYTES", 24)
    assert hash_data(rechunked(frame, (11,))) == expected


def test_polars_every_single_value_change_is_detected() -> None:
    frame = polars_frame()
    last = frame.height - 1
    replacements = {
        "x1": 99.5,
        "x2": -1,
        "x3": 7,
        "flag": "flip",
        "text": "changed",
        "cat": "b",
        "enum": "mid",
        "day": dt.date(1999, 1, 1),
        "when": dt.datetime(1999, 1, 1, tzinfo=dt.timezone.utc),
        "price": None,
        "tokens": ["changed"],
        "point": {"x": 100, "y": 0},
        "raw": b"\xff",
    }
    seen = {hash_data(frame)}
    for column, new in replacements.items():
        for row in (0, last):  # the first and the very last row
            values = frame[column].to_list()
            values[row] = (values[row] is not True) if new == "flip" else new
            changed = frame.with_columns(pl.Series(column, values, dtype=frame.schema[column]))
            assert not changed.equals(frame), (column, row)
            digest = hash_data(changed)
            assert digest not in seen, f"change in {column!r} row {row} not detected"
            seen.add(digest)


def test_polars_names_and_dtypes_are_covered() -> None:
    frame = pl.DataFrame({"x1": [1, 2, 3], "x2": [0.5, 1.5, 2.5], "x3": ["a", "b", "a"]})
    base = hash_data(frame)
    assert hash_data(frame.rename({"x3": "x4"})) != base
    assert hash_data(frame.select("x2", "x1", "x3")) != base
    assert hash_data(frame.cast({"x1": pl.Int32})) != base
    assert hash_data(frame.cast({"x1": pl.Float64})) != base  # equal values, other dtype
    assert hash_data(frame.cast({"x3": pl.Categorical})) != base
    assert hash_data(frame.cast({"x3": pl.Enum(["a", "b"])})) != hash_data(
        frame.cast({"x3": pl.Categorical})
    )
    assert hash_data(frame.cast({"x3": pl.Enum(["a", "b"])})) != hash_data(
        frame.cast({"x3": pl.Enum(["a", "b", "c"])})  # the categories are part of the dtype
    )
    assert hash_data(frame.head(2)) != base
    series = frame["x2"]
    assert hash_data(series) != hash_data(series.rename("other"))
    assert hash_data(series) != hash_data(frame.select("x2"))


def test_polars_frame_and_arrow_table_with_the_same_columns_agree() -> None:
    frame = polars_frame(12).drop("enum")  # an Enum's categories are polars-only
    table = frame.to_arrow()
    views = frame.to_arrow(compat_level=pl.CompatLevel.newest())
    assert pa.types.is_string_view(views.schema.field("text").type)  # really another layout
    assert pa.types.is_large_string(table.schema.field("text").type)
    assert hash_data(frame) == hash_data(table) == hash_data(views)
    # but not a pandas frame of the same data: that has an index
    assert hash_data(frame) != hash_data(frame.select("x2").to_pandas())


def test_polars_object_and_int128_columns_are_hashed_by_value() -> None:
    big = pl.DataFrame({"n": pl.Series([1, 2, 3], dtype=pl.Int128)})
    assert hash_data(big) == hash_data(pl.DataFrame({"n": pl.Series([1, 2, 3], dtype=pl.Int128)}))
    assert hash_data(big) != hash_data(pl.DataFrame({"n": pl.Series([1, 2, 4], dtype=pl.Int128)}))
    assert hash_data(big) != hash_data(big.cast(pl.Int64))
    # Object columns export raw PyObject pointers to Arrow: hashed by value, never by address
    first = pl.DataFrame({"o": pl.Series([(1, 2), "x"], dtype=pl.Object)})
    second = pl.DataFrame({"o": pl.Series([(1, 2), "x"], dtype=pl.Object)})
    assert hash_data(first) == hash_data(second)
    assert hash_data(first) != hash_data(
        pl.DataFrame({"o": pl.Series([(1, 3), "x"], dtype=pl.Object)})
    )

    class Opaque:
        pass

    with pytest.raises(TypeError, match="Opaque"):
        hash_data(pl.DataFrame({"o": pl.Series([Opaque()], dtype=pl.Object)}))
    with pytest.raises(TypeError, match="collect"):
        hash_data(pl.DataFrame({"a": [1]}).lazy())


# ----------------------------------------------------------------- pyarrow


def arrow_table() -> pa.Table:
    return pa.table(
        {
            "x1": pa.array([1.5, None, 3.0, float("nan"), 5.0, 6.0]),
            "x2": pa.array([1, 2, 3, 4, 5, 6], type=pa.int64()),
            "x3": pa.array(["a", "bb", None, "", "é", "last"]),
            "cat": pa.array(["u", "v", "u", "w", "v", "u"]).dictionary_encode(),
            "nested": pa.array([[1], [2, 3], None, [], [4], [5, 6]]),
        }
    )


def test_arrow_chunking_slicing_and_widths_do_not_change_the_hash() -> None:
    table = arrow_table()
    expected = hash_data(table)
    chunked = pa.concat_tables([table.slice(0, 2), table.slice(2, 1), table.slice(3)])
    assert chunked.column("x3").num_chunks == 3
    assert hash_data(chunked) == expected
    assert hash_data(table.combine_chunks()) == expected
    assert hash_data(table.to_batches()[0]) == expected  # a RecordBatch is a one-chunk table
    large = table.cast(
        pa.schema(
            [
                ("x1", pa.float64()),
                ("x2", pa.int64()),
                ("x3", pa.string_view()),
                ("cat", pa.dictionary(pa.int8(), pa.large_string())),
                ("nested", pa.large_list(pa.field("element", pa.int64(), nullable=False))),
            ]
        )
    )
    assert hash_data(large) == expected
    column = table.column("x3")
    assert hash_data(column) == hash_data(column.combine_chunks())
    assert hash_data(chunked.column("x3")) == hash_data(column)
    # an offset slice of bigger buffers vs a compact copy
    assert hash_data(table.slice(1, 4)) == hash_data(
        pa.Table.from_pylist(table.slice(1, 4).to_pylist(), schema=table.schema)
    )


def test_arrow_every_value_name_and_type_change_is_detected() -> None:
    table = arrow_table()
    base = hash_data(table)
    seen = {base}
    for position, name in enumerate(table.column_names):
        values = table.column(name).to_pylist()
        values[-1] = values[0] if values[0] != values[-1] else None  # the very last row
        changed = table.set_column(position, name, pa.array(values, type=table.column(name).type))
        assert not changed.equals(table), name
        digest = hash_data(changed)
        assert digest not in seen, f"change in {name!r} not detected"
        seen.add(digest)
    assert hash_data(table.rename_columns(["x1", "x2", "x9", "cat", "nested"])) != base
    assert hash_data(table.set_column(1, "x2", table.column("x2").cast(pa.int32()))) != base
    assert hash_data(table.set_column(1, "x2", table.column("x2").cast(pa.float64()))) != base
    decoded = table.set_column(3, "cat", table.column("cat").cast(pa.string()))
    assert hash_data(decoded) != base  # dictionary encoding is a (categorical) type
    when = pa.array([0, 1], type=pa.timestamp("us", tz="UTC"))
    assert hash_data(when) != hash_data(when.cast(pa.timestamp("us", tz="Europe/Paris")))
    assert hash_data(table.column("x2")) != hash_data(table.select(["x2"]))


# ----------------------------------------------------------------- scipy.sparse

DENSE = np.array(
    [
        [0.0, 1.5, 0.0, 2.0],
        [0.0, 0.0, 0.0, 0.0],
        [3.0, 0.0, 0.0, 4.25],
    ]
)


def messy_coo() -> sparse.coo_matrix:
    """DENSE with duplicate entries (1.0 + 0.5), explicit zeros and unsorted coordinates."""
    data = np.array([4.25, 1.0, 3.0, 0.5, 0.0, 2.0, 0.0, -2.0, 2.0])
    rows = np.array([2, 0, 2, 0, 1, 0, 2, 1, 1])
    cols = np.array([3, 1, 0, 1, 2, 3, 1, 0, 0])
    return sparse.coo_matrix((data, (rows, cols)), shape=DENSE.shape)


def test_sparse_formats_duplicates_and_explicit_zeros_hash_alike() -> None:
    messy = messy_coo()
    assert np.array_equal(messy.toarray(), DENSE) and messy.nnz == 9
    expected = hash_data(sparse.csr_matrix(DENSE))
    forms = [
        messy,
        messy.tocsr(),  # duplicates still there: csr from coo keeps explicit zeros
        messy.tocsc(),
        sparse.csc_array(DENSE),
        sparse.coo_array(DENSE),
        sparse.lil_matrix(DENSE),
        sparse.dok_array(DENSE),
        sparse.bsr_matrix(DENSE),
        sparse.dia_matrix(DENSE),
    ]
    for form in forms:
        assert hash_data(form) == expected, form.format
    wide = sparse.csr_matrix(DENSE)
    wide.indices = wide.indices.astype(np.int64)
    wide.indptr = wide.indptr.astype(np.int64)
    assert hash_data(wide) == expected  # index width is layout


def test_sparse_hash_does_not_trust_a_stale_format_flag() -> None:
    matrix = sparse.csr_matrix(DENSE)
    expected = hash_data(matrix)
    assert matrix.has_canonical_format  # cached by scipy now
    matrix.indices[:2] = matrix.indices[:2][::-1].copy()  # unsort row 0 in place
    matrix.data[:2] = matrix.data[:2][::-1].copy()
    assert np.array_equal(matrix.toarray(), DENSE)
    assert hash_data(matrix) == expected


def test_sparse_changes_are_detected_and_sparse_is_not_dense() -> None:
    base = sparse.csr_matrix(DENSE)
    digest = hash_data(base)
    last = base.copy()
    last.data[-1] = 4.5  # the last nonzero
    moved = sparse.csr_matrix(np.array([[0, 1.5, 0, 2], [0, 0, 0, 0], [3, 0, 4.25, 0]]))
    taller = sparse.csr_matrix(np.vstack([DENSE, np.zeros((1, 4))]))  # one more empty row
    for other in (last, moved, taller, base.astype(np.float32), base.astype(np.int64)):
        assert hash_data(other) != digest
    assert hash_data(DENSE) != digest
    assert hash_data(sparse.csr_matrix(DENSE.T)) != digest
    assert hash_data(sparse.coo_array(DENSE[0])) == hash_data(sparse.csr_array(DENSE[0]))
    assert hash_data(sparse.coo_array(DENSE[0])) != hash_data(sparse.coo_array(DENSE[:1]))


# ----------------------------------------------------------------- lists of strings


def test_a_list_of_documents_is_data_not_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # an empty directory: no document names a file here
    docs = ["the first document", "README.md", "labels.csv", "é and ∑"]
    digest = hash_data(docs)
    assert digest.startswith("mj1-blake3:")
    assert hash_data(list(docs)) == digest
    assert hash_data(docs[::-1]) != digest
    assert hash_data(tuple(docs)) != digest
    assert hash_data(docs[:-1] + ["é and ∑ "]) != digest  # the last character of the last one
    assert hash_data(["a", None]) != hash_data(["a", ""])
    assert hash_data([["tok", "ens"], ["more"]]) != hash_data([["tok"], ["ens", "more"]])
    # a file called like a document changes nothing: nothing is read
    Path("README.md").write_text("content")
    assert hash_data(docs) == digest
    Path("README.md").write_text("other content")
    assert hash_data(docs) == digest
    # a single string still is a path
    assert hash_data("README.md") != hash_data(Path("labels.csv").resolve().parent)
    with pytest.raises(FileNotFoundError, match="labels.csv"):
        hash_data("labels.csv")
    with pytest.raises(TypeError, match="only a single str or os.PathLike is a path"):
        hash_data([np.arange(3), "README.md"])
    with pytest.raises(TypeError, match="only a single str or os.PathLike is a path"):
        hash_data([Path("README.md")])


def test_lists_of_strings_are_not_series_and_detect_one_changed_value() -> None:
    docs = ["a", "bb", None, "ccc"]
    from_pandas = hash_data(pd.Series(docs, dtype=object))
    assert hash_data(docs) != from_pandas  # the Series has an index and a name
    assert hash_data(docs) == hash_data(["a", "bb", None, "ccc"])
    many = [f"document number {i}" for i in range(5000)]
    changed = many[:-1] + ["document number 5000"]
    assert hash_data(many) != hash_data(changed)


# ----------------------------------------------------------------- profiles and SHAP names


def test_profiles_report_polars_and_arrow_column_names() -> None:
    frame = pl.DataFrame({"x1": [1.0, 2.0, 4.0], "x2": [1, None, 3], "x3": ["a", "b", "a"]})
    shape, schema, profile = describe(frame)
    assert shape == [3, 3]
    assert schema == [
        {"name": "x1", "dtype": "Float64"},
        {"name": "x2", "dtype": "Int64"},
        {"name": "x3", "dtype": "String"},
    ]
    assert list(profile["columns"]) == ["x1", "x2", "x3"]
    assert profile["rows"] == 3
    assert profile["columns"]["x1"]["max"] == 4.0
    assert profile["columns"]["x2"]["nulls"] == 1
    assert profile["columns"]["x3"]["top"] == [["a", 2], ["b", 1]]
    assert kind_of(frame) == "polars.DataFrame"

    shape, schema, profile = describe(frame.to_arrow())
    assert shape == [3, 3]
    assert schema == [
        {"name": "x1", "dtype": "double"},
        {"name": "x2", "dtype": "int64"},
        {"name": "x3", "dtype": "large_string"},
    ]
    assert list(profile["columns"]) == ["x1", "x2", "x3"]
    assert kind_of(frame.to_arrow()) == "pyarrow.Table"

    shape, schema, profile = describe(frame["x2"])
    assert (shape, schema) == ([3], [{"name": "x2", "dtype": "Int64"}])
    assert profile["columns"]["x2"]["mean"] == 2.0

    shape, schema, profile = describe(sparse.csr_matrix(DENSE))
    assert (shape, schema) == ([3, 4], None)
    assert profile["nonzeros"] == 4 and profile["rows"] == 3


def _fitted_on_polars() -> tuple[object, pl.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pl.DataFrame(
        {"x1": rng.normal(size=120), "x2": rng.normal(size=120), "x3": rng.normal(size=120)}
    )
    y = (X["x2"].to_numpy() + 0.1 * X["x3"].to_numpy() > 0).astype(int)  # x2 matters most
    return LogisticRegression().fit(X, y), X


def test_shap_names_the_columns_of_a_polars_frame() -> None:
    model, X = _fitted_on_polars()
    result = explain(model, X, X)
    assert result.status == "ok", result.reason
    assert result.feature_names == ["x1", "x2", "x3"]
    assert result.top_features(1)[0][0] == "x2"
    # as the tracker calls it: on private row samples taken with sample_rows
    sample, background = sample_rows(X, 50), sample_rows(X, 100)
    assert isinstance(sample, pl.DataFrame) and sample.height == 50
    result = explain(model, sample, background)
    assert result.status == "ok", result.reason
    assert result.feature_names == ["x1", "x2", "x3"]
    assert result.top_features(1)[0][0] == "x2"


def test_shap_names_the_columns_of_an_arrow_table_and_of_converted_data() -> None:
    model, X = _fitted_on_polars()
    table = X.to_arrow()
    result = explain(model, sample_rows(table, 50), sample_rows(table, 100))
    assert result.status == "ok", result.reason
    assert result.feature_names == ["x1", "x2", "x3"]
    assert result.top_features(1)[0][0] == "x2"
    # data converted to numpy on the way (as users do): the model's fitted names
    result = explain(model, X.to_numpy(), X.to_numpy())
    assert result.feature_names == ["x1", "x2", "x3"]
    assert result.top_features(1)[0][0] == "x2"
