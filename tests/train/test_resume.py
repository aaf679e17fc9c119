"""Crash-proof training with real processes: a training script (this file, run as
``python test_resume.py ...``) is killed and run again until it finishes.

- One device: kill -9 at a random step; kill -9 while a checkpoint is being written (the data
  and index files are on disk, the pointer file is not yet updated); SIGTERM at a random step
  (the process must save and exit with code 75 within a grace period, losing nothing); kill -9
  at a random step again; then a run to the end.
- MirroredStrategy over 2 logical CPUs: kill -9 at a random step, then a run to the end.

Both through ``ts.Trainer(checkpoint_dir=...)`` and through ``model.fit`` with
``ts.keras.ResumableBackup`` (the script's ``api`` argument).

Each chain trains 3 epochs over 4 shuffled CSV files in determinism mode, with a
``CanaryLayer`` recording the example ids each process trains on. The training that counts is,
for each process, what it trained before the position the next process resumed from (the
rest was lost with the kill and trained again). Checked: every id exactly once per epoch, the
same windows as an uninterrupted run, and final weights bit-identical to that run's.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

N = 240  # rows, in 4 CSV files
BATCH = 32  # 8 windows per epoch (7 x 32 + 16)
EPOCHS = 3
STEPS = EPOCHS * 8
STEP_SLEEP = 0.12  # seconds per step in the script, so that kills land where they are aimed
GRACE = 20  # seconds a SIGTERM'd process may take to save and exit
SEED = int(os.environ.get("TFSTREAM_RESUME_SEED", "20261124"))  # of the kill steps

pytestmark = pytest.mark.slow


# -- the training script ---------------------------------------------------------------------


def _script(data_dir: str, run_dir: str, strategy: str, api: str) -> None:
    """Trains (or resumes); prints ``step <global step>`` after each window; writes the final
    weights to ``run_dir/weights.npz``. ``TFSTREAM_TEST_HANG_SAVE=<marker>`` makes the first
    checkpoint of the process hang between its data files and its pointer file."""
    from tfstream.testing import split_cpu

    if strategy == "mirrored":
        split_cpu(2)  # before TensorFlow initialises its devices
    import keras

    import tfstream as ts
    from tfstream.testing import CanaryLayer, mirrored_cpu_strategy
    from tfstream.train.checkpoint import CheckpointOptions, latest_state

    marker = os.environ.get("TFSTREAM_TEST_HANG_SAVE")
    if marker:
        from tensorflow.python.checkpoint import checkpoint_management

        def hang(*args, **kwargs):
            open(marker, "w").close()
            time.sleep(600)

        checkpoint_management.update_checkpoint_state_internal = hang

    checkpoint_dir = os.path.join(run_dir, "ckpt")
    saved = latest_state(checkpoint_dir)
    position = 0 if saved is None else _position(saved[1])
    with open(os.path.join(run_dir, "starts.txt"), "a") as f:
        f.write(f"{os.getpid()} {position}\n")

    features = ["f0", "f1", "f2", "f3"]

    def build():
        inputs = {f: keras.Input((), name=f) for f in features}
        inputs["id"] = keras.Input((), name="id", dtype="int64")
        h = keras.layers.Concatenate()([keras.layers.Reshape((1,))(inputs[f]) for f in features])
        h = CanaryLayer(os.path.join(run_dir, "seen.txt"))(h, inputs["id"])
        h = keras.layers.Dense(16, activation="relu")(h)
        h = keras.layers.Dropout(0.2)(h)
        return keras.Model(inputs, keras.layers.Dense(1)(h))

    class Progress(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            print(f"step {int(self.model.optimizer.iterations.numpy())}", flush=True)
            time.sleep(STEP_SLEEP)

    options = CheckpointOptions(every_steps=3, every_seconds=None, keep=3)
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    data = ts.csv(data_dir, label="label")
    if api == "fit":
        ts.train.enable_determinism(0)
        scope = mirrored_cpu_strategy(2).scope() if strategy == "mirrored" else _nothing()
        with scope:
            model = build()
            model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
        model = ts.keras.accumulate(model, 2)
        backup = ts.keras.ResumableBackup(checkpoint_dir, options=options)
        windows = backup.dataset(data, batch_size=BATCH, shuffle=True)
        model.fit(windows, epochs=EPOCHS, verbose=0, callbacks=[backup, Progress()])
    else:
        trainer = ts.Trainer(
            build,
            optimizer=keras.optimizers.Adam(0.01),
            loss=loss,
            accumulation_steps=2,
            strategy=mirrored_cpu_strategy(2) if strategy == "mirrored" else "auto",
            checkpoint_dir=checkpoint_dir,
            options=ts.TrainerOptions(deterministic=True, checkpoint=options),
        )
        trainer.fit(data, batch_size=BATCH, epochs=EPOCHS, shuffle=True, verbose=0,
                    callbacks=[Progress()])  # fmt: skip
        model = trainer.model
    np.savez(os.path.join(run_dir, "weights.npz"), *model.get_weights())
    print("done", flush=True)


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def _position(state) -> int:
    """Rows of the run before a checkpoint's position (all of them once the fit finished)."""
    return EPOCHS * N if state.fits_done else state.epoch * N + state.windows_done * BATCH


# -- driving it ------------------------------------------------------------------------------


class Run:
    """One process of the script."""

    def __init__(self, data_dir, run_dir, strategy, api, env=None):
        self.run_dir = run_dir
        os.makedirs(run_dir, exist_ok=True)
        self.stderr = open(os.path.join(run_dir, "stderr.txt"), "a")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(data_dir), str(run_dir), strategy, api],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
        )
        self.lines = []

    def read_until_step(self, target: int) -> int:
        """Reads the progress lines until the global step reaches ``target``."""
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("step ") and int(line.split()[1]) >= target:
                return int(line.split()[1])
        raise AssertionError(f"the run ended before step {target}:\n{self.log()}")

    def kill(self, signum=signal.SIGKILL) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout=180) -> int:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        finally:
            self.stderr.close()
        self.lines.append(out)
        return self.proc.returncode

    def log(self) -> str:
        with open(os.path.join(self.run_dir, "stderr.txt")) as f:
            return "".join(self.lines) + f.read()[-3000:]


def _current_step(run_dir) -> int:
    from tfstream.train.checkpoint import latest_state

    saved = latest_state(os.path.join(run_dir, "ckpt"))
    return 0 if saved is None else saved[1].step


def _kill_at_random_step(data_dir, run_dir, strategy, api, rng) -> dict:
    start = _current_step(run_dir)
    target = start + rng.randint(2, 9)
    run = Run(data_dir, run_dir, strategy, api)
    run.read_until_step(target)
    time.sleep(rng.uniform(0, STEP_SLEEP))
    run.kill()
    assert run.wait() == -signal.SIGKILL
    return {"kill -9 at step": target, "resumed from step": start}


def _committed_sequence(run_dir) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """The ids of the training that counts, and per process (pid, ids recorded, ids kept)."""
    from tfstream.testing import read_canary

    with open(os.path.join(run_dir, "starts.txt")) as f:
        starts = [tuple(int(v) for v in line.split()) for line in f]
    seen = {}
    for pid, ids in read_canary(os.path.join(run_dir, "seen.txt")):
        seen.setdefault(pid, []).append(ids)
    parts, kept = [], []
    for i, (pid, position) in enumerate(starts):
        ids = np.concatenate(seen.get(pid, [np.zeros(0, np.int64)]))
        end = starts[i + 1][1] if i + 1 < len(starts) else EPOCHS * N
        assert end >= position, f"process {i} resumed before its predecessor: {starts}"
        parts.append(ids[: end - position])
        kept.append((pid, len(ids), end - position))
    return np.concatenate(parts), kept


def _windows(sequence):
    """The ids of each window of each epoch, sorted (replicas log a window in either order)."""
    out = []
    for e in range(0, len(sequence), N):
        epoch = sequence[e : e + N]
        out += [sorted(epoch[w : w + BATCH].tolist()) for w in range(0, len(epoch), BATCH)]
    return out


def _check_against_reference(run_dir, reference_dir, events):
    sequence, kept = _committed_sequence(run_dir)
    context = json.dumps({"events": events, "processes (pid, ids seen, ids kept)": kept})
    assert len(sequence) == EPOCHS * N, context
    for e in range(EPOCHS):
        epoch = np.sort(sequence[e * N : (e + 1) * N])
        np.testing.assert_array_equal(epoch, np.arange(N), err_msg=context)
    reference, _ = _committed_sequence(reference_dir)
    assert _windows(sequence) == _windows(reference), context
    with np.load(os.path.join(run_dir, "weights.npz")) as got:
        with np.load(os.path.join(reference_dir, "weights.npz")) as expected:
            assert got.files == expected.files
            for name in got.files:
                np.testing.assert_array_equal(got[name], expected[name], err_msg=context)
    return kept


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from tfstream.testing import make_frame

    directory = tmp_path_factory.mktemp("csv")
    frame = make_frame(N, features=4, seed=1)
    frame.insert(0, "id", np.arange(N, dtype=np.int64))
    for i, part in enumerate(np.array_split(np.arange(N), 4)):
        frame.iloc[part].to_csv(directory / f"part-{i}.csv", index=False)
    return directory


@pytest.mark.parametrize("api", ["trainer", "fit"])
def test_kills_and_sigterm_on_one_device(data_dir, tmp_path, api):
    rng = random.Random(SEED)
    reference = Run(data_dir, tmp_path / "reference", "one_device", api)  # alongside the chain
    run_dir = tmp_path / "run"
    events = [_kill_at_random_step(data_dir, run_dir, "one_device", api, rng)]

    # kill -9 while a checkpoint is being written: its files are there, the pointer is not.
    before = _current_step(run_dir)
    marker = tmp_path / "writing"
    run = Run(data_dir, run_dir, "one_device", api, env={"TFSTREAM_TEST_HANG_SAVE": str(marker)})
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert run.proc.poll() is None and time.monotonic() < deadline, run.log()
        time.sleep(0.02)
    run.kill()
    assert run.wait() == -signal.SIGKILL
    from tfstream.train.checkpoint import latest_state

    path, state = latest_state(run_dir / "ckpt")
    unfinished = sorted((run_dir / "ckpt").glob("ckpt-*.index"))[-1]
    assert state.step == before and unfinished.stem != os.path.basename(path), (path, unfinished)
    events.append({"kill -9 while writing": unfinished.stem, "resumed from step": before})

    # SIGTERM: saves after the window being trained and exits with 75, losing nothing.
    start = _current_step(run_dir)
    run = Run(data_dir, run_dir, "one_device", api)
    target = run.read_until_step(start + rng.randint(2, 9))
    run.kill(signal.SIGTERM)
    sent = time.monotonic()
    assert run.wait(timeout=GRACE) == 75, run.log()
    assert time.monotonic() - sent < GRACE
    assert "SIGTERM received: saved" in run.log()
    assert _current_step(run_dir) >= target
    events.append({"SIGTERM at step": target, "saved step": _current_step(run_dir)})

    events.append(_kill_at_random_step(data_dir, run_dir, "one_device", api, rng))
    final = Run(data_dir, run_dir, "one_device", api)
    assert final.wait() == 0, final.log()
    assert reference.wait() == 0, reference.log()

    kept = _check_against_reference(run_dir, tmp_path / "reference", events)
    assert len(kept) == 5
    _, seen, committed = kept[2]  # the SIGTERM'd process: all it trained was saved
    assert seen == committed > 0, events


@pytest.mark.parametrize("api", ["trainer", "fit"])
def test_kill_under_mirrored_strategy(data_dir, tmp_path, api):
    rng = random.Random(SEED + 1)
    reference = Run(data_dir, tmp_path / "reference", "mirrored", api)
    run_dir = tmp_path / "run"
    events = [_kill_at_random_step(data_dir, run_dir, "mirrored", api, rng)]
    events.append(_kill_at_random_step(data_dir, run_dir, "mirrored", api, rng))
    final = Run(data_dir, run_dir, "mirrored", api)
    assert final.wait() == 0, final.log()
    assert reference.wait() == 0, reference.log()
    _check_against_reference(run_dir, tmp_path / "reference", events)


if __name__ == "__main__":
    _script(*sys.argv[1:5])
