r"""Export for TF Serving: a versioned SavedModel that carries its preprocessing, checked in a
fresh process that imports neither tfstream nor Keras.

A model trained on standardised, vocabulary-encoded features is useless in serving unless the
exported model applies the same preprocessing to raw requests. ``ts.export_saved_model``
writes ``base_dir/<version>/`` — the layout TF Serving watches; assembled under a temporary
name and renamed into place, so a polling server never sees half a version — with signatures:

- ``serving_default``: one ``[batch]`` tensor per raw feature (numbers and strings), returning
  float32 ``predictions`` (and ``probabilities``/``class_ids`` for a classifier);
- ``serving_tf_example``: serialized ``tf.train.Example`` strings;

plus warmup requests in ``assets.extra/``. This script trains a small classifier whose first
layers are the preprocessor built from the statistics, exports two versions, then:

1. loads the newest version with plain ``tf.saved_model.load`` in a separate process and checks
   both signatures on raw rows — a missing number and an unseen category included — against
   the in-memory Keras model (within 1e-6);
2. answers a TF Serving REST body (``{"instances": [...]}``) locally with ``tfstream predict``,
   as TF Serving's REST API would.

Run it::

    python examples/export_and_predict.py                 # 20,000 rows
    python examples/export_and_predict.py --rows 2000 --workdir /tmp/export

and serve the export with TF Serving (the REST API answers what ``tfstream predict`` did)::

    docker run -p 8501:8501 -v /tmp/export/savedmodels/churn:/models/churn \
        -e MODEL_NAME=churn tensorflow/serving
    curl -d @/tmp/export/request.json localhost:8501/v1/models/churn:predict
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

import tfstream as ts
from tfstream.export import list_versions

# What the fresh process runs: TensorFlow only.
_SERVE = r"""
import json, sys
import numpy as np
import tensorflow as tf

path, rows_file = sys.argv[1:3]
loaded = tf.saved_model.load(path)
with open(rows_file) as f:
    rows = json.load(f)
inputs = {name: tf.constant(values) for name, values in rows["columns"].items()}
default = loaded.signatures["serving_default"](**inputs)
examples = [bytes.fromhex(e) for e in rows["examples"]]
by_example = loaded.signatures["serving_tf_example"](examples=tf.constant(examples))
print(json.dumps({
    "signatures": sorted(loaded.signatures),
    "default": default["predictions"].numpy().ravel().tolist(),
    "example": by_example["predictions"].numpy().ravel().tolist(),
    "tfstream imported": "tfstream" in sys.modules,
}))
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="training rows (CSV)")
    parser.add_argument(
        "--workdir", help="data and savedmodels (default: a temporary dir, removed at the end)"
    )
    parser.add_argument("--epochs", type=int, default=2)
    return parser.parse_args()


def write_table(path: str, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    age = rng.normal(45, 12, rows)
    income = rng.lognormal(10, 0.6, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    logit = 0.08 * (age - 45) - 0.6 * (np.log(income) - 10) + np.where(plan == "basic", 1.0, -1.0)
    table = pd.DataFrame(
        {
            "churned": (logit + rng.logistic(size=rows) > 0).astype(int),
            "age": age,
            "income": income,
            "plan": plan,
        }
    )
    table.loc[rng.random(rows) < 0.05, "income"] = np.nan  # missing values: imputed
    table.to_csv(path, index=False)


def main():
    args = parse_args()
    if args.workdir:
        return run(args, args.workdir)
    with tempfile.TemporaryDirectory(prefix="tfstream-export-") as workdir:  # removed at the end
        return run(args, workdir)


def run(args, workdir: str):
    os.makedirs(workdir, exist_ok=True)
    write_table(os.path.join(workdir, "train.csv"), args.rows, seed=0)
    schema = {"age": "float32", "income": "float32"}
    src = ts.csv(os.path.join(workdir, "train.csv"), label="churned", schema=schema)
    stats = ts.compute_stats(src, progress=False)

    def build():
        prep = stats.preprocessor()  # raw features -> standardised, imputed, one-hot
        h = keras.layers.Dense(16, activation="relu")(prep.output)
        out = keras.layers.Dense(1, activation="sigmoid", dtype="float32")(h)
        return keras.Model(prep.input, out)

    trainer = ts.Trainer(
        build,
        optimizer=keras.optimizers.Adam(1e-2),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    base_dir = os.path.join(workdir, "savedmodels", "churn")
    for epoch in range(args.epochs):  # a version per epoch: TF Serving serves the newest
        trainer.fit(src, batch_size=256, epochs=1, shuffle=True, seed=epoch, verbose=0)
        path = ts.export_saved_model(trainer.model, base_dir, warmup=src, keep=3)
        print(f"epoch {epoch + 1}: exported {path}")
    print("versions:", list_versions(base_dir))

    # Raw rows as a client sends them: a missing income, and a plan the model never saw.
    rows = {
        "age": [30.0, 61.5, 45.0, 52.0],
        "income": [18_000.0, float("nan"), 40_000.0, 75_000.0],
        "plan": ["basic", "pro", "enterprise", "plus"],
    }
    expected = np.asarray(
        trainer.model(
            {k: np.asarray(v, "float32" if k != "plan" else object) for k, v in rows.items()}
        )
    ).ravel()

    # -- 1. a fresh process with TensorFlow only ---------------------------------------------
    examples = []
    for i in range(len(rows["age"])):
        feature = {
            "age": tf.train.Feature(float_list=tf.train.FloatList(value=[rows["age"][i]])),
            "plan": tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[rows["plan"][i].encode()])
            ),
        }
        if not np.isnan(rows["income"][i]):  # a feature left out is a missing value
            feature["income"] = tf.train.Feature(
                float_list=tf.train.FloatList(value=[rows["income"][i]])
            )
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        examples.append(example.SerializeToString().hex())
    rows_file = os.path.join(workdir, "rows.json")
    with open(rows_file, "w") as f:
        json.dump({"columns": rows, "examples": examples}, f)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    served = subprocess.run(
        [sys.executable, "-c", _SERVE, path, rows_file],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    got = json.loads(served.stdout.strip().splitlines()[-1])
    print(f"loaded {path} in a process without tfstream: signatures {got['signatures']}")
    assert not got["tfstream imported"]
    for name in ("default", "example"):
        diff = float(np.max(np.abs(np.asarray(got[name]) - expected)))
        print(
            f"  {name:7}: predictions {np.round(got[name], 4).tolist()}, max diff vs Keras "
            f"{diff:.1e}"
        )
        assert diff <= 1e-6, (name, got[name], expected)

    # -- 2. a TF Serving REST request, answered locally ---------------------------------------
    request = {"instances": [{k: rows[k][i] for k in rows} for i in range(2)]}
    # A missing number is NaN — a bare token in the JSON, as TF Serving (and json.dump) write it.
    request_file = os.path.join(workdir, "request.json")
    with open(request_file, "w") as f:
        json.dump(request, f)
    answer = subprocess.run(
        [sys.executable, "-m", "tfstream.cli", "predict", base_dir, "--json", request_file],
        capture_output=True,
        text=True,
        env=env,
    )
    print(f"$ tfstream predict {base_dir} --json request.json\n{answer.stdout.strip()}")
    assert answer.returncode == 0, answer.stderr[-2000:]
    response = json.loads(answer.stdout)
    served_p = [p["predictions"][0] for p in response["predictions"]]
    np.testing.assert_allclose(served_p, expected[:2], atol=1e-6)
    print(
        f"OK: the exported SavedModel (version {os.path.basename(path)}) equals the Keras model "
        "on raw rows, through both signatures and a TF Serving REST request"
    )


if __name__ == "__main__":
    main()
