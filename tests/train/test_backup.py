"""``ts.keras.ResumableBackup``: crash-proof ``model.fit``, in process. A crash is a callback
that raises after n steps; the resumed fit (a new model and callback, as a restarted script
makes them) must train every window exactly once and end bit-identical to an uninterrupted fit,
on one device and under MirroredStrategy over 2 logical CPUs. Also: SIGTERM, finished fits,
tf.data input, the argument checks, ``load_model`` and the empty window of the step. Real
killed processes are in test_resume.py."""

import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfstream as ts
from tfstream.testing import CanaryLayer, make_frame, mirrored_cpu_strategy, read_canary
from tfstream.train.checkpoint import (
    PREEMPTED_EXIT_CODE,
    CheckpointOptions,
    Preempted,
    enable_determinism,
    latest_state,
    load_model,
)

N = 90
BATCH = 16  # 6 windows per epoch: 5 x 16 + 10
EPOCHS = 3
FEATURES = ["f0", "f1", "f2"]
EVERY_STEP = CheckpointOptions(every_steps=1, every_seconds=None, keep=2)


@pytest.fixture(scope="module")
def source():
    frame = make_frame(N, features=len(FEATURES), seed=3)
    frame.insert(0, "id", np.arange(N, dtype=np.int64))
    return ts.from_pandas(frame, label="label")


@pytest.fixture(autouse=True)
def deterministic():
    enable_determinism(0)
    yield
    from tensorflow.python.framework import config

    config.disable_op_determinism()


def build(log_path, strategy=None, *, accumulation=2, batchnorm=False):
    keras.utils.set_random_seed(0)
    with (strategy or tf.distribute.get_strategy()).scope():
        inputs = {f: keras.Input((), name=f) for f in FEATURES}
        inputs["id"] = keras.Input((), name="id", dtype="int64")
        h = keras.layers.Concatenate()([keras.layers.Reshape((1,))(inputs[f]) for f in FEATURES])
        h = CanaryLayer(log_path)(h, inputs["id"])
        h = keras.layers.Dense(8, activation="relu")(h)
        if batchnorm:
            h = keras.layers.BatchNormalization()(h)
        h = keras.layers.Dropout(0.25)(h)
        model = keras.Model(inputs, keras.layers.Dense(1)(h))
        model.compile(
            optimizer=keras.optimizers.Adam(0.01),
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    return ts.keras.accumulate(model, accumulation) if accumulation else model


class Crash(keras.callbacks.Callback):
    def __init__(self, at_step):
        super().__init__()
        self.at_step = at_step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.at_step:
            raise RuntimeError(f"crash at step {self.at_step}")


def fit(source, directory, log_path, *, crash_at=None, strategy=None, options=EVERY_STEP, **kw):
    """One "process": builds the model and the callback, fits; returns (model, history)."""
    model = build(log_path, strategy, **kw)
    backup = ts.keras.ResumableBackup(directory, options=options)
    data = backup.dataset(source, batch_size=BATCH, shuffle=True, seed=7)
    callbacks = [backup] + ([Crash(crash_at)] if crash_at else [])
    try:
        history = model.fit(data, epochs=EPOCHS, verbose=0, callbacks=callbacks)
    except RuntimeError as error:
        assert "crash at step" in str(error)
        history = None
    return model, history


def windows(log_path):
    """The sorted ids of each window (accumulation chunks and replicas of a window in any
    order), from the canary log: chunks of BATCH rows per epoch."""
    ids = np.concatenate([r for _, r in read_canary(log_path)])
    out = []
    for e in range(0, len(ids), N):
        epoch = ids[e : e + N]
        out += [sorted(epoch[w : w + BATCH].tolist()) for w in range(0, len(epoch), BATCH)]
    return ids, out


def assert_same_weights(a, b):
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("placement", ["one_device", "mirrored"])
def test_resume_mid_epoch_equals_uninterrupted(source, tmp_path, placement):
    strategy = mirrored_cpu_strategy(2) if placement == "mirrored" else None
    reference, history = fit(source, tmp_path / "ref", tmp_path / "ref.txt", strategy=strategy)
    # 6 windows per epoch: crash in epoch 1 after window 3, in epoch 2 after window 5 (the
    # last full one), then finish.
    for crash_at in (3, 11, None):
        model, resumed = fit(
            source, tmp_path / "run", tmp_path / "run.txt", crash_at=crash_at, strategy=strategy
        )
    ids, got = windows(tmp_path / "run.txt")
    assert len(ids) == EPOCHS * N  # every checkpoint was the last window: nothing trained twice
    for e in range(EPOCHS):
        np.testing.assert_array_equal(np.sort(ids[e * N : (e + 1) * N]), np.arange(N))
    assert got == windows(tmp_path / "ref.txt")[1]
    assert int(model.optimizer.iterations.numpy()) == EPOCHS * 6
    assert_same_weights(model, reference)
    # The resumed epoch's metrics go on from the crash: its logs equal the uninterrupted ones.
    assert resumed.history["loss"][-1] == pytest.approx(history.history["loss"][-1], abs=1e-6)
    assert resumed.history["accuracy"][-1] == pytest.approx(history.history["accuracy"][-1])


def test_sigterm_saves_and_raises_preempted(source, tmp_path):
    reference, _ = fit(source, tmp_path / "ref", tmp_path / "ref.txt")

    class Terminate(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == 8:
                os.kill(os.getpid(), signal.SIGTERM)

    model = build(tmp_path / "run.txt")
    backup = ts.keras.ResumableBackup(tmp_path / "run", options=CheckpointOptions(keep=2))
    data = backup.dataset(source, batch_size=BATCH, shuffle=True, seed=7)
    previous = signal.getsignal(signal.SIGTERM)
    # Terminate runs before the callback's check: the window of step 8 is saved, then it stops.
    with pytest.raises(Preempted) as stopped:
        model.fit(data, epochs=EPOCHS, verbose=0, callbacks=[Terminate(), backup])
    assert stopped.value.code == PREEMPTED_EXIT_CODE == 75
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers put back
    assert model._initial_epoch is None
    _, state = latest_state(tmp_path / "run")
    assert (state.epoch, state.windows_done, state.step) == (1, 2, 8)
    model, _ = fit(source, tmp_path / "run", tmp_path / "run.txt")
    assert_same_weights(model, reference)
    ids, _ = windows(tmp_path / "run.txt")
    assert len(ids) == EPOCHS * N


def test_a_fit_that_raised_does_not_swallow_the_next_ctrl_c(source, tmp_path):
    """Keras skips on_train_end when fit raises: the backup's handler must not outlive fit."""
    fit(source, tmp_path / "ckpt", tmp_path / "log.txt", crash_at=3)
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_finished_fit_does_nothing_and_the_next_fit_continues(source, tmp_path):
    first, _ = fit(source, tmp_path / "ckpt", tmp_path / "a.txt")
    again, history = fit(source, tmp_path / "ckpt", tmp_path / "b.txt")
    assert history.history == {} and not os.path.exists(tmp_path / "b.txt")
    assert_same_weights(again, first)  # restored, not retrained
    assert again._initial_epoch is None

    # A second fit call with the same callback trains from there.
    backup = ts.keras.ResumableBackup(tmp_path / "ckpt2", options=EVERY_STEP)
    model = build(tmp_path / "c.txt")
    data = backup.dataset(source, batch_size=BATCH)
    model.fit(data, epochs=1, verbose=0, callbacks=[backup])
    model.fit(data, epochs=1, verbose=0, callbacks=[backup])
    assert int(model.optimizer.iterations.numpy()) == 12
    _, state = latest_state(tmp_path / "ckpt2")
    assert (state.fits_done, state.step) == (2, 12)


def test_a_tf_data_dataset_resumes_exactly(source, tmp_path):
    windows_ds = source.dataset(BATCH)

    def run(directory, log, crash_at=None):
        model = build(log)
        backup = ts.keras.ResumableBackup(directory, options=EVERY_STEP)
        callbacks = [backup] + ([Crash(crash_at)] if crash_at else [])
        try:
            model.fit(backup.dataset(windows_ds), epochs=2, verbose=0, callbacks=callbacks)
        except RuntimeError:
            pass
        return model

    reference = run(tmp_path / "ref", tmp_path / "ref.txt")
    run(tmp_path / "run", tmp_path / "run.txt", crash_at=4)
    model = run(tmp_path / "run", tmp_path / "run.txt")
    assert_same_weights(model, reference)
    assert len(windows(tmp_path / "run.txt")[0]) == 2 * N


def test_an_empty_window_trains_nothing(tmp_path):
    """The resumed epoch's empty windows (and a replica without rows) must not run the model:
    dropout's seed would advance and BatchNormalization's moving mean would become NaN."""
    x = {f: np.linspace(-1, 1, 32, dtype="float32") + i for i, f in enumerate(FEATURES)}
    x["id"] = np.arange(32, dtype="int64")
    y = (x["f0"] > 0).astype("float32")
    full = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    empty = full.take(1).map(lambda f, label: tf.nest.map_structure(lambda t: t[:0], (f, label)))
    a = build(tmp_path / "a.txt", accumulation=1, batchnorm=True)
    a.fit(empty.concatenate(full).concatenate(empty), verbose=0)
    b = build(tmp_path / "b.txt", accumulation=1, batchnorm=True)
    b.fit(full, verbose=0)
    assert int(a.optimizer.iterations.numpy()) == 2
    assert all(np.isfinite(w).all() for w in a.get_weights())
    assert_same_weights(a, b)


def test_checks(source, tmp_path):
    fit(source, tmp_path / "ckpt", tmp_path / "a.txt", crash_at=3)
    model = build(tmp_path / "b.txt")
    backup = ts.keras.ResumableBackup(tmp_path / "ckpt", options=EVERY_STEP)
    with pytest.raises(ValueError, match="backup.dataset"):  # data not through it
        model.fit(source.dataset(BATCH), epochs=EPOCHS, verbose=0, callbacks=[backup])
    model = build(tmp_path / "b.txt")
    backup = ts.keras.ResumableBackup(tmp_path / "ckpt", options=EVERY_STEP)
    data = backup.dataset(source, batch_size=2 * BATCH, shuffle=True, seed=7)
    with pytest.raises(ValueError, match="batch_size=16"):
        model.fit(data, epochs=EPOCHS, verbose=0, callbacks=[backup])
    model = build(tmp_path / "b.txt")
    backup = ts.keras.ResumableBackup(tmp_path / "other", options=EVERY_STEP)
    data = backup.dataset(source, batch_size=BATCH).repeat()
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit(data, epochs=1, steps_per_epoch=2, verbose=0, callbacks=[backup])
    with pytest.raises(ValueError, match="batch_size"):
        backup.dataset(source)
    with pytest.raises(ValueError, match="apply to sources"):
        backup.dataset(source.dataset(4), shuffle=True)
    with pytest.raises(TypeError, match="tfstream source or a tf.data.Dataset"):
        backup.dataset([1, 2])
    with pytest.raises(TypeError, match="CheckpointOptions"):
        ts.keras.ResumableBackup(tmp_path, options={"keep": 2})


def test_a_resume_with_another_seed_is_refused(source, tmp_path):
    """As the Trainer: an explicit seed other than the saved one is refused; seed=None resumes
    with the saved one."""
    reference, _ = fit(source, tmp_path / "ref", tmp_path / "ref.txt")
    fit(source, tmp_path / "ckpt", tmp_path / "a.txt", crash_at=3)  # seed=7, saved at step 3
    model = build(tmp_path / "b.txt")
    backup = ts.keras.ResumableBackup(tmp_path / "ckpt", options=EVERY_STEP)
    data = backup.dataset(source, batch_size=BATCH, shuffle=True, seed=8)
    with pytest.raises(ValueError, match=r"trained with seed=7; this run uses seed=8\. Resume"):
        model.fit(data, epochs=EPOCHS, verbose=0, callbacks=[backup])
    model = build(tmp_path / "b.txt")
    backup = ts.keras.ResumableBackup(tmp_path / "ckpt", options=EVERY_STEP)
    data = backup.dataset(source, batch_size=BATCH, shuffle=True)
    model.fit(data, epochs=EPOCHS, verbose=0, callbacks=[backup])
    assert_same_weights(model, reference)


@pytest.mark.parametrize("retry_with", ["same callback", "new callback"])
def test_a_retry_before_the_first_checkpoint_starts_from_the_initial_state(
    source, tmp_path, retry_with
):
    """A fit that raised before any checkpoint was saved, called again on the same model in
    the same process (a notebook, where the cell making the callback may run again): the
    retry trains from the weights and optimizer state the model had when the first attempt
    began, as an uninterrupted fit does, not from where the attempt stopped."""
    reference, expected = fit(source, tmp_path / "ref", tmp_path / "ref.txt")
    options = CheckpointOptions(every_steps=None, every_seconds=None)  # first: epoch 0's end
    model = build(tmp_path / "run.txt")

    def attempt(backup, crash_at=None):
        data = backup.dataset(source, batch_size=BATCH, shuffle=True, seed=7)
        callbacks = [backup] + ([Crash(crash_at)] if crash_at else [])
        return model.fit(data, epochs=EPOCHS, verbose=0, callbacks=callbacks)

    backup = ts.keras.ResumableBackup(tmp_path / "run", options=options)
    with pytest.raises(RuntimeError, match="crash at step 3"):
        attempt(backup, crash_at=3)
    if retry_with == "new callback":
        backup = ts.keras.ResumableBackup(tmp_path / "run", options=options)
    history = attempt(backup)
    assert int(model.optimizer.iterations.numpy()) == EPOCHS * 6
    assert history.history["loss"] == expected.history["loss"]
    assert_same_weights(model, reference)


def test_a_changed_model_after_a_failed_first_step_starts_over(source, tmp_path):
    """The start checkpoint of a first fit that failed before its first step must not block a
    rerun with another model: nothing was trained, so the rerun starts over (with a warning),
    and the directory's model snapshot is the new model's."""

    def small(units):
        keras.utils.set_random_seed(0)
        inputs = {f: keras.Input((), name=f) for f in FEATURES}
        inputs["id"] = keras.Input((), name="id", dtype="int64")
        h = keras.layers.Concatenate()([keras.layers.Reshape((1,))(inputs[f]) for f in FEATURES])
        model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(units)(h)))
        model.compile(optimizer="sgd", loss="mse")
        return model

    directory = tmp_path / "run"
    first = small(4)
    backup = ts.keras.ResumableBackup(directory)
    with pytest.raises(RuntimeError, match="crash at step 1"):
        first.fit(backup.dataset(source, batch_size=BATCH), verbose=0, callbacks=[backup, Crash(1)])
    second = small(8)
    backup = ts.keras.ResumableBackup(directory)
    with pytest.warns(UserWarning, match="only the start of an earlier fit"):
        second.fit(backup.dataset(source, batch_size=BATCH), verbose=0, callbacks=[backup])
    assert int(second.optimizer.iterations.numpy()) == N // BATCH + (N % BATCH > 0)
    assert_same_weights(load_model(directory), second)
    # Once trained, a mismatching checkpoint is refused as before.
    with pytest.raises(ValueError, match="does not match this model"):
        third = small(2)
        backup = ts.keras.ResumableBackup(directory)
        third.fit(backup.dataset(source, batch_size=BATCH), verbose=0, callbacks=[backup])


def test_plain_model_gets_the_exact_step(source, tmp_path):
    model = build(tmp_path / "a.txt", accumulation=None)
    backup = ts.keras.ResumableBackup(tmp_path / "ckpt", options=EVERY_STEP)
    model.fit(backup.dataset(source, batch_size=BATCH), verbose=0, callbacks=[backup])
    assert model._tfstream_accumulation_steps == 1


def test_load_model_from_trainer_and_backup_directories(source, tmp_path):
    model, _ = fit(source, tmp_path / "fit", tmp_path / "a.txt")
    loaded = load_model(tmp_path / "fit")
    assert_same_weights(loaded, model)
    trainer = ts.Trainer(
        lambda: build(tmp_path / "b.txt", accumulation=None),
        optimizer="sgd",
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        checkpoint_dir=tmp_path / "trainer",
    )
    trainer.fit(source, batch_size=BATCH, epochs=1, verbose=0)
    loaded = load_model(tmp_path / "trainer")
    assert_same_weights(loaded, trainer.model)
    batch = next(iter(source.dataset(8)))[0]
    np.testing.assert_array_equal(loaded(batch), trainer.model(batch))
    with pytest.raises(FileNotFoundError, match="model.keras"):
        load_model(tmp_path)


def test_stats_are_kept_in_a_checkpoint_directory_on_a_tensorflow_filesystem(source, tmp_path):
    # ram:// is TensorFlow's in-memory filesystem: known to tf.io.gfile (as the checkpoints
    # are written), unknown to os.path and fsspec. stats.json used to go to a local path.
    from tfstream.train.checkpoint import keep_stats

    directory = f"ram://tfstream-test-{tmp_path.name}/ckpt"
    stats = ts.compute_stats(source, progress=False)
    assert keep_stats(directory, stats) is stats
    assert tf.io.gfile.exists(f"{directory}/stats.json")
    assert not os.path.exists(f"{directory}/stats.json")
    assert keep_stats(directory, None).to_json() == stats.to_json()
    other = ts.compute_stats(source, sample=0.5, progress=False)
    with pytest.raises(ValueError, match="differ from those this checkpoint was trained with"):
        keep_stats(directory, other)
    assert [n for n in tf.io.gfile.listdir(directory) if n.startswith(".tmp")] == []


def test_stats_are_kept_with_the_checkpoints(source, tmp_path):
    stats = ts.compute_stats(source, progress=False)
    backup = ts.keras.ResumableBackup(tmp_path / "ckpt", stats=stats)
    assert (tmp_path / "ckpt" / "stats.json").exists()
    assert ts.keras.ResumableBackup(tmp_path / "ckpt").stats.to_json() == stats.to_json()
    assert ts.keras.ResumableBackup(tmp_path / "ckpt", stats=stats).stats is not None
    other = ts.compute_stats(source, sample=0.5, progress=False)
    with pytest.raises(ValueError, match="differ from those this checkpoint was trained with"):
        ts.keras.ResumableBackup(tmp_path / "ckpt", stats=other)
    with pytest.raises(ValueError, match="differ from those"):
        ts.Trainer(build(tmp_path / "a.txt"), optimizer="sgd", loss="mse",
                   checkpoint_dir=tmp_path / "ckpt", stats=other)  # fmt: skip
    trainer = ts.Trainer(build(tmp_path / "a.txt"), optimizer="sgd", loss="mse",
                         checkpoint_dir=tmp_path / "ckpt")  # fmt: skip
    assert trainer.stats.to_json() == stats.to_json()
    assert backup.stats is stats
