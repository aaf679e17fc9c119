"""Tests of the TFRecord source against an independent reader: the TFRecord framing is decoded
in plain Python and each record parsed with ``tf.train.Example.FromString``."""

import functools
import gzip
import json
import os
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf

from tfstream.sources.report import DataError
from tfstream.sources.schema import SchemaDriftError, SchemaError
from tfstream.sources.tfrecord import TFRecordSource, tfrecord

# -- helpers ---------------------------------------------------------------------------------


def _feature(value):
    values = value if isinstance(value, list) else [value]
    if all(isinstance(v, (bool, int, np.integer)) for v in values) and values:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    if all(isinstance(v, (float, np.floating)) for v in values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    values = [v.encode() if isinstance(v, str) else v for v in values]
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _example(**features) -> bytes:
    """A serialized Example; a None value leaves the feature out."""
    feature = {k: _feature(v) for k, v in features.items() if v is not None}
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)  # the same bytes in every process


def _records(n, seed=0, start=0):
    """Records with a float with gaps, a float, an int64, a string with gaps and a label."""
    return list(_cached_records(n, seed, start))


@functools.cache
def _cached_records(n, seed, start):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        out.append(
            _example(
                id=start + i,
                x=None if rng.random() < 0.2 else float(rng.standard_normal()),
                y=float(rng.uniform(-1e6, 1e6)),
                k=int(rng.integers(-(2**62), 2**62)),
                s=None if rng.random() < 0.2 else f"s{rng.integers(100)}é",
                label=int(rng.integers(0, 2)),
            )
        )
    return tuple(out)


def _write(path, records, compression=None):
    options = tf.io.TFRecordOptions(compression_type=compression or "")
    with tf.io.TFRecordWriter(str(path), options=options) as writer:
        for record in records:
            writer.write(record)
    return str(path)


def _offset(records, index):
    """Byte offset of record ``index`` in an uncompressed file of ``records``."""
    return sum(len(r) + 16 for r in records[:index])


def _read_framing(path):
    """The records of a TFRecord file, decoded without TensorFlow."""
    with open(path, "rb") as f:
        data = f.read()
    if str(path).endswith(".gz"):
        data = gzip.decompress(data)
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("<Q", data, pos)
        out.append(data[pos + 12 : pos + 12 + n])
        pos += n + 16
    return out


def _reference(records, schema):
    """Columns of ``records`` (serialized Examples) as the source should return them."""
    cols = {name: [] for name in schema}
    for record in records:
        feature = tf.train.Example.FromString(record).features.feature
        for name, dtype in schema.items():
            kind = feature[name].WhichOneof("kind") if name in feature else None
            value = list(getattr(feature[name], kind).value) if kind else []
            if dtype == "string":
                cols[name].append(value[0] if value else b"")
            elif dtype == "int64":
                cols[name].append(value[0])
            else:
                cols[name].append(np.float32(value[0]) if value else np.nan)
    out = {}
    for name, dtype in schema.items():
        np_dtype = object if dtype == "string" else dtype
        out[name] = np.array(cols[name], dtype=np_dtype)
    return out


def _chunks_to_columns(chunks, names):
    chunks = list(chunks)
    if not chunks:
        return {name: np.array([]) for name in names}
    return {name: np.concatenate([c[name] for c in chunks]) for name in names}


def _from_dataset(ds, label=None):
    parts = []
    for element in ds:
        features, y = element if label else (element, None)
        part = {k: v.numpy() for k, v in features.items()}
        if label:
            part[label] = y.numpy()
        parts.append(part)
    names = list(parts[0]) if parts else []
    return {n: np.concatenate([p[n] for p in parts]) for n in names}


def _assert_columns_equal(got, expected):
    assert set(got) == set(expected)
    for name, want in expected.items():
        have = got[name]
        assert len(have) == len(want), name
        if want.dtype == object:
            assert list(have) == list(want), name
        else:
            assert have.dtype == want.dtype, (name, have.dtype, want.dtype)
            np.testing.assert_array_equal(have, want, err_msg=name)


SCHEMA = {
    "id": "int64",
    "k": "int64",
    "label": "int64",
    "s": "string",
    "x": "float32",
    "y": "float32",
}


@pytest.fixture
def three_files(tmp_path):
    """Three files of 300, 250 and 200 records."""
    paths, records = [], []
    for i, n in enumerate([300, 250, 200]):
        recs = _records(n, seed=i, start=1000 * i)
        paths.append(_write(tmp_path / f"part-{i}.tfrecord", recs))
        records.append(recs)
    return paths, records


# -- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["iter_chunks", "dataset"])
def test_values_equal_independent_reader(tmp_path, via):
    records = _records(700)
    path = _write(tmp_path / "a.tfrecord", records)
    assert _read_framing(path) == records  # the reference reader reads what was written
    src = tfrecord(path, label="label", chunk_records=128)
    assert isinstance(src, TFRecordSource)
    assert {n: c.dtype for n, c in src.schema.items()} == SCHEMA
    expected = _reference(records, SCHEMA)
    assert np.isnan(expected["x"]).any() and (expected["s"] == b"").any()  # gaps are tested
    if via == "iter_chunks":
        got = _chunks_to_columns(src.iter_chunks(), SCHEMA)
    else:
        got = _from_dataset(src.dataset(64), label="label")
    _assert_columns_equal(got, expected)
    report = src.report()
    assert (report.rows_read, report.rows_ok, report.rows_rejected) == (700, 700, 0)


def test_chunks_are_large_and_typed(tmp_path):
    path = _write(tmp_path / "a.tfrecord", _records(3000))
    chunks = list(tfrecord(path, chunk_records=1024).iter_chunks())
    assert [len(c["id"]) for c in chunks] == [1024, 1024, 952]
    chunk = chunks[0]
    assert chunk["x"].dtype == np.float32 and chunk["k"].dtype == np.int64
    assert chunk["s"].dtype == object and isinstance(chunk["s"][0], bytes)


@pytest.mark.parametrize(
    "name, compression",
    [
        ("a.tfrecord.gz", None),
        ("a.tfrecord", "GZIP"),
        ("a.tfrecord", "gzip"),
        ("a.tfrecord", "ZLIB"),
    ],
)
def test_compression(tmp_path, name, compression):
    records = _records(400)
    written = compression.upper() if compression else "GZIP"
    path = _write(tmp_path / name, records, compression=written)
    with open(path, "rb") as f:
        assert records[0] not in f.read()  # really compressed
    src = tfrecord(path, compression=compression, chunk_records=100)
    _assert_columns_equal(
        _chunks_to_columns(src.iter_chunks(), SCHEMA), _reference(records, SCHEMA)
    )


def test_uncompressed_file_named_gz(tmp_path):
    records = _records(50)
    path = _write(tmp_path / "plain.tfrecord.gz", records)
    src = tfrecord(path, compression="NONE")
    assert len(_chunks_to_columns(src.iter_chunks(), SCHEMA)["id"]) == 50


@pytest.mark.parametrize("bad", ["bz2", "", 1])
def test_bad_compression(tmp_path, bad):
    path = _write(tmp_path / "a.tfrecord", _records(5))
    with pytest.raises(ValueError, match="compression"):
        tfrecord(path, compression=bad)


@pytest.mark.parametrize("bad", [0, -3, 1.5, True])
def test_bad_chunk_records(tmp_path, bad):
    path = _write(tmp_path / "a.tfrecord", _records(5))
    with pytest.raises(ValueError, match="chunk_records"):
        tfrecord(path, chunk_records=bad)


@pytest.mark.parametrize("how", ["list", "glob", "dir"])
def test_multiple_files(tmp_path, three_files, how):
    paths, records = three_files
    (tmp_path / "notes.txt").write_text("not a record file")
    target = {"list": paths, "glob": str(tmp_path / "part-*.tfrecord"), "dir": str(tmp_path)}[how]
    src = tfrecord(target, chunk_records=64)
    assert src.files == paths
    expected = _reference([r for recs in records for r in recs], SCHEMA)
    _assert_columns_equal(_chunks_to_columns(src.iter_chunks(), SCHEMA), expected)


def test_label_split(tmp_path):
    records = _records(100)
    path = _write(tmp_path / "a.tfrecord", records)
    src = tfrecord(path, label="label")
    features, label = next(iter(src.dataset(32)))
    assert "label" not in features and set(features) == set(SCHEMA) - {"label"}
    assert label.dtype == tf.int64 and label.shape == (32,)
    np.testing.assert_array_equal(label.numpy(), _reference(records, SCHEMA)["label"][:32])
    without = tfrecord(path)
    batch = next(iter(without.dataset(8)))
    assert isinstance(batch, dict) and "label" in batch


def test_unknown_label(tmp_path):
    path = _write(tmp_path / "a.tfrecord", _records(5))
    with pytest.raises(ValueError, match="nope"):
        tfrecord(path, label="nope")


def test_columns_select_features(tmp_path):
    records = _records(100)
    path = _write(tmp_path / "a.tfrecord", records)
    src = tfrecord(path, columns=["y", "s"], label="label")
    assert list(src.schema) == ["y", "s", "label"]
    expected = _reference(records, {"y": "float32", "s": "string", "label": "int64"})
    _assert_columns_equal(_chunks_to_columns(src.iter_chunks(), expected), expected)
    with pytest.raises(SchemaError, match="nope"):
        tfrecord(path, columns=["y", "nope"])


# -- schema ----------------------------------------------------------------------------------


def test_schema_given_overrides_inference(tmp_path):
    records = _records(300)
    records[7] = _example(id=7, x=1.5, y=2.5, s="z", label=1)  # no k: NaN once read as float
    path = _write(tmp_path / "a.tfrecord", records)
    schema = {"x": "float64", "k": "float64", "label": "int64", "extra": "float32"}
    src = tfrecord(path, schema=schema)
    dtypes = {n: c.dtype for n, c in src.schema.items()}
    assert dtypes == {**SCHEMA, "x": "float64", "k": "float64", "extra": "float32"}
    got = _chunks_to_columns(src.iter_chunks(), dtypes)
    want = _reference(records, {"x": "float32"})
    np.testing.assert_array_equal(got["x"], want["x"].astype(np.float64))
    assert got["x"].dtype == np.float64
    k = [tf.train.Example.FromString(r).features.feature["k"].int64_list.value for r in records]
    k = np.array([v[0] if v else np.nan for v in k], dtype=np.float64)
    assert got["k"].dtype == np.float64 and np.isnan(got["k"][7])
    np.testing.assert_array_equal(got["k"], k)
    assert np.isnan(got["extra"]).all()  # declared, absent everywhere
    assert src.report().rows_ok == 300


def test_schema_incompatible_with_data(tmp_path):
    path = _write(tmp_path / "a.tfrecord", _records(10))
    with pytest.raises(SchemaError, match=r"'x'.*float_list.*a\.tfrecord"):
        tfrecord(path, schema={"x": "int64"})
    with pytest.raises(SchemaError, match="dtype"):
        tfrecord(path, schema={"x": "float16"})


def test_multi_valued_feature_in_sample(tmp_path):
    records = _records(20)
    records[13] = _example(id=13, x=[1.0, 2.0], y=0.5, k=1, s="a", label=0)
    path = _write(tmp_path / "a.tfrecord", records)
    with pytest.raises(SchemaError, match=r"a\.tfrecord, record 13: feature 'x'.*scalar"):
        tfrecord(path)
    src = tfrecord(path, columns=["y", "id"])  # leaving it out works
    assert len(_chunks_to_columns(src.iter_chunks(), ["y"])["y"]) == 20


def test_multi_valued_feature_past_sample(tmp_path):
    records = _records(1500)  # the first 1000 records are sampled
    records[1234] = _example(id=1234, x=0.0, y=0.5, k=1, s=["a", "b"], label=0)
    path = _write(tmp_path / "a.tfrecord", records)
    src = tfrecord(path, on_error="skip", chunk_records=500)
    with pytest.raises(SchemaError, match=r"a\.tfrecord, record 1234: feature 's'.*scalar"):
        list(src.iter_chunks())


def test_missing_int64_is_rejected(tmp_path):
    records = _records(200)
    for i in (5, 150):
        records[i] = _example(id=i, x=1.0, y=2.0, s="q", label=None)
    path = _write(tmp_path / "a.tfrecord", records)
    match = r"a\.tfrecord, record 5: missing value in int64 features \['k', 'label'\]"
    with pytest.raises(DataError, match=match):
        list(tfrecord(path, chunk_records=64).iter_chunks())
    src = tfrecord(path, on_error="skip", chunk_records=64)
    got = _chunks_to_columns(src.iter_chunks(), SCHEMA)
    keep = [r for i, r in enumerate(records) if i not in (5, 150)]
    _assert_columns_equal(got, _reference(keep, SCHEMA))
    report = src.report()
    assert (report.rows_read, report.rows_ok, report.rows_rejected) == (200, 198, 2)
    assert [r.record for r in report.rejected] == [5, 150]


def test_type_conflict_between_sampled_files(tmp_path):
    a = _write(tmp_path / "a.tfrecord", _records(10))
    b = _write(tmp_path / "b.tfrecord", [_example(id=1, x=3, y=1.0, k=1, s="a", label=0)])
    with pytest.raises(SchemaDriftError, match=r"'x'.*a\.tfrecord.*b\.tfrecord") as info:
        tfrecord([a, b])
    assert "float_list" in str(info.value) and "int64_list" in str(info.value)


def _ten_files(tmp_path, odd=None):
    """Ten files of 20 records; ``odd`` replaces file 2's records (file 2 is not sampled)."""
    paths = []
    for i in range(10):
        recs = _records(20, seed=i, start=100 * i)
        if i == 2 and odd is not None:
            recs = odd
        paths.append(_write(tmp_path / f"f{i}.tfrecord", recs))
    return paths


def test_type_drift_in_later_file(tmp_path):
    odd = [_example(id=1, x=1.0, y=1.0, k=2.5, s="a", label=0)] * 5
    paths = _ten_files(tmp_path, odd)
    src = tfrecord(str(tmp_path))  # file 2 is not among the sampled files
    with pytest.raises(SchemaDriftError, match=r"'k'.*f2\.tfrecord.*f0\.tfrecord"):
        list(src.iter_chunks())
    assert paths[2] in src.files


def test_type_drift_deep_in_file(tmp_path):
    records = _records(1500)
    records[1300] = _example(id=1300, x=1.0, y=1.0, k=1, s=7, label=0)
    path = _write(tmp_path / "a.tfrecord", records)
    src = tfrecord(path, on_error="skip", chunk_records=512)
    with pytest.raises(SchemaDriftError, match=r"'s'.*int64_list.*a\.tfrecord \(record 1300\)"):
        list(src.iter_chunks())


def test_extra_feature_in_later_file(tmp_path):
    odd = [_example(id=1, x=1.0, y=1.0, k=2, s="a", label=0, extra=3.0)] * 5
    _ten_files(tmp_path, odd)
    src = tfrecord(str(tmp_path))
    with pytest.raises(SchemaDriftError, match=r"f2\.tfrecord.*'extra'.*f0\.tfrecord"):
        list(src.iter_chunks())
    # With columns=, features outside them are ignored.
    src = tfrecord(str(tmp_path), columns=["id", "x"])
    got = _chunks_to_columns(src.iter_chunks(), ["id", "x"])
    assert len(got["id"]) == 9 * 20 + 5


# -- order, shuffle, shards -------------------------------------------------------------------


def test_shuffle_is_deterministic_permutation(three_files):
    paths, _ = three_files
    src = tfrecord(paths, label="label")

    def ids(**kw):
        return _from_dataset(src.dataset(50, **kw), label="label")["id"]

    plain = ids()
    first = ids(shuffle=True, seed=7)
    assert np.array_equal(first, ids(shuffle=True, seed=7))
    assert not np.array_equal(first, plain)
    assert not np.array_equal(first, ids(shuffle=True, seed=8))
    assert sorted(first) == sorted(plain) and len(set(first)) == 750


@pytest.mark.parametrize("n_files", [1, 3])
def test_input_context_shards(tmp_path, n_files):
    paths = [
        _write(tmp_path / f"p{i}.tfrecord", _records(120, seed=i, start=1000 * i))
        for i in range(n_files)
    ]
    src = tfrecord(paths, label="label")
    every = _from_dataset(src.dataset(16), label="label")["id"]
    shards = []
    for i in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i)
        shards.append(_from_dataset(src.dataset(16, input_context=ctx), label="label")["id"])
    assert len(shards[0]) and len(shards[1])
    assert not set(shards[0]) & set(shards[1])
    assert sorted(np.concatenate(shards)) == sorted(every)


# -- corruption ------------------------------------------------------------------------------


def _corrupt_three(tmp_path, damage):
    """Three files of 300, 600 and 200 records; ``damage(path, records)`` spoils the second."""
    paths, records = [], []
    for i, n in enumerate([300, 600, 200]):
        recs = _records(n, seed=i, start=1000 * i)
        paths.append(_write(tmp_path / f"part-{i}.tfrecord", recs))
        records.append(recs)
    damage(paths[1], records[1])
    return paths, records


def _flip_byte(at):
    def damage(path, records):
        with open(path, "r+b") as f:
            pos = _offset(records, at) + 12 + len(records[at]) // 2  # inside the data
            f.seek(pos)
            byte = f.read(1)
            f.seek(pos)
            f.write(bytes([byte[0] ^ 0xFF]))

    return damage


def _truncate(at, into):
    """Cuts the file ``into`` bytes into record ``at`` (< 12: inside its header)."""

    def damage(path, records):
        with open(path, "r+b") as f:
            f.truncate(_offset(records, at) + into)

    return damage


CORRUPTIONS = [
    pytest.param(_flip_byte(437), 437, id="bad-crc"),
    pytest.param(_flip_byte(0), 0, id="bad-crc-first"),
    pytest.param(_truncate(437, 40), 437, id="truncated-data"),
    pytest.param(_truncate(437, 5), 437, id="truncated-header"),
    pytest.param(_truncate(599, 20), 599, id="truncated-last"),
]


@pytest.mark.parametrize("damage, bad", CORRUPTIONS)
@pytest.mark.parametrize("chunk_records", [100, 65536])
def test_corrupt_file_raise(tmp_path, damage, bad, chunk_records):
    paths, _ = _corrupt_three(tmp_path, damage)
    src = tfrecord(paths, chunk_records=chunk_records)
    with pytest.raises(DataError, match=rf"part-1\.tfrecord, record {bad}: (corrupt|truncated)"):
        list(src.iter_chunks())


def test_corrupt_file_raise_through_dataset(tmp_path):
    paths, _ = _corrupt_three(tmp_path, _flip_byte(437))
    src = tfrecord(paths, label="label")
    with pytest.raises(Exception, match=r"part-1\.tfrecord, record 437: corrupt record"):
        for _ in src.dataset(64):
            pass


@pytest.mark.parametrize("damage, bad", CORRUPTIONS)
@pytest.mark.parametrize(
    "chunk_records, on_error", [(100, "skip"), (65536, "skip"), (128, "quarantine")]
)
def test_corrupt_file_skip(tmp_path, damage, bad, chunk_records, on_error):
    paths, records = _corrupt_three(tmp_path, damage)
    quarantine = str(tmp_path / "q.jsonl") if on_error == "quarantine" else None
    src = tfrecord(
        paths, on_error=on_error, quarantine_path=quarantine, chunk_records=chunk_records
    )
    got = _chunks_to_columns(src.iter_chunks(), SCHEMA)
    kept = records[0] + records[1][:bad] + records[2]  # every record before the damage
    _assert_columns_equal(got, _reference(kept, SCHEMA))
    report = src.report()
    assert report.rows_read == report.rows_ok + report.rows_rejected
    assert (report.rows_ok, report.rows_rejected) == (len(kept), 1)
    assert report.lost_files == (paths[1],)
    assert report.rejected[0].record == bad and report.rejected[0].file == paths[1]
    if quarantine:
        lines = [json.loads(line) for line in open(quarantine, encoding="utf-8")]
        assert [(q["file"], q["record"]) for q in lines] == [(paths[1], bad)]


@pytest.mark.parametrize("chunk_records", [1500, 2048])
def test_blocks_never_exceed_chunk_records_near_a_corrupt_record(tmp_path, chunk_records):
    """Blocks are read as batches of 1024 put together; a block must not read past its end,
    where a corrupt record would fail it (and make a longer chunk)."""
    records = _records(5000, seed=7)
    path = _write(tmp_path / "long.tfrecord", records)
    _flip_byte(4999)(path, records)
    src = tfrecord(path, on_error="skip", chunk_records=chunk_records)
    chunks = list(src.iter_chunks())
    assert max(len(next(iter(c.values()))) for c in chunks) <= chunk_records
    _assert_columns_equal(_chunks_to_columns(chunks, SCHEMA), _reference(records[:4999], SCHEMA))
    assert [r.record for r in src.report().rejected] == [4999]


def _gzip_three(tmp_path, damage):
    """Three gzipped files of 2000 records; ``damage(compressed, uncompressed, records)``
    returns the new content of the second."""
    paths, records = [], []
    for i in range(3):
        recs = _records(2000, seed=i, start=10_000 * i)
        paths.append(_write(tmp_path / f"g{i}.tfrecord.gz", recs, compression="GZIP"))
        records.append(recs)
    with open(paths[1], "rb") as f:
        compressed = f.read()
    uncompressed = gzip.decompress(compressed)
    with open(paths[1], "wb") as f:
        f.write(damage(bytearray(compressed), uncompressed, records[1]))
    return paths, records


def _flip_middle(compressed, uncompressed, records):
    compressed[len(compressed) // 2] ^= 0xFF
    return bytes(compressed)


def _cut_middle(compressed, uncompressed, records):
    return bytes(compressed[: len(compressed) // 2])


def _whole_stream_ending_in_header(compressed, uncompressed, records):
    """A complete gzip stream whose data ends 5 bytes into the header of record 1500."""
    return gzip.compress(uncompressed[: _offset(records, 1500) + 5])


def _cut_stream_ending_in_header(compressed, uncompressed, records):
    """A gzip stream cut short (no trailer) right after 5 bytes of record 1500's header."""
    packer = zlib.compressobj(wbits=31)
    data = uncompressed[: _offset(records, 1500) + 5]
    return packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH)


@pytest.mark.parametrize(
    "damage, bad",
    [
        (_flip_middle, None),
        (_cut_middle, None),
        (_whole_stream_ending_in_header, 1500),
        (_cut_stream_ending_in_header, 1500),
    ],
    ids=["flipped", "cut", "whole-stream-ends-in-header", "cut-stream-ends-in-header"],
)
def test_corrupt_gzip(tmp_path, damage, bad):
    paths, records = _gzip_three(tmp_path, damage)
    where = rf"g1\.tfrecord\.gz, record {bad if bad is not None else '[0-9]+'}: "
    with pytest.raises(DataError, match=where + "(corrupt|truncated) record"):
        list(tfrecord(paths, chunk_records=500).iter_chunks())
    src = tfrecord(paths, on_error="skip", chunk_records=500)
    got = _chunks_to_columns(src.iter_chunks(), SCHEMA)
    report = src.report()
    found = report.rejected[0].record
    assert 0 <= found < 2000 and (bad is None or found == bad)
    kept = records[0] + records[1][:found] + records[2]
    _assert_columns_equal(got, _reference(kept, SCHEMA))
    assert (report.rows_ok, report.rows_rejected) == (len(kept), 1)
    assert report.rows_read == report.rows_ok + report.rows_rejected
    assert report.lost_files == (paths[1],)


def test_gzip_with_several_members(tmp_path):
    """Concatenated gzip files are one valid gzip file: every member is read."""
    records = _records(300)
    first = _write(tmp_path / "a.tfrecord.gz", records[:100], compression="GZIP")
    second = _write(tmp_path / "b.tfrecord.gz", records[100:], compression="GZIP")
    both = tmp_path / "both" / "ab.tfrecord.gz"
    both.parent.mkdir()
    both.write_bytes(open(first, "rb").read() + open(second, "rb").read())
    src = tfrecord(str(both), on_error="skip")
    got = _chunks_to_columns(src.iter_chunks(), SCHEMA)
    report = src.report()
    assert report.rows_read == 300, str(report)
    _assert_columns_equal(got, _reference(records, SCHEMA))


INVALID = b"\xff\xff\xff not an Example"


@pytest.mark.parametrize("chunk_records", [64, 65536])
def test_invalid_example_bytes_are_bisected(tmp_path, chunk_records):
    with pytest.raises(Exception):  # noqa: B017 - the test data must really be invalid
        tf.train.Example.FromString(INVALID)
    records = _records(300)
    bad = [3, 70, 71, 150, 299]
    for i in bad:
        records[i] = INVALID
    path = _write(tmp_path / "a.tfrecord", records)
    with pytest.raises(DataError, match=r"a\.tfrecord, record 3: not a valid tf.train.Example"):
        list(tfrecord(path, chunk_records=chunk_records).iter_chunks())
    src = tfrecord(path, on_error="skip", chunk_records=chunk_records)
    got = _chunks_to_columns(src.iter_chunks(), SCHEMA)
    keep = [r for i, r in enumerate(records) if i not in bad]
    _assert_columns_equal(got, _reference(keep, SCHEMA))
    report = src.report()
    assert [r.record for r in report.rejected] == bad
    assert (report.rows_read, report.rows_ok, report.rows_rejected) == (300, 295, 5)
    assert report.lost_files == ()


# -- files -----------------------------------------------------------------------------------


def test_empty_file(tmp_path, three_files):
    paths, records = three_files
    empty = _write(tmp_path / "part-15.tfrecord", [])
    assert os.path.getsize(empty) == 0
    src = tfrecord(str(tmp_path))
    assert empty in src.files
    got = _chunks_to_columns(src.iter_chunks(), SCHEMA)
    _assert_columns_equal(got, _reference([r for recs in records for r in recs], SCHEMA))
    alone = tfrecord(empty, schema={"x": "float32"})
    assert list(alone.iter_chunks()) == []
    assert list(alone.dataset(8)) == []
    assert alone.report().rows_read == 0
    with pytest.raises(SchemaError, match="schema="):
        tfrecord(empty)


def test_empty_gzip_file(tmp_path):
    empty = _write(tmp_path / "e.tfrecord.gz", [], compression="GZIP")
    src = tfrecord(empty, schema={"x": "float32"})
    assert list(src.iter_chunks()) == []


def test_missing_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.tfrecord"):
        tfrecord(str(tmp_path / "nothing.tfrecord"))
    with pytest.raises(FileNotFoundError, match=r"\*\.tfrecord"):
        tfrecord(str(tmp_path / "*.tfrecord"))
    with pytest.raises(FileNotFoundError, match="holds no TFRecord"):
        tfrecord(str(tmp_path))
