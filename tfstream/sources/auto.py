"""Opening a source by the suffixes of its files: CSV, TFRecord or Parquet."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable

from tfstream.sources.files import expand_paths, is_url, local_path

__all__ = ["SUFFIXES", "detect_format", "open_source"]

#: File name endings of each readable format.
SUFFIXES = {
    "csv": (".csv", ".csv.gz", ".tsv", ".tsv.gz"),
    "tfrecord": (".tfrecord", ".tfrecords", ".tfrec", ".tfrecord.gz", ".tfrecords.gz"),
    "parquet": (".parquet", ".pq", ".parq"),
}  # fmt: skip

_GLOB_CHARS = set("*?[")


def open_source(
    paths,
    *,
    format: str | None = None,
    label: str | None = None,
    on_error: str = "raise",
    **kwargs,
):
    """Opens ``paths`` with the reader of their format: :func:`tfstream.csv`,
    :func:`tfstream.tfrecord` or :func:`tfstream.parquet`.

    Args:
        paths: a path, a glob, a directory or a list of them, as the readers take them
            (local or fsspec URLs; pass the filesystem's options as ``storage_options=``).
        format: ``"csv"``, ``"tfrecord"`` or ``"parquet"``; by default guessed from the file
            suffixes (see :data:`SUFFIXES`; a directory is judged by the files below it).
        label: the label column.
        on_error: ``"raise"``, ``"skip"`` or ``"quarantine"``, passed to the reader.
        **kwargs: further arguments of the reader (``delimiter=``, ``columns=``,
            ``schema=``, ``quarantine_path=``, ...). CSV files that all end with ``.tsv`` or
            ``.tsv.gz`` are read with ``delimiter="\\t"`` unless one is given (the TFRecord
            reader itself reads names ending with ``.gz`` as GZIP).

    Returns:
        A :class:`tfstream.sources.Source`.

    Raises:
        ValueError: the format cannot be told from the suffixes (unknown or mixed); the
            message lists what was found and says how to name the format.
        FileNotFoundError: a path does not exist.

    Example:

    >>> from tfstream.sources.auto import open_source
    >>> src = open_source("data/", label="label")          # doctest: +SKIP
    """
    files = _candidate_files(paths, kwargs.get("storage_options"))
    if format is None:
        format = detect_format(paths, _files=files)
    if format == "csv":
        from tfstream.sources.csv import csv

        if "delimiter" not in kwargs and files and all(_is_tsv(f) for f in files):
            kwargs["delimiter"] = "\t"
        return csv(paths, label=label, on_error=on_error, **kwargs)
    if format == "tfrecord":
        from tfstream.sources.tfrecord import tfrecord

        return tfrecord(paths, label=label, on_error=on_error, **kwargs)
    if format == "parquet":
        from tfstream.sources.parquet import parquet

        return parquet(paths, label=label, on_error=on_error, **kwargs)
    raise ValueError(f"`format` must be one of {sorted(SUFFIXES)}. Received: format={format!r}")


def detect_format(paths, *, storage_options=None, _files: list[str] | None = None) -> str:
    """The format of ``paths`` by their suffixes: ``"csv"``, ``"tfrecord"`` or ``"parquet"``.

    Files with an unknown suffix inside a directory are ignored; a file named explicitly (or
    matched by a glob) must have a known suffix.

    Raises:
        ValueError: no known suffix, or suffixes of several formats.
        FileNotFoundError: a path without a known suffix does not exist.
    """
    files = _candidate_files(paths, storage_options) if _files is None else _files
    found: dict[str, list[str]] = {}
    unknown: list[str] = []
    for path in files:
        fmt = _format_of(path)
        if fmt is None:
            unknown.append(path)
        else:
            found.setdefault(fmt, []).append(path)
    hint = "Name the format with format=... (on the command line: --format csv|tfrecord|parquet)."
    if len(found) > 1:
        examples = "; ".join(f"{fmt}: {names[0]}" for fmt, names in sorted(found.items()))
        raise ValueError(
            f"The paths mix files of several formats ({examples}). Give the files of one "
            f"format at a time, or name the format to read with format=... (--format ...)."
        )
    if unknown:
        raise ValueError(
            f"Cannot tell the format of {unknown[0]!r} from its name (known endings: "
            f"{', '.join(s for suffixes in SUFFIXES.values() for s in suffixes)}). {hint}"
        )
    if not found:
        raise ValueError(f"Found no file with a known suffix in {_show(paths)}. {hint}")
    return next(iter(found))


def _show(paths) -> str:
    if isinstance(paths, (str, os.PathLike)):
        return repr(os.fspath(paths))
    return repr([os.fspath(p) for p in paths])


def _candidate_files(paths, storage_options=None) -> list[str]:
    """The files whose suffixes decide the format: explicit files and glob matches as they
    are, the known-suffix files below directories (URLs listed through fsspec). Missing paths
    count by name."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not isinstance(paths, Iterable):
        raise TypeError(
            "`paths` must be a path, a glob, a directory or a list of them. "
            f"Received: {type(paths).__name__}"
        )
    paths = list(paths)
    if not paths:
        raise FileNotFoundError("No paths were given. Received: an empty list.")
    out: list[str] = []
    for item in paths:
        path = local_path(os.fspath(item))
        if is_url(path):
            if _format_of(path) is not None and not any(c in _GLOB_CHARS for c in path):
                out.append(path)  # a file by its name: the reader lists and names it
                continue
            known = tuple(s for suffixes in SUFFIXES.values() for s in suffixes)
            out.extend(
                expand_paths(path, suffixes=known, what="data", storage_options=storage_options)
            )
        elif any(c in _GLOB_CHARS for c in path):
            matches = sorted(glob.glob(path, recursive=True))
            if not matches:
                raise FileNotFoundError(f"The glob {path!r} matched no file.")
            for match in matches:
                out.extend(_walk(match) if os.path.isdir(match) else [match])
        elif os.path.isdir(path):
            out.extend(_walk(path))
        elif os.path.exists(path) or _format_of(path) is not None:
            out.append(path)  # a missing file with a known suffix: the reader names it
        else:
            raise FileNotFoundError(f"The path {path!r} does not exist.")
    return out


def _walk(directory: str) -> list[str]:
    out = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(names):
            if not name.startswith((".", "_")) and _format_of(name) is not None:
                out.append(os.path.join(root, name))
    return out


def _format_of(path: str) -> str | None:
    name = path.lower()
    for fmt, suffixes in SUFFIXES.items():
        if name.endswith(suffixes):
            return fmt
    return None


def _is_tsv(path: str) -> bool:
    return path.lower().endswith((".tsv", ".tsv.gz"))
