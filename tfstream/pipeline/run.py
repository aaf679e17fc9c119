"""The ``tfstream fit`` job: sources -> statistics -> preprocessor + model -> Trainer -> export.

Everything goes to the run directory (``runs/<name>`` by default)::

    config.yaml              the resolved config of the last run
    stats.json               statistics (+ stats.fingerprint.json: reused while unchanged)
    checkpoints/             the Trainer's checkpoints, model.keras (or --checkpoint-dir)
    logs/                    TensorBoard summaries (loss, metrics, rows/s, input wait)
    history.json, curves.png the epoch and step logs, and their plot
    summary.json             rows, rows/s, peak memory, final metrics, export path

The preprocessor is the first layer of the trained model (see
:func:`tfstream.pipeline.models.build_model`): the checkpoints carry it, and the export takes
raw features with no separate preprocessing step. Running the same job again resumes from the
checkpoints; a finished job exports again only when its last export is gone.

Example:

>>> from tfstream.pipeline import load_config, run_fit
>>> result = run_fit(load_config("fit.yaml"))             # doctest: +SKIP
>>> result.export_path
'savedmodels/churn/1'
"""

from __future__ import annotations

import dataclasses
import os
import resource
import sys
import time
from typing import Any, TextIO

from tfstream.pipeline.config import ConfigError, FitConfig, config_to_dict, with_absolute_paths
from tfstream.pipeline.data import cached_stats, infer_task, open_sources, write_json
from tfstream.pipeline.models import load_function, parse_spec
from tfstream.sources.atomic import replacing

__all__ = ["FitResult", "default_loss_and_metrics", "run_fit"]


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What a run produced.

    Attributes:
        model: the trained Keras model (raw feature dict -> predictions).
        task: ``"binary"`` or ``"regression"``.
        run_dir: the run directory.
        export_path: the SavedModel directory, or None (export disabled).
        rows: rows trained by this process; rows_per_s: their rate.
        peak_memory: the process's peak resident memory in bytes (``ru_maxrss``).
        metrics: the last epoch's logs (loss, metrics, ``val_`` metrics).
        resumed_step: the global step the run resumed from (0: a fresh start).
        step: the global step at the end.
        stats_reused: the statistics came from the run directory's cache.
    """

    model: Any
    task: str
    run_dir: str
    export_path: str | None
    rows: int
    rows_per_s: float
    peak_memory: int
    metrics: dict
    resumed_step: int
    step: int
    stats_reused: bool


def default_loss_and_metrics(task: str, metrics=None):
    """The loss and metrics of ``task``: binary cross-entropy with accuracy and AUC, or mean
    squared error with mean absolute error."""
    import keras

    if task == "binary":
        loss = "binary_crossentropy"
        default = [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
    else:
        loss = "mse"
        default = [keras.metrics.MeanAbsoluteError(name="mae")]
    return loss, (default if metrics is None else list(metrics))


def run_fit(config: FitConfig, *, progress: bool = True, out: TextIO | None = None) -> FitResult:
    """Runs the job ``config`` describes and prints what it does to ``out`` (stdout).

    Raises:
        ConfigError: (a ValueError) a config the data cannot satisfy.
        tfstream.Preempted: SIGTERM/SIGINT arrived; the checkpoint is saved (exit code 75).
    """
    say = _Printer(out or sys.stdout)
    run_dir = config.resolved_run_dir
    spec = parse_spec(config.model.spec)
    if spec.target is not None:
        load_function(spec.target)  # an import error stops the job before the data are read
    train_src, val_src = open_sources(config.data, run_dir=run_dir)  # a bad path stops here
    os.makedirs(run_dir, exist_ok=True)
    _write_config(config, run_dir)
    stats, reused = _stats(config, train_src, val_src, run_dir, say, progress)
    task = infer_task(stats, config.model.task)
    trainer, resumed = _trainer(config, stats, task, run_dir, say)
    recorder = _recorder(os.path.join(run_dir, "history.json"), config, resumed)
    train = config.train
    start = time.perf_counter()
    history = trainer.fit(
        train_src,
        epochs=train.epochs,
        batch_size=train.batch_size,
        shuffle=train.shuffle,
        seed=train.seed,
        validation=val_src,
        steps_per_epoch=train.steps_per_epoch,
        callbacks=[recorder, recorder.epoch_action],
        verbose=1 if progress and sys.stdout.isatty() else 0,
    )
    seconds = time.perf_counter() - start
    recorder.write()
    rows = sum(int(r) for r in history.history.get("rows", []))
    if resumed is not None and resumed.windows_done and history.history.get("rows"):
        rows -= resumed.rows_done  # the epoch's rows before the restart are not this run's
    from tfstream.pipeline.plots import plot_history

    png = plot_history(
        {"epochs": recorder.epochs, "steps": recorder.steps},
        os.path.join(run_dir, "curves.png"),
        title=f"{config.name}: {config.model.spec} ({task})",
    )
    model = trainer.model
    export_path = _export(
        config, model, run_dir, task=task, warmup=train_src, trained=bool(history.history), say=say
    )
    last = recorder.epochs[-1] if recorder.epochs else {}
    result = FitResult(
        model=model,
        task=task,
        run_dir=run_dir,
        export_path=export_path,
        rows=rows,
        rows_per_s=rows / seconds if seconds > 0 and rows else 0.0,
        peak_memory=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        metrics={k: v for k, v in last.items() if k not in ("epoch", "step")},
        resumed_step=resumed.step if resumed is not None else 0,
        step=int(model.optimizer.iterations.numpy()),
        stats_reused=reused,
    )
    _write_summary(result, config, png)
    _print_summary(result, config, seconds, say.out)
    return result


# -- steps -----------------------------------------------------------------------------------


def _stats(config: FitConfig, train_src, val_src, run_dir: str, say, progress: bool):
    """Loads (or computes) the statistics of ``train_src``, saying what it did."""
    files = len(getattr(train_src, "files", []))
    held = f", {len(val_src.files)} validation file(s)" if val_src is not None else ""
    say(f"data: {files} training file(s), label {config.data.label!r}{held}")
    with _timer() as t:
        stats, reused = cached_stats(train_src, config, run_dir=run_dir, progress=progress)
    how = "reused (inputs unchanged)" if reused else f"computed in {t.seconds:.1f} s"
    sampled = f", sample {config.stats.sample}" if config.stats.sample is not None else ""
    say(f"statistics: {stats.rows:,} rows, {len(stats.feature_names)} features{sampled}; "
        f"{how} -> {os.path.join(run_dir, 'stats.json')}")  # fmt: skip
    if not reused:
        say(f"  rows of the statistics pass: {_rows_line(train_src.report())}")
    return stats, reused


def _trainer(config: FitConfig, stats, task: str, run_dir: str, say):
    """The Trainer of the job, and the checkpoint's LoopState it resumes from (or None)."""
    import keras

    import tfstream as ts
    from tfstream.pipeline.models import build_model
    from tfstream.train.checkpoint import latest_state

    # Absolute: tfstream.train.checkpoint re-joins the relative paths of a relative directory.
    checkpoint_dir = os.path.abspath(config.resolved_checkpoint_dir)
    train = config.train
    try:
        optimizer = keras.optimizers.get(
            {"class_name": train.optimizer, "config": {"learning_rate": train.learning_rate}}
        )
    except ValueError:
        raise ConfigError(
            f"`train.optimizer` {train.optimizer!r} is not a Keras optimizer; use a name such "
            "as adam, adamw, sgd, rmsprop, adagrad, nadam."
        ) from None
    loss, metrics = default_loss_and_metrics(task, train.metrics)
    resumed = latest_state(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None
    model = config.model

    def make_model():
        return build_model(
            model.spec,
            stats=stats,
            task=task,
            dropout=model.dropout,
            max_tokens=model.categorical_max_tokens,
        )

    options = ts.TrainerOptions(
        checkpoint=ts.CheckpointOptions(
            every_steps=train.checkpoint_every_steps,
            every_seconds=train.checkpoint_every_seconds,
            keep=train.checkpoint_keep,
        ),
        deterministic=train.deterministic,
        seed=train.seed,
    )
    remat = train.remat
    trainer = ts.Trainer(
        make_model,
        optimizer=optimizer,
        loss=loss,
        metrics=metrics,
        accumulation_steps=train.accumulation_steps,
        precision=train.precision,
        strategy=train.strategy,
        remat=remat if remat is None or isinstance(remat, str) else list(remat),
        checkpoint_dir=checkpoint_dir,
        stats=stats,
        log_dir=os.path.join(run_dir, "logs"),
        options=options,
    )
    replicas = trainer.strategy.num_replicas_in_sync
    say(f"model: {config.model.spec} ({task}), {trainer.model.count_params():,} parameters, "
        f"preprocessing inside; precision {trainer.precision}, {replicas} replica(s)")  # fmt: skip
    if resumed is not None:
        path, state = resumed
        if state.fits_done:
            say(
                f"resume: {path} records this training as finished (global step "
                f"{state.step}); nothing to train. Use another --run-dir to train again."
            )
        elif state.step == 0 and state.epoch == 0 and state.windows_done == 0:
            say(f"resume: {path} is the start of an attempt that failed before any progress "
                "was saved; training from its initial weights")  # fmt: skip
        else:
            say(f"resume: {path} (epoch {state.epoch + 1}, global step {state.step})")
    micro = -(-train.batch_size // (replicas * train.accumulation_steps))
    split = f"{micro} x {train.accumulation_steps} accumulated" + (
        f" x {replicas} replicas" if replicas > 1 else ""
    )
    say(f"train: {train.epochs} epoch(s), batch {train.batch_size} = {split}; "
        f"checkpoints -> {checkpoint_dir}")  # fmt: skip
    return trainer, (resumed[1] if resumed is not None else None)


def _recorder(path: str, config: FitConfig, state):
    from tfstream.pipeline.history import HistoryRecorder

    return HistoryRecorder(
        path,
        batch_size=config.train.batch_size,
        resumed_step=state.step if state else 0,
        resumed_epoch=(state.epoch if state.fits_done == 0 else 10**9) if state else 0,
    )


def _export(config: FitConfig, model, run_dir: str, *, task, warmup, trained, say) -> str | None:
    """Exports ``model`` (raw features in) to ``<base_dir>/<name>/<version>``, with warmup
    requests from the first training rows; a finished run's existing export is reused."""
    if not config.export.enabled:
        say("export: disabled")
        return None
    summary = _load_summary(run_dir)
    previous = summary.get("export_path")
    if not trained and previous and os.path.isdir(previous):
        say(f"export: training was already finished; the export is {previous}")
        return previous
    import tfstream as ts

    base = os.path.join(config.export.base_dir, config.export.name or config.name)
    with _timer() as t:
        path = ts.export_saved_model(
            model,
            base,
            version=config.export.version,
            keep=config.export.keep,
            task=task,
            warmup=warmup,
        )
    say(f"export: SavedModel for TF Serving -> {path} ({t.seconds:.1f} s)")
    return os.fspath(path)


# -- outputs ---------------------------------------------------------------------------------


def _write_config(config: FitConfig, run_dir: str) -> str:
    import yaml

    path = os.path.join(run_dir, "config.yaml")
    with replacing(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
        f.write(
            "# The resolved config of the last `tfstream fit` run in this directory; "
            "`tfstream fit` of this file runs it again.\n"
        )
        yaml.safe_dump(config_to_dict(with_absolute_paths(config)), f, sort_keys=False)
    return path


def _load_summary(run_dir: str) -> dict:
    import json

    path = os.path.join(run_dir, "summary.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write_summary(result: FitResult, config: FitConfig, png: str) -> str:
    doc = {
        "name": config.name,
        "task": result.task,
        "rows": result.rows,
        "rows_per_s": result.rows_per_s,
        "peak_memory_bytes": result.peak_memory,
        "metrics": result.metrics,
        "global_step": result.step,
        "resumed_step": result.resumed_step,
        "export_path": result.export_path,
        "checkpoint_dir": config.resolved_checkpoint_dir,
        "curves": png,
    }
    return write_json(os.path.join(result.run_dir, "summary.json"), doc)


def _print_summary(result: FitResult, config: FitConfig, seconds: float, out: TextIO) -> None:
    from tfstream.cli._common import format_bytes

    metrics = "  ".join(
        f"{k} {v:.4g}" for k, v in result.metrics.items()
        if v is not None and k not in ("rows", "rows_per_s", "input_wait")
    )  # fmt: skip
    resumed = f", resumed at step {result.resumed_step}" if result.resumed_step else ""
    rate = result.metrics.get("rows_per_s") if result.rows else None
    last = f" overall, {rate:,.0f} in the last epoch" if rate else ""
    lines = [
        "",
        f"summary of {config.name!r}:",
        f"  rows trained   {result.rows:,} in {seconds:.1f} s ({result.rows_per_s:,.0f} rows/s"
        f"{last}); global step {result.step}{resumed}",
        f"  peak memory    {format_bytes(result.peak_memory)} (resident, whole process)",
        f"  final metrics  {metrics or '(none: nothing trained in this run)'}",
        f"  export         {result.export_path or '(disabled)'}",
        f"  run directory  {result.run_dir}/ (config.yaml, stats.json, history.json, "
        "curves.png, summary.json, logs/ for TensorBoard)",
        f"  checkpoints    {config.resolved_checkpoint_dir}",
    ]
    print("\n".join(lines), file=out, flush=True)


def _rows_line(report) -> str:
    line = f"read {report.rows_read:,}, kept {report.rows_ok:,}, rejected {report.rows_rejected:,}"
    if report.rejected:
        first = report.rejected[0]
        line += f" (the first: {first.where()}: {first.error})"
    if report.quarantine_path:
        line += f"; quarantined in {report.quarantine_path}"
    return line


class _Printer:
    def __init__(self, out: TextIO):
        self.out = out

    def __call__(self, text: str) -> None:
        print(text, file=self.out, flush=True)


class _timer:
    def __enter__(self):
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
