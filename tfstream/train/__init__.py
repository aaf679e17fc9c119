"""Training engine: exact gradient accumulation (the macro-step), precision policies,
``tf.distribute`` strategies, activation checkpointing, and the Trainer loop.

Importing this package imports TensorFlow and Keras.
"""

from tfstream.train.backup import ResumableBackup
from tfstream.train.checkpoint import (
    CheckpointOptions,
    Preempted,
    enable_determinism,
    latest_state,
    load_model,
)
from tfstream.train.distribute import resolve_strategy
from tfstream.train.keras import accumulate
from tfstream.train.precision import auto_precision, resolve_precision
from tfstream.train.remat import apply_remat, rematerialized_layers, remove_remat
from tfstream.train.trainer import Trainer, TrainerOptions

__all__ = [
    "CheckpointOptions",
    "Preempted",
    "ResumableBackup",
    "Trainer",
    "TrainerOptions",
    "accumulate",
    "apply_remat",
    "auto_precision",
    "enable_determinism",
    "latest_state",
    "load_model",
    "rematerialized_layers",
    "remove_remat",
    "resolve_precision",
    "resolve_strategy",
]
