"""The example scripts run, on tiny data, as users run them: ``python examples/<name>.py ...``
in a subprocess. Each script checks what it demonstrates (asserts) and prints an ``OK:`` line;
the tests check the exit status and that line, plus a few lines of what it showed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str, tmp_path: Path, timeout: float = 240) -> str:
    """Runs ``examples/<name>`` with ``args`` (and ``--workdir`` in ``tmp_path``); returns its
    stdout after checking that it exited with 0 and printed an ``OK:`` line."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args, "--workdir", str(tmp_path / "work")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = f"--- stdout\n{proc.stdout}\n--- stderr (end)\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, output
    assert any(line.startswith("OK: ") for line in proc.stdout.splitlines()), output
    return proc.stdout


def test_every_example_has_a_test():
    tested = {
        "chunked_streaming.py",
        "incremental_statistics.py",
        "sample_scaling.py",
        "accumulation_mixed_precision.py",
        "mirrored_strategy.py",
        "remat.py",
        "resume_after_crash.py",
        "export_and_predict.py",
        "postgres_source.py",
    }
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == tested, f"untested: {scripts - tested}, missing: {tested - scripts}"


def test_chunked_streaming(tmp_path):
    out = run_example("chunked_streaming.py", "--rows", "2000", tmp_path=tmp_path)
    assert "row report: rows read 2,001, kept 2,000, rejected 1" in out
    assert "quarantined: part-001.csv, line " in out
    assert "OK: CSV, Parquet and pandas chunks gave the same 2,000 rows" in out


def test_incremental_statistics(tmp_path):
    out = run_example("incremental_statistics.py", "--rows", "5000", tmp_path=tmp_path)
    assert "OK: one pass, 3 merged shards and a saved/resumed pass all equal numpy" in out
    assert (tmp_path / "work" / "stats-partial.json").exists()
    assert "price variance: tfstream" in out


def test_sample_scaling(tmp_path):
    out = run_example("sample_scaling.py", "--rows", "5000", tmp_path=tmp_path)
    assert "fraction: " in out and "reservoir: 100 of 5,000 rows" in out
    assert "OK: every sampled mean is within" in out


@pytest.mark.slow
def test_accumulation_mixed_precision(tmp_path):
    out = run_example(
        "accumulation_mixed_precision.py",
        "--rows",
        "3000",
        "--epochs",
        "2",
        "--batch-size",
        "128",
        tmp_path=tmp_path,
    )
    assert "one batch vs 4 micro-batches of 32 rows -> max weight difference" in out
    assert "precision mixed_bfloat16: Dense computes in bfloat16, keeps variables in float32" in out
    assert "OK: accumulation is exact" in out


@pytest.mark.slow
def test_mirrored_strategy(tmp_path):
    out = run_example("mirrored_strategy.py", "--rows", "1000", "--epochs", "1", tmp_path=tmp_path)
    assert "MirroredStrategy over" in out and "2 replicas" in out
    assert "OK: MirroredStrategy over 2 devices equals single-device training" in out


@pytest.mark.slow
def test_remat(tmp_path):
    args = ["--blocks", "2", "--width", "64", "--batch-size", "128", "--rows", "256"]
    out = run_example("remat.py", *args, tmp_path=tmp_path)
    assert "rematerialized: ['block_0', 'block_1']" in out
    assert "a gradient step allocates" in out  # the BFC allocator's exact figures
    assert "OK: remat gives the same gradients and weights" in out


@pytest.mark.slow
def test_resume_after_crash(tmp_path):
    out = run_example("resume_after_crash.py", "--rows", "640", tmp_path=tmp_path, timeout=400)
    assert "killed the first run with SIGKILL" in out
    assert "second run: resuming from ckpt-" in out
    assert "OK: after a kill -9 and a rerun, every id was trained exactly once per epoch" in out


@pytest.mark.slow
def test_export_and_predict(tmp_path):
    out = run_example("export_and_predict.py", "--rows", "2000", "--epochs", "1", tmp_path=tmp_path)
    assert (
        "in a process without tfstream: signatures ['serving_default', 'serving_tf_example']" in out
    )
    assert '{"predictions": [{' in out and '"class_ids": [' in out  # the REST response
    assert (tmp_path / "work" / "savedmodels" / "churn" / "1" / "saved_model.pb").exists()
    assert "OK: the exported SavedModel (version 1) equals the Keras model" in out


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_source(tmp_path):
    from tfstream.testing.postgres import find_pg_bin

    if find_pg_bin() is None:
        pytest.skip("no PostgreSQL server binaries (pg_ctl); `make postgres-deps` installs them")
    out = run_example(
        "postgres_source.py", "--rows", "3000", "--chunk-rows", "1000", tmp_path=tmp_path
    )
    assert "streamed 3,000 rows in chunks of 1,000: rows read 3,000, kept 3,000" in out
    assert "statistics equal PostgreSQL's avg/var_pop" in out
    assert "OK: 3,000 rows streamed from PostgreSQL equal the table" in out
