"""Column kinds and dtypes, and inference of a schema from sampled values.

A schema is an ordered ``dict[str, Column]``. Every source normalises what it reads to numpy
arrays of the column's dtype before anything reaches TensorFlow:

* ``float32`` / ``float64``: missing values are NaN.
* ``int64``: no missing values are representable; a missing value is a bad row (declare the
  column ``float32`` in ``schema=`` to keep such rows with NaN).
* ``string``: missing values become the source's ``missing_string`` (``""`` by default).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

__all__ = ["Column", "DTYPES", "SchemaError", "SchemaDriftError", "normalize_schema"]

#: The dtypes a column may have, mapped to their kind.
DTYPES = {"float32": "numeric", "float64": "numeric", "int64": "numeric", "string": "string"}


class SchemaError(ValueError):
    """A schema (given or inferred) cannot describe the data."""


class SchemaDriftError(SchemaError):
    """Two files of one source disagree on their columns or column types."""


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a source.

    Args:
        name: column name, as in the file header or the record's feature key.
        kind: ``"numeric"`` or ``"string"``.
        dtype: ``"float32"``, ``"float64"``, ``"int64"`` or ``"string"``.
    """

    name: str
    kind: str
    dtype: str

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise SchemaError(
                f"Column {self.name!r}: dtype must be one of {sorted(DTYPES)}. "
                f"Received: dtype={self.dtype!r}"
            )
        if DTYPES[self.dtype] != self.kind:
            raise SchemaError(
                f"Column {self.name!r}: dtype {self.dtype!r} is of kind {DTYPES[self.dtype]!r}, "
                f"not {self.kind!r}."
            )

    @classmethod
    def of(cls, name: str, dtype: str) -> Column:
        if dtype not in DTYPES:
            raise SchemaError(
                f"Column {name!r}: dtype must be one of {sorted(DTYPES)}. Received: {dtype!r}"
            )
        return cls(name, DTYPES[dtype], dtype)

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(object) if self.dtype == "string" else np.dtype(self.dtype)

    @property
    def tf_dtype(self):
        import tensorflow as tf

        return tf.string if self.dtype == "string" else tf.as_dtype(self.dtype)


def normalize_schema(schema: Mapping[str, str | Column] | None) -> dict[str, Column]:
    """Turns a user's ``{column: dtype}`` override into ``{column: Column}``."""
    if schema is None:
        return {}
    if not isinstance(schema, Mapping):
        raise TypeError(
            f"`schema` must be a dict mapping column names to dtypes such as "
            f"{{'price': 'float64'}}. Received: {type(schema).__name__}"
        )
    out = {}
    for name, spec in schema.items():
        out[name] = spec if isinstance(spec, Column) else Column.of(name, spec)
    return out


def merge_inferred(a: str | None, b: str | None) -> str | None:
    """Joins two inferred dtypes of one column; None means "no evidence" (all values missing).

    int64 and float widen to the float; numeric and string do not mix (returns ``"conflict"``).
    """
    if a is None or a == b:
        return b
    if b is None:
        return a
    if "string" in (a, b):
        return "conflict"
    return "float64" if "float64" in (a, b) else "float32"
