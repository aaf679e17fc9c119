"""fsspec URLs for every file source: ``memory://`` and a real S3 server (moto) on loopback.

Each remote read is compared with the local read of the same bytes, and the local reads are
checked against pandas/pyarrow in the sources' own tests.
"""

import gzip
import os
import socket
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tfstream as ts
from tfstream.sources.auto import open_source
from tfstream.sources.files import expand_paths, redact
from tfstream.testing import dataset_columns
from tfstream.testing.data import write_csv_shards, write_tfrecord

QUIRKY = (
    "\ufeffid,price,name,note\r\n"
    '1,1.5,plain,"has, comma"\r\n'
    '2,,"quoted ""q""","two\r\nlines"\r\n'
    "3,NA,NA,\r\n"
    "4,oops,x,y\r\n"
    '5,-2.25e3,"",x\r\n'
    "6,7\r\n"
    "7,nan,N/A,y\r\n"
) + "".join(f"{i},{i / 4},n{i},note {i}\r\n" for i in range(8, 400))


def read_all(src, batch_size=64):
    """All rows of one pass of ``src.dataset()``, as numpy columns."""
    return dataset_columns(src, batch_size)


def assert_same(got, want):
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def upload(fs, local_root, remote_root):
    """Copies every file below ``local_root`` to ``remote_root`` (a path on ``fs``)."""
    for directory, _, names in os.walk(local_root):
        for name in names:
            local = os.path.join(directory, name)
            relative = os.path.relpath(local, local_root).replace(os.sep, "/")
            with open(local, "rb") as f:
                fs.pipe(f"{remote_root}/{relative}", f.read())


@pytest.fixture
def dataset_dir(tmp_path):
    """Local files of every format: CSV (plain with quirks and bad rows, gzipped), Parquet
    (Hive-partitioned) and TFRecord (plain and GZIP)."""
    root = tmp_path / "data"
    csv_dir = root / "csv"
    write_csv_shards(csv_dir, 300, shards=2, features=3, strings=1, seed=1)
    (root / "quirky").mkdir()
    with open(root / "quirky" / "quirky.csv", "w", encoding="utf-8", newline="") as f:
        f.write(QUIRKY)
    frame = pd.read_csv(csv_dir / "part-00000.csv")
    with gzip.open(csv_dir / "part-00002.csv.gz", "wt") as f:
        frame.to_csv(f, index=False)
    table = pa.table({"x": np.arange(40, dtype=np.float64) / 8, "y": np.arange(40) % 3})
    for day in ("2024-01-01", "2024-01-02"):
        out = root / "parquet" / f"day={day}"
        out.mkdir(parents=True)
        pq.write_table(table, out / "part-0.parquet", row_group_size=16)
    write_tfrecord(root / "tfrecord", 250, shards=2, features=3, strings=1, seed=2)
    write_tfrecord(root / "tfrecord_gz", 120, features=2, seed=3, compression="GZIP", prefix="gz")
    return root


# -- memory:// -------------------------------------------------------------------------------


def test_csv_memory_url_equals_local(dataset_dir, memory_root):
    fs, root = memory_root
    upload(fs, dataset_dir, root)
    local = ts.csv(str(dataset_dir / "csv"), label="label")
    remote = ts.csv(f"memory://{root}/csv/", label="label", block_bytes=4096)
    assert remote.files == [f"memory://{root}/csv/{os.path.basename(p)}" for p in local.files]
    assert remote.schema == local.schema
    assert_same(read_all(remote), read_all(local))
    globbed = ts.csv(f"memory://{root}/csv/*.csv.gz", label="label")
    assert_same(read_all(globbed), read_all(ts.csv(local.files[-1], label="label")))


def test_csv_memory_quirks_and_bad_rows_equal_local(dataset_dir, memory_root):
    """Quoted newlines, CRLF, a BOM, NA tokens and bad rows, streamed in 1 KiB blocks."""
    fs, root = memory_root
    upload(fs, dataset_dir, root)
    kwargs = dict(schema={"id": "int64"}, on_error="skip", block_bytes=1024)
    local = ts.csv(str(dataset_dir / "quirky" / "quirky.csv"), **kwargs)
    remote = ts.csv(f"memory://{root}/quirky/quirky.csv", **kwargs)
    want, got = read_all(local), read_all(remote)
    assert_same(got, want)
    assert len(want["id"]) == 398  # ids 1..399 but for the short row "6,7"
    rejected = [(r.line, r.error, r.text) for r in remote.report().rejected]
    assert rejected == [(r.line, r.error, r.text) for r in local.report().rejected]
    assert rejected == [(8, "expected 4 fields, found 2", "6,7")]
    assert remote.report().rejected[0].file == f"memory://{root}/quirky/quirky.csv"


def test_parquet_memory_hive_directory_equals_local(dataset_dir, memory_root):
    fs, root = memory_root
    upload(fs, dataset_dir, root)
    local = ts.parquet(str(dataset_dir / "parquet"), label="y")
    remote = ts.parquet(f"memory://{root}/parquet", label="y", batch_rows=10)
    assert remote.schema == local.schema
    assert "day" in remote.schema
    got, want = read_all(remote), read_all(local)
    assert_same(got, want)
    reference = pq.read_table(str(dataset_dir / "parquet"))  # pyarrow's own Hive reading
    np.testing.assert_array_equal(np.sort(got["x"]), np.sort(reference["x"].to_numpy()))
    assert sorted(set(got["day"].astype(str))) == ["2024-01-01", "2024-01-02"]


def test_tfrecord_memory_equals_local(dataset_dir, memory_root):
    fs, root = memory_root
    upload(fs, dataset_dir, root)
    for sub in ("tfrecord", "tfrecord_gz"):
        local = ts.tfrecord(str(dataset_dir / sub), label="label")
        remote = ts.tfrecord(f"memory://{root}/{sub}/", label="label", chunk_records=32)
        assert remote.schema == local.schema
        assert_same(read_all(remote), read_all(local))


def test_tfrecord_memory_truncated_file_names_the_url(dataset_dir, memory_root):
    """The truncation check runs on the local copy; the error names the URL."""
    fs, root = memory_root
    path = write_tfrecord(dataset_dir / "cut", 50, features=2)[0]
    with open(path, "rb") as f:
        data = f.read()
    url = f"memory://{root}/cut.tfrecord"
    fs.pipe(f"{root}/cut.tfrecord", data[:-7])
    src = ts.tfrecord(url, on_error="skip")
    rows = sum(len(c["label"]) for c in src.iter_chunks())
    assert rows == 49
    lost = src.report().lost_files
    assert len(lost) == 1 and lost[0] == url


def test_open_source_detects_format_of_url_directories(dataset_dir, memory_root):
    fs, root = memory_root
    upload(fs, dataset_dir, root)
    for sub, kind in [("parquet", "ParquetSource"), ("tfrecord", "TFRecordSource")]:
        src = open_source(f"memory://{root}/{sub}")
        assert type(src).__name__ == kind
    src = open_source(f"memory://{root}/csv/part-*.csv", label="label")
    assert type(src).__name__ == "CsvSource" and len(src.files) == 2


def test_file_urls_are_local_paths(dataset_dir):
    directory = dataset_dir / "csv"
    files = expand_paths(f"file://{directory}", suffixes=(".csv",), what="CSV")
    assert files == [str(directory / "part-00000.csv"), str(directory / "part-00001.csv")]
    src = ts.csv(f"file://{directory}/part-00000.csv", label="label")
    assert_same(read_all(src), read_all(ts.csv(files[0], label="label")))


# -- credentials and errors ------------------------------------------------------------------


def test_redact_drops_credentials_and_queries():
    assert redact("s3://AKIA:s3cr3t@bucket/a/b.csv?access_key=k&x=1") == "s3://bucket/a/b.csv"
    assert redact("hdfs://user:pw@namenode:8020/data") == "hdfs://namenode:8020/data"
    assert redact("/local/path?.csv") == "/local/path?.csv"  # local paths are left alone


@pytest.mark.parametrize("suffix", ["", "*.csv", "dir/"])
def test_errors_never_show_credentials(suffix):
    url = f"memory://alice:s3cr3t@nowhere-{uuid.uuid4().hex}/{suffix}?access_key=k3y"
    with pytest.raises(FileNotFoundError) as info:
        ts.csv(url)
    message = str(info.value)
    assert "s3cr3t" not in message and "k3y" not in message and "alice" not in message
    assert "nowhere-" in message


def test_missing_filesystem_names_the_extra():
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed")
    with pytest.raises(ImportError, match=r"pip install 'tfstream\[gcs\]'") as info:
        ts.parquet("gs://user:s3cr3t@bucket/data/?token=t0k")
    assert "s3cr3t" not in str(info.value) and "t0k" not in str(info.value)


# -- S3 (moto server on loopback) ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    options = {
        "key": "AKIAFAKEKEY",
        "secret": "fake-Secret-Value",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-west-2"},
    }
    yield options
    server.stop()


def test_s3_csv_parquet_tfrecord_equal_local(dataset_dir, s3_server):
    import s3fs

    fs = s3fs.S3FileSystem(**s3_server)
    bucket = f"tfstream-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    fs.put(str(dataset_dir) + "/", f"{bucket}/data", recursive=True)
    fs.invalidate_cache()
    so = s3_server
    pairs = [
        (
            ts.csv(f"s3://{bucket}/data/csv/", label="label", storage_options=so),
            ts.csv(str(dataset_dir / "csv"), label="label"),
        ),
        (
            ts.parquet(f"s3://{bucket}/data/parquet/", label="y", storage_options=so),
            ts.parquet(str(dataset_dir / "parquet"), label="y"),
        ),
        (
            ts.tfrecord(f"s3://{bucket}/data/tfrecord/*.tfrecord", storage_options=so),
            ts.tfrecord(str(dataset_dir / "tfrecord")),
        ),
        (
            open_source(f"s3://{bucket}/data/tfrecord_gz", storage_options=so),
            ts.tfrecord(str(dataset_dir / "tfrecord_gz")),
        ),
    ]
    for remote, local in pairs:
        assert all(f.startswith(f"s3://{bucket}/data/") for f in remote.files)
        assert remote.schema == local.schema
        assert_same(read_all(remote), read_all(local))
    with pytest.raises(FileNotFoundError) as info:
        ts.csv(f"s3://{bucket}/data/missing.csv", storage_options=so)
    message = str(info.value)
    assert "fake-Secret-Value" not in message and "AKIAFAKEKEY" not in message


# -- writing shards to a URL -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["tfrecord", "parquet"])
def test_convert_to_memory_url_reads_back_equal(dataset_dir, memory_root, fmt):
    from tfstream.sources.writer import ShardWriter, convert

    fs, root = memory_root
    src = ts.csv(str(dataset_dir / "csv"), label="label")
    out = f"memory://{root}/out"
    shards = convert(src, out, format=fmt, max_rows_per_shard=200)
    assert len(shards) == 3 and all(s.startswith(f"memory://{root}/out/part-") for s in shards)
    assert sorted(fs.ls(f"{root}/out", detail=False)) == [s[len("memory://") :] for s in shards]
    back = open_source(out, label="label")
    assert_same(read_all(back), read_all(src))
    with ShardWriter(f"{out}2", format=fmt, schema=src.schema) as writer:
        writer.write(next(src.iter_chunks()))
    assert writer.shard_bytes == [fs.size(writer.shards[0][len("memory://") :])] > [0]
    with pytest.raises(FileExistsError, match="already holds 3"):
        convert(src, out, format=fmt)
    # An exception inside the block leaves the completed shards and no partial object.
    with pytest.raises(RuntimeError, match="stop"):
        with ShardWriter(out, format=fmt, schema=src.schema, overwrite=True) as writer:
            writer.write(next(src.iter_chunks()))
            raise RuntimeError("stop")
    assert fs.ls(f"{root}/out", detail=False) == []


def test_convert_to_s3_reads_back_equal(dataset_dir, s3_server):
    import s3fs

    from tfstream.sources.writer import convert

    fs = s3fs.S3FileSystem(**s3_server)
    bucket = f"tfstream-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    src = ts.parquet(str(dataset_dir / "parquet"), label="y")
    shards = convert(
        src, f"s3://{bucket}/out/", format="tfrecord", max_rows_per_shard=30,
        storage_options=s3_server,
    )  # fmt: skip
    assert shards == [f"s3://{bucket}/out/part-{i:05d}.tfrecord" for i in range(3)]
    fs.invalidate_cache()
    assert sorted(fs.ls(f"{bucket}/out", detail=False)) == [s[len("s3://") :] for s in shards]
    back = ts.tfrecord(f"s3://{bucket}/out", label="y", storage_options=s3_server)
    got, want = read_all(back), read_all(src)
    for name in ["x", "__label__"]:
        np.testing.assert_array_equal(got[name], want[name])
    np.testing.assert_array_equal(got["day"].astype(str), want["day"].astype(str))


def test_cli_convert_to_a_memory_url(dataset_dir, memory_root, capsys):
    import json

    from tfstream.cli import main

    fs, root = memory_root
    output = f"memory://{root}/cli"
    code = main(["convert", str(dataset_dir / "csv"), "--to", "parquet", "--output", output,
                 "--json", "--quiet"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    shards = result["shards"]
    assert sum(s["rows"] for s in shards) == 300 + 150  # 2 shards of 150 rows + the gzip copy
    for shard in shards:
        assert shard["bytes"] == fs.size(shard["path"].removeprefix("memory://")) > 0


def test_a_url_glob_skips_hidden_names_as_a_local_glob_does(memory_root):
    """An interrupted upload leaves a hidden temporary key; ``*`` must not read it."""
    fs, root = memory_root
    fs.pipe_file(f"{root}/d/part-00000.csv", b"a\n1\n")
    fs.pipe_file(f"{root}/d/.part-00001.csv.tmp-99-abcdef12", b"a\n2\n")
    assert expand_paths(f"memory://{root}/d/*", suffixes=(".csv",), what="CSV") == [
        f"memory://{root}/d/part-00000.csv"
    ]
    hidden = expand_paths(f"memory://{root}/d/.*", suffixes=(".csv",), what="CSV")
    assert hidden == [f"memory://{root}/d/.part-00001.csv.tmp-99-abcdef12"]  # asked for
