"""Statistics -> Keras: normalization layers and a preprocessor model.

This module imports Keras (and TensorFlow); ``tfstream.stats`` imports it only when a
``Stats`` method needs it, so computing statistics never pays for TensorFlow.

Every layer here has an explicit dtype, so a mixed-precision global policy
(``keras.mixed_precision.set_global_policy("mixed_float16")``) does not turn preprocessing into
float16: ``normalization``/``rescaling`` are float32; the preprocessor standardises in float64
(so a column like ``1e6 + N(0, 1)`` loses nothing to float32 rounding of its mean) and returns
float32.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import keras
import numpy as np
from keras import ops

__all__ = [
    "Buckets",
    "Impute",
    "Standardize",
    "normalization",
    "preprocessor",
    "rescaling",
]

NUMERIC_MODES = ("standardize", "min_max", "none")
IMPUTE_MODES = ("mean", "median", "zero")
CATEGORICAL_MODES = ("one_hot", "index")


def _numeric_columns(stats, columns) -> list[str]:
    if columns is None:
        return [n for n in stats.feature_names if stats[n].kind == "numeric"]
    columns = [columns] if isinstance(columns, str) else list(columns)
    for name in columns:
        if stats[name].kind != "numeric":
            raise ValueError(f"Column {name!r} is a string column; it has no mean or variance.")
    return columns


def _moments(stats, columns) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    means, variances, lows, highs = [], [], [], []
    for name in columns:
        col = stats[name]
        if col.count == 0:
            raise ValueError(
                f"Column {name!r} has no finite value in the statistics "
                f"({col.nan_count} missing, {col.inf_count} infinite): it cannot be scaled. "
                "Leave it out with columns=[...]."
            )
        means.append(col.mean)
        variances.append(col.variance)
        lows.append(col.min)
        highs.append(col.max)
    return tuple(np.array(v, dtype=np.float64) for v in (means, variances, lows, highs))


def normalization(stats, columns=None):
    """``keras.layers.Normalization(mean=, variance=)`` for ``columns``, pinned to float32.

    The layer expects the columns stacked on the last axis, in the order given (a single name:
    a vector of that column). Keras divides by ``max(std, 1e-7)``; a constant column
    therefore maps to 0.
    """
    names = _numeric_columns(stats, columns)
    mean, variance, _, _ = _moments(stats, names)
    if isinstance(columns, str):
        mean, variance = mean[0], variance[0]
    return keras.layers.Normalization(mean=mean, variance=variance, dtype="float32")


def rescaling(stats, columns=None):
    """``keras.layers.Rescaling`` mapping each column's ``[min, max]`` to ``[0, 1]``, pinned to
    float32 (a constant column maps to 0)."""
    names = _numeric_columns(stats, columns)
    _, _, low, high = _moments(stats, names)
    span = np.where(high > low, high - low, 1.0)
    scale, offset = 1.0 / span, -low / span
    if isinstance(columns, str):
        scale, offset = float(scale[0]), float(offset[0])
    else:
        scale, offset = scale.astype("float32"), offset.astype("float32")
    return keras.layers.Rescaling(scale=scale, offset=offset, dtype="float32")


# -- layers ----------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="tfstream")
class Impute(keras.layers.Layer):
    """Replaces NaN in a ``[batch, n]`` tensor by ``fill`` (one value per column), in float64."""

    def __init__(self, fill, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(**kwargs)
        self.fill = [float(v) for v in np.ravel(fill)]

    def call(self, x):
        x = ops.cast(x, "float64")
        fill = ops.convert_to_tensor(np.array(self.fill), dtype="float64")
        return ops.where(ops.isnan(x), ops.broadcast_to(fill, ops.shape(x)), x)

    def compute_output_spec(self, x):
        return keras.KerasTensor(x.shape, dtype="float64")

    def get_config(self):
        return {**super().get_config(), "fill": self.fill}


@keras.saving.register_keras_serializable(package="tfstream")
class Standardize(keras.layers.Layer):
    """``(x - offset) * scale`` per column of a ``[batch, n]`` tensor, computed in float64 and
    returned as float32. ``offset=mean, scale=1/std`` standardises; ``offset=min,
    scale=1/(max - min)`` min-max scales."""

    def __init__(self, offset, scale, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(**kwargs)
        self.offset = [float(v) for v in np.ravel(offset)]
        self.scale = [float(v) for v in np.ravel(scale)]

    def call(self, x):
        offset = ops.convert_to_tensor(np.array(self.offset), dtype="float64")
        scale = ops.convert_to_tensor(np.array(self.scale), dtype="float64")
        return ops.cast((ops.cast(x, "float64") - offset) * scale, "float32")

    def compute_output_spec(self, x):
        return keras.KerasTensor(x.shape, dtype="float32")

    def get_config(self):
        return {**super().get_config(), "offset": self.offset, "scale": self.scale}


@keras.saving.register_keras_serializable(package="tfstream")
class Buckets(keras.layers.Layer):
    """One-hot buckets of a ``[batch]`` tensor: bucket ``i`` holds ``edges[i-1] <= x <
    edges[i]`` (as ``np.digitize``), compared in float64, returned as float32 ``[batch,
    len(edges) + 1]``. Keras' ``Discretization`` runs TF's ``Bucketize``, whose edges are
    float32: around 1e8 neighbouring quantiles round to the same number and every row lands in
    one bucket."""

    def __init__(self, edges, **kwargs):
        kwargs.setdefault("dtype", "float64")
        super().__init__(**kwargs)
        self.edges = [float(e) for e in edges]

    def call(self, x):
        edges = ops.convert_to_tensor(np.array(self.edges, dtype=np.float64), dtype="float64")
        above = ops.cast(ops.expand_dims(ops.cast(x, "float64"), -1) >= edges, "int32")
        index = ops.sum(above, axis=-1)
        return ops.one_hot(index, len(self.edges) + 1, dtype="float32")

    def compute_output_spec(self, x):
        return keras.KerasTensor((*x.shape, len(self.edges) + 1), dtype="float32")

    def get_config(self):
        return {**super().get_config(), "edges": self.edges}


# -- the preprocessor ------------------------------------------------------------------------


def preprocessor(
    stats,
    columns: Sequence[str] | None = None,
    *,
    numeric: str = "standardize",
    impute: str = "mean",
    missing_indicator: bool | Sequence[str] = False,
    categorical: str = "one_hot",
    max_tokens: int | None = None,
    min_frequency: int = 1,
    num_oov_indices: int = 1,
    discretize: int | Mapping[str, int] | None = None,
    name: str = "tfstream_preprocessor",
):
    """A Keras model from the raw feature dict a source yields to model-ready tensors.

    Numeric columns are stacked, missing values (NaN) imputed, then standardised (or min-max
    scaled), in float64, and returned as float32. String columns go through ``StringLookup``
    (``num_oov_indices`` buckets for tokens outside the vocabulary and for missing values) to a
    one-hot block. ``discretize`` adds one-hot quantile buckets of numeric columns. All parts
    are concatenated into one ``float32`` tensor ``[batch, width]``.

    With ``categorical="index"``, string columns are not one-hot encoded: the model returns a
    dict, ``{"dense": float32 [batch, width], "<col>": int64 [batch]}``, the indices ready for
    a ``keras.layers.Embedding(input_dim=len(vocabulary) + num_oov_indices, ...)``.

    Args:
        stats: the :class:`~tfstream.Stats` to build from.
        columns: the feature columns, in this order (default: every column but the label).
        numeric: ``"standardize"`` (``(x - mean) / std``), ``"min_max"`` (to ``[0, 1]``) or
            ``"none"``. A constant column maps to 0.
        impute: fill for missing numbers: ``"mean"``, ``"median"`` (from the quantile sketch)
            or ``"zero"``. Imputed values are imputed before scaling, so ``"mean"`` gives 0.
        missing_indicator: True (every numeric column) or a list of columns: append a 0/1
            column per numeric column flagging a missing value.
        categorical: ``"one_hot"`` or ``"index"`` (see above).
        max_tokens, min_frequency: limit each vocabulary (most frequent first).
        num_oov_indices: buckets for unseen tokens (and missing values).
        discretize: buckets per numeric column from its quantiles: an int for every numeric
            column, or ``{column: buckets}``.
        name: the model's name.

    Returns:
        A ``keras.Model`` taking ``{column: Tensor[batch]}`` (extra keys are ignored by Keras
        when calling with a dict). It saves as ``.keras`` and exports as a SavedModel.
    """
    _check_choice("numeric", numeric, NUMERIC_MODES)
    _check_choice("impute", impute, IMPUTE_MODES)
    _check_choice("categorical", categorical, CATEGORICAL_MODES)
    names = list(stats.feature_names if columns is None else columns)
    for col in names:
        stats[col]  # noqa: B018 - raises a KeyError naming the columns when absent
    numeric_names = [n for n in names if stats[n].kind == "numeric"]
    string_names = [n for n in names if stats[n].kind == "string"]
    indicators = _indicators(missing_indicator, numeric_names)
    buckets = _buckets(discretize, numeric_names)

    inputs = {n: keras.Input(shape=(), dtype=_input_dtype(stats[n].dtype), name=n) for n in names}
    dense_parts = []
    if numeric_names:
        mean, variance, low, high = _moments(stats, numeric_names)
        columns64 = [ops.expand_dims(ops.cast(inputs[n], "float64"), -1) for n in numeric_names]
        stacked = (
            columns64[0]
            if len(columns64) == 1
            else keras.layers.Concatenate(axis=-1, dtype="float64", name="numeric_stack")(columns64)
        )
        imputed = Impute(_fill(stats, numeric_names, impute, mean), name="impute")(stacked)
        if numeric == "standardize":
            std = np.sqrt(variance)
            offset, scale = mean, 1.0 / np.where(std > 0, std, 1.0)
        elif numeric == "min_max":
            span = high - low
            offset, scale = low, 1.0 / np.where(span > 0, span, 1.0)
        else:
            offset, scale = np.zeros_like(mean), np.ones_like(mean)
        dense_parts.append(Standardize(offset, scale, name=numeric)(imputed))
        if indicators:
            flags = [ops.isnan(ops.cast(inputs[n], "float64")) for n in indicators]
            dense_parts.append(ops.cast(ops.stack(flags, axis=-1), "float32"))
        for n, k in buckets.items():
            i = numeric_names.index(n)
            layer = Buckets(_boundaries(stats[n], k), name=f"{n}_buckets")
            dense_parts.append(layer(imputed[:, i]))
    indices = {}
    for n in string_names:
        vocab = stats[n].vocabulary(max_tokens=max_tokens, min_frequency=min_frequency)
        mode = "one_hot" if categorical == "one_hot" else "int"
        lookup = keras.layers.StringLookup(
            vocabulary=vocab or None,
            num_oov_indices=num_oov_indices,
            output_mode=mode,
            name=f"{n}_lookup",
        )
        if not vocab:  # Keras refuses an empty list; an empty vocabulary is all OOV
            lookup.set_vocabulary([])
        out = lookup(inputs[n])
        if mode == "one_hot":
            dense_parts.append(ops.cast(out, "float32"))
        else:
            indices[n] = out
    if not dense_parts and not indices:
        raise ValueError("The preprocessor has no columns to encode.")
    if len(dense_parts) == 1:
        dense = dense_parts[0]
    elif dense_parts:
        dense = keras.layers.Concatenate(axis=-1, dtype="float32", name="features")(dense_parts)
    else:
        dense = None
    if categorical == "index":
        outputs = dict(indices)
        if dense is not None:
            outputs["dense"] = dense
    else:
        outputs = dense
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def _check_choice(arg, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"`{arg}` must be one of {choices}. Received: {arg}={value!r}")


def _input_dtype(dtype: str) -> str:
    return "string" if dtype == "string" else dtype


def _indicators(missing_indicator, numeric_names) -> list[str]:
    if missing_indicator is True:
        return list(numeric_names)
    if not missing_indicator:
        return []
    chosen = [missing_indicator] if isinstance(missing_indicator, str) else list(missing_indicator)
    unknown = [n for n in chosen if n not in numeric_names]
    if unknown:
        raise ValueError(
            f"`missing_indicator` names columns that are not numeric features: {unknown}"
        )
    return chosen


def _buckets(discretize, numeric_names) -> dict[str, int]:
    if discretize is None:
        return {}
    if isinstance(discretize, Mapping):
        unknown = [n for n in discretize if n not in numeric_names]
        if unknown:
            raise ValueError(f"`discretize` names columns that are not numeric features: {unknown}")
        chosen = dict(discretize)
    else:
        chosen = {n: discretize for n in numeric_names}
    for n, k in chosen.items():
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ValueError(f"`discretize` needs an integer >= 2 buckets. Received {n}: {k!r}")
    return chosen


def _boundaries(col, buckets: int) -> list[float]:
    qs = col.quantiles([i / buckets for i in range(1, buckets)])
    return sorted({float(q) for q in qs if math.isfinite(q)})


def _fill(stats, names, impute, mean) -> np.ndarray:
    if impute == "mean":
        return mean
    if impute == "zero":
        return np.zeros_like(mean)
    return np.array([stats[n].quantiles(0.5) for n in names], dtype=np.float64)
