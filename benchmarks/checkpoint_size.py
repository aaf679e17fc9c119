"""Checkpoint size and save time against rows read, in one run:

- ``ts.Trainer(checkpoint_dir=...)`` training an MLP on a shuffled tfstream source (shuffle
  buffer 65,536 rows, the source's default): model + optimizer + metrics + the loop's counters
  and seeds. The data position is (epoch, windows done), so the size must not grow;
- anchor: a ``tf.data`` iterator checkpoint, ``tf.train.Checkpoint(iterator=iter(ds))``, of
  ``from_tensor_slices((x, y)).shuffle(buffer).repeat().batch(...)`` over the same rows
  (features packed in one tensor per row, its most compact form), with the same 65,536-row
  shuffle buffer: it saves the buffer;
- a ``tf.data`` iterator over the tfstream source itself: not checkpointable at all
  (``from_generator``), which is why the Trainer saves counters and skips on resume.

Sizes and save times are taken after 1M and 10M rows read (batches of 10,000 rows; the
Trainer's saves come every 50 steps, i.e. every 500k rows, and the size of every one of them is
checked to be the same).

    python -m benchmarks.checkpoint_size [--rows-per-epoch 1000000] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import time

import numpy as np

from benchmarks._common import machine, out_path

QUICK_ARGS = ["--rows-per-epoch", "100000", "--epochs", "10"]
BATCH = 10_000
FEATURES = 28
SOURCE_BUFFER = 65_536  # tfstream.sources.base.DEFAULT_SHUFFLE_BUFFER


def _size(prefix: str) -> int:
    directory, stem = os.path.split(prefix)
    return sum(
        os.path.getsize(os.path.join(directory, name))
        for name in os.listdir(directory)
        if name.startswith(stem + ".")
    )


def _trainer_checkpoints(frame, epochs: int, directory: str) -> list[dict]:
    """Trains and records every save: rows read, bytes on disk, seconds."""
    import keras

    import tfstream as ts
    from tfstream.train.checkpoint import CheckpointOptions, TrainingCheckpoint

    saves = []
    original = TrainingCheckpoint.save

    def timed_save(self, state):
        start = time.perf_counter()
        path = original(self, state)
        seconds = time.perf_counter() - start
        rows = state.step * BATCH
        saves.append({"rows_read": rows, "bytes": _size(path), "seconds": seconds})
        return path

    def build():
        keras.utils.set_random_seed(0)
        inputs = {f"f{i}": keras.Input((), name=f"f{i}") for i in range(FEATURES)}
        h = keras.layers.Concatenate()([keras.layers.Reshape((1,))(v) for v in inputs.values()])
        h = keras.layers.Dense(64, activation="relu")(h)
        return keras.Model(inputs, keras.layers.Dense(1)(h))

    TrainingCheckpoint.save = timed_save
    try:
        trainer = ts.Trainer(
            build,
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
            checkpoint_dir=directory,
            options=ts.TrainerOptions(
                checkpoint=CheckpointOptions(every_steps=50, every_seconds=None, keep=2)
            ),
        )
        start = time.perf_counter()
        trainer.fit(ts.from_pandas(frame, label="label"), batch_size=BATCH, epochs=epochs,
                    shuffle=True, seed=0, verbose=0)  # fmt: skip
        print(f"  Trainer: {epochs} epochs in {time.perf_counter() - start:.1f} s", flush=True)
    finally:
        TrainingCheckpoint.save = original
    return saves


def _iterator_checkpoints(frame, buffer: int, marks: list[int], directory: str) -> list[dict]:
    import tensorflow as tf

    # The features packed in one float32 tensor per row: the smallest iterator checkpoint (one
    # tensor per column would add the bundle's per-tensor entries for every buffered row).
    x = np.stack([frame[f"f{i}"].to_numpy() for i in range(FEATURES)], axis=1)
    ds = tf.data.Dataset.from_tensor_slices((x, frame["label"].to_numpy()))
    ds = ds.shuffle(buffer, seed=0).repeat().batch(BATCH)
    iterator = iter(ds)
    checkpoint = tf.train.Checkpoint(iterator=iterator)
    out, read = [], 0
    for i, mark in enumerate(marks):
        for _ in range((mark - read) // BATCH):
            next(iterator)
        read = mark
        start = time.perf_counter()
        path = checkpoint.write(os.path.join(directory, f"buffer{buffer}-{i}"))
        seconds = time.perf_counter() - start
        out.append({"rows_read": mark, "bytes": _size(path), "seconds": seconds})
    return out


def _source_iterator_error(frame) -> str:
    import tensorflow as tf

    import tfstream as ts

    ds = ts.from_pandas(frame.head(1000), label="label").dataset(100, shuffle=True, seed=0)
    iterator = iter(ds)
    next(iterator)
    try:
        tf.train.Checkpoint(iterator=iterator).write(tempfile.mkdtemp() + "/it")
    except Exception as error:  # the point of this row: tf.data refuses
        message = re.sub(r"\{\{.*?\}\}", "", str(error)).strip().splitlines()[0]
        return f"{type(error).__name__}: {message[:100]}"
    return "checkpointable (unexpected)"


def run(rows_per_epoch: int = 1_000_000, epochs: int = 10) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tfstream.testing import make_frame

    frame = make_frame(rows_per_epoch, features=FEATURES, seed=0)
    marks = [rows_per_epoch, rows_per_epoch * epochs]
    directory = tempfile.mkdtemp(prefix="tfstream-bench-ckpt-")
    try:
        saves = _trainer_checkpoints(frame, epochs, os.path.join(directory, "trainer"))
        by_rows = {s["rows_read"]: s for s in saves}
        # The last save (the fit's end) after rows_per_epoch * epochs rows; the first epoch's
        # end after rows_per_epoch.
        trainer_rows = [by_rows[m] for m in marks]
        sizes = {s["bytes"] for s in saves}
        results = {f"ts.Trainer checkpoint (model {FEATURES}-64-1 + Adam + counters)": trainer_rows}
        name = f"tf.data iterator checkpoint, shuffle buffer {SOURCE_BUFFER:,} (anchor)"
        results[name] = _iterator_checkpoints(frame, SOURCE_BUFFER, marks, directory)
        refused = _source_iterator_error(frame)
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    print(
        f"\nCheckpoint size and save time by rows read ({FEATURES} float columns + label, "
        f"batches of {BATCH:,})"
    )
    header = "".join(f"{f'{m / 1e6:g}M rows: MB':>16}{'s':>8}" for m in marks)
    print(f"{'checkpoint':<64}{header}")
    for name, rows in results.items():
        cells = "".join(f"{r['bytes'] / 1e6:>16.3f}{r['seconds']:>8.3f}" for r in rows)
        print(f"{name:<64}{cells}")
    print(f"{'tf.data iterator over the tfstream source':<64}  not checkpointable: {refused}")
    ours, anchor = list(results.values())
    ratios = [
        (a["bytes"] / o["bytes"], a["seconds"] / o["seconds"])
        for o, a in zip(ours, anchor, strict=True)
    ]
    print(
        "anchor / Trainer: "
        + ", ".join(
            f"{m / 1e6:g}M rows: {size:,.0f}x the bytes, {secs:,.0f}x the save time"
            for m, (size, secs) in zip(marks, ratios, strict=True)
        )
    )
    print(
        f"Trainer: {len(saves)} saves, sizes {sorted(sizes)} bytes "
        f"({'constant' if len(sizes) == 1 else 'NOT constant'})"
    )
    doc = {
        "machine": machine(),
        "rows_per_epoch": rows_per_epoch,
        "epochs": epochs,
        "batch": BATCH,
        "features": FEATURES,
        "checkpoints": results,
        "trainer_all_saves": saves,
        "trainer_size_constant": len(sizes) == 1,
        "anchor_over_trainer": [{"bytes": r[0], "seconds": r[1]} for r in ratios],
        "source_iterator_checkpoint": refused,
    }
    with open(out_path("checkpoint_size.json"), "w") as f:
        json.dump(doc, f, indent=2)
    print(f"(written to {out_path('checkpoint_size.json')})")
    return doc


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-epoch", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    run(args.rows_per_epoch, args.epochs)


if __name__ == "__main__":
    main()
