"""The macro-step: one optimizer update from a window of rows, computed in micro-batches.

The window is what one optimizer step sees (a "global batch"). Each replica splits its share of
the window into at most ``steps`` micro-batches of ``ceil(rows / steps)`` rows (a ragged window
of 10 rows in 3 steps: 4, 4, 2) and loops over them with ``tf.while_loop``, so activations live
one micro-batch at a time. For each micro-batch it computes the loss *as a share of the whole
window*:

    loss_c = sum_{i in c} w_i * l_i / N        (N: rows of the window over all replicas)

(``N`` is the sum of sample weights for a loss with ``reduction="mean_with_sample_weight"``, and
1 for ``reduction="sum"``), scales it when a loss-scale optimizer is used, and adds its
gradients into local accumulators. Weight regularization is added once per window (divided by
the replica count, because the replicas' gradients are summed). Then one ``apply_gradients``:
one cross-replica reduction per window. Summed over micro-batches and replicas these gradients
are exactly those of one batch of all the window's rows, whatever the micro-batch sizes and
however the rows fall on the replicas.

The apply is guarded in the cross-replica context (as Keras' ``LossScaleOptimizer`` does,
never with a conditional around ``merge_call`` in a replica context): a window with no rows
applies nothing (Adam would move the weights on a zero gradient), and a window whose gradients
are not finite on *any* replica is skipped whole — with a loss-scale optimizer the scale is
then halved; without one, the step is skipped and the weights keep their last good values.
"""

from __future__ import annotations

import tensorflow as tf
from keras import ops, tree
from keras.src.trainers import data_adapters

__all__ = ["accumulated_train_step", "loss_reduction", "test_step"]

_SUM = tf.distribute.ReduceOp.SUM


def loss_reduction(model) -> str:
    """The reduction of ``model``'s compiled loss(es): ``"sum_over_batch_size"`` (Keras'
    default, also for strings and functions), ``"mean_with_sample_weight"`` or ``"sum"``.

    Raises:
        ValueError: the losses of a multi-output model use different reductions.
    """
    reductions = set()
    for loss in tree.flatten(model.loss) if model.loss is not None else []:
        reduction = getattr(loss, "reduction", None) or "sum_over_batch_size"
        reductions.add("sum_over_batch_size" if reduction == "mean" else reduction)
    if len(reductions) > 1:
        raise ValueError(
            f"Exact accumulation needs one loss reduction for all outputs. Received losses "
            f"with reductions {sorted(reductions)}."
        )
    if "none" in reductions or None in reductions:
        raise ValueError("A loss with reduction='none' cannot drive an optimizer step.")
    return next(iter(reductions), "sum_over_batch_size")


def _compiled_loss(model, y, y_pred, sample_weight):
    """The compiled loss of one micro-batch, reduced as Keras reduces it (private API: the
    ``CompileLoss`` object Keras 3.15 keeps as ``model._compile_loss``)."""
    compile_loss = getattr(model, "_compile_loss", None)
    if compile_loss is None:
        return None
    return compile_loss(y, y_pred, sample_weight)


def _weight_regularization(model):
    terms = [v.regularizer(v) for v in model.trainable_weights if v.regularizer is not None]
    return ops.sum(ops.stack([ops.cast(t, "float32") for t in terms])) if terms else None


def _activity_losses(model, weight_terms: int):
    """Losses added during the forward pass (``add_loss``, activity regularizers): Keras lists
    them before the weight-regularization terms in ``model.losses``."""
    losses = model.losses
    forward = losses[: len(losses) - weight_terms] if weight_terms else losses
    if not forward:
        return None
    return ops.sum(ops.stack([ops.sum(ops.cast(v, "float32")) for v in forward]))


def _rows(x) -> tf.Tensor:
    first = next(t for t in tree.flatten(x) if t is not None)
    return tf.shape(first)[0]


def _slice(structure, start, end):
    return tree.map_structure(lambda t: None if t is None else t[start:end], structure)


def accumulated_train_step(model, data, steps: int, reduction: str):
    """One macro-step over the replica's share ``data`` of a window (see the module
    docstring). Runs in a replica context; returns the model's metrics."""
    x, y, sample_weight = data_adapters.data_adapter_utils.unpack_x_y_sample_weight(data)
    ctx = tf.distribute.get_replica_context()
    replicas = ctx.num_replicas_in_sync
    n = _rows(x)
    local_rows = tf.cast(n, tf.float32)
    local_weight = (
        local_rows if sample_weight is None else tf.reduce_sum(tf.cast(sample_weight, tf.float32))
    )
    global_rows, global_weight = ctx.all_reduce(_SUM, [local_rows, local_weight])
    if reduction == "mean_with_sample_weight":
        divisor = global_weight
    elif reduction == "sum":
        divisor = tf.constant(1.0)
    else:
        divisor = global_rows
    # Keras' sum_over_batch_size divides a micro-batch's loss by its rows and by the replica
    # count; `share` turns that into "this micro-batch's part of the window's loss".
    safe_divisor = tf.maximum(divisor, 1e-30)

    variables = model.trainable_variables
    optimizer = model.optimizer
    weight_terms = sum(1 for v in variables if v.regularizer is not None)
    micro = tf.maximum((n + steps - 1) // steps, 1)
    chunks = (n + micro - 1) // micro

    def body(i, accumulated, loss_sum):
        start = i * micro
        end = tf.minimum(start + micro, n)
        xs, ys, ws = _slice(x, start, end), _slice(y, start, end), _slice(sample_weight, start, end)
        with tf.GradientTape() as tape:
            y_pred = model(xs, training=True)
            loss = _micro_loss(model, ys, y_pred, ws, end - start, replicas, reduction)
            loss = loss / safe_divisor if loss is not None else tf.constant(0.0)
            activity = _activity_losses(model, weight_terms)
            if activity is not None:
                loss = loss + activity
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        accumulated = [
            a if g is None else a + tf.cast(g, a.dtype)
            for a, g in zip(accumulated, grads, strict=True)
        ]
        model.compute_metrics(xs, ys, y_pred, sample_weight=ws)
        return i + 1, accumulated, loss_sum + loss

    zeros = [tf.zeros_like(v) for v in variables]
    if steps == 1:  # one micro-batch: no loop to pay for
        # A replica without rows (an empty window, or an uneven split) runs no forward pass, as
        # the loop below runs no iteration: it would advance the dropout seed generators and
        # put NaN (a mean of nothing) into BatchNormalization's moving statistics.
        _, accumulated, loss_sum = tf.cond(
            n > 0,
            lambda: body(tf.constant(0, n.dtype), zeros, tf.constant(0.0)),
            lambda: (tf.constant(0, n.dtype), zeros, tf.constant(0.0)),
        )
    else:
        _, accumulated, loss_sum = tf.while_loop(
            lambda i, *_: i < chunks,
            body,
            (tf.constant(0, chunks.dtype), zeros, tf.constant(0.0)),
            parallel_iterations=1,
        )
    with tf.GradientTape() as tape:
        regularization = _weight_regularization(model)
        if regularization is not None:
            regularization = regularization / replicas
            scaled = optimizer.scale_loss(regularization)
    if regularization is not None:
        grads = tape.gradient(scaled, variables)
        accumulated = [
            a if g is None else a + tf.cast(g, a.dtype)
            for a, g in zip(accumulated, grads, strict=True)
        ]
        loss_sum = loss_sum + regularization
    _guarded_apply(ctx, optimizer, accumulated, variables, global_rows)
    # Keras' loss tracker is a Mean over replicas: each replica's share times the replica count,
    # weighted by the window's rows, averages to the window's loss.
    model._loss_tracker.update_state(loss_sum * replicas, sample_weight=global_rows / replicas)
    return model.get_metrics_result()


def _micro_loss(model, y, y_pred, sample_weight, rows, replicas, reduction):
    """``sum_{i in c} w_i * l_i`` (the numerator of the micro-batch's share), from the compiled
    loss, which Keras already divided by the micro-batch's rows (or weights) and replicas."""
    loss = _compiled_loss(model, y, y_pred, sample_weight)
    if loss is None:
        return None
    loss = tf.cast(loss, tf.float32)
    if reduction == "sum":
        return loss
    if reduction == "mean_with_sample_weight":
        weight = (
            tf.cast(rows, tf.float32)
            if sample_weight is None
            else tf.reduce_sum(tf.cast(sample_weight, tf.float32))
        )
        return loss * weight * replicas
    return loss * tf.cast(rows, tf.float32) * replicas


def _guarded_apply(ctx, optimizer, grads, variables, global_rows):
    """``apply_gradients`` once, skipped in the cross-replica context when the window has no
    rows, or when any replica's gradients are not finite (see the module docstring)."""
    local_finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
    bad = ctx.all_reduce(_SUM, tf.cast(tf.logical_not(local_finite), tf.float32))
    finite = bad == 0.0
    is_loss_scaled = hasattr(optimizer, "inner_optimizer")
    if is_loss_scaled:
        # Every replica must see the same verdict: Keras' LossScaleOptimizer reads it from the
        # first replica's own gradients. Poisoned gradients make all replicas agree.
        poison = tf.where(finite, 0.0, float("nan"))
        grads = [g + tf.cast(poison, g.dtype) for g in grads]
        run = global_rows > 0
    else:
        run = tf.logical_and(global_rows > 0, finite)

    def apply_on_replica(*grads):
        optimizer.apply_gradients(zip(grads, variables, strict=True))

    def merge(strategy, run, *grads):
        first = strategy.experimental_local_results(run)[0]
        tf.cond(
            first,
            lambda: strategy.extended.call_for_each_replica(apply_on_replica, args=grads),
            lambda: None,
        )

    ctx.merge_call(merge, args=(run, *grads))


def test_step(model, data):
    """Loss and metrics of one batch, as Keras' own ``test_step`` computes them."""
    from keras.src.losses import loss as loss_module

    x, y, sample_weight = data_adapters.data_adapter_utils.unpack_x_y_sample_weight(data)
    y_pred = model(x, training=False)
    loss = model._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
    model._loss_tracker.update_state(
        loss_module.unscale_loss_for_distribution(loss), sample_weight=_rows(x)
    )
    return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
