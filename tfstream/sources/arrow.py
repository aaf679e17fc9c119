"""Arrow -> numpy: the column conversion the Parquet, pandas and SQL sources share.

A column whose Arrow type family (:func:`arrow_family`) a dtype can be read from
(:data:`CASTABLE`) becomes a numpy array of that dtype (:func:`arrow_to_numpy`). Values the dtype
cannot hold come back as problems, and :func:`finish_chunk` rejects their rows, as ``on_error``
says, and returns the rest as a chunk.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tfstream.sources.base import Chunk
from tfstream.sources.report import RejectedRow, RowLedger
from tfstream.sources.schema import Column, SchemaError

__all__ = [
    "CASTABLE",
    "Problems",
    "arrow_family",
    "arrow_to_numpy",
    "finish_chunk",
    "infer_arrow_dtype",
]

#: Which Arrow type families (see :func:`arrow_family`) each dtype can be converted from.
CASTABLE = {
    "float32": frozenset({"numeric", "string", "null"}),
    "float64": frozenset({"numeric", "string", "null"}),
    "int64": frozenset({"numeric", "string", "temporal", "null"}),
    "string": frozenset({"numeric", "string", "temporal", "binary", "null"}),
}

#: A column's conversion problems: ``(row mask, reason)`` pairs; masked rows are rejected.
Problems = list[tuple[np.ndarray, str]]


def arrow_family(arrow_type) -> str:
    """``"numeric"``, ``"string"``, ``"binary"``, ``"temporal"``, ``"null"`` or ``"other"``.

    Columns of one family can replace each other between files without it being drift.
    """
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if pa.types.is_null(t):
        return "null"
    if (
        pa.types.is_boolean(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
    ):
        return "numeric"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    ):
        return "binary"
    if pa.types.is_temporal(t):
        return "temporal"
    return "other"


def infer_arrow_dtype(arrow_type, name: str = "column") -> str:
    """The dtype a column of ``arrow_type`` gets by default; :class:`SchemaError` (with a hint
    for ``schema=`` naming column ``name``) when there is none."""
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    family = arrow_family(t)
    if family in ("string", "null"):
        return "string"
    if family == "numeric" and not pa.types.is_decimal(t):
        if pa.types.is_floating(t):
            return "float64" if t == pa.float64() else "float32"
        return "int64"
    hints = {
        "numeric": f"Read it as a float with schema={{{name!r}: 'float64'}}.",
        "temporal": f"Read it as its epoch count with schema={{{name!r}: 'int64'}}, or as ISO "
        f"text with schema={{{name!r}: 'string'}}.",
        "binary": f"Decode it as UTF-8 text with schema={{{name!r}: 'string'}}.",
    }
    raise SchemaError(hints.get(family, "No dtype of tfstream can hold it."))


def arrow_to_numpy(array, column: Column) -> tuple[np.ndarray, Problems]:
    """Converts an Arrow array to ``column``'s numpy dtype.

    Missing values become NaN (floats) or ``""`` (strings). Rows that the dtype cannot hold (a
    missing ``int64``, a string that is not a number, a fractional float in an ``int64``
    column) are returned as problems: ``(row mask, reason)``; their values are placeholders.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        chunks = [_decoded(c) for c in array.chunks]
        array = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)
    array = _decoded(array)
    name, dtype, n = column.name, column.dtype, len(array)
    family = arrow_family(array.type)
    if family not in CASTABLE[dtype]:
        raise SchemaError(f"Column {name!r}: Arrow type {array.type} cannot be read as {dtype!r}.")
    if family == "null":
        array = pa.nulls(n, pa.float64())
    if dtype == "string":
        if family != "string":
            array = array.cast(pa.string())
        if array.null_count:
            array = pc.fill_null(array, "")
        return array.to_numpy(zero_copy_only=False), []
    if family == "string":
        return _parse_strings(array, column)
    if family == "temporal":
        array = array.cast(pa.int32() if array.type.bit_width == 32 else pa.int64())
    elif pa.types.is_boolean(array.type):
        array = array.cast(pa.int64())
    elif pa.types.is_decimal(array.type):
        array = array.cast(pa.float64())
    if pa.types.is_floating(array.type):
        return _from_floats(array.to_numpy(zero_copy_only=False), column)
    problems: Problems = []
    if dtype == "int64":
        if pa.types.is_uint64(array.type):
            over = pc.fill_null(pc.greater(array, np.iinfo(np.int64).max), False)
            if pc.any(over).as_py():
                problems.append((over.to_numpy(zero_copy_only=False), _out_of_range(name)))
                array = pc.if_else(over, 0, array)
        if array.null_count:
            problems.append((array.is_null().to_numpy(zero_copy_only=False), _missing_int(name)))
            array = pc.fill_null(array, 0)
        return array.cast(pa.int64(), safe=False).to_numpy(zero_copy_only=False), problems
    # Integers to floats: numpy turns nulls into NaN (the array comes back as float64).
    return array.to_numpy(zero_copy_only=False).astype(dtype, copy=False), problems


def finish_chunk(
    ledger: RowLedger,
    columns: dict[str, tuple[np.ndarray, Problems]],
    n: int,
    locate: Callable[[int], tuple[str, int, str | None]],
) -> Chunk:
    """Rejects the rows that have problems (in row order) and returns the rest as a chunk.

    ``locate(i)`` gives ``(file, record, text)`` of row ``i`` for the rejection report; it is
    only called for rejected rows.
    """
    problems = [p for _, column_problems in columns.values() for p in column_problems]
    if not problems:
        ledger.ok(n)
        return {name: values for name, (values, _) in columns.items()}
    bad = np.logical_or.reduce([mask for mask, _ in problems])
    for i in np.flatnonzero(bad):
        reason = next(reason for mask, reason in problems if mask[i])
        file, record, text = locate(int(i))
        ledger.reject(RejectedRow(file, None, record, reason, text))
    keep = ~bad
    ledger.ok(int(np.count_nonzero(keep)))
    return {name: values[keep] for name, (values, _) in columns.items()}


def _from_floats(values: np.ndarray, column: Column) -> tuple[np.ndarray, Problems]:
    if column.dtype != "int64":
        return values.astype(column.dtype, copy=False), []
    missing = np.isnan(values)
    with np.errstate(invalid="ignore"):
        inexact = ~missing & ((values != np.trunc(values)) | (np.abs(values) >= 2.0**63))
    problems: Problems = []
    if missing.any():
        problems.append((missing, _missing_int(column.name)))
    if inexact.any():
        problems.append((inexact, _not_integer(column.name)))
    if problems:
        values = np.where(missing | inexact, 0, values)
    return values.astype(np.int64), problems


def _parse_strings(array, column: Column) -> tuple[np.ndarray, Problems]:
    """Text to numbers: an empty string or null is a missing value; unparsable text is a
    problem row."""
    import polars as pl
    import pyarrow.compute as pc

    name, dtype = column.name, column.dtype
    text = pl.from_arrow(array)
    present = ~pc.fill_null(pc.equal(array, ""), True).to_numpy(zero_copy_only=False)
    parsed = text.cast(pl.Int64 if dtype == "int64" else pl.Float64, strict=False)
    failed = present & parsed.is_null().to_numpy()
    problems: Problems = []
    if failed.any():
        problems.append((failed, f"column {name!r}: the value is not a valid {dtype}"))
    if dtype != "int64":
        return parsed.to_numpy().astype(dtype, copy=False), problems
    missing = ~present
    if missing.any():
        problems.insert(0, (missing, _missing_int(name)))
    return parsed.fill_null(0).to_numpy().astype(np.int64, copy=False), problems


def _decoded(array):
    import pyarrow as pa

    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


def _missing_int(name: str) -> str:
    return (
        f"missing value in int64 column {name!r} (declare it float in "
        f"schema={{{name!r}: 'float32'}} to keep such rows with NaN)"
    )


def _not_integer(name: str) -> str:
    return (
        f"column {name!r}: the value is not an integer, so int64 cannot hold it (declare it "
        f"float in schema={{{name!r}: 'float32'}})"
    )


def _out_of_range(name: str) -> str:
    return f"column {name!r}: the value is beyond the int64 range"
