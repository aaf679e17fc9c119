"""Connections for :mod:`tfstream.sources.sql`: the PostgreSQL (psycopg 3) and DB-API 2.0
drivers that run a query pass by pass, the options and errors of connections, and passwords kept
out of every message.

A driver has one shape: ``describe_query(text, params, chunk_rows) -> (names, kinds)`` (the
result's columns and the kind of their values, see ``_PG_KINDS``), ``rows(text, params,
chunk_rows)`` (the chunks of row tuples of one pass; a broken connection raises
``_ConnectionLost``), and the SQL dialect bits the source needs (``quote``, ``modulo``,
``add_param``, ``percent_placeholders``, ``reconnects``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from itertools import islice

__all__ = ["SqlConnectionError", "SqlOptions", "SqlQueryError"]

_INSTALL = "pip install 'tfstream[postgres]'"


#: PostgreSQL type OIDs -> the kind of Python value psycopg returns (and its default dtype).
_PG_KINDS = {
    16: "bool",  # boolean
    20: "int", 21: "int", 23: "int", 26: "int",  # bigint, smallint, integer, oid
    700: "float", 701: "float", 1700: "numeric",  # real, double precision, numeric
    25: "string", 1043: "string", 1042: "string", 19: "string", 705: "string", 18: "string",
    1082: "date",
    1114: "timestamp",
    1184: "timestamptz",
}  # fmt: skip


class SqlConnectionError(ConnectionError):
    """The database cannot be reached, refused the credentials, or dropped the connection.
    The message never holds the password."""


class SqlQueryError(ValueError):
    """The database rejected the query; the message is the database's."""


@dataclasses.dataclass(frozen=True)
class SqlOptions:
    """Rare knobs of :func:`sql`.

    Args:
        connect_timeout: seconds to wait for a PostgreSQL connection (URLs only).
        reconnect_attempts: how many times in a row a pass reopens a dropped PostgreSQL
            connection before it fails (needs ``order_by=`` and a URL or callable).
        reconnect_delay: seconds before the first reconnect; doubled at each further attempt.
        application_name: the ``application_name`` of the connections tfstream opens.
    """

    connect_timeout: float = 10.0
    reconnect_attempts: int = 3
    reconnect_delay: float = 0.5
    application_name: str = "tfstream"


# -- drivers -----------------------------------------------------------------------------------


class _ConnectionLost(Exception):
    """Raised inside a pass when the connection broke; carries the driver's message."""


def _driver(target, options: SqlOptions):
    if isinstance(target, str):
        if not re.match(r"^postgres(ql)?://", target):
            raise ValueError(
                "`connection_or_url` as a string must be a PostgreSQL URL "
                f"(postgresql://user:password@host:port/database). Received: {_redact(target)!r}"
                ". For other databases pass an open DB-API connection or a callable returning "
                "one."
            )
        _psycopg()
        return _Postgres(lambda: _pg_connect(target, options), owned=True, where=_redact(target))
    if _is_psycopg(target):
        return _Postgres(lambda: target, owned=False, where="a psycopg connection")
    if callable(target) and not hasattr(target, "cursor"):
        try:
            probe = target()
        except Exception as error:
            if not type(error).__module__.startswith("psycopg"):
                raise
            raise SqlConnectionError(f"Cannot connect to PostgreSQL: {_scrub(error)}") from None
        if _is_psycopg(probe):
            probe.close()
            return _Postgres(
                lambda: _call_connect(target), owned=True, where="a connection callable"
            )
        return _DbApi(target, owned=True, first=probe)
    if hasattr(target, "cursor"):
        return _DbApi(lambda: target, owned=False)
    raise TypeError(
        "`connection_or_url` must be a postgresql:// URL, a DB-API 2.0 connection (psycopg, "
        f"sqlite3, a MySQL connector) or a callable returning one. Received: "
        f"{type(target).__name__}"
    )


class _Postgres:
    """psycopg 3: each pass in its own transaction, streamed (libpq >= 17) or fetched from a
    named (server-side) cursor."""

    percent_placeholders = True
    any_thread = True  # psycopg 3 connections may be used from any thread

    def __init__(self, connect: Callable, *, owned: bool, where: str):
        self._connect = connect
        self._owned = owned
        self._where = where
        self.reconnects = owned
        self.text_columns: set[str] = set()
        self._type_names: dict[str, str] = {}
        self._oids: dict[str, int] = {}

    def describe(self) -> str:
        return self._where

    def type_name(self, name: str) -> str:
        return self._type_names.get(name, "unknown")

    def describe_query(self, text, params, chunk_rows):
        for description in self._passes(text, params, chunk_rows, describe=True):
            names = [d.name for d in description]
            self._type_names = {d.name: _pg_type_name(d) for d in description}
            self._oids = {d.name: d.type_code for d in description}
            kinds = {d.name: _PG_KINDS.get(d.type_code, "other") for d in description}
            return names, kinds
        raise AssertionError("unreachable")

    def rows(self, text, params, chunk_rows) -> Iterator[list[tuple]]:
        return self._passes(text, params, chunk_rows, describe=False)

    def _passes(self, text, params, chunk_rows, *, describe: bool):
        psycopg = _psycopg()
        from psycopg.types.string import TextLoader

        conn = self._connect()
        try:
            with conn.transaction():
                # Binary results parse ~2x faster; the text form of types tfstream does not
                # know (read as strings) needs a text cursor.
                binary = not self.text_columns
                stream = not describe and psycopg.pq.version() >= 170000
                if stream:
                    cursor = conn.cursor(binary=binary)
                else:  # DECLARE describes the result without running the whole query
                    cursor = conn.cursor(name=f"tfstream_{uuid.uuid4().hex}", binary=binary)
                try:
                    for name in self.text_columns:
                        cursor.adapters.register_loader(self._oids[name], TextLoader)
                    if describe:
                        cursor.execute(text, params)
                        yield cursor.description
                        return
                    if stream:
                        # The server streams the result with no round trip per chunk (~2x
                        # faster than FETCH from a named cursor); libpq >= 17 hands it over
                        # in results of chunk_rows rows, and TCP flow control bounds what is
                        # in flight, so memory stays bounded.
                        rows_of = cursor.stream(text, params, size=chunk_rows)
                        try:
                            while rows := list(islice(rows_of, chunk_rows)):
                                yield rows
                        finally:  # a pass left early: psycopg cancels the rest of the query
                            rows_of.close()
                        return
                    cursor.execute(text, params)  # older libpq: FETCH FORWARD chunk_rows
                    while rows := cursor.fetchmany(chunk_rows):
                        yield rows
                finally:
                    if not conn.broken and not conn.closed:
                        cursor.close()
        except psycopg.Error as error:
            if conn.broken or conn.closed:
                raise _ConnectionLost(_scrub(error)) from None
            raise SqlQueryError(f"The query failed: {_scrub(error)}") from None
        finally:
            if self._owned:
                conn.close()

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def modulo(self, key: str, n: int, i: int) -> str:
        return f"mod(mod({key}, {int(n)}) + {int(n)}, {int(n)}) = {int(i)}"

    def add_param(self, params, value):
        return _add_param(params, value, "%s", "%(_tfstream_after)s")


class _DbApi:
    """Any DB-API 2.0 connection: ``execute`` + ``fetchmany``."""

    reconnects = False
    # DB-API connections may be bound to their thread (sqlite3's check_same_thread).
    any_thread = False
    text_columns: set[str] = set()

    def __init__(self, connect: Callable, *, owned: bool, first=None):
        self._connect = connect
        self._owned = owned
        self._first = first
        module = __import__(type(first if first is not None else connect()).__module__)
        self._module = module
        self._paramstyle = getattr(module, "paramstyle", "qmark")
        self.percent_placeholders = self._paramstyle in ("format", "pyformat")
        self._mysql = "mysql" in module.__name__.lower()

    def describe(self) -> str:
        return f"a {self._module.__name__} connection"

    def type_name(self, name: str) -> str:
        return "unknown"

    def describe_query(self, text, params, chunk_rows):
        for rows, names in self._passes(text, params, chunk_rows, with_names=True):
            if not rows:
                return names, dict.fromkeys(names)
            columns = list(zip(*rows, strict=True))
            return names, {n: _python_kind(c) for n, c in zip(names, columns, strict=True)}
        raise AssertionError("unreachable")

    def rows(self, text, params, chunk_rows):
        for rows, _ in self._passes(text, params, chunk_rows):
            yield rows

    def _passes(self, text, params, chunk_rows, *, with_names: bool = False):
        conn = self._first if self._first is not None else self._connect()
        self._first = None
        cursor = None
        try:
            try:
                try:
                    cursor = conn.cursor()
                    cursor.execute(text) if params is None else cursor.execute(text, params)
                    names = [d[0] for d in cursor.description or ()]
                    if with_names:
                        yield cursor.fetchmany(chunk_rows), names
                        return
                    while True:
                        rows = cursor.fetchmany(chunk_rows)
                        if not rows:
                            break
                        if not isinstance(rows[0], tuple):  # e.g. sqlite3.Row
                            rows = [tuple(r) for r in rows]
                        yield rows, names
                except Exception as error:
                    if type(error).__module__.split(".")[0] != self._module.__name__.split(".")[0]:
                        raise
                    hint = ""
                    if "thread" in str(error):
                        hint = (
                            " tf.data reads from threads of its own: open the connection with "
                            "sqlite3.connect(path, check_same_thread=False) (in a callable "
                            "too)."
                        )
                    raise SqlQueryError(f"The query failed: {error}{hint}") from None
            finally:
                if cursor is not None:
                    with contextlib.suppress(Exception):
                        cursor.close()
        finally:
            if self._owned:
                with contextlib.suppress(Exception):
                    conn.close()

    def quote(self, name: str) -> str:
        if self._mysql:
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    def modulo(self, key: str, n: int, i: int) -> str:
        n, i = int(n), int(i)
        if self.percent_placeholders:
            return f"MOD(MOD({key}, {n}) + {n}, {n}) = {i}"
        return f"((({key}) % {n}) + {n}) % {n} = {i}"

    def add_param(self, params, value):
        if self._paramstyle in ("format", "pyformat"):
            return _add_param(params, value, "%s", "%(_tfstream_after)s")
        if self._paramstyle == "numeric":
            return _add_param(params, value, f":{len(params or ()) + 1}", ":_tfstream_after")
        return _add_param(params, value, "?", ":_tfstream_after")


def _add_param(params, value, positional: str, named: str):
    if isinstance(params, Mapping):
        return named, {**params, "_tfstream_after": value}
    return positional, [*(params or ()), value]


# -- PostgreSQL --------------------------------------------------------------------------------


def _psycopg():
    try:
        import psycopg
    except ImportError:
        raise ImportError(
            "Reading PostgreSQL with ts.sql needs psycopg 3, which is not installed. "
            f"Install it with: {_INSTALL}"
        ) from None
    return psycopg


def _is_psycopg(obj) -> bool:
    return type(obj).__module__.startswith("psycopg") and hasattr(obj, "cursor")


def _pg_connect(url: str, options: SqlOptions):
    psycopg = _psycopg()
    try:
        return psycopg.connect(
            url,
            connect_timeout=max(1, int(options.connect_timeout)),
            application_name=options.application_name,
        )
    except psycopg.Error as error:
        message = _scrub(error, url)
        raise SqlConnectionError(
            f"Cannot connect to PostgreSQL at {_redact(url)}: {message}. Check the host, port, "
            "user and password in the URL, and that the server accepts connections."
        ) from None


def _call_connect(factory: Callable):
    psycopg = _psycopg()
    try:
        return factory()
    except psycopg.Error as error:
        raise SqlConnectionError(f"Cannot connect to PostgreSQL: {_scrub(error)}") from None


def _pg_type_name(description) -> str:
    try:
        from psycopg.postgres import types

        info = types.get(description.type_code)
        return info.name if info is not None else f"oid {description.type_code}"
    except ImportError:  # pragma: no cover
        return f"oid {description.type_code}"


_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)([^@]*)(@)")
_PASSWORD_IN_DSN = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def _redact(url: str) -> str:
    """The URL or DSN with its password replaced by ``***``."""
    url = _PASSWORD_IN_URL.sub(r"\1***\3", url)
    return _PASSWORD_IN_DSN.sub(r"\1***", url)


def _scrub(error: Exception, url: str | None = None) -> str:
    """The error's text, one line, with any password removed."""
    text = " ".join(str(error).split())
    text = _redact(text)
    if url:
        from urllib.parse import unquote, urlsplit

        password = urlsplit(url).password
        if password:
            text = text.replace(password, "***").replace(unquote(password), "***")
    return text


def _python_kind(values: tuple) -> str | None:
    """The kind of a DB-API column from its Python values (None: no value seen)."""
    import datetime
    import decimal

    types = set(map(type, values)) - {type(None)}
    if not types:
        return None
    if types <= {bool}:
        return "bool"
    if types <= {int, bool}:
        return "int"
    if types <= {int, bool, float}:
        return "float"
    if types <= {int, bool, float, decimal.Decimal}:
        return "numeric"
    if types <= {datetime.datetime}:
        aware = any(v.tzinfo is not None for v in values if v is not None)
        return "timestamptz" if aware else "timestamp"
    if types <= {datetime.date}:
        return "date"
    return "string"
