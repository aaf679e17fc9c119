"""Stats: partial_fit, merge, save/load, resume, shards in separate processes, bad input."""

import json
import math
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import tfstream as ts
from tfstream.stats import Stats, StatsOptions


def chunks_of(frame, size):
    for start in range(0, len(frame), size):
        part = frame.iloc[start : start + size]
        yield {name: part[name].to_numpy() for name in frame.columns}


def make_data(n=30_000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(1e6, 2.0, n)
    x[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "i": rng.integers(-50, 50, n),
            "f": rng.standard_normal(n).astype(np.float32),
            "s": rng.choice(
                np.array(["a", "bb", "ccc", "", "dddd"], dtype=object),
                n,
                p=[0.5, 0.25, 0.15, 0.05, 0.05],
            ),
        }
    )


def fit(frame, size=1000, **kwargs):
    stats = Stats(**kwargs)
    for chunk in chunks_of(frame, size):
        stats.partial_fit(chunk)
    return stats


def assert_same_exact_parts(a: Stats, b: Stats, rel=1e-12):
    assert a.columns == b.columns and a.rows == b.rows
    for name in a:
        ca, cb = a[name], b[name]
        if ca.kind == "numeric":
            assert (ca.count, ca.nan_count, ca.inf_count) == (cb.count, cb.nan_count, cb.inf_count)
            assert ca.mean == pytest.approx(cb.mean, rel=rel)
            assert ca.variance == pytest.approx(cb.variance, rel=rel)
            assert (ca.min, ca.max) == (cb.min, cb.max)
        else:
            assert ca.frequencies() == cb.frequencies()
            assert ca.missing_count == cb.missing_count


def test_every_statistic_against_numpy_and_pandas():
    frame = make_data()
    stats = fit(frame, 777)
    x = frame["x"].to_numpy()
    finite = x[np.isfinite(x)]
    col = stats["x"]
    assert (col.count, col.nan_count, col.inf_count) == (finite.size, x.size - finite.size, 0)
    assert col.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert col.variance == pytest.approx(finite.var(), rel=1e-12)
    assert col.sample_variance == pytest.approx(finite.var(ddof=1), rel=1e-12)
    assert col.std == pytest.approx(finite.std(), rel=1e-12)
    assert (col.min, col.max) == (finite.min(), finite.max())
    assert stats["i"].mean == pytest.approx(frame["i"].mean(), rel=1e-12)
    f64 = frame["f"].to_numpy().astype(np.float64)
    assert stats["f"].variance == pytest.approx(f64.var(), rel=1e-12)
    s = stats["s"]
    expected = frame["s"][frame["s"] != ""].value_counts()
    assert dict(s.frequencies()) == expected.to_dict()
    assert s.missing_count == int((frame["s"] == "").sum())
    assert s.count == len(frame) - s.missing_count
    assert s.distinct == 4 and s.exact
    assert s.vocabulary() == ["a", "bb", "ccc", "dddd"]
    assert s.vocabulary(max_tokens=2) == ["a", "bb"]
    assert s.vocabulary(min_frequency=int(expected["ccc"]) + 1) == ["a", "bb"]
    assert stats.rows == len(frame)


def test_quantiles_within_the_sketch_error():
    rng = np.random.default_rng(5)
    x = rng.lognormal(0, 1, 400_000)
    stats = fit(pd.DataFrame({"x": x}), 10_000)
    qs = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]
    got = stats["x"].quantiles(qs)
    # Compare ranks: the rank of each estimate must be within KLL's error plus the level
    # sampler's (~0.23% per standard deviation at the default budget), with margin.
    ranks = np.searchsorted(np.sort(x), got) / x.size
    tolerance = stats["x"].quantile_rank_error + 4 * math.sqrt(1 / (6 * 32_768))
    assert np.all(np.abs(ranks - qs) < tolerance), (ranks, qs)
    assert stats["x"].quantiles(0.5) == pytest.approx(got[3])


def test_quantiles_feed_every_value_without_a_budget():
    x = np.random.default_rng(6).normal(size=50_000)
    stats = fit(pd.DataFrame({"x": x}), 5000, options=StatsOptions(quantile_budget=None))
    got = stats["x"].quantiles([0.1, 0.5, 0.9])
    ranks = np.searchsorted(np.sort(x), got) / x.size
    assert np.all(np.abs(ranks - [0.1, 0.5, 0.9]) < stats["x"].quantile_rank_error)


def test_quantiles_skip_nan_and_inf():
    x = np.r_[np.arange(1000.0), [np.nan] * 500, [np.inf, -np.inf] * 10]
    stats = fit(pd.DataFrame({"x": x}), 100)
    assert 0 <= stats["x"].quantiles(0.0) and stats["x"].quantiles(1.0) <= 999


@pytest.mark.parametrize("order", ["forward", "backward", "tree"])
def test_merge_of_parts_equals_one_pass(order):
    frame = make_data()
    whole = fit(frame)
    parts = [
        fit(frame.iloc[a:b]) for a, b in [(0, 7000), (7000, 7001), (7001, 19000), (19000, 30000)]
    ]
    if order == "forward":
        merged = parts[0].merge(parts[1]).merge(parts[2]).merge(parts[3])
    elif order == "backward":
        merged = parts[3].merge(parts[2]).merge(parts[1]).merge(parts[0])
    else:
        merged = parts[0].merge(parts[1]).merge(parts[2].merge(parts[3]))
    assert_same_exact_parts(merged, whole)
    got = merged["x"].quantiles([0.25, 0.5, 0.75])
    x = frame["x"].dropna().to_numpy()
    ranks = np.searchsorted(np.sort(x), got) / x.size
    assert np.all(np.abs(ranks - [0.25, 0.5, 0.75]) < 0.03)


def test_merge_leaves_its_inputs_unchanged():
    frame = make_data()
    a, b = fit(frame.iloc[:100]), fit(frame.iloc[100:300])
    before = json.dumps(a.to_json()), json.dumps(b.to_json())
    a.merge(b)
    assert (json.dumps(a.to_json()), json.dumps(b.to_json())) == before


def test_merge_with_an_empty_stats():
    frame = make_data()
    a = fit(frame)
    assert_same_exact_parts(Stats().merge(a), a)
    assert_same_exact_parts(a.merge(Stats()), a)


def test_save_load_round_trip_is_exact(tmp_path):
    stats = fit(make_data())
    path = stats.save(tmp_path / "stats.json")
    loaded = Stats.load(path)
    assert loaded.to_json() == stats.to_json()
    doc = json.loads((tmp_path / "stats.json").read_text())
    assert doc["format"] == "tfstream.stats" and doc["version"] == 1
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())


def test_interrupted_saved_loaded_and_finished_equals_one_pass(tmp_path):
    frame = make_data(60_000)
    chunks = list(chunks_of(frame, 2500))
    whole = Stats()
    for chunk in chunks:
        whole.partial_fit(chunk)
    first = Stats()
    for chunk in chunks[:9]:
        first.partial_fit(chunk)
    first.save(tmp_path / "partial.json")
    resumed = Stats.load(tmp_path / "partial.json")
    for chunk in chunks[9:]:
        resumed.partial_fit(chunk)
    assert_same_exact_parts(resumed, whole, rel=0)  # bit for bit: the same operations
    # The quantile sampler resumes with the same random state, so the same rows reach the
    # sketches; KLL's own compaction coin flips differ, within its error bound.
    assert resumed.to_json()["sampler"] == whole.to_json()["sampler"]
    a, b = resumed["x"].quantiles([0.1, 0.5, 0.9]), whole["x"].quantiles([0.1, 0.5, 0.9])
    x = np.sort(frame["x"].dropna().to_numpy())
    assert np.all(np.abs(np.searchsorted(x, a) - np.searchsorted(x, b)) / x.size < 0.03)


def test_int64_beyond_2_53_exact_and_through_json(tmp_path):
    """int64 values near 2**60 (ids, nanosecond timestamps): float64 rounds them to multiples
    of 256, which made the variance of 2**60 + [0, 1000) 0 or garbage. Reference: Python ints."""
    rng = np.random.default_rng(8)
    chunks = [2**60 + rng.integers(0, 1000, size) for size in (1, 6, 500, 37, 3000)]
    stats = Stats()
    for chunk in chunks:
        stats.partial_fit({"i": chunk})
    values = [int(v) for chunk in chunks for v in chunk]
    n = len(values)
    mean = Fraction(sum(values), n)
    variance = sum((v - mean) ** 2 for v in values) / n
    col = stats["i"]
    assert col.dtype == "int64" and col.count == n
    assert col.mean == float(mean)  # rounded once
    assert col.variance == pytest.approx(float(variance), rel=1e-12)
    assert col.sample_variance == pytest.approx(float(variance * n / (n - 1)), rel=1e-12)
    # min and max are floats: the nearest float64 to the exact int64 (here a multiple of 256).
    assert (col.min, col.max) == (float(min(values)), float(max(values)))
    assert isinstance(col.min, float) and isinstance(col.max, float)
    # The saved JSON keeps the shift, min and max as exact integers.
    path = stats.save(tmp_path / "stats.json")
    doc = json.loads((tmp_path / "stats.json").read_text())["columns"]["i"]["moments"]
    assert (doc["shift"], doc["min"], doc["max"]) == (values[0], min(values), max(values))
    loaded = Stats.load(path)
    assert loaded.to_json() == stats.to_json()
    assert_same_exact_parts(loaded, stats, rel=0)
    # Resuming after the round trip equals one pass, bit for bit (the moments; KLL's coin
    # flips differ).
    more = 2**60 + rng.integers(0, 1000, 700)
    loaded.partial_fit({"i": more})
    stats.partial_fit({"i": more})
    assert_same_exact_parts(loaded, stats, rel=0)
    assert loaded.to_json()["columns"]["i"]["moments"] == stats.to_json()["columns"]["i"]["moments"]


def test_merge_with_different_options_is_an_error():
    frame = make_data(2000)
    a = fit(frame.iloc[:1000], options=StatsOptions(kll_k=400, hll_lg_k=12))
    b = fit(frame.iloc[1000:])
    message = r"kll_k \(400 vs 200\), hll_lg_k \(12 vs 14\).*StatsOptions\(kll_k=400"
    with pytest.raises(ValueError, match=message):
        a.merge(b)
    with pytest.raises(ValueError, match=r"kll_k \(200 vs 400\), hll_lg_k \(14 vs 12\)"):
        b.merge(a)
    for field in ("quantile_budget", "max_exact_vocabulary", "frequent_lg_max_k"):
        c = fit(frame.iloc[1000:], options=StatsOptions(**{field: 1000}))
        with pytest.raises(ValueError, match=rf"different options: {field} \("):
            b.merge(c)


def test_merge_with_an_empty_stats_takes_the_other_options():
    """``Stats()`` (default options) is a neutral start for a reduction over shards computed
    with other options; the result has the shards' options and sketch sizes."""
    options = StatsOptions(kll_k=400, max_exact_vocabulary=3)
    a = fit(make_data(2000), options=options)
    for merged in (Stats().merge(a), a.merge(Stats()), Stats(a.schema).merge(a)):
        assert merged.options == options
        assert merged["x"].quantile_rank_error == a["x"].quantile_rank_error
        assert merged.to_json()["columns"] == a.to_json()["columns"]
        merged.partial_fit({"x": [1.0], "i": [1], "f": [1.0], "s": ["a"]})  # keeps going
    with pytest.raises(ValueError, match="different options"):
        Stats(options=options).merge(Stats())  # neither has rows: which to keep is unclear


def test_merge_with_different_seeds_is_fine_and_keeps_no_seed():
    """Different seeds sample each shard independently, which the merge handles."""
    frame = make_data(2000)
    a = fit(frame.iloc[:1000], options=StatsOptions(seed=1))
    b = fit(frame.iloc[1000:], options=StatsOptions(seed=2))
    assert a.merge(b).options == b.merge(a).options == StatsOptions(seed=None)
    assert a.merge(fit(frame, options=StatsOptions(seed=1))).options.seed == 1


def test_merge_is_commutative_in_every_reported_statistic():
    frame = make_data(20_000)
    frame["big"] = 2**60 + np.random.default_rng(9).integers(0, 1000, len(frame))
    a, b = fit(frame.iloc[:13_000]), fit(frame.iloc[13_000:], size=333)
    ab, ba = a.merge(b), b.merge(a)
    assert (ab.rows, ab.label, ab.options, ab.sample) == (ba.rows, ba.label, ba.options, ba.sample)
    assert ab.schema == ba.schema
    for name in ab:
        x, y = ab[name], ba[name]
        if x.kind == "numeric":
            fields = ("count", "nan_count", "inf_count", "mean", "variance", "sample_variance")
            fields += ("std", "min", "max", "mean_stderr", "quantile_rank_error")
            assert [getattr(x, f) for f in fields] == [getattr(y, f) for f in fields], name
            # KLL's coin flips differ: the quantiles' rank ranges (ties: "big" has only a few
            # distinct float64 values) lie within the sketch's error of each other.
            values = np.sort(frame[name].dropna().to_numpy().astype(np.float64))

            def ranks(z, side, values=values):
                return np.searchsorted(values, z.quantiles([0.1, 0.5, 0.9]), side) / values.size

            lo_x, hi_x, lo_y, hi_y = (ranks(z, side) for z in (x, y) for side in ("left", "right"))
            gap = np.maximum(0, np.maximum(lo_y - hi_x, lo_x - hi_y))
            assert np.all(gap < 2 * x.quantile_rank_error), name
        else:
            assert x.frequencies() == y.frequencies() and x.distinct == y.distinct
            assert (x.count, x.missing_count, x.exact) == (y.count, y.missing_count, y.exact)


# -- fsspec URLs -----------------------------------------------------------------------------


def test_save_and_load_an_fsspec_url(memory_root, tmp_path, monkeypatch):
    """A URL is written on its filesystem, not to a local file named like the URL."""
    fs, root = memory_root
    monkeypatch.chdir(tmp_path)
    stats = fit(make_data(3000))
    url = f"memory://{root}/run/stats.json"
    assert stats.save(url) == url
    assert fs.ls(f"{root}/run", detail=False) == [f"{root}/run/stats.json"]  # no temporary
    assert json.loads(fs.cat(f"{root}/run/stats.json"))["format"] == "tfstream.stats"
    assert Stats.load(url).to_json() == stats.to_json()
    assert list(tmp_path.iterdir()) == []  # nothing local
    stats.partial_fit({"x": [1.0], "i": [1], "f": [1.0], "s": ["a"]})
    stats.save(url)  # replaces the object
    assert Stats.load(url).rows == stats.rows
    assert fs.ls(f"{root}/run", detail=False) == [f"{root}/run/stats.json"]
    with pytest.raises(FileNotFoundError):
        Stats.load(f"memory://{root}/nope.json")
    fs.pipe(f"{root}/bad.json", b"{not json")
    with pytest.raises(ValueError, match=f"memory://{root}/bad.json: not valid JSON"):
        Stats.load(f"memory://{root}/bad.json")


def test_save_to_a_file_url_is_a_local_atomic_save(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # (a relative directory named "file:" was written here)
    stats = fit(make_data(100))
    assert stats.save(f"file://{tmp_path}/sub/stats.json") == f"file://{tmp_path}/sub/stats.json"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["stats.json"]
    assert Stats.load(f"file://{tmp_path}/sub/stats.json").to_json() == stats.to_json()


_SHARD_SCRIPT = """
import sys
import numpy as np, pandas as pd
import tfstream as ts
frame = pd.read_parquet(sys.argv[1])
stats = ts.compute_stats(ts.from_pandas(frame), progress=False)
stats.save(sys.argv[2])
"""


def test_shards_in_separate_processes_merge_to_one_pass(tmp_path):
    frame = make_data(40_000)
    bounds = [0, 9000, 25000, 40000]
    procs = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        frame.iloc[a:b].to_parquet(tmp_path / f"shard{i}.parquet")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _SHARD_SCRIPT,
                    str(tmp_path / f"shard{i}.parquet"),
                    str(tmp_path / f"stats{i}.json"),
                ],
                env={**os.environ, "PYTHONPATH": os.getcwd()},
            )
        )
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    shards = [Stats.load(tmp_path / f"stats{i}.json") for i in range(3)]
    merged = shards[2].merge(shards[0]).merge(shards[1])
    whole = ts.compute_stats(ts.from_pandas(frame), progress=False)
    assert_same_exact_parts(merged, whole)


# -- bad input -------------------------------------------------------------------------------


def test_all_missing_column_is_documented_nan():
    stats = Stats().partial_fit({"x": np.full(5, np.nan), "s": np.array([""] * 5, dtype=object)})
    assert stats["x"].count == 0 and stats["x"].nan_count == 5
    assert math.isnan(stats["x"].mean) and math.isnan(stats["x"].std)
    assert math.isnan(stats["x"].quantiles(0.5))
    assert stats["s"].count == 0 and stats["s"].missing_count == 5 and stats["s"].vocabulary() == []
    with pytest.raises(ValueError, match="'x' has no finite value"):
        stats.normalization("x")


def test_zero_rows():
    stats = Stats({"x": "float32", "s": "string"})
    stats.partial_fit({"x": np.array([], np.float32), "s": np.array([], object)})
    assert stats.rows == 0 and stats["x"].count == 0 and math.isnan(stats["x"].mean)
    assert "0 rows" in stats.summary()


def test_absent_column_is_a_clear_error():
    stats = fit(make_data(100))
    with pytest.raises(KeyError, match=r"No statistics for column 'nope'.*\['x', 'i', 'f', 's'\]"):
        stats["nope"]
    with pytest.raises(ValueError, match=r"missing \['s'\], not in the schema \['t'\]"):
        stats.partial_fit({"x": [1.0], "i": [1], "f": [1.0], "t": ["a"]})


def test_merging_different_schemas_is_an_error():
    a = Stats().partial_fit({"x": np.ones(3), "s": np.array(["a"] * 3, object)})
    b = Stats().partial_fit({"x": np.ones(3), "t": np.array(["a"] * 3, object)})
    c = Stats().partial_fit({"x": np.ones(3), "s": np.ones(3)})
    with pytest.raises(
        ValueError, match=r"only in the first: \['s'\]; only in the second: \['t'\]"
    ):
        a.merge(b)
    with pytest.raises(ValueError, match=r"different kinds: \['s \(string vs numeric\)'\]"):
        a.merge(c)


def test_wrong_values_for_a_numeric_column():
    stats = Stats({"x": "float32"})
    with pytest.raises(TypeError, match="'x' is numeric, but the chunk holds"):
        stats.partial_fit({"x": np.array(["a"], object)})


def test_ragged_chunk_is_an_error():
    with pytest.raises(ValueError, match="1-D columns of one length"):
        Stats().partial_fit({"x": np.ones(3), "y": np.ones(4)})


def test_load_rejects_other_documents(tmp_path):
    (tmp_path / "a.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="Not a tfstream statistics document"):
        Stats.load(tmp_path / "a.json")
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(ValueError, match="b.json: not valid JSON"):
        Stats.load(tmp_path / "b.json")
    doc = fit(make_data(10)).to_json()
    doc["version"] = 99
    (tmp_path / "c.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="version 99 is not supported"):
        Stats.load(tmp_path / "c.json")


def test_string_odd_values_bytes_none_and_nan():
    values = np.array(["a", b"a", None, float("nan"), "", 7], dtype=object)
    stats = Stats({"s": "string"}).partial_fit({"s": values})
    assert dict(stats["s"].frequencies()) == {"a": 2, "7": 1}
    assert stats["s"].missing_count == 3


def test_vocabulary_beyond_the_exact_cap_uses_sketches():
    rng = np.random.default_rng(0)
    heavy = np.array(["h0", "h1", "h2"], dtype=object)
    tail = np.array([f"t{i}" for i in range(50_000)], dtype=object)
    options = StatsOptions(max_exact_vocabulary=1000, frequent_lg_max_k=10)
    stats = Stats({"s": "string"}, options=options)
    exact = Stats({"s": "string"})
    for _ in range(5):
        chunk = np.concatenate([rng.choice(heavy, 20_000), rng.choice(tail, 20_000)])
        stats.partial_fit({"s": chunk})
        exact.partial_fit({"s": chunk})
    col = stats["s"]
    assert not col.exact and exact["s"].exact
    true_distinct = exact["s"].distinct
    assert abs(col.distinct - true_distinct) / true_distinct < 0.05  # HLL lg_k=14: ~1% error
    assert col.vocabulary(max_tokens=3) == exact["s"].vocabulary(max_tokens=3)
    top = dict(col.frequencies()[:3])
    for token, count in exact["s"].frequencies()[:3]:
        assert abs(top[token] - count) <= stats["s"]._vocab.count_error
    # Save, load and merge keep working in sketch mode.
    again = Stats.from_json(stats.to_json()).merge(stats)
    assert again["s"].vocabulary(max_tokens=3) == col.vocabulary(max_tokens=3)


def test_stats_summary_table():
    text = fit(make_data(1000), label="i").summary()
    assert "statistics of 1,000 rows, 4 columns" in text
    assert "i (label)" in text and "numeric columns:" in text and "string columns:" in text
