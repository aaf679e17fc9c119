"""ShardWriter and convert: every value read back with independent readers (tf.data +
parse_example, pyarrow, pandas), shard bounds, and atomic shards."""

import glob
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from tfstream.sources.auto import open_source
from tfstream.sources.csv import csv
from tfstream.sources.example_codec import _ExampleEncoder
from tfstream.sources.schema import normalize_schema
from tfstream.sources.writer import ShardWriter, convert
from tfstream.testing import write_csv_shards

SCHEMA = {"label": "int64", "f0": "float32", "f1": "float32", "s0": "string", "s1": "string"}


def _chunk(n, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "label": rng.integers(0, 2, n),
        "f0": rng.standard_normal(n).astype(np.float32),
        "f1": rng.standard_normal(n).astype(np.float32),
        "s0": np.array(["a", "bb", "ccc", "é"], dtype=object)[rng.integers(0, 4, n)],
        "s1": np.array(["x", "yy"], dtype=object)[rng.integers(0, 2, n)],
    }


def _read_tfrecords(paths, schema, compression=""):
    """Every record of ``paths`` through tf.data + parse_example: the independent reader."""
    spec = {
        name: tf.io.FixedLenFeature(
            [], {"int64": tf.int64, "string": tf.string}.get(dtype, tf.float32)
        )
        for name, dtype in schema.items()
    }
    ds = tf.data.TFRecordDataset(paths, compression_type=compression).batch(4096)
    parts = [tf.io.parse_example(batch, spec) for batch in ds]
    out = {name: np.concatenate([p[name].numpy() for p in parts]) for name in schema}
    for name, dtype in schema.items():
        if dtype == "string":
            out[name] = np.array([v.decode("utf-8") for v in out[name]], dtype=object)
    return pd.DataFrame(out)


def _hidden(directory):
    return [n for n in os.listdir(directory) if n.startswith(".")]


# -- the TFRecord encoder --------------------------------------------------------------------


def test_example_bytes_equal_tf_train_example():
    rng = np.random.default_rng(1)
    n = 300
    long_key = "k" * 200  # a key whose length needs a 2-byte varint
    chunk = {
        "i": rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64),
        "small": rng.integers(0, 100, n),
        "f": rng.standard_normal(n).astype(np.float32),
        "d": rng.standard_normal(n) * 1e30,
        "s": np.array(["é" * int(k) for k in rng.integers(0, 9000, n)], dtype=object),
        "b": np.array([b"x" * int(k) for k in rng.integers(0, 3, n)], dtype=object),
        long_key: np.full(n, np.nan, np.float32),
    }
    chunk["i"][:4] = [0, -1, 2**63 - 1, -(2**63)]
    chunk["f"][:3] = [np.inf, -np.inf, -0.0]
    schema = {"i": "int64", "small": "int64", "f": "float32", "d": "float64"}
    schema.update({"s": "string", "b": "string", long_key: "float32"})
    (buffer, starts, ends), sizes = _ExampleEncoder(normalize_schema(schema)).encode(chunk)
    for row in range(n):
        record = buffer[starts[row] : ends[row]]
        assert len(record) == sizes[row]
        s = chunk["s"][row].encode()
        expected = tf.train.Example(
            features=tf.train.Features(
                feature={
                    "i": tf.train.Feature(int64_list=tf.train.Int64List(value=[chunk["i"][row]])),
                    "small": tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[chunk["small"][row]])
                    ),
                    "f": tf.train.Feature(float_list=tf.train.FloatList(value=[chunk["f"][row]])),
                    "d": tf.train.Feature(float_list=tf.train.FloatList(value=[chunk["d"][row]])),
                    "s": tf.train.Feature(bytes_list=tf.train.BytesList(value=[s])),
                    "b": tf.train.Feature(bytes_list=tf.train.BytesList(value=[chunk["b"][row]])),
                    long_key: tf.train.Feature(float_list=tf.train.FloatList(value=[np.nan])),
                }
            )
        )
        parsed = tf.train.Example.FromString(record)
        assert parsed.SerializeToString(deterministic=True) == expected.SerializeToString(
            deterministic=True
        )


# -- round trips -----------------------------------------------------------------------------


def test_csv_to_tfrecord_round_trip(tmp_path):
    paths = write_csv_shards(tmp_path / "csv", 3000, shards=2, features=3, strings=2, seed=5)
    source = csv(paths)
    shards = convert(source, tmp_path / "out", format="tfrecord", max_rows_per_shard=1000)
    assert [os.path.basename(p) for p in shards] == [
        "part-00000.tfrecord",
        "part-00001.tfrecord",
        "part-00002.tfrecord",
    ]
    expected = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    schema = {name: col.dtype for name, col in source.schema.items()}
    got = _read_tfrecords(shards, schema)
    expected = expected.astype({n: np.float32 for n, d in schema.items() if d == "float32"})
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=0, atol=0)
    assert source.report().rows_ok == 3000
    assert _hidden(tmp_path / "out") == []


def test_csv_to_parquet_round_trip(tmp_path):
    paths = write_csv_shards(tmp_path / "csv", 2500, shards=3, features=3, strings=2, seed=6)
    shards = convert(csv(paths), tmp_path / "out", format="parquet", max_rows_per_shard=1000)
    assert [os.path.basename(p) for p in shards] == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    expected = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    got = pq.read_table(shards).to_pandas()
    assert str(got["f0"].dtype) == "float32" and str(got["label"].dtype) == "int64"
    expected = expected.astype({f"f{j}": np.float32 for j in range(3)})
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=0, atol=0)


def test_values_round_trip_with_nan_float64_and_bytes(tmp_path):
    chunk = {
        "x": np.array([1.5, np.nan, -np.inf, 3.0]),
        "y": np.array([1, -2, 3, 2**40]),
        "s": np.array([b"a", "é".encode(), b"", b"zz"], dtype=object),
    }
    schema = {"x": "float64", "y": "int64", "s": "string"}
    for fmt in ("tfrecord", "parquet"):
        with ShardWriter(tmp_path / fmt, format=fmt, schema=schema) as writer:
            writer.write(chunk)
        if fmt == "tfrecord":
            got = _read_tfrecords(writer.shards, schema)
            np.testing.assert_array_equal(got["x"], chunk["x"].astype(np.float32))
        else:
            got = pq.read_table(writer.shards).to_pandas()
            np.testing.assert_array_equal(got["x"], chunk["x"])
        np.testing.assert_array_equal(got["y"], chunk["y"])
        assert list(got["s"]) == ["a", "é", "", "zz"]


def test_gzip_tfrecord(tmp_path):
    with ShardWriter(tmp_path, schema=SCHEMA, compression="gzip") as writer:
        writer.write(_chunk(500))
    assert [os.path.basename(p) for p in writer.shards] == ["part-00000.tfrecord.gz"]
    got = _read_tfrecords(writer.shards, SCHEMA, compression="GZIP")
    pd.testing.assert_frame_equal(got, pd.DataFrame(_chunk(500)), check_dtype=False)


def test_reads_back_with_tfstream_sources(tmp_path):
    paths = write_csv_shards(tmp_path / "csv", 1200, features=2, strings=1, seed=2)
    expected = pd.read_csv(paths[0]).astype({"f0": np.float32, "f1": np.float32})
    for fmt in ("tfrecord", "parquet"):
        shards = convert(csv(paths), tmp_path / fmt, format=fmt, max_rows_per_shard=500)
        source = open_source(tmp_path / fmt, label="label")
        got = pd.concat([pd.DataFrame(c) for c in source.iter_chunks()], ignore_index=True)
        got = got.map(lambda v: v.decode() if isinstance(v, bytes) else v)
        pd.testing.assert_frame_equal(got[list(expected.columns)], expected, check_dtype=False)
        assert len(shards) == 3


# -- bounds ----------------------------------------------------------------------------------


def test_row_bound_across_chunks(tmp_path):
    with ShardWriter(tmp_path, schema=SCHEMA, max_rows_per_shard=300) as writer:
        for seed in range(4):
            writer.write(_chunk(250, seed))
    assert writer.shard_rows == [300, 300, 300, 100]
    counts = [sum(1 for _ in tf.data.TFRecordDataset(p)) for p in writer.shards]
    assert counts == [300, 300, 300, 100]
    got = _read_tfrecords(writer.shards, SCHEMA)
    expected = pd.concat([pd.DataFrame(_chunk(250, s)) for s in range(4)], ignore_index=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


@pytest.mark.parametrize("fmt", ["tfrecord", "parquet"])
def test_byte_bound(tmp_path, fmt):
    bound = 60_000
    with ShardWriter(tmp_path, format=fmt, schema=SCHEMA, max_bytes_per_shard=bound) as writer:
        writer.write(_chunk(20_000))
    sizes = [os.path.getsize(p) for p in writer.shards]
    assert len(sizes) > 3
    assert max(sizes) <= bound
    assert sum(writer.shard_rows) == 20_000
    if fmt == "tfrecord":  # exact: every shard but the last is full to within one record
        assert min(sizes[:-1]) > bound - 100


def test_one_row_larger_than_the_bound_gets_its_own_shard(tmp_path):
    chunk = {"s": np.array(["x" * 1000, "y", "z"], dtype=object)}
    with ShardWriter(tmp_path, schema={"s": "string"}, max_bytes_per_shard=100) as writer:
        writer.write(chunk)
    assert writer.shard_rows == [1, 2]  # the two small rows share a shard


def test_parquet_row_groups_are_bounded(tmp_path):
    with ShardWriter(tmp_path, format="parquet", schema=SCHEMA, row_group_rows=700) as writer:
        for seed in range(5):
            writer.write(_chunk(450, seed))
    meta = pq.ParquetFile(writer.shards[0]).metadata
    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert groups == [700, 700, 700, 150]


def test_explicit_finish_shard_and_empty_input(tmp_path):
    with ShardWriter(tmp_path / "a", schema=SCHEMA) as writer:
        writer.write(_chunk(10))
        writer.finish_shard()
        writer.finish_shard()  # nothing written since: no empty shard
        writer.write(_chunk(5))
    assert writer.shard_rows == [10, 5]
    with ShardWriter(tmp_path / "b", schema=SCHEMA) as writer:
        writer.write({k: v[:0] for k, v in _chunk(3).items()})
    assert writer.shards == [] and os.listdir(tmp_path / "b") == []


# -- atomicity -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["tfrecord", "parquet"])
def test_exception_keeps_completed_shards_and_deletes_the_partial_one(tmp_path, fmt):
    with pytest.raises(RuntimeError, match="boom"):
        with ShardWriter(tmp_path, format=fmt, schema=SCHEMA, max_rows_per_shard=100) as writer:
            writer.write(_chunk(250))  # two complete shards, 50 rows in the third
            assert len(_hidden(tmp_path)) == 1  # the third, under its temporary name
            raise RuntimeError("boom")
    suffix = ".tfrecord" if fmt == "tfrecord" else ".parquet"
    assert sorted(os.listdir(tmp_path)) == [f"part-00000{suffix}", f"part-00001{suffix}"]
    assert writer.shard_rows == [100, 100]
    expected = pd.DataFrame(_chunk(250)).iloc[:200]
    if fmt == "tfrecord":
        got = _read_tfrecords(writer.shards, SCHEMA)
    else:
        got = pq.read_table(writer.shards).to_pandas()
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_bad_chunk_inside_with_leaves_no_partial_shard(tmp_path):
    with pytest.raises(TypeError, match="int64 in the schema"):
        with ShardWriter(tmp_path, schema=SCHEMA, max_rows_per_shard=100) as writer:
            writer.write(_chunk(150))
            writer.write({**_chunk(10), "label": np.zeros(10, np.float32)})
    assert os.listdir(tmp_path) == ["part-00000.tfrecord"]


def test_a_killed_process_leaves_no_file_under_a_final_name(tmp_path):
    code = f"""
import os, numpy as np
from tfstream.sources.writer import ShardWriter
with ShardWriter({str(tmp_path)!r}, format="parquet", schema={{"x": "float32"}},
                 max_rows_per_shard=100, row_group_rows=10) as w:
    w.write({{"x": np.arange(250, dtype=np.float32)}})
    os._exit(3)  # a crash: no __exit__, no cleanup
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    final = sorted(n for n in os.listdir(tmp_path) if not n.startswith("."))
    assert final == ["part-00000.parquet", "part-00001.parquet"]
    assert [pq.read_metadata(tmp_path / n).num_rows for n in final] == [100, 100]
    # The unfinished shard is a hidden temporary file, which directory readers skip.
    assert [n.startswith(".part-00002.parquet.tmp-") for n in _hidden(tmp_path)] == [True]
    assert len(pq.read_table(str(tmp_path)).column("x")) == 200


def test_existing_shards_need_overwrite(tmp_path):
    with ShardWriter(tmp_path, schema=SCHEMA, max_rows_per_shard=5) as writer:
        writer.write(_chunk(20))
    assert len(writer.shards) == 4
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ShardWriter(tmp_path, schema=SCHEMA)
    with ShardWriter(tmp_path, schema=SCHEMA, overwrite=True) as writer:
        writer.write(_chunk(20))
    assert sorted(os.listdir(tmp_path)) == ["part-00000.tfrecord"]  # no stale shard left


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"format": "csv"}, ValueError, "`format` must be one of"),
        ({"compression": "zstd"}, ValueError, "None or 'GZIP'"),
        ({"max_rows_per_shard": 0}, ValueError, "max_rows_per_shard"),
        ({"max_bytes_per_shard": -5}, ValueError, "max_bytes_per_shard"),
        ({"prefix": "a/b"}, ValueError, "prefix"),
        ({"schema": {"x": "float16"}}, ValueError, "dtype must be one of"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, error, match):
    kwargs = {"schema": SCHEMA, **kwargs}
    with pytest.raises(error, match=match):
        ShardWriter(tmp_path, **kwargs)


def test_bad_chunks(tmp_path):
    writer = ShardWriter(tmp_path, schema=SCHEMA)
    with pytest.raises(ValueError, match=r"lacks columns of the schema: \['s1'\]"):
        writer.write({k: v for k, v in _chunk(3).items() if k != "s1"})
    with pytest.raises(ValueError, match="equal lengths"):
        writer.write({**_chunk(3), "f0": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match="1-D"):
        writer.write({**_chunk(3), "f0": np.zeros((3, 1), np.float32)})
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(_chunk(3))
    assert glob.glob(str(tmp_path / "*")) == []
