"""Gradient accumulation overhead, anchors in the same run: samples/s of ``model.fit`` on an
MLP at the same micro-batch, with

- Keras, no accumulation (k=1): the anchor;
- tfstream ``ts.keras.accumulate(model, 4)`` (windows of 4 micro-batches);
- Keras' built-in ``gradient_accumulation_steps=4`` (single device only: it fails under
  MirroredStrategy);
- tfstream k=1 (our macro-step with one micro-batch: the cost of the step itself).

Target: tfstream k=4 loses <= 5% samples/s against k=1, and against Keras' accumulation.

    python -m benchmarks.accumulation [--rows 65536] [--micro 256] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from benchmarks._common import machine, out_path

QUICK_ARGS = ["--rows", "16384", "--epochs", "1"]


def _model(width: int, depth: int, optimizer):
    import keras

    keras.utils.set_random_seed(0)
    layers = [keras.Input((28,))]
    layers += [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
    layers += [keras.layers.Dense(1)]
    model = keras.Sequential(layers)
    model.compile(optimizer=optimizer, loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return model


def run(rows=65_536, micro=256, epochs=2, width=256, depth=4, repeats=3) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    import tfstream as ts

    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 28)).astype("float32")
    y = (rng.random(rows) < 0.5).astype("float32")
    k = 4

    def dataset(batch):
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).prefetch(tf.data.AUTOTUNE)

    variants = {
        "keras k=1 (anchor)": (lambda: _model(width, depth, keras.optimizers.Adam(1e-3)), micro),
        "tfstream accumulate k=4": (
            lambda: ts.keras.accumulate(_model(width, depth, keras.optimizers.Adam(1e-3)), k),
            micro * k,
        ),
        "keras gradient_accumulation_steps=4": (
            lambda: _model(
                width, depth, keras.optimizers.Adam(1e-3, gradient_accumulation_steps=k)
            ),
            micro,
        ),
        "tfstream accumulate k=1": (
            lambda: ts.keras.accumulate(_model(width, depth, keras.optimizers.Adam(1e-3)), 1),
            micro,
        ),
    }
    results = {}
    for name, (make, batch) in variants.items():
        model = make()
        model.fit(dataset(batch).take(4), epochs=1, verbose=0)  # trace and warm up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            model.fit(dataset(batch), epochs=epochs, verbose=0)
            best = min(best, time.perf_counter() - start)
        results[name] = rows * epochs / best
        print(f"  {name}: {results[name]:,.0f} samples/s", flush=True)
    anchor = results["keras k=1 (anchor)"]
    keras_acc = results["keras gradient_accumulation_steps=4"]
    ours = results["tfstream accumulate k=4"]
    print(
        f"\nAccumulation overhead: MLP 28-{'-'.join([str(width)] * depth)}-1, Adam, "
        f"micro-batch {micro}, {rows:,} rows x {epochs} epochs (best of {repeats})"
    )
    print(f"{'variant':<40} {'samples/s':>12} {'vs keras k=1':>13}")
    for name, value in results.items():
        print(f"{name:<40} {value:>12,.0f} {value / anchor:>12.3f}x")
    print(
        f"tfstream k=4 vs keras k=1: {ours / anchor:.3f}x (target >= 0.95); vs Keras' own "
        f"accumulation: {ours / keras_acc:.3f}x (target >= 0.95)"
    )
    doc = {
        "machine": machine(),
        "rows": rows,
        "micro_batch": micro,
        "epochs": epochs,
        "samples_per_s": results,
        "tfstream_k4_vs_keras_k1": ours / anchor,
        "tfstream_k4_vs_keras_accumulation": ours / keras_acc,
    }
    with open(out_path("accumulation.json"), "w") as f:
        json.dump(doc, f, indent=2)
    print(f"(written to {out_path('accumulation.json')})")
    return doc


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=65_536)
    parser.add_argument("--micro", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    run(args.rows, args.micro, args.epochs)


if __name__ == "__main__":
    main()
