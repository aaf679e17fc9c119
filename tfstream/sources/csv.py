"""CSV source: polars parses blocks of a file at full speed; no row is lost on the way.

The header of every file must name the same columns; the schema is inferred from the first
rows of up to 8 files spread over the source (see :func:`csv`). Each file is then read block
by block by :mod:`tfstream.sources.csv_reader`, whose docstring tells how blocks are cut,
checked and bisected so that every bad row is reported; :mod:`tfstream.sources.csv_records`
finds where records end in the bytes.
"""

from __future__ import annotations

import contextlib
import csv as _pycsv
import gzip
import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from tfstream.sources.base import Chunk, Source
from tfstream.sources.csv_reader import _FileReader
from tfstream.sources.csv_records import (
    _BOM,
    _DAMAGED,
    _damaged,
    _drop_blank_lines,
    _first_record_end,
    _sample_records,
)
from tfstream.sources.files import expand_paths, file_size, open_input
from tfstream.sources.report import DataError
from tfstream.sources.schema import (
    Column,
    SchemaDriftError,
    SchemaError,
    merge_inferred,
    normalize_schema,
)

__all__ = ["CsvSource", "csv", "NA_VALUES"]

#: Tokens read as missing values: the same list as pandas' ``read_csv`` default.
NA_VALUES = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip

_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")
_SAMPLE_FILES = 8
_SAMPLE_BYTES = 1 << 20
_DEFAULT_BLOCK = 16 << 20


def csv(
    paths,
    *,
    label: str | None = None,
    columns: Sequence[str] | None = None,
    schema: Mapping[str, str] | None = None,
    delimiter: str = ",",
    on_error: str = "raise",
    quarantine_path: str | os.PathLike | None = None,
    na_values: Sequence[str] = NA_VALUES,
    missing_string: str = "",
    block_bytes: int = _DEFAULT_BLOCK,
    storage_options: Mapping | None = None,
) -> CsvSource:
    """Streams CSV files (``.csv`` or gzipped ``.csv.gz``) with a header row.

    Args:
        paths: a path, a glob, a directory (every ``.csv``/``.csv.gz``/``.tsv`` below it) or a
            list of them, local or fsspec URLs (``s3://bucket/data/*.csv``). Files are read in
            sorted order.
        label: the label column; datasets then yield ``(features, label)``.
        columns: read only these columns (the label is added when not listed).
        schema: ``{column: "float32" | "float64" | "int64" | "string"}`` to override inference;
            unnamed columns are inferred from a sample of rows drawn from several files.
            Inferred numbers are ``int64`` when every sampled value is an integer, else
            ``float32``; anything else is ``string``.
        delimiter: one character, e.g. ``"\\t"``.
        on_error: what to do with a row that has the wrong number of fields, an unparsable
            number or a missing value in an int64 column: ``"raise"`` (the error names the file,
            line and text), ``"skip"`` (count it in ``report()``) or ``"quarantine"`` (count it
            and append it, with file, line and reason, to a JSON-lines file).
        quarantine_path: where quarantined rows go (default
            ``./tfstream-quarantine-<time>-<pid>.jsonl``).
        na_values: field values that mean "missing" (NaN for floats). Default: pandas' list.
        missing_string: what a missing value becomes in a string column.
        block_bytes: bytes parsed per block; memory grows with it.
        storage_options: options of the fsspec filesystem of URL paths (credentials,
            endpoint...), e.g. ``{"client_kwargs": {"endpoint_url": "http://..."}}``.
            Local files are memory-mapped; URLs are streamed block by block.

    Example:

    >>> import tfstream as ts
    >>> src = ts.csv("data/*.csv", label="label")          # doctest: +SKIP
    >>> ds = src.dataset(1024, shuffle=True, seed=0)        # doctest: +SKIP
    >>> src.report()                                        # doctest: +SKIP
    """
    return CsvSource(
        paths,
        label=label,
        columns=columns,
        schema=schema,
        delimiter=delimiter,
        on_error=on_error,
        quarantine_path=quarantine_path,
        na_values=na_values,
        missing_string=missing_string,
        block_bytes=block_bytes,
        storage_options=storage_options,
    )


class CsvSource(Source):
    """See :func:`tfstream.csv`."""

    def __init__(
        self,
        paths,
        *,
        label=None,
        columns=None,
        schema=None,
        delimiter=",",
        on_error="raise",
        quarantine_path=None,
        na_values=NA_VALUES,
        missing_string="",
        block_bytes=_DEFAULT_BLOCK,
        storage_options=None,
    ):
        super().__init__(label=label, on_error=on_error, quarantine_path=quarantine_path)
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
            raise ValueError(
                f"`delimiter` must be one character other than a quote or newline. "
                f"Received: delimiter={delimiter!r}"
            )
        if not isinstance(block_bytes, int) or block_bytes < 1024:
            raise ValueError(f"`block_bytes` must be an integer >= 1024. Received: {block_bytes!r}")
        self._storage_options = dict(storage_options or {})
        self._files = expand_paths(
            paths, suffixes=_SUFFIXES, what="CSV", storage_options=self._storage_options
        )
        self._delimiter = delimiter
        self._na_values = list(na_values)
        self._missing_string = missing_string
        self._block_bytes = block_bytes
        self._header_file = self._files[0]
        self._header = self._read_header(self._header_file)
        overrides = normalize_schema(schema)
        unknown = sorted(set(overrides) - set(self._header))
        if unknown:
            raise SchemaError(
                f"`schema` names columns that {self._header_file} does not have: {unknown}. "
                f"Its columns are {self._header}"
            )
        selected = self._select(columns, label)
        inferred = self._infer([c for c in selected if c not in overrides])
        self._schema = {
            name: overrides.get(name) or Column.of(name, inferred.get(name) or "string")
            for name in selected
        }
        self._resolve_label()

    @property
    def files(self) -> list[str]:
        return list(self._files)

    def _units(self):
        return self._files

    def _read_unit(self, path: str) -> Iterator[Chunk]:
        return _FileReader(self, path, self._check_header(path)).chunks()

    def _unit_bytes(self, path: str) -> int | None:
        return file_size(path, self._storage_options)

    def _read_unit_reporting(self, path: str, report) -> Iterator[Chunk]:
        return _FileReader(self, path, self._check_header(path)).chunks(report)

    # -- construction ------------------------------------------------------------------------

    def _select(self, columns, label) -> list[str]:
        if columns is None:
            return list(self._header)
        if isinstance(columns, str):
            columns = [columns]
        wanted = list(dict.fromkeys(list(columns) + ([label] if label else [])))
        missing = [c for c in wanted if c not in self._header]
        if missing:
            raise SchemaError(
                f"`columns` names columns that {self._header_file} does not have: {missing}. "
                f"Its columns are {self._header}"
            )
        return [c for c in self._header if c in wanted]

    def _read_header(self, path: str) -> list[str]:
        with self._open(path) as f:
            head = f.read(1 << 16)
            while True:
                end = _first_record_end(head)
                if end is not None:
                    break
                more = f.read(1 << 16)
                if not more:
                    end = len(head)
                    break
                head += more
        if head.startswith(_BOM):
            head = head[len(_BOM) :]
            end -= len(_BOM)
        line = head[:end].rstrip(b"\r\n")
        if not line.strip():
            raise DataError(f"{path}: the file is empty, but a header row is required.")
        try:
            names = next(_pycsv.reader([line.decode("utf-8")], delimiter=self._delimiter))
        except UnicodeDecodeError as e:
            raise DataError(f"{path}, line 1: the header is not valid UTF-8 ({e}).") from None
        names = [n.strip() for n in names]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SchemaError(f"{path}, line 1: the header repeats column names {dupes}.")
        return names

    def _check_header(self, path: str) -> list[str]:
        """The header of ``path``, checked against the first file's."""
        names = self._read_header(path)
        if set(names) != set(self._header):
            missing = [n for n in self._header if n not in names]
            extra = [n for n in names if n not in self._header]
            raise SchemaDriftError(
                f"Schema drift: {path} has columns {names}, but {self._header_file} has "
                f"{self._header} (missing in {path}: {missing}; extra: {extra}). "
                "All files of one source need the same columns."
            )
        return names

    def _infer(self, names: list[str]) -> dict[str, str | None]:
        """Infers dtypes from the first rows of up to 8 files spread over the source."""
        import polars as pl

        if not names:
            return {}
        picks = np.unique(np.linspace(0, len(self._files) - 1, _SAMPLE_FILES).round().astype(int))
        verdicts: dict[str, tuple[str | None, str]] = {name: (None, "") for name in names}
        for path in (self._files[i] for i in picks):
            header = self._check_header(path)
            try:
                sample = _sample_records(self._open, path, _SAMPLE_BYTES)
            except _DAMAGED as error:
                raise DataError(f"{path}: {_damaged(error, 0)}") from None
            sample = _drop_blank_lines(sample, self._delimiter)
            if not sample.strip(b"\r\n"):
                continue
            try:
                frame = self._parse(
                    sample, header, {n: pl.String for n in header}, names, strict=False
                )
            except Exception as error:  # noqa: BLE001 - polars' words, with the file named
                first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
                raise DataError(
                    f"{path}: the first rows cannot be parsed to infer the schema ({first}). "
                    "A quote inside an unquoted field, or a quote that is never closed, "
                    "makes the rest of the sample one record; fix the file, or pass schema= "
                    "for every column (rows that do not parse are then handled as on_error "
                    "says)."
                ) from None
            for name, dtype in _infer_dtypes(frame, names).items():
                before, where = verdicts[name]
                joined = merge_inferred(before, dtype)
                if joined == "conflict":
                    raise SchemaDriftError(
                        f"Schema drift: column {name!r} holds {before} values in {where} but "
                        f"{dtype} values in {path}. Fix the data, or set its type for all "
                        f"files with schema={{{name!r}: 'string'}}."
                    )
                verdicts[name] = (joined, (where or path) if dtype else where)
        return {name: v for name, (v, _) in verdicts.items()}

    def _open(self, path: str):
        """A binary file object of ``path``'s (decompressed) bytes."""
        return _open(path, self._storage_options)

    def _parse(self, data: bytes, header, dtypes, names, *, strict=True, na=True):
        """One polars call: ``data`` (whole records, no header) -> DataFrame of ``names``.

        With ``na=False`` only empty fields are missing: the NA-token list costs polars ~60%
        more time, and numbers need it only for tokens other than NaN/nan (which parse as NaN
        anyway); string columns get their NA tokens mapped in ``_FileReader._to_numpy``.
        """
        import polars as pl

        return pl.read_csv(
            data,
            has_header=False,
            schema={n: dtypes[n] for n in header},
            columns=[header.index(n) for n in names],
            separator=self._delimiter,
            quote_char='"',
            null_values=self._na_values if na else None,
            empty_string_is_null=True,
            truncate_ragged_lines=not strict,
            raise_if_empty=False,
            encoding="utf8" if strict else "utf8-lossy",
        )


@contextlib.contextmanager
def _open(path: str, storage_options=None):
    """``path`` (local or URL) opened for reading, decompressed when it ends with ``.gz``."""
    with open_input(path, storage_options) as raw:
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                yield f
        else:
            yield raw


def _infer_dtypes(frame, names: list[str]) -> dict[str, str | None]:
    """``int64``/``float32``/``string`` for each String column of ``frame``; None when all its
    values are missing. One polars query for all columns (one per column cost ~0.5 ms each)."""
    import polars as pl

    counts = []
    for i, name in enumerate(names):
        column = pl.nth(frame.get_column_index(name))  # pl.col would read "*", "^a$" as patterns
        counts += [
            column.is_not_null().sum().alias(f"present{i}"),
            column.cast(pl.Int64, strict=False).is_not_null().sum().alias(f"int{i}"),
            column.cast(pl.Float64, strict=False).is_not_null().sum().alias(f"float{i}"),
        ]
    row = frame.select(counts).row(0)
    dtypes: dict[str, str | None] = {}
    for i, name in enumerate(names):
        present, integers, floats = row[3 * i : 3 * i + 3]
        if present == 0:
            dtypes[name] = None
        elif integers == present:
            # Even with gaps in the sample: a row missing an int64 value (a label, an id) is
            # a bad row, reported with its line, rather than a NaN; schema= makes it float.
            dtypes[name] = "int64"
        elif floats == present:
            dtypes[name] = "float32"
        else:
            dtypes[name] = "string"
    return dtypes
