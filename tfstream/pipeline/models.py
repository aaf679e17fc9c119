"""Built-in tabular models chosen by a short spec, and the model a ``tfstream fit`` trains:
the preprocessor (raw feature dict -> float32 tensor) composed with a body and a head.

Specs:

- ``linear``: one dense output (logistic or linear regression).
- ``mlp:256,128``: ReLU hidden layers of these widths, then the output.
- ``wide_deep:256,128``: the sum of a linear ("wide") part of the preprocessed features and an
  MLP ("deep") part of these widths (Cheng et al., 2016, *Wide & Deep Learning*).
- ``module:function`` (or ``path/to/file.py:function``): ``function`` builds any Keras model
  from the preprocessed features. It is called with those of these keyword arguments it
  accepts: ``width`` (int, the preprocessed features' width), ``task`` (``"binary"`` or
  ``"regression"``), ``stats`` (the ``ts.Stats``) and ``preprocessor`` (the Keras model). It
  returns a ``keras.Model`` mapping ``float32[batch, width]`` to ``[batch, 1]`` predictions: a
  probability for ``binary`` (end with a sigmoid), a value for ``regression``.

This module imports Keras; :func:`parse_spec` does not need it.

Example:

>>> parse_spec("mlp:256,128")
ModelSpec(kind='mlp', widths=(256, 128), target=None)
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from typing import NamedTuple

from tfstream.pipeline.config import ConfigError

__all__ = ["ModelSpec", "build_model", "load_function", "parse_spec"]

BUILT_IN = ("linear", "mlp", "wide_deep")


class ModelSpec(NamedTuple):
    """A parsed model spec: ``kind`` (``linear``, ``mlp``, ``wide_deep`` or ``function``), the
    hidden ``widths``, and the ``module:function`` ``target``."""

    kind: str
    widths: tuple[int, ...] = ()
    target: str | None = None


def parse_spec(spec: str) -> ModelSpec:
    """Parses a model spec (see the module docstring).

    Raises:
        ConfigError: an unknown kind, or widths that are not positive integers.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(
            f"`model.spec` must be a string such as 'mlp:256,128'; received {spec!r}."
        )
    kind, sep, rest = spec.strip().partition(":")
    if kind == "linear":
        if rest:
            raise ConfigError(f"`model.spec` 'linear' takes no widths; received {spec!r}.")
        return ModelSpec("linear")
    if kind in ("mlp", "wide_deep"):
        widths = []
        for part in rest.split(","):
            try:
                width = int(part.strip().replace("_", ""))
            except ValueError:
                width = 0
            if width < 1:
                raise ConfigError(
                    f"`model.spec` {spec!r}: the widths after '{kind}:' must be positive "
                    f"integers separated by commas, e.g. '{kind}:256,128'; received {part!r}."
                )
            widths.append(width)
        return ModelSpec(kind, tuple(widths))
    if sep and rest and kind:
        return ModelSpec("function", target=spec.strip())
    raise ConfigError(
        f"`model.spec` must be 'linear', 'mlp:W1,W2,...', 'wide_deep:W1,W2,...' or "
        f"'module:function'; received {spec!r}."
    )


def load_function(target: str):
    """The function a ``module:function`` (or ``file.py:function``) spec names.

    Raises:
        ConfigError: the module cannot be imported, or has no such callable.
    """
    module_name, _, attribute = target.rpartition(":")
    try:
        if module_name.endswith(".py"):
            if not os.path.isfile(module_name):
                raise ConfigError(
                    f"`model.spec` {target!r}: the file {module_name!r} does not exist."
                )
            name = "_tfstream_model_" + os.path.splitext(os.path.basename(module_name))[0]
            loader = importlib.util.spec_from_file_location(name, module_name)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            if "" not in sys.path and os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())  # as `python -m` does: local modules import
            module = importlib.import_module(module_name)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(
            f"`model.spec` {target!r}: cannot import {module_name!r} "
            f"({type(error).__name__}: {' '.join(str(error).split())}). Check that the module "
            "is importable from the current directory or installed."
        ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError(
            f"`model.spec` {target!r}: module {module_name!r} has no function {attribute!r}."
        )
    return function


def build_model(spec: str, *, stats, task: str, dropout: float = 0.0, max_tokens=None):
    """The model ``tfstream fit`` trains: ``stats.preprocessor()`` composed with the body of
    ``spec`` and its head, as one Keras model from the raw feature dict to ``[batch, 1]``
    predictions (a probability for ``binary``). The preprocessing is inside the model: its
    state is in every checkpoint and in the exported SavedModel.

    Args:
        spec: a model spec (see the module docstring).
        stats: the ``ts.Stats`` of the training data.
        task: ``"binary"`` or ``"regression"``.
        dropout: dropout after each hidden layer of the built-in models.
        max_tokens: cap on each string column's vocabulary.

    Raises:
        ConfigError: a bad spec, or a ``module:function`` that fails or returns no model.
    """
    import keras

    parsed = parse_spec(spec)
    preprocessor = stats.preprocessor(max_tokens=max_tokens)
    width = int(preprocessor.output.shape[-1])
    inputs = {name: keras.Input(shape=(), dtype=t.dtype, name=name)
              for name, t in preprocessor.input.items()}  # fmt: skip
    features = preprocessor(inputs)
    if parsed.kind == "function":
        body = _call_user_function(
            parsed.target, width=width, task=task, stats=stats, preprocessor=preprocessor
        )
        outputs = keras.layers.Activation("linear", dtype="float32", name="prediction")(
            body(features)
        )
    else:
        outputs = _built_in(parsed, features, task=task, dropout=dropout)
    return keras.Model(inputs=inputs, outputs=outputs, name=f"tfstream_{parsed.kind}")


def _built_in(parsed: ModelSpec, features, *, task: str, dropout: float):
    import keras

    activation = "sigmoid" if task == "binary" else None
    deep = features
    for i, width in enumerate(parsed.widths):
        deep = keras.layers.Dense(width, activation="relu", name=f"hidden_{i}")(deep)
        if dropout:
            deep = keras.layers.Dropout(dropout, name=f"dropout_{i}")(deep)
    if parsed.kind == "wide_deep":
        wide = keras.layers.Dense(1, name="wide")(features)
        deep = keras.layers.Dense(1, name="deep")(deep)
        logit = keras.layers.Add(name="wide_plus_deep")([wide, deep])
        # The output layer is float32 whatever the precision policy: a stable sigmoid/loss.
        return keras.layers.Activation(activation or "linear", dtype="float32", name="prediction")(
            logit
        )
    return keras.layers.Dense(1, activation=activation, dtype="float32", name="prediction")(deep)


def _call_user_function(target: str, **available):
    import keras

    function = load_function(target)
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        parameters = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    kwargs = {k: v for k, v in available.items() if takes_all or k in parameters}
    try:
        model = function(**kwargs)
    except Exception as error:
        raise ConfigError(
            f"`model.spec` {target!r}: the function raised {type(error).__name__}: "
            f"{' '.join(str(error).split())}. It is called with the keyword arguments it "
            f"accepts among {sorted(available)}."
        ) from None
    if not isinstance(model, keras.Model):
        raise ConfigError(
            f"`model.spec` {target!r}: expected the function to return a keras.Model; "
            f"received {type(model).__name__}."
        )
    return model
