"""``tfstream.pipeline.run_fit``: the job end to end, in-process, on tiny CSV shards."""

import json
import os

import numpy as np
import polars as pl
import pytest
import tensorflow as tf

from tfstream.pipeline import load_config, run_fit
from tfstream.pipeline.data import cached_stats, infer_task, open_sources
from tfstream.testing import write_csv_shards


def _config(tmp_path, csv_dir, **overrides):
    base = {
        "name": "tiny",
        "run_dir": str(tmp_path / "run"),
        "data.train": [str(csv_dir)],
        "model.spec": "mlp:16,8",
        "train.batch_size": 64,
        "train.accumulation_steps": 2,
        "train.epochs": 1,
        "export.base_dir": str(tmp_path / "savedmodels"),
    }
    return load_config(overrides={**base, **overrides})


def _raw_rows(csv_dir, n=7):
    frame = pl.read_csv(csv_dir / "part-00001.csv", n_rows=n)
    return {c: frame[c].to_numpy() for c in frame.columns if c != "label"}


@pytest.mark.slow
def test_fit_trains_exports_and_the_export_equals_the_model(tmp_path, csv_dir, capsys):
    config = _config(tmp_path, csv_dir, **{"train.epochs": 2})
    result = run_fit(config, progress=False)
    out = capsys.readouterr().out

    assert result.task == "binary"
    assert result.step == 2 * 10  # ceil(600 / 64) windows per epoch
    assert result.rows == 1200 and result.rows_per_s > 0
    assert result.peak_memory > 50 * 2**20
    assert {"loss", "accuracy", "auc"} <= set(result.metrics)
    run_dir = tmp_path / "run"
    for name in ("config.yaml", "stats.json", "stats.fingerprint.json", "history.json",
                 "curves.png", "summary.json"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    assert (run_dir / "checkpoints" / "model.keras").is_file()
    assert os.listdir(run_dir / "logs")  # TensorBoard event files
    history = json.loads((run_dir / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [0, 1]
    assert history["steps"][-1]["step"] == 20
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["export_path"] == result.export_path
    assert "summary of 'tiny'" in out and "peak memory" in out and result.export_path in out

    # The export takes raw rows (strings included) and answers what the model in memory does.
    assert result.export_path == os.path.join(str(tmp_path / "savedmodels"), "tiny", "1")
    features = _raw_rows(csv_dir)
    expected = np.asarray(result.model(features)).reshape(-1)
    loaded = tf.saved_model.load(result.export_path)
    serve = loaded.signatures["serving_default"]
    inputs = {k: tf.constant(v.astype(np.float32) if v.dtype.kind == "f" else v.astype(str))
              for k, v in features.items()}  # fmt: skip
    outputs = serve(**inputs)
    served = np.asarray(outputs["predictions"]).reshape(-1)
    np.testing.assert_allclose(served, expected, atol=1e-6, rtol=0)

    # A rerun of the finished job trains nothing and keeps its export (no new version).
    again = run_fit(_config(tmp_path, csv_dir, **{"train.epochs": 2}), progress=False)
    assert again.export_path == result.export_path and again.rows == 0
    assert os.listdir(tmp_path / "savedmodels" / "tiny") == ["1"]
    assert "training was already finished; the export is" in capsys.readouterr().out


@pytest.mark.slow
def test_rerun_of_a_finished_run_trains_nothing_and_reuses_stats(tmp_path, csv_dir, capsys):
    config = _config(tmp_path, csv_dir, **{"export.enabled": False})
    first = run_fit(config, progress=False)
    assert not first.stats_reused
    capsys.readouterr()
    second = run_fit(_config(tmp_path, csv_dir, **{"export.enabled": False}), progress=False)
    out = capsys.readouterr().out
    assert second.stats_reused and "reused (inputs unchanged)" in out
    assert second.step == first.step == 10  # finished in the checkpoint: nothing trained again
    assert second.resumed_step == 10 and second.rows == 0
    np.testing.assert_array_equal(
        np.asarray(second.model(_raw_rows(csv_dir))), np.asarray(first.model(_raw_rows(csv_dir)))
    )
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [0]


def test_stats_cache_follows_the_fingerprint(tmp_path, csv_dir):
    config = _config(tmp_path, csv_dir)
    run_dir = str(tmp_path / "run")
    source, _ = open_sources(config.data, run_dir=run_dir)
    first, reused = cached_stats(source, config, run_dir=run_dir, progress=False)
    assert not reused and first.rows == 600
    again, reused = cached_stats(source, config, run_dir=run_dir, progress=False)
    assert reused and again.to_json() == first.to_json()
    # Another sampling option is another fingerprint.
    sampled = load_config(overrides={**_overrides(config), "stats.sample": 100})
    stats, reused = cached_stats(source, sampled, run_dir=run_dir, progress=False)
    assert not reused and stats.sample.size == 100
    # A source that changes (a shard rewritten with more rows) is read again.
    cached_stats(source, config, run_dir=run_dir, progress=False)
    write_csv_shards(tmp_path / "data", 900, shards=3, features=28, strings=2, seed=1)
    source, _ = open_sources(config.data, run_dir=run_dir)
    changed, reused = cached_stats(source, config, run_dir=run_dir, progress=False)
    assert not reused and changed.rows == 900


def _overrides(config):
    return {
        "name": config.name,
        "run_dir": config.run_dir,
        "data.train": config.data.train,
    }


@pytest.mark.slow
def test_validation_fraction_holds_out_files(tmp_path, csv_dir):
    config = _config(tmp_path, csv_dir, **{"data.validation_fraction": 0.3})
    train, validation = open_sources(config.data, run_dir=str(tmp_path / "run"))
    assert [os.path.basename(f) for f in train.files] == ["part-00000.csv", "part-00001.csv"]
    assert [os.path.basename(f) for f in validation.files] == ["part-00002.csv"]
    result = run_fit(_config(tmp_path, csv_dir, **{"data.validation_fraction": 0.3,
                                                   "export.enabled": False}),
                     progress=False)  # fmt: skip
    assert "val_loss" in result.metrics and result.rows == 400


def test_task_inference(tmp_path):
    import tfstream as ts

    def stats_of(label):
        frame = pl.DataFrame({"label": label, "x": np.arange(len(label), dtype=np.float32)})
        return ts.compute_stats(ts.from_pandas(frame.to_pandas(), label="label"), progress=False)

    assert infer_task(stats_of(np.array([0, 1, 1, 0])), "auto") == "binary"
    assert infer_task(stats_of(np.array([0.0, 1.0, 1.0])), "auto") == "binary"
    assert infer_task(stats_of(np.array([0.0, 0.5, 1.0])), "auto") == "regression"
    assert infer_task(stats_of(np.array([3.0, 7.5])), "auto") == "regression"
    with pytest.raises(ValueError, match="expected 0/1 values"):
        infer_task(stats_of(np.array([3.0, 7.5])), "binary")
    with pytest.raises(ValueError, match="is a string column"):
        infer_task(stats_of(np.array(["a", "b"], dtype=object)), "auto")


def test_regression_with_wide_deep(tmp_path, csv_dir):
    # The label as a float target: mean squared error, mean absolute error.
    config = _config(tmp_path, csv_dir, **{"model.task": "regression",
                                           "model.spec": "wide_deep:8",
                                           "export.enabled": False})  # fmt: skip
    result = run_fit(config, progress=False)
    assert result.task == "regression" and "mae" in result.metrics


def test_mirrored_strategy_over_two_logical_cpus(tmp_path, csv_dir, capsys):
    config = _config(tmp_path, csv_dir, **{"train.strategy": "mirrored", "export.enabled": False})
    result = run_fit(config, progress=False)
    out = capsys.readouterr().out
    assert "2 replica(s)" in out and "batch 64 = 16 x 2 accumulated x 2 replicas" in out
    assert result.step == 10 and result.rows == 600
