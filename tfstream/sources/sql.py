"""SQL queries as sources: PostgreSQL through psycopg 3, any other DB-API 2.0 driver.

How a query is read:

1. **PostgreSQL** (a ``postgresql://`` URL, an open psycopg connection, or a callable returning
   one): each pass runs the query in its own transaction. With libpq >= 17 (psycopg[binary]
   bundles it) the server streams the result in binary format and libpq hands it over in
   results of ``chunk_rows`` rows (``cursor.stream(size=chunk_rows)``): no round trip per
   chunk, and TCP flow control stops the server while tfstream is busy, so memory is bounded by
   the chunk and the socket buffers, not the result. With an older libpq, a server-side (named)
   cursor fetches ``chunk_rows`` rows at a time (``FETCH FORWARD``). The schema comes from the
   type OIDs of the result description (a named cursor's ``DECLARE``: the query is not run).
2. **Any other DB-API 2.0 connection** (``sqlite3``, MySQL connectors, ...): ``cursor.execute``
   and ``fetchmany(chunk_rows)``. The schema comes from the Python values of the first chunk.
   Whether the driver streams or buffers the result is its own business (``sqlite3`` streams;
   with MySQL use an unbuffered cursor, e.g. ``pymysql.cursors.SSCursor``).
3. Each fetched chunk of row tuples is turned into columns at once: the numeric columns into one
   float64 matrix in a single numpy call (integers beyond 2**53 are converted exactly, one by
   one), the others into one Arrow array per column; then converted like the Parquet source
   converts: NULL is NaN in float columns and ``""`` in string columns; a NULL in an ``int64``
   column rejects the row as ``on_error`` says (declare the column ``float32`` to keep it as
   NaN).

Values are only ever passed as query parameters (``params=``), never put in the SQL text.
``order_by=`` and ``shard_key=`` wrap the query as a subquery (``SELECT * FROM (query) AS q
WHERE ... ORDER BY key``). A PostgreSQL connection lost in the middle of a pass is reopened and
the pass continues after the last key read when ``order_by=`` names the key and tfstream opened
the connection (a URL or a callable); otherwise the pass fails with :class:`SqlConnectionError`
— a stream is never cut short silently.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter

import numpy as np

from tfstream.sources.arrow import (
    CASTABLE,
    _from_floats,
    arrow_family,
    arrow_to_numpy,
    finish_chunk,
)
from tfstream.sources.base import DEFAULT_SHUFFLE_BUFFER, Chunk, Source, _shuffle_rows
from tfstream.sources.pandas import _stringify
from tfstream.sources.schema import Column, SchemaError, normalize_schema
from tfstream.sources.sql_drivers import (
    SqlConnectionError,
    SqlOptions,
    SqlQueryError,
    _ConnectionLost,
    _driver,
)

__all__ = [
    "SqlConnectionError",
    "SqlOptions",
    "SqlQueryError",
    "SqlSource",
    "UnorderedQueryWarning",
    "sql",
]

_NOTHING = object()  # no key read yet

#: Kinds whose Python values (int, float, bool, Decimal) convert to float64 in one numpy call.
_NUMERIC_KINDS = ("int", "float", "bool", "numeric")
_DEFAULT_DTYPES = {
    "bool": "int64",
    "int": "int64",
    "float": "float32",
    "numeric": "float32",
    "string": "string",
    "date": "int64",
    "timestamp": "int64",
    "timestamptz": "int64",
    "text": "string",
    None: "float32",
}


class UnorderedQueryWarning(UserWarning):
    """A dataset is made from a query without a deterministic row order."""


def sql(
    connection_or_url,
    query: str,
    *,
    params: Sequence | Mapping | None = None,
    label: str | None = None,
    chunk_rows: int = 10_000,
    columns: Sequence[str] | None = None,
    schema: Mapping[str, str] | None = None,
    order_by: str | None = None,
    shard_key: str | None = None,
    on_error: str = "raise",
    quarantine_path=None,
    options: SqlOptions | None = None,
) -> SqlSource:
    """Streams the rows of a SQL query into ``tf.data``, ``chunk_rows`` rows at a time.

    Args:
        connection_or_url: a ``postgresql://user:password@host:port/db`` URL (a connection is
            opened per pass and closed after it), an open psycopg 3 connection, any other
            DB-API 2.0 connection (``sqlite3.connect(path, check_same_thread=False)``: tf.data
            reads from threads of its own), or a zero-argument callable that returns a new
            connection (opened per pass, closed after it).
        query: one ``SELECT`` statement, with placeholders in the driver's style (``%s`` /
            ``%(name)s`` for psycopg and MySQL, ``?`` / ``:name`` for sqlite3).
        params: the values of the placeholders, passed to the driver (never put in the text).
        label: the label column; datasets then yield ``(features, label)``.
        chunk_rows: rows fetched per round trip and handed to ``tf.data`` at once.
        columns: read only these result columns (the label is added when not listed).
        schema: ``{column: "float32" | "float64" | "int64" | "string"}`` overriding the types
            taken from the database: integers and booleans ``int64`` (0/1), real, double and
            numeric ``float32``, text ``string``, dates ``int64`` days since 1970-01-01,
            timestamps ``int64`` seconds since 1970-01-01 00:00 UTC (floored; ``timestamp``
            without time zone counts its wall time as UTC). Other PostgreSQL types (uuid,
            json, ...) need ``"string"`` here (their text form) or a cast in the query.
            Other DB-API drivers: types come from the first chunk's Python values (``int``,
            ``float``, ``Decimal``, ``bool``, ``str``, ``date``, ``datetime``); a column
            with only NULLs there is ``float32`` unless given here.
        order_by: a unique, non-NULL key column: the query is wrapped and ordered by it,
            which makes the order deterministic (needed by ``shuffle``, row sharding and exact
            resume) and lets a pass continue after a dropped connection.
        shard_key: an integer column: with ``dataset(input_context=...)`` each pipeline then
            runs the query with ``WHERE mod(key, n) = i`` and reads only its own rows, instead
            of reading every row and keeping every n-th.
        on_error: a row the schema cannot hold (NULL in an ``int64`` column, text in a number
            column): ``"raise"``, ``"skip"`` or ``"quarantine"``.
        quarantine_path: where quarantined rows go (JSON lines).
        options: :class:`SqlOptions`.

    Returns:
        A :class:`SqlSource`.

    Raises:
        SqlConnectionError: the database cannot be reached or refuses the credentials.
        SqlQueryError: the database rejects the query.
        SchemaError: a column's type cannot be read, or ``columns``, ``schema``, ``label``,
            ``order_by`` or ``shard_key`` name a column the query does not return.
        ImportError: a PostgreSQL URL without psycopg installed (``pip install
            'tfstream[postgres]'``).

    Example:

    >>> import sqlite3
    >>> conn = sqlite3.connect(":memory:", check_same_thread=False)
    >>> _ = conn.execute("create table t (id integer, x real, city text, y integer)")
    >>> _ = conn.executemany("insert into t values (?, ?, ?, ?)",
    ...                      [(1, 0.5, "a", 0), (2, None, None, 1), (3, 2.5, "c", 0)])
    >>> src = sql(conn, "select * from t where id <= ?", params=[3], label="y", order_by="id")
    >>> {name: col.dtype for name, col in src.schema.items()}
    {'id': 'int64', 'x': 'float32', 'city': 'string', 'y': 'int64'}
    >>> features, label = next(iter(src.dataset(3)))
    >>> features["city"].numpy().tolist(), label.numpy().tolist()
    ([b'a', b'', b'c'], [0, 1, 0])
    """
    return SqlSource(
        connection_or_url,
        query,
        params=params,
        label=label,
        chunk_rows=chunk_rows,
        columns=columns,
        schema=schema,
        order_by=order_by,
        shard_key=shard_key,
        on_error=on_error,
        quarantine_path=quarantine_path,
        options=options,
    )


class SqlSource(Source):
    """See :func:`tfstream.sql`."""

    def __init__(
        self,
        connection_or_url,
        query,
        *,
        params=None,
        label=None,
        chunk_rows=10_000,
        columns=None,
        schema=None,
        order_by=None,
        shard_key=None,
        on_error="raise",
        quarantine_path=None,
        options=None,
    ):
        super().__init__(label=label, on_error=on_error, quarantine_path=quarantine_path)
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise ValueError(
                f"`chunk_rows` must be a positive integer. Received: chunk_rows={chunk_rows!r}"
            )
        if not isinstance(query, str) or not query.strip():
            raise TypeError(f"`query` must be a SQL string. Received: {query!r}")
        if params is not None and (isinstance(params, (str, bytes)) or not _is_params(params)):
            raise TypeError(
                "`params` must be a sequence (for %s or ? placeholders) or a mapping (for "
                f"%(name)s or :name placeholders). Received: {type(params).__name__}"
            )
        self._options = options or SqlOptions()
        self._driver = _driver(connection_or_url, self._options)
        self._query = query.strip().rstrip(";").rstrip()
        self._params = params
        self._chunk_rows = chunk_rows
        self._order_by = order_by
        self._shard_key = shard_key
        self._warned = False
        names, kinds = self._describe()
        self._names = names
        overrides = normalize_schema(schema)
        for what, name in (("order_by", order_by), ("shard_key", shard_key)):
            if name is not None and name not in names:
                raise SchemaError(
                    f"`{what}` must name a column of the query's result. Received: "
                    f"{what}={name!r}; the columns are {names}"
                )
        if isinstance(columns, str):
            columns = [columns]
        unknown = [n for n in [*overrides, *(columns or [])] if n not in names]
        if unknown:
            raise SchemaError(
                f"`schema`/`columns` name columns that the query does not return: {unknown}. "
                f"Its columns are {names}"
            )
        wanted = names if columns is None else [*columns, *([label] if label else [])]
        self._kinds = {}
        for name in names:
            if name not in wanted:
                continue
            kind = kinds[name]
            if name in overrides:
                dtype = overrides[name].dtype
                if kind == "other":
                    if dtype != "string":
                        raise SchemaError(_other_type(name, self._driver.type_name(name)))
                    kind = "text"
            elif kind == "other":
                raise SchemaError(_other_type(name, self._driver.type_name(name)))
            else:
                dtype = _DEFAULT_DTYPES[kind]
            self._schema[name] = Column.of(name, dtype)
            self._kinds[name] = kind
        self._resolve_label()
        self._index = {name: names.index(name) for name in self._schema}
        numeric = [n for n, k in self._kinds.items() if k in _NUMERIC_KINDS]
        self._numeric = {
            name: i
            for i, name in enumerate(n for n in numeric if self._schema[n].dtype != "string")
        }
        self._driver.text_columns = {n for n, k in self._kinds.items() if k == "text"}
        self._ordered = order_by is not None or (
            shard_key is None and _has_top_level_order_by(self._query)
        )

    def __repr__(self) -> str:
        return (
            f"SqlSource({self._driver.describe()}, {self._query!r}, "
            f"columns={list(self._schema)}, label={self._label!r})"
        )

    # -- public ------------------------------------------------------------------------------

    @property
    def reads_in_any_thread(self) -> bool:
        """True for PostgreSQL; False for other DB-API connections, which may be bound to
        their thread (``sqlite3``)."""
        return self._driver.any_thread

    def dataset(self, batch_size: int, *, shuffle: bool = False, input_context=None, **kwargs):
        """As :meth:`Source.dataset`. Raises ``ValueError`` for ``shuffle`` or row sharding
        over a query without a deterministic order, and warns (:class:`UnorderedQueryWarning`)
        for any other dataset of such a query: a checkpointed ``Trainer`` resumes by position,
        which needs the same order on every pass."""
        shards = 1 if input_context is None else input_context.num_input_pipelines
        self._check_order(shuffle, shards)
        if not self._ordered and not self._warned:
            self._warned = True
            warnings.warn(_unordered("a resumable (checkpointed) training"), UnorderedQueryWarning,
                          stacklevel=2)  # fmt: skip
        return super().dataset(batch_size, shuffle=shuffle, input_context=input_context, **kwargs)

    def iter_chunks(
        self,
        *,
        shuffle: bool = False,
        seed: int | None = None,
        epoch: int = 0,
        shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
        num_shards: int = 1,
        shard_index: int = 0,
        on_bytes=None,
    ) -> Iterator[Chunk]:
        """As :meth:`Source.iter_chunks`; with ``shard_key`` and ``num_shards > 1`` the shard
        is selected by the database (``mod(key, num_shards) = shard_index``). A query's size in
        bytes is not known: ``on_bytes`` is never called."""
        self._check_order(shuffle, num_shards)
        if num_shards == 1 or self._shard_key is None:
            yield from super().iter_chunks(
                shuffle=shuffle, seed=seed, epoch=epoch, shuffle_buffer=shuffle_buffer,
                num_shards=num_shards, shard_index=shard_index, on_bytes=on_bytes,
            )  # fmt: skip
            return
        chunks = self._read_unit((num_shards, shard_index))
        if shuffle:
            if seed is None:
                seed = int(np.random.SeedSequence().generate_state(1)[0])
            chunks = _shuffle_rows(chunks, shuffle_buffer, np.random.default_rng([seed, epoch]))
        for chunk in chunks:
            if len(next(iter(chunk.values()))):
                yield chunk

    # -- hooks -------------------------------------------------------------------------------

    def _units(self):
        return [None]

    def _read_unit(self, unit) -> Iterator[Chunk]:
        """One pass; ``unit`` is None or ``(num_shards, shard_index)``. A dropped PostgreSQL
        connection is reopened and the pass continues after the last key read, when it can."""
        key = None if self._order_by is None else self._names.index(self._order_by)
        after, row, failures = _NOTHING, 0, 0
        while True:
            text, params = self._statement(unit, after)
            try:
                for rows in self._driver.rows(text, params, self._chunk_rows):
                    failures = 0
                    if key is not None:
                        after = rows[-1][key]
                    start, row = row, row + len(rows)
                    yield self._convert(rows, start)
                return
            except (_ConnectionLost, SqlConnectionError) as lost:
                if isinstance(lost, SqlConnectionError) and failures == 0:
                    raise  # the pass could not start: nothing to continue
                where = f"after {row:,} rows of the pass"
                if key is None or not self._driver.reconnects:
                    why = (
                        "pass order_by=<a unique key column> so the pass can continue after "
                        "the last key"
                        if key is None
                        else "pass a URL or a callable returning a connection (not an open "
                        "connection) so tfstream can reconnect"
                    )
                    raise SqlConnectionError(
                        f"The database connection was lost {where}: {lost}. The stream "
                        f"cannot continue exactly; {why}."
                    ) from None
                failures += 1
                if failures > self._options.reconnect_attempts:
                    raise SqlConnectionError(
                        f"The database connection was lost {where} and could not be reopened "
                        f"({self._options.reconnect_attempts} attempts): {lost}"
                    ) from None
                time.sleep(self._options.reconnect_delay * 2 ** (failures - 1))

    # -- internals ---------------------------------------------------------------------------

    def _describe(self) -> tuple[list[str], dict[str, str | None]]:
        text, params = self._statement(None, _NOTHING)
        try:
            names, kinds = self._driver.describe_query(text, params, self._chunk_rows)
        except _ConnectionLost as lost:
            raise SqlConnectionError(f"The database connection was lost: {lost}") from None
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SchemaError(
                f"The query returns several columns named {dupes}. Give them distinct names "
                "with AS in the SELECT list."
            )
        return names, kinds

    def _statement(self, shard, after) -> tuple[str, object]:
        """The SQL text and parameters of one pass (a shard, after a key)."""
        if self._order_by is None and (shard is None or self._shard_key is None):
            return self._query, self._params
        d, params, query = self._driver, self._params, self._query
        conditions = []
        if shard is not None and self._shard_key is not None:
            conditions.append(d.modulo(d.quote(self._shard_key), *shard))
        if after is not _NOTHING:
            placeholder, params = d.add_param(params, after)
            if self._params is None and d.percent_placeholders:
                query = query.replace("%", "%%")  # the text now goes through %-formatting
            conditions.append(f"{d.quote(self._order_by)} > {placeholder}")
        text = f"SELECT * FROM ({query}\n) AS _tfstream_query"
        if conditions:
            text += " WHERE " + " AND ".join(conditions)
        if self._order_by is not None:
            text += f" ORDER BY {d.quote(self._order_by)}"
        return text, params

    def _check_order(self, shuffle: bool, num_shards: int) -> None:
        if self._ordered:
            return
        if shuffle:
            raise ValueError(_unordered("`shuffle=True`"))
        if num_shards > 1 and self._shard_key is None:
            raise ValueError(_unordered("sharding rows across input pipelines"))

    def _convert(self, rows: list[tuple], start: int) -> Chunk:
        n = len(rows)
        matrix = self._numeric_matrix(rows)
        columns = {}
        for name, column in self._schema.items():
            if matrix is not None and name in self._numeric:
                values = matrix[:, self._numeric[name]]
                if column.dtype != "int64":
                    columns[name] = (values.astype(column.dtype), [])
                    continue
                with np.errstate(invalid="ignore"):
                    exact = not (np.abs(values) >= 2.0**53).any()
                if exact:  # every integer below 2**53 is exact in float64
                    columns[name] = _from_floats(values, column)
                    continue
            index = self._index[name]
            array, extra = _to_arrow([r[index] for r in rows], self._kinds[name], column)
            converted, problems = arrow_to_numpy(array, column)
            columns[name] = (converted, problems + extra)

        def locate(i: int) -> tuple[str, int, str]:
            record = dict(zip(self._names, rows[i], strict=True))
            return "sql query", start + i, json.dumps(record, default=str, ensure_ascii=False)

        return finish_chunk(self._ledger, columns, n, locate)

    def _numeric_matrix(self, rows: list[tuple]) -> np.ndarray | None:
        """The numeric columns of ``rows`` as one float64 matrix (NULL -> NaN) in one numpy
        call, ~2x faster than a conversion per column; None when a value is not a number."""
        if not self._numeric:
            return None
        indices = [self._index[name] for name in self._numeric]
        if len(indices) == 1:
            picked = [(r[indices[0]],) for r in rows]
        else:
            picked = list(map(itemgetter(*indices), rows))
        try:
            return np.array(picked, dtype=np.float64)
        except (TypeError, ValueError):  # e.g. text in a column SQLite typed as a number
            return None


# -- values ------------------------------------------------------------------------------------


def _to_arrow(values: tuple, kind: str | None, column: Column):
    """One column's Python values -> ``(Arrow array, problems)``."""
    import pyarrow as pa

    arrow_type = {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "string": pa.string(),
        "text": pa.string(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }.get(kind)
    try:
        # A list, not the tuple zip gives: pyarrow converts a tuple ~100x slower.
        array = pa.array(values if isinstance(values, list) else list(values), type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError, ValueError):
        array = None
    if array is not None and column.dtype != "string":  # dates and times as epoch counts
        if pa.types.is_timestamp(array.type):
            array = _epoch_seconds(array)
        elif pa.types.is_date32(array.type):
            array = array.cast(pa.int32()).cast(pa.int64())
    if array is not None and arrow_family(array.type) in CASTABLE[column.dtype]:
        return array, []
    # Mixed Python types (SQLite's dynamic typing) or values Arrow cannot hold.
    if column.dtype == "string":
        filled = np.array(["" if v is None else v for v in values], dtype=object)
        return pa.array(_stringify(filled), type=pa.string()), []
    numbers = np.full(len(values), np.nan)
    bad = np.zeros(len(values), bool)
    for i, v in enumerate(values):
        if v is None:
            continue
        try:
            numbers[i] = float(v)
        except (TypeError, ValueError):
            bad[i] = True
    problems = [(bad, f"column {column.name!r}: the value is not a valid {column.dtype}")]
    return pa.array(numbers, from_pandas=True), problems if bad.any() else []


def _epoch_seconds(array):
    """A timestamp array -> int64 seconds since the epoch, floored (nulls kept)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    micros = array.cast(pa.timestamp("us", tz=array.type.tz)).cast(pa.int64())
    seconds = np.floor_divide(pc.fill_null(micros, 0).to_numpy(zero_copy_only=False), 1_000_000)
    mask = micros.is_null().to_numpy(zero_copy_only=False) if micros.null_count else None
    return pa.array(seconds, type=pa.int64(), mask=mask)


def _is_params(params) -> bool:
    return isinstance(params, (Mapping, Sequence))


# -- query text --------------------------------------------------------------------------------

_DOLLAR_QUOTE = re.compile(r"\$[A-Za-z_][A-Za-z_0-9]*\$|\$\$")
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


def _has_top_level_order_by(query: str) -> bool:
    """True when ``ORDER BY`` appears outside parentheses, quotes and comments."""
    return bool(_ORDER_BY.search(_top_level_text(query)))


def _top_level_text(query: str) -> str:
    """``query`` with quoted text, comments and everything inside parentheses blanked out."""
    out, depth, i, n = [], 0, 0, len(query)
    while i < n:
        c = query[i]
        if c in "'\"`":
            j = query.find(c, i + 1)
            while j != -1 and j + 1 < n and query[j + 1] == c:
                j = query.find(c, j + 2)
            i = n if j == -1 else j + 1
            out.append(" ")
            continue
        if query.startswith("--", i) or query.startswith("/*", i):
            end = "\n" if query[i + 1] == "-" else "*/"
            j = query.find(end, i + 2)
            i = n if j == -1 else j + len(end)
            out.append(" ")
            continue
        if c == "$":
            m = _DOLLAR_QUOTE.match(query, i)
            if m:
                j = query.find(m.group(), m.end())
                i = n if j == -1 else j + len(m.group())
                out.append(" ")
                continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0:
            out.append(c)
        i += 1
    return "".join(out)


# -- messages ----------------------------------------------------------------------------------


def _unordered(what: str) -> str:
    return (
        f"{what} needs the query's rows in the same order on every pass, and this query has "
        "no top-level ORDER BY, so the database may return them in any order. Add an ORDER BY "
        "on a unique key to the query, or pass order_by='<unique key column>' to ts.sql."
    )


def _other_type(name: str, type_name: str) -> str:
    return (
        f"Column {name!r} has the database type {type_name}, which tfstream does not read as "
        f"it is. Read its text form with schema={{{name!r}: 'string'}}, cast it in the query "
        f"(e.g. {name}::float8 or {name}::text), or leave it out with `columns=`."
    )
