"""Versioned SavedModels for TF Serving, written atomically, with their preprocessing inside.

TF Serving watches a base directory and serves the highest all-digit subdirectory::

    base_dir/
      1/
      2/                                  <- the newest version, served
        saved_model.pb  fingerprint.pb
        variables/variables.index  variables/variables.data-00000-of-00001
        assets/                           (vocabularies, when there are any)
        assets.extra/tf_serving_warmup_requests

A version is assembled in ``base_dir/.tmp-<version>-<pid>`` (TF Serving ignores names that are
not all digits), every file and directory is fsync'd, then it is renamed into place: a server
polling ``base_dir`` sees either no version ``N`` or a complete one. Old versions removed by
``keep=`` are first renamed to a hidden name, then deleted. Leftovers of a killed export
(hidden names of a process that is gone, over an hour old) are deleted by the next export.

Example:

>>> import tfstream as ts
>>> path = ts.export_saved_model(model, "savedmodels/churn", preprocessor=prep)  # doctest: +SKIP
>>> path
'savedmodels/churn/1'
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time

from tfstream.export.signatures import ServingModule, detect_task, raw_features
from tfstream.export.warmup import WARMUP_FILE, write_warmup

__all__ = ["ExportOptions", "export_saved_model", "list_versions"]

_TMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".deleting-"


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """Rare knobs of :func:`export_saved_model`.

    Args:
        warmup_rows: at most this many rows of ``warmup=`` go into the warmup requests.
        fsync: fsync every file and directory of the version before it is renamed into place
            (turn off only for throwaway exports on slow disks).
    """

    warmup_rows: int = 8
    fsync: bool = True

    def __post_init__(self):
        if isinstance(self.warmup_rows, bool) or not isinstance(self.warmup_rows, int):
            raise TypeError(f"`warmup_rows` must be an int. Received: {self.warmup_rows!r}")
        if self.warmup_rows < 1:
            raise ValueError(f"`warmup_rows` must be >= 1. Received: {self.warmup_rows}")


def export_saved_model(
    model,
    base_dir,
    *,
    preprocessor=None,
    version: int | None = None,
    keep: int | None = None,
    features=None,
    task: str = "auto",
    warmup=None,
    options: ExportOptions | None = None,
) -> str:
    """Exports ``model`` (with ``preprocessor``) as ``base_dir/<version>/`` for TF Serving.

    The SavedModel takes raw features and needs neither tfstream nor Keras to load: signatures
    ``serving_default`` (one ``[batch]`` tensor per raw feature, named as the feature) and
    ``serving_tf_example`` (``examples``: serialized ``tf.train.Example`` strings; a missing
    float becomes NaN and is imputed, a missing string becomes ``""``). Both return float32
    ``predictions`` — cast from float16/bfloat16 when the model ran under a mixed-precision
    policy — and, for a classifier, float32 ``probabilities`` (``[batch, 2]`` for a binary
    one) and int64 ``class_ids`` (``[batch, 1]``). ``assets.extra/tf_serving_warmup_requests``
    holds ``PredictionLog`` warmup requests for both signatures.

    Args:
        model: a Keras model taking the raw feature dict (``{name: Tensor[batch]}``), or, when
            ``preprocessor`` is given, the preprocessor's output.
        base_dir: the model's base directory (local path), created when missing.
        preprocessor: a Keras model from the raw feature dict to ``model``'s input, e.g.
            ``stats.preprocessor()``, or None.
        version: the version to write (a positive int). Default: the highest existing
            version + 1 (1 in an empty directory). An existing version is never overwritten.
        keep: after the new version is in place, delete older versions so that the newest
            ``keep`` remain (the new one always stays). Default: keep all.
        features: ``{name: dtype}`` or a ``ts.Source``: the raw features and dtypes of the
            signature, instead of those of the model's (or preprocessor's) dict inputs.
        task: ``"auto"`` (a final sigmoid with one unit is binary, a softmax multiclass, else
            regression; see :func:`tfstream.export.signatures.detect_task`),
            ``"regression"``, ``"binary"`` or ``"multiclass"``.
        warmup: rows for the warmup requests: a list of ``{feature: value}`` dicts, a dict of
            columns, a pandas or polars DataFrame, or a ``ts.Source`` (its first rows).
            Default: one synthetic row (0 for numbers, ``""`` for strings).
        options: an :class:`ExportOptions`.

    Returns:
        The path of the new version directory, ``base_dir/<version>``.

    Raises:
        FileExistsError: ``base_dir/<version>`` exists already.
        ValueError, TypeError: bad arguments (see the messages).

    Example:

    >>> prep = stats.preprocessor()                                    # doctest: +SKIP
    >>> ts.export_saved_model(model, "models/churn", preprocessor=prep, keep=3)  # doctest: +SKIP
    'models/churn/4'
    """
    import tensorflow as tf

    options = options or ExportOptions()
    base_dir = os.fspath(base_dir)
    if "://" in base_dir:
        raise ValueError(
            "export_saved_model writes to a local directory (its atomic rename needs a POSIX "
            f"file system). Received: base_dir={base_dir!r}. Export locally, then copy the "
            "version directory (e.g. gsutil cp -r) under a temporary name and rename it."
        )
    _check_positive("version", version)
    _check_positive("keep", keep)
    entry = preprocessor if preprocessor is not None else model
    signature_features = raw_features(entry, features)
    module = ServingModule(
        model,
        preprocessor=preprocessor,
        features=signature_features,
        task=detect_task(model, task),
    )
    os.makedirs(base_dir, exist_ok=True)
    _remove_stale(base_dir)
    if version is None:
        version = max(list_versions(base_dir), default=0) + 1
    final = os.path.join(base_dir, str(version))
    if os.path.lexists(final):
        raise FileExistsError(
            f"Version {version} exists already: {final}. A version is never overwritten (TF "
            "Serving may be serving it); leave version= out to write the next one, or delete "
            "the directory first."
        )
    signatures = module.signatures()
    temp = os.path.join(base_dir, f"{_TMP_PREFIX}{version}-{os.getpid()}")
    if os.path.lexists(temp):
        shutil.rmtree(temp)
    try:
        tf.saved_model.save(module, temp, signatures=signatures)
        write_warmup(
            os.path.join(temp, WARMUP_FILE),
            signature_features,
            warmup,
            max_rows=options.warmup_rows,
        )
        if options.fsync:
            _fsync_tree(temp)
        if os.path.lexists(final):  # another exporter took this version meanwhile
            raise FileExistsError(f"Version {version} appeared while exporting: {final}.")
        os.rename(temp, final)
        if options.fsync:
            _fsync_dir(base_dir)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    if keep is not None:
        _prune(base_dir, keep=keep, protect=version)
    return final


def list_versions(base_dir) -> list[int]:
    """The versions in ``base_dir`` (its all-digit subdirectories), ascending."""
    base_dir = os.fspath(base_dir)
    if not os.path.isdir(base_dir):
        return []
    return sorted(
        int(name)
        for name in os.listdir(base_dir)
        if name.isdigit() and os.path.isdir(os.path.join(base_dir, name))
    )


def _prune(base_dir: str, *, keep: int, protect: int) -> None:
    versions = [v for v in list_versions(base_dir) if v != protect]
    doomed = versions[: max(0, len(versions) - (keep - 1))]
    for v in doomed:
        trash = os.path.join(base_dir, f"{_TRASH_PREFIX}{v}-{os.getpid()}")
        try:
            os.rename(os.path.join(base_dir, str(v)), trash)  # disappears at once for a server
        except FileNotFoundError:  # another process pruned it
            continue
        shutil.rmtree(trash, ignore_errors=True)


def _remove_stale(base_dir: str, *, min_age: float = 3600.0) -> None:
    """Deletes what a killed export or prune left behind: ``.tmp-<v>-<pid>`` and
    ``.deleting-<v>-<pid>`` entries whose process is gone and that are over an hour old (the
    age guards an export running on another host of a shared file system)."""
    now = time.time()
    for name in os.listdir(base_dir):
        if not name.startswith((_TMP_PREFIX, _TRASH_PREFIX)):
            continue
        pid = name.rpartition("-")[2]
        path = os.path.join(base_dir, name)
        try:
            old = now - os.lstat(path).st_mtime > min_age
        except FileNotFoundError:
            continue
        if pid.isdigit() and old and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_positive(name: str, value) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be a positive int or None. Received: {name}={value!r}")
    if value < 1:
        raise ValueError(f"`{name}` must be a positive int or None. Received: {name}={value}")


def _fsync_tree(root: str) -> None:
    for directory, _, files in os.walk(root, topdown=False):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
