"""open_source / detect_format: the format from the file suffixes (used by every command)."""

import gzip
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tfstream.sources.auto import detect_format, open_source
from tfstream.testing import write_parquet, write_tfrecord


def _rows(source):
    return sum(len(chunk["x"]) for chunk in source.iter_chunks())


@pytest.fixture
def data(tmp_path):
    (tmp_path / "a.csv").write_text("x,y\n1,2\n3,4\n")
    with gzip.open(tmp_path / "b.csv.gz", "wt") as f:
        f.write("x,y\n5,6\n")
    (tmp_path / "c.tsv").write_text("x\ty\n7\t8\n")
    (tmp_path / "notes.txt").write_text("x,y\n1,2\n")
    hive = tmp_path / "hive" / "year=2024"
    hive.mkdir(parents=True)
    pq.write_table(pa.table({"x": [1.0, 2.0]}), hive / "part-0.parquet")
    (tmp_path / "hive" / "_SUCCESS").write_text("")
    return tmp_path


@pytest.mark.parametrize(
    "paths, fmt, rows",
    [
        ("a.csv", "csv", 2),
        ("b.csv.gz", "csv", 1),
        (["a.csv", "b.csv.gz"], "csv", 3),
        ("*.csv*", "csv", 3),
        ("hive", "parquet", 2),
    ],
)
def test_detects_and_opens(data, paths, fmt, rows):
    paths = [str(data / p) for p in paths] if isinstance(paths, list) else str(data / paths)
    assert detect_format(paths) == fmt
    assert _rows(open_source(paths)) == rows


def test_tsv_reads_with_tabs(data):
    source = open_source(str(data / "c.tsv"))
    assert list(source.schema) == ["x", "y"]
    assert _rows(source) == 1


def test_tfrecord_and_parquet_files(tmp_path):
    paths = write_tfrecord(tmp_path / "t", 50, shards=2, features=1, compression="GZIP")
    assert all(p.endswith(".tfrecord.gz") for p in paths)
    assert detect_format(str(tmp_path / "t")) == "tfrecord"
    source = open_source(str(tmp_path / "t"), label="label")
    assert sum(len(c["label"]) for c in source.iter_chunks()) == 50
    paths = write_parquet(tmp_path / "p", 30, shards=3, features=1)
    os.rename(paths[0], paths[0].replace(".parquet", ".pq"))
    assert detect_format(str(tmp_path / "p")) == "parquet"
    assert sum(len(c["label"]) for c in open_source(str(tmp_path / "p")).iter_chunks()) == 30


def test_format_overrides_suffix(data):
    assert _rows(open_source(str(data / "notes.txt"), format="csv")) == 1


@pytest.mark.parametrize(
    "paths, error, match",
    [
        ("notes.txt", ValueError, "Cannot tell the format of .*--format"),
        (["a.csv", "hive"], ValueError, "mix files of several formats"),
        ("missing.csv", FileNotFoundError, "does not exist"),
        ("missing", FileNotFoundError, "does not exist"),
        ("*.nothing", FileNotFoundError, "matched no file"),
        ([], FileNotFoundError, "No paths"),
    ],
)
def test_errors(data, paths, error, match):
    paths = [str(data / p) for p in paths] if isinstance(paths, list) else str(data / paths)
    with pytest.raises(error, match=match):
        open_source(paths)


def test_directory_without_known_files(tmp_path):
    (tmp_path / "readme.md").write_text("hi")
    with pytest.raises(ValueError, match="no file with a known suffix"):
        detect_format(str(tmp_path))
    with pytest.raises(ValueError, match="`format` must be one of"):
        open_source(str(tmp_path), format="json")
