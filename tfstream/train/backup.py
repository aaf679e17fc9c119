"""``ResumableBackup``: crash-proof ``model.fit`` with exact mid-epoch resume.

Keras' ``BackupAndRestore`` restores the epoch only (a mid-epoch resume trains the epoch's
first batches again) and does not write atomically. This callback saves the same checkpoint as
``ts.Trainer(checkpoint_dir=...)`` (:mod:`tfstream.train.checkpoint`: model, optimizer, metrics
and the loop's position, committed atomically; a damaged latest checkpoint falls back to the
one before) and resumes at the saved window.

How the data position is restored without replaying: the data reach ``fit`` through
:meth:`ResumableBackup.dataset`, a ``tf.data.Dataset`` that reads the epoch, the windows to
skip and the shuffle seed from variables the callback sets at the start of each epoch. In the
resumed epoch it skips the windows already trained (``Dataset.skip``: the rows are read again,
not trained on) and puts as many *empty* windows in front, so the epoch keeps its length —
Keras learns the number of steps of an epoch of unknown length from the first epoch it runs, and
a short first epoch would cut every later one — and Keras' step numbers stay the window
numbers. An empty window trains nothing: the model trains with tfstream's step
(:func:`tfstream.train.keras.accumulate`, installed with ``steps=1`` when the model has none),
which applies no update for a window without rows.

Example:

>>> backup = ts.keras.ResumableBackup("ckpt")                              # doctest: +SKIP
>>> data = backup.dataset(ts.csv("data/"), batch_size=256, shuffle=True)   # doctest: +SKIP
>>> model.fit(data, epochs=5, callbacks=[backup])  # run it again after a crash: it resumes
"""

from __future__ import annotations

import os
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfstream.sources.interpreter_exit import until_exit
from tfstream.train.artifacts import keep_stats, save_model_snapshot
from tfstream.train.checkpoint import CheckpointOptions, LoopState, TrainingCheckpoint
from tfstream.train.preemption import Preempted, SignalCatcher

__all__ = ["ResumableBackup"]


class ResumableBackup(keras.callbacks.Callback):
    """A ``model.fit`` callback that checkpoints training and resumes it exactly.

    Pass the callback to ``fit`` and the data through :meth:`dataset`. The checkpoint holds the
    model's variables (weights, and the state of its random seed generators), the optimizer's
    (slots, iteration count, a ``LossScaleOptimizer``'s scale), the metrics' and the position:
    fit call, epoch, windows done, global step, shuffle seed. Nothing proportional to the rows
    read is saved. Saves happen at the end of each epoch, as ``options`` says (every N steps
    and/or T seconds), at the end of ``fit``, and when SIGTERM or SIGINT arrives: then ``fit``
    raises :class:`~tfstream.train.preemption.Preempted` (exit code 75) after saving. Running
    the same script again resumes: ``fit`` starts at the saved epoch and window, with the
    epoch's metrics as they were; fits the checkpoint records as finished do nothing. A resume
    needs the same ``batch_size``, ``shuffle`` and ``seed`` (None takes the saved one) given to
    :meth:`dataset`, and refuses others with a ``ValueError``.

    Every ``fit`` starts from the latest checkpoint, so a ``fit`` that raised and is called
    again in the same process (a notebook) does not go on from where it stopped. A ``fit``
    that starts in a directory without checkpoints saves its start first: a retry before any
    other save begins again from the weights and optimizer state the model had when the first
    attempt began (also with a new callback on the same model).

    For bit-identical results across a resume, call
    :func:`tfstream.train.checkpoint.enable_determinism` before building the model.

    Args:
        directory: the checkpoint directory (created when missing).
        options: a :class:`~tfstream.train.checkpoint.CheckpointOptions` (when to save, how
            many checkpoints to keep, which signals stop).
        stats: the ``ts.Stats`` the model's preprocessing was built from, or None: kept in
            the directory as ``stats.json``; a resume with other statistics is refused, and
            with None the saved ones are :attr:`stats`.

    Notes:
        The model trains with tfstream's step (exact, skips empty windows); one from
        ``ts.keras.accumulate(model, k)`` is kept, otherwise ``accumulate(model, 1)`` is
        installed when ``fit`` starts. ``fit(steps_per_epoch=...)`` is not supported (an epoch
        is one pass over the data). Keras callbacks keep no state across a restart.
    """

    def __init__(self, directory, *, options: CheckpointOptions | None = None, stats=None):
        super().__init__()
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(
                "`directory` must be a path (str or os.PathLike). Received: "
                f"{type(directory).__name__}"
            )
        if options is not None and not isinstance(options, CheckpointOptions):
            raise TypeError(
                f"`options` must be a ts.CheckpointOptions. Received: {type(options).__name__}"
            )
        self.directory = os.fspath(directory)
        self.options = options or CheckpointOptions()
        self.stats = keep_stats(self.directory, stats)
        self.state = LoopState()
        self.path: str | None = None  # the checkpoint restored or saved last
        self._fit_index = 0
        self._batch_size = 0
        self._shuffled = False
        self._seed: int | None = None  # the seed given to dataset(), None when drawn
        self._position = None  # (epoch, skip, seed) variables, made by dataset()
        self._element_spec = None
        self._checkpoint: TrainingCheckpoint | None = None
        self._resume: LoopState | None = None  # the epoch being resumed, until it starts
        self._metric_values = None
        self._pad = 0  # empty windows in front of the running epoch
        self._windows = 0  # windows of the running epoch done
        self._finished = False
        self._last_save = 0.0
        self._signals: SignalCatcher | None = None

    # -- data ----------------------------------------------------------------------------------

    def dataset(self, data, *, batch_size: int | None = None, shuffle: bool = False, seed=None):
        """The data for ``fit``: one epoch per pass, resumable at any window.

        Args:
            data: a tfstream source, or a ``tf.data.Dataset`` of windows (each element one
                optimizer step's batch) that gives the same windows in the same order on every
                pass (no ``reshuffle_each_iteration``; use a source to shuffle per epoch).
            batch_size: the rows of one optimizer step (required for a source).
            shuffle: shuffle a source, in a new order each epoch (as ``ts.Trainer`` does).
            seed: the shuffle seed; drawn at random when None (and saved in the checkpoint).
                On a resume, None takes the seed saved in the checkpoint, and another seed
                than the saved one is refused (``ValueError``, as the ``Trainer`` does).

        Returns:
            A ``tf.data.Dataset`` to pass to ``model.fit`` (use it with this callback only).
        """
        from tfstream.sources.base import Source
        from tfstream.train.windows import _epoch_seed

        with tf.init_scope(), tf.device("/cpu:0"):
            variables = tuple(
                tf.Variable(0, dtype=tf.int64, trainable=False, name=name)
                for name in ("epoch", "skip", "seed")
            )
        epoch_v, skip_v, seed_v = variables
        if isinstance(data, Source):
            if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
                raise ValueError(
                    "`batch_size` (the rows of one optimizer step) must be a positive integer "
                    f"to train on a source. Received: batch_size={batch_size!r}"
                )
            given_seed = None if seed is None or not shuffle else int(seed)
            if shuffle and seed is None:
                seed = int(np.random.randint(0, 2**31 - 1))
            seed_v.assign(int(seed) if shuffle else -1)
            signature = data._signature()

            def generate(epoch, seed):
                epoch_seed = _epoch_seed(int(seed), int(epoch)) if shuffle else None
                chunks = data.iter_chunks(shuffle=shuffle, seed=epoch_seed, epoch=0)
                for chunk in until_exit(chunks):
                    yield data._split_label(chunk)

            def windows(epoch, seed):
                ds = tf.data.Dataset.from_generator(
                    generate, args=(epoch, seed), output_signature=signature
                )
                return ds.prefetch(2).rebatch(batch_size)

        elif isinstance(data, tf.data.Dataset):
            if batch_size is not None or shuffle or seed is not None:
                raise ValueError(
                    "`batch_size`, `shuffle` and `seed` apply to sources; a tf.data.Dataset is "
                    "used as it is (each element is one optimizer step's batch)."
                )
            seed_v.assign(-1)
            given_seed = None

            def windows(epoch, seed):
                return data

        else:
            raise TypeError(
                "`data` must be a tfstream source or a tf.data.Dataset. Received: "
                f"{type(data).__name__}"
            )
        spec = windows(tf.constant(0, tf.int64), tf.constant(0, tf.int64)).element_spec
        empty = tf.data.Dataset.from_tensors(tf.nest.map_structure(_empty, spec))

        def one_pass(epoch, skip, seed):
            return empty.repeat(skip).concatenate(windows(epoch, seed).skip(skip))

        start = tf.data.Dataset.from_tensors(0).map(
            lambda _: (epoch_v.read_value(), skip_v.read_value(), seed_v.read_value())
        )
        self._position = variables
        self._element_spec = spec
        self._batch_size = batch_size or 0
        self._shuffled = bool(shuffle)
        self._seed = given_seed
        return start.flat_map(one_pass).prefetch(tf.data.AUTOTUNE)

    # -- Keras hooks ---------------------------------------------------------------------------

    def set_model(self, model):
        super().set_model(model)
        if getattr(model, "_tfstream_accumulation_steps", None) is None and getattr(
            model, "compiled", False
        ):
            from tfstream.train.keras import accumulate

            accumulate(model, 1)

    def on_train_begin(self, logs=None):
        if self.params.get("steps") is not None:
            raise ValueError(
                "ResumableBackup does not support fit(steps_per_epoch=...) or data of known "
                "length: pass the data through backup.dataset(...) and let an epoch be one "
                "pass over it."
            )
        if self._element_spec is None:
            raise ValueError(
                "ResumableBackup needs the training data given to fit through "
                "backup.dataset(...), which can resume inside an epoch: "
                "model.fit(backup.dataset(source, batch_size=...), callbacks=[backup])."
            )
        model = self.model
        with model.distribute_strategy.scope():
            # Without a strategy, Keras builds the compiled metrics when it traces the step,
            # after this hook: build them now so that they are in the checkpoint. (Private API,
            # as in the Trainer; checked on Keras 3.15.)
            model._symbolic_build(data_batch=self._element_spec)
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
        if self._checkpoint is None:
            self._checkpoint = TrainingCheckpoint(self.directory, model, keep=self.options.keep)
        restored = self._checkpoint.restore()
        self.path, saved = restored if restored else (None, LoopState())
        save_model_snapshot(self.directory, model)
        self._finished = False
        self._resume = None
        seed = int(self._position[2].numpy())
        fresh = LoopState(
            fits_done=self._fit_index, step=saved.step, seed=seed, batch_size=self._batch_size
        )
        if restored is None or saved.fits_done < self._fit_index:
            if restored is not None:
                warnings.warn(
                    f"tfstream: checkpoint {self.path} is from an earlier fit call "
                    f"(#{saved.fits_done}); fit #{self._fit_index} starts from its weights.",
                    stacklevel=2,
                )
            self.state = fresh
            if restored is None:  # the state a failed attempt of this fit goes back to
                self.path = self._checkpoint.save(self.state)
        elif saved.fits_done > self._fit_index:
            print(f"tfstream: fit #{self._fit_index} is finished in {self.path}.")
            self._finished = True
            self.state = saved
            model._initial_epoch = self.params["epochs"]  # fit runs no epoch
            return
        elif saved.epoch == 0 and saved.windows_done == 0:
            self.state = fresh  # the start of this fit: nothing to resume
        else:
            self._check_resumable(saved)
            self.state = saved
            self._resume = saved
            self._position[2].assign(saved.seed)
            self._metric_values = [v.numpy() for v in model.metrics_variables]
            model._initial_epoch = saved.epoch
            print(
                f"tfstream: resuming from {self.path}: epoch {saved.epoch + 1}, after window "
                f"{saved.windows_done} (global step {saved.step})."
            )
        if self._signals is not None:  # a fit that raised never reached on_train_end
            self._signals.uninstall()
        model = self.model
        self._signals = SignalCatcher(
            self.options.signals, active=lambda frame: _inside_fit(frame, model)
        )
        self._signals.install()
        self._last_save = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        resume = self._resume
        self._pad = resume.windows_done if resume is not None and resume.epoch == epoch else 0
        if self._pad:
            # fit reset the metrics; the epoch's logs go on from where the crash left them
            metrics = self.model.metrics_variables
            for variable, value in zip(metrics, self._metric_values, strict=True):
                variable.assign(value)
        self._resume = None
        self._windows = self._pad
        self._position[0].assign(epoch)
        self._position[1].assign(self._pad)
        self.state = self.state._replace(epoch=epoch, windows_done=self._pad)

    def on_train_batch_end(self, batch, logs=None):
        windows = batch + 1  # Keras' step numbers are the window numbers (empty ones included)
        if windows <= self._windows:
            return
        self.state = self.state._replace(
            windows_done=windows, step=self.state.step + windows - self._windows
        )
        self._windows = windows
        signalled = self._signals is not None and self._signals.received is not None
        if signalled or self.options.due(self.state.step, time.monotonic() - self._last_save):
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 < self.params["epochs"] and not self.model.stop_training:
            self.state = self.state._replace(epoch=epoch + 1, windows_done=0, rows_done=0)
            self._save()

    def on_train_end(self, logs=None):
        try:
            if not self._finished:
                self.state = LoopState(fits_done=self._fit_index + 1, step=self.state.step)
                self._save()
        finally:
            self._end_fit()
            self._fit_index += 1

    # -- internals -----------------------------------------------------------------------------

    def _check_resumable(self, saved: LoopState) -> None:
        if saved.batch_size != self._batch_size:
            raise ValueError(
                f"Checkpoint {self.path} was trained with batch_size={saved.batch_size}; this "
                f"run uses {self._batch_size}. Resume with the same batch_size, or use a new "
                "directory."
            )
        if (saved.seed >= 0) != self._shuffled:
            raise ValueError(
                f"Checkpoint {self.path} was trained with shuffle={saved.seed >= 0}; this run "
                f"uses shuffle={self._shuffled}. Resume with the same data options."
            )
        if self._seed is not None and saved.seed >= 0 and self._seed != saved.seed:
            raise ValueError(
                f"Checkpoint {self.path} was trained with seed={saved.seed}; this run uses "
                f"seed={self._seed}. Resume with the same seed (or seed=None, which takes the "
                "saved one), or use a new directory."
            )

    def _save(self) -> None:
        self.state = self.state._replace(seed=int(self._position[2].numpy()))
        self.path = self._checkpoint.save(self.state)
        self._last_save = time.monotonic()
        signum = self._signals.received if self._signals is not None else None
        if signum is not None:
            self._end_fit()
            preempted = Preempted(signum, self.path)
            print(f"tfstream: {preempted}", flush=True)
            raise preempted

    def _end_fit(self) -> None:
        if self._signals is not None:
            self._signals.uninstall()
            self._signals = None
        self.model._initial_epoch = None  # Keras keeps it for the next fit call otherwise


def _empty(spec):
    """A tensor of ``spec`` with no rows (unknown inner sizes become 0)."""
    shape = [0] + [0 if d is None else d for d in spec.shape[1:]]
    if spec.dtype == tf.string:
        return tf.fill(shape, "")
    return tf.zeros(shape, spec.dtype)


def _inside_fit(frame, model) -> bool:
    """Whether ``model.fit`` is on the stack of ``frame``. Keras calls no callback when ``fit``
    raises, so a catcher installed by ``on_train_begin`` would outlive the fit and swallow the
    next Ctrl-C; its handler asks this first."""
    while frame is not None:
        if frame.f_code.co_name == "fit" and frame.f_locals.get("self") is model:
            return True
        frame = frame.f_back
    return False
