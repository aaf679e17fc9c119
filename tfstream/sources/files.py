"""Paths and URLs: expanding what a user names into files, and opening them.

Every file source takes local paths and fsspec URLs (``s3://``, ``gs://``, ``hdfs://``,
``memory://``, ``file://`` ...), each a file, a glob or a directory, or a list of them. This
module is the one place that knows the difference:

- local paths (and ``file://`` URLs, which become local paths) keep the readers' fast paths
  (memory-mapped CSV, TF's own file reads);
- any other URL goes through fsspec: ``storage_options`` (a dict, the usual fsspec keyword:
  ``{"key": ..., "secret": ..., "client_kwargs": {"endpoint_url": ...}}`` for S3) is passed to
  the filesystem. The protocol's package is an optional extra (``pip install 'tfstream[s3]'``
  for ``s3://``, ``'tfstream[gcs]'`` for ``gs://``); a missing one is named in the error.

Credentials never reach a message or a log: file names are built from the filesystem's own
paths, and every URL shown to the user goes through :func:`redact`, which drops ``user:pass@``
and the query string (``?access_key=...``).
"""

from __future__ import annotations

import glob
import io
import os
import posixpath
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "arrow_location",
    "expand_paths",
    "file_size",
    "is_url",
    "local_path",
    "open_input",
    "redact",
    "url_filesystem",
]

_GLOB_CHARS = set("*?[")

#: The optional extra that brings each protocol's fsspec implementation.
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}

# The filesystem each expanded URL was found on: reopening a file uses the very filesystem
# (and so the credentials, host and port) that listed it. Bounded by the files named.
_FILESYSTEMS: dict[str, Any] = {}


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL read through fsspec (``file://`` URLs are local paths)."""
    scheme = _scheme(path)
    return scheme is not None and scheme not in ("file", "local")


def redact(path: str) -> str:
    """``path`` fit for a message: a URL loses its ``user:password@`` and query string."""
    path = os.fspath(path)
    if _scheme(path) is None:
        return path
    parts = urllib.parse.urlsplit(path)
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{netloc}{parts.path}"


def url_filesystem(url: str, storage_options: Mapping[str, Any] | None = None):
    """``(fsspec filesystem, path on it)`` for ``url``.

    Raises:
        ImportError: the protocol's package is missing; the message names the extra.
    """
    known = _FILESYSTEMS.get(url)
    if known is not None and not storage_options:
        return known, known._strip_protocol(url)
    import fsspec.core

    try:
        fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except ImportError as e:
        scheme = _scheme(url) or ""
        extra = _EXTRAS.get(scheme)
        how = f"pip install 'tfstream[{extra}]'" if extra else f"install fsspec's {scheme} backend"
        raise ImportError(
            f"Reading {redact(url)} needs the {scheme}:// filesystem, which is not installed "
            f"({e}). Fix: {how}."
        ) from None
    except ValueError as e:
        if "Protocol not known" in str(e):
            raise ValueError(
                f"fsspec knows no protocol {_scheme(url)!r} (in {redact(url)})."
            ) from None
        raise
    return fs, path


def open_input(path: str, storage_options: Mapping[str, Any] | None = None, *, block_size=None):
    """A binary file object to read ``path`` (local or URL); use it as a context manager."""
    if not is_url(path):
        return open(local_path(path), "rb")
    fs, fs_path = url_filesystem(path, storage_options)
    kwargs = {} if block_size is None else {"block_size": block_size}
    f = fs.open(fs_path, "rb", **kwargs)
    if "memory" in _protocols(fs):
        # fsspec's memory filesystem hands out its one stored object, whose position every
        # opener shares: read a copy of its bytes (which are in memory already) instead.
        return io.BytesIO(f.getvalue())
    return f


def arrow_location(path: str, storage_options: Mapping[str, Any] | None = None):
    """``(path, filesystem)`` to hand pyarrow: a local path and None, or the path on a
    ``pyarrow.fs.PyFileSystem`` over the URL's fsspec filesystem (random reads, so Parquet
    footers and row groups are fetched as needed, never the whole file)."""
    if not is_url(path):
        return local_path(path), None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs, fs_path = url_filesystem(path, storage_options)
    return fs_path, PyFileSystem(FSSpecHandler(fs))


def file_size(path: str, storage_options: Mapping[str, Any] | None = None) -> int | None:
    """Bytes in ``path``, or None when the filesystem cannot tell."""
    try:
        if not is_url(path):
            return os.path.getsize(local_path(path))
        fs, fs_path = url_filesystem(path, storage_options)
        size = fs.size(fs_path)
    except (OSError, ValueError):
        return None
    return None if size is None else int(size)


def expand_paths(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    suffixes: Sequence[str],
    what: str,
    storage_options: Mapping[str, Any] | None = None,
) -> list[str]:
    """Returns the sorted, de-duplicated files that ``paths`` names.

    A directory contributes the files below it (recursively) whose names end with one of
    ``suffixes``; a glob contributes what it matches; a file contributes itself whatever its
    suffix. Hidden files and files starting with ``_`` (``_SUCCESS``, ``_metadata``) are skipped
    inside directories. URLs are listed through fsspec and come back as URLs of the same
    protocol (without credentials); ``file://`` URLs come back as local paths.

    Raises:
        FileNotFoundError: a path does not exist, a glob matches nothing, or a directory holds
            no matching file. The message names the pattern (credentials removed).
        ImportError: a URL's protocol needs an optional extra that is not installed.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise FileNotFoundError(f"No {what} paths were given. Received: an empty list.")
    files: list[str] = []
    for pattern in paths:
        if is_url(pattern):
            files.extend(_expand_url(pattern, suffixes, what, storage_options))
        else:
            files.extend(_expand_local(local_path(pattern), suffixes, what))
    return list(dict.fromkeys(files))


def is_dir(path: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether ``path`` (local or URL) is a directory."""
    if not is_url(path):
        return os.path.isdir(local_path(path))
    fs, fs_path = url_filesystem(path, storage_options)
    return bool(fs.isdir(fs_path))


def relative_dirs(path: str, base: str) -> list[str] | None:
    """The directory names between ``base`` and the file ``path`` (both local, or both URLs
    of one filesystem); None when ``path`` is not below ``base``."""
    if is_url(path):
        parent = _url_path(path).rstrip("/").rpartition("/")[0]
        root = _url_path(base).rstrip("/")
        relative = posixpath.relpath(parent or "/", root or "/")
        sep = "/"
    else:
        parent = os.path.dirname(os.path.abspath(local_path(path)))
        relative = os.path.relpath(parent, os.path.abspath(local_path(base)))
        sep = os.sep
    if relative.startswith(".."):
        return None
    return [] if relative == "." else relative.split(sep)


# -- local -----------------------------------------------------------------------------------


def _expand_local(pattern: str, suffixes: Sequence[str], what: str) -> list[str]:
    if any(c in _GLOB_CHARS for c in pattern):
        matched = sorted(glob.glob(pattern, recursive=True))
        found = [m for m in matched if os.path.isfile(m)]
        found += [f for m in matched if os.path.isdir(m) for f in _walk(m, suffixes)]
        if not found:
            raise FileNotFoundError(f"The {what} glob {pattern!r} matched no file.")
        return found
    if os.path.isdir(pattern):
        found = _walk(pattern, suffixes)
        if not found:
            raise FileNotFoundError(
                f"The directory {pattern!r} holds no {what} file "
                f"(looked for names ending with {', '.join(suffixes)})."
            )
        return found
    if os.path.isfile(pattern):
        return [pattern]
    raise FileNotFoundError(f"The {what} path {pattern!r} does not exist.")


def _walk(directory: str, suffixes: Sequence[str]) -> list[str]:
    out = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(names):
            if name.startswith((".", "_")):
                continue
            if name.endswith(tuple(suffixes)):
                out.append(os.path.join(root, name))
    return out


# -- URLs ------------------------------------------------------------------------------------


def _expand_url(pattern, suffixes, what, storage_options) -> list[str]:
    fs, fs_path = url_filesystem(pattern, storage_options)
    shown = redact(pattern)
    if any(c in _GLOB_CHARS for c in fs_path):
        matched = sorted(fs.glob(fs_path, detail=True).items())
        if not posixpath.basename(fs_path).startswith("."):
            # As a local glob does: ``*`` skips hidden names, e.g. the temporary key an
            # interrupted upload leaves (``.part-00001.csv.tmp-<pid>-<random>``).
            matched = [(p, i) for p, i in matched if not posixpath.basename(p).startswith(".")]
        found = [p for p, info in matched if info.get("type") != "directory"]
        for p, info in matched:
            if info.get("type") == "directory":
                found += _find(fs, p, suffixes)
        if not found:
            raise FileNotFoundError(f"The {what} glob {shown!r} matched no file.")
    elif fs.isdir(fs_path):
        found = _find(fs, fs_path, suffixes)
        if not found:
            raise FileNotFoundError(
                f"The directory {shown!r} holds no {what} file "
                f"(looked for names ending with {', '.join(suffixes)})."
            )
    elif fs.isfile(fs_path):
        found = [fs_path]
    else:
        raise FileNotFoundError(f"The {what} path {shown!r} does not exist.")
    urls = []
    for p in found:
        url = redact(fs.unstrip_protocol(p))
        _FILESYSTEMS[url] = fs
        urls.append(url)
    return urls


def _find(fs, directory: str, suffixes: Sequence[str]) -> list[str]:
    root = directory.rstrip("/")
    out = []
    for path in sorted(fs.find(root)):
        parts = path[len(root) :].strip("/").split("/")
        if any(part.startswith((".", "_")) for part in parts):
            continue
        if parts[-1].endswith(tuple(suffixes)):
            out.append(path)
    return out


def _protocols(fs) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _scheme(path: str) -> str | None:
    head, sep, _ = path.partition("://")
    if not sep or not head or not all(c.isalnum() or c in "+-." for c in head):
        return None
    return head.lower()


def local_path(path: str) -> str:
    """A ``file://`` URL as a local path; anything else as it is."""
    if _scheme(path) in ("file", "local"):
        return urllib.parse.unquote(urllib.parse.urlsplit(path).path) or "/"
    return path


def _url_path(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.netloc.rpartition("@")[2] + parts.path
