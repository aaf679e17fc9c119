"""Warmup records: ``assets.extra/tf_serving_warmup_requests`` of a version directory.

TF Serving replays this file (a TFRecord file of ``tensorflow.serving.PredictionLog`` protos)
when it loads a version, so the first real request does not pay for graph initialisation
(lookup tables included). :func:`write_warmup` writes one ``PredictRequest`` per signature,
built with the ``tensorflow-serving-api`` protos.

Example:

>>> write_warmup(path, {"f0": "float32", "city": "string"})    # doctest: +SKIP
>>> [r.predict_log.request.model_spec.signature_name for r in read_warmup(path)]  # doctest: +SKIP
['serving_default', 'serving_tf_example']
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np

__all__ = ["WARMUP_FILE", "read_warmup", "warmup_columns", "write_warmup"]

#: Where TF Serving looks for warmup requests, relative to a version directory.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def warmup_columns(features: Mapping[str, str], rows=None, *, max_rows: int = 8) -> dict:
    """``{feature: numpy array}`` of at most ``max_rows`` warmup rows.

    Args:
        features: ``{name: dtype}`` of the signature.
        rows: a list of ``{feature: value}`` dicts, a dict of columns, a pandas or polars
            DataFrame, a ``ts.Source`` (its first chunk), or None for one synthetic row (0 for
            numbers, ``""`` for strings).
        max_rows: keep the first rows only.

    Raises:
        ValueError: a feature is missing from the rows, or there are no rows.
    """
    if rows is None:
        return {n: _column([("" if d == "string" else 0)], d, n) for n, d in features.items()}
    if hasattr(rows, "iter_chunks") and hasattr(rows, "schema"):  # a ts.Source
        rows = next(iter(rows.iter_chunks()), None)
        if rows is None:
            raise ValueError("`warmup`: the source has no rows.")
    if isinstance(rows, (list, tuple)):
        if not rows or not all(isinstance(r, Mapping) for r in rows):
            raise ValueError(
                "`warmup` as a list must hold {feature: value} dicts, one per row. "
                f"Received: {str(rows)[:100]}"
            )
        rows = rows[:max_rows]
        columns = {n: [r.get(n, _MISSING) for r in rows] for n in features}
    elif isinstance(rows, Mapping) or hasattr(rows, "columns"):  # columns or a DataFrame
        present = set(rows.keys()) if isinstance(rows, Mapping) else set(rows.columns)
        columns = {n: (list(np.asarray(rows[n])[:max_rows]) if n in present else [_MISSING])
                   for n in features}  # fmt: skip
    else:
        raise TypeError(
            "`warmup` must be rows ({feature: value} dicts), a dict of columns, a DataFrame "
            f"or a ts.Source. Received: {type(rows).__name__}"
        )
    missing = sorted(n for n, values in columns.items() if any(v is _MISSING for v in values))
    if missing:
        raise ValueError(f"`warmup` rows lack features the signature takes: {missing}.")
    return {n: _column(columns[n], features[n], n) for n in features}


def write_warmup(path, features: Mapping[str, str], rows=None, *, max_rows: int = 8) -> str:
    """Writes ``path`` (a TFRecord file of ``PredictionLog``) with one ``PredictRequest`` for
    ``serving_default`` (the rows as raw features) and one for ``serving_tf_example`` (the
    same rows as serialized ``tf.train.Example``). Returns ``path``."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    from tfstream.export.signatures import EXAMPLES_INPUT

    columns = warmup_columns(features, rows, max_rows=max_rows)
    raw = predict_pb2.PredictRequest()
    raw.model_spec.signature_name = "serving_default"
    for name, values in columns.items():
        raw.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.as_dtype(features[name])))
    examples = predict_pb2.PredictRequest()
    examples.model_spec.signature_name = "serving_tf_example"
    serialized = [_example(columns, features, i) for i in range(len(next(iter(columns.values()))))]
    examples.inputs[EXAMPLES_INPUT].CopyFrom(tf.make_tensor_proto(serialized, dtype=tf.string))
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    with tf.io.TFRecordWriter(os.fspath(path)) as writer:
        for request in (raw, examples):
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return os.fspath(path)


def read_warmup(path) -> list:
    """The ``PredictionLog`` records of a warmup file."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(os.fspath(path)).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record)
        logs.append(log)
    return logs


_MISSING = object()


def _column(values, dtype: str, name: str) -> np.ndarray:
    try:
        if dtype == "string":
            return np.array([v if isinstance(v, bytes) else str(v) for v in values], dtype=object)
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`warmup` column {name!r} does not convert to {dtype}: {error}") from None


def _example(columns, features, i: int) -> bytes:
    import tensorflow as tf

    feature = {}
    for name, dtype in features.items():
        value = columns[name][i]
        if dtype == "string":
            data = value if isinstance(value, bytes) else str(value).encode()
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
        elif dtype == "int64":
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
        elif not math.isnan(float(value)):  # a missing float is left out: parsed as NaN
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
