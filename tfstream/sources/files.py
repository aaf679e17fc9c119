"""Expanding a user's paths (a path, a glob, a directory, or a list of them) into files."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence

__all__ = ["expand_paths"]

_GLOB_CHARS = set("*?[")


def expand_paths(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    suffixes: Sequence[str],
    what: str,
) -> list[str]:
    """Returns the sorted, de-duplicated files that ``paths`` names.

    A directory contributes the files below it (recursively) whose names end with one of
    ``suffixes``; a glob contributes what it matches; a file contributes itself whatever its
    suffix. Hidden files and files starting with ``_`` (``_SUCCESS``, ``_metadata``) are skipped
    inside directories.

    Raises:
        FileNotFoundError: a path does not exist, a glob matches nothing, or a directory holds
            no matching file. The message names the pattern.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise FileNotFoundError(f"No {what} paths were given. Received: an empty list.")
    files: list[str] = []
    for pattern in paths:
        if any(c in _GLOB_CHARS for c in pattern):
            matched = sorted(glob.glob(pattern, recursive=True))
            found = [m for m in matched if os.path.isfile(m)]
            found += [f for m in matched if os.path.isdir(m) for f in _walk(m, suffixes)]
            if not found:
                raise FileNotFoundError(f"The {what} glob {pattern!r} matched no file.")
        elif os.path.isdir(pattern):
            found = _walk(pattern, suffixes)
            if not found:
                raise FileNotFoundError(
                    f"The directory {pattern!r} holds no {what} file "
                    f"(looked for names ending with {', '.join(suffixes)})."
                )
        elif os.path.isfile(pattern):
            found = [pattern]
        else:
            raise FileNotFoundError(f"The {what} path {pattern!r} does not exist.")
        files.extend(found)
    return list(dict.fromkeys(files))


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
