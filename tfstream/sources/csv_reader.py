"""Reading one CSV file for :class:`~tfstream.sources.csv.CsvSource`, block by block: polars
parses each block at full speed; no row is lost on the way.

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

import csv as _pycsv
import io
import mmap
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from tfstream.sources.base import Chunk
from tfstream.sources.csv_records import (
    _DAMAGED,
    _QUOTE,
    _damaged,
    _data_start,
    _first_record_end,
    _has_blank_line,
    _is_blank,
    _last_record_end,
    _mapped_cut,
    _record_bounds,
)
from tfstream.sources.files import is_url
from tfstream.sources.report import RejectedRow

if TYPE_CHECKING:
    from tfstream.sources.csv import CsvSource

__all__ = []


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
