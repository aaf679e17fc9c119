import doctest

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfstream.sources.pandas as pandas_module
from tfstream.sources.pandas import PandasSource, from_pandas
from tfstream.sources.report import DataError
from tfstream.sources.schema import SchemaDriftError, SchemaError


def _frame(n=1000, start=0, seed=0):
    """Plain and nullable pandas dtypes, with missing values wherever the dtype allows."""
    rng = np.random.default_rng(seed)
    ids = np.arange(start, start + n)
    gaps = rng.random(n) < 0.1
    words = np.array(["alpha", "beta", "gamma", "délta", ""], dtype=object)[ids % 5]
    return pd.DataFrame(
        {
            "id": ids,
            "f64": np.where(gaps, np.nan, rng.normal(size=n)),
            "f32": rng.normal(size=n).astype(np.float32),
            "nf": pd.array(np.where(gaps, None, ids / 4), dtype="Float64"),
            "u8": (ids % 200).astype(np.uint8),
            "flag": ids % 3 == 0,
            "word": pd.Series(np.where(gaps, None, words), dtype=object),
            "text": pd.Series(np.where(gaps, None, words), dtype="string"),
            "cat": pd.Categorical(np.where(gaps, None, words)),
        }
    )


_DTYPES = {
    "id": "int64",
    "f64": "float32",
    "f32": "float32",
    "nf": "float32",
    "u8": "int64",
    "flag": "int64",
    "word": "string",
    "text": "string",
    "cat": "string",
}


def _expected(frame: pd.DataFrame, name: str, dtype: str) -> np.ndarray:
    series = frame[name]
    if dtype == "string":
        return np.array(["" if pd.isna(v) else v for v in series], dtype=object)
    return series.to_numpy(dtype="float64", na_value=np.nan).astype(dtype)


def _collect(source, **kwargs):
    chunks = list(source.iter_chunks(**kwargs))
    return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}


def _labels(dataset):
    return np.concatenate([label for _, label in dataset.as_numpy_iterator()])


def test_dataframe_values_and_dtypes():
    frame = _frame()
    src = from_pandas(frame)
    assert {n: c.dtype for n, c in src.schema.items()} == _DTYPES
    got = _collect(src)
    for name, dtype in _DTYPES.items():
        assert got[name].dtype == src.schema[name].numpy_dtype, name
        np.testing.assert_array_equal(got[name], _expected(frame, name, dtype), err_msg=name)
    assert frame["f64"].isna().sum() > 50 and frame["word"].isna().sum() > 50
    assert all(type(v) is str for v in got["cat"])
    assert src.report().rows_ok == 1000


def test_big_frame_is_sliced_and_label_split():
    frame = _frame(150_000)
    src = from_pandas(frame, label="id", columns=["f64", "word"])
    sizes = [len(c["id"]) for c in src.iter_chunks()]
    assert sizes == [65_536, 65_536, 150_000 - 2 * 65_536]
    features, label = next(iter(src.dataset(1000)))
    assert set(features) == {"f64", "word"}
    np.testing.assert_array_equal(label.numpy(), np.arange(1000))
    np.testing.assert_array_equal(_labels(src.dataset(4096)), frame["id"].to_numpy())


def test_list_of_frames_is_readable_for_many_epochs():
    frames = [_frame(300, start=k * 300, seed=k) for k in range(4)]
    src = from_pandas(frames, label="id")
    labels = _labels(src.dataset(128, epochs=2))
    np.testing.assert_array_equal(labels, np.tile(np.arange(1200), 2))
    got = _collect(src)
    whole = pd.concat(frames, ignore_index=True)
    for name, dtype in _DTYPES.items():
        np.testing.assert_array_equal(got[name], _expected(whole, name, dtype), err_msg=name)


def test_one_shot_generator_first_pass_then_clear_error():
    frames = [_frame(100, start=k * 100) for k in range(5)]
    src = from_pandas((f for f in frames), label="id")
    np.testing.assert_array_equal(_labels(src.dataset(64)), np.arange(500))
    with pytest.raises(RuntimeError, match=r"exhausted.*zero-argument callable"):
        _collect(src)
    src = from_pandas((f for f in frames), label="id")
    with pytest.raises(tf.errors.OpError, match="exhausted"):
        _labels(src.dataset(64, epochs=2))


def test_callable_gives_a_fresh_stream_each_pass():
    calls = []

    def make():
        calls.append(1)
        return (_frame(100, start=k * 100) for k in range(3))

    src = from_pandas(make, label="id")
    assert len(calls) == 1  # the first chunk is peeked; the first pass reuses that stream
    labels = _labels(src.dataset(50, epochs=3))
    np.testing.assert_array_equal(labels, np.tile(np.arange(300), 3))
    assert len(calls) == 3


def test_read_csv_chunks(tmp_path):
    path = tmp_path / "data.csv"
    frame = _frame(2000)[["id", "f64", "word", "u8"]]
    frame.loc[:600, "word"] = None  # the first chunks hold no word at all: read_csv types float64
    frame.to_csv(path, index=False)
    whole = pd.read_csv(path, keep_default_na=False, na_values=[""])
    src = from_pandas(pd.read_csv(path, chunksize=250), schema={"word": "string"}, label="id")
    assert pd.read_csv(path, chunksize=250).get_chunk()["word"].dtype == np.float64
    got = _collect(src)
    for name in ["f64", "word", "u8"]:
        want = _expected(whole, name, src.schema[name].dtype)
        np.testing.assert_array_equal(got[name], want, err_msg=name)
    assert src.report().rows_ok == 2000
    with pytest.raises(RuntimeError, match="exhausted"):
        _collect(src)
    # Without schema=, the guess from the empty first chunk is reported as drift.
    with pytest.raises(SchemaDriftError, match=r"'word' is .* in chunk 2 but float64 in chunk 0"):
        _collect(from_pandas(pd.read_csv(path, chunksize=250)))
    # Re-readable through a callable.
    src = from_pandas(lambda: pd.read_csv(path, chunksize=250), schema={"word": "string"})
    assert len(_collect(src)["id"]) == len(_collect(src)["id"]) == 2000


def test_small_chunks_are_joined_up_to_chunk_rows():
    frames = [_frame(50, start=k * 50) for k in range(100)]
    src = from_pandas(iter(frames), chunk_rows=1000)
    sizes = [len(c["id"]) for c in src.iter_chunks()]
    assert sizes == [1000] * 5


def test_dict_of_memmaps(tmp_path):
    n = 200_000
    x = np.memmap(tmp_path / "x.f32", dtype=np.float32, mode="w+", shape=(n,))
    x[:] = np.linspace(-1, 1, n, dtype=np.float32)
    y = np.memmap(tmp_path / "y.i8", dtype=np.int8, mode="w+", shape=(n,))
    y[:] = np.arange(n) % 2
    x.flush(), y.flush()
    x = np.memmap(tmp_path / "x.f32", dtype=np.float32, mode="r", shape=(n,))
    y = np.memmap(tmp_path / "y.i8", dtype=np.int8, mode="r", shape=(n,))
    src = from_pandas({"x": x, "y": y}, label="y")
    assert {k: c.dtype for k, c in src.schema.items()} == {"x": "float32", "y": "int64"}
    chunks = list(src.iter_chunks())
    assert [len(c["x"]) for c in chunks] == [65_536] * 3 + [n - 3 * 65_536]
    assert all(np.shares_memory(c["x"], x) for c in chunks)  # views: never loaded whole
    np.testing.assert_array_equal(np.concatenate([c["x"] for c in chunks]), np.asarray(x))
    np.testing.assert_array_equal(_labels(src.dataset(10_000)), np.asarray(y, np.int64))


def test_large_2d_memmap_is_streamed_in_bounded_chunks(tmp_path):
    n, k = 300_000, 5
    data = np.memmap(tmp_path / "big.f64", dtype=np.float64, mode="w+", shape=(n, k))
    for start in range(0, n, 100_000):
        rows = np.arange(start, min(start + 100_000, n))
        data[rows] = rows[:, None] * 10 + np.arange(k)
    data.flush()
    data = np.memmap(tmp_path / "big.f64", dtype=np.float64, mode="r", shape=(n, k))
    src = from_pandas(data, schema={"x0": "float64"})
    assert list(src.schema) == ["x0", "x1", "x2", "x3", "x4"]
    total = 0
    for chunk in src.iter_chunks():
        rows = len(chunk["x0"])
        assert rows <= 65_536
        np.testing.assert_array_equal(chunk["x0"], (np.arange(total, total + rows) * 10.0))
        np.testing.assert_array_equal(chunk["x4"], np.asarray(data[total : total + rows, 4]))
        total += rows
    assert total == n
    named = from_pandas(data, columns=["a", "b", "c", "d", "label"], label="label")
    assert named.feature_names == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="must name each of its 5 columns"):
        from_pandas(data, columns=["a", "b"])
    parts = from_pandas([data[:10], data[10:30]], columns=list("abcde"), label="e")
    np.testing.assert_array_equal(_labels(parts.dataset(7)), np.asarray(data[:30, 4]))


def test_null_in_int64_column_raise_and_skip():
    frames = [
        pd.DataFrame({"n": pd.array([1, 2, 3], dtype="Int64"), "s": ["a", "b", "c"]}),
        pd.DataFrame({"n": pd.array([4, None, 6], dtype="Int64"), "s": ["d", "e", None]}),
        pd.DataFrame({"n": [7.0, np.nan, 9.5], "s": ["g", "h", "i"]}),
    ]
    with pytest.raises(DataError, match=r"chunk 1, record 4: missing value in int64 column 'n'"):
        _collect(from_pandas(frames))
    src = from_pandas(frames, on_error="skip")
    got = _collect(src)
    np.testing.assert_array_equal(got["n"], [1, 2, 3, 4, 6, 7])
    assert list(got["s"]) == ["a", "b", "c", "d", "", "g"]
    report = src.report()
    assert (report.rows_read, report.rows_ok, report.rows_rejected) == (9, 6, 3)
    assert [r.record for r in report.rejected] == [4, 7, 8]
    assert "not an integer" in report.rejected[2].error
    assert "float32" in report.rejected[0].error
    got = _collect(from_pandas(frames, schema={"n": "float32"}))
    np.testing.assert_array_equal(got["n"], [1, 2, 3, 4, np.nan, 6, 7, np.nan, 9.5])


def test_schema_drift_names_chunks():
    frames = [_frame(10, start=10 * k) for k in range(6)]
    frames[5] = frames[5].assign(f64=["x"] * 10)
    with pytest.raises(SchemaDriftError, match=r"'f64' is .* in chunk 5 but float64 in chunk 0"):
        from_pandas(frames)  # a list is checked whole at construction
    with pytest.raises(SchemaDriftError, match="chunk 5"):
        _collect(from_pandas(iter(frames)))
    frames[5] = frames[4].assign(extra=1.0)
    with pytest.raises(SchemaDriftError, match=r"chunk 5 has columns .*extra: \['extra'\]"):
        from_pandas(frames)
    assert len(_collect(from_pandas(frames, columns=["id", "f64"]))["id"]) == 60
    # An all-missing column in a later chunk is not drift.
    frames[5] = frames[4].assign(word=np.nan)
    assert list(_collect(from_pandas(frames))["word"][-10:]) == [""] * 10


def test_sharding_by_record_and_seeded_shuffle():
    src = from_pandas(_frame(3000), label="id")
    shards = []
    for i in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i)
        shards.append(_labels(src.dataset(100, input_context=context)))
    assert not set(shards[0]) & set(shards[1])
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(3000))
    first = _labels(src.dataset(100, shuffle=True, seed=3, shuffle_buffer=500))
    np.testing.assert_array_equal(
        first, _labels(src.dataset(100, shuffle=True, seed=3, shuffle_buffer=500))
    )
    assert not np.array_equal(first, np.arange(3000))
    np.testing.assert_array_equal(np.sort(first), np.arange(3000))


def test_mixed_objects_and_schema_overrides():
    frame = pd.DataFrame(
        {
            "mixed": pd.Series(["a", 1, None, 2.5, b"z"], dtype=object),
            "nums": ["1", "2.5", "x", None, "4"],
            "when": pd.to_datetime(["1970-01-01", "1970-01-02", None, "1970-01-01", None]),
            3: np.arange(5),
        }
    )
    with pytest.raises(
        SchemaError, match=r"'when' has dtype datetime64.*columns=\['mixed', 'nums', '3'\]"
    ):
        from_pandas(frame)
    src = from_pandas(
        frame, schema={"nums": "float32", "when": "string"}, on_error="skip", label="3"
    )
    got = _collect(src)
    assert list(got["mixed"]) == ["a", "1", "2.5", "z"]  # row 2 ("x" in nums) is rejected
    np.testing.assert_array_equal(got["nums"], np.array([1, 2.5, np.nan, 4], np.float32))
    assert got["when"][1].startswith("1970-01-02") and got["when"][3] == ""
    np.testing.assert_array_equal(got["3"], [0, 1, 3, 4])
    assert [r.record for r in src.report().rejected] == [2]


def test_input_errors():
    with pytest.raises(TypeError, match="Received: int"):
        from_pandas(5)
    with pytest.raises(TypeError, match="to_frame"):
        from_pandas(pd.Series([1, 2]))
    with pytest.raises(TypeError, match="1-D numpy array"):
        from_pandas({"a": [1, 2]})
    with pytest.raises(ValueError, match="equal lengths"):
        from_pandas({"a": np.zeros(2), "b": np.zeros(3)})
    with pytest.raises(ValueError, match="at least one"):
        from_pandas([])
    with pytest.raises(TypeError, match="chunk 1: expected a DataFrame"):
        from_pandas([_frame(3), "oops"])
    with pytest.raises(ValueError, match="`label` must name a column"):
        from_pandas(_frame(3), label="nope")
    with pytest.raises(ValueError, match="chunk_rows=0"):
        from_pandas(_frame(3), chunk_rows=0)
    assert isinstance(from_pandas(_frame(3)), PandasSource)


def test_docstring_example_runs():
    result = doctest.testmod(pandas_module)
    assert result.attempted > 0 and result.failed == 0
