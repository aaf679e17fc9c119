"""Stats -> Keras layers and the preprocessor model, against numpy references, under the float32
and mixed_float16 global policies, through .keras saving and SavedModel export."""

import numpy as np
import pandas as pd
import pytest

import tfstream as ts

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")


@pytest.fixture(params=["float32", "mixed_float16"])
def policy(request):
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy(before)


def frame(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(1e6, 3.0, n)  # a large offset: float32 rounding of the mean would show
    x[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "y": rng.normal(-2.0, 0.5, n).astype(np.float32),
            "k": rng.integers(0, 10, n),
            "s": rng.choice(
                np.array(["a", "b", "c", "", "rare"], dtype=object),
                n,
                p=[0.5, 0.3, 0.15, 0.04, 0.01],
            ),
            "label": rng.integers(0, 2, n),
        }
    )


def stats_of(df):
    schema = {"x": "float64"} if "x" in df else None  # x keeps its float64 digits
    return ts.compute_stats(ts.from_pandas(df, label="label", schema=schema), progress=False)


def batch_of(df, rows):
    part = df.iloc[rows]
    return {name: tf.constant(part[name].to_numpy()) for name in df.columns if name != "label"}


def test_normalization_layer_is_float32_and_matches_numpy(policy):
    df = frame()
    stats = stats_of(df)
    layer = stats.normalization(["y", "k"])
    assert layer.dtype_policy.name == "float32"
    values = df[["y", "k"]].to_numpy(np.float32)
    got = np.asarray(layer(values))
    assert got.dtype == np.float32
    mean = np.array([stats["y"].mean, stats["k"].mean])
    std = np.array([stats["y"].std, stats["k"].std])
    np.testing.assert_allclose(got, (values - mean) / std, atol=1e-5)
    single = stats.normalization("y")
    np.testing.assert_allclose(
        np.asarray(single(values[:, 0])), (values[:, 0] - mean[0]) / std[0], atol=1e-5
    )


def test_rescaling_maps_min_max_to_unit_interval(policy):
    df = frame()
    stats = stats_of(df)
    layer = stats.rescaling(["y"])
    assert layer.dtype_policy.name == "float32"
    got = np.asarray(layer(df[["y"]].to_numpy(np.float32)))
    assert got.min() == pytest.approx(0.0, abs=1e-6) and got.max() == pytest.approx(1.0, abs=1e-6)


def test_preprocessor_standardises_imputes_and_one_hots(policy):
    df = frame()
    stats = stats_of(df)
    prep = stats.preprocessor()
    for rows in (slice(0, 1), slice(0, 333), slice(1000, 5000)):
        got = np.asarray(prep(batch_of(df, rows)))
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, reference(df.iloc[rows], stats), atol=1e-6, rtol=0)


def reference(part, stats):
    cols = []
    for name in ["x", "y", "k"]:
        v = part[name].to_numpy(np.float64)
        v = np.where(np.isnan(v), stats[name].mean, v)
        cols.append((v - stats[name].mean) / stats[name].std)
    vocab = stats["s"].vocabulary()
    onehot = np.zeros((len(part), len(vocab) + 1))
    for i, token in enumerate(part["s"]):
        onehot[i, vocab.index(token) + 1 if token in vocab else 0] = 1.0
    return np.column_stack(cols + [onehot])


def test_unseen_and_missing_tokens_go_to_the_oov_bucket():
    stats = stats_of(frame())
    prep = stats.preprocessor(["s"], max_tokens=2)
    got = np.asarray(prep({"s": tf.constant(["a", "b", "c", "", "never seen"])}))
    assert stats["s"].vocabulary(max_tokens=2) == ["a", "b"]
    np.testing.assert_array_equal(got.argmax(axis=1), [1, 2, 0, 0, 0])


def test_min_max_zero_impute_and_missing_indicator():
    df = frame()
    stats = stats_of(df)
    prep = stats.preprocessor(["x", "y"], numeric="min_max", impute="zero", missing_indicator=["x"])
    got = np.asarray(prep(batch_of(df[["x", "y"]], slice(0, 500))))
    x = df["x"].to_numpy()[:500]
    expected_x = (np.where(np.isnan(x), 0.0, x) - stats["x"].min) / (
        stats["x"].max - stats["x"].min
    )
    np.testing.assert_allclose(got[:, 0], expected_x, rtol=1e-6)
    np.testing.assert_array_equal(got[:, 2], np.isnan(x).astype(np.float32))
    assert got.shape == (500, 3)


def test_discretize_from_quantiles():
    df = frame()
    stats = stats_of(df)
    prep = stats.preprocessor(["y"], discretize={"y": 4})
    got = np.asarray(prep(batch_of(df[["y"]], slice(0, 2000))))
    boundaries = stats["y"].quantiles([0.25, 0.5, 0.75])
    buckets = np.digitize(df["y"].to_numpy()[:2000], boundaries)
    np.testing.assert_array_equal(got[:, 1:].argmax(axis=1), buckets)
    assert np.bincount(buckets).min() > 400  # about a quarter each


def test_discretize_a_column_with_a_large_offset():
    """TF buckets in float32: around 1e8 its edges used to round together (every row in the
    last bucket)."""
    x = np.random.default_rng(1).normal(1e8, 1.0, 4000)
    stats = ts.Stats().partial_fit({"x": x})
    prep = stats.preprocessor(["x"], numeric="none", discretize=4)
    got = np.asarray(prep({"x": x}))[:, 1:].argmax(axis=1)
    expected = np.digitize(x, stats["x"].quantiles([0.25, 0.5, 0.75]))
    np.testing.assert_array_equal(got, expected)  # float64 comparisons, as np.digitize
    assert np.bincount(got, minlength=4).min() > 800


def test_integer_chunks_then_chunks_with_nan_give_a_float_input():
    """pandas reads a chunk without NaN as int64: the column must not stay int64 once a later
    chunk has NaN (the preprocessor's int64 input turned NaN into -7e18). Found in review."""
    stats = ts.Stats().partial_fit({"x": np.array([1, 2, 3])})
    stats.partial_fit({"x": np.array([np.nan, 4.5])})
    assert stats["x"].dtype == "float64"
    assert ts.Stats.from_json(stats.to_json())["x"].dtype == "float64"
    prep = stats.preprocessor(missing_indicator=True)
    got = np.asarray(prep({"x": np.array([np.nan, 4.5, 1.0])}))
    mean, std = 2.625, np.std([1, 2, 3, 4.5])
    np.testing.assert_allclose(got[:, 0], [0.0, (4.5 - mean) / std, (1 - mean) / std], atol=1e-6)
    np.testing.assert_array_equal(got[:, 1], [1, 0, 0])
    a = ts.Stats().partial_fit({"x": np.array([1, 2])})
    b = ts.Stats().partial_fit({"x": np.array([0.5])})
    assert a.merge(b)["x"].dtype == b.merge(a)["x"].dtype == "float64"


def test_index_mode_returns_indices_for_embeddings():
    df = frame()
    stats = stats_of(df)
    prep = stats.preprocessor(categorical="index")
    out = prep(batch_of(df, slice(0, 10)))
    assert set(out) == {"dense", "s"}
    assert out["dense"].shape == (10, 3)
    vocab = stats["s"].vocabulary()
    expected = [vocab.index(t) + 1 if t in vocab else 0 for t in df["s"][:10]]
    np.testing.assert_array_equal(np.asarray(out["s"]), expected)


def test_bad_preprocessor_arguments():
    stats = stats_of(frame(100))
    with pytest.raises(ValueError, match="`numeric` must be one of"):
        stats.preprocessor(numeric="zscore")
    with pytest.raises(KeyError, match="No statistics for column 'nope'"):
        stats.preprocessor(["nope"])
    with pytest.raises(ValueError, match="string column"):
        stats.normalization(["s"])
    with pytest.raises(ValueError, match="`discretize` needs an integer >= 2"):
        stats.preprocessor(discretize=1)


def test_preprocessor_over_a_csv_source_dataset(tmp_path):
    from tfstream.testing import write_csv_shards

    write_csv_shards(tmp_path, 3000, shards=2, features=3, strings=1, seed=2)
    src = ts.csv(tmp_path, label="label")
    stats = ts.compute_stats(src, progress=False)
    prep = stats.preprocessor()
    features, _ = next(iter(src.dataset(256)))
    got = np.asarray(prep(features))
    f0 = features["f0"].numpy().astype(np.float64)
    np.testing.assert_allclose(got[:, 0], (f0 - stats["f0"].mean) / stats["f0"].std, atol=1e-6)
    assert got.shape == (256, 3 + len(stats["s0"].vocabulary()) + 1)


def test_keras_file_round_trip(tmp_path):
    df = frame(500)
    prep = stats_of(df).preprocessor(discretize={"y": 3}, missing_indicator=True)
    prep.save(tmp_path / "prep.keras")
    loaded = keras.models.load_model(tmp_path / "prep.keras")
    batch = batch_of(df, slice(0, 100))
    np.testing.assert_array_equal(np.asarray(loaded(batch)), np.asarray(prep(batch)))


def test_saved_model_export_round_trip(tmp_path, policy):
    df = frame(2000)
    prep = stats_of(df).preprocessor(missing_indicator=True, discretize={"y": 5})
    prep.export(str(tmp_path / "sm"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "sm"))
    for rows in (slice(0, 7), slice(0, 1500)):
        batch = batch_of(df, rows)
        np.testing.assert_allclose(
            np.asarray(served.serve(batch)), np.asarray(prep(batch)), atol=1e-6, rtol=0
        )
