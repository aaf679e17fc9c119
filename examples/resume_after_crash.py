"""Crash-proof training: a training process is killed with SIGKILL mid-epoch, the same command
is run again, and it continues exactly where its last checkpoint stood.

``ts.Trainer(..., checkpoint_dir=...)`` saves one checkpoint holding the model, the optimizer,
the metrics and the loop's position (epoch, windows done, shuffle seed) at window boundaries
(every ``every_steps`` steps here, and at each epoch end; also on SIGTERM/SIGINT, which then
exit with status 75). A rerun finds it, restores everything and skips the windows already
trained: no row is trained twice or skipped within an epoch, even with shuffling.

To *show* that, the model carries a ``tfstream.testing.CanaryLayer``: a pass-through layer that
appends the ``id`` of every row it trains on to a file. This script:

1. writes CSV files with an ``id`` column;
2. starts a training process (this file with ``--child``), reads its progress and kills it
   with SIGKILL at step ``--kill-at-step`` (everything after its last checkpoint is lost);
3. runs the same command again to the end (it resumes);
4. checks, from the canary file, that the training that counts saw every id exactly once per
   epoch, and — since both runs use ``TrainerOptions(deterministic=True)`` — that the final
   weights are bit-identical to an uninterrupted run's (run alongside).

Run it::

    python examples/resume_after_crash.py                 # 4,000 rows, 2 epochs
    python examples/resume_after_crash.py --rows 1000 --workdir /tmp/resume
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile

import numpy as np

FEATURES = ["f0", "f1", "f2", "f3"]
BATCH = 64  # rows per optimizer step
EPOCHS = 2


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4_000, help="rows of the generated CSV")
    parser.add_argument(
        "--workdir",
        help="data, checkpoints and logs (default: a temporary dir, removed at the end)",
    )
    parser.add_argument(
        "--kill-at-step",
        type=int,
        default=None,
        help="global step at which to kill (default: 40%% of the steps)",
    )
    parser.add_argument(
        "--step-sleep",
        type=float,
        default=0.05,
        help="seconds the child sleeps per step, so the kill lands mid-run",
    )
    parser.add_argument("--child", metavar="RUN_DIR", help=argparse.SUPPRESS)
    return parser.parse_args()


# -- the training process ------------------------------------------------------------------------


def train(data_dir: str, run_dir: str, step_sleep: float) -> None:
    """Trains (or resumes); prints ``step <n>`` after each optimizer step."""
    import time

    import keras

    import tfstream as ts
    from tfstream.testing import CanaryLayer
    from tfstream.train.checkpoint import latest_state

    checkpoint_dir = os.path.join(run_dir, "ckpt")
    # Where this process starts (rows of the whole run already trained), for the check below.
    saved = latest_state(checkpoint_dir)
    start = 0 if saved is None else saved[1].epoch * _rows(data_dir) + saved[1].rows_done
    with open(os.path.join(run_dir, "starts.txt"), "a") as f:
        f.write(f"{os.getpid()} {start}\n")
    if saved is None:
        print("starting from scratch", flush=True)
    else:
        print(
            f"resuming from {os.path.basename(saved[0])}: global step {saved[1].step}, epoch "
            f"{saved[1].epoch + 1}, after {saved[1].rows_done} rows of it",
            flush=True,
        )

    def build():
        inputs = {f: keras.Input((), name=f) for f in FEATURES}
        inputs["id"] = keras.Input((), name="id", dtype="int64")
        h = keras.layers.Concatenate()([keras.layers.Reshape((1,))(inputs[f]) for f in FEATURES])
        h = CanaryLayer(os.path.join(run_dir, "seen.txt"))(h, inputs["id"])  # records the ids
        h = keras.layers.Dense(16, activation="relu")(h)
        h = keras.layers.Dropout(0.2)(h)
        return keras.Model(inputs, keras.layers.Dense(1)(h))

    class Progress(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            print(f"step {int(self.model.optimizer.iterations.numpy())}", flush=True)
            time.sleep(step_sleep)

    trainer = ts.Trainer(
        build,
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        accumulation_steps=2,
        checkpoint_dir=checkpoint_dir,
        options=ts.TrainerOptions(
            deterministic=True,  # bit-identical results, so resumed == uninterrupted
            checkpoint=ts.CheckpointOptions(every_steps=5, every_seconds=None),
        ),
    )
    trainer.fit(
        ts.csv(data_dir, label="label"),
        batch_size=BATCH,
        epochs=EPOCHS,
        shuffle=True,
        verbose=0,
        callbacks=[Progress()],
    )
    np.savez(os.path.join(run_dir, "weights.npz"), *trainer.model.get_weights())
    print("done", flush=True)


def _rows(data_dir: str) -> int:
    with open(os.path.join(os.path.dirname(data_dir), "rows.txt")) as f:
        return int(f.read())


# -- the driver ------------------------------------------------------------------------------------


def start_child(data_dir, run_dir, step_sleep):
    os.makedirs(run_dir, exist_ok=True)
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        run_dir,
        "--workdir",
        data_dir,
        "--step-sleep",
        str(step_sleep),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    stderr = open(os.path.join(run_dir, "stderr.txt"), "a")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)


def committed_ids(run_dir: str, total_rows: int):
    """The ids of the training that counts: each process's records up to where the next
    process resumed (the rest was lost with the kill and trained again)."""
    with open(os.path.join(run_dir, "starts.txt")) as f:
        starts = [tuple(int(v) for v in line.split()) for line in f]
    # The canary file: one line "<pid> <id> <id> ..." per training call, written whole with a
    # single os.write, so a killed process never leaves half a line. (tfstream.testing's
    # read_canary reads it too; this loop spares the driver process importing TensorFlow.)
    by_pid = {}
    with open(os.path.join(run_dir, "seen.txt")) as f:
        for line in f:
            pid, *ids = line.split()
            by_pid.setdefault(int(pid), []).append(np.array(ids, dtype=np.int64))
    parts = []
    for i, (pid, position) in enumerate(starts):
        ids = np.concatenate(by_pid.get(pid, [np.zeros(0, np.int64)]))
        end = starts[i + 1][1] if i + 1 < len(starts) else total_rows
        print(
            f"  process {pid}: started at row {position:,}, trained {len(ids):,} rows, "
            f"{end - position:,} of them count ({len(ids) - (end - position):,} lost)"
        )
        parts.append(ids[: end - position])
    return np.concatenate(parts)


def main():
    args = parse_args()
    if args.child:
        return train(args.workdir, args.child, args.step_sleep)
    if args.workdir:
        return run(args, args.workdir)
    with tempfile.TemporaryDirectory(prefix="tfstream-resume-") as workdir:  # removed at the end
        return run(args, workdir)


def run(args, workdir: str):
    import pandas as pd

    data_dir = os.path.join(workdir, "data")
    os.makedirs(data_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.standard_normal((args.rows, 4)).astype("float32"), columns=FEATURES)
    table.insert(0, "id", np.arange(args.rows, dtype=np.int64))
    table["label"] = (table["f0"] - table["f1"] + rng.logistic(size=args.rows) > 0).astype(int)
    for i, part in enumerate(np.array_split(np.arange(args.rows), 4)):
        table.iloc[part].to_csv(os.path.join(data_dir, f"part-{i}.csv"), index=False)
    with open(os.path.join(workdir, "rows.txt"), "w") as f:
        f.write(str(args.rows))
    steps_per_epoch = -(-args.rows // BATCH)
    kill_at = args.kill_at_step or max(2, int(0.4 * EPOCHS * steps_per_epoch))
    kill_at = kill_at if kill_at % 5 else kill_at + 2  # between two checkpoints: work is lost
    print(
        f"{args.rows:,} rows, {EPOCHS} epochs of {steps_per_epoch} steps; checkpoint every 5 "
        f"steps; kill -9 at step {kill_at}"
    )

    # An uninterrupted run alongside, to compare with.
    reference_dir = os.path.join(workdir, "reference")
    reference = start_child(data_dir, reference_dir, 0.0)

    run_dir = os.path.join(workdir, "run")
    first = start_child(data_dir, run_dir, args.step_sleep)
    for line in first.stdout:
        if line.startswith("step ") and int(line.split()[1]) >= kill_at:
            first.send_signal(signal.SIGKILL)
            break
    else:
        raise SystemExit(f"the first run ended before step {kill_at}; see {run_dir}/stderr.txt")
    first.communicate()
    assert first.returncode == -signal.SIGKILL, first.returncode
    print(f"killed the first run with SIGKILL after step {kill_at}")

    second = start_child(data_dir, run_dir, 0.0)  # the same command, run again
    out, _ = second.communicate(timeout=600)
    print("second run:", next(line for line in out.splitlines() if "resum" in line))
    assert second.returncode == 0 and out.rstrip().endswith("done"), out[-2000:]
    reference.communicate(timeout=600)
    assert reference.returncode == 0, f"see {reference_dir}/stderr.txt"

    print("what each process trained:")
    ids = committed_ids(run_dir, EPOCHS * args.rows)
    assert len(ids) == EPOCHS * args.rows, len(ids)
    for epoch in range(EPOCHS):
        seen = np.sort(ids[epoch * args.rows : (epoch + 1) * args.rows])
        np.testing.assert_array_equal(seen, np.arange(args.rows))
    with np.load(os.path.join(run_dir, "weights.npz")) as got:
        with np.load(os.path.join(reference_dir, "weights.npz")) as expected:
            for name in got.files:
                np.testing.assert_array_equal(got[name], expected[name])
    print(
        f"OK: after a kill -9 and a rerun, every id was trained exactly once per epoch "
        f"({EPOCHS} epochs x {args.rows:,} rows) and the weights are bit-identical to an "
        f"uninterrupted run"
    )


if __name__ == "__main__":
    main()
