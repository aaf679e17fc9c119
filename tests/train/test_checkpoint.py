"""Checkpoints and exact resume of ``ts.Trainer``, in process: the round trip of every piece of
state, keep-last-k, fallback from a corrupt or half-written checkpoint, mid-epoch resume against
an uninterrupted run (bit for bit in determinism mode, one device and MirroredStrategy over 2
logical CPUs), the random shuffle seed kept, SIGTERM, replayed fit calls, size that does not
grow, and argument checks. Interruptions are simulated by a callback that raises after n steps
(a crash: the in-memory state after the last checkpoint is lost)."""

import os
import signal
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfstream as ts
from tfstream.testing import CanaryLayer, make_frame, mirrored_cpu_strategy, read_canary
from tfstream.train.checkpoint import (
    PREEMPTED_EXIT_CODE,
    CheckpointOptions,
    LoopState,
    Preempted,
    TrainingCheckpoint,
    latest_state,
)

N = 90  # rows; 4 CSV files
BATCH = 16  # windows of an epoch: 5 x 16 + 10
FEATURES = ["f0", "f1", "f2"]
EPOCHS = 3


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("csv")
    frame = make_frame(N, features=len(FEATURES), seed=0)
    frame.insert(0, "id", np.arange(N, dtype=np.int64))
    for i, part in enumerate(np.array_split(np.arange(N), 4)):
        frame.iloc[part].to_csv(directory / f"part-{i}.csv", index=False)
    return directory


@pytest.fixture
def deterministic():
    """Trainer(options=TrainerOptions(deterministic=True)) turns on op determinism for the
    process; this worker's other tests run without it."""
    yield
    from tensorflow.python.framework import config

    config.disable_op_determinism()


def build(log_path):
    def build_model():
        keras.utils.set_random_seed(0)
        inputs = {f: keras.Input((), name=f) for f in FEATURES}
        inputs["id"] = keras.Input((), name="id", dtype="int64")
        h = keras.layers.Concatenate()([keras.layers.Reshape((1,))(inputs[f]) for f in FEATURES])
        h = CanaryLayer(log_path)(h, inputs["id"])
        h = keras.layers.Dense(8, activation="relu")(h)
        h = keras.layers.Dropout(0.25)(h)  # its seed generator's state is checkpointed
        return keras.Model(inputs, keras.layers.Dense(1)(h))

    return build_model


def trainer(log_path, checkpoint_dir=None, *, strategy="auto", deterministic=True, **options):
    options.setdefault("every_seconds", None)
    options.setdefault("every_steps", 4)
    return ts.Trainer(
        build(log_path),
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=["accuracy"],
        accumulation_steps=2,
        strategy=strategy,
        checkpoint_dir=checkpoint_dir,
        options=ts.TrainerOptions(
            deterministic=deterministic, checkpoint=CheckpointOptions(**options)
        ),
    )


class Crash(Exception):
    pass


class CrashAfter(keras.callbacks.Callback):
    """Raises after ``steps`` windows: the process 'dies' with its state after the last
    checkpoint lost."""

    def __init__(self, steps):
        super().__init__()
        self.steps, self.seen = steps, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.steps:
            raise Crash


_REFERENCES = {}


@pytest.fixture
def reference(csv_dir, tmp_path_factory, deterministic):
    """``reference(strategy)``: weights, history and ids of an uninterrupted deterministic run
    (seed 3), computed once per worker and strategy."""

    def get(strategy):
        if strategy not in _REFERENCES:
            log = tmp_path_factory.mktemp("reference") / "seen.txt"
            s = mirrored_cpu_strategy(2) if strategy == "mirrored" else "auto"
            t = trainer(log, strategy=s)
            history = fit(t, csv_dir).history
            _REFERENCES[strategy] = (t.model.get_weights(), history, ids(log))
        return _REFERENCES[strategy]

    return get


def ids(path):
    return np.concatenate([i for _, i in read_canary(path)] or [np.zeros(0, np.int64)])


def windows(sequence):
    """The ids of each window of each epoch, sorted (replicas may log a window's rows in
    either order)."""
    out = []
    for e in range(0, len(sequence), N):
        epoch = sequence[e : e + N]
        out += [sorted(epoch[w : w + BATCH].tolist()) for w in range(0, len(epoch), BATCH)]
    return out


def committed(state):
    """Rows the checkpoint holds of a run: those trained before its position."""
    return state.epoch * N + state.rows_done


def assert_each_id_once_per_epoch(sequence):
    assert len(sequence) == EPOCHS * N
    for e in range(EPOCHS):
        np.testing.assert_array_equal(np.sort(sequence[e * N : (e + 1) * N]), np.arange(N))


def assert_same_weights(a, b):
    a = a if isinstance(a, list) else a.get_weights()
    for u, v in zip(a, b.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)


def fit(t, csv_dir, **kwargs):
    kwargs.setdefault("seed", 3)
    return t.fit(ts.csv(str(csv_dir), label="label"), batch_size=BATCH, epochs=EPOCHS,
                 shuffle=True, verbose=0, **kwargs)  # fmt: skip


# -- the checkpoint itself ---------------------------------------------------------------------


def small_model():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dropout(0.5), keras.layers.Dense(1)]
    )
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.01))
    model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
    model.fit(np.ones((4, 3), "float32"), np.ones((4, 1), "float32"), verbose=0)
    return model


def all_variables(model):
    return [*model.variables, *model.optimizer.variables, *model.metrics_variables]


def test_round_trip_of_all_state(tmp_path):
    model = small_model()
    names = {v.path for v in all_variables(model)}
    # Keras numbers layer and optimizer names per process (adam_25/...): match the suffixes.
    assert any(n.endswith("/dynamic_scale") for n in names)
    assert any(n.endswith("/iteration") for n in names)
    assert any("seed_generator_state" in n for n in names)
    rng = np.random.default_rng(0)
    for v in all_variables(model):  # every variable gets a value of its own
        v.assign((rng.random(v.shape) * 100).astype(v.dtype))
    saved = [np.array(v.numpy()) for v in all_variables(model)]
    state = LoopState(fits_done=1, epoch=2, windows_done=3, rows_done=48, step=77,
                      seed=2**32 - 1, batch_size=16, steps_per_epoch=5)  # fmt: skip
    path = TrainingCheckpoint(tmp_path, model).save(state)
    for v in all_variables(model):
        v.assign(np.zeros(v.shape, v.dtype))
    assert TrainingCheckpoint(tmp_path, model).restore() == (path, state)
    for v, value in zip(all_variables(model), saved, strict=True):
        np.testing.assert_array_equal(v.numpy(), value, err_msg=v.path)
    assert latest_state(tmp_path) == (path, state)


def test_keeps_the_last_k(tmp_path):
    ckpt = TrainingCheckpoint(tmp_path, small_model(), keep=2)
    for step in range(1, 6):
        ckpt.save(LoopState(step=step))
    assert [os.path.basename(p) for p in ckpt.checkpoints] == ["ckpt-4", "ckpt-5"]
    assert sorted(p.name for p in tmp_path.glob("*.index")) == ["ckpt-4.index", "ckpt-5.index"]
    assert latest_state(tmp_path)[1].step == 5


def test_a_relative_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = small_model()
    ckpt = TrainingCheckpoint(os.path.join("runs", "ckpt"), model, keep=2)
    for step in range(1, 4):
        ckpt.save(LoopState(step=step))
    again = TrainingCheckpoint(os.path.join("runs", "ckpt"), model, keep=2)
    path, state = again.restore()
    assert state.step == 3 and os.path.basename(path) == "ckpt-3"
    assert latest_state(os.path.join("runs", "ckpt"))[1].step == 3


@pytest.mark.parametrize("damage", ["truncated data", "garbled data", "truncated index"])
def test_corrupt_latest_falls_back_with_a_warning_naming_it(tmp_path, damage):
    model = small_model()
    ckpt = TrainingCheckpoint(tmp_path, model, keep=3)
    for step in (1, 2, 3):
        ckpt.save(LoopState(step=step))
    data, index = tmp_path / "ckpt-3.data-00000-of-00001", tmp_path / "ckpt-3.index"
    if damage == "truncated data":
        os.truncate(data, data.stat().st_size // 2)
    elif damage == "garbled data":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2 :] = b"x" * (len(raw) - len(raw) // 2)
        data.write_bytes(bytes(raw))
    else:
        os.truncate(index, 10)
    with pytest.warns(UserWarning, match=r"ckpt-3 cannot be read.*falling back"):
        path, state = TrainingCheckpoint(tmp_path, model).restore()
    assert os.path.basename(path) == "ckpt-2" and state.step == 2
    with pytest.warns(UserWarning, match="ckpt-3"):
        assert latest_state(tmp_path)[1].step == 2


def test_no_readable_checkpoint_is_an_error(tmp_path):
    model = small_model()
    ckpt = TrainingCheckpoint(tmp_path, model, keep=2)
    for step in (1, 2):
        ckpt.save(LoopState(step=step))
    for data in tmp_path.glob("*.data-*"):
        os.truncate(data, 8)
    with pytest.warns(UserWarning, match="cannot be read") as warned:
        with pytest.raises(RuntimeError, match="No checkpoint in .* can be read"):
            TrainingCheckpoint(tmp_path, model).restore()
    assert ["ckpt-2" in str(w.message) for w in warned] == [True, False]


@pytest.mark.parametrize("damage", [b"", b"\xff\xfe garbled", b"model_checkpoint_path: {"])
def test_a_damaged_pointer_file_is_rebuilt_from_the_directory(tmp_path, damage):
    model = small_model()
    ckpt = TrainingCheckpoint(tmp_path, model, keep=3)
    for step in (1, 2, 3):
        ckpt.save(LoopState(step=step))
    (tmp_path / "checkpoint").write_bytes(damage)
    with pytest.warns(UserWarning, match=r"pointer file .* is damaged.*'ckpt-2', 'ckpt-3'"):
        ckpt = TrainingCheckpoint(tmp_path, model, keep=3)
    assert ckpt.restore()[1].step == 3
    assert os.path.basename(ckpt.save(LoopState(step=4))) == "ckpt-4"
    assert [os.path.basename(p) for p in ckpt.checkpoints] == ["ckpt-2", "ckpt-3", "ckpt-4"]


def test_a_crash_while_writing_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    from tensorflow.python.checkpoint import checkpoint_management

    model = small_model()
    ckpt = TrainingCheckpoint(tmp_path, model)
    ckpt.save(LoopState(step=1))

    def killed(*args, **kwargs):  # the data and index files are written; the pointer is not
        raise Crash

    monkeypatch.setattr(checkpoint_management, "update_checkpoint_state_internal", killed)
    with pytest.raises(Crash):
        ckpt.save(LoopState(step=2))
    monkeypatch.undo()
    assert (tmp_path / "ckpt-2.index").exists()  # written, never committed
    path, state = TrainingCheckpoint(tmp_path, model).restore()
    assert os.path.basename(path) == "ckpt-1" and state.step == 1


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    TrainingCheckpoint(tmp_path, small_model()).save(LoopState(step=1))
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    other.compile(optimizer="adam", loss="mse")
    other.fit(np.ones((2, 3), "float32"), np.ones((2, 2), "float32"), verbose=0)
    with pytest.raises(ValueError, match="does not match this model.*model variables saved"):
        TrainingCheckpoint(tmp_path, other).restore()


# -- resume through the Trainer ----------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["one device", "mirrored"])
@pytest.mark.parametrize("resume_with", ["new trainer", "same trainer"])
def test_resume_mid_epoch_equals_uninterrupted(csv_dir, tmp_path, reference, strategy, resume_with):
    def make(log, directory=None):
        s = mirrored_cpu_strategy(2) if strategy == "mirrored" else "auto"
        return trainer(tmp_path / log, directory, strategy=s)

    weights, expected, expected_ids = reference(strategy)

    directory = tmp_path / "ckpt"
    first = make("first.txt", directory)
    with pytest.raises(Crash):  # step 10 = epoch 2, window 4; the last checkpoint is step 8
        fit(first, csv_dir, callbacks=[CrashAfter(10)])
    _, state = latest_state(directory)
    assert (state.epoch, state.windows_done, state.step) == (1, 2, 8)
    second = first if resume_with == "same trainer" else make("second.txt", directory)
    for layer in second.model.layers:  # "same trainer" reuses the canary of `first`
        if isinstance(layer, CanaryLayer):
            layer.log_path = str(tmp_path / "second.txt")
    history = fit(second, csv_dir).history

    assert_same_weights(weights, second.model)
    assert int(second.model.optimizer.iterations.numpy()) == EPOCHS * 6
    # The resumed epoch's logs cover its windows from before the crash too (metrics restored).
    for key in ("loss", "accuracy", "rows"):
        assert history[key] == expected[key][1:], key
    assert len(ids(tmp_path / "first.txt")) == N + 4 * BATCH  # 2 windows were lost, redone
    sequence = np.concatenate(
        [ids(tmp_path / "first.txt")[: committed(state)], ids(tmp_path / "second.txt")]
    )
    assert_each_id_once_per_epoch(sequence)
    assert windows(sequence) == windows(expected_ids)


def test_a_crash_between_the_last_window_and_the_end_of_an_epoch(csv_dir, tmp_path, reference):
    """The checkpoint after the epoch's last window (step 6) is the resume point: the epoch has
    nothing left to train, but its end (logs, actions) comes again."""
    weights, expected, _ = reference("one device")
    ends = []

    def action(trainer, epoch, logs):
        ends.append((epoch, logs["rows"], logs["loss"]))
        if len(ends) == 1:
            raise Crash

    directory = tmp_path / "ckpt"
    with pytest.raises(Crash):
        fit(trainer(tmp_path / "a.txt", directory, every_steps=6), csv_dir, callbacks=[action])
    assert latest_state(directory)[1][1:4] == (0, 6, N)  # epoch 0, 6 windows, 90 rows
    resumed = trainer(tmp_path / "b.txt", directory, every_steps=6)
    history = fit(resumed, csv_dir, callbacks=[action]).history
    assert ends[1] == ends[0] and [e for e, _, _ in ends] == [0, 0, 1, 2]
    assert history["loss"] == expected["loss"] and history["rows"] == [N] * EPOCHS
    assert_same_weights(weights, resumed.model)


def test_a_retry_before_the_first_checkpoint_starts_from_the_initial_state(
    csv_dir, tmp_path, reference
):
    """A fit that raised before any checkpoint was saved, called again in the same process (a
    notebook): the retry trains from the weights and optimizer state the model had when the
    first attempt began, as an uninterrupted run does, not from where the attempt stopped."""
    weights, expected, _ = reference("one device")
    directory = tmp_path / "ckpt"
    t = trainer(tmp_path / "a.txt", directory, every_steps=None)  # first save: epoch 0's end
    with pytest.raises(Crash):
        fit(t, csv_dir, callbacks=[CrashAfter(3)])
    history = fit(t, csv_dir).history
    assert int(t.model.optimizer.iterations.numpy()) == EPOCHS * 6
    assert history["loss"] == expected["loss"]
    assert_same_weights(weights, t.model)


def test_a_random_shuffle_seed_is_saved_and_reused(csv_dir, tmp_path):
    directory = tmp_path / "ckpt"
    first = trainer(tmp_path / "first.txt", directory, deterministic=False)
    with pytest.raises(Crash):
        fit(first, csv_dir, seed=None, callbacks=[CrashAfter(7)])
    _, state = latest_state(directory)
    assert state.seed >= 0 and state.step == 6
    second = trainer(tmp_path / "second.txt", directory, deterministic=False)
    fit(second, csv_dir, seed=None)
    reference = trainer(tmp_path / "reference.txt", deterministic=False)
    fit(reference, csv_dir, seed=state.seed)
    sequence = np.concatenate(
        [ids(tmp_path / "first.txt")[: committed(state)], ids(tmp_path / "second.txt")]
    )
    np.testing.assert_array_equal(sequence, ids(tmp_path / "reference.txt"))
    assert_same_weights(reference.model, second.model)


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers are installed from the main thread only",
)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_and_raises_preempted(csv_dir, tmp_path, reference, signum):
    class SignalAt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations) == 7:
                signal.raise_signal(signum)

    before = signal.getsignal(signum)
    directory = tmp_path / "ckpt"
    with pytest.raises(Preempted) as stopped:
        fit(trainer(tmp_path / "first.txt", directory), csv_dir, callbacks=[SignalAt()])
    assert stopped.value.code == PREEMPTED_EXIT_CODE == 75 and stopped.value.signal == signum
    assert isinstance(stopped.value, SystemExit)
    assert signal.getsignal(signum) is before  # handlers put back
    path, state = latest_state(directory)
    assert path == stopped.value.path and (state.step, state.epoch, state.windows_done) == (7, 1, 1)
    resumed = trainer(tmp_path / "second.txt", directory)
    fit(resumed, csv_dir)
    weights, _, expected_ids = reference("one device")
    assert_same_weights(weights, resumed.model)
    # Nothing trained before the signal was lost: the save came right after the last window.
    sequence = np.concatenate([ids(tmp_path / "first.txt"), ids(tmp_path / "second.txt")])
    np.testing.assert_array_equal(sequence, expected_ids)


def test_finished_fits_return_at_once_and_the_next_fit_continues(csv_dir, tmp_path):
    directory = tmp_path / "ckpt"
    first = trainer(tmp_path / "a.txt", directory, deterministic=False)
    fit(first, csv_dir)
    src = ts.csv(str(csv_dir), label="label")
    restored = trainer(tmp_path / "e.txt", directory, deterministic=False)
    assert restored.evaluate(src, batch_size=32) == first.evaluate(src, batch_size=32)
    replay = trainer(tmp_path / "b.txt", directory, deterministic=False)
    assert fit(replay, csv_dir).history == {}  # fit #0 is finished in the checkpoint
    assert not (tmp_path / "b.txt").exists()
    assert_same_weights(first.model, replay.model)
    fit(replay, csv_dir, seed=4)  # fit #1: trains on
    assert int(replay.model.optimizer.iterations.numpy()) == 2 * EPOCHS * 6
    assert latest_state(directory)[1] == LoopState(fits_done=2, step=2 * EPOCHS * 6)
    again = trainer(tmp_path / "c.txt", directory, deterministic=False)
    for _ in range(2):
        assert fit(again, csv_dir).history == {}
    assert_same_weights(replay.model, again.model)


def test_a_rerun_resumes_the_second_fit_where_it_crashed(csv_dir, tmp_path):
    """Replaying fit #0 (finished) must not make fit #1 start over: its windows would be
    trained twice."""
    directory = tmp_path / "ckpt"
    first = trainer(tmp_path / "a.txt", directory, deterministic=False, every_steps=1)
    fit(first, csv_dir)
    with pytest.raises(Crash):
        fit(first, csv_dir, seed=4, callbacks=[CrashAfter(8)])  # fit #1: 8 of 18 windows
    _, state = latest_state(directory)
    assert (state.fits_done, state.epoch, state.windows_done) == (1, 1, 1)  # 7 saved
    rerun = trainer(tmp_path / "b.txt", directory, deterministic=False, every_steps=1)
    assert fit(rerun, csv_dir).history == {}
    fit(rerun, csv_dir, seed=4)
    assert int(rerun.model.optimizer.iterations.numpy()) == 2 * EPOCHS * 6
    straight = trainer(tmp_path / "c.txt", tmp_path / "other", deterministic=False)
    fit(straight, csv_dir)
    fit(straight, csv_dir, seed=4)
    assert_same_weights(straight.model, rerun.model)


def test_a_resume_needs_the_same_steps_per_epoch(csv_dir, tmp_path, deterministic):
    """``steps_per_epoch`` decides where each epoch ends, hence what the saved position counts:
    it is saved, and a resume with another value is refused."""
    directory = tmp_path / "ckpt"
    with pytest.raises(Crash):  # step 6 = epoch 2, window 2; the last checkpoint is step 4
        fit(trainer(tmp_path / "a.txt", directory), csv_dir, steps_per_epoch=4,
            callbacks=[CrashAfter(6)])  # fmt: skip
    _, state = latest_state(directory)
    assert (state.epoch, state.step, state.steps_per_epoch) == (1, 4, 4)
    resumed = trainer(tmp_path / "b.txt", directory)
    for other in (None, 5):
        with pytest.raises(
            ValueError,
            match=r"saved by a fit with steps_per_epoch=4; resuming it needs the same "
            rf"steps_per_epoch.*Received: steps_per_epoch={other}\.",
        ):
            fit(resumed, csv_dir, steps_per_epoch=other)
    fit(resumed, csv_dir, steps_per_epoch=4)
    straight = trainer(tmp_path / "c.txt")
    fit(straight, csv_dir, steps_per_epoch=4)
    assert int(resumed.model.optimizer.iterations.numpy()) == EPOCHS * 4
    assert_same_weights(straight.model, resumed.model)


def test_a_checkpoint_written_before_steps_per_epoch_was_saved_still_loads(tmp_path):
    """Checkpoints of the first layout have 7 loop variables: they restore, with
    ``steps_per_epoch=-1`` (not recorded: a resume does not check it), and the next save goes
    on from their number."""
    from tfstream.train.checks import _check_same_run

    model = small_model()
    old = dict(fits_done=0, epoch=1, windows_done=2, rows_done=32, step=8, seed=-1, batch_size=16)
    checkpoint = tf.train.Checkpoint(
        model=list(model.variables),
        optimizer=list(model.optimizer.variables),
        metrics=list(model.metrics_variables),
        loop={name: tf.Variable(value, dtype=tf.int64) for name, value in old.items()},
    )
    path = tf.train.CheckpointManager(checkpoint, str(tmp_path), max_to_keep=3).save()
    expected = LoopState(**old, steps_per_epoch=-1)
    assert latest_state(tmp_path) == (path, expected)
    ckpt = TrainingCheckpoint(tmp_path, model)
    assert ckpt.restore() == (path, expected)
    assert os.path.basename(ckpt.save(LoopState(step=9, steps_per_epoch=7))) == "ckpt-2"
    assert TrainingCheckpoint(tmp_path, model).restore()[1].steps_per_epoch == 7
    _check_same_run(expected, path, None, 16, False, None, steps_per_epoch=4)  # no error


def test_checkpoint_size_does_not_grow_with_rows_read(csv_dir, tmp_path):
    directory = tmp_path / "ckpt"
    t = trainer(tmp_path / "log.txt", directory, deterministic=False, every_steps=1, keep=100)
    fit(t, csv_dir)
    sizes = {}
    for index in directory.glob("ckpt-*.index"):
        files = directory.glob(index.name.replace(".index", ".*"))
        sizes[index.stem] = sum(f.stat().st_size for f in files)
    assert len(sizes) == 1 + EPOCHS * 6 + EPOCHS  # the start, every step, epoch ends, fit's end
    assert len(set(sizes.values())) == 1, sizes  # the same bytes after 16 rows and after 270
    loop = [
        (name, shape)
        for name, shape in tf.train.list_variables(str(directory / "ckpt-5"))
        if name.startswith("loop/")
    ]
    assert len(loop) == 8 and all(shape == [] for _, shape in loop)  # scalars only


def test_resume_checks(csv_dir, tmp_path):
    directory = tmp_path / "ckpt"
    src = ts.csv(str(csv_dir), label="label")
    with pytest.raises(Crash):
        fit(trainer(tmp_path / "a.txt", directory, deterministic=False), csv_dir,
            callbacks=[CrashAfter(5)])  # fmt: skip
    t = trainer(tmp_path / "b.txt", directory, deterministic=False)
    with pytest.raises(ValueError, match="batch_size=16; resuming it needs the same batch_size"):
        t.fit(src, batch_size=8, epochs=EPOCHS, shuffle=True, seed=3, verbose=0)
    with pytest.raises(ValueError, match="with seed=3; resuming it needs the same seed"):
        t.fit(src, batch_size=BATCH, epochs=EPOCHS, shuffle=True, seed=4, verbose=0)
    with pytest.raises(ValueError, match="needs the same shuffle"):
        t.fit(src, batch_size=BATCH, epochs=EPOCHS, verbose=0)
    with pytest.raises(ValueError, match="`cache` cannot be used with `checkpoint_dir`"):
        t.fit(src, batch_size=BATCH, cache=str(tmp_path / "cache"))
    with pytest.raises(TypeError, match="`checkpoint_dir` must be a path"):
        trainer(tmp_path / "c.txt", 3)
    with pytest.raises(ValueError, match="`every_steps` must be a positive integer or None"):
        CheckpointOptions(every_steps=0)
    with pytest.raises(ValueError, match="`keep` must be a positive integer"):
        CheckpointOptions(keep=0)
    with pytest.raises(ValueError, match="`every_seconds` must be a positive number"):
        CheckpointOptions(every_seconds=-1)
    with pytest.raises(ValueError, match="`signals` must name signals"):
        CheckpointOptions(signals=("SIGNOPE",))


def test_save_schedule():
    options = CheckpointOptions(every_steps=5, every_seconds=60)
    assert options.signals == (signal.SIGTERM, signal.SIGINT)
    assert [options.due(step, 0.0) for step in (4, 5, 6, 10)] == [False, True, False, True]
    assert options.due(7, 60.0)
    assert not CheckpointOptions(every_steps=None, every_seconds=None).due(100, 1e9)
