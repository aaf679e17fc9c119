import doctest
import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

import tfstream.sources.parquet as parquet_module
from tfstream.sources.parquet import ParquetSource, parquet
from tfstream.sources.report import DataError
from tfstream.sources.schema import SchemaDriftError, SchemaError


def _table(n=5000, start=0, seed=0):
    """Every supported Arrow type, with missing values in the nullable ones."""
    rng = np.random.default_rng(seed)
    ids = np.arange(start, start + n)
    f32 = rng.normal(size=n).astype(np.float32)
    f32_mask = rng.random(n) < 0.1
    words = np.array(["alpha", "beta", "gamma", "délta", ""], dtype=object)[ids % 5]
    word_mask = rng.random(n) < 0.1
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "f32": pa.array(f32, mask=f32_mask),
            "f64": pa.array(rng.normal(size=n) * 1e6, pa.float64()),
            "i32": pa.array((ids * 7 % 1000).astype(np.int32)),
            "flag": pa.array(ids % 3 == 0),
            "word": pa.array(words, pa.string(), mask=word_mask),
            "cat": pa.array(
                words, pa.string(), mask=~word_mask & (ids % 7 == 0)
            ).dictionary_encode(),
            "big": pa.array(words, pa.large_string()),
        }
    )


def _collect(source, **kwargs):
    chunks = list(source.iter_chunks(**kwargs))
    if not chunks:
        return {name: np.array([]) for name in source.schema}
    return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}


def _collect_dataset(dataset):
    features, labels = {}, []
    for batch in dataset.as_numpy_iterator():
        feats, label = batch if isinstance(batch, tuple) else (batch, None)
        for name, values in feats.items():
            features.setdefault(name, []).append(values)
        if label is not None:
            labels.append(label)
    features = {k: np.concatenate(v) for k, v in features.items()}
    return features, (np.concatenate(labels) if labels else None)


def _expected(frame: pd.DataFrame, name: str) -> np.ndarray:
    """What tfstream promises for a column read independently by pandas."""
    series = frame[name]
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy().astype(np.int64)
    if pd.api.types.is_numeric_dtype(series) and not isinstance(series.dtype, pd.CategoricalDtype):
        return series.to_numpy()
    return series.astype(object).where(series.notna(), "").to_numpy(dtype=object)


def test_values_match_an_independent_reader_over_many_row_groups(tmp_path):
    path = str(tmp_path / "data.parquet")
    pq.write_table(_table(5000), path, row_group_size=700)
    src = parquet(path, batch_rows=1000)
    assert {n: c.dtype for n, c in src.schema.items()} == {
        "id": "int64",
        "f32": "float32",
        "f64": "float64",
        "i32": "int64",
        "flag": "int64",
        "word": "string",
        "cat": "string",
        "big": "string",
    }
    assert [len(c["id"]) for c in src.iter_chunks()] == [1000] * 5  # row groups of 700
    got = _collect(src)
    want = pq.read_table(path).to_pandas()
    assert want["f32"].isna().sum() > 0 and want["word"].isna().sum() > 0
    for name, column in src.schema.items():
        assert got[name].dtype == column.numpy_dtype, name
        np.testing.assert_array_equal(got[name], _expected(want, name), err_msg=name)
    assert all(isinstance(v, str) for v in got["word"])
    report = src.report()
    assert (report.rows_read, report.rows_ok, report.rows_rejected) == (10_000, 10_000, 0)


def test_small_row_groups_are_joined_into_bounded_chunks(tmp_path):
    path = str(tmp_path / "data.parquet")
    pq.write_table(_table(5000), path, row_group_size=100)
    sizes = [len(c["id"]) for c in parquet(path, batch_rows=1234).iter_chunks()]
    assert sizes == [1234] * 4 + [5000 - 4 * 1234]


def test_dataset_splits_the_label(tmp_path):
    path = str(tmp_path / "data.parquet")
    pq.write_table(_table(3000), path, row_group_size=1000)
    src = parquet(path, label="f64", columns=["id", "word"])
    assert src.feature_names == ["id", "word"]
    batches = list(src.dataset(256).as_numpy_iterator())
    assert [len(b[1]) for b in batches] == [256] * 11 + [3000 - 256 * 11]
    features, labels = _collect_dataset(src.dataset(256))
    want = pq.read_table(path).to_pandas()
    assert set(features) == {"id", "word"}
    np.testing.assert_array_equal(labels, want["f64"].to_numpy())
    np.testing.assert_array_equal(features["id"], want["id"].to_numpy())
    words = [w.decode() for w in features["word"]]
    assert words == list(_expected(want, "word"))


def test_hive_partitions_written_by_pyarrow(tmp_path):
    root = str(tmp_path / "table")
    n = 4000
    ids = np.arange(n)
    region = np.array(["north", "south west", None], dtype=object)[ids % 3]
    table = pa.table(
        {
            "id": ids,
            "x": np.sin(ids).astype(np.float32),
            "year": 2020 + ids % 4,
            "region": pa.array(region, pa.string()),
        }
    )
    pq.write_to_dataset(table, root, partition_cols=["year", "region"])
    open(os.path.join(root, "_SUCCESS"), "w").close()
    assert any("__HIVE_DEFAULT_PARTITION__" in d for _, dirs, _ in os.walk(root) for d in dirs)
    src = parquet(root, label="x")
    assert list(src.schema) == ["id", "x", "year", "region"]
    assert src.schema["year"].dtype == "int64" and src.schema["region"].dtype == "string"
    assert len(src.files) == 12
    got = _collect(src)
    want = ds.dataset(root, partitioning="hive").to_table().to_pandas().sort_values("id")
    order = np.argsort(got["id"])
    np.testing.assert_array_equal(got["id"][order], want["id"].to_numpy())
    np.testing.assert_array_equal(got["x"][order], want["x"].to_numpy())
    np.testing.assert_array_equal(got["year"][order], want["year"].astype(np.int64).to_numpy())
    expected_region = want["region"].astype(object).where(want["region"].notna(), "")
    np.testing.assert_array_equal(got["region"][order], expected_region.to_numpy(dtype=object))
    # Only a partition column selected: rows still counted from the files.
    only = _collect(parquet(root, columns=["region"]))
    assert sorted(only) == ["region"] and len(only["region"]) == n


def test_spark_layout_with_success_and_crc_files(tmp_path):
    root = tmp_path / "events"
    frames = []
    for year, month in [(2023, "12"), (2024, "01"), (2024, "02")]:
        part = root / f"year={year}" / f"month={month}"
        part.mkdir(parents=True)
        frame = pd.DataFrame({"v": np.arange(10, dtype=np.float64) + year})
        name = "part-00000-1f2e3d4c-c000.snappy.parquet"
        frame.to_parquet(part / name, compression="snappy", index=False)
        (part / f".{name}.crc").write_bytes(b"\x00crc")
        frames.append(frame.assign(year=year, month=int(month)))
    (root / "_SUCCESS").write_text("")
    src = parquet(str(root))
    assert {n: c.dtype for n, c in src.schema.items()} == {
        "v": "float64",
        "year": "int64",
        "month": "int64",
    }
    got = pd.DataFrame(_collect(src))
    pd.testing.assert_frame_equal(got, pd.concat(frames, ignore_index=True), check_dtype=False)
    # A glob below the root derives the same partitions; schema= can keep "01" as text.
    src = parquet(str(root / "year=*" / "*" / "*.parquet"), schema={"month": "string"})
    assert sorted(set(_collect(src)["month"])) == ["01", "02", "12"]
    # A partition directory given directly is not a partition column.
    assert list(parquet(str(root / "year=2024")).schema) == ["v", "month"]


def test_unsupported_types_are_named_and_can_be_projected_away(tmp_path, monkeypatch):
    path = str(tmp_path / "data.parquet")
    table = pa.table(
        {
            "x": pa.array([1.0, 2.0, 3.0]),
            "tags": pa.array([[1], [2, 3], []], pa.list_(pa.int64())),
            "when": pa.array([0, 86_400_000_000, None], pa.timestamp("us")),
            "y": pa.array([0, 1, 1]),
        }
    )
    pq.write_table(table, path)
    with pytest.raises(SchemaError, match=r"'tags'.*list<.*columns=\['x', 'y'\]"):
        parquet(path)
    with pytest.raises(SchemaError, match=r"'when'.*timestamp.*schema=\{'when': 'int64'\}"):
        parquet(path, columns=["x", "when"])
    asked = []
    original = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        asked.append(kwargs.get("columns"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    src = parquet(path, columns=["x"], label="y")
    features, labels = _collect_dataset(src.dataset(8))
    assert asked == [["x", "y"]]
    np.testing.assert_array_equal(features["x"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(labels, [0, 1, 1])
    # A timestamp read as its epoch count: the null row is rejected like any missing int64.
    src = parquet(path, columns=["when"], schema={"when": "int64"}, on_error="skip")
    np.testing.assert_array_equal(_collect(src)["when"], [0, 86_400_000_000])
    assert src.report().rows_rejected == 1
    src = parquet(path, columns=["when"], schema={"when": "string"})
    assert list(_collect(src)["when"]) == [
        "1970-01-01 00:00:00.000000",
        "1970-01-02 00:00:00.000000",
        "",
    ]


def _write_files(tmp_path, count, rows=1000):
    paths = []
    for k in range(count):
        path = str(tmp_path / f"part-{k:03d}.parquet")
        pq.write_table(_table(rows, start=k * rows, seed=k), path, row_group_size=300)
        paths.append(path)
    return paths


def test_shuffle_is_seeded_and_a_permutation(tmp_path):
    _write_files(tmp_path, 4)
    src = parquet(str(tmp_path), label="id", columns=["id"])

    def ids(**kwargs):
        return _collect_dataset(src.dataset(100, **kwargs))[1]

    plain = ids()
    np.testing.assert_array_equal(plain, np.arange(4000))
    first, again = ids(shuffle=True, seed=7), ids(shuffle=True, seed=7)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, plain)
    assert not np.array_equal(first, ids(shuffle=True, seed=8))
    np.testing.assert_array_equal(np.sort(first), plain)


@pytest.mark.parametrize("files", [1, 4])
def test_sharding_is_disjoint_and_complete(tmp_path, files):
    paths = _write_files(tmp_path, files, rows=4000 // files)
    src = parquet(paths, label="id")
    shards = []
    for i in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i)
        shards.append(_collect_dataset(src.dataset(64, input_context=context))[1])
    assert not set(shards[0]) & set(shards[1])
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(4000))
    if files == 4:  # whole files: each shard holds exactly two files' ids
        for shard in shards:
            assert sorted(set(shard // 1000)) in ([0, 2], [1, 3])
    else:  # by record: every other row
        np.testing.assert_array_equal(shards[0], np.arange(0, 4000, 2))


def test_schema_drift_names_both_files(tmp_path, monkeypatch):
    first = str(tmp_path / "a.parquet")
    pq.write_table(pa.table({"x": [1.0, 2.0], "n": pa.array([1, 2], pa.int64())}), first)
    # int32 vs int64 and float32 vs float64 are not drift.
    same = str(tmp_path / "b.parquet")
    pq.write_table(
        pa.table({"x": pa.array([3.0], pa.float32()), "n": pa.array([3], pa.int32())}), same
    )
    assert list(_collect(parquet([first, same]))["n"]) == [1, 2, 3]
    extra = str(tmp_path / "c.parquet")
    pq.write_table(pa.table({"x": [1.0], "n": [1], "z": ["q"]}), extra)
    with pytest.raises(SchemaDriftError, match=r"c\.parquet.*a\.parquet.*extra: \['z'\]"):
        parquet([first, extra])
    assert len(_collect(parquet([first, extra], columns=["x", "n"]))["x"]) == 3
    text = str(tmp_path / "d.parquet")
    pq.write_table(pa.table({"x": ["1.0"], "n": [1]}), text)
    with pytest.raises(SchemaDriftError, match=r"'x' is string in .*d\.parquet.*a\.parquet"):
        parquet([first, text])
    # With more files than are checked up front, drift is found when the file is opened.
    monkeypatch.setattr(parquet_module, "_CHECK_ALL_FILES", 1)
    src = parquet([first, same, text])
    with pytest.raises(SchemaDriftError, match=r"d\.parquet.*a\.parquet"):
        _collect(src)


def _with_null_ints(tmp_path):
    path = str(tmp_path / "nulls.parquet")
    n = 2500
    mask = np.zeros(n, bool)
    mask[[3, 1200, 2499]] = True
    table = pa.table(
        {"id": np.arange(n), "count": pa.array(np.arange(n) * 2, mask=mask), "w": ["a"] * n}
    )
    pq.write_table(table, path, row_group_size=1000)
    return path, np.flatnonzero(mask)


def test_null_in_int64_column_raises_with_file_and_record(tmp_path):
    path, bad = _with_null_ints(tmp_path)
    src = parquet(path, batch_rows=1000)
    with pytest.raises(
        DataError,
        match=r"nulls\.parquet, record 3: missing value in int64 "
        r"column 'count'.*'float32'",
    ):
        _collect(src)


def test_null_in_int64_column_skip_and_quarantine_count(tmp_path):
    path, bad = _with_null_ints(tmp_path)
    src = parquet(path, batch_rows=1000, on_error="skip")
    got = _collect(src)
    keep = np.setdiff1d(np.arange(2500), bad)
    np.testing.assert_array_equal(got["id"], keep)
    np.testing.assert_array_equal(got["count"], keep * 2)
    report = src.report()
    assert (report.rows_read, report.rows_ok, report.rows_rejected) == (2500, 2497, 3)
    assert [r.record for r in report.rejected] == list(bad)
    assert all(r.file == path and r.line is None for r in report.rejected)
    quarantine = tmp_path / "bad.jsonl"
    src = parquet(path, on_error="quarantine", quarantine_path=quarantine)
    _collect(src)
    records = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert [r["record"] for r in records] == list(bad)
    assert json.loads(records[0]["text"]) == {"id": 3, "count": None, "w": "a"}
    assert json.loads(records[1]["text"])["id"] == 1200  # a chunk joined from row groups
    # Declared float, the same rows are kept with NaN.
    got = _collect(parquet(path, schema={"count": "float32"}))
    assert np.isnan(got["count"][bad]).all() and len(got["count"]) == 2500


def test_strings_declared_numeric_reject_only_unparsable_rows(tmp_path):
    path = str(tmp_path / "text.parquet")
    pq.write_table(pa.table({"v": ["1.5", "x", None, "", "-2"]}), path)
    src = parquet(path, schema={"v": "float32"}, on_error="skip")
    got = _collect(src)["v"]
    np.testing.assert_array_equal(got, np.array([1.5, np.nan, np.nan, -2], np.float32))
    assert [r.record for r in src.report().rejected] == [1]


def test_corrupt_files(tmp_path):
    good = _write_files(tmp_path, 2)
    bad = str(tmp_path / "part-001b.parquet")
    with open(bad, "wb") as f:
        f.write(b"this is not a parquet file at all")
    with pytest.raises(DataError, match=r"part-001b\.parquet: not a readable Parquet file"):
        parquet(str(tmp_path))
    src = parquet(str(tmp_path), columns=["id"], on_error="skip")
    got = _collect(src)
    np.testing.assert_array_equal(got["id"], np.arange(2000))
    report = src.report()
    assert report.lost_files == (bad,)
    assert (report.rows_ok, report.rows_rejected) == (2000, 1)
    assert len(good) == 2


def test_a_corrupt_row_group_loses_the_rest_of_the_file(tmp_path):
    path = str(tmp_path / "mid.parquet")
    table = pa.table({"id": np.arange(3000), "x": np.random.default_rng(0).normal(size=3000)})
    pq.write_table(table, path, row_group_size=1000, compression="none")
    offset = pq.ParquetFile(path).metadata.row_group(2).column(0).data_page_offset
    data = bytearray(open(path, "rb").read())
    data[offset : offset + 64] = b"\xff" * 64
    open(path, "wb").write(bytes(data))
    src = parquet(path, batch_rows=1000, on_error="skip")
    got = _collect(src)
    np.testing.assert_array_equal(got["id"], np.arange(2000))
    report = src.report()
    assert report.lost_files == (path,)
    assert (
        report.rejected[0].record == 2000 and "1,000 of its 3,000 rows" in report.rejected[0].error
    )
    with pytest.raises(DataError, match=r"mid\.parquet, record 2000: the file is corrupt"):
        _collect(parquet(path, batch_rows=1000))


def test_argument_errors(tmp_path):
    path = str(tmp_path / "data.parquet")
    pq.write_table(_table(10), path)
    with pytest.raises(ValueError, match="`label` must name a column"):
        parquet(path, label="nope")
    with pytest.raises(SchemaError, match=r"`columns` names columns .* \['nope'\]"):
        parquet(path, columns=["id", "nope"])
    with pytest.raises(SchemaError, match=r"`schema` names columns .* \['nope'\]"):
        parquet(path, schema={"nope": "float32"})
    with pytest.raises(ValueError, match="batch_rows=0"):
        parquet(path, batch_rows=0)
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    (empty / "_SUCCESS").write_text("")
    with pytest.raises(FileNotFoundError, match="holds no Parquet file"):
        parquet(str(empty))
    assert isinstance(parquet(path), ParquetSource)


def test_docstring_example_runs():
    result = doctest.testmod(parquet_module)
    assert result.attempted > 0 and result.failed == 0
