"""``ts.keras.accumulate`` + ``model.fit``: k accumulated micro-batches equal one batch of all
their rows — SGD and Adam, ragged last windows, sample weights, L2, loss reductions, and
MirroredStrategy over 2 logical CPUs with global batches that do not divide by 2."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfstream as ts
from tfstream.testing import max_weight_diff, mirrored_cpu_strategy

ATOL = 1e-6


def data(n=34, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype("float32")
    y = rng.normal(size=(n, 1)).astype("float32")
    w = rng.random(n).astype("float32")
    return x, y, w


def build(optimizer, *, regularizer=None, loss="mse", strategy=None):
    keras.utils.set_random_seed(0)
    with (strategy or tf.distribute.get_strategy()).scope():
        model = keras.Sequential(
            [
                keras.Input((5,)),
                keras.layers.Dense(8, activation="relu", kernel_regularizer=regularizer),
                keras.layers.Dense(1),
            ]
        )
        model.compile(optimizer=optimizer(), loss=loss, metrics=["mae"])
    return model


OPTIMIZERS = {"sgd": lambda: keras.optimizers.SGD(0.1), "adam": lambda: keras.optimizers.Adam(0.02)}


def fit_both(optimizer, batch, steps, *, weights=False, regularizer=None, loss="mse",
             strategy=None, n=34, epochs=3):  # fmt: skip
    x, y, w = data(n)
    kwargs = {"sample_weight": w} if weights else {}
    reference = build(OPTIMIZERS[optimizer], regularizer=regularizer, loss=loss)
    expected = reference.fit(x, y, batch_size=batch, epochs=epochs, shuffle=False, verbose=0,
                             **kwargs)  # fmt: skip
    model = build(OPTIMIZERS[optimizer], regularizer=regularizer, loss=loss, strategy=strategy)
    ts.keras.accumulate(model, steps)
    got = model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=False, verbose=0, **kwargs)
    return reference, model, expected.history, got.history


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("weights", [False, True])
@pytest.mark.parametrize("regularizer", [None, "l2"])
def test_accumulation_equals_one_batch(optimizer, weights, regularizer):
    # 34 rows in windows of 12 (3 micro-batches of 4): the last window has 10 rows -> 4/4/2.
    reg = keras.regularizers.L2(0.01) if regularizer else None
    reference, model, expected, got = fit_both(optimizer, 12, 3, weights=weights, regularizer=reg)
    assert max_weight_diff(reference, model) <= ATOL
    np.testing.assert_allclose(got["loss"], expected["loss"], rtol=1e-6)
    np.testing.assert_allclose(got["mae"], expected["mae"], rtol=1e-6)  # every micro-batch


@pytest.mark.parametrize("loss", [
    keras.losses.MeanSquaredError(reduction="sum"),
    keras.losses.MeanSquaredError(reduction="mean_with_sample_weight"),
])  # fmt: skip
def test_other_loss_reductions(loss):
    reference, model, _, _ = fit_both("adam", 12, 4, weights=True, loss=loss)
    assert max_weight_diff(reference, model) <= ATOL


def test_more_steps_than_rows_and_one_step():
    reference, model, _, _ = fit_both("adam", 5, 8, n=13)  # windows of 5, 5, 3 rows
    assert max_weight_diff(reference, model) <= ATOL
    reference, model, _, _ = fit_both("adam", 12, 1)
    assert max_weight_diff(reference, model) <= ATOL


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("weights", [False, True])
def test_mirrored_strategy_with_batches_not_divisible_by_replicas(optimizer, weights):
    # Global windows of 13 rows over 2 replicas (7/6), the last one 9 rows (5/4); Keras' own
    # gradient_accumulation_steps fails here, and so does fit's symbolic build.
    strategy = mirrored_cpu_strategy(2)
    reference, model, expected, got = fit_both(
        optimizer, 13, 3, weights=weights, regularizer=keras.regularizers.L2(0.01),
        strategy=strategy, n=35,
    )  # fmt: skip
    assert max_weight_diff(reference, model) <= ATOL
    np.testing.assert_allclose(got["loss"], expected["loss"], rtol=1e-5)


def test_mixed_float16_overflowing_window_is_skipped_whole():
    x, y, _ = data(48)
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(1, dtype="float32")])  # fmt: skip
        optimizer = keras.optimizers.LossScaleOptimizer(
            keras.optimizers.SGD(0.1), initial_scale=2.0**40
        )
        model.compile(optimizer=optimizer, loss="mse")
        ts.keras.accumulate(model, 4)
        initial = [w.copy() for w in model.get_weights()]
        # One window of 16 rows in 4 micro-batches: float16 gradients overflow at 2**40.
        model.fit(x[:16], y[:16], batch_size=16, epochs=1, shuffle=False, verbose=0)
        assert float(optimizer.dynamic_scale) == 2.0**39  # halved once
        assert int(optimizer.iterations) == 0  # nothing applied...
        for a, b in zip(initial, model.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)  # ...not even one micro-batch
        # Training proceeds once the scale has come down: each window either applies all its
        # micro-batches or none of them.
        for _ in range(40):
            model.fit(x[:16], y[:16], batch_size=16, epochs=1, shuffle=False, verbose=0)
            if int(optimizer.iterations):
                break
        assert int(optimizer.iterations) == 1
        assert any(
            not np.array_equal(a, b) for a, b in zip(initial, model.get_weights(), strict=True)
        )
    finally:
        keras.config.set_dtype_policy(before)


def test_mixed_float16_accumulated_update_matches_one_batch():
    x, y, _ = data(16)
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        models = []
        for steps in (None, 4):
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"),
                                      keras.layers.Dense(1, dtype="float32")])  # fmt: skip
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
            if steps:
                ts.keras.accumulate(model, steps)
            model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
            models.append(model)
        assert max_weight_diff(*models) <= 2e-3  # float16 activations: per-chunk rounding differs
    finally:
        keras.config.set_dtype_policy(before)


def test_bad_arguments():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="needs a compiled model"):
        ts.keras.accumulate(model, 2)
    model.compile(optimizer="sgd", loss="mse")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="`steps` must be a positive integer"):
            ts.keras.accumulate(model, bad)
