"""``tfstream demo`` on a tiny dataset: generate, fit (stats, accumulation, export), predict."""

import json
import os

import pytest

import tfstream as ts
from tfstream.cli import main


@pytest.mark.slow  # ~15 s: tracing the train step and exporting dominate
def test_demo_tiny(capsys, tmp_path):
    output, exports = tmp_path / "demo", tmp_path / "savedmodels"
    argv = ["demo", "--rows", "1500", "--files", "3", "--epochs", "1", "--batch-size", "128",
            "--output", str(output), "--export-dir", str(exports), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    for i, step in enumerate(["generate", "train: tfstream fit", "serve: tfstream predict"], 1):
        assert f"[{i}/3] {step}" in out
    assert "5 malformed lines" in out
    assert "rows of the statistics pass: read 1,505, kept 1,500, rejected 5 (the first: " in out
    assert "batch 128 = 32 x 4 accumulated" in out
    stats = ts.Stats.load(output / "run" / "stats.json")
    assert stats.rows == 1500 and stats.label == "label"
    summary = json.loads((output / "run" / "summary.json").read_text())
    assert summary["global_step"] == 12  # ceil(1500 / 128)
    assert summary["export_path"] == os.path.join(str(exports), "demo", "1")
    assert os.path.isfile(os.path.join(summary["export_path"], "saved_model.pb"))
    request = json.loads((output / "request.json").read_text())
    assert len(request["instances"]) == 3 and "label" not in request["instances"][0]
    assert "the export's predictions equal the trained model's" in out
    assert f"model for TF Serving in {summary['export_path']}" in out and "Done in " in out


@pytest.mark.parametrize("flag", ["--rows", "--epochs", "--batch-size"])
def test_demo_rejects_non_positive(capsys, flag):
    with pytest.raises(SystemExit) as info:
        main(["demo", flag, "0"])
    assert info.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err


def test_the_printed_fit_command_is_the_config_the_demo_trains_with(tmp_path):
    from tfstream.cli import build_parser
    from tfstream.cli.demo import demo_config, fit_argv

    args = build_parser().parse_args(
        ["demo", "--output", str(tmp_path / "a b"), "--epochs", "5", "--model", "wide_deep:8"]
    )
    config = demo_config(args)
    assert fit_argv(args)[0] == "fit"
    assert config.name == "demo" and config.train.epochs == 5
    assert config.model.spec == "wide_deep:8" and config.train.accumulation_steps == 4
    assert config.data.train == [str(tmp_path / "a b" / "csv")]
    assert config.data.schema == {"f27": "float32"} and config.data.on_error == "skip"
    assert config.export.keep == 3
    assert config.export.base_dir == str(tmp_path / "a b" / "savedmodels")
