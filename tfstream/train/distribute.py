"""Strategies: ``"auto"``, ``"one_device"``, ``"mirrored"`` or any ``tf.distribute.Strategy``."""

from __future__ import annotations

import tensorflow as tf

__all__ = ["STRATEGIES", "mirrored", "resolve_strategy"]

STRATEGIES = ("auto", "one_device", "mirrored")

_MIRRORED: dict[tuple[str, ...], tf.distribute.MirroredStrategy] = {}


def mirrored(devices) -> tf.distribute.MirroredStrategy:
    """One ``MirroredStrategy`` per process and device set. Several over the same devices share
    TensorFlow's collective executor and may reuse each other's collective instance keys with
    other shapes ("Shape mismatch in the collective instance"), which aborts every collective
    op of the process from then on; so they are made once and reused."""
    key = tuple(devices)
    if key not in _MIRRORED:
        _MIRRORED[key] = tf.distribute.MirroredStrategy(list(key))
    return _MIRRORED[key]


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
            return mirrored(gpus)
        if gpus:
            return tf.distribute.OneDeviceStrategy(gpus[0])
        return tf.distribute.get_strategy()
    if strategy == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/cpu:0")
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return mirrored(gpus or cpus)
