"""Activation checkpointing (remat): trade compute for activation memory, same gradients.

Backpropagation keeps every intermediate activation of the forward pass. With remat, chosen
layers keep only their *inputs* and recompute their inside during the backward pass (Chen et
al., 2016): one more forward pass of those layers, much less memory for deep blocks. tfstream
applies it to an already built model — ``tfstream.train.apply_remat(model, "blocks")`` before
``model.fit``, or ``ts.Trainer(..., remat="blocks")`` — and keeps Dropout masks and
BatchNormalization updates identical in the recomputation, so gradients do not change.

This script builds a deep residual MLP of blocks (4 Dense layers + Dropout each) and checks:

1. gradients with and without remat are identical (Dropout active);
2. the tensor memory a training step allocates on top of the weights — measured exactly with
   TensorFlow's BFC allocator on the CPU (``TF_CPU_ALLOCATOR_USE_BFC=true``, set below before
   TensorFlow starts, makes ``tf.config.experimental.get_memory_info("CPU:0")`` work; on a
   GPU it works as is);
3. ``ts.Trainer(remat="blocks")`` trains to the same weights as ``remat=None``.

Remat saves activation memory only: weights, optimizer slots and gradients stay. See
benchmarks/RESULTS.md for peak RSS of a larger model (what a step adds: 0.41x at 1.36x time).

Run it::

    python examples/remat.py                           # 6 blocks of width 256, batch 1024
    python examples/remat.py --blocks 4 --width 128 --batch-size 256
"""

from __future__ import annotations

import os

# Exact tensor bytes on the CPU (before TensorFlow is imported).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

import argparse  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfstream as ts  # noqa: E402
from tfstream.testing import max_weight_diff  # noqa: E402
from tfstream.train import apply_remat, rematerialized_layers  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--rows", type=int, default=None, help="Trainer rows (default 4 batches)")
    parser.add_argument("--workdir", help="unused: this example writes no files")
    return parser.parse_args()


@keras.saving.register_keras_serializable(package="examples")
class Block(keras.layers.Layer):
    """A residual block: x + Dense(Dense(Dense(Dense(x)))) with Dropout. Without remat, the
    backward pass keeps 4 activations (and a Dropout mask) per block; with it, only x."""

    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.dense = [keras.layers.Dense(width, activation="relu") for _ in range(3)]
        self.dropout = keras.layers.Dropout(0.1)
        self.out = keras.layers.Dense(width)

    def call(self, x, training=None):
        h = x
        for dense in self.dense:
            h = dense(h)
        return x + self.out(self.dropout(h, training=training))

    def get_config(self):
        return {**super().get_config(), "width": self.width}


def build(blocks: int, width: int) -> keras.Model:
    keras.utils.set_random_seed(0)  # same weights and Dropout seeds for every build
    inputs = keras.Input((width,))
    h = inputs
    for i in range(blocks):
        h = Block(width, name=f"block_{i}")(h)
    return keras.Model(inputs, keras.layers.Dense(1, name="head")(h))


def gradients(model, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    return tape.gradient(loss, model.trainable_variables)


def step_memory_mb(model, x, y) -> float | None:
    """Peak tensor memory a compiled gradient step allocates above what is live before it."""
    step = tf.function(lambda x, y: gradients(model, x, y))
    step.get_concrete_function(x, y)  # trace first: measure the step, not the tracing
    try:
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
        tf.config.experimental.reset_memory_stats("CPU:0")
    except ValueError:  # no BFC allocator (TF_CPU_ALLOCATOR_USE_BFC was set to false)
        return None
    step(x, y)
    return (tf.config.experimental.get_memory_info("CPU:0")["peak"] - before) / 2**20


def main():
    args = parse_args()
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((args.batch_size, args.width), dtype=np.float32))
    y = tf.constant(rng.standard_normal((args.batch_size, 1), dtype=np.float32))

    plain = build(args.blocks, args.width)
    remat = apply_remat(build(args.blocks, args.width), "blocks")
    print(f"rematerialized: {rematerialized_layers(remat)}")

    # -- 1. identical gradients (Dropout active: the recomputation reuses the forward mask) ----
    grad_diff = max(
        float(tf.reduce_max(tf.abs(a - b)))
        for a, b in zip(gradients(plain, x, y), gradients(remat, x, y), strict=True)
    )
    print(f"max gradient difference, remat vs none: {grad_diff:.2e}")
    assert grad_diff < 1e-5, grad_diff

    # -- 2. what a training step allocates ------------------------------------------------------
    mb_plain = step_memory_mb(plain, x, y)
    mb_remat = step_memory_mb(remat, x, y)
    weights_mb = sum(v.numpy().nbytes for v in plain.trainable_variables) / 2**20
    activation_mb = args.batch_size * args.width * 4 / 2**20
    print(f"weights {weights_mb:.1f} MB; one [batch, width] activation {activation_mb:.1f} MB")
    if mb_plain is not None:
        # The step's allocations include the gradients (as large as the weights), which remat
        # cannot remove; the rest is what the backward pass keeps: activations.
        print(
            f"a gradient step allocates {mb_plain:.1f} MB without remat, {mb_remat:.1f} MB with "
            f"remat='blocks' ({mb_remat / mb_plain:.2f}x); beyond the {weights_mb:.1f} MB of "
            f"gradients: {mb_plain - weights_mb:.1f} MB vs {mb_remat - weights_mb:.1f} MB "
            f"({(mb_remat - weights_mb) / (mb_plain - weights_mb):.2f}x)"
        )
        assert mb_remat < mb_plain, (mb_remat, mb_plain)

    # -- 3. the same through ts.Trainer ---------------------------------------------------------
    rows = args.rows or 4 * args.batch_size
    features = rng.standard_normal((rows, args.width), dtype=np.float32)
    target = features[:, :1] * 0.5
    dataset = tf.data.Dataset.from_tensor_slices((features, target)).batch(args.batch_size)
    models = {}
    for choice in (None, "blocks"):
        trainer = ts.Trainer(
            lambda: build(args.blocks, args.width),
            optimizer=keras.optimizers.Adam(1e-3),
            loss="mse",
            remat=choice,
            precision="float32",
        )
        trainer.fit(dataset, epochs=1, verbose=0)
        models[choice] = trainer.model
    weight_diff = max_weight_diff(models[None], models["blocks"])
    print(
        f"Trainer(remat='blocks') vs remat=None after {rows // args.batch_size} steps: max "
        f"weight difference {weight_diff:.2e}"
    )
    assert weight_diff < 1e-5, weight_diff
    print(
        "OK: remat gives the same gradients and weights"
        + (f" and allocates {mb_remat / mb_plain:.2f}x the step memory" if mb_plain else "")
    )


if __name__ == "__main__":
    main()
