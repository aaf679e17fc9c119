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
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfstream.train.distribute import resolve_strategy
from tfstream.train.precision import policy_scope, resolve_precision, wrap_optimizer
from tfstream.train.step import accumulated_train_step, loss_reduction, test_step

__all__ = ["Trainer", "TrainerOptions"]


@dataclasses.dataclass(frozen=True)
class TrainerOptions:
    """Rare knobs of the :class:`Trainer`.

    Args:
        summary_every: with ``log_dir``, write step summaries every this many steps.
        stop_on_nonfinite: stop when the loss of a step is NaN or infinite (the step is not
            applied, so the weights keep their last good values).
    """

    summary_every: int = 100
    stop_on_nonfinite: bool = True


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
        checkpoint_dir: reserved for crash-proof resume (not implemented yet: must be None).
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
        log_dir=None,
        options: TrainerOptions | None = None,
    ):
        if (
            isinstance(accumulation_steps, bool)
            or not isinstance(accumulation_steps, int)
            or (accumulation_steps < 1)
        ):
            raise ValueError(
                "`accumulation_steps` must be a positive integer. Received: "
                f"accumulation_steps={accumulation_steps!r}"
            )
        if checkpoint_dir is not None:
            raise NotImplementedError(
                "`checkpoint_dir` (crash-proof resume) is not implemented yet; pass None."
            )
        self.options = options or TrainerOptions()
        self.accumulation_steps = accumulation_steps
        self.strategy = resolve_strategy(strategy)
        self.log_dir = None if log_dir is None else str(log_dir)
        built = isinstance(model, keras.Model)
        if not built and not callable(model):
            raise TypeError(
                "`model` must be a keras.Model or a function that builds one. Received: "
                f"{type(model).__name__}"
            )
        if built:
            self.precision = _model_precision(model, precision)
            _check_strategy(model, self.strategy)
        else:
            self.precision = resolve_precision(precision)
        with policy_scope(self.precision), self.strategy.scope():
            if not built:
                model = model()
                if not isinstance(model, keras.Model):
                    raise TypeError(
                        f"The model function returned {type(model).__name__}, not a keras.Model."
                    )
            model.compile(
                optimizer=wrap_optimizer(optimizer, self.precision), loss=loss, metrics=metrics
            )
        if remat is not None:
            from tfstream.train.remat import apply_remat

            apply_remat(model, remat)
        self.model = model
        self._reduction = loss_reduction(model)
        self._train_function = None
        self._test_function = None
        self._built = False

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

        Returns:
            The ``keras.callbacks.History``. Epoch logs add ``rows``, ``rows_per_s`` and
            ``input_wait`` (the fraction of the epoch spent waiting for input).
        """
        _check_positive("epochs", epochs)
        if steps_per_epoch is not None:
            _check_positive("steps_per_epoch", steps_per_epoch)
        windows = self._windows_factory(data, batch_size, shuffle, seed, cache, steps_per_epoch)
        keras_callbacks, actions = _split_callbacks(callbacks)
        verbose = 1 if verbose == "auto" else verbose
        callback_list = keras.callbacks.CallbackList(
            keras_callbacks,
            add_history=True,
            add_progbar=verbose != 0,
            model=self.model,
            verbose=verbose,
            epochs=epochs,
            steps=steps_per_epoch,
        )
        writer = _summary_writer(self.log_dir) if self.log_dir else None
        self.model.stop_training = False
        callback_list.on_train_begin()
        logs = {}
        for epoch in range(epochs):
            self.model.reset_metrics()
            callback_list.on_epoch_begin(epoch)
            logs = self._train_epoch(windows(epoch), steps_per_epoch, callback_list, writer)
            if validation is not None and not self.model.stop_training:
                logs.update(self._validate(validation, batch_size))
            callback_list.on_epoch_end(epoch, logs)
            if writer is not None:
                _write_summaries(writer, logs, self.model.optimizer.iterations, prefix="epoch_")
            for action in actions:
                action(self, epoch, logs)
            if self.model.stop_training:
                break
        callback_list.on_train_end(logs)
        if writer is not None:
            writer.close()
        return self.model.history

    def evaluate(self, data, *, batch_size: int | None = None) -> dict[str, float]:
        """Loss and metrics of ``data`` (a source batched by ``batch_size``, or a dataset)."""
        return {k[4:]: v for k, v in self._validate(data, batch_size).items()}

    # -- internals -----------------------------------------------------------------------------

    def _windows_factory(
        self, data, batch_size, shuffle, seed, cache, steps_per_epoch
    ) -> Callable[[int], object]:
        """``epoch -> dataset`` of the windows (optimizer steps' batches) of that epoch."""
        from tfstream.sources.base import Source

        if cache is not None and not isinstance(data, Source):
            raise ValueError("`cache` applies to sources; cache a tf.data.Dataset yourself.")
        if cache is not None and steps_per_epoch is not None:
            raise ValueError("`cache` needs whole epochs: it cannot be used with steps_per_epoch.")
        if isinstance(data, Source):
            if batch_size is None:
                raise ValueError("`batch_size` (the global batch of one optimizer step) is "
                                 "required to train on a source.")  # fmt: skip
            _check_positive("batch_size", batch_size)
            if shuffle and seed is None:
                seed = int(np.random.SeedSequence().generate_state(1)[0])

            def windows(epoch):
                epoch_seed = _epoch_seed(seed, epoch) if shuffle else None
                return data.dataset(batch_size, shuffle=shuffle, seed=epoch_seed, epochs=1)

            if cache is None:
                return windows
            cached = windows(0).cache(str(cache))

            def cached_windows(epoch):
                if epoch == 0 or not shuffle:
                    return cached
                return cached.shuffle(4096, seed=_epoch_seed(seed, epoch))

            return cached_windows
        if isinstance(data, tf.data.Dataset):
            if batch_size is not None or shuffle or seed is not None:
                raise ValueError(
                    "`batch_size`, `shuffle` and `seed` apply to sources; a tf.data.Dataset is "
                    "used as it is (each element is one optimizer step's batch)."
                )
            return lambda epoch: data
        raise TypeError(
            "`data` must be a tfstream source or a tf.data.Dataset. Received: "
            f"{type(data).__name__}"
        )

    def _build(self, element_spec) -> None:
        if self._built:
            return
        spec = tf.nest.map_structure(
            lambda s: tf.TensorSpec(s.shape, s.dtype) if isinstance(s, tf.TensorSpec) else s,
            element_spec,
        )
        with policy_scope(self.precision), self.strategy.scope():
            # Builds the model, the compiled loss and metrics from shapes (Keras private API,
            # checked on Keras 3.15), and the optimizer's slots, outside any tf.function.
            self.model._symbolic_build(data_batch=spec)
            self.model.optimizer.build(self.model.trainable_variables)
        self._built = True

    def _train_step_function(self):
        if self._train_function is None:
            model, steps, reduction = self.model, self.accumulation_steps, self._reduction
            strategy = self.strategy

            @tf.function(reduce_retracing=True)
            def train_function(batch):
                outputs = strategy.run(
                    lambda b: accumulated_train_step(model, b, steps, reduction), args=(batch,)
                )
                logs = tf.nest.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0], outputs
                )
                return logs, _global_rows(strategy, batch)

            self._train_function = train_function
        return self._train_function

    def _train_epoch(self, dataset, steps_per_epoch, callbacks, writer) -> dict:
        self._build(dataset.element_spec)
        train_function = self._train_step_function()
        iterator = iter(self.strategy.experimental_distribute_dataset(dataset))
        rows, waited, step = 0, 0.0, 0
        logs = {}
        start = time.perf_counter()
        while steps_per_epoch is None or step < steps_per_epoch:
            before = time.perf_counter()
            optional = iterator.get_next_as_optional()
            if not optional.has_value():
                break
            batch = optional.get_value()
            waited += time.perf_counter() - before
            callbacks.on_train_batch_begin(step)
            # An empty window (a distributed dataset may end with one) applies nothing: the
            # step's guard skips it.
            logs, window_rows = train_function(batch)
            rows += int(window_rows)
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
            if self.model.stop_training:
                break
        seconds = time.perf_counter() - start
        epoch_logs = {k: float(v) for k, v in self.model.get_metrics_result().items()}
        epoch_logs.update(
            rows=rows,
            rows_per_s=rows / seconds if seconds > 0 else float("nan"),
            input_wait=waited / seconds if seconds > 0 else float("nan"),
        )
        return epoch_logs

    def _validate(self, data, batch_size) -> dict:
        from tfstream.sources.base import Source

        if isinstance(data, Source):
            if batch_size is None:
                raise ValueError("`batch_size` is required to evaluate a source.")
            data = data.dataset(batch_size)
        elif not isinstance(data, tf.data.Dataset):
            raise TypeError(
                f"`validation` must be a source or a tf.data.Dataset. Received: "
                f"{type(data).__name__}"
            )
        self._build(data.element_spec)
        dataset = self.strategy.experimental_distribute_dataset(data)
        if self._test_function is None:
            model, strategy = self.model, self.strategy

            @tf.function(reduce_retracing=True)
            def test_function(batch):
                strategy.run(lambda b: test_step(model, b), args=(batch,))

            self._test_function = test_function
        self.model.reset_metrics()
        for batch in dataset:
            self._test_function(batch)
        return {"val_" + k: float(v) for k, v in self.model.get_metrics_result().items()}


# -- helpers ---------------------------------------------------------------------------------


def _model_precision(model, precision: str) -> str:
    """The policy a built model must be trained with: its own (``"auto"``), or the one asked
    for, which must then be the model's."""
    own = model.dtype_policy.name
    if precision == "auto":
        return own if own in ("float32", "mixed_float16", "mixed_bfloat16") else "float32"
    resolved = resolve_precision(precision)
    if resolved != own:
        raise ValueError(
            f"precision={precision!r} needs a model built under that policy, but this model's "
            f"policy is {own!r}. Pass a function that builds the model, e.g. "
            "Trainer(lambda: build_model(), ...), and the Trainer builds it under the policy."
        )
    return resolved


def _check_strategy(model, strategy) -> None:
    if strategy is tf.distribute.get_strategy() or not model.variables:
        return
    value = getattr(model.variables[0], "value", None)
    if not isinstance(value, tf.distribute.DistributedValues):
        raise ValueError(
            f"The model was built outside the {type(strategy).__name__}'s scope. Pass a "
            "function that builds the model (Trainer(lambda: build_model(), ...)), or build it "
            "under `with strategy.scope():` and pass that strategy."
        )


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


def _global_rows(strategy, batch):
    """Rows of a distributed batch over all replicas (a tensor; call in a tf.function)."""
    first = tf.nest.flatten(batch)[0]
    return tf.add_n([tf.shape(t)[0] for t in strategy.experimental_local_results(first)])


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _summary_writer(log_dir: str):
    try:
        import tensorboard  # noqa: F401 - tf.summary needs it to write scalars
    except ImportError:
        raise ImportError(
            "`log_dir` writes TensorBoard summaries, which needs the tensorboard package: "
            "pip install 'tfstream[tensorboard]'"
        ) from None
    return tf.summary.create_file_writer(log_dir)


def _write_summaries(writer, logs, step, prefix: str) -> None:
    with writer.as_default(step=int(step)):
        for key, value in logs.items():
            try:
                tf.summary.scalar(prefix + key, float(value))
            except (TypeError, ValueError):
                continue
    writer.flush()


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
