"""The bytes of a CSV file, before any parsing: where its records end (a newline ends a record
only outside quotes), where its data starts (past a UTF-8 BOM and the header), which of its
lines are blank, and what reading a damaged ``.gz`` raises."""

from __future__ import annotations

import functools
import gzip
import re
import zlib

import numpy as np

__all__ = []

_BOM = b"\xef\xbb\xbf"
_QUOTE = b'"'
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
