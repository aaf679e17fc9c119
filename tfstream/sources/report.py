"""Row accounting: every row a source reads is either kept or rejected, and rejections are
raised, skipped (counted) or quarantined (counted and written out) — never dropped silently."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import threading

__all__ = ["DataError", "RejectedRow", "RowLedger", "RowReport", "ON_ERROR"]

ON_ERROR = ("raise", "skip", "quarantine")
_KEPT_EXAMPLES = 20


class DataError(ValueError):
    """A row or record of a source cannot be read. The message names the file and the line
    (text files) or record index (record files)."""


@dataclasses.dataclass(frozen=True)
class RejectedRow:
    """One rejected row: where it was (``line`` is 1-based for text files, ``record`` a 0-based
    index for record files), why, and its raw text when there is one."""

    file: str
    line: int | None
    record: int | None
    error: str
    text: str | None = None

    def where(self) -> str:
        if self.line is not None:
            return f"{self.file}, line {self.line}"
        if self.record is not None:
            return f"{self.file}, record {self.record}"
        return self.file

    def message(self) -> str:
        text = "" if self.text is None else f": {_clip(self.text)!r}"
        return f"{self.where()}: {self.error}{text}"


@dataclasses.dataclass(frozen=True)
class RowReport:
    """What a source has read so far, over every dataset made from it.

    ``rows_read == rows_ok + rows_rejected`` always. ``rejected`` holds the first few rejected
    rows; ``lost_files`` names files whose tail could not be read (a corrupt record file under
    ``on_error="skip"``/``"quarantine"``: the rest of that file is lost, and counted here).
    """

    rows_read: int
    rows_ok: int
    rows_rejected: int
    quarantine_path: str | None
    rejected: tuple[RejectedRow, ...] = ()
    lost_files: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = [
            f"rows read {self.rows_read:,}, kept {self.rows_ok:,}, rejected {self.rows_rejected:,}"
        ]
        if self.quarantine_path:
            lines.append(f"rejected rows written to {self.quarantine_path}")
        for row in self.rejected:
            lines.append(f"  rejected: {row.message()}")
        if self.rows_rejected > len(self.rejected):
            lines.append(f"  ... and {self.rows_rejected - len(self.rejected):,} more")
        for name in self.lost_files:
            lines.append(f"  file cut short by a corrupt record: {name}")
        return "\n".join(lines)


class RowLedger:
    """Counts rows and applies the ``on_error`` policy. Thread-safe (tf.data runs readers in its
    own threads)."""

    def __init__(self, on_error: str = "raise", quarantine_path: str | os.PathLike | None = None):
        if on_error not in ON_ERROR:
            raise ValueError(
                f"`on_error` must be one of {ON_ERROR}. Received: on_error={on_error!r}"
            )
        if quarantine_path is not None and on_error != "quarantine":
            raise ValueError(
                "`quarantine_path` is only used with on_error='quarantine'. "
                f"Received: on_error={on_error!r}, quarantine_path={quarantine_path!r}"
            )
        self.on_error = on_error
        if on_error == "quarantine" and quarantine_path is None:
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            quarantine_path = os.path.abspath(f"tfstream-quarantine-{stamp}-{os.getpid()}.jsonl")
        self.quarantine_path = None if quarantine_path is None else os.fspath(quarantine_path)
        self._lock = threading.Lock()
        self._ok = 0
        self._rejected = 0
        self._examples: list[RejectedRow] = []
        self._lost_files: list[str] = []

    def ok(self, n: int) -> None:
        with self._lock:
            self._ok += n

    def reject(self, row: RejectedRow) -> None:
        """Applies the policy to one bad row: raises :class:`DataError`, or counts it (and writes
        it to the quarantine file)."""
        if self.on_error == "raise":
            raise DataError(
                f"{row.message()}\nPass on_error='skip' to count and skip bad rows, or "
                "on_error='quarantine' to also write them to a file."
            )
        with self._lock:
            self._rejected += 1
            if len(self._examples) < _KEPT_EXAMPLES:
                self._examples.append(row)
            if self.quarantine_path is not None:
                record = dataclasses.asdict(row)
                with open(self.quarantine_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def lose_file(self, row: RejectedRow) -> None:
        """A record file is corrupt from ``row`` on: the corrupt record counts as rejected and
        the file is listed in ``lost_files``."""
        self.reject(row)
        with self._lock:
            self._lost_files.append(row.file)

    def report(self) -> RowReport:
        with self._lock:
            return RowReport(
                rows_read=self._ok + self._rejected,
                rows_ok=self._ok,
                rows_rejected=self._rejected,
                quarantine_path=self.quarantine_path if self._rejected else None,
                rejected=tuple(self._examples),
                lost_files=tuple(self._lost_files),
            )


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
