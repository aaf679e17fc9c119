"""``ts.Trainer``: exact accumulation against full-batch Keras training (single device and
MirroredStrategy over 2 logical CPUs), sources and datasets, validation, logs, callbacks,
non-finite losses, precision and argument checks."""

import math

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfstream as ts
from tfstream.testing import max_weight_diff, mirrored_cpu_strategy

N = 35
FEATURES = [f"f{i}" for i in range(5)]


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({f: rng.normal(size=N).astype("float32") for f in FEATURES})
    df["label"] = (rng.random(N) < 0.5).astype("int64")
    return df


def build():
    keras.utils.set_random_seed(0)
    inputs = {f: keras.Input((), name=f) for f in FEATURES}
    h = keras.layers.Concatenate()([keras.layers.Reshape((1,))(v) for v in inputs.values()])
    h = keras.layers.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01))(h)
    return keras.Model(inputs, keras.layers.Dense(1, dtype="float32")(h))


def loss():
    return keras.losses.BinaryCrossentropy(from_logits=True)


def reference(frame, batch, epochs=3):
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss(), metrics=["accuracy"])
    history = model.fit({f: frame[f].to_numpy() for f in FEATURES}, frame["label"].to_numpy(),
                        batch_size=batch, epochs=epochs, shuffle=False, verbose=0)  # fmt: skip
    return model, history.history


def trainer(**kwargs):
    kwargs.setdefault("accumulation_steps", 3)
    return ts.Trainer(build, optimizer=keras.optimizers.Adam(0.01), loss=loss(),
                      metrics=["accuracy"], **kwargs)  # fmt: skip


@pytest.mark.parametrize("strategy", ["auto", "mirrored"])
def test_trainer_on_a_source_equals_full_batch_training(frame, strategy):
    strategy = mirrored_cpu_strategy(2) if strategy == "mirrored" else strategy
    expected_model, expected = reference(frame, 13)
    t = trainer(strategy=strategy)
    history = t.fit(ts.from_pandas(frame, label="label"), batch_size=13, epochs=3, verbose=0)
    assert max_weight_diff(expected_model, t.model) <= 1e-6
    np.testing.assert_allclose(history.history["loss"], expected["loss"], rtol=1e-5)
    np.testing.assert_allclose(history.history["accuracy"], expected["accuracy"], rtol=1e-6)
    assert history.history["rows"] == [N, N, N]
    assert all(r > 0 for r in history.history["rows_per_s"])
    assert all(0 <= w <= 1 for w in history.history["input_wait"])


def test_trainer_on_a_dataset_of_windows(frame):
    expected_model, _ = reference(frame, 12)
    features = {f: frame[f].to_numpy() for f in FEATURES}
    ds = tf.data.Dataset.from_tensor_slices((features, frame["label"].to_numpy())).batch(12)
    t = trainer(strategy=mirrored_cpu_strategy(2), accumulation_steps=4)
    t.fit(ds, epochs=3, verbose=0)
    assert max_weight_diff(expected_model, t.model) <= 1e-6


def test_validation_evaluate_callbacks_and_actions(frame, tmp_path):
    src = ts.from_pandas(frame, label="label")
    seen = []
    t = trainer(log_dir=tmp_path / "logs")
    history = t.fit(
        src, batch_size=16, epochs=3, validation=src, shuffle=True, seed=1, verbose=0,
        callbacks=[keras.callbacks.EarlyStopping(monitor="loss", patience=10),
                   lambda trainer, epoch, logs: seen.append((epoch, logs["val_loss"]))],
    )  # fmt: skip
    assert [e for e, _ in seen] == [0, 1, 2]
    assert history.history["val_loss"] == [v for _, v in seen]
    direct = t.evaluate(src, batch_size=7)
    assert direct["loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    assert set(direct) == {"loss", "accuracy"}
    assert list((tmp_path / "logs").iterdir())  # TensorBoard event files


def test_tensorboard_logs_under_mirrored_strategy(frame, tmp_path):
    src = ts.from_pandas(frame, label="label")
    t = trainer(strategy=mirrored_cpu_strategy(2), log_dir=tmp_path / "logs")
    t.fit(src, batch_size=16, epochs=1, verbose=0)  # the step is a MirroredVariable there
    assert list((tmp_path / "logs").iterdir())


def test_shuffled_epochs_differ_but_are_reproducible(frame):
    src = ts.from_pandas(frame, label="label")
    runs = []
    for _ in range(2):
        t = trainer(accumulation_steps=1)
        t.fit(src, batch_size=8, epochs=2, shuffle=True, seed=5, verbose=0)
        runs.append(t.model)
    assert max_weight_diff(*runs) == 0.0
    t = trainer(accumulation_steps=1)
    t.fit(src, batch_size=8, epochs=2, shuffle=True, seed=6, verbose=0)
    assert max_weight_diff(runs[0], t.model) > 0


def test_non_finite_loss_stops_with_the_last_good_weights(frame):
    bad = frame.copy()
    bad.loc[20, "f0"] = np.nan  # the second window of 16 rows holds a NaN
    t = trainer(accumulation_steps=2)
    history = t.fit(ts.from_pandas(bad, label="label"), batch_size=16, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 1 and math.isnan(history.history["loss"][0])
    assert int(t.model.optimizer.iterations) == 1  # only the first window was applied
    good = trainer(accumulation_steps=2)
    good.fit(ts.from_pandas(frame.iloc[:16], label="label"), batch_size=16, verbose=0)
    assert max_weight_diff(good.model, t.model) == 0.0
    assert all(np.isfinite(w).all() for w in t.model.get_weights())


@pytest.mark.parametrize("determinism", [False, True])
def test_input_wait_is_the_time_spent_waiting_for_batches(frame, determinism):
    """The wait is timed inside the compiled step; under op determinism, which refuses
    tf.timestamp, through Python's clock."""
    import time

    from tensorflow.python.framework import config

    def slow(i):
        time.sleep(0.15)
        return i

    features = {f: frame[f].to_numpy()[:8] for f in FEATURES}
    batch = tf.data.Dataset.from_tensors((features, frame["label"].to_numpy()[:8]))
    ids = tf.data.Dataset.range(4).map(lambda i: tf.numpy_function(slow, [i], tf.int64))
    slow_input = tf.data.Dataset.zip(ids, batch.repeat()).map(lambda i, b: b)
    if determinism:
        tf.config.experimental.enable_op_determinism()
    try:
        t = trainer(accumulation_steps=1)
        t.fit(batch, verbose=0)  # traces the step: not part of the timed epoch
        slow_history = t.fit(slow_input, verbose=0).history
        fast_history = t.fit(batch.repeat(4), verbose=0).history
    finally:
        config.disable_op_determinism()
    assert slow_history["rows"] == fast_history["rows"] == [32]
    assert slow_history["input_wait"][0] > 0.7  # 4 x 0.15 s of waiting, ~1 ms of training
    assert fast_history["input_wait"][0] < 0.5


def test_op_determinism_switched_on_after_a_fit(frame):
    """The step traced with tf.timestamp is retraced with Python's clock, not run and refused."""
    from tensorflow.python.framework import config

    features = {f: frame[f].to_numpy()[:8] for f in FEATURES}
    batch = tf.data.Dataset.from_tensors((features, frame["label"].to_numpy()[:8]))
    t = trainer(accumulation_steps=1)
    t.fit(batch, verbose=0)
    tf.config.experimental.enable_op_determinism()
    try:
        history = t.fit(batch.repeat(3), verbose=0).history
    finally:
        config.disable_op_determinism()
    assert history["rows"] == [24]
    assert history["input_wait"][0] >= 0


def test_per_step_results_are_folded_in_a_long_epoch(frame, monkeypatch):
    """Rows and waits of an epoch longer than the fold add up exactly (int64 rows)."""
    from tfstream.train import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "_FOLD", 3)
    t = trainer(accumulation_steps=1)
    history = t.fit(ts.from_pandas(frame, label="label"), batch_size=7, epochs=2, verbose=0)
    assert history.history["rows"] == [len(frame)] * 2
    assert all(0 <= w < 1 for w in history.history["input_wait"])


def test_steps_per_epoch(frame):
    t = trainer()
    history = t.fit(ts.from_pandas(frame, label="label"), batch_size=8, epochs=2,
                    steps_per_epoch=2, verbose=0)  # fmt: skip
    assert history.history["rows"] == [16, 16]
    assert int(t.model.optimizer.iterations) == 4


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_with_float32_outputs(frame, precision):
    t = trainer(precision=precision)
    assert t.model.dtype_policy.name == precision
    assert isinstance(t.model.optimizer, keras.optimizers.LossScaleOptimizer) == (
        precision == "mixed_float16"
    )
    history = t.fit(ts.from_pandas(frame, label="label"), batch_size=12, epochs=2, verbose=0)
    assert all(math.isfinite(v) for v in history.history["loss"])
    assert all(w.dtype == np.float32 for w in t.model.get_weights())


def test_argument_errors(frame):
    src = ts.from_pandas(frame, label="label")
    with pytest.raises(ValueError, match="`accumulation_steps` must be a positive integer"):
        trainer(accumulation_steps=0)
    with pytest.raises(ValueError, match="`precision` must be one of"):
        trainer(precision="float8")
    with pytest.raises(ValueError, match="`strategy` must be one of"):
        trainer(strategy="tpu")
    with pytest.raises(ValueError, match="needs a model built under that policy"):
        ts.Trainer(build(), optimizer="adam", loss=loss(), precision="mixed_float16")
    with pytest.raises(ValueError, match="built outside the MirroredStrategy's scope"):
        ts.Trainer(build(), optimizer="adam", loss=loss(), strategy=mirrored_cpu_strategy(2))
    t = trainer()
    with pytest.raises(ValueError, match="`batch_size` .* is required"):
        t.fit(src)
    with pytest.raises(ValueError, match="a tf.data.Dataset is used as it is"):
        t.fit(tf.data.Dataset.range(3), batch_size=4)
    with pytest.raises(TypeError, match="must be a tfstream source or a tf.data.Dataset"):
        t.fit([1, 2, 3])


def test_last_window_of_one_row_on_two_replicas(frame):
    """The last window (27 = 13 + 13 + 1 rows) leaves one replica with no rows: exact still."""
    small = frame.iloc[:27]
    expected_model, _ = reference(small, 13)
    t = trainer(strategy=mirrored_cpu_strategy(2))
    history = t.fit(ts.from_pandas(small, label="label"), batch_size=13, epochs=3, verbose=0)
    assert max_weight_diff(expected_model, t.model) <= 1e-6
    assert history.history["rows"] == [27, 27, 27]
    assert int(t.model.optimizer.iterations.numpy()) == 9


def test_cache_of_parsed_batches(frame, tmp_path):
    plain = trainer()
    plain.fit(ts.from_pandas(frame, label="label"), batch_size=12, epochs=3, verbose=0)
    src = ts.from_pandas(frame, label="label")
    cached = trainer()
    cached.fit(src, batch_size=12, epochs=3, verbose=0, cache=str(tmp_path / "cache"))
    assert max_weight_diff(plain.model, cached.model) <= 1e-6
    assert list(tmp_path.glob("cache*"))
    assert src.report().rows_read == N  # parsed once; epochs 2 and 3 read the cache
    with pytest.raises(ValueError, match="`cache` needs whole epochs"):
        cached.fit(src, batch_size=12, steps_per_epoch=1, cache=str(tmp_path / "c2"))


def test_remat_trains_like_without(frame):
    from tfstream.train.remat import rematerialized_layers

    src = ts.from_pandas(frame, label="label")
    plain, remat = trainer(), trainer(remat="full")
    assert rematerialized_layers(remat.model) and not rematerialized_layers(plain.model)
    for t in (plain, remat):
        t.fit(src, batch_size=12, epochs=2, verbose=0)
    assert max_weight_diff(plain.model, remat.model) <= 1e-6
