"""The README's Python snippets run, as written, on tiny data.

Each ```python block of README.md is executed in a fresh namespace holding what its prose
assumes (``model``, ``build_model``, ``src``, ``features``, ``x``/``y``), in a working directory
with ``data/*.csv`` and ``val/*.csv`` (a 0/1 ``label``, floats ``f0``/``f1``, a string
``city``). The SQL snippet runs against a real PostgreSQL server with an ``orders`` table, its
URL put in place of the example's. Only the object-storage snippet is not run (it names
buckets on S3 and GCS; ``tests/sources/test_remote.py`` runs the same calls against a local
S3 server and fsspec's ``memory://``).
A new README block fails :func:`test_every_readme_block_is_run` until it is given a test.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

import tfstream as ts

README = Path(__file__).resolve().parents[2] / "README.md"

#: A line that tells each block apart -> the name of its test (None: not run, see above).
BLOCKS = {
    'src = ts.csv("data/*.csv", label="label")  # a path': "quickstart",
    'src = ts.csv("s3://bucket/data/*.csv"': None,
    "src = ts.sql(": "sql",
    "stats = ts.compute_stats(src)  # one streaming pass": "stats",
    "model = ts.keras.accumulate(model, 4)": "accumulation_and_trainer",
    "options=ts.TrainerOptions(checkpoint=ts.CheckpointOptions(every_steps=500)),": "checkpoints",
    "backup = ts.keras.ResumableBackup(": "backup",
    "path = ts.export_saved_model(": "export",
}


def readme_blocks() -> list[str]:
    """Every Python block: ```python, ```py or ```python3 fences, also indented (in a list)."""
    fences = re.findall(
        r"^([ \t]*)```(?:python3?|py)[ \t]*\n(.*?)^\1```",
        README.read_text(),
        flags=re.M | re.S | re.I,
    )
    return [textwrap.dedent(code) for _, code in fences]


def block(name: str) -> str:
    (code,) = [
        b for b in readme_blocks() for key, test in BLOCKS.items() if test == name and key in b
    ]
    return code


def test_every_readme_block_is_run():
    keys = [[key for key in BLOCKS if key in code] for code in readme_blocks()]
    assert all(len(k) == 1 for k in keys), f"blocks without exactly one known line: {keys}"
    assert sorted(k[0] for k in keys) == sorted(BLOCKS)


def write_data(directory: Path, rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "label": rng.integers(0, 2, rows),
            "f0": rng.normal(5.0, 2.0, rows).astype(np.float32),
            "f1": rng.normal(-1.0, 0.5, rows).astype(np.float32),
            "city": rng.choice(["paris", "lyon", "nice", "lille"], rows),
        }
    )
    directory.mkdir(parents=True, exist_ok=True)
    half = rows // 2
    frame.iloc[:half].to_csv(directory / "part-0.csv", index=False)
    frame.iloc[half:].to_csv(directory / "part-1.csv", index=False)
    return frame


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame = write_data(tmp_path / "data", 2000, seed=0)
    write_data(tmp_path / "val", 400, seed=1)
    return tmp_path, frame


def dict_model(prep):
    """A model of the raw feature dict: the preprocessor, then one sigmoid unit."""
    inputs = {
        "f0": keras.Input(shape=(), dtype="float32", name="f0"),
        "f1": keras.Input(shape=(), dtype="float32", name="f1"),
        "city": keras.Input(shape=(), dtype="string", name="city"),
    }
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(prep(inputs)))


def namespace(frame=None) -> dict:
    src = ts.csv("data/*.csv", label="label")
    stats = ts.compute_stats(src, progress=False)
    prep = stats.preprocessor()

    def build_model():
        return dict_model(stats.preprocessor())

    ns = {"src": src, "build_model": build_model, "model": dict_model(prep)}
    if frame is not None:
        ns["x"] = {name: frame[name].to_numpy() for name in ("f0", "f1", "city")}
        ns["y"] = frame["label"].to_numpy()
    return ns


def run(name: str, ns: dict) -> dict:
    ns.setdefault("ts", ts)  # the blocks after the first assume `import tfstream as ts`
    exec(compile(block(name), f"README.md ({name})", "exec"), ns)  # noqa: S102 - the docs
    return ns


def test_quickstart(workdir):
    ns = namespace()
    ns["model"].compile(optimizer="adam", loss="binary_crossentropy")
    run("quickstart", ns)
    assert ns["src"].report().rows_ok == 2000


def test_stats(workdir):
    tmp_path, frame = workdir
    src = ts.csv("data/*.csv", label="label")
    features, _ = next(iter(src.dataset(64)))
    ns = run("stats", {"src": src, "features": features})
    assert ns["stats"]["f0"].mean == pytest.approx(frame["f0"].astype(np.float64).mean(), 1e-12)
    assert ns["model_input"].shape[0] == 64 and os.path.exists("stats.json")


def test_accumulation_and_trainer(workdir):
    _, frame = workdir
    ns = run("accumulation_and_trainer", namespace(frame))
    assert len(ns["history"].history["loss"]) == 3
    assert "val_loss" in ns["history"].history


def test_checkpoints(workdir):
    run("checkpoints", namespace())
    assert any(name.startswith("ckpt-") for name in os.listdir("ckpt"))


def test_backup(workdir):
    ns = namespace()
    ns["model"].compile(optimizer="adam", loss="binary_crossentropy")
    run("backup", ns)
    assert any(name.startswith("ckpt-") for name in os.listdir("ckpt"))


def test_export(workdir):
    src = ts.csv("data/*.csv", label="label")
    width = (
        ts.compute_stats(src, progress=False)
        .preprocessor()(next(iter(src.dataset(8)))[0])
        .shape[-1]
    )
    model = keras.Sequential([keras.Input((width,)), keras.layers.Dense(1, activation="sigmoid")])
    ns = run("export", {"src": src, "model": model})
    assert ns["path"].replace(os.sep, "/").startswith("savedmodels/churn/")
    assert os.path.isfile(os.path.join(ns["path"], "saved_model.pb"))


@pytest.mark.postgres
def test_sql(workdir, postgres_url):
    psycopg = pytest.importorskip("psycopg")
    rng = np.random.default_rng(2)
    with psycopg.connect(postgres_url) as conn:
        conn.execute("drop table if exists orders")
        conn.execute(
            "create table orders (id bigint primary key, day date not null, price real, "
            "qty integer, city text, bought_at timestamp, churned integer not null)"
        )
        with conn.cursor().copy(
            "copy orders (id, day, price, qty, city, bought_at, churned) from stdin"
        ) as copy:
            for i in range(1, 1201):
                day = "2023-12-31" if i % 4 == 0 else "2024-01-02"
                copy.write_row(
                    (i, day, float(rng.random()), int(rng.integers(1, 9)), ["a", "b"][i % 2],
                     f"2024-01-02 10:{i % 60:02d}:00", int(rng.integers(0, 2)))
                )  # fmt: skip

    def build_model():
        inputs = {
            "id": keras.Input(shape=(), dtype="int64", name="id"),
            "price": keras.Input(shape=(), dtype="float32", name="price"),
            "qty": keras.Input(shape=(), dtype="int64", name="qty"),
            "city": keras.Input(shape=(), dtype="string", name="city"),
            "bought_at": keras.Input(shape=(), dtype="float64", name="bought_at"),
        }
        x = keras.ops.stack([keras.ops.cast(inputs["price"], "float32")], axis=-1)
        return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))

    code = block("sql").replace(
        '"postgresql://user:password@db.example.com:5432/shop"', repr(postgres_url)
    )
    assert code != block("sql"), "the README's example URL changed; update this test"
    ns = {"model": build_model(), "ts": ts}
    exec(compile(code, "README.md (sql)", "exec"), ns)  # noqa: S102 - the docs
    assert ns["stats"].rows == 900  # the rows of 2024-01-01 and after
    assert ns["src"].report().rows_ok >= 900
