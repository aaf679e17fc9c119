"""What a checkpoint directory holds beside the checkpoints: the model's architecture and
the statistics the preprocessing was built from.

- ``model.keras`` (:data:`MODEL_FILE`): the architecture (and the weights at that point),
  written once by :func:`save_model_snapshot`; :func:`load_model` rebuilds the model from it
  with the weights of the latest loadable checkpoint, without the training code (for export and
  evaluation).
- ``stats.json`` (:data:`STATS_FILE`): written by :func:`keep_stats` when statistics are given;
  a resume with other statistics is refused.

Both are written atomically (temporary name, then rename).
"""

from __future__ import annotations

import contextlib
import os
import warnings

from tfstream.sources.atomic import write_bytes
from tfstream.sources.files import is_url
from tfstream.train.checkpoint_files import (
    _candidates,
    _check_group,
    _unreadable_errors,
    _warn_unreadable,
)

__all__ = ["MODEL_FILE", "STATS_FILE", "keep_stats", "load_model", "save_model_snapshot"]

#: The model's architecture in a checkpoint directory (see :func:`save_model_snapshot`).
MODEL_FILE = "model.keras"
#: The statistics the preprocessing was built from (see :func:`keep_stats`).
STATS_FILE = "stats.json"


def save_model_snapshot(directory, model) -> str | None:
    """Writes ``model`` (architecture, and its weights at this point) as ``model.keras`` into
    the checkpoint ``directory`` once (atomically: temporary name, then rename), so that
    :func:`load_model` can rebuild it without the training code. Returns the path, or None
    (with a warning) when Keras cannot save this model."""
    import tensorflow as tf

    directory = os.fspath(directory)
    path = os.path.join(directory, MODEL_FILE)
    if tf.io.gfile.exists(path):
        return path
    tf.io.gfile.makedirs(directory)
    temporary = os.path.join(directory, f".tmp-{os.getpid()}-{MODEL_FILE}")
    try:
        model.save(temporary)
        tf.io.gfile.rename(temporary, path, overwrite=True)
    except Exception as error:  # Keras raises many kinds on models it cannot serialize
        with contextlib.suppress(Exception):
            tf.io.gfile.remove(temporary)
        warnings.warn(
            f"tfstream: cannot save the model's architecture to {path} "
            f"({type(error).__name__}: {str(error)[:200]}); `tfstream export` and "
            "`load_model` will not work on this checkpoint directory (resuming still does).",
            stacklevel=3,
        )
        return None
    return path


def keep_stats(directory, stats):
    """The statistics of a checkpoint directory: ``stats`` is written there as ``stats.json``
    (atomically) when the directory has none; when it has, they must be equal — a resume must
    not preprocess with other statistics than the weights were trained with (a sample drawn
    again, a source that changed). Returns the statistics in force (the saved ones when
    ``stats`` is None), or None.

    Raises:
        ValueError: ``stats`` differ from the saved ones.
    """
    import json

    import tensorflow as tf

    from tfstream.stats import Stats

    directory = os.fspath(directory)
    path = os.path.join(directory, STATS_FILE)
    # Through tf.io.gfile, as the checkpoints are: the directory may be any TensorFlow path
    # (gs://, ram://, hdfs://), which os.path and fsspec do not all know.
    saved = None
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path, "rb") as f:
            text = f.read()
        try:
            saved = Stats.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not statistics tfstream can read ({e}).") from None
    if stats is None:
        return saved
    if not isinstance(stats, Stats):
        raise TypeError(f"`stats` must be a ts.Stats or None. Received: {type(stats).__name__}")
    if saved is None:
        data = json.dumps(stats.to_json(), indent=1, allow_nan=False).encode("utf-8")
        if not is_url(path):  # fsync'ed, as a local checkpoint is
            write_bytes(path, data)
            return stats
        tf.io.gfile.makedirs(directory)
        temporary = os.path.join(directory, f".tmp-{os.getpid()}-{STATS_FILE}")
        with tf.io.gfile.GFile(temporary, "wb") as f:
            f.write(data)
        tf.io.gfile.rename(temporary, path, overwrite=True)
        return stats
    given = json.loads(json.dumps(stats.to_json(), allow_nan=False))
    if given != json.loads(json.dumps(saved.to_json(), allow_nan=False)):
        different = sorted(
            name
            for name in set(given["columns"]) | set(saved.to_json()["columns"])
            if given["columns"].get(name) != saved.to_json()["columns"].get(name)
        )
        raise ValueError(
            f"The statistics given differ from those this checkpoint was trained with ({path}"
            f"; columns that differ: {different or 'none, other fields'}). Resume with "
            "ts.Stats.load() of that file, or use a new checkpoint directory."
        )
    return saved


def load_model(directory, *, custom_objects=None, safe_mode: bool = True):
    """The model of a checkpoint directory (written by ``ts.Trainer(checkpoint_dir=...)`` or
    ``ts.keras.ResumableBackup``) with the weights of its latest loadable checkpoint, built
    without the training code: for export and evaluation.

    Args:
        directory: the checkpoint directory.
        custom_objects: passed to ``keras.saving.load_model`` (custom layers not registered
            with ``keras.saving.register_keras_serializable``).
        safe_mode: passed to ``keras.saving.load_model`` (False allows ``Lambda`` layers).

    Returns:
        An uncompiled ``keras.Model``.

    Raises:
        FileNotFoundError: the directory has no ``model.keras`` or no checkpoint.
        ValueError: the checkpoint does not match the saved model.
        RuntimeError: no checkpoint of the directory can be read.
    """
    import keras
    import tensorflow as tf

    directory = os.fspath(directory)
    snapshot = os.path.join(directory, MODEL_FILE)
    if not tf.io.gfile.exists(snapshot):
        raise FileNotFoundError(
            f"{directory} has no {MODEL_FILE}: it is not a tfstream checkpoint directory, or "
            "Keras could not save the model's architecture (see the warning of the training "
            "run). Build the model with its code and restore it with TrainingCheckpoint."
        )
    model = keras.saving.load_model(
        snapshot, custom_objects=custom_objects, compile=False, safe_mode=safe_mode
    )
    variables = list(model.variables)
    candidates = _candidates(directory)
    for path in reversed(candidates):
        try:
            _check_group(path, tf.train.load_checkpoint(path), "model", variables)
            status = tf.train.Checkpoint(model=variables).restore(path)
        except _unreadable_errors() as error:
            _warn_unreadable(path, error, fallback=path != candidates[0])
            continue
        status.expect_partial()
        return model
    if candidates:
        raise RuntimeError(f"No checkpoint in {directory} can be read.")
    raise FileNotFoundError(f"{directory} has {MODEL_FILE} but no checkpoint yet.")
