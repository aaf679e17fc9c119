"""The ``tfstream`` command line, run in-process through ``main([...])`` (and once as the
installed console script)."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from tfstream.cli import main
from tfstream.testing import write_csv_shards

TFSTREAM = os.path.join(os.path.dirname(sys.executable), "tfstream")


@pytest.fixture
def csv_dir(tmp_path):
    directory = tmp_path / "csv"
    write_csv_shards(directory, 600, shards=3, features=3, strings=1, seed=1, bad_rows=2)
    return directory


def _one_error_line(capsys, command):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"tfstream {command}: error: ")
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


# -- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--help"], ["inspect", "--help"], ["convert", "--help"],
                                  ["demo", "--help"], ["stats", "--help"], ["fit", "--help"],
                                  ["export", "--help"], ["predict", "--help"]])  # fmt: skip
def test_help(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tfstream")
    assert "examples:" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "inspect" in capsys.readouterr().out


# -- inspect ---------------------------------------------------------------------------------


def test_inspect_prints_schema_sample_rows_and_rejected_lines(capsys, csv_dir):
    assert main(["inspect", str(csv_dir), "--label", "label", "--on-error", "skip"]) == 0
    out = capsys.readouterr().out
    assert "files: 3 csv files" in out
    assert "schema: 5 columns (label: label)" in out
    assert "label  numeric  int64" in out
    assert "f0     numeric  float32" in out
    assert "s0     string   string" in out
    assert "sample: first 5 rows" in out
    assert "rows: 600 " in out
    assert "rows read 602, kept 600, rejected 2" in out
    bad_file = str(csv_dir / "part-00001.csv")
    rejected = [line for line in out.splitlines() if line.startswith("  rejected: ")]
    assert len(rejected) == 2
    assert all(line.startswith(f"  rejected: {bad_file}, line ") for line in rejected)


def test_inspect_bad_row_exits_2_with_one_line(capsys, csv_dir):
    assert main(["inspect", str(csv_dir)]) == 2
    line = _one_error_line(capsys, "inspect")
    assert str(csv_dir / "part-00001.csv") + ", line " in line
    assert "--on-error skip" in line


@pytest.mark.parametrize(
    "argv, match",
    [
        (["inspect", "/no/such/file.csv"], "does not exist"),
        (["inspect", "/no/such/*.csv"], "matched no file"),
        (["inspect", "{data}/notes.txt"], "--format"),
        (["inspect", "{csv}", "--label", "nope"], "`label` must name a column"),
        (["inspect", "{csv}", "--format", "parquet"], "Parquet"),
        (["inspect", "{csv}", "--delimiter", ";", "--format", "parquet"], "CSV input only"),
    ],
)
def test_inspect_errors_exit_2_with_one_line(capsys, tmp_path, csv_dir, argv, match):
    (tmp_path / "notes.txt").write_text("a,b\n1,2\n")
    argv = [a.format(data=tmp_path, csv=csv_dir) for a in argv]
    assert main(argv) == 2
    assert match in _one_error_line(capsys, "inspect")


def test_inspect_json(capsys, csv_dir):
    argv = ["inspect", str(csv_dir), "--on-error", "skip", "--json", "--rows", "2"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["format"] == "csv" and len(result["files"]) == 3
    assert [c["name"] for c in result["schema"]] == ["label", "f0", "f1", "f2", "s0"]
    assert len(result["sample"]) == 2
    assert list(result["sample"][0]) == ["label", "f0", "f1", "f2", "s0"]
    assert result["rows"] == 600
    assert result["report"]["rows_rejected"] == 2
    assert result["report"]["rejected"][0]["line"] > 1


def test_inspect_tsv_and_small_files(capsys, tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\n1\tx\n2\ty\n")
    assert main(["inspect", str(path), "--rows", "10"]) == 0
    out = capsys.readouterr().out
    assert "sample: first 2 rows" in out and "rows: 2 " in out


def test_installed_console_script(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text("label,x,name\n1,0.5,a\n0,1.5,b\n")
    done = subprocess.run(
        [TFSTREAM, "inspect", str(path), "--label", "label"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "rows: 2 " in done.stdout
    assert "x      numeric  float32" in done.stdout
    done = subprocess.run([TFSTREAM, "inspect", str(tmp_path / "missing.csv")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"tfstream inspect: error: The CSV path '{tmp_path / 'missing.csv'}' does not exist."
    ]


# -- convert ---------------------------------------------------------------------------------


@pytest.mark.parametrize("to, suffix", [("tfrecord", ".tfrecord"), ("parquet", ".parquet")])
def test_convert_creates_shards(capsys, tmp_path, csv_dir, to, suffix):
    out_dir = tmp_path / to
    argv = ["convert", str(csv_dir), "--to", to, "--output", str(out_dir)]
    argv += ["--max-rows-per-shard", "250", "--on-error", "skip"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    names = sorted(os.listdir(out_dir))
    assert names == [f"part-0000{i}{suffix}" for i in range(3)]
    assert "wrote 3 shards: 600 rows" in out
    assert "rows read 602, kept 600, rejected 2" in out
    assert "rows/s" in out
    # A second run refuses to mix its shards with the first's, unless told to overwrite.
    assert main(argv) == 2
    assert "overwrite" in _one_error_line(capsys, "convert")
    assert main(argv + ["--overwrite", "--max-rows-per-shard", "1000", "--quiet"]) == 0
    assert len(os.listdir(out_dir)) == 1


def test_convert_json_gzip_and_byte_bound(capsys, tmp_path, csv_dir):
    out_dir = tmp_path / "out"
    argv = ["convert", str(csv_dir), "--to", "tfrecord", "-o", str(out_dir), "--json"]
    argv += ["--compression", "gzip", "--max-bytes-per-shard", "10KiB", "--on-error", "skip"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] == 600 and len(result["shards"]) > 1
    assert all(s["path"].endswith(".tfrecord.gz") for s in result["shards"])
    assert sum(s["rows"] for s in result["shards"]) == 600


def test_convert_parquet_then_inspect_it(capsys, tmp_path):
    write_csv_shards(tmp_path / "clean", 600, shards=2, features=3, seed=2)
    out_dir = tmp_path / "pq"
    argv = ["convert", str(tmp_path / "clean"), "--to", "parquet", "-o", str(out_dir)]
    assert main(argv + ["--columns", "label,f1"]) == 0
    assert pq.read_table(str(out_dir)).column_names == ["label", "f1"]
    capsys.readouterr()
    assert main(["inspect", str(out_dir), "--label", "label"]) == 0
    out = capsys.readouterr().out
    assert "files: 1 parquet file" in out and "rows: 600 " in out


def test_convert_bad_options(capsys, tmp_path, csv_dir):
    argv = ["convert", str(csv_dir), "--to", "tfrecord", "-o", str(tmp_path / "o")]
    assert main(argv + ["--compression", "zstd"]) == 2
    assert "gzip" in _one_error_line(capsys, "convert")
    with pytest.raises(SystemExit) as exit_info:
        main(argv + ["--max-bytes-per-shard", "lots"])
    assert exit_info.value.code == 2
    assert "128MiB" in capsys.readouterr().err


# -- demo ------------------------------------------------------------------------------------
