"""CSV source: polars parses blocks of a file at full speed; no row is lost on the way.

How a file is read:

1. The file is read in blocks of ``block_bytes`` (default 16 MiB) cut at record boundaries. A
   newline ends a record only outside quotes, so quoted fields may hold delimiters, quotes and
   newlines.
2. polars parses each block in one multi-threaded call into the schema's dtypes.
3. The block is checked: polars fills a row with too few fields with nulls and does not complain,
   so when the file's last column has nulls the delimiters outside quotes are counted (they must
   be ``rows x (columns - 1)``); int64 columns must have no missing value.
4. A block that fails to parse or fails a check is bisected by records and re-parsed by polars
   until every bad record is isolated, so the good rows of a bad block are parsed exactly as in
   the fast path and every bad row is reported with its file and line (or skipped and counted, or
   quarantined, as ``on_error`` says).
"""

from __future__ import annotations

import contextlib
import csv as _pycsv
import functools
import gzip
import io
import mmap
import os
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from tfstream.sources.base import Chunk, Source
from tfstream.sources.files import expand_paths, file_size, is_url, open_input
from tfstream.sources.report import DataError, RejectedRow
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
_BOM = b"\xef\xbb\xbf"
_QUOTE = b'"'
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
            for name in names:
                dtype = _infer_dtype(frame[name])
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
        anyway); string columns get their NA tokens mapped in ``_to_numpy``.
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


class _FileReader:
    """Reads one CSV file block by block (see the module docstring)."""

    def __init__(self, source: CsvSource, path: str, header: list[str]):
        import polars as pl

        self.src = source
        self.path = path
        self.header = header
        self.n_fields = len(header)
        self.names = list(source._schema)
        # Every column is parsed, selected or not: polars then raises on a row with too many
        # fields (with a projection it would not), and the file's last column, null in a row
        # with too few fields, tells when the delimiters must be counted (see _try_parse).
        self.last = header[-1]
        self.parsed = list(header)
        pl_types = {"float32": pl.Float32, "float64": pl.Float64, "int64": pl.Int64}
        self.dtypes = {
            n: pl_types.get(source._schema[n].dtype, pl.String)
            if n in source._schema
            else pl.String
            for n in header
        }
        self.int_columns = [n for n in self.names if source._schema[n].dtype == "int64"]
        self.delim = source._delimiter.encode()
        self.na = False  # switched on for the rest of the file at the first NA token
        self._counted = (0, 0)  # (byte offset, newlines before it), advanced lazily
        self.position = 0  # bytes of the file (as stored: compressed) read so far

    # -- blocks ------------------------------------------------------------------------------

    def chunks(self, report=None) -> Iterator[Chunk]:
        """The file's chunks; ``report(n)`` is told of each block's bytes (as stored)."""
        reported = 0
        blocks = self._blocks()
        while True:
            try:
                offset, block = next(blocks)
            except StopIteration:
                break
            except _DAMAGED as error:  # a truncated or corrupt .gz: the rest cannot be read
                self.src._ledger.lose_file(
                    RejectedRow(self.path, None, None, _damaged(error, self.position), None)
                )
                return
            frames = self._parse_block(offset, block)
            if report is not None and self.position > reported:
                report(self.position - reported)
                reported = self.position
            for frame in frames:
                if frame.height:
                    self.src._ledger.ok(frame.height)
                    yield self._to_numpy(frame)

    def _blocks(self) -> Iterator[tuple[int, bytes]]:
        """Yields ``(byte offset, block)``: whole records, header excluded."""
        if self.path.endswith(".gz") or is_url(self.path):
            return self._stream_blocks()
        return self._mapped_blocks()

    def _mapped_blocks(self) -> Iterator[tuple[int, bytes]]:
        """Plain files are memory-mapped: a block is one copy out of the page cache, and pages
        are released once parsed, so resident memory does not grow with the file."""
        size = self.src._block_bytes
        with open(self.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            pos = _data_start(mm)
            total = len(mm)
            while pos < total:
                end = min(pos + size, total)
                cut = end if end == total else _mapped_cut(mm, pos, end)
                while cut is None:  # one record longer than a block: widen the block
                    end = min(end + size, total)
                    cut = end if end == total else _mapped_cut(mm, pos, end)
                self.position = cut
                yield pos, mm[pos:cut]
                released = pos - pos % mmap.PAGESIZE
                mm.madvise(mmap.MADV_DONTNEED, released, cut - released)
                pos = cut

    def _stream_blocks(self) -> Iterator[tuple[int, bytes]]:
        size = self.src._block_bytes
        with self.src._open(self.path) as f:
            raw = getattr(f, "fileobj", f)  # a gzip file's compressed stream
            pending = f.read(size)
            while _first_record_end(pending) is None:
                more = f.read(size)
                if not more:
                    break
                pending += more
            offset = _data_start(pending)
            # Streamed bytes cannot be re-read cheaply (a .gz is decompressed from its start),
            # so lines are counted as blocks pass (~1 ms per 16 MiB) for _line_of.
            lines = pending.count(b"\n", 0, offset)
            pending = pending[offset:]
            eof = False
            while pending or not eof:
                cut = None if eof else _last_record_end(pending)
                while cut is None and not eof:
                    more = f.read(size)
                    eof = not more
                    pending += more
                    cut = None if eof else _last_record_end(pending)
                if eof:
                    cut = len(pending)
                block, pending = pending[:cut], pending[cut:]
                self.position = raw.tell()
                if block:
                    self._counted = (offset, lines)
                    yield offset, block
                    lines += block.count(b"\n")
                offset += cut

    def _parse_block(self, offset: int, block: bytes) -> list:
        frame = self._try_parse(block)
        if frame is not None:
            return [frame]
        bounds = _record_bounds(block)
        good: list = []
        self._bisect(offset, block, bounds, 0, len(bounds) - 1, good)
        return good

    def _try_parse(self, data: bytes):
        """Parses ``data``; returns None when polars refuses it or a check fails."""
        try:
            frame = self.src._parse(data, self.header, self.dtypes, self.parsed, na=self.na)
        except Exception:  # polars raises ComputeError, but also others on odd input
            if self.na:
                return None
            self.na = True  # NA tokens in numeric columns: parse this file with the list
            return self._try_parse(data)
        # One column: a line of spaces parses as a string, not a null, yet is a blank line.
        checked = self.n_fields == 1 or frame[self.last].null_count()
        if checked and not self._fields_ok(data, frame.height):
            return None
        if any(frame[n].null_count() for n in self.int_columns):
            return None
        return frame

    def _fields_ok(self, data: bytes, rows: int) -> bool:
        if self.n_fields == 1:
            # One column: no row can be short, but a blank line (a null, or spaces) is not a row.
            return not _has_blank_line(data, self.src._delimiter)
        if _QUOTE not in data:
            return data.count(self.delim) == rows * (self.n_fields - 1)
        raw = np.frombuffer(data, dtype=np.uint8)
        outside = (np.cumsum(raw == _QUOTE[0], dtype=np.uint8) & 1) == 0  # parity mod 256
        return int(np.count_nonzero((raw == self.delim[0]) & outside)) == rows * (self.n_fields - 1)

    def _bisect(self, offset, block, bounds, lo, hi, good) -> None:
        """Parses records ``lo..hi-1`` of ``block``; isolates and rejects the bad ones."""
        frame = self._try_parse(block[bounds[lo] : bounds[hi]])
        if frame is not None:
            good.append(frame)
        elif hi - lo == 1:
            self._reject(offset, block, bounds[lo], bounds[hi])
        else:
            mid = (lo + hi) // 2
            self._bisect(offset, block, bounds, lo, mid, good)
            self._bisect(offset, block, bounds, mid, hi, good)

    def _reject(self, offset: int, block: bytes, start: int, end: int) -> None:
        record = block[start:end]
        if _is_blank(record, self.src._delimiter):
            return  # a blank line is not a row (as in pandas)
        text = record.decode("utf-8", errors="replace").rstrip("\r\n")
        line = self._line_of(offset, block, start)
        self.src._ledger.reject(RejectedRow(self.path, line, None, self._diagnose(record), text))

    def _diagnose(self, record: bytes) -> str:
        lines = record.rstrip(b"\r\n").count(b"\n") + 1
        if record.count(_QUOTE) % 2:
            return (
                f"a quote is never closed: from here to the end of the file ({lines:,} lines) "
                "is one record that cannot be parsed"
            )
        reason = self._diagnose_one(record)
        if lines > 1 and _QUOTE in record:
            reason += (
                f" (the record spans {lines:,} lines: a quoted field runs on, newlines "
                "included, up to its closing quote)"
            )
        return reason

    def _diagnose_one(self, record: bytes) -> str:
        try:
            text = record.decode("utf-8")
        except UnicodeDecodeError as e:
            return f"not valid UTF-8 ({e.reason} at byte {e.start})"
        limit = _pycsv.field_size_limit()
        _pycsv.field_size_limit(max(limit, len(text) + 1))  # default: 128 KiB per field
        try:
            fields = next(_pycsv.reader(io.StringIO(text), delimiter=self.src._delimiter), [])
        finally:
            _pycsv.field_size_limit(limit)
        if len(fields) != self.n_fields:
            return f"expected {self.n_fields} fields, found {len(fields)}"
        values = dict(zip(self.header, fields, strict=True))
        na = set(self.src._na_values)
        for name in self.int_columns:
            if values[name] in na:
                return (
                    f"missing value in int64 column {name!r} (declare it float in "
                    f"schema={{{name!r}: 'float32'}} to keep such rows with NaN)"
                )
        try:
            self.src._parse(record, self.header, self.dtypes, self.parsed)
        except Exception as e:  # noqa: BLE001 - we report polars' own words
            return str(e).strip().splitlines()[0]
        return "the row could not be parsed"

    def _line_of(self, offset: int, block: bytes, start: int) -> int:
        """1-based line number of byte ``start`` of the block at ``offset``. In a mapped file,
        newlines are counted lazily, from where the last count stopped: clean files never pay
        for it. Streamed blocks arrive counted (see ``_stream_blocks``)."""
        done, count = self._counted
        if offset != done:
            with self.src._open(self.path) as f:
                f.seek(done)
                remaining = offset - done
                while remaining > 0:
                    piece = f.read(min(remaining, 1 << 24))
                    if not piece:
                        break
                    count += piece.count(b"\n")
                    remaining -= len(piece)
            self._counted = (offset, count)
        return count + block.count(b"\n", 0, start) + 1

    # -- to numpy ----------------------------------------------------------------------------

    def _to_numpy(self, frame) -> Chunk:
        import polars as pl

        out = {}
        for name in self.names:
            series = frame[name]
            if self.src._schema[name].dtype == "string":
                missing = series.is_null() | series.is_in(self.src._na_values)
                series = series.zip_with(~missing, pl.Series([self.src._missing_string]))
                out[name] = series.to_numpy()
            else:
                out[name] = series.to_numpy()
        return out


@contextlib.contextmanager
def _open(path: str, storage_options=None):
    """``path`` (local or URL) opened for reading, decompressed when it ends with ``.gz``."""
    with open_input(path, storage_options) as raw:
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                yield f
        else:
            yield raw


_NEWLINE = ord("\n")
_BLANK_STARTS = np.frombuffer(b" \t\r\n", dtype=np.uint8)


def _blanks(delimiter: str) -> bytes:
    """What a blank line may hold: spaces and tabs, the delimiter excepted (with ``\\t`` as the
    delimiter, a line of one tab is a row of two empty fields). pandas skips blank lines, and
    so do we: they are not rows."""
    return bytes(c for c in b" \t" if c != ord(delimiter))


def _is_blank(record: bytes, delimiter: str) -> bool:
    return not record.strip(_blanks(delimiter) + b"\r\n")


@functools.lru_cache(maxsize=8)
def _blank_line(delimiter: str) -> re.Pattern:
    """Finds a blank line in a block of whole records (the empty end after its last newline is
    not a line)."""
    b = b"[" + re.escape(_blanks(delimiter)) + b"]"
    return re.compile(rb"(?:^|\n)(?:" + b + rb"*\r?\n|" + b + rb"+\r?\Z|\r\Z)")


def _may_hold_blank_lines(data: bytes) -> bool:
    """False when ``data`` surely holds no blank line: no line starts with a space, a tab, CR
    or LF (~0.7 ms per MiB; the regular expressions below run at ~70 MB/s)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if not raw.size:
        return False
    starts = np.concatenate([raw[:1], raw[1:][raw[:-1] == _NEWLINE]])
    return bool(np.isin(starts, _BLANK_STARTS).any())


def _has_blank_line(data: bytes, delimiter: str) -> bool:
    """Whether a record of ``data`` (whole records) is a blank line; a line of spaces inside a
    quoted field is not one."""
    if not _may_hold_blank_lines(data):
        return False
    if _QUOTE not in data:
        return _blank_line(delimiter).search(data) is not None
    raw = np.frombuffer(data, dtype=np.uint8)
    blank = np.isin(raw, np.frombuffer(_blanks(delimiter) + b"\r\n", dtype=np.uint8))
    solid = np.concatenate([[0], np.cumsum(~blank)])  # non-blank bytes before each offset
    bounds = _record_bounds(data)
    return bool(np.any(solid[bounds[1:]] == solid[bounds[:-1]]))


def _drop_blank_lines(data: bytes, delimiter: str) -> bytes:
    """``data`` without its blank lines (for the inference sample)."""
    if not _may_hold_blank_lines(data):
        return data
    b = b"[" + re.escape(_blanks(delimiter)) + b"]"
    data = re.sub(rb"(?m)^" + b + rb"*\r?\n", b"", data)
    return re.sub(rb"(?m)^" + b + rb"+\r?\Z", b"", data)


def _data_start(data) -> int:
    """Offset of the first data record: past a UTF-8 BOM and the header record."""
    bom = len(_BOM) if data[: len(_BOM)] == _BOM else 0
    head = bytes(data[bom : bom + (1 << 16)])
    end = _first_record_end(head)
    while end is None and bom + len(head) < len(data):
        head = bytes(data[bom : bom + 2 * len(head)])
        end = _first_record_end(head)
    return bom + (len(head) if end is None else end)


#: What reading a damaged compressed file raises (zlib.error: corrupt data; EOFError: truncated;
#: gzip.BadGzipFile: not gzip at all).
_DAMAGED = (EOFError, zlib.error, gzip.BadGzipFile)


def _damaged(error: BaseException, position: int) -> str:
    return (
        f"the compressed file is damaged or truncated ({error}); nothing after byte "
        f"{position:,} of it can be read"
    )


def _mapped_cut(mm, pos: int, end: int) -> int | None:
    """End of the last whole record in ``mm[pos:end]``, or None."""
    if mm.find(_QUOTE, pos, end) == -1:
        cut = mm.rfind(b"\n", pos, end)
        return None if cut == -1 else cut + 1
    cut = _last_record_end(mm[pos:end])
    return None if cut is None else pos + cut


def _first_record_end(data: bytes) -> int | None:
    """Index just past the first record's newline, or None when ``data`` holds no whole
    record."""
    pos = data.find(b"\n")
    while pos != -1:
        if data.count(_QUOTE, 0, pos) % 2 == 0:
            return pos + 1
        pos = data.find(b"\n", pos + 1)
    return None


def _last_record_end(data: bytes) -> int | None:
    """Index just past the last newline outside quotes, or None."""
    if _QUOTE not in data:
        pos = data.rfind(b"\n")
        return None if pos == -1 else pos + 1
    ends = _record_ends(data)
    return int(ends[-1]) if len(ends) else None


def _record_ends(data: bytes) -> np.ndarray:
    """Offsets just past each newline that lies outside quotes."""
    raw = np.frombuffer(data, dtype=np.uint8)
    newline = raw == ord("\n")
    if _QUOTE in data:
        newline &= (np.cumsum(raw == _QUOTE[0], dtype=np.uint8) & 1) == 0  # parity mod 256
    return np.flatnonzero(newline) + 1


def _record_bounds(data: bytes) -> np.ndarray:
    """``[0, end of record 1, end of record 2, ..., len(data)]``: a final record without a
    newline counts as a record."""
    ends = _record_ends(data)
    tail = [len(data)] if not len(ends) or ends[-1] != len(data) else []
    return np.concatenate([[0], ends, tail]).astype(np.int64)


def _sample_records(opener, path: str, nbytes: int) -> bytes:
    """The first whole records after the header, about ``nbytes`` of them."""
    with opener(path) as f:
        data = f.read(nbytes)
        complete = len(data) < nbytes
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    start = _first_record_end(data)
    if start is None:
        return b""
    data = data[start:]
    if complete:
        return data
    end = _last_record_end(data)
    return data[:end] if end else b""


def _infer_dtype(series) -> str | None:
    """``int64``/``float32``/``string`` from a String series; None when all values are
    missing."""
    import polars as pl

    present = series.drop_nulls()
    if present.len() == 0:
        return None
    if present.cast(pl.Int64, strict=False).null_count() == 0:
        # Even with gaps in the sample: a row missing an int64 value (a label, an id) is a
        # bad row, reported with its line, rather than a NaN; schema= makes it float.
        return "int64"
    if present.cast(pl.Float64, strict=False).null_count() == 0:
        return "float32"
    return "string"
