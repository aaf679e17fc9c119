"""``Trainer``: tfstream's own training loop, built on ``strategy.run``.

Keras' ``model.fit`` cannot run ``MultiWorkerMirroredStrategy`` (DESIGN.md), so tfstream keeps
an outer loop of its own, Orbit-style: small, keyword-only, with Keras callbacks (progress bar,
History, EarlyStopping, ...) and plain-callable *actions* run after each epoch. Each optimizer
step is one macro-step (:mod:`tfstream.train.step`): exact gradient accumulation over
``accumulation_steps`` micro-batches per replica.

Batch semantics: ``batch_size`` is the *global* batch of one optimizer step; each replica gets
``batch_size / replicas`` rows of it and computes them in ``accumulation_steps`` micro-batches::

    global batch = micro-batch x replicas x accumulation steps

so accumulation and replicas change memory, not the mathematics: the learning rate keeps the
meaning it has for ``batch_size``. Learning-rate schedules see optimizer steps. Batch
normalization computes its statistics per micro-batch.

Crash-proof training (``checkpoint_dir=``, :mod:`tfstream.train.checkpoint`): the loop saves the
model, optimizer, metrics and its own position (epoch, windows done, shuffle seed) at window
boundaries, and a Trainer given a directory that holds a checkpoint resumes from it: it skips
the windows already done in the epoch and continues, so that no window is trained twice or
skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfstream.train.checkpoint import (
    Checkpointer,
    CheckpointOptions,
    LoopState,
    Preempted,
    enable_determinism,
    keep_stats,
)
from tfstream.train.checks import _check_positive, _check_same_run
from tfstream.train.compiled import _make_test_function, _make_train_function, _op_determinism
from tfstream.train.distribute import resolve_strategy
from tfstream.train.model import _build_model, _compile_model
from tfstream.train.step import loss_reduction
from tfstream.train.summaries import _summary_writer, _write_summaries
from tfstream.train.windows import _as_dataset, _epoch_seed, _make_windows, _Windows

__all__ = ["CheckpointOptions", "Preempted", "Trainer", "TrainerOptions"]


@dataclasses.dataclass(frozen=True)
class TrainerOptions:
    """Rare knobs of the :class:`Trainer`.

    Args:
        summary_every: with ``log_dir``, write step summaries every this many steps.
        stop_on_nonfinite: stop when the loss of a step is NaN or infinite (the step is not
            applied, so the weights keep their last good values).
        checkpoint: a :class:`~tfstream.train.checkpoint.CheckpointOptions`: how often the
            Trainer saves to ``checkpoint_dir``, how many checkpoints it keeps, which signals
            save and stop.
        deterministic: make training reproducible bit for bit (process-wide, see
            :func:`~tfstream.train.checkpoint.enable_determinism`): seeds Python, NumPy,
            TensorFlow and Keras with ``seed`` before the model is built, turns on
            TensorFlow's op determinism, and draws the shuffle seed of a ``fit`` given none
            from ``seed``. An interrupted and resumed run then ends with the weights of an
            uninterrupted one.
        seed: the seed of ``deterministic``.
    """

    summary_every: int = 100
    stop_on_nonfinite: bool = True
    checkpoint: CheckpointOptions = CheckpointOptions()
    deterministic: bool = False
    seed: int = 0


class Trainer:
    """Trains a Keras model on a tfstream source or a ``tf.data.Dataset``, with exact gradient
    accumulation, a precision policy and a ``tf.distribute`` strategy.

    Args:
        model: a ``keras.Model``, or a zero-argument function that builds one. A function is
            called under the strategy's scope and the precision policy — the way to use
            ``strategy="mirrored"`` or a mixed precision; a model built beforehand must have
            been built under both already.
        optimizer: a Keras optimizer or its name. Wrapped in a ``LossScaleOptimizer`` under
            mixed_float16.
        loss: a Keras loss (name, function or ``keras.losses.Loss``).
        metrics: Keras metrics, as for ``model.compile``.
        accumulation_steps: micro-batches per optimizer step and replica.
        precision: ``"auto"`` (mixed_float16 on NVIDIA GPUs of compute capability >= 7.0,
            mixed_bfloat16 on TPUs, float32 on CPUs; for a built model, its own policy),
            ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.
        strategy: ``"auto"``, ``"one_device"``, ``"mirrored"`` or a ``tf.distribute.Strategy``.
        remat: activation checkpointing (see :mod:`tfstream.train.remat`), or None.
        checkpoint_dir: a directory for crash-proof training, or None. The Trainer saves
            checkpoints there (at the end of each epoch, as ``options.checkpoint`` says, and on
            SIGTERM/SIGINT, after which ``fit`` raises :class:`Preempted`, exit code
            :data:`~tfstream.train.checkpoint.PREEMPTED_EXIT_CODE`), and resumes from the
            latest one (restored at the first ``fit`` or ``evaluate``, once the model is
            built): run the same script again after a crash and it continues where the
            checkpoint stood. See :meth:`fit` for what a resume does. A ``fit`` that raised and
            is called again in the same process (a notebook) restarts from the latest
            checkpoint too, not from where it stopped: the first fit in a directory without
            checkpoints saves its start, so a retry before any other save begins again from
            the weights and optimizer state the model had when the first attempt began. The
            directory also holds ``model.keras`` (the architecture, for ``tfstream export``
            and :func:`~tfstream.train.checkpoint.load_model`).
        stats: the ``ts.Stats`` the model's preprocessing was built from, or None. With
            ``checkpoint_dir`` they are kept there as ``stats.json``; a resume with other
            statistics is refused, and with None the saved ones are :attr:`stats`.
        log_dir: write TensorBoard summaries (loss, metrics, rows/s, input wait) here.
        options: a :class:`TrainerOptions`.

    Example:

    >>> trainer = ts.Trainer(lambda: build_model(), optimizer="adam",
    ...                      loss="binary_crossentropy", accumulation_steps=4)  # doctest: +SKIP
    >>> history = trainer.fit(ts.csv("data/*.csv", label="label"), batch_size=4096,
    ...                       epochs=3, shuffle=True, seed=0)                    # doctest: +SKIP
    """

    def __init__(
        self,
        model,
        *,
        optimizer,
        loss,
        metrics=None,
        accumulation_steps: int = 1,
        precision: str = "auto",
        strategy="auto",
        remat=None,
        checkpoint_dir=None,
        stats=None,
        log_dir=None,
        options: TrainerOptions | None = None,
    ):
        _check_positive("accumulation_steps", accumulation_steps)
        if checkpoint_dir is not None and not isinstance(checkpoint_dir, (str, os.PathLike)):
            raise TypeError(
                "`checkpoint_dir` must be a path (str or os.PathLike) or None. Received: "
                f"{type(checkpoint_dir).__name__}"
            )
        self.options = options or TrainerOptions()
        if not isinstance(self.options, TrainerOptions):
            raise TypeError(
                f"`options` must be a TrainerOptions. Received: {type(self.options).__name__}"
            )
        self.checkpoint_dir = None if checkpoint_dir is None else os.fspath(checkpoint_dir)
        self.stats = stats if checkpoint_dir is None else keep_stats(self.checkpoint_dir, stats)
        if self.options.deterministic:
            enable_determinism(self.options.seed)
        self.accumulation_steps = accumulation_steps
        self.strategy = resolve_strategy(strategy)
        self.log_dir = None if log_dir is None else str(log_dir)
        self.model, self.precision = _compile_model(
            model,
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            precision=precision,
            strategy=self.strategy,
            remat=remat,
        )
        self._reduction = loss_reduction(self.model)
        self._train_function = None
        self._test_function = None
        self._train_clock = False
        self._built = False
        self._fit_index = 0  # fit calls returned so far (see Checkpointer.begin)
        self._checkpointer = (
            None
            if self.checkpoint_dir is None
            else Checkpointer(self.checkpoint_dir, self.options.checkpoint)
        )

    # -- the loop ------------------------------------------------------------------------------

    def fit(
        self,
        data,
        *,
        epochs: int = 1,
        batch_size: int | None = None,
        shuffle: bool = False,
        seed: int | None = None,
        validation=None,
        steps_per_epoch: int | None = None,
        callbacks: Sequence | None = None,
        verbose: int | str = "auto",
        cache: str | None = None,
    ) -> keras.callbacks.History:
        """Trains for ``epochs`` passes over ``data``.

        Args:
            data: a tfstream source (batched here by ``batch_size``, shuffled with
                ``shuffle``/``seed``, a fresh order each epoch) or a ``tf.data.Dataset`` of
                ``(features, label[, sample_weight])`` whose every element is one optimizer
                step's global batch (used as it is).
            epochs: passes over the data.
            batch_size: the global batch of one optimizer step (sources only).
            shuffle, seed: file order and row shuffle buffer of a source, per epoch.
            validation: a source or dataset evaluated after each epoch (``val_`` metrics).
            steps_per_epoch: at most this many optimizer steps per epoch.
            callbacks: Keras callbacks, and plain callables ``action(trainer, epoch, logs)``
                run after each epoch (Orbit's actions).
            verbose: 0 (silent), 1 (progress bar), 2 (one line per epoch) or ``"auto"``.
            cache: a file prefix for an on-disk cache of the parsed batches of a source
                (``tf.data``'s cache): the first epoch parses and writes it, later epochs read
                it instead of parsing again. With ``shuffle``, later epochs shuffle the order
                of whole batches (rows stay in their first-epoch batches). The files are kept
                for the next ``fit`` with the same prefix; delete them when the data change.

            Resume (with ``checkpoint_dir``): when the directory holds a checkpoint of this
            ``fit``, the model, optimizer and metrics are restored and training continues at
            the saved epoch and window: the epoch's dataset is made again (same shuffle seed,
            saved even when drawn at random) and the windows already done are skipped with
            ``Dataset.skip``, so no window is trained twice or skipped. The skip reads and
            parses the skipped rows again (at the source's speed) without training on them;
            the checkpoint itself holds only counters and seeds, never rows. A resume needs
            the same data, ``batch_size``, ``shuffle``, ``seed`` (when one was given; None
            takes the saved one) and ``steps_per_epoch``, and refuses others with a
            ``ValueError``; a ``tf.data.Dataset`` must give the same windows in the same
            order on every pass. ``fit`` calls the checkpoint records as finished return at
            once (a rerun script replays them), with the model restored. Keras callbacks keep
            no state across a restart (EarlyStopping's patience starts again), and the
            end-of-epoch actions of an epoch may run again when the process died between
            them and the epoch's checkpoint.

        Returns:
            The ``keras.callbacks.History``. Epoch logs add ``rows``, ``rows_per_s`` and
            ``input_wait`` (the fraction of the epoch spent waiting for input).

        Raises:
            Preempted: with ``checkpoint_dir``, SIGTERM or SIGINT arrived; the checkpoint of
                the last finished window is saved. A ``SystemExit``: uncaught, the process
                exits with code ``PREEMPTED_EXIT_CODE`` (75).
        """
        _check_positive("epochs", epochs)
        if steps_per_epoch is not None:
            _check_positive("steps_per_epoch", steps_per_epoch)
        if cache is not None and self.checkpoint_dir is not None:
            raise ValueError(
                "`cache` cannot be used with `checkpoint_dir`: a process killed while the cache "
                "is written leaves a lock file that stops the resume. Pass one of them."
            )
        windows = self._windows_factory(data, batch_size, shuffle, seed, cache, steps_per_epoch)
        keras_callbacks, actions = _split_callbacks(callbacks)
        verbose = 1 if verbose == "auto" else verbose
        history = keras.callbacks.History()
        start = LoopState()
        if self._checkpointer is not None:
            windows = self._begin_checkpointed(
                data, windows, batch_size, shuffle, seed, steps_per_epoch, verbose
            )
            if windows is None:  # this fit is finished in the checkpoint
                self._fit_index += 1
                history.set_model(self.model)
                history.on_train_begin()
                return history
            start = self._checkpointer.state
        callback_list = keras.callbacks.CallbackList(
            [*keras_callbacks, history],
            add_history=True,
            add_progbar=verbose != 0,
            model=self.model,
            verbose=verbose,
            epochs=epochs,
            steps=steps_per_epoch,
        )
        self._run_epochs(
            windows, start, epochs, steps_per_epoch, validation, batch_size, callback_list, actions
        )
        self._fit_index += 1
        return history

    def evaluate(self, data, *, batch_size: int | None = None) -> dict[str, float]:
        """Loss and metrics of ``data`` (a source batched by ``batch_size``, or a dataset).
        With ``checkpoint_dir``, of the restored model when nothing was trained yet."""
        if self._checkpointer is not None:
            self._build(_as_dataset(data, batch_size).element_spec)
            self._checkpointer.restore_if_pending(self.model)
        return {k[4:]: v for k, v in self._validate(data, batch_size).items()}

    # -- internals -----------------------------------------------------------------------------

    def _run_epochs(
        self, windows, start, epochs, steps_per_epoch, validation, batch_size, callbacks, actions
    ) -> None:
        """The epochs of a fit, from where ``start`` (a :class:`LoopState`) stands: each trained,
        validated and ended in the callbacks, the summaries and the actions; with
        ``checkpoint_dir``, saved as the checkpoint's options say."""
        writer = _summary_writer(self.log_dir) if self.log_dir else None
        self.model.stop_training = False
        checkpointer = self._checkpointer
        try:
            with checkpointer.catch_signals() if checkpointer else contextlib.nullcontext():
                callbacks.on_train_begin()
                logs = {}
                for epoch in range(start.epoch, epochs):
                    # A resumed epoch keeps its restored metrics and skips its done windows.
                    done = start.windows_done if epoch == start.epoch else 0
                    rows = start.rows_done if epoch == start.epoch else 0
                    if done == 0:
                        self.model.reset_metrics()
                    callbacks.on_epoch_begin(epoch)
                    dataset = windows(epoch).skip(done) if done else windows(epoch)
                    logs = self._train_epoch(
                        dataset, steps_per_epoch, callbacks, writer, epoch, done, rows
                    )
                    if validation is not None and not self.model.stop_training:
                        logs.update(self._validate(validation, batch_size))
                    callbacks.on_epoch_end(epoch, logs)
                    if writer is not None:
                        _write_summaries(
                            writer, logs, self.model.optimizer.iterations, prefix="epoch_"
                        )
                    for action in actions:
                        action(self, epoch, logs)
                    if self.model.stop_training:
                        break
                    if checkpointer and epoch + 1 < epochs:
                        checkpointer.epoch_end(epoch)
                if checkpointer:
                    checkpointer.fit_end(self._fit_index)
                callbacks.on_train_end(logs)
        except BaseException:
            if checkpointer:  # the model may be ahead of the checkpoint: the next fit restores
                checkpointer.failed()
            raise
        finally:
            if writer is not None:
                writer.close()

    def _windows_factory(self, data, batch_size, shuffle, seed, cache, steps_per_epoch) -> _Windows:
        """``epoch -> dataset`` of the windows (optimizer steps' batches) of that epoch."""
        return _make_windows(
            data, batch_size, shuffle, seed, cache, steps_per_epoch, draw_seed=self._draw_seed
        )

    def _draw_seed(self) -> int:
        """The shuffle seed of a fit given none: from ``options.seed`` and the fit's index in
        deterministic mode, else at random (saved in the checkpoint for the resume)."""
        if self.options.deterministic:
            return _epoch_seed(self.options.seed, self._fit_index)
        return int(np.random.SeedSequence().generate_state(1)[0])

    def _begin_checkpointed(
        self, data, windows, batch_size, shuffle, seed, steps_per_epoch, verbose
    ):
        """Restores or starts the checkpointed fit; returns its windows (made again with the
        saved shuffle seed on a resume), or None when the checkpoint records it as finished."""
        self._build(windows(0).element_spec)
        checkpointer = self._checkpointer
        begin = checkpointer.begin(
            self.model,
            fit_index=self._fit_index,
            seed=windows.seed,
            batch_size=batch_size or 0,
            steps_per_epoch=steps_per_epoch or 0,
        )
        state = checkpointer.state
        if begin == "finished":
            if verbose:
                print(f"tfstream: fit #{self._fit_index} is finished in {checkpointer.path}.")
            return None
        if begin == "resume":
            try:
                _check_same_run(
                    state, checkpointer.path, data, batch_size, shuffle, seed, steps_per_epoch
                )
            except ValueError:
                checkpointer.failed()  # the next fit restores and checks again
                raise
            if state.seed != windows.seed:
                windows = self._windows_factory(data, batch_size, shuffle, state.seed, None, None)
            if verbose:
                print(
                    f"tfstream: resuming from {checkpointer.path}: epoch {state.epoch + 1}, "
                    f"after window {state.windows_done} (global step {state.step})."
                )
        return windows

    def _build(self, element_spec) -> None:
        if self._built:
            return
        _build_model(self.model, element_spec, self.precision, self.strategy)
        self._built = True

    def _train_step_function(self):
        # The step's clock depends on op determinism (see compiled._clock): a switch flipped
        # after the step was traced needs a new trace.
        if self._train_function is not None and self._train_clock != _op_determinism():
            self._train_function = None
        if self._train_function is None:
            self._train_clock = _op_determinism()
            self._train_function = _make_train_function(
                self.model, self.strategy, self.accumulation_steps, self._reduction
            )
        return self._train_function

    def _train_epoch(
        self, dataset, steps_per_epoch, callbacks, writer, epoch=0, done=0, rows_done=0
    ) -> dict:
        """Trains one epoch's windows; ``done`` windows (``rows_done`` rows) of it were trained
        before a resume (``dataset`` starts after them)."""
        self._build(dataset.element_spec)
        train_function = self._train_step_function()
        iterator = iter(self.strategy.experimental_distribute_dataset(dataset))
        step, window_rows, waits = done, [], []  # per-step tensors, folded every _FOLD steps
        logs = {}
        start = time.perf_counter()
        while steps_per_epoch is None or step < steps_per_epoch:
            # As in Keras, the step that finds the input exhausted was begun and is not ended.
            callbacks.on_train_batch_begin(step)
            try:
                # An empty window (a distributed dataset may end with one) applies nothing:
                # the step's guard skips it.
                logs, rows, waited = train_function(iterator)
            except tf.errors.OutOfRangeError:
                break
            window_rows.append(rows)
            waits.append(waited)
            if len(waits) >= _FOLD:  # memory stays flat however long the epoch
                window_rows, waits = [tf.add_n(window_rows)], [tf.add_n(waits)]
            loss = float(logs["loss"])
            callbacks.on_train_batch_end(step, logs)
            if writer is not None and step % self.options.summary_every == 0:
                _write_summaries(writer, logs, self.model.optimizer.iterations, prefix="step_")
            step += 1
            if self.options.stop_on_nonfinite and not math.isfinite(loss):
                print(
                    f"tfstream: non-finite loss ({loss}) at step {step}: stopping; the step was "
                    "not applied, the weights are those of the last good step."
                )
                self.model.stop_training = True
                break
            if self._checkpointer is not None:
                window_rows = [tf.add_n(window_rows)]
                self._checkpointer.window_end(epoch, step, rows_done + int(window_rows[0]))
            if self.model.stop_training:
                break
        seconds = time.perf_counter() - start
        rows = int(tf.add_n(window_rows)) if window_rows else 0
        waited = float(tf.add_n(waits)) if waits else 0.0
        epoch_logs = {k: float(v) for k, v in self.model.get_metrics_result().items()}
        epoch_logs.update(
            rows=rows_done + rows,
            rows_per_s=rows / seconds if seconds > 0 else float("nan"),
            input_wait=waited / seconds if seconds > 0 else float("nan"),
        )
        return epoch_logs

    def _validate(self, data, batch_size) -> dict:
        data = _as_dataset(data, batch_size)
        self._build(data.element_spec)
        dataset = self.strategy.experimental_distribute_dataset(data)
        if self._test_function is None:
            self._test_function = _make_test_function(self.model, self.strategy)
        self.model.reset_metrics()
        iterator = iter(dataset)
        while True:
            try:
                self._test_function(iterator)
            except tf.errors.OutOfRangeError:
                break
        return {"val_" + k: float(v) for k, v in self.model.get_metrics_result().items()}


# -- helpers ---------------------------------------------------------------------------------


#: Per-step tensors (rows, input wait) kept before they are summed into one: bounds the memory
#: of an epoch of any length without reading a tensor back every step.
_FOLD = 256


def _split_callbacks(callbacks):
    keras_callbacks, actions = [], []
    for cb in callbacks or []:
        if isinstance(cb, keras.callbacks.Callback):
            keras_callbacks.append(cb)
        elif callable(cb):
            actions.append(cb)
        else:
            raise TypeError(
                f"`callbacks` takes Keras callbacks and callables. Received: {type(cb).__name__}"
            )
    return keras_callbacks, actions
