"""``tfstream.pipeline.history`` and ``plots``: the run's records across restarts, and the PNG."""

import json

from tfstream.pipeline import history as history_module
from tfstream.pipeline.history import HistoryRecorder, load_history
from tfstream.pipeline.plots import plot_history


class _Iterations:
    def __init__(self):
        self.value = 0

    def numpy(self):
        return self.value


class _Model:
    def __init__(self):
        self.optimizer = type("Optimizer", (), {})()
        self.optimizer.iterations = _Iterations()


class _Trainer:
    def __init__(self, model):
        self.model = model


def _train(recorder, model, steps, epoch):
    for _ in range(steps):
        model.optimizer.iterations.value += 1
        recorder.on_train_batch_end(0, {"loss": 0.5, "accuracy": 0.75})
    recorder.epoch_action(_Trainer(model), epoch, {"loss": 0.5, "rows": 100.0, "val_loss": 0.6})


def test_records_steps_and_epochs_and_a_resume_drops_what_is_trained_again(tmp_path):
    path = str(tmp_path / "history.json")
    model = _Model()
    recorder = HistoryRecorder(path, batch_size=10)
    recorder.set_model(model)
    recorder.on_train_begin()
    _train(recorder, model, 5, epoch=0)
    _train(recorder, model, 5, epoch=1)
    doc = json.loads(open(path).read())
    assert [e["epoch"] for e in doc["epochs"]] == [0, 1]
    assert [s["step"] for s in doc["steps"]] == list(range(1, 11))
    assert all(s["rows_per_s"] > 0 for s in doc["steps"])

    # A restart from the checkpoint of step 7 (epoch 1): epoch 1 and steps 8..10 are redone.
    model.optimizer.iterations.value = 7
    resumed = HistoryRecorder(path, batch_size=10, resumed_step=7, resumed_epoch=1)
    resumed.set_model(model)
    resumed.on_train_begin()
    assert [e["epoch"] for e in resumed.epochs] == [0]
    assert [s["step"] for s in resumed.steps] == list(range(1, 8))
    _train(resumed, model, 3, epoch=1)
    doc = load_history(path)
    assert [s["step"] for s in doc["steps"]] == list(range(1, 11))
    assert [e["epoch"] for e in doc["epochs"]] == [0, 1]
    assert doc["steps"][-1]["seconds"] >= doc["steps"][6]["seconds"]  # time continues


def test_long_runs_are_thinned(tmp_path, monkeypatch):
    monkeypatch.setattr(history_module, "_MAX_STEPS", 16)
    model = _Model()
    recorder = HistoryRecorder(str(tmp_path / "h.json"), batch_size=1)
    recorder.set_model(model)
    recorder.on_train_begin()
    _train(recorder, model, 100, epoch=0)
    steps = [s["step"] for s in recorder.steps]
    assert len(steps) <= 16 and steps == sorted(steps) and steps[-1] >= 90


def test_plot_writes_a_png_even_without_records(tmp_path):
    for doc in ({"epochs": [], "steps": []}, load_history(str(tmp_path / "missing.json"))):
        path = plot_history(doc, str(tmp_path / "curves.png"), title="empty")
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
