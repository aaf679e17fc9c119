"""In-memory and out-of-core tables: DataFrames, DataFrame chunk streams and numpy arrays.

``from_pandas`` takes what people already have: one DataFrame, a list of them, a
``pd.read_csv(..., chunksize=...)`` reader or any generator of DataFrames, a zero-argument
callable that returns one of those (so every epoch gets a fresh stream), or numpy arrays — a
dict of 1-D arrays or a 2-D array, ``np.memmap`` included.

How the input is read:

1. The schema comes from the first chunk, which is peeked at construction and still yielded.
   Later chunks are checked against it: a missing or extra column, or a numeric column that
   became text (``"chunk 0"`` vs ``"chunk 5"``), is a :class:`SchemaDriftError`. A chunk
   whose column is entirely missing is compatible with anything (``read_csv`` types such a
   column float64).
2. Each chunk is cut into slices of at most ``chunk_rows`` rows; slices are views, so a big
   DataFrame or a memmap is never copied whole. Small chunks are joined up to ``chunk_rows``.
3. Columns are converted as the Parquet source converts them (via Arrow): missing values
   become NaN (floats) or ``""`` (strings); a missing value in an ``int64`` column rejects the
   row as ``on_error`` says, with its running row index.

The whole input is one unit, so ``dataset(input_context=...)`` shards it by row.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence

import numpy as np

from tfstream.sources.arrow import CASTABLE, arrow_to_numpy, finish_chunk
from tfstream.sources.base import Chunk, Source
from tfstream.sources.schema import Column, SchemaDriftError, SchemaError, normalize_schema

__all__ = ["PandasSource", "from_pandas"]

_DEFAULT_CHUNK = 65_536


def from_pandas(
    chunks_or_frame,
    *,
    label: str | None = None,
    columns: Sequence[str] | None = None,
    schema: Mapping[str, str] | None = None,
    chunk_rows: int = _DEFAULT_CHUNK,
    on_error: str = "raise",
    quarantine_path=None,
) -> PandasSource:
    """Streams DataFrames, DataFrame chunks or numpy arrays into ``tf.data``.

    Args:
        chunks_or_frame: one of

            * a ``pandas.DataFrame``;
            * a list or tuple of DataFrames (re-readable: any number of epochs);
            * a one-shot iterator of DataFrames: a generator, or a
              ``pd.read_csv(..., chunksize=...)`` reader. It can be read once: a second pass
              (``epochs=2``, a second dataset, several input pipelines) raises;
            * a zero-argument callable returning any of the above, called once per pass
              (``lambda: pd.read_csv(path, chunksize=100_000)``): re-readable;
            * a dict of equal-length 1-D numpy arrays, or a 2-D numpy array whose columns are
              named by ``columns`` (default ``"x0"``, ``"x1"``, ...). ``np.memmap`` arrays are
              read one slice at a time.
        label: the label column; datasets then yield ``(features, label)``.
        columns: for DataFrames and dicts, read only these columns (the label is added when
            not listed); for a 2-D array, the names of its columns.
        schema: ``{column: "float32" | "float64" | "int64" | "string"}`` to override the
            dtypes taken from the first chunk: floats (nullable ``Float64`` too) ``float32``,
            integers and booleans (nullable ``Int64``/``boolean`` too) ``int64``, object,
            string and categorical columns ``string``. Datetime columns must be left out or
            given ``"int64"`` (epoch count in the column's unit) or ``"string"``.
        chunk_rows: the most rows handed to ``tf.data`` at once; memory grows with it.
        on_error: what to do with a row that has a missing value in an ``int64`` column (or
            a value its dtype cannot hold): ``"raise"``, ``"skip"`` (count it in
            ``report()``) or ``"quarantine"`` (count it and append it to a JSON-lines file).
            Rows are reported as ``from_pandas chunk <i>, record <running row index>``.
        quarantine_path: where quarantined rows go.

    Returns:
        A :class:`PandasSource`.

    Raises:
        TypeError: the input is of none of the kinds above.
        SchemaError: a column has a dtype that cannot be fed to TensorFlow, or ``columns``,
            ``schema`` or ``label`` name a column that does not exist.
        SchemaDriftError: a later chunk's columns disagree with the first chunk's.

    Example:

    >>> import numpy as np
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"x": [0.5, 1.5, np.nan], "city": ["a", None, "c"], "y": [0, 1, 0]})
    >>> src = from_pandas(frame, label="y")
    >>> {name: col.dtype for name, col in src.schema.items()}
    {'x': 'float32', 'city': 'string', 'y': 'int64'}
    >>> features, label = next(iter(src.dataset(3)))
    >>> features["city"].numpy().tolist(), label.numpy().tolist()
    ([b'a', b'', b'c'], [0, 1, 0])
    """
    return PandasSource(
        chunks_or_frame,
        label=label,
        columns=columns,
        schema=schema,
        chunk_rows=chunk_rows,
        on_error=on_error,
        quarantine_path=quarantine_path,
    )


class PandasSource(Source):
    """See :func:`tfstream.from_pandas`."""

    def __init__(
        self,
        chunks_or_frame,
        *,
        label=None,
        columns=None,
        schema=None,
        chunk_rows=_DEFAULT_CHUNK,
        on_error="raise",
        quarantine_path=None,
    ):
        super().__init__(label=label, on_error=on_error, quarantine_path=quarantine_path)
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise ValueError(
                f"`chunk_rows` must be a positive integer. Received: chunk_rows={chunk_rows!r}"
            )
        self._chunk_rows = chunk_rows
        self._lock = threading.Lock()
        data = chunks_or_frame
        self._factory, self._one_shot, items = _plan(data)
        first = next(items, None)
        if first is None:
            raise ValueError(
                "`from_pandas` needs at least one DataFrame or array. Received an input that "
                "yielded none."
            )
        self._pending: Iterator | None = itertools.chain([first], items)
        self._array_names = None
        if columns is not None and isinstance(first, np.ndarray) and first.ndim == 2:
            self._array_names = _array_names(columns, first)  # names, not a selection
            columns = None
        # Only the first chunk's names and dtypes are kept, not the chunk itself.
        block = _as_block(first, 0, self._array_names)
        self._ref_names = block.names
        self._ref_dtypes = {name: block.dtype(name) for name in block.names}
        self._columns_given = columns is not None
        overrides = normalize_schema(schema)
        unknown = [n for n in overrides if n not in self._ref_names]
        if unknown:
            raise SchemaError(
                f"`schema` names columns that the first chunk does not have: {unknown}. "
                f"Its columns are {self._ref_names}"
            )
        self._overrides = overrides
        self._schema = {}
        for name in self._select(columns, label):
            if name in overrides:
                if _family(self._ref_dtypes[name]) not in CASTABLE[overrides[name].dtype]:
                    raise SchemaError(
                        f"Column {name!r} has dtype {self._ref_dtypes[name]}, which cannot be "
                        f"read as {overrides[name].dtype!r}. Leave it out with `columns=`."
                    )
                self._schema[name] = Column.of(name, overrides[name].dtype)
            else:
                self._schema[name] = Column.of(name, self._infer(name))
        self._resolve_label()
        if isinstance(data, Collection) and not _is_single(data):
            for index, item in enumerate(data):  # a list: check every chunk now (cheap)
                self._check(_as_block(item, index, self._array_names), index)

    def _units(self):
        return ["from_pandas"]

    def _read_unit(self, unit) -> Iterator[Chunk]:
        pending: list[Chunk] = []
        rows = 0
        for chunk in self._slices():
            n = _length(chunk)
            if pending and rows + n > self._chunk_rows:
                yield _join(pending)
                pending, rows = [], 0
            pending.append(chunk)
            rows += n
        if pending:
            yield _join(pending)

    # -- construction ------------------------------------------------------------------------

    def _select(self, columns, label) -> list[str]:
        names = self._ref_names
        if columns is None:
            return list(names)
        if isinstance(columns, str):
            columns = [columns]
        wanted = list(dict.fromkeys([str(c) for c in columns] + ([label] if label else [])))
        missing = [c for c in wanted if c not in names]
        if missing:
            raise SchemaError(
                f"`columns` names columns that the first chunk does not have: {missing}. "
                f"Its columns are {names}"
            )
        return [c for c in names if c in wanted]

    def _infer(self, name: str) -> str:
        dtype = self._ref_dtypes[name]
        inferred = _infer_dtype(dtype)
        if inferred is None:
            others = [
                n
                for n in self._ref_names
                if n != name and (n in self._overrides or _infer_dtype(self._ref_dtypes[n]))
            ]
            raise SchemaError(
                f"Column {name!r} has dtype {dtype}, which tfstream does not read as it is. "
                f"Leave it out with columns={others}, or read it with "
                f"schema={{{name!r}: 'int64'}} (datetimes: the epoch count in their unit) or "
                f"schema={{{name!r}: 'string'}} (ISO text)."
            )
        return inferred

    # -- reading -----------------------------------------------------------------------------

    def _start_pass(self) -> Iterator:
        with self._lock:
            if self._pending is not None:
                items, self._pending = self._pending, None
                return items
            if self._one_shot:
                raise RuntimeError(
                    "from_pandas was given a one-shot iterator (a generator or a "
                    "pd.read_csv(..., chunksize=...) reader), and an earlier pass has already "
                    "exhausted it, so it cannot be read again (epochs > 1, a second dataset "
                    "or iter_chunks() call, or several input pipelines). Pass a list of "
                    "DataFrames, or a zero-argument callable that returns a fresh iterator, "
                    "e.g. from_pandas(lambda: pd.read_csv(path, chunksize=100_000))."
                )
        return _items(self._factory())

    def _slices(self) -> Iterator[Chunk]:
        """Every chunk of one pass, cut into slices of at most ``chunk_rows`` rows."""
        row = 0
        for index, item in enumerate(self._start_pass()):
            block = _as_block(item, index, self._array_names)
            self._check(block, index)
            for start in range(0, block.n, self._chunk_rows):
                stop = min(start + self._chunk_rows, block.n)
                chunk = self._convert(block, index, start, stop, row)
                row += stop - start
                if _length(chunk):
                    yield chunk

    def _convert(self, block: _Block, index: int, start: int, stop: int, row: int) -> Chunk:
        columns = {
            name: _to_numpy(block.column(name, start, stop), column)
            for name, column in self._schema.items()
        }

        def locate(i: int) -> tuple[str, int, str]:
            text = json.dumps(block.row(start + i), default=str, ensure_ascii=False)
            return f"from_pandas chunk {index}", row + i, text

        return finish_chunk(self._ledger, columns, stop - start, locate)

    def _check(self, block: _Block, index: int) -> None:
        """Raises :class:`SchemaDriftError` when ``block`` disagrees with chunk 0."""
        if index == 0:
            return
        names, ref = block.names, self._ref_names
        if self._columns_given:
            missing, extra = [n for n in self._schema if n not in names], []
        else:
            missing = [n for n in ref if n not in names]
            extra = [n for n in names if n not in ref]
        if missing or extra:
            raise SchemaDriftError(
                f"Schema drift: chunk {index} has columns {names}, but chunk 0 has {ref} "
                f"(missing in chunk {index}: {missing}; extra: {extra}). All chunks need the "
                "same columns."
            )
        for name, column in self._schema.items():
            family, ref_dtype = block.family(name), self._ref_dtypes[name]
            if name in self._overrides:
                ok = family in CASTABLE[column.dtype]
            else:
                ok = family == _family(ref_dtype)
            if not ok and not block.all_missing(name):
                raise SchemaDriftError(
                    f"Schema drift: column {name!r} is {block.dtype(name)} in chunk {index} but "
                    f"{ref_dtype} in chunk 0 (if chunk 0 has no value in it, its dtype was a "
                    "guess: read_csv types an empty column float64). Make the chunks agree, or "
                    f"set the column's dtype for all chunks, e.g. schema={{{name!r}: 'string'}}."
                )


# -- inputs ------------------------------------------------------------------------------------


class _Block:
    """One input chunk: named columns of equal length, sliced without copying."""

    def __init__(self, columns: dict, n: int, row: Callable[[int], dict]):
        self.columns = columns
        self.names = list(columns)
        self.n = n
        self.row = row

    def column(self, name: str, start: int, stop: int):
        values = self.columns[name]
        return values[start:stop] if isinstance(values, np.ndarray) else values.iloc[start:stop]

    def dtype(self, name: str):
        return self.columns[name].dtype

    def family(self, name: str) -> str:
        return _family(self.dtype(name))

    def all_missing(self, name: str) -> bool:
        import pandas as pd

        values = self.columns[name]
        if self.n == 0:
            return True
        if isinstance(values, np.ndarray) and values.dtype.kind not in "fO":
            return False
        return bool(pd.isna(values).all())


def _plan(data) -> tuple[Callable[[], object] | None, bool, Iterator]:
    """``(factory, one_shot, items of the first pass)`` for any accepted input."""
    import pandas as pd

    if isinstance(data, pd.Series):
        raise TypeError(
            "`from_pandas` expects a DataFrame, not a Series. Received: a Series; pass "
            "series.to_frame() instead."
        )
    if _is_single(data) or (isinstance(data, Collection) and not isinstance(data, (str, bytes))):
        return (lambda: data), False, _items(data)
    if callable(data):
        return data, False, _items(data())
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        return None, True, iter(data)
    raise TypeError(
        "`from_pandas` expects a DataFrame, a list or iterator of DataFrames (e.g. "
        "pd.read_csv(..., chunksize=...)), a zero-argument callable returning one, a dict of "
        f"1-D numpy arrays or a 2-D numpy array. Received: {type(data).__name__}"
    )


def _items(data) -> Iterator:
    if _is_single(data):
        return iter([data])
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        return iter(data)
    raise TypeError(
        "The callable given to `from_pandas` must return a DataFrame, an iterable of "
        f"DataFrames or numpy arrays. It returned: {type(data).__name__}"
    )


def _is_single(data) -> bool:
    import pandas as pd

    return isinstance(data, (pd.DataFrame, Mapping, np.ndarray))


def _array_names(columns, data) -> list[str]:
    names = [columns] if isinstance(columns, str) else [str(c) for c in columns]
    if len(names) != data.shape[1] or len(set(names)) != len(names):
        raise ValueError(
            f"For a 2-D array, `columns` must name each of its {data.shape[1]} columns once. "
            f"Received: columns={names}"
        )
    return names


def _as_block(item, index: int, array_names: list[str] | None) -> _Block:
    import pandas as pd

    where = f"from_pandas chunk {index}"
    if isinstance(item, pd.DataFrame):
        names = [str(c) for c in item.columns]
        _check_unique(names, where)
        columns = {name: item.iloc[:, i] for i, name in enumerate(names)}
        return _Block(columns, len(item), lambda i: item.iloc[i].to_dict())
    if isinstance(item, np.ndarray) and item.ndim == 2:
        names = array_names or [f"x{k}" for k in range(item.shape[1])]
        if len(names) != item.shape[1]:
            raise SchemaDriftError(
                f"Schema drift: {where} is an array of {item.shape[1]} columns, but the first "
                f"has {len(names)}."
            )
        columns = {name: item[:, k] for k, name in enumerate(names)}
        return _Block(
            columns, item.shape[0], lambda i: dict(zip(names, item[i].tolist(), strict=True))
        )
    if isinstance(item, Mapping):
        columns = {str(k): v for k, v in item.items()}
        _check_unique(columns, where, len(item))
        lengths = set()
        for name, values in columns.items():
            if not isinstance(values, np.ndarray) or values.ndim != 1:
                raise TypeError(
                    f"{where}: every value of a dict must be a 1-D numpy array. Received: "
                    f"{name!r} -> {type(values).__name__} "
                    f"{getattr(values, 'shape', '')}. Convert it with np.asarray(...)."
                )
            lengths.add(len(values))
        if len(lengths) > 1:
            sizes = {name: len(v) for name, v in columns.items()}
            raise ValueError(f"{where}: the arrays of a dict must have equal lengths: {sizes}")
        n = lengths.pop() if lengths else 0
        return _Block(columns, n, lambda i: {k: v[i].item() for k, v in columns.items()})
    raise TypeError(
        f"{where}: expected a DataFrame, a dict of 1-D numpy arrays or a 2-D numpy array. "
        f"Received: {type(item).__name__}"
        + (f" of shape {item.shape}" if isinstance(item, np.ndarray) else "")
    )


def _check_unique(names, where: str, expected: int | None = None) -> None:
    names = list(names)
    if len(set(names)) != (expected if expected is not None else len(names)):
        dupes = sorted({n for n in names if names.count(n) > 1}) or names
        raise SchemaError(f"{where}: column names repeat once turned into text: {dupes}.")


# -- dtypes ------------------------------------------------------------------------------------


def _family(dtype) -> str:
    """The Arrow family (see :func:`tfstream.sources.arrow.arrow_family`) of a pandas or
    numpy dtype."""
    import pandas as pd

    api = pd.api.types
    if isinstance(dtype, pd.CategoricalDtype):
        return "string"
    if api.is_bool_dtype(dtype) or api.is_integer_dtype(dtype) or api.is_float_dtype(dtype):
        return "numeric"
    if api.is_object_dtype(dtype) or api.is_string_dtype(dtype):
        return "string"
    if api.is_datetime64_any_dtype(dtype) or api.is_timedelta64_dtype(dtype):
        return "temporal"
    return "other"


def _infer_dtype(dtype) -> str | None:
    """The default column dtype: floats float32, integers and booleans int64, object, string and
    categorical string; None for anything else."""
    import pandas as pd

    api = pd.api.types
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or api.is_object_dtype(dtype)
        or api.is_string_dtype(dtype)
    ):
        return "string"
    if api.is_bool_dtype(dtype) or api.is_integer_dtype(dtype):
        return "int64"
    if api.is_float_dtype(dtype):
        return "float32"
    return None


def _to_numpy(values, column: Column):
    """A slice (Series or 1-D array) -> ``(numpy array of column.dtype, problems)``."""
    import pandas as pd
    import pyarrow as pa

    if column.dtype == "string" and _family(values.dtype) == "string":
        strings = (
            values.to_numpy(dtype=object, na_value="")
            if isinstance(values, pd.Series)
            else _fill_missing(values)
        )
        if pd.api.types.infer_dtype(strings, skipna=False) == "string":
            return strings, []
        return _stringify(strings), []
    try:
        if isinstance(values, pd.Series):
            array = pa.Array.from_pandas(values)
        else:
            array = pa.array(values, from_pandas=values.dtype == object)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects
        raw = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else values
        array = pa.array(_stringify(_fill_missing(np.asarray(raw, dtype=object))))
    return arrow_to_numpy(array, column)


def _fill_missing(values: np.ndarray) -> np.ndarray:
    import pandas as pd

    values = np.asarray(values, dtype=object)
    missing = pd.isna(values)
    if missing.any():
        values = values.copy()
        values[missing] = ""
    return values


def _stringify(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if isinstance(v, str):
            out[i] = v
        elif isinstance(v, bytes):
            out[i] = v.decode("utf-8", errors="replace")
        else:
            out[i] = str(v)
    return out


def _length(chunk: Chunk) -> int:
    return len(next(iter(chunk.values()))) if chunk else 0


def _join(chunks: list[Chunk]) -> Chunk:
    if len(chunks) == 1:
        return chunks[0]
    return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
