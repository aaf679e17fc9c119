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
resume with other statistics is refused). Both are in :mod:`tfstream.train.artifacts` (the
functions are re-exported here).

Atomicity: ``tf.train.CheckpointManager`` writes the data and index files of checkpoint ``N``
(through a temporary name), then rewrites its ``checkpoint`` pointer file atomically (temporary
file, then rename). The pointer is the commit point: a process killed while writing leaves the
pointer on checkpoint ``N - 1``. A checkpoint that cannot be read (a truncated or corrupted
file) is skipped for the one before it, with a warning naming it; a damaged pointer file is
rebuilt from the checkpoints of the directory (:mod:`tfstream.train.checkpoint_files`).

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

from tfstream.train.artifacts import MODEL_FILE, keep_stats, load_model, save_model_snapshot
from tfstream.train.artifacts import STATS_FILE as STATS_FILE  # re-exported
from tfstream.train.checkpoint_files import (
    _candidates,
    _check_group,
    _mismatch,
    _repair_pointer,
    _unreadable_errors,
    _warn_unreadable,
)
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
