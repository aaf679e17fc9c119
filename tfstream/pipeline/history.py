"""The training history of a run, kept in ``run_dir/history.json`` across restarts.

Two records: ``epochs`` (the Trainer's epoch logs: loss, metrics, ``val_`` metrics, rows,
rows/s, input wait) and ``steps`` (global step, seconds, loss and metrics, rows/s since the
previous record; thinned to at most ~2,000 points on long runs). A resumed run keeps the
records of the steps its checkpoint covers and drops those after it (they are trained again).

Example:

>>> recorder = HistoryRecorder("runs/x/history.json", batch_size=1024, resumed_step=0)
>>> trainer.fit(src, callbacks=[recorder, recorder.epoch_action])   # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import time

import keras

from tfstream.pipeline.data import write_json

__all__ = ["HistoryRecorder", "load_history"]

_MAX_STEPS = 2000


def load_history(path: str) -> dict:
    """The history file's ``{"epochs": [...], "steps": [...]}``, empty when there is none."""
    if not os.path.exists(path):
        return {"epochs": [], "steps": []}
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    return {"epochs": list(doc.get("epochs", [])), "steps": list(doc.get("steps", []))}


class HistoryRecorder(keras.callbacks.Callback):
    """A Keras callback recording step logs, with :meth:`epoch_action` (a Trainer action)
    recording epoch logs; both written to ``path`` atomically at each epoch's end.

    Args:
        path: the history file; an existing one is continued.
        batch_size: the global batch of one step (rows/s between step records).
        resumed_step: the global step the run resumes from (records after it are dropped).
        resumed_epoch: the epoch the run resumes in (epoch records from it on are dropped).
    """

    def __init__(self, path: str, *, batch_size: int, resumed_step: int = 0, resumed_epoch=0):
        super().__init__()
        self.path = path
        self.batch_size = batch_size
        doc = load_history(path)
        self.epochs = [e for e in doc["epochs"] if e.get("epoch", 0) < resumed_epoch]
        self.steps = [s for s in doc["steps"] if s.get("step", 0) <= resumed_step]
        self._stride = 1
        while len(self.steps) > _MAX_STEPS:
            self._thin()
        self._offset = self.steps[-1]["seconds"] if self.steps else 0.0
        self._start = None
        self._last = None  # (step, time) of the previous record

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        now = time.perf_counter()
        if self._last is None:
            self._last = (step - 1, self._start if self._start is not None else now)
        if step % self._stride:
            return
        last_step, last_time = self._last
        elapsed = now - last_time
        record = {"step": step, "seconds": round(self._offset + now - self._start, 4)}
        for key, value in (logs or {}).items():
            value = float(value)
            record[key] = value if math.isfinite(value) else None
        record["rows_per_s"] = (
            (step - last_step) * self.batch_size / elapsed if elapsed > 0 else None
        )
        self.steps.append(record)
        self._last = (step, now)
        if len(self.steps) > _MAX_STEPS:
            self._thin()

    def epoch_action(self, trainer, epoch: int, logs: dict) -> None:
        """The Trainer action after each epoch: records its logs and writes the file."""
        record = {"epoch": epoch, "step": int(trainer.model.optimizer.iterations.numpy())}
        for key, value in logs.items():
            value = float(value)
            record[key] = value if math.isfinite(value) else None
        self.epochs = [e for e in self.epochs if e["epoch"] != epoch] + [record]
        self.write()

    def write(self) -> str:
        return write_json(self.path, {"epochs": self.epochs, "steps": self.steps})

    def _thin(self) -> None:
        self.steps = self.steps[1::2]
        self._stride *= 2
