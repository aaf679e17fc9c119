"""Crash-proof checkpoints of the training loop: exact mid-epoch resume.

One checkpoint is one ``tf.train.Checkpoint`` holding, side by side, so that they can never
disagree:

- the model's variables (weights, and the state of its random seed generators: dropout draws
  the same masks after a resume),
- the optimizer's variables (slots, iteration count, learning rate, and a
  ``LossScaleOptimizer``'s scale and step counter),
- the metrics' variables (the epoch's logs cover the windows trained before the crash too),
- the loop's counters, a :class:`LoopState`: finished ``fit`` calls, epoch, windows and rows
  done in the epoch, global step, and the shuffle seed, batch size and ``steps_per_epoch`` of
  the running ``fit``.

The data position is the pair (epoch, windows done). The windows of an epoch are fixed by the
shuffle seed and the epoch (:meth:`tfstream.sources.Source.dataset` is deterministic), so a
resume re-creates the epoch's dataset and skips the windows already done: nothing proportional
to the rows read is saved (a ``tf.data`` iterator checkpoint saves the whole shuffle buffer), at
the cost of reading the skipped rows again on resume. Checkpoints are taken only at window
(optimizer step) boundaries, never inside an accumulation window.

The loop's counters are saved one scalar variable each, under their names. A field added later
is missing from the checkpoints written before it, which still restore, with the value it stands
for there: ``steps_per_epoch=-1``, unknown (not checked on resume).

Beside the checkpoints, the directory holds ``model.keras`` (the architecture, written once by
:func:`save_model_snapshot`; :func:`load_model` rebuilds the model from it with the latest
checkpoint's weights) and, when statistics are given, ``stats.json`` (:func:`keep_stats`: a
resume with other statistics is refused).

Atomicity: ``tf.train.CheckpointManager`` writes the data and index files of checkpoint ``N``
(through a temporary name), then rewrites its ``checkpoint`` pointer file atomically (temporary
file, then rename). The pointer is the commit point: a process killed while writing leaves the
pointer on checkpoint ``N - 1``. A checkpoint that cannot be read (a truncated or corrupted
file) is skipped for the one before it, with a warning naming it.

Example:

>>> ckpt = TrainingCheckpoint("ckpt", model, keep=3)     # doctest: +SKIP
>>> ckpt.save(LoopState(epoch=1, windows_done=40, step=140))   # doctest: +SKIP
>>> path, state = ckpt.restore()                          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import warnings
from typing import NamedTuple

from tfstream.sources.atomic import write_bytes
from tfstream.sources.files import is_url
from tfstream.train.preemption import (
    PREEMPTED_EXIT_CODE,
    Preempted,
    SignalCatcher,
    catch_signals,
    signal_number,
)

__all__ = [
    "PREEMPTED_EXIT_CODE",
    "CheckpointOptions",
    "Checkpointer",
    "LoopState",
    "Preempted",
    "TrainingCheckpoint",
    "catch_signals",
    "enable_determinism",
    "keep_stats",
    "latest_state",
    "load_model",
    "save_model_snapshot",
]

#: The model's architecture in a checkpoint directory (see :func:`save_model_snapshot`).
MODEL_FILE = "model.keras"
#: The statistics the preprocessing was built from (see :func:`keep_stats`).
STATS_FILE = "stats.json"

_LOOP_FIELDS = (
    "fits_done",
    "epoch",
    "windows_done",
    "rows_done",
    "step",
    "seed",
    "batch_size",
    "steps_per_epoch",
)
#: Loop fields added after the first checkpoint layout, with the value they take when restored
#: from a checkpoint written before them (which has no variable for them).
_ADDED_LOOP_FIELDS = {"steps_per_epoch": -1}


@dataclasses.dataclass(frozen=True)
class CheckpointOptions:
    """When the Trainer saves, and how many checkpoints it keeps.

    A checkpoint is always saved at the end of each epoch, and when a signal of ``signals``
    arrives (then ``fit`` raises :class:`Preempted`). Saves happen at window boundaries only:
    a signal is handled after the window being trained, so the grace period a scheduler gives
    (Kubernetes: 30 s) must cover one window and one save.

    Args:
        every_steps: also save every this many optimizer steps (global step), or None.
        every_seconds: also save at the first window boundary this many seconds after the last
            save, or None.
        keep: checkpoints kept on disk (the oldest are deleted); at least 2 lets a corrupt
            latest checkpoint fall back to the one before.
        signals: signals (names or numbers) that save and stop; handlers are installed during
            ``fit`` from the main thread only, and the previous handlers are put back after.
    """

    every_steps: int | None = None
    every_seconds: float | None = 600.0
    keep: int = 3
    signals: tuple = ("SIGTERM", "SIGINT")

    def __post_init__(self):
        for name in ("every_steps", "keep"):
            value = getattr(self, name)
            if value is None and name == "every_steps":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"`{name}` must be a positive integer"
                    + (" or None" if name == "every_steps" else "")
                    + f". Received: {name}={value!r}"
                )
        seconds = self.every_seconds
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0
        ):
            raise ValueError(
                f"`every_seconds` must be a positive number or None. Received: "
                f"every_seconds={seconds!r}"
            )
        object.__setattr__(self, "signals", tuple(signal_number(s) for s in self.signals))

    def due(self, step: int, seconds_since_save: float) -> bool:
        """Whether a periodic save is due after global step ``step``."""
        by_steps = self.every_steps is not None and step % self.every_steps == 0
        by_time = self.every_seconds is not None and seconds_since_save >= self.every_seconds
        return by_steps or by_time


class LoopState(NamedTuple):
    """The loop's position, saved as scalars beside the variables (its size never grows).

    Attributes:
        fits_done: ``fit`` calls finished. A rerun script replays its ``fit`` calls: those the
            checkpoint records as finished return at once.
        epoch: epochs finished in the running ``fit``.
        windows_done: windows (optimizer steps) finished in the running epoch.
        rows_done: rows trained in the running epoch (for the epoch's ``rows`` log).
        step: windows trained over all ``fit`` calls (global step).
        seed: the shuffle seed of the running ``fit`` (drawn at random when none was given), or
            -1 without shuffling.
        batch_size: the running ``fit``'s ``batch_size``, or 0 for a ``tf.data.Dataset``.
        steps_per_epoch: the running ``fit``'s ``steps_per_epoch`` (it decides where an epoch
            ends), 0 for whole passes over the data, or -1 when restored from a checkpoint
            written before it was saved (unknown: not checked on resume).
    """

    fits_done: int = 0
    epoch: int = 0
    windows_done: int = 0
    rows_done: int = 0
    step: int = 0
    seed: int = -1
    batch_size: int = 0
    steps_per_epoch: int = 0


class TrainingCheckpoint:
    """The checkpoints of one model's training in ``directory``: save, keep the last ``keep``,
    restore the latest loadable one.

    Args:
        directory: where the checkpoints live (created when missing); local or ``gs://``.
        model: a built, compiled ``keras.Model`` with a built optimizer. Its variable lists
            (``model.variables``, ``model.optimizer.variables``, ``model.metrics_variables``)
            are matched by position, so the model must be built by the same code on resume.
        keep: checkpoints kept on disk.
    """

    def __init__(self, directory, model, *, keep: int = 3):
        import tensorflow as tf

        self.directory = os.fspath(directory)
        self._loop = {
            name: tf.Variable(default, dtype=tf.int64, trainable=False, name=name)
            for name, default in zip(_LOOP_FIELDS, LoopState(), strict=True)
        }
        self._groups = {
            "model": list(model.variables),
            "optimizer": list(model.optimizer.variables),
            "metrics": list(model.metrics_variables),
        }
        self._checkpoint = tf.train.Checkpoint(**self._groups, loop=self._loop)
        _repair_pointer(self.directory)
        self._manager = tf.train.CheckpointManager(
            self._checkpoint, self.directory, max_to_keep=keep
        )

    @property
    def checkpoints(self) -> list[str]:
        """The checkpoints kept, oldest first (the pointer file's list)."""
        return list(self._manager.checkpoints)

    def save(self, state: LoopState) -> str:
        """Writes ``state`` and the current variables as the next checkpoint; returns its
        path. Deletes the oldest when more than ``keep`` remain."""
        for name, value in zip(_LOOP_FIELDS, state, strict=True):
            self._loop[name].assign(int(value))
        return self._manager.save()

    def restore(self) -> tuple[str, LoopState] | None:
        """Restores the latest loadable checkpoint into the model, optimizer and metrics.

        Returns:
            ``(path, state)``, or None when the directory holds no checkpoint (nothing is
            changed then).

        Raises:
            ValueError: the checkpoint does not match the model (other layers or optimizer).
            RuntimeError: no checkpoint of the directory can be read.
        """
        import tensorflow as tf

        candidates = _candidates(self.directory)
        failures = []
        for path in reversed(candidates):
            try:
                # The index first: a readable index of other variables is a mismatch, not damage.
                reader = tf.train.load_checkpoint(path)
                try:
                    self._check_matches(path, reader)
                except ValueError:
                    if not _is_start(reader):
                        raise
                    # Only the start of a first fit that failed before it saved any progress
                    # (then the model was changed): nothing saved is lost by starting over.
                    warnings.warn(
                        f"tfstream: {path} holds only the start of an earlier fit that failed "
                        "before it saved any progress, for another model; starting over (it "
                        "will be replaced).",
                        stacklevel=3,
                    )
                    stale = os.path.join(self.directory, MODEL_FILE)  # that model's snapshot
                    if tf.io.gfile.exists(stale):
                        tf.io.gfile.remove(stale)
                    return None
                checkpoint = self._checkpoint_of(reader)
                status = checkpoint.restore(path)
            except _unreadable_errors() as error:
                failures.append((path, error))
                _warn_unreadable(path, error, fallback=path != candidates[0])
                continue
            try:
                status.assert_consumed()
            except AssertionError as error:
                raise _mismatch(path, str(error)) from error
            if checkpoint is not self._checkpoint:  # the next save is numbered after this one
                self._checkpoint.save_counter.assign(checkpoint.save_counter)
            state = LoopState(*(int(self._loop[name].numpy()) for name in _LOOP_FIELDS))
            return path, state
        if failures:
            listed = "; ".join(f"{p}: {type(e).__name__}" for p, e in failures)
            raise RuntimeError(
                f"No checkpoint in {self.directory} can be read ({listed}). Delete the "
                "directory (or move it away) to start the training over."
            )
        return None

    def _checkpoint_of(self, reader):
        """The ``tf.train.Checkpoint`` to restore ``reader``'s checkpoint through: ours, or for
        one written before a loop field was added, ours without that field, which is set to the
        value it stands for (so that ``assert_consumed`` still checks all the rest)."""
        import tensorflow as tf

        saved = reader.get_variable_to_shape_map()
        missing = [name for name in _ADDED_LOOP_FIELDS if _loop_key(name) not in saved]
        if not missing:
            return self._checkpoint
        for name in missing:
            self._loop[name].assign(_ADDED_LOOP_FIELDS[name])
        loop = {name: v for name, v in self._loop.items() if name not in missing}
        return tf.train.Checkpoint(**self._groups, loop=loop)

    def _check_matches(self, path: str, reader) -> None:
        """Raises ValueError when the checkpoint's variables are not this model's (by count,
        shape and dtype)."""
        for group, variables in self._groups.items():
            _check_group(path, reader, group, variables)


class Checkpointer:
    """The Trainer's checkpointing: where each ``fit`` starts, and when to save.

    ``fit`` calls are counted: a rerun script replays its calls, and those the checkpoint
    records as finished (``fits_done``) return at once, while the unfinished one resumes.

    A fit that raised is followed by a restore: a fit called again in the same process (a
    notebook) starts from the latest checkpoint, not from where the failed one stopped. So
    that there is always one, a fit that starts in a directory without checkpoints saves its
    start first: a retry before any other save goes back to the weights and optimizer state
    the model had when the first attempt began.

    Args:
        directory: the checkpoint directory.
        options: a :class:`CheckpointOptions`.
    """

    def __init__(self, directory, options: CheckpointOptions):
        self.directory = os.fspath(directory)
        self.options = options
        self.state = LoopState()
        self.path: str | None = None  # the checkpoint restored or saved last
        self._checkpoint: TrainingCheckpoint | None = None
        self._restore_pending = True
        self._resumable = False
        self._last_save = time.monotonic()
        self._signals: SignalCatcher | None = None

    def begin(
        self, model, *, fit_index: int, seed: int, batch_size: int, steps_per_epoch: int = 0
    ) -> str | None:
        """Starts ``fit`` call number ``fit_index`` (0-based): restores the latest checkpoint
        when needed (the first call, or after a failed one) and sets :attr:`state` to where the
        fit starts. ``model`` must be built, its optimizer too.

        Returns:
            ``"finished"`` (the checkpoint records this fit as finished: skip it),
            ``"resume"`` (:attr:`state` is the restored position of this fit; check that the
            data are the same, then continue from it), or ``"start"`` (a fresh start, with
            ``seed``, ``batch_size`` and ``steps_per_epoch`` (0: whole passes) recorded, and
            saved when the directory has no checkpoint yet).
        """
        self.restore_if_pending(model)
        save_model_snapshot(self.directory, model)
        self._last_save = time.monotonic()
        state, resumable = self.state, self._resumable
        if state.fits_done > fit_index:
            return "finished"  # the restored position stays resumable for the fit it is in
        self._resumable = False
        if resumable and state.fits_done == fit_index and (state.epoch or state.windows_done):
            return "resume"
        if resumable and state.fits_done < fit_index:
            warnings.warn(
                f"tfstream: checkpoint {self.path} is from an earlier fit call "
                f"(#{state.fits_done}); fit #{fit_index} starts from its weights.",
                stacklevel=3,
            )
        self.state = LoopState(
            fits_done=fit_index,
            step=state.step,
            seed=seed,
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
        )
        if self.path is None:  # the state a failed attempt of this fit goes back to
            self._save_and_check()
        return "start"

    def restore_if_pending(self, model) -> None:
        """Restores the latest checkpoint into ``model`` (built, its optimizer too) the first
        time, and after a failed fit; otherwise does nothing."""
        if self._checkpoint is None:
            self._checkpoint = TrainingCheckpoint(self.directory, model, keep=self.options.keep)
        if self._restore_pending:
            restored = self._checkpoint.restore()
            self._restore_pending = False
            self._resumable = restored is not None
            self.path, self.state = restored if restored else (None, LoopState())

    def failed(self) -> None:
        """A fit raised: the model may be ahead of the checkpoint; the next fit restores."""
        self._restore_pending = True

    def catch_signals(self):
        """A context manager: during ``fit``, the signals of the options save and stop."""
        return _catching(self)

    def window_end(self, epoch: int, windows_done: int, rows_done: int) -> None:
        """After each applied window: saves when due, or when a signal arrived (then raises
        :class:`Preempted`)."""
        self.state = self.state._replace(
            epoch=epoch, windows_done=windows_done, rows_done=rows_done, step=self.state.step + 1
        )
        signalled = self._signals is not None and self._signals.received is not None
        if signalled or self.options.due(self.state.step, time.monotonic() - self._last_save):
            self._save_and_check()

    def epoch_end(self, epoch: int) -> None:
        """After epoch ``epoch`` (not the fit's last): saves the start of the next one."""
        self.state = self.state._replace(epoch=epoch + 1, windows_done=0, rows_done=0)
        self._save_and_check()

    def fit_end(self, fit_index: int) -> None:
        """After the fit's last epoch (or an early stop): saves the fit as finished."""
        self.state = LoopState(fits_done=fit_index + 1, step=self.state.step)
        self._save_and_check()

    def _save_and_check(self) -> None:
        self.path = self._checkpoint.save(self.state)
        self._last_save = time.monotonic()
        signum = self._signals.received if self._signals is not None else None
        if signum is not None:
            preempted = Preempted(signum, self.path)
            print(f"tfstream: {preempted}", flush=True)
            raise preempted


@contextlib.contextmanager
def _catching(checkpointer: Checkpointer):
    with catch_signals(checkpointer.options.signals) as caught:
        checkpointer._signals = caught
        try:
            yield caught
        finally:
            checkpointer._signals = None


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


def latest_state(directory) -> tuple[str, LoopState] | None:
    """``(path, LoopState)`` of the checkpoint a ``Trainer`` with ``checkpoint_dir=directory``
    would resume from, read without building a model (every tensor of the checkpoint is read,
    so an unreadable one is skipped as the Trainer skips it, with the same warning); None when
    there is none."""
    import tensorflow as tf

    candidates = _candidates(os.fspath(directory))
    for path in reversed(candidates):
        try:
            reader = tf.train.load_checkpoint(path)
            values = {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}
        except _unreadable_errors() as error:
            _warn_unreadable(path, error, fallback=path != candidates[0])
            continue
        fields = [values.get(_loop_key(n), _ADDED_LOOP_FIELDS.get(n)) for n in _LOOP_FIELDS]
        if any(v is None for v in fields):
            raise ValueError(f"{path} is not a tfstream Trainer checkpoint (no loop state).")
        return path, LoopState(*(int(v) for v in fields))
    return None


def enable_determinism(seed: int = 0) -> None:
    """Makes training reproducible bit for bit: seeds Python, NumPy, TensorFlow and Keras
    (``keras.utils.set_random_seed``) and turns on TensorFlow's op determinism
    (``tf.config.experimental.enable_op_determinism``).

    Both are process-wide. Op determinism makes some ops slower and makes ops without a
    deterministic kernel raise; with it, an interrupted and resumed Trainer run ends with the
    weights of an uninterrupted one, bit for bit.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


# -- helpers ---------------------------------------------------------------------------------


def _is_start(reader) -> bool:
    """Whether a checkpoint holds only the start of a first fit (nothing trained yet)."""
    counters = ("fits_done", "epoch", "windows_done", "step")
    saved = reader.get_variable_to_shape_map()
    if any(_loop_key(name) not in saved for name in counters):
        return False
    return all(int(reader.get_tensor(_loop_key(name))) == 0 for name in counters)


def _loop_key(name: str) -> str:
    """The key of loop field ``name`` in a checkpoint."""
    return f"loop/{name}/.ATTRIBUTES/VARIABLE_VALUE"


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
