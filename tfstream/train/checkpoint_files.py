"""Finding and reading the checkpoints of a directory despite damage, for
:mod:`tfstream.train.checkpoint` and :mod:`tfstream.train.artifacts`.

- Which checkpoints there are: those the ``checkpoint`` pointer file lists (:func:`_candidates`);
  when the pointer file is damaged, the ``ckpt-N.index`` files of the directory, by number, and
  the pointer file is rewritten from them (:func:`_repair_pointer`) so that
  ``tf.train.CheckpointManager`` can start on it.
- Which can be read: reading a truncated or corrupted checkpoint raises one of
  :func:`_unreadable_errors`; the caller skips it for the one before it, with the warning of
  :func:`_warn_unreadable`.
- Whether one matches a model: :func:`_check_group` compares the variables saved under a group
  (``model``, ``optimizer``, ``metrics``) with a model's by count, shape and dtype, and raises
  the ``ValueError`` of :func:`_mismatch`.
"""

from __future__ import annotations

import os
import time
import warnings

__all__ = []


def _unreadable_errors() -> tuple:
    """What reading a damaged checkpoint raises (TF 2.21): ``tf.errors.OpError`` (DataLoss on a
    checksum, NotFound, "too short to be an sstable"), IndexError on a truncated data file."""
    import tensorflow as tf

    return (tf.errors.OpError, IndexError, OSError)


def _candidates(directory: str) -> list[str]:
    """The checkpoints the pointer file lists, oldest first; when the pointer file is damaged,
    the ``ckpt-N.index`` files of the directory, by number (with a warning)."""
    import tensorflow as tf

    pointer = os.path.join(directory, "checkpoint")
    try:
        state = tf.train.get_checkpoint_state(directory)  # None when it does not parse
    except (ValueError, tf.errors.OpError):  # empty, or not text
        state = None
    if state is not None:
        paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
        return paths  # get_checkpoint_state has put the directory in front of relative ones
    if not tf.io.gfile.exists(pointer):
        return []
    numbered = []
    for name in tf.io.gfile.listdir(directory):
        stem = name[: -len(".index")] if name.endswith(".index") else ""
        if stem.startswith("ckpt-") and stem[5:].isdigit():
            numbered.append((int(stem[5:]), os.path.join(directory, stem)))
    paths = [p for _, p in sorted(numbered)]
    warnings.warn(
        f"tfstream: the checkpoint pointer file {pointer} is damaged; using the checkpoints "
        f"found in the directory instead: {[os.path.basename(p) for p in paths]}.",
        stacklevel=4,
    )
    return paths


def _repair_pointer(directory: str) -> None:
    """Rewrites a damaged pointer file from the checkpoints in the directory (atomically), so
    that ``tf.train.CheckpointManager``, which cannot start on it, can."""
    import tensorflow as tf
    from tensorflow.python.checkpoint import checkpoint_management

    if not tf.io.gfile.exists(os.path.join(directory, "checkpoint")):
        return
    try:
        if tf.train.get_checkpoint_state(directory) is not None:
            return
    except (ValueError, tf.errors.OpError):  # empty, or not text (None: does not parse)
        pass
    paths = _candidates(directory)
    if paths:
        now = time.time()  # the manager keeps (and later deletes) the ones newer than "last"
        checkpoint_management.update_checkpoint_state_internal(
            directory,
            paths[-1],
            all_model_checkpoint_paths=paths,
            all_model_checkpoint_timestamps=[now] * len(paths),
            last_preserved_timestamp=now - 1,
            save_relative_paths=True,
        )
    else:
        tf.io.gfile.remove(os.path.join(directory, "checkpoint"))


def _warn_unreadable(path: str, error: Exception, *, fallback: bool) -> None:
    reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    then = "falling back to the previous checkpoint" if fallback else "no older checkpoint"
    warnings.warn(
        f"tfstream: checkpoint {path} cannot be read ({type(error).__name__}: {reason}); {then}.",
        stacklevel=3,
    )


def _check_group(path: str, reader, group: str, variables) -> None:
    """Raises ValueError when the checkpoint's ``group`` variables are not ``variables`` (by
    count, shape and dtype)."""
    import tensorflow as tf

    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    saved = sum(1 for key in shapes if key.startswith(group + "/"))
    if saved != len(variables):
        raise _mismatch(path, f"{saved} {group} variables saved, {len(variables)} in this model")
    for i, v in enumerate(variables):
        key = f"{group}/{i}/.ATTRIBUTES/VARIABLE_VALUE"
        shape, dtype = tuple(shapes.get(key, ())), dtypes.get(key)
        if shape != tuple(v.shape) or dtype != tf.as_dtype(v.dtype):
            raise _mismatch(
                path,
                f"{group} variable {i} ({v.path}) is {dtype and dtype.name}{list(shape)} "
                f"in the checkpoint, {v.dtype}{list(v.shape)} in this model",
            )


def _mismatch(path: str, detail: str) -> ValueError:
    return ValueError(
        f"Checkpoint {path} does not match this model and optimizer: {detail}. Resume with the "
        "same model code, optimizer and metrics, or use a new checkpoint_dir."
    )
