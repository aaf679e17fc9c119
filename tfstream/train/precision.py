"""Precision policies: ``"float32"``, ``"mixed_float16"`` (with loss scaling) or
``"mixed_bfloat16"`` (no loss scaling: bfloat16 has float32's exponent range); ``"auto"`` picks
from the hardware."""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

__all__ = ["PRECISIONS", "auto_precision", "policy_scope", "resolve_precision", "wrap_optimizer"]

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def auto_precision() -> str:
    """mixed_float16 on NVIDIA GPUs of compute capability >= 7.0 (tensor cores),
    mixed_bfloat16 on TPUs, float32 otherwise (CPUs gain no speed from float16 matmuls)."""
    if tf.config.list_logical_devices("TPU"):
        return "mixed_bfloat16"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus and all(_compute_capability(g) >= (7, 0) for g in gpus):
        return "mixed_float16"
    return "float32"


def _compute_capability(gpu) -> tuple[int, int]:
    details = tf.config.experimental.get_device_details(gpu)
    return tuple(details.get("compute_capability") or (0, 0))


def resolve_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {PRECISIONS}. Received: {precision!r}")
    return auto_precision() if precision == "auto" else precision


@contextlib.contextmanager
def policy_scope(policy: str):
    """Sets Keras' global dtype policy for the block (layers built inside take it)."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def wrap_optimizer(optimizer, policy: str):
    """``optimizer`` wrapped in a ``LossScaleOptimizer`` under mixed_float16 (unless it is one
    already). Call it under the strategy's scope: an unbuilt optimizer made outside that scope
    is remade from its config inside it (a Keras optimizer binds the strategy it was made
    under)."""
    optimizer = keras.optimizers.get(optimizer)
    made_under = getattr(optimizer, "_distribution_strategy", None)
    if not optimizer.built and made_under is not tf.distribute.get_strategy():
        optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    is_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    if policy == "mixed_float16" and not is_scaled:
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
