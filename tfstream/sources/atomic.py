"""Writes that survive a crash: a file appears whole under its final name, or not at all.

Local files are written under a hidden temporary name in the same directory, fsync'ed, renamed
over the final name (``os.replace``, atomic on POSIX) and the directory fsync'ed, so the rename
itself survives a power loss. Object stores (any fsspec URL) have no rename: the bytes go to a
hidden temporary key next to the final one, then are moved (a server-side copy, which makes the
final object appear whole or not at all, then a delete). A crash may leave a temporary file or
key behind, never a partial file under a final name.

Used by everything tfstream writes for later: shards (:class:`~tfstream.sources.ShardWriter`),
statistics (``Stats.save``), checkpoint side files, run records of ``tfstream fit``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from tfstream.sources.files import is_url, local_path, url_filesystem

__all__ = ["fsync_directory", "replacing", "upload", "write_bytes"]


@contextlib.contextmanager
def replacing(path: str | os.PathLike, *, suffix: str = "") -> Iterator[str]:
    """Yields a temporary path next to ``path`` for the caller to write; when the block ends
    without an error, the file is fsync'ed and renamed to ``path``, and the directory fsync'ed.
    On an error the temporary file is removed and ``path`` is left as it was.

    Args:
        path: the final local path; missing directories are created.
        suffix: ends the temporary name (some writers choose the format by the extension,
            e.g. ``".png"`` for matplotlib's ``savefig``).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "out.txt")
        >>> with replacing(path) as temporary:
        ...     with open(temporary, "w") as f:
        ...         _ = f.write("whole or nothing")
        >>> open(path).read()
        'whole or nothing'
    """
    # The path as given, not os.path.abspath'ed: "link/../x" is resolved by the kernel
    # through the link, as open() will resolve it when the file is read back.
    path = os.fspath(path)
    directory, name = os.path.split(path)
    if not name:
        raise IsADirectoryError(f"{path!r} names a directory, not a file to write.")
    if directory:
        os.makedirs(directory, exist_ok=True)
    # Short enough for a 255-byte file name whatever the length of ``name`` (cut in bytes).
    stem = name.encode("utf-8", "surrogateescape")[:100].decode("utf-8", "ignore")
    hidden = f".{stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"
    temporary = os.path.join(directory, hidden)
    try:
        yield temporary
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_directory(directory)


def write_bytes(path: str, data: bytes, storage_options: Mapping[str, Any] | None = None) -> None:
    """``data`` to a local path or an fsspec URL, atomically (see the module docstring)."""
    path = os.fspath(path)
    if is_url(path):
        fs, final = url_filesystem(path, storage_options)
        parent = final.rstrip("/").rpartition("/")[0]
        if parent:
            fs.makedirs(parent, exist_ok=True)
        upload(fs, final, data=data)
        return
    with replacing(local_path(path)) as temporary, open(temporary, "wb") as f:
        f.write(data)


def upload(fs, final: str, *, data: bytes | None = None, local: str | None = None) -> None:
    """Puts ``data`` (or the local file ``local``) on the fsspec filesystem ``fs`` under the
    key ``final``: under a hidden temporary key next to it first, then moved. The temporary key
    is removed when the upload fails."""
    if (data is None) == (local is None):
        raise TypeError("upload() takes one of `data` or `local`.")
    parent, _, name = final.rstrip("/").rpartition("/")
    temporary = f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    temporary = f"{parent}/{temporary}" if parent else temporary
    try:
        if local is not None:
            fs.put_file(local, temporary)
        else:
            fs.pipe_file(temporary, data)
        fs.mv(temporary, final)
    except BaseException:
        with contextlib.suppress(Exception):  # the upload's own error is the one to see
            if fs.exists(temporary):
                fs.rm(temporary)
        raise


def fsync_directory(directory: str) -> None:
    """Makes a rename in ``directory`` durable (POSIX); a no-op where directories cannot be
    opened or fsync'ed."""
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
