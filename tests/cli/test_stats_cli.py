"""``tfstream stats``: the summary, the saved JSON, sampling options and errors."""

import json

import numpy as np
import pandas as pd
import pytest

import tfstream as ts
from tfstream.cli import main
from tfstream.testing import write_csv_shards


@pytest.fixture
def csv_dir(tmp_path):
    directory = tmp_path / "csv"
    write_csv_shards(directory, 3000, shards=3, features=3, strings=1, seed=4, bad_rows=2)
    return directory


def test_stats_prints_a_summary_and_saves_json(capsys, tmp_path, csv_dir):
    out = tmp_path / "stats.json"
    argv = ["stats", str(csv_dir), "--label", "label", "--on-error", "skip", "-o", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "statistics of 3,000 rows, 5 columns" in text
    assert "label (label)" in text and "s0" in text
    assert "rejected 2" in text and "line " in text
    assert f"statistics saved to {out}" in text
    stats = ts.Stats.load(out)
    assert stats.rows == 3000 and stats.label == "label"
    # pandas skips the row with too many fields; the short row has a missing s0 (the generated
    # data has none)
    frame = pd.concat(pd.read_csv(p, on_bad_lines="skip") for p in sorted(csv_dir.glob("*.csv")))
    frame = frame.dropna()
    assert len(frame) == 3000
    f0 = frame["f0"].to_numpy(np.float32).astype(np.float64)
    assert stats["f0"].mean == pytest.approx(f0.mean(), rel=1e-12)
    assert json.loads(out.read_text())["format"] == "tfstream.stats"


def test_stats_saves_to_a_url(capsys, tmp_path, csv_dir):
    # fsspec's in-memory filesystem (--storage-options are passed to it, as to the inputs).
    url = f"memory://tfstream-cli-{tmp_path.name}/stats.json"
    argv = ["stats", str(csv_dir), "--on-error", "skip", "--quiet", "-o", url]
    assert main(argv + ["--storage-options", "{}"]) == 0
    assert f"statistics saved to {url}" in capsys.readouterr().out
    assert ts.Stats.load(url).rows == 3000
    assert not (tmp_path / "memory:").exists()


@pytest.mark.parametrize(
    ("option", "method"),
    [
        (["--sample", "0.2"], "fraction"),
        (["--reservoir", "500"], "reservoir"),
        (["--head", "100"], "head"),
    ],
)
def test_stats_sampling_options(capsys, tmp_path, csv_dir, option, method):
    out = tmp_path / "s.json"
    argv = [
        "stats",
        str(csv_dir),
        "--schema",
        "f2=float32",
        "--on-error",
        "skip",
        "--quiet",
        "-o",
        str(out),
        *option,
    ]
    assert main(argv) == 0
    stats = ts.Stats.load(out)
    assert stats.sample.method == method
    assert "+-stderr" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--sample", "1.5"], "expected a fraction in (0, 1)"),
        (["--sample", "0.1", "--head", "3"], "not allowed with argument"),
        (["-o", "stats.txt"], "--output must name a .json file"),
    ],
)
def test_stats_bad_options(capsys, csv_dir, argv, match):
    with pytest.raises(SystemExit) if "--output" not in match else _no_raise():
        code = main(["stats", str(csv_dir), "--quiet", *argv])
        assert code == 2
    assert match in capsys.readouterr().err


def test_stats_bad_row_exits_2_with_one_line(capsys, csv_dir):
    assert main(["stats", str(csv_dir), "--schema", "f2=float32", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tfstream stats: error: ")
    assert "part-00001.csv, line" in err[0]


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_stats_does_not_import_tensorflow(tmp_path, csv_dir):
    """Statistics need no TensorFlow: `tfstream stats` must not pay its ~3 s import."""
    import subprocess
    import sys

    code = (
        "import sys; from tfstream.cli import main; "
        f"rc = main(['stats', {str(csv_dir)!r}, '--on-error', 'skip', '--quiet']); "
        "print('TF' if 'tensorflow' in sys.modules else 'no TF', rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "no TF 0", out.stderr


def test_stats_progress_bar_counts_bytes_of_local_and_url_files(capsys, csv_dir):
    """The bar's total is the files' size (an ETA is possible); ``--head`` counts rows."""
    import os
    import uuid

    import fsspec
    from tqdm import tqdm

    total = sum(os.path.getsize(p) for p in csv_dir.glob("*.csv"))
    size = tqdm.format_sizeof(total, divisor=1024)
    assert main(["stats", str(csv_dir), "--on-error", "skip", "--sample", "0.5"]) == 0
    err = capsys.readouterr().err
    assert f"/{size} " in err and "B/s" in err
    fs = fsspec.filesystem("memory")
    root = f"/tfstream-cli-{uuid.uuid4().hex}"
    for p in csv_dir.glob("*.csv"):
        fs.pipe(f"{root}/{p.name}", p.read_bytes())
    try:
        assert main(["stats", f"memory://{root}/", "--on-error", "skip"]) == 0
        captured = capsys.readouterr()
        assert f"/{size} " in captured.err and "B/s" in captured.err
        assert "statistics of 3,000 rows" in captured.out
    finally:
        fs.rm(root, recursive=True)
    assert main(["stats", str(csv_dir), "--on-error", "skip", "--head", "100"]) == 0
    err = capsys.readouterr().err
    assert "rows" in err and f"/{size} " not in err and "B/s" not in err
