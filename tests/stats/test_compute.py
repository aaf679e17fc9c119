"""compute_stats over real sources, in full and on samples."""

import math

import numpy as np
import pandas as pd
import pytest

import tfstream as ts
from tfstream.stats import compute as compute_module
from tfstream.testing import write_csv_shards


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("csv")
    write_csv_shards(directory, 9_000, shards=3, features=4, strings=2, seed=3)
    return directory


def test_full_pass_over_csv_matches_pandas(csv_dir):
    src = ts.csv(csv_dir, label="label")
    stats = ts.compute_stats(src, progress=False)
    frame = pd.concat(
        pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in sorted(csv_dir.glob("*.csv"))
    )
    assert stats.rows == len(frame) == src.report().rows_ok
    assert stats.label == "label" and stats.feature_names == [c for c in frame if c != "label"]
    for name in ["f0", "f1", "f2", "f3", "label"]:
        # pandas parses the text as float64; the source reads float32, so compare to float32
        values = frame[name].to_numpy(dtype=np.float64)
        if name != "label":
            values = values.astype(np.float32).astype(np.float64)
        finite = values[np.isfinite(values)]
        assert stats[name].count == finite.size
        assert stats[name].mean == pytest.approx(finite.mean(), rel=1e-12)
        assert stats[name].variance == pytest.approx(finite.var(), rel=1e-12)
    for name in ["s0", "s1"]:
        counts = frame[name].replace("", np.nan).dropna().value_counts().to_dict()
        assert dict(stats[name].frequencies()) == counts


def test_columns_selects_and_checks(csv_dir):
    src = ts.csv(csv_dir, label="label")
    stats = ts.compute_stats(src, columns=["f1", "s0"], progress=False)
    assert stats.columns == ["f1", "s0"] and stats.label is None
    with pytest.raises(ValueError, match=r"does not have: \['nope'\]"):
        ts.compute_stats(src, columns=["nope"], progress=False)


def test_rejects_non_sources():
    with pytest.raises(TypeError, match="takes a tfstream source"):
        ts.compute_stats([{"x": np.ones(3)}])


def test_skipped_rows_are_not_in_the_statistics(tmp_path):
    write_csv_shards(tmp_path, 2000, features=2, seed=1, bad_rows=5)
    # the unparsable number sits in f1: declared float, it cannot sway inference to text
    src = ts.csv(tmp_path, label="label", on_error="skip", schema={"f1": "float32"})
    stats = ts.compute_stats(src, progress=False)
    report = src.report()
    assert report.rows_rejected == 5
    assert stats.rows == report.rows_ok == report.rows_read - 5


def _numeric_frame(n=200_000, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(10.0, 2.0, n), "id": np.arange(n)})


def test_fraction_sample_reports_size_and_standard_error():
    frame = _numeric_frame()
    stats = ts.compute_stats(ts.from_pandas(frame), sample=0.05, seed=1, progress=False)
    s = stats.sample
    assert s.method == "fraction" and s.population == len(frame) and s.parameter == 0.05
    assert abs(s.size - 10_000) < 5 * math.sqrt(10_000)
    col = stats["x"]
    expected = math.sqrt(np.var(frame["x"]) / s.size * (1 - s.size / len(frame)))
    assert col.mean_stderr == pytest.approx(expected, rel=0.05)
    assert abs(col.mean - frame["x"].mean()) < 5 * col.mean_stderr
    again = ts.compute_stats(ts.from_pandas(frame), sample=0.05, seed=1, progress=False)
    assert again["x"].mean == col.mean  # seeded
    full = ts.compute_stats(ts.from_pandas(frame), progress=False)
    assert full["x"].mean_stderr == 0.0 and full.sample.method == "full"


def test_reservoir_sample_has_exactly_k_rows():
    frame = _numeric_frame(50_000)
    stats = ts.compute_stats(ts.from_pandas(frame), sample=ts.Reservoir(1000), progress=False)
    assert stats.rows == 1000 and stats.sample.method == "reservoir"
    assert stats.sample.population == 50_000
    assert abs(stats["x"].mean - 10.0) < 5 * stats["x"].mean_stderr
    small = ts.compute_stats(
        ts.from_pandas(frame.iloc[:10]), sample=ts.Reservoir(1000), progress=False
    )
    assert small.rows == 10


def test_reservoir_is_uniform():
    """Every row of 1,000 lands in a reservoir of 100 with probability 0.1."""
    n, k, runs = 1000, 100, 400
    hits = np.zeros(n)
    ids = np.arange(n)
    for seed in range(runs):
        sampler = compute_module._Reservoir(k, seed)
        chunks = [{"id": ids[a : a + 37]} for a in range(0, n, 37)]
        (pool,) = list(sampler(iter(chunks)))
        assert len(np.unique(pool["id"])) == k
        hits[pool["id"]] += 1
    p = hits / runs
    sd = math.sqrt(0.1 * 0.9 / runs)
    assert np.all(np.abs(p - 0.1) < 5 * sd)
    # the first and the last rows are not favoured
    assert abs(p[:100].mean() - 0.1) < 5 * sd / math.sqrt(100)
    assert abs(p[-100:].mean() - 0.1) < 5 * sd / math.sqrt(100)


def test_head_sample_reads_only_the_first_rows():
    frame = _numeric_frame(100_000)
    src = ts.from_pandas(frame)
    stats = ts.compute_stats(src, sample=1234, progress=False)
    assert stats.rows == 1234 and stats.sample.method == "head"
    assert stats.sample.population is None
    assert stats["id"].max == 1233
    assert ts.compute_stats(src, sample=ts.Head(10), progress=False).rows == 10


@pytest.mark.parametrize("bad", [0, -1, 1.5, 0.0, "1%", True])
def test_bad_sample_argument(bad):
    with pytest.raises(ValueError, match="`sample` must be"):
        ts.compute_stats(ts.from_pandas(_numeric_frame(10)), sample=bad, progress=False)


def test_empty_source_gives_zero_rows():
    frame = pd.DataFrame({"x": np.array([], dtype=np.float32)})
    stats = ts.compute_stats(ts.from_pandas(frame), progress=False)
    assert stats.rows == 0 and stats["x"].count == 0 and math.isnan(stats["x"].mean)


def test_progress_bar_runs(capsys):
    stats = ts.compute_stats(ts.from_pandas(_numeric_frame(1000)), progress=True)
    assert stats.rows == 1000


def test_progress_bar_goes_by_bytes_of_the_files(csv_dir, capsys, monkeypatch):
    """The bar's total is the sum of the file sizes and the pass ends there; statistics are
    the same as without a bar."""
    import io
    import os

    from tqdm import tqdm

    src = ts.csv(csv_dir, label="label", block_bytes=4096)
    total = sum(os.path.getsize(p) for p in src.files)
    bars = []
    real_update = tqdm.update

    def recording_update(bar, n=1):  # the real update, noting which bars the pass moved
        if bar not in bars:
            bars.append(bar)
        return real_update(bar, n)

    monkeypatch.setattr(tqdm, "update", recording_update)
    with_bar = ts.compute_stats(src, progress=True, sample=0.5, seed=1)
    monkeypatch.undo()
    assert len(bars) == 1
    assert bars[0].total == total and bars[0].n == total and bars[0].unit == "B"
    assert tqdm.format_sizeof(total, divisor=1024) in capsys.readouterr().err
    again = ts.csv(csv_dir, label="label", block_bytes=4096)
    without = ts.compute_stats(again, progress=False, sample=0.5, seed=1)
    assert with_bar.rows == without.rows > 0
    for name in ["f0", "f3", "label"]:
        a, b = with_bar[name], without[name]
        assert (a.count, a.mean, a.variance, a.min, a.max) == (
            b.count,
            b.mean,
            b.variance,
            b.min,
            b.max,
        )
    assert dict(with_bar["s0"].frequencies()) == dict(without["s0"].frequencies())
    # With a head the pass may stop early: the bar counts rows.
    out = io.StringIO()
    chunks = compute_module._progress(src, True, by_bytes=False, file=out)
    assert sum(len(c["label"]) for c in chunks) == 9_000
    assert "rows" in out.getvalue()


def test_a_sqlite_connection_bound_to_its_thread():
    """A default sqlite3 connection refuses other threads: its pass is not read ahead."""
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER, x REAL)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, i / 2) for i in range(1000)])
    src = ts.sql(conn, "SELECT id, x FROM t ORDER BY id", chunk_rows=100)
    assert not src.reads_in_any_thread
    stats = ts.compute_stats(src, progress=False)
    assert stats.rows == 1000
    np.testing.assert_allclose(stats["x"].mean, np.arange(1000).mean() / 2, rtol=1e-12)


def test_an_error_while_describing_stops_the_reading_thread(csv_dir, monkeypatch):
    """The background reader is closed and joined when compute_stats raises, not when the
    exception is garbage-collected."""
    import threading

    from tfstream.stats.stats import Stats

    def fail(self, chunk):
        raise RuntimeError("boom")

    monkeypatch.setattr(Stats, "partial_fit", fail)
    with pytest.raises(RuntimeError, match="boom") as caught:
        ts.compute_stats(ts.csv(csv_dir, label="label"), progress=False)
    assert caught.value is not None  # the exception (and its traceback) is still held here
    assert not [t for t in threading.enumerate() if t.name == "tfstream-read-ahead"]
