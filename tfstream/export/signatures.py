"""The serving graph of an export: raw named features -> preprocessor -> model -> named outputs.

Two signatures share one graph:

- ``serving_default``: one ``[batch]`` tensor per raw feature (numbers and strings, any batch
  size), named as the features;
- ``serving_tf_example``: ``examples``, a ``[batch]`` string tensor of serialized
  ``tf.train.Example`` protos, parsed with :func:`example_feature_spec`.

Both return float32 ``predictions`` (the model's output, cast to float32 whatever the precision
policy it ran in); a classifier (see :func:`detect_task`) also returns float32
``probabilities`` and int64 ``class_ids``.

Example:

>>> features = raw_features(model)                                 # doctest: +SKIP
>>> module = ServingModule(model, features=features, task="auto")  # doctest: +SKIP
>>> tf.saved_model.save(module, path, signatures=module.signatures())  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

__all__ = [
    "DTYPES",
    "EXAMPLES_INPUT",
    "TASKS",
    "ServingModule",
    "detect_task",
    "example_feature_spec",
    "raw_features",
]

#: The raw feature dtypes a signature takes (``ts.Column`` dtypes).
DTYPES = ("float32", "float64", "int64", "string")
#: ``task=`` values: ``"auto"`` detects binary/multiclass from the final activation.
TASKS = ("auto", "regression", "binary", "multiclass")
#: The input name of ``serving_tf_example`` (as in TF Estimator exports).
EXAMPLES_INPUT = "examples"


def raw_features(entry, features=None) -> dict[str, str]:
    """``{name: dtype}`` of the raw features a signature takes.

    Args:
        entry: the Keras model that receives the raw feature dict (the preprocessor, or the
            model itself when it has no separate preprocessor).
        features: an explicit ``{name: dtype}`` or a ``ts.Source`` (its feature columns, the
            label left out), overriding the names and dtypes read from ``entry``'s inputs.

    Raises:
        TypeError: ``entry`` does not take a dict of named features and ``features`` is None.
        ValueError: a dtype is not one of :data:`DTYPES`, or a feature ``entry`` needs is not
            among ``features``.
    """
    inputs = _keras_inputs(entry)
    if features is None:
        if inputs is None:
            raise TypeError(
                "Expected a Keras model taking a dict of named raw features (built with "
                "keras.Input(shape=(), dtype=..., name=...) per feature, like "
                f"Stats.preprocessor()). Received a model whose inputs are "
                f"{_describe_inputs(entry)}. Pass preprocessor=... or features={{name: dtype}}."
            )
        return {name: _dtype_name(spec.dtype, name) for name, spec in inputs.items()}
    if hasattr(features, "schema") and hasattr(features, "feature_names"):  # a ts.Source
        resolved = {n: features.schema[n].dtype for n in features.feature_names}
    elif isinstance(features, Mapping):
        resolved = {str(n): _dtype_name(d, n) for n, d in features.items()}
    else:
        raise TypeError(
            "`features` must be a {name: dtype} dict or a ts.Source. "
            f"Received: {type(features).__name__}"
        )
    if not resolved:
        raise ValueError("`features` is empty: the signature needs at least one raw feature.")
    missing = sorted(set(inputs or {}) - set(resolved))
    if missing:
        raise ValueError(
            f"`features` lacks inputs the model needs: {missing}. Received features "
            f"{sorted(resolved)}. Add them, or leave `features` out to use the model's inputs."
        )
    return resolved


def example_feature_spec(features: Mapping[str, str]) -> dict[str, tf.io.FixedLenFeature]:
    """The ``tf.io.parse_example`` spec of ``serving_tf_example``: one scalar per feature.

    A missing float feature parses as NaN, so the preprocessor imputes it as it imputes a
    missing value in training; a missing string parses as ``""`` (an out-of-vocabulary token).
    An int64 feature cannot hold NaN: it is required, and a request without it fails with an
    error naming it. Floats travel as float32 in a ``tf.train.Example`` (``FloatList``): a
    float64 feature is parsed as float32 and widened.
    """
    spec = {}
    for name, dtype in features.items():
        if dtype in ("float32", "float64"):
            spec[name] = tf.io.FixedLenFeature([], tf.float32, default_value=float("nan"))
        elif dtype == "int64":
            spec[name] = tf.io.FixedLenFeature([], tf.int64)
        else:
            spec[name] = tf.io.FixedLenFeature([], tf.string, default_value="")
    return spec


def detect_task(model, task: str = "auto") -> str:
    """``"binary"``, ``"multiclass"`` or ``"regression"`` for ``model``.

    ``task="auto"`` looks at the activation of the layer that produces the model's (single)
    output, descending into nested models: ``sigmoid`` with one unit is ``"binary"``,
    ``softmax`` is ``"multiclass"``, anything else (linear, relu, a logit) is
    ``"regression"`` — only ``predictions`` are exported. A model that outputs logits of a
    classifier is exported as it is; end it in ``Activation("sigmoid"/"softmax")`` or pass
    ``task=`` explicitly (then its output must be probabilities).
    """
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {TASKS}. Received: task={task!r}")
    if task != "auto":
        return task
    layer = _output_layer(model)
    activation = getattr(getattr(layer, "activation", None), "__name__", None)
    if activation == "softmax":
        return "multiclass"
    if activation == "sigmoid" and _output_width(model) == 1:
        return "binary"
    return "regression"


class ServingModule(tf.Module):
    """The ``tf.Module`` an export saves: the model, its preprocessor and two signatures.

    Args:
        model: the Keras model (raw features, or the preprocessor's output when
            ``preprocessor`` is given).
        preprocessor: a Keras model from the raw feature dict to the model's input, or None.
        features: ``{name: dtype}`` of the raw features (see :func:`raw_features`).
        task: ``"binary"``, ``"multiclass"`` or ``"regression"`` (see :func:`detect_task`).
    """

    def __init__(self, model, *, preprocessor=None, features: Mapping[str, str], task: str):
        super().__init__(name="tfstream_serving")
        self.model = model
        self.preprocessor = preprocessor
        self._features = dict(features)
        self._task = task
        entry = preprocessor if preprocessor is not None else model
        self._entry_inputs = _keras_inputs(entry) or {}
        for name, dtype in self._features.items():
            spec = self._entry_inputs.get(name)
            if spec is not None and (dtype == "string") != (_dtype_name(spec.dtype) == "string"):
                raise ValueError(
                    f"Feature {name!r} is declared {dtype} but the model takes "
                    f"{_dtype_name(spec.dtype)}: a string feature cannot become a number or "
                    "the reverse. Fix `features`."
                )

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """``{"serving_default": ..., "serving_tf_example": ...}`` for ``tf.saved_model.save``."""
        raw_spec = {
            name: tf.TensorSpec([None], tf.as_dtype(dtype), name=name)
            for name, dtype in self._features.items()
        }
        serve_raw = tf.function(self._serve, input_signature=[raw_spec])
        examples_spec = tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)
        serve_examples = tf.function(self._serve_examples, input_signature=[examples_spec])
        return {
            "serving_default": serve_raw.get_concrete_function(),
            "serving_tf_example": serve_examples.get_concrete_function(),
        }

    def _serve_examples(self, examples):
        parsed = tf.io.parse_example(examples, example_feature_spec(self._features))
        return self._serve(
            {n: tf.cast(parsed[n], tf.as_dtype(d)) for n, d in self._features.items()}
        )

    def _serve(self, features):
        inputs = {}
        for name, spec in self._entry_inputs.items():
            value = features[name]
            if spec.dtype != "string":
                value = tf.cast(value, spec.dtype)
            if len(spec.shape) == 2:  # a [batch, 1] input
                value = tf.expand_dims(value, -1)
            inputs[name] = value
        if not self._entry_inputs:  # a model built without dict inputs: pass what we have
            inputs = dict(features)
        x = inputs
        if self.preprocessor is not None:
            x = self.preprocessor(x, training=False)
        y = self.model(x, training=False)
        return _outputs(y, self._task)


def _outputs(y, task: str) -> dict[str, tf.Tensor]:
    if isinstance(y, Mapping):
        return {str(k): _float32(v) for k, v in y.items()}
    if isinstance(y, (list, tuple)):
        if len(y) != 1:
            return {f"output_{i}": _float32(v) for i, v in enumerate(y)}
        y = y[0]
    predictions = _float32(y)
    outputs = {"predictions": predictions}
    if task == "binary":
        p = tf.reshape(predictions, [-1, 1])
        outputs["probabilities"] = tf.concat([1.0 - p, p], axis=-1)
        outputs["class_ids"] = tf.cast(p > 0.5, tf.int64)
    elif task == "multiclass":
        outputs["probabilities"] = predictions
        outputs["class_ids"] = tf.expand_dims(tf.argmax(predictions, axis=-1), -1)
    return outputs


def _float32(value):
    value = tf.convert_to_tensor(value)
    if value.dtype.is_floating or value.dtype.is_integer or value.dtype == tf.bool:
        return tf.cast(value, tf.float32)
    return value


def _keras_inputs(model) -> dict | None:
    """``{name: KerasTensor}`` of a functional model's dict inputs, or None."""
    try:
        inputs = model.input
    except (AttributeError, ValueError):
        return None
    if isinstance(inputs, Mapping):
        return dict(inputs)
    return None


def _describe_inputs(model) -> str:
    try:
        inputs = model.input
    except (AttributeError, ValueError):
        return "unknown (a subclassed or unbuilt model)"
    return repr(inputs)[:200]


def _dtype_name(dtype, name: str | None = None) -> str:
    text = tf.as_dtype(dtype).name if not isinstance(dtype, str) else dtype
    if text not in DTYPES:
        where = f" of feature {name!r}" if name is not None else ""
        raise ValueError(f"The dtype{where} must be one of {DTYPES}. Received: {text!r}")
    return text


def _output_layer(model):
    layer = model
    for _ in range(32):  # nested models: descend to the layer that makes the output
        outputs = getattr(layer, "outputs", None)
        if outputs is None or len(outputs) != 1:
            return layer
        history = getattr(outputs[0], "_keras_history", None)
        inner = history[0] if history else None
        if inner is None or inner is layer:
            return layer
        layer = inner
    return layer


def _output_width(model) -> int | None:
    outputs = getattr(model, "outputs", None)
    if not outputs or len(outputs) != 1:
        return None
    shape = outputs[0].shape
    return int(shape[-1]) if len(shape) >= 2 and shape[-1] is not None else None


def numpy_dtype(dtype: str):
    """The numpy dtype a feature's values take in a request (``object`` for strings)."""
    return np.dtype(object) if dtype == "string" else np.dtype(dtype)
