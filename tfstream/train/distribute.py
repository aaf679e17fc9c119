"""Strategies: ``"auto"``, ``"one_device"``, ``"mirrored"`` or any ``tf.distribute.Strategy``."""

from __future__ import annotations

import tensorflow as tf

__all__ = ["STRATEGIES", "resolve_strategy"]

STRATEGIES = ("auto", "one_device", "mirrored")


def resolve_strategy(strategy="auto") -> tf.distribute.Strategy:
    """``"auto"``: MirroredStrategy over every GPU when there are several, the one GPU when
    there is one, else the default strategy (the CPU). ``"one_device"``: the first GPU, else
    the CPU. ``"mirrored"``: MirroredStrategy over the GPUs, or over the logical CPUs when there
    are no GPUs and the CPU was split (``tfstream.testing.split_cpu``)."""
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy not in STRATEGIES:
        raise ValueError(
            f"`strategy` must be one of {STRATEGIES} or a tf.distribute.Strategy. "
            f"Received: {strategy!r}"
        )
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if strategy == "auto":
        if len(gpus) > 1:
            return tf.distribute.MirroredStrategy(gpus)
        if gpus:
            return tf.distribute.OneDeviceStrategy(gpus[0])
        return tf.distribute.get_strategy()
    if strategy == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/cpu:0")
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(gpus or cpus)
