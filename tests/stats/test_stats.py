"""Stats: partial_fit, merge, save/load, resume, shards in separate processes, bad input."""

import json
import math
import os
import subprocess
import sys

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
