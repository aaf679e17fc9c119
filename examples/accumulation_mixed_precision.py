"""Gradient accumulation and mixed precision with ``ts.Trainer``: a big batch in small pieces.

When a batch does not fit in accelerator memory, ``accumulation_steps=k`` computes each
optimizer step's batch in k micro-batches and applies one update: the memory of a micro-batch,
the mathematics of the whole batch. tfstream's accumulation is *exact*: each micro-batch's
summed loss is divided by the row count of the whole window, so k micro-batches give the same
update as one batch of all their rows (also for a ragged last batch) — checked below in float32.

Mixed precision halves activation memory again: ``precision="mixed_float16"`` on NVIDIA GPUs
(compute capability >= 7.0; a loss-scale optimizer is added, and a window with an overflowing
gradient is skipped whole), ``"mixed_bfloat16"`` on TPUs and recent CPUs (no loss scaling
needed), and ``"auto"`` picks for the hardware. This script uses mixed_bfloat16 so it runs on
any CPU; it keeps the output layer float32, and the preprocessing built from the statistics is
float32 by design.

Run it::

    python examples/accumulation_mixed_precision.py              # 40,000 rows, 3 epochs
    python examples/accumulation_mixed_precision.py --rows 2000 --epochs 1
"""

from __future__ import annotations

import argparse
import os
import tempfile

import keras
import numpy as np
import pandas as pd

import tfstream as ts
from tfstream.testing import max_weight_diff


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=40_000, help="training rows (CSV)")
    parser.add_argument(
        "--workdir", help="where to write the data (default: a temporary dir, removed at the end)"
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512, help="rows per optimizer step")
    parser.add_argument("--accumulation-steps", type=int, default=4)
    parser.add_argument(
        "--precision",
        default="mixed_bfloat16",
        help="float32, mixed_float16 (GPU), mixed_bfloat16 or auto",
    )
    return parser.parse_args()


def write_table(directory: str, rows: int, *, files: int, seed: int) -> None:
    """CSV files of a noisy linear rule over 8 float features and a categorical column (the
    same rule for every seed, so a validation set drawn with another seed matches)."""
    w = np.random.default_rng(42).standard_normal(8)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 8)).astype(np.float32)
    color = rng.choice(["red", "green", "blue"], rows)
    logit = x @ w + np.where(color == "red", 1.0, -0.5) + rng.logistic(size=rows)
    table = pd.DataFrame({"label": (logit > 0).astype(np.int64), "color": color})
    for j in range(8):
        table[f"f{j}"] = x[:, j]
    os.makedirs(directory, exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(rows), files)):
        table.iloc[part].to_csv(os.path.join(directory, f"part-{i:03d}.csv"), index=False)


def model_builder(stats):
    """A function building the model: raw feature dict -> preprocessing -> MLP -> logit.

    The Trainer calls it under the precision policy (and the strategy's scope), so the Dense
    layers compute in bfloat16 while their variables stay float32."""

    def build():
        keras.utils.set_random_seed(0)  # the same initial weights in every run of this script
        prep = stats.preprocessor()  # float32: standardise numbers, one-hot strings
        h = prep.output
        for width in (64, 64):
            h = keras.layers.Dense(width, activation="relu")(h)
        logit = keras.layers.Dense(1, dtype="float32")(h)  # keep the output in float32
        return keras.Model(prep.input, logit)

    return build


def trainer(stats, *, precision, accumulation_steps):
    return ts.Trainer(
        model_builder(stats),
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)],
        accumulation_steps=accumulation_steps,
        precision=precision,
    )


def main():
    args = parse_args()
    if args.workdir:
        return run(args, args.workdir)
    with tempfile.TemporaryDirectory(prefix="tfstream-accum-") as workdir:  # removed at the end
        return run(args, workdir)


def run(args, workdir: str):
    write_table(f"{workdir}/train", args.rows, files=4, seed=0)
    write_table(f"{workdir}/val", max(args.rows // 5, 100), files=1, seed=1)
    train, val = ts.csv(f"{workdir}/train", label="label"), ts.csv(f"{workdir}/val", label="label")
    stats = ts.compute_stats(train, progress=False)

    # -- 1. exactness: k accumulated micro-batches == one batch (float32) ----------------------
    # A short run of each; without shuffling both see the same windows in the same order.
    steps = 10
    one_batch = trainer(stats, precision="float32", accumulation_steps=1)
    one_batch.fit(train, batch_size=args.batch_size, steps_per_epoch=steps, verbose=0)
    accumulated = trainer(stats, precision="float32", accumulation_steps=args.accumulation_steps)
    accumulated.fit(train, batch_size=args.batch_size, steps_per_epoch=steps, verbose=0)
    diff = max_weight_diff(one_batch.model, accumulated.model)
    micro = -(-args.batch_size // args.accumulation_steps)
    print(
        f"float32, {steps} optimizer steps of {args.batch_size} rows: one batch vs "
        f"{args.accumulation_steps} micro-batches of {micro} rows -> max weight difference "
        f"{diff:.2e}"
    )
    assert diff < 1e-5, diff

    # -- 2. the real run: accumulation + mixed precision ---------------------------------------
    t = trainer(stats, precision=args.precision, accumulation_steps=args.accumulation_steps)
    dense = t.model.layers[-2]
    print(
        f"precision {t.precision}: Dense computes in {dense.compute_dtype}, keeps variables in "
        f"{dense.variable_dtype}; optimizer {type(t.model.optimizer).__name__}"
    )
    history = t.fit(
        train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        shuffle=True,
        seed=0,
        validation=val,
        verbose=2,
    )
    logs = {k: v[-1] for k, v in history.history.items()}
    print(
        f"after {args.epochs} epoch(s): loss {logs['loss']:.4f}, val_loss {logs['val_loss']:.4f}, "
        f"val_binary_accuracy {logs['val_binary_accuracy']:.3f}, {logs['rows_per_s']:,.0f} rows/s"
    )
    assert np.isfinite(logs["loss"]) and logs["val_binary_accuracy"] > 0.7, logs
    print(
        f"OK: accumulation is exact (max weight difference {diff:.1e}) and the "
        f"{t.precision} run learned (val accuracy {logs['val_binary_accuracy']:.3f})"
    )


if __name__ == "__main__":
    main()
