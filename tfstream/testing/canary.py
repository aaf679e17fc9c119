"""``CanaryLayer``: a pass-through Keras layer that records the example ids it trains on.

Tests of exact resume check with it that every example is trained exactly once per epoch
across crashes: the layer appends one line per training call (per micro-batch and replica) to a
file, ``"<pid> <id> <id> ..."``, with a single ``os.write`` on a file opened for appending, so a
process killed with SIGKILL never leaves half a line. It records nothing outside training
(``training=False``: evaluation, prediction) and does not change its input.

Example:

>>> inputs = {"id": keras.Input((), dtype="int64"), "x": keras.Input((3,))}  # doctest: +SKIP
>>> h = CanaryLayer("seen.txt")(inputs["x"], inputs["id"])                     # doctest: +SKIP
>>> model = keras.Model(inputs, keras.layers.Dense(1)(h))                      # doctest: +SKIP
>>> # ... train ...; read_canary("seen.txt") -> [(pid, ids), ...] in training order
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

__all__ = ["CanaryLayer", "read_canary"]


@keras.saving.register_keras_serializable(package="tfstream")
class CanaryLayer(keras.layers.Layer):
    """Returns ``inputs`` unchanged; in training, appends the batch's ``ids`` to ``log_path``.

    Call it as ``layer(inputs, ids)`` on the path to the model's output (a layer off that path
    is not part of a functional model); ``ids`` is an integer tensor of shape ``[batch]``.

    Args:
        log_path: the file the ids are appended to (created when missing); read at each
            call, so it may be changed between runs.
    """

    def __init__(self, log_path, **kwargs):
        super().__init__(**kwargs)
        self.log_path = os.fspath(log_path)

    def call(self, inputs, ids, training=None):
        if not training:
            return inputs

        def record(values):
            line = " ".join([str(os.getpid()), *map(str, values.reshape(-1).tolist())]) + "\n"
            # Read at each call, so a test may point a traced model at another file.
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
            return np.int64(values.size)

        written = tf.numpy_function(record, [tf.cast(ids, tf.int64)], tf.int64, stateful=True)
        with tf.control_dependencies([written]):
            return tf.nest.map_structure(tf.identity, inputs)

    def compute_output_spec(self, inputs, ids, training=None):
        return tf.nest.map_structure(lambda t: keras.KerasTensor(t.shape, dtype=t.dtype), inputs)

    def get_config(self):
        return {**super().get_config(), "log_path": self.log_path}


def read_canary(path) -> list[tuple[int, np.ndarray]]:
    """The records of a :class:`CanaryLayer` file, in order: ``(pid, ids)`` per training call
    (an empty array for a replica that got no rows). A missing file has no records."""
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith("\n"):
                raise ValueError(f"{path}, line {number}: incomplete record {line!r}")
            fields = line.split()
            records.append((int(fields[0]), np.array(fields[1:], dtype=np.int64)))
    return records
