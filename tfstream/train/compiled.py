"""The compiled (``tf.function``) steps of the :class:`~tfstream.train.trainer.Trainer`'s loop.

The training step takes the distributed iterator, reads one window from it in the graph and runs
one macro-step (:func:`~tfstream.train.step.accumulated_train_step`) on every replica; it returns
the logs, the window's rows over all replicas and the seconds spent waiting for the input. The
test step runs :func:`~tfstream.train.step.test_step` on the next batch of the iterator.
"""

from __future__ import annotations

import time

import tensorflow as tf

from tfstream.train.step import accumulated_train_step, test_step

__all__ = ["_make_test_function", "_make_train_function", "_op_determinism"]


def _make_train_function(model, strategy, steps, reduction):
    """The training step of ``model`` under ``strategy``: ``iterator -> (logs, rows, waited)``,
    with ``steps`` micro-batches per replica and the loss ``reduction``."""

    # The iterator goes into the compiled step, as in Keras' fit: the batch never
    # becomes ~30 eager tensors in Python, which cost ~1 ms per step on a CPU. The
    # wait for the input pipeline is timed in the graph, around the get_next.
    @tf.function(reduce_retracing=True)
    def train_function(iterator):
        start = _clock()
        with tf.control_dependencies([start]):
            batch = next(iterator)
        with tf.control_dependencies(tf.nest.flatten(batch, expand_composites=True)):
            waited = _clock() - start
        outputs = strategy.run(
            lambda b: accumulated_train_step(model, b, steps, reduction), args=(batch,)
        )
        logs = tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], outputs)
        return logs, _global_rows(strategy, batch), waited

    return train_function


def _make_test_function(model, strategy):
    """The test step of ``model`` under ``strategy``: updates the metrics with the next batch
    of the iterator."""

    @tf.function(reduce_retracing=True)
    def test_function(iterator):
        strategy.run(lambda b: test_step(model, b), args=(next(iterator),))

    return test_function


def _global_rows(strategy, batch):
    """Rows of a distributed batch over all replicas (a tensor; call in a tf.function)."""
    first = tf.nest.flatten(batch)[0]
    local = strategy.experimental_local_results(first)
    return tf.add_n([tf.shape(t, out_type=tf.int64)[0] for t in local])


def _clock():
    """Seconds now, as a tensor of the graph being traced. ``tf.timestamp`` is refused under
    op determinism, so the clock is then read through Python (~20 us)."""
    if _op_determinism():
        return tf.numpy_function(time.perf_counter, [], tf.float64, stateful=True)
    return tf.timestamp()


def _op_determinism() -> bool:
    """Whether ``tf.config.experimental.enable_op_determinism()`` is on (True when unknown)."""
    # TensorFlow has no public getter of the determinism switch (checked on TF 2.21).
    from tensorflow.python.framework import config

    return bool(getattr(config, "is_op_determinism_enabled", lambda: True)())
