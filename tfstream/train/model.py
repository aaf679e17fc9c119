"""The model a :class:`~tfstream.train.trainer.Trainer` trains: made under the precision policy
and the strategy's scope, compiled with the optimizer the policy needs, and built from the shapes
of the data before its steps are traced.

A model built before the Trainer cannot be made again: its policy must be the one asked for
(:func:`_model_precision`) and its variables those of the strategy (:func:`_check_strategy`).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfstream.train.precision import policy_scope, resolve_precision, wrap_optimizer

__all__ = ["_build_model", "_compile_model"]


def _compile_model(
    model, *, optimizer, loss, metrics, precision: str, strategy, remat
) -> tuple[keras.Model, str]:
    """``model`` (a ``keras.Model``, or a function that builds one under the policy and the
    strategy's scope) compiled, with activation checkpointing when ``remat`` is not None; and
    its precision policy."""
    built = isinstance(model, keras.Model)
    if not built and not callable(model):
        raise TypeError(
            "`model` must be a keras.Model or a function that builds one. Received: "
            f"{type(model).__name__}"
        )
    if built:
        precision = _model_precision(model, precision)
        _check_strategy(model, strategy)
    else:
        precision = resolve_precision(precision)
    with policy_scope(precision), strategy.scope():
        if not built:
            model = model()
            if not isinstance(model, keras.Model):
                raise TypeError(
                    f"The model function returned {type(model).__name__}, not a keras.Model."
                )
        model.compile(optimizer=wrap_optimizer(optimizer, precision), loss=loss, metrics=metrics)
    if remat is not None:
        from tfstream.train.remat import apply_remat

        apply_remat(model, remat)
    return model, precision


def _build_model(model, element_spec, precision: str, strategy) -> None:
    """Builds ``model`` for batches of ``element_spec``."""
    spec = tf.nest.map_structure(
        lambda s: tf.TensorSpec(s.shape, s.dtype) if isinstance(s, tf.TensorSpec) else s,
        element_spec,
    )
    with policy_scope(precision), strategy.scope():
        # Builds the model, the compiled loss and metrics from shapes (Keras private API,
        # checked on Keras 3.15), and the optimizer's slots, outside any tf.function.
        model._symbolic_build(data_batch=spec)
        model.optimizer.build(model.trainable_variables)


def _model_precision(model, precision: str) -> str:
    """The policy a built model must be trained with: its own (``"auto"``), or the one asked
    for, which must then be the model's."""
    own = model.dtype_policy.name
    if precision == "auto":
        return own if own in ("float32", "mixed_float16", "mixed_bfloat16") else "float32"
    resolved = resolve_precision(precision)
    if resolved != own:
        raise ValueError(
            f"precision={precision!r} needs a model built under that policy, but this model's "
            f"policy is {own!r}. Pass a function that builds the model, e.g. "
            "Trainer(lambda: build_model(), ...), and the Trainer builds it under the policy."
        )
    return resolved


def _check_strategy(model, strategy) -> None:
    if strategy is tf.distribute.get_strategy() or not model.variables:
        return
    value = getattr(model.variables[0], "value", None)
    if not isinstance(value, tf.distribute.DistributedValues):
        raise ValueError(
            f"The model was built outside the {type(strategy).__name__}'s scope. Pass a "
            "function that builds the model (Trainer(lambda: build_model(), ...)), or build it "
            "under `with strategy.scope():` and pass that strategy."
        )
