"""Activation checkpointing (rematerialization) for an already built Keras 3 model.

A layer chosen for remat keeps only its *inputs* for the backward pass; whatever it computes
inside is recomputed from them during backpropagation (Chen et al., 2016, "Training Deep Nets
with Sublinear Memory Cost", arXiv:1604.06174). The gradients are the same; the price is one
more forward pass of the chosen layers. It saves memory only when a layer keeps more inside
than it takes in: a block of several Dense layers (or a Transformer block) keeps one
activation per inner layer, a single ``Dense`` keeps about as much as its input — so choose
blocks, not single layers, or give the model block structure (sub-layers) first.

Why not ``keras.RematScope``: it applies at layer *construction* (it cannot be applied to a
built model), and on the TensorFlow backend it wraps ``call`` with ``tf.recompute_grad``
keyword arguments included, which raises ``ValueError: The custom_gradient decorator currently
supports keywords arguments only when eager execution is enabled`` as soon as ``training=`` is
passed inside a ``tf.function`` — that is, in every ``model.fit`` (checked on Keras 3.15.1 /
TF 2.21). Its recomputation also runs outside ``Layer.__call__``, so a block's ``Dropout``
draws another mask and inherits no ``training`` flag: wrong gradients. This module (TensorFlow
backend) wraps each chosen layer's ``call`` in ``keras.remat`` (``tf.recompute_grad``) itself,
passing only the floating-point tensors as arguments, and recomputes under the state of the
forward pass:

* the ``training`` flag that sub-layers inherit from the enclosing call, and the mixed-precision
  autocast scope (both are Keras state that only exists *during* ``Layer.__call__``);
* the layer's non-trainable variables (``SeedGenerator`` states, ``BatchNormalization`` moving
  statistics) are put back to their values at forward time before the recomputation and to
  their current values after it, so ``Dropout`` draws the same mask and moving statistics are
  updated once.

Randomness must come from the layer's own seed generators (``keras.layers.Dropout``,
``keras.random.*(seed=self.seed_generator)``); an unseeded ``keras.random`` call draws from the
global generator and would differ in the recomputation.

Example:

>>> import keras
>>> from tfstream.train.remat import apply_remat, rematerialized_layers
>>> class Block(keras.layers.Layer):
...     def __init__(self, width, **kwargs):
...         super().__init__(**kwargs)
...         self.a = keras.layers.Dense(width, activation="relu")
...         self.b = keras.layers.Dense(width)
...     def call(self, x):
...         return x + self.b(self.a(x))
>>> model = keras.Sequential(
...     [keras.Input((8,)), Block(8, name="block_0"), Block(8, name="block_1"),
...      keras.layers.Dense(1, name="head")]
... )
>>> rematerialized_layers(apply_remat(model, "blocks"))
['block_0', 'block_1']
>>> rematerialized_layers(apply_remat(model, ["block_1"]))
['block_1']
>>> rematerialized_layers(apply_remat(model, None))
[]
"""

from __future__ import annotations

import contextlib
import copy
import types
from collections.abc import Callable, Iterator, Sequence

import keras
import tensorflow as tf

__all__ = [
    "REMAT_MODES",
    "RematSpec",
    "apply_remat",
    "rematerialized_layers",
    "remove_remat",
    "select_remat_layers",
]

REMAT_MODES = ("full", "blocks", "larger_than")

RematSpec = None | str | Sequence[str | type] | Callable[[keras.layers.Layer], bool]
"""What to rematerialize: ``None``, a mode of :data:`REMAT_MODES`, a list of layer names
and/or layer classes, or a predicate ``layer -> bool`` (see :func:`apply_remat`)."""

_ORIGINAL_CALL = "_tfstream_remat_original_call"


def apply_remat(
    model: keras.Model, remat: RematSpec = "full", *, output_size_threshold: int = 1024
) -> keras.Model:
    """Makes layers of a built ``model`` recompute their activations in the backward pass.

    The model is changed in place (and returned): each chosen layer stores only its inputs for
    backpropagation and recomputes the rest, with identical gradients. Any remat set by an
    earlier call is removed first, so the model ends up with exactly this selection. It works
    eagerly, inside your own ``tf.function`` step, in ``model.fit`` and under
    ``tf.distribute`` strategies. A ``tf.function`` traced *before* this call keeps its old
    graph; ``model.fit``'s cached train function is reset here.

    Chosen layers never nest: when a layer is chosen, its sub-layers are not (recomputing
    inside a recomputation would only add time). ``ts.Trainer(remat=...)`` takes the same
    values and calls this function.

    Args:
        model: A ``keras.Model`` (Sequential, Functional or subclassed) whose layers exist,
            i.e. built.
        remat: What to rematerialize:

            * ``None``: nothing (removes any remat).
            * ``"full"``: every top-level layer (``model.layers``, inputs excluded), each
              recomputed as one unit. A nested model counts as one layer.
            * ``"blocks"``: every top-level layer that has sub-layers — residual blocks,
              Transformer blocks, nested models. The usual choice.
            * ``"larger_than"``: every top-level layer whose output has more than
              ``output_size_threshold`` elements per example (batch axis excluded). Needs the
              output shapes, known for Sequential and Functional models.
            * A list of layer names and/or ``keras.layers.Layer`` subclasses: the outermost
              layers, at any depth, with one of these names or of one of these classes. Every
              name and class must match a layer.
            * A callable ``layer -> bool``: the outermost layers, at any depth, for which it
              returns ``True``.
        output_size_threshold: Elements per example above which ``"larger_than"`` chooses a
            layer (Keras' ``RematScope`` default, 1024).

    Returns:
        ``model`` itself.

    Raises:
        TypeError: if ``model`` is not a ``keras.Model`` or ``remat`` has the wrong type.
        ValueError: for an unknown mode, a name or class that matches no layer, a selection
            that matches no layer at all, or a quantized layer.
        RuntimeError: on a Keras backend other than TensorFlow, or a Keras whose internals
            changed (see the end of this module).

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="hidden"),
    ...                           keras.layers.Dense(1, name="out")])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> model = apply_remat(model, ["hidden"])
    >>> history = model.fit(np.ones((8, 4)), np.ones((8, 1)), verbose=0)
    >>> rematerialized_layers(model)
    ['hidden']
    """
    layers = select_remat_layers(model, remat, output_size_threshold=output_size_threshold)
    remove_remat(model)
    if layers:
        if keras.backend.backend() != "tensorflow":
            raise RuntimeError(
                "tfstream.train.remat supports the TensorFlow backend only. Received: "
                f"keras.backend.backend()={keras.backend.backend()!r}"
            )
        _check_keras_internals()
    for layer in layers:
        _wrap(layer)
    return model


def remove_remat(model: keras.Model) -> keras.Model:
    """Undoes :func:`apply_remat`: every layer of ``model`` computes as before. Returns
    ``model``."""
    _check_model(model)
    for layer in _walk(model):
        if _ORIGINAL_CALL in vars(layer):
            original = vars(layer)[_ORIGINAL_CALL]
            del layer.call
            delattr(layer, _ORIGINAL_CALL)
            if original is not None:
                layer.call = original
    _reset_train_function(model)
    return model


def rematerialized_layers(model: keras.Model) -> list[str]:
    """Names of the layers of ``model`` that currently recompute their activations, outermost
    first."""
    _check_model(model)
    return [layer.name for layer in _walk(model) if _ORIGINAL_CALL in vars(layer)]


def select_remat_layers(
    model: keras.Model, remat: RematSpec, *, output_size_threshold: int = 1024
) -> list[keras.layers.Layer]:
    """The layers :func:`apply_remat` would choose for ``remat`` (same arguments), without
    changing anything; validates ``remat``."""
    _check_model(model)
    if isinstance(output_size_threshold, bool) or not isinstance(output_size_threshold, int):
        raise TypeError(
            "`output_size_threshold` must be an integer number of elements per example. "
            f"Received: output_size_threshold={output_size_threshold!r}"
        )
    if output_size_threshold < 0:
        raise ValueError(
            "`output_size_threshold` must be >= 0. "
            f"Received: output_size_threshold={output_size_threshold}"
        )
    if remat is None:
        return []
    top = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if isinstance(remat, str):
        if remat == "full":
            chosen = top
        elif remat == "blocks":
            chosen = [layer for layer in top if _children(layer)]
        elif remat == "larger_than":
            chosen = [layer for layer in top if _output_size(layer, remat) > output_size_threshold]
        else:
            raise ValueError(
                f"`remat` must be None, one of {list(REMAT_MODES)}, a list of layer names "
                f"or classes, or a callable. Received: remat={remat!r}"
            )
        return _non_empty(chosen, model, remat)
    if callable(remat) and not isinstance(remat, type):
        return _non_empty(_outermost(model, lambda layer: bool(remat(layer))), model, remat)
    if isinstance(remat, type) or not isinstance(remat, Sequence):
        raise TypeError(
            "`remat` must be None, a string, a list of layer names or classes, or a callable. "
            f"Received: remat={remat!r} (of type {type(remat).__name__})"
        )
    return _by_names_and_classes(model, list(remat))


def _by_names_and_classes(model, items) -> list[keras.layers.Layer]:
    if not items:
        raise ValueError(
            "`remat` is an empty list; pass None to rematerialize nothing. Received: remat=[]"
        )
    names, classes = set(), []
    for item in items:
        if isinstance(item, str):
            names.add(item)
        elif isinstance(item, type) and issubclass(item, keras.layers.Layer):
            classes.append(item)
        else:
            raise TypeError(
                "Each item of `remat` must be a layer name or a keras.layers.Layer subclass. "
                f"Received: {item!r} (of type {type(item).__name__}) in remat={items!r}"
            )
    every = _walk(model)
    unknown = sorted(names - {layer.name for layer in every})
    if unknown:
        known = [layer.name for layer in every]
        shown = ", ".join(repr(n) for n in known[:20]) + (", ..." if len(known) > 20 else "")
        raise ValueError(
            f"`remat` names layers that are not in model {model.name!r}: {unknown}. "
            f"Its layers are: {shown}"
        )
    unmatched = [c.__name__ for c in classes if not any(isinstance(x, c) for x in every)]
    if unmatched:
        raise ValueError(
            f"`remat` lists layer classes with no instance in model {model.name!r}: "
            f"{unmatched}. Received: remat={items!r}"
        )
    return _outermost(model, lambda layer: layer.name in names or isinstance(layer, tuple(classes)))


def _non_empty(chosen, model, remat) -> list[keras.layers.Layer]:
    if not chosen:
        hint = "" if model.built else " The model is not built yet: call it on data first."
        raise ValueError(
            f"`remat={remat!r}` matches no layer of model {model.name!r}.{hint} "
            "Pass layer names, e.g. remat=['dense_3'], or None to rematerialize nothing."
        )
    return chosen


def _output_size(layer, remat) -> int:
    try:
        shapes = [tuple(t.shape) for t in keras.tree.flatten(layer.output)]
    except (AttributeError, ValueError) as e:
        raise ValueError(
            f"`remat={remat!r}` needs the output shape of layer {layer.name!r}, which is "
            "known only for Sequential and Functional models (a layer called once, on "
            "symbolic inputs). Pass layer names or classes instead."
        ) from e
    size = 0
    for shape in shapes:
        n = 1
        for dim in shape[1:]:
            n *= dim if dim is not None else 1
        size += n
    return size


def _outermost(model, predicate) -> list[keras.layers.Layer]:
    """Layers for which ``predicate`` holds, not looking inside a layer that matched."""
    return [layer for layer, matched in _visit(model, predicate) if matched]


def _walk(model) -> list[keras.layers.Layer]:
    """Every layer under ``model`` (not ``model`` itself, no inputs), outer before inner, once
    each."""
    return [layer for layer, _ in _visit(model, lambda layer: False)]


def _visit(model, stop) -> list[tuple[keras.layers.Layer, bool]]:
    """``(layer, stop(layer))`` for the layers under ``model`` (no inputs), outer before inner,
    once each; the layers inside one where ``stop`` holds are not visited."""
    visited, seen = [], set()
    stack = list(reversed(_children(model)))
    while stack:
        layer = stack.pop()
        if id(layer) in seen or isinstance(layer, keras.layers.InputLayer):
            continue
        seen.add(id(layer))
        stopped = bool(stop(layer))
        visited.append((layer, stopped))
        if not stopped:
            stack.extend(reversed(_children(layer)))
    return visited


def _check_model(model) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(
            "`model` must be a keras.Model (Sequential, Functional or subclassed). "
            f"Received: model={model!r} (of type {type(model).__name__})"
        )


def _reset_train_function(model) -> None:
    # model.fit traces its train step once and caches it; a new trace picks up the change.
    if getattr(model, "train_function", None) is not None:
        model.train_function = None


def _wrap(layer) -> None:
    if getattr(layer, "quantization_mode", None) is not None:
        raise ValueError(
            f"Layer {layer.name!r} is quantized ({layer.quantization_mode}); quantized layers "
            "call `quantized_call`, which remat does not wrap. Leave it out of `remat`."
        )
    original = vars(layer).get("call")  # an instance-level `call` set by someone else
    setattr(layer, _ORIGINAL_CALL, original)
    # Bound to the layer; the original `call` is looked up on the layer at each call.
    layer.call = types.MethodType(_rematerialized_call, layer)


def _rematerialized_call(self, *args, **kwargs):
    """``call`` of a rematerialized layer: the original ``call`` under ``keras.remat``."""
    original = vars(self)[_ORIGINAL_CALL]
    call = original if original is not None else type(self).call.__get__(self)
    flat = keras.tree.flatten((args, kwargs))
    where = [i for i, x in enumerate(flat) if tf.is_tensor(x) and x.dtype.is_floating]
    state = _capture_call_state()
    variables = _unique(self.non_trainable_variables)
    with _no_autocast():
        at_forward = [tf.identity(v.value) for v in variables]
    recomputing = False

    def forward(*tensors):
        nonlocal recomputing
        values = list(flat)
        for i, tensor in zip(where, tensors, strict=True):
            values[i] = tensor
        call_args, call_kwargs = keras.tree.pack_sequence_as((args, kwargs), values)
        if not recomputing:  # the forward pass itself
            recomputing = True
            return call(*call_args, **call_kwargs)
        with _restored_call_state(state), _variables_at(variables, at_forward):
            return call(*call_args, **call_kwargs)

    return keras.remat(forward)(*[flat[i] for i in where])


def _unique(variables) -> list:
    seen, out = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


@contextlib.contextmanager
def _variables_at(variables, values) -> Iterator[None]:
    """Sets ``variables`` to ``values`` for the block, then back to what they were before it."""
    if not variables:
        yield
        return
    with _no_autocast():
        current = [tf.identity(v.value) for v in variables]
    for v, value in zip(variables, values, strict=True):
        v.assign(value)
    try:
        yield
    finally:
        for v, value in zip(variables, current, strict=True):
            v.assign(value)


# --- Keras internals ------------------------------------------------------------------------
# The only place that touches private Keras state. Checked on Keras 3.15.1 (TensorFlow backend,
# TF 2.21). `Layer.__call__` keeps two thread-local values in
# `keras.src.backend.common.global_state` while it runs `call`:
#   "current_call_ctx": the CallContext through which sub-layers inherit `training`;
#   "autocast_scope":   the AutocastScope that casts float32 variables to a mixed policy's
#                       compute dtype.
# Neither exists when the backward pass recomputes `call`, so they are captured in the forward
# pass and restored around the recomputation. `_check_keras_internals` verifies once per
# process, with a probe layer, that Keras still keeps them there.


def _global_state():
    try:
        from keras.src.backend.common import global_state
    except ImportError as e:  # pragma: no cover - depends on the Keras version
        raise RuntimeError(_internals_message("keras.src.backend.common.global_state")) from e
    for name in ("get_global_attribute", "set_global_attribute"):
        if not hasattr(global_state, name):  # pragma: no cover
            raise RuntimeError(_internals_message(f"global_state.{name}"))
    return global_state


def _internals_message(what: str) -> str:
    return (
        f"tfstream.train.remat relies on Keras internals ({what}) checked on Keras 3.15.1; "
        f"this Keras ({keras.__version__}) no longer has them. Pin keras<=3.15 or train "
        "without remat (remat=None)."
    )


def _capture_call_state() -> tuple:
    state = _global_state()
    context = state.get_global_attribute("current_call_ctx")
    # A copy: later layers of the forward pass overwrite the values stored in the context.
    return copy.copy(context), state.get_global_attribute("autocast_scope")


@contextlib.contextmanager
def _restored_call_state(saved) -> Iterator[None]:
    state = _global_state()
    context, autocast = saved
    before = (
        state.get_global_attribute("current_call_ctx"),
        state.get_global_attribute("autocast_scope"),
    )
    state.set_global_attribute("current_call_ctx", copy.copy(context))
    state.set_global_attribute("autocast_scope", autocast)
    try:
        yield
    finally:
        state.set_global_attribute("current_call_ctx", before[0])
        state.set_global_attribute("autocast_scope", before[1])


@contextlib.contextmanager
def _no_autocast() -> Iterator[None]:
    """Reads variables in their own dtype (a mixed policy would cast float32 ones)."""
    state = _global_state()
    before = state.get_global_attribute("autocast_scope")
    state.set_global_attribute("autocast_scope", None)
    try:
        yield
    finally:
        state.set_global_attribute("autocast_scope", before)


_INTERNALS_CHECKED = False


def _check_keras_internals() -> None:
    """Raises RuntimeError if ``Layer.__call__`` no longer keeps its call context and autocast
    scope where :func:`_capture_call_state` reads them."""
    global _INTERNALS_CHECKED
    if _INTERNALS_CHECKED:
        return
    seen = {}

    class _Probe(keras.layers.Layer):
        def call(self, x, training=None):
            context, autocast = _capture_call_state()
            seen["training"] = getattr(context, "training", None)
            seen["autocast"] = getattr(autocast, "dtype", None)
            return x

    probe = _Probe(name="tfstream_remat_probe", dtype="mixed_float16")
    probe(tf.zeros((1, 1)), training=True)
    if seen.get("training") is not True:
        raise RuntimeError(_internals_message('global_state "current_call_ctx"'))
    if seen.get("autocast") != "float16":
        raise RuntimeError(_internals_message('global_state "autocast_scope"'))
    _INTERNALS_CHECKED = True


def _children(layer) -> list[keras.layers.Layer]:
    """Direct sub-layers. ``Model.layers`` is public; a plain ``Layer`` has no public list of
    its sub-layers, so this uses ``Layer._flatten_layers`` (Keras 3.0-3.15)."""
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is None:  # pragma: no cover - depends on the Keras version
        raise RuntimeError(_internals_message("Layer._flatten_layers"))
    return list(flatten(include_self=False, recursive=False))
