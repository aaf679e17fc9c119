"""Hive partitions: ``key=value`` directories between a given directory and a file become
columns of the file's rows (``year=2024/month=01/part-0.parquet``), as Spark and
``pyarrow.parquet.write_to_dataset`` write them.

Values are percent-decoded, ``__HIVE_DEFAULT_PARTITION__`` is a missing value, and each file's
value of a partition column is one constant repeated over its rows.
"""

from __future__ import annotations

import os
import re
import urllib.parse

import numpy as np

from tfstream.sources.arrow import Problems, _missing_int
from tfstream.sources.files import is_dir, relative_dirs
from tfstream.sources.schema import Column

__all__ = []

_GLOB_CHARS = set("*?[")
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_INTEGER = re.compile(r"^[+-]?\d+$")


def _partition_base(pattern: str, storage_options=None) -> str:
    url = "://" in pattern
    if any(c in _GLOB_CHARS for c in pattern):
        parts = re.split(r"/" if url else r"[\\/]", pattern)
        fixed = []
        for part in parts:
            if any(c in _GLOB_CHARS for c in part):
                break
            fixed.append(part)
        return ("/" if url else os.sep).join(fixed) or "."
    if is_dir(pattern, storage_options):
        return pattern
    if url:
        return pattern.rpartition("/")[0]
    return os.path.dirname(pattern) or "."


def _hive_values(path: str, base: str) -> dict[str, str | None]:
    segments = relative_dirs(path, base)
    values: dict[str, str | None] = {}
    if segments is None:
        return values
    for segment in segments:
        key, eq, value = segment.partition("=")
        if eq and key:
            value = urllib.parse.unquote(value)
            values[urllib.parse.unquote(key)] = None if value == _HIVE_NULL else value
    return values


def _parse_partition(value: str | None, dtype: str):
    if value is None:
        return None
    if dtype == "string":
        return value
    if dtype == "int64":
        if not _INTEGER.match(value):
            raise ValueError(value)
        return int(value)
    return float(value)


def _constant(column: Column, value, n: int) -> tuple[np.ndarray, Problems]:
    """A partition column: one value (already parsed) repeated ``n`` times."""
    if value is not None:
        return np.full(n, value, dtype=column.numpy_dtype), []
    if column.dtype == "string":
        return np.full(n, "", dtype=object), []
    if column.dtype == "int64":
        return np.zeros(n, np.int64), [(np.ones(n, bool), _missing_int(column.name))]
    return np.full(n, np.nan, dtype=column.numpy_dtype), []
