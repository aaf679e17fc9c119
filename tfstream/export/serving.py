"""TF Serving's REST ``predict`` bodies, answered locally with a loaded SavedModel.

:func:`predict` answers a TF Serving REST ``:predict`` body with a loaded SavedModel the way
TF Serving's REST API does (see https://www.tensorflow.org/tfx/serving/api_rest):

- row format ``{"instances": [{"f0": 1.5, "city": "Oslo"}, ...]}`` ->
  ``{"predictions": [...]}``, one entry per row: the row's value when the signature has one
  output, else ``{output: value}``;
- columnar format ``{"inputs": {"f0": [1.5, ...], "city": [...]}}`` ->
  ``{"outputs": value}`` (one output) or ``{"outputs": {output: value}}``;
- ``"signature_name"`` (default ``serving_default``); ``NaN``/``Infinity`` literals; strings as
  text or ``{"b64": "..."}``; outputs whose name ends in ``_bytes`` come back as
  ``{"b64": ...}``.

A bad request raises :class:`ServingError`, whose ``body()`` is TF Serving's error body
``{"error": "..."}``.

Example:

>>> loaded = load("savedmodels/churn")                                   # doctest: +SKIP
>>> predict(loaded, {"instances": [{"f0": 1.0, "city": "Oslo"}]})        # doctest: +SKIP
{'predictions': [[0.73]]}
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
from collections.abc import Mapping

import numpy as np

__all__ = [
    "ServingError",
    "load",
    "predict",
    "resolve_version_dir",
]

_OUTPUT_ORDER = {"predictions": 0, "probabilities": 1, "class_ids": 2}
_JSON_TYPES = {bool: "Bool", int: "Number", float: "Number", str: "String", list: "Array"}


class ServingError(ValueError):
    """A request TF Serving would refuse; ``body()`` is the REST error body."""

    def __init__(self, message: str, *, status: int = 400):
        super().__init__(message)
        self.status = status

    def body(self) -> dict:
        return {"error": str(self)}


# -- REST predict ----------------------------------------------------------------------------


def resolve_version_dir(path) -> str:
    """``path`` itself when it holds ``saved_model.pb``; for a base directory, its highest
    version (as TF Serving serves it)."""
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if os.path.isdir(path):
        versions = sorted(
            (int(n) for n in os.listdir(path) if n.isdigit()),
            reverse=True,
        )
        for v in versions:
            candidate = os.path.join(path, str(v))
            if os.path.isfile(os.path.join(candidate, "saved_model.pb")):
                return candidate
    raise ServingError(
        f"Could not find a SavedModel in {path}: expected a directory with saved_model.pb, or "
        "a base directory of numbered versions.",
        status=404,
    )


def load(path):
    """``tf.saved_model.load`` of ``path`` (a version directory or a base directory)."""
    import tensorflow as tf

    return tf.saved_model.load(resolve_version_dir(path))


def predict(loaded, body) -> dict:
    """TF Serving's REST response to ``body`` (a dict, or JSON text/bytes).

    Args:
        loaded: a loaded SavedModel (:func:`load`).
        body: the request: ``{"instances": [...]}`` or ``{"inputs": ...}``, with an optional
            ``"signature_name"``.

    Raises:
        ServingError: a request TF Serving would refuse (malformed JSON, unknown signature,
            wrong or missing feature names, values of the wrong type, ragged batches).
    """
    import tensorflow as tf

    body = _parse_body(body)
    name = body.get("signature_name", "serving_default")
    if not isinstance(name, str):
        raise ServingError("'signature_name' must be a string.")
    if name not in loaded.signatures:
        raise ServingError(
            f'Serving signature name: "{name}" not found in signature def '
            f"(available: {sorted(loaded.signatures)})"
        )
    signature = loaded.signatures[name]
    specs = signature.structured_input_signature[1]
    if "instances" in body and "inputs" in body:
        raise ServingError("Not allowed to have both 'instances' and 'inputs' keys in request.")
    if "instances" in body:
        row_format = True
        inputs = _from_instances(body["instances"], specs)
    elif "inputs" in body:
        row_format = False
        inputs = _from_columns(body["inputs"], specs)
    else:
        raise ServingError("Missing 'inputs' or 'instances' key")
    try:
        outputs = signature(**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()})
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
        raise ServingError(_op_error(getattr(error, "message", None) or str(error))) from None
    # A loaded signature's output order varies from process to process: print a fixed one.
    order = sorted(outputs, key=lambda k: (_OUTPUT_ORDER.get(k, len(_OUTPUT_ORDER)), k))
    return _response({k: outputs[k].numpy() for k in order}, row_format=row_format)


def _op_error(message: str) -> str:
    """The op's own message of a TensorFlow runtime error, without the Python stack."""
    lines = message.splitlines()
    for i, line in enumerate(lines):
        if line.rstrip().endswith("defined at (most recent call last):"):
            rest = lines[i + 1 :]
            while rest and (not rest[0].strip() or rest[0][:1].isspace() or "<stack" in rest[0]):
                rest = rest[1:]
            lines = rest or lines
            break
    text = " ".join(" ".join(lines).split())
    return re.sub(r"\s*\[Op:__inference\w*\]$", "", text)[:1000]


def _parse_body(body) -> dict:
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as error:
            raise ServingError(f"JSON Parse error: {error.msg}. at offset: {error.pos}") from None
    if not isinstance(body, Mapping):
        raise ServingError(
            f"JSON Value: {_short(body)} Type: {_json_type(body)} is not of expected type: object"
        )
    return body


def _from_instances(instances, specs) -> dict:
    if not isinstance(instances, list):
        raise ServingError("'instances' must be a list.")
    if not instances:
        raise ServingError("'instances' must be a non-empty list.")
    names = list(specs)
    if not all(isinstance(row, Mapping) and not _is_b64(row, specs) for row in instances):
        if len(names) != 1:
            raise ServingError(
                f"The signature takes {len(names)} named inputs {names}: each element of "
                "'instances' must be a JSON object with these keys."
            )
        instances = [{names[0]: row} for row in instances]
    columns = {n: [] for n in names}
    for i, row in enumerate(instances):
        for key in row:
            if key not in specs:
                raise ServingError(
                    f"Failed to process element: {i} key: {key} of 'instances' list. Error: "
                    f"Invalid argument: JSON object: does not have named input: {key} "
                    f"(the signature's inputs: {names})"
                )
        for n in names:
            if n not in row:
                raise ServingError(
                    f"Failed to process element: {i} of 'instances' list. JSON object: "
                    f"{_short(row)} keys do not match the named inputs {names}: missing {n!r}"
                )
            columns[n].append(row[n])
    return {n: _tensor_value(columns[n], specs[n], n) for n in names}


def _is_b64(value, specs) -> bool:
    """``{"b64": ...}`` is a value, unless the signature has an input named ``b64``."""
    return set(value) == {"b64"} and "b64" not in specs


def _from_columns(inputs, specs) -> dict:
    names = list(specs)
    if not isinstance(inputs, Mapping) or _is_b64(inputs, specs):
        if len(names) != 1:
            raise ServingError(
                f"The signature takes {len(names)} named inputs {names}: 'inputs' must be a "
                "JSON object with these keys."
            )
        inputs = {names[0]: inputs}
    unknown = [k for k in inputs if k not in specs]
    if unknown:
        raise ServingError(
            f"JSON object: does not have named input: {unknown[0]} (the signature's inputs: "
            f"{names})"
        )
    missing = [n for n in names if n not in inputs]
    if missing:
        raise ServingError(f"Missing named input(s) {missing} in 'inputs' (expected: {names})")
    values = {n: _tensor_value(inputs[n], specs[n], n) for n in names}
    sizes = {n: (v.shape[0] if v.ndim else None) for n, v in values.items()}
    if len(set(sizes.values())) > 1:
        raise ServingError(f"Inputs have different batch sizes: {sizes}")
    return values


def _tensor_value(values, spec, name: str) -> np.ndarray:
    dtype = spec.dtype
    expected = "string" if dtype.name == "string" else dtype.name
    flat = []
    _flatten(values, flat)
    for value in flat:
        if not _accepts(value, dtype):
            raise ServingError(
                f"JSON Value: {_short(value)} Type: {_json_type(value)} is not of expected "
                f"type: {expected} (input {name!r})"
            )
    if dtype.name == "string":
        values = _decode_strings(values)
        array = np.array(values, dtype=object)
    else:
        try:
            array = np.array(values, dtype=dtype.as_numpy_dtype)
        except (ValueError, OverflowError) as error:
            raise ServingError(f"Input {name!r}: {error}") from None
    if array.dtype == object and dtype.name != "string":
        raise ServingError(f"Input {name!r}: the values do not form a rectangular tensor.")
    if not spec.shape.is_compatible_with(array.shape):
        raise ServingError(
            f"Input {name!r} has shape {list(array.shape)} but the signature expects "
            f"{spec.shape.as_list()} (None: any size)."
        )
    return array


def _flatten(values, out: list) -> None:
    if isinstance(values, list):
        for v in values:
            _flatten(v, out)
    else:
        out.append(values)


def _accepts(value, dtype) -> bool:
    if dtype.name == "string":
        return isinstance(value, str) or (
            isinstance(value, Mapping) and set(value) == {"b64"} and isinstance(value["b64"], str)
        )
    if dtype.is_bool:
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if dtype.is_integer:
        return isinstance(value, int)
    return True


def _decode_strings(values):
    if isinstance(values, list):
        return [_decode_strings(v) for v in values]
    if isinstance(values, Mapping):
        try:
            return base64.b64decode(values["b64"], validate=True)
        except ValueError:
            raise ServingError(f"Unable to base64 decode {_short(values)}") from None
    return values.encode("utf-8")


def _response(outputs: dict, *, row_format: bool) -> dict:
    values = {k: _json_value(v, k) for k, v in outputs.items()}
    if not row_format:
        if len(values) == 1:
            return {"outputs": next(iter(values.values()))}
        return {"outputs": values}
    sizes = {k: len(v) if isinstance(v, list) else None for k, v in values.items()}
    if None in sizes.values() or len(set(sizes.values())) > 1:
        raise ServingError(
            "Tensor name: has inconsistent batch size with other outputs: the row format needs "
            f"every output to have the same first dimension (received {sizes}); use the "
            "columnar format ('inputs')."
        )
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    n = next(iter(sizes.values()))
    return {"predictions": [{k: v[i] for k, v in values.items()} for i in range(n)]}


def _json_value(array: np.ndarray, name: str):
    if array.dtype == object or array.dtype.kind == "S":
        encode = name.endswith("_bytes")
        return _map_strings(array.tolist(), encode)
    if array.dtype.kind == "f" and array.dtype.itemsize < 8:
        # float32 prints as its shortest decimal (0.1, not 0.10000000149011612)
        return _map_floats(array.astype(np.float32).tolist(), np.float32)
    return array.tolist()


def _map_floats(value, kind):
    if isinstance(value, list):
        return [_map_floats(v, kind) for v in value]
    return float(str(kind(value))) if math.isfinite(value) else value


def _map_strings(value, encode: bool):
    if isinstance(value, list):
        return [_map_strings(v, encode) for v in value]
    if encode:
        return {"b64": base64.b64encode(value).decode("ascii")}
    return value.decode("utf-8", errors="replace")


def _json_type(value) -> str:
    if value is None:
        return "Null"
    if isinstance(value, Mapping):
        return "Object"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _short(value) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
