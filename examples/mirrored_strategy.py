"""Data parallelism with ``tf.distribute.MirroredStrategy`` — on a laptop CPU.

MirroredStrategy keeps a copy of the model on each device, splits every batch between them and
sums the gradients (one all-reduce per optimizer step). On a machine with several GPUs,
``strategy="auto"`` (or ``"mirrored"``) uses them all. To show it anywhere, this script splits
the CPU into 2 logical devices (``tfstream.testing.split_cpu``, which must run before
TensorFlow initialises its devices) and mirrors over them, in the two ways tfstream offers:

1. ``ts.Trainer(..., strategy=..., accumulation_steps=2)``: tfstream's own loop (built on
   ``strategy.run``, so it also runs ``MultiWorkerMirroredStrategy``, which Keras' ``fit``
   cannot).
2. ``ts.keras.accumulate(model, 2)`` + Keras' own ``model.fit`` under ``strategy.scope()``
   (where Keras' built-in ``gradient_accumulation_steps`` raises ``merge_call called while
   defining a new graph``).

Both are checked against plain single-device Keras training on full batches: same weights, to
float32 rounding. ``batch_size`` is always the *global* batch of one optimizer step:
``global batch = micro-batch x replicas x accumulation steps``.

Run it::

    python examples/mirrored_strategy.py                  # 20,000 rows, 2 epochs
    python examples/mirrored_strategy.py --rows 2000 --epochs 1
"""

from __future__ import annotations

# Before TensorFlow initialises its devices: split the CPU into 2 logical devices.
from tfstream.testing import split_cpu

split_cpu(2)

import argparse  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfstream as ts  # noqa: E402
from tfstream.testing import max_weight_diff, mirrored_cpu_strategy  # noqa: E402

FEATURES = [f"f{j}" for j in range(6)]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="training rows (CSV)")
    parser.add_argument(
        "--workdir", help="where to write the data (default: a temporary dir, removed at the end)"
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=250, help="global rows per step")
    return parser.parse_args()


def write_table(path: str, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, len(FEATURES))).astype(np.float32)
    logit = x @ rng.standard_normal(len(FEATURES)) + rng.logistic(size=rows)
    table = pd.DataFrame(x, columns=FEATURES)
    table.insert(0, "label", (logit > 0).astype(np.int64))
    table.to_csv(path, index=False)
    return table


def build():
    keras.utils.set_random_seed(0)  # identical initial weights for every model built here
    inputs = {f: keras.Input((), name=f) for f in FEATURES}
    h = keras.layers.Concatenate()([keras.layers.Reshape((1,))(inputs[f]) for f in FEATURES])
    h = keras.layers.Dense(32, activation="relu")(h)
    return keras.Model(inputs, keras.layers.Dense(1)(h))


def compile_args():
    return {
        "optimizer": keras.optimizers.Adam(1e-2),
        "loss": keras.losses.BinaryCrossentropy(from_logits=True),
        "metrics": [keras.metrics.BinaryAccuracy(threshold=0.0)],
    }


def main():
    args = parse_args()
    if args.workdir:
        return run(args, args.workdir)
    with tempfile.TemporaryDirectory(prefix="tfstream-mirrored-") as workdir:  # removed at the end
        return run(args, workdir)


def run(args, workdir: str):
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "train.csv")
    table = write_table(path, args.rows)
    src = ts.csv(path, label="label")

    strategy = mirrored_cpu_strategy(2)  # the process's MirroredStrategy over the 2 CPUs
    print(
        f"{type(strategy).__name__} over {strategy.extended.worker_devices}: "
        f"{strategy.num_replicas_in_sync} replicas"
    )

    # The reference: single-device Keras, one full batch per step, no accumulation.
    reference = build()
    reference.compile(**compile_args())
    features = {f: table[f].to_numpy() for f in FEATURES}
    reference.fit(
        features,
        table["label"].to_numpy(),
        batch_size=args.batch_size,
        epochs=args.epochs,
        shuffle=False,
        verbose=0,
    )

    # -- 1. tfstream's Trainer: 2 replicas x 2 micro-batches ------------------------------------
    trainer = ts.Trainer(build, accumulation_steps=2, strategy=strategy, **compile_args())
    history = trainer.fit(src, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
    diff_trainer = max_weight_diff(reference, trainer.model)
    micro = -(-args.batch_size // 4)
    print(
        f"Trainer: global batch {args.batch_size} = 2 replicas x 2 micro-batches of ~{micro} "
        f"rows; max weight difference vs single-device full batches {diff_trainer:.2e}"
    )

    # -- 2. Keras model.fit with ts.keras.accumulate --------------------------------------------
    with strategy.scope():
        model = build()
        model.compile(**compile_args())
    model = ts.keras.accumulate(model, 2)
    # Each element of the dataset is one optimizer step's global batch; Keras splits it between
    # the replicas, and each replica computes its half in 2 micro-batches.
    # A streamed dataset's length is unknown to tf.data; stating it (here from the table; for
    # files, from `ts.compute_stats(src).rows`) spares Keras a probing end-of-data step.
    steps = -(-len(table) // args.batch_size)
    dataset = src.dataset(args.batch_size).apply(tf.data.experimental.assert_cardinality(steps))
    fit_history = model.fit(dataset, epochs=args.epochs, shuffle=False, verbose=2)
    diff_fit = max_weight_diff(reference, model)
    print(
        f"model.fit + ts.keras.accumulate(model, 2): max weight difference vs single-device "
        f"full batches {diff_fit:.2e}"
    )

    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == 2
    assert diff_trainer < 1e-5 and diff_fit < 1e-5, (diff_trainer, diff_fit)
    accuracy = history.history["binary_accuracy"][-1]
    print(
        f"OK: MirroredStrategy over 2 devices equals single-device training (Trainer "
        f"{diff_trainer:.1e}, model.fit {diff_fit:.1e}); train accuracy {accuracy:.3f}, "
        f"{fit_history.history['binary_accuracy'][-1]:.3f}"
    )


if __name__ == "__main__":
    main()
