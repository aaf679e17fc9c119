"""``tfstream export``: a .keras model (with or without a separate preprocessor) or a Trainer
checkpoint directory -> a versioned SavedModel equal to the model in memory."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfstream as ts
from tests.export.helpers import head, in_memory, raw_model, request_columns, tiny_frame, tiny_stats
from tfstream.cli import main


@pytest.fixture(scope="module")
def prep():
    return tiny_stats(tiny_frame()).preprocessor()


def _serve(path, columns) -> np.ndarray:
    signature = tf.saved_model.load(path).signatures["serving_default"]
    return signature(**{n: tf.constant(v.astype(str) if v.dtype == object else v)
                        for n, v in columns.items()})["predictions"].numpy()  # fmt: skip


def test_export_a_keras_file(capsys, tmp_path, prep):
    model = raw_model(prep, activation="sigmoid", seed=21)
    model.save(tmp_path / "model.keras")
    base = tmp_path / "models"
    assert main(["export", str(tmp_path / "model.keras"), "--output", str(base)]) == 0
    out = capsys.readouterr().out
    path = os.path.join(str(base), "1")
    assert f"exported {path} in " in out and f"tfstream predict {path} --json" in out
    columns = request_columns(7, seed=22)
    np.testing.assert_allclose(_serve(path, columns), in_memory(model, columns), atol=1e-6)


def test_export_with_a_preprocessor_version_and_keep(capsys, tmp_path, prep):
    model = head(int(prep.output.shape[-1]), activation=None, seed=23)
    model.save(tmp_path / "head.keras")
    prep.save(tmp_path / "prep.keras")
    base = tmp_path / "models"
    argv = ["export", str(tmp_path / "head.keras"), "--preprocessor", str(tmp_path / "prep.keras"),
            "-o", str(base)]  # fmt: skip
    assert main([*argv, "--version", "4"]) == 0
    assert main([*argv, "--keep", "1"]) == 0
    assert sorted(os.listdir(base)) == ["5"]
    columns = request_columns(5, seed=24)
    expected = in_memory(model, columns, prep)
    np.testing.assert_allclose(_serve(str(base / "5"), columns), expected, atol=1e-6)
    capsys.readouterr()
    assert main([*argv, "--version", "5"]) == 2  # never overwritten
    err = capsys.readouterr().err
    assert err.startswith("tfstream export: error: Version 5 exists already")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv, match",
    [
        (["missing.keras", "-o", "m"], "No such model: missing.keras"),
        (["model.h5", "-o", "m"], "expected a .keras file or a checkpoint directory"),
        (["savedmodel", "-o", "m"], "is a SavedModel already"),
        (["empty", "-o", "m"], "has no model.keras"),
    ],
)
def test_export_errors_exit_2_with_one_line(capsys, tmp_path, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.h5").write_text("")
    (tmp_path / "savedmodel").mkdir()
    (tmp_path / "savedmodel" / "saved_model.pb").write_text("")
    (tmp_path / "empty").mkdir()
    assert main(["export", *argv]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1, err


def test_export_a_trainer_checkpoint_directory(capsys, tmp_path, prep):
    frame = tiny_frame(rows=128, seed=5)
    model = raw_model(prep, activation="sigmoid", seed=25)
    trainer = ts.Trainer(
        model,
        optimizer=keras.optimizers.SGD(0.5),
        loss="binary_crossentropy",
        checkpoint_dir=tmp_path / "ckpt",
    )
    columns = request_columns(6, seed=26)
    before = in_memory(model, columns)
    trainer.fit(ts.from_pandas(frame, label="label"), epochs=1, batch_size=32)
    after = in_memory(model, columns)
    assert np.abs(after - before).max() > 1e-4  # training moved the weights
    assert main(["export", str(tmp_path / "ckpt"), "-o", str(tmp_path / "models")]) == 0
    # the export has the checkpoint's (trained) weights, not model.keras's initial ones
    np.testing.assert_allclose(_serve(str(tmp_path / "models" / "1"), columns), after, atol=1e-6)


@pytest.mark.parametrize("command", ["export", "predict"])
def test_help(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "examples:" in capsys.readouterr().out
