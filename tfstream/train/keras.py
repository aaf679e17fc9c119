"""``model.fit`` integration: exact gradient accumulation inside Keras' own training loop."""

from __future__ import annotations

import types

from tfstream.train.step import accumulated_train_step, loss_reduction

__all__ = ["accumulate"]


def accumulate(model, steps: int):
    """Makes a compiled Keras model train with exact gradient accumulation in ``model.fit``.

    Each batch ``fit`` gives the model is one *window*: one optimizer step's rows. The model
    splits its (per-replica) share of the window into at most ``steps`` micro-batches of
    ``ceil(rows / steps)`` rows and accumulates their gradients, so activations are held for
    one micro-batch at a time while the update equals that of the whole window as one batch —
    also for a ragged last batch, with sample weights, with regularization, under
    ``MirroredStrategy`` (where Keras' own ``gradient_accumulation_steps`` fails), and with a
    ``LossScaleOptimizer`` (a window with a non-finite gradient is skipped whole).

    So pass ``batch_size = micro_batch * steps`` (times the replica count under a strategy):
    the learning rate and every other hyperparameter keep the meaning they have for that batch
    size. Metrics are updated on every micro-batch. BatchNormalization sees micro-batches.

    Args:
        model: a compiled ``keras.Model`` (any loss whose reduction is
            ``"sum_over_batch_size"``, ``"mean_with_sample_weight"`` or ``"sum"``).
        steps: micro-batches per window (>= 1).

    Returns:
        The same model, ready for ``model.fit``; callbacks work as usual.

    Example:

    >>> model.compile(optimizer="adam", loss="binary_crossentropy")   # doctest: +SKIP
    >>> model = ts.keras.accumulate(model, 4)                           # doctest: +SKIP
    >>> model.fit(ds.rebatch(4 * 256), epochs=3)                        # doctest: +SKIP
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be a positive integer. Received: steps={steps!r}")
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
        raise ValueError(
            "`accumulate` needs a compiled model: call model.compile(optimizer=..., loss=...) "
            "first."
        )
    reduction = loss_reduction(model)

    def train_step(self, data):
        return accumulated_train_step(self, data, steps, reduction)

    model.train_step = types.MethodType(train_step, model)
    model._maybe_symbolic_build = types.MethodType(_maybe_symbolic_build, model)
    model.train_function = None  # fit builds its step function again, around ours
    model._tfstream_accumulation_steps = steps
    return model


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    """Keras 3.15's ``_maybe_symbolic_build`` with one fix: it averages the first batch across
    replicas (``strategy.reduce("MEAN", ...)``), which fails when the global batch does not
    divide by the replica count (per-replica shapes differ); building needs shapes only, so the
    first replica's part serves. (Private API; checked on Keras 3.15.)"""
    import tensorflow as tf
    from keras import tree

    strategy = self._distribute_strategy
    if strategy is None:
        return
    if iterator is not None:
        for _, _, it in iterator:
            data_batch = tree.map_structure(
                lambda v: (
                    strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v
                ),
                next(it),
            )
            break
    with strategy.scope():
        self._symbolic_build(data_batch=data_batch)
