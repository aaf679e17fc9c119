"""``tfstream fit`` on the command line: config errors as one line, a run from a config file
with flag overrides, and a kill (SIGTERM) and resume of the real process."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tfstream.cli import main
from tfstream.pipeline import load_config
from tfstream.testing import write_csv_shards

TFSTREAM = os.path.join(os.path.dirname(sys.executable), "tfstream")


@pytest.fixture
def csv_dir(tmp_path):
    directory = tmp_path / "data"
    write_csv_shards(directory, 300, shards=2, features=28, strings=2, seed=2)
    return directory


def _one_error_line(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("tfstream fit: error: ")
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


@pytest.mark.parametrize(
    "config, flags, expected",
    [
        ("train:\n  epoch: 3\n", [], "unknown config key `train.epoch` in `train`. Did you mean "
                                     "`train.epochs`?"),
        ("train:\n  epochs: three\n", [], "`train.epochs` must be an integer; received 'three'"),
        ("model: {spec: 'mlp:64,x'}\n", [], "the widths after 'mlp:' must be positive"),
        ("", ["--epochs", "abc"], "`train.epochs` must be an integer; received 'abc'"),
        ("", ["--set", "train.batchsize=3"], "Did you mean `train.batch_size`?"),
        ("", ["--model", "no_such_module_xyz:build"], "cannot import 'no_such_module_xyz'"),
        ("", ["--label", "target"], "Received: label='target'; the columns are"),
    ],
)  # fmt: skip
def test_bad_config_is_one_line(tmp_path, csv_dir, capsys, config, flags, expected):
    path = tmp_path / "fit.yaml"
    path.write_text(f"data: {{train: [{csv_dir}]}}\n" + config)
    argv = ["fit", str(path), "--run-dir", str(tmp_path / "run"), "--no-export", *flags]
    assert main(argv) == 2
    assert expected in _one_error_line(capsys)


def test_missing_files_are_one_line(tmp_path, csv_dir, capsys):
    assert main(["fit", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml' does not exist" in _one_error_line(capsys)
    run_dir = tmp_path / "run"
    assert main(["fit", str(tmp_path / "no-data"), "--run-dir", str(run_dir)]) == 2
    assert "does not exist" in _one_error_line(capsys)
    assert not run_dir.exists()  # nothing is written before the inputs are found
    assert main(["fit", "--name", "x"]) == 2
    assert "`data.train` is missing" in _one_error_line(capsys)


def test_help_is_fast_and_does_not_import_tensorflow(capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tfstream fit") and "examples:" in out
    code = (
        "import sys, contextlib, io\n"
        "from tfstream.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['fit', '--help'])\n"
        "print('tensorflow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_bad_config_in_a_subprocess_has_no_traceback(tmp_path):
    path = tmp_path / "fit.toml"
    path.write_text('[train]\nepochs = 2\nbatch_sise = 64\n[data]\ntrain = ["x"]\n')
    done = subprocess.run([TFSTREAM, "fit", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "tfstream fit: error: unknown config key `train.batch_sise` in `train`. Did you mean "
        "`train.batch_size`? The keys there are: epochs, batch_size, accumulation_steps, "
        "optimizer, learning_rate, precision, strategy, remat, shuffle, seed, steps_per_epoch, "
        "checkpoint_every_steps, checkpoint_every_seconds, checkpoint_keep, deterministic, "
        "metrics."
    )


@pytest.mark.slow
def test_fit_from_a_config_file_with_flag_overrides(tmp_path, csv_dir, capsys):
    path = tmp_path / "job.toml"
    path.write_text(
        f'[data]\ntrain = ["{csv_dir}"]\n[model]\nspec = "linear"\n'
        "[train]\nepochs = 3\nbatch_size = 32\n"
    )
    run_dir = tmp_path / "run"
    argv = ["fit", str(path), "--run-dir", str(run_dir), "--epochs", "1", "--no-export",
            "--accumulation-steps", "2", "--set", "train.learning_rate=1e-2",
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "batch 32 = 16 x 2 accumulated" in out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["name"] == "job" and summary["global_step"] == 10  # ceil(300 / 32)
    resolved = (run_dir / "config.yaml").read_text()
    assert "epochs: 1" in resolved and "learning_rate: 0.01" in resolved
    assert "spec: linear" in resolved
    # the resolved config runs the same job again: the finished run trains nothing more
    again = load_config(run_dir / "config.yaml")
    assert again.train.epochs == 1 and again.data.train == [str(csv_dir)]
    assert main(["fit", str(run_dir / "config.yaml"), "--quiet"]) == 0
    assert "records this training as finished" in capsys.readouterr().out


def _start(args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([TFSTREAM, "fit", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.mark.slow
def test_sigterm_saves_exits_75_and_the_rerun_resumes(tmp_path):
    write_csv_shards(tmp_path / "data", 12_000, shards=3, features=28, strings=2, seed=4)
    args = ["data", "--name", "job", "--epochs", "3", "--batch-size", "32", "--model", "mlp:8",
            "--accumulation-steps", "2", "--export-dir", "models", "--quiet",
            "--set", "train.checkpoint_every_steps=25"]  # fmt: skip
    proc = _start(args, tmp_path)
    # The first periodic save (ckpt-1 is the start checkpoint, before any step).
    periodic = tmp_path / "runs" / "job" / "checkpoints" / "ckpt-2.index"
    deadline = time.monotonic() + 240
    while not periodic.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "training ended before it could be stopped: " + proc.stderr.read()
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err
    assert "stopped by SIGTERM after saving" in err and "Traceback" not in err
    assert not (tmp_path / "models").exists()  # stopped before the export

    done = subprocess.run([TFSTREAM, "fit", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "resume: " in done.stdout
    summary = json.loads((tmp_path / "runs" / "job" / "summary.json").read_text())
    steps_per_epoch = 12_000 // 32
    assert summary["global_step"] == 3 * steps_per_epoch
    assert 0 < summary["resumed_step"] < 3 * steps_per_epoch
    # the rows trained after the resume complete the three epochs exactly
    assert summary["rows"] == 3 * 12_000 - summary["resumed_step"] * 32
    history = json.loads((tmp_path / "runs" / "job" / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [0, 1, 2]
    assert all(e["rows"] == 12_000 for e in history["epochs"])
    assert summary["export_path"] == os.path.join("models", "job", "1")
