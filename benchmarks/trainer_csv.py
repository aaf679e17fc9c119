"""The Trainer streaming a 1M-row CSV against ``model.fit`` on the same rows held in memory, in
one run, epoch by epoch:

- anchor: the CSV loaded into numpy arrays first (load time not counted), then
  ``model.fit(arrays, batch_size=1024)``;
- ``ts.Trainer(...).fit(ts.csv(path), batch_size=1024)``: parsing while training;
- the same with ``cache=`` (an on-disk cache of parsed batches: the first epoch writes it,
  later epochs read it).

Targets: >= 0.8x the anchor's rows/s in the first epoch, >= 0.95x in later epochs with the
cache. Each variant builds the same model (an MLP 28-256-256-1, a typical tabular network) from the
same seed.

    python -m benchmarks.trainer_csv [--rows 1000000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

from benchmarks._common import machine, make_numeric_csv, out_path

QUICK_ARGS = ["--rows", "100000", "--epochs", "2"]
FEATURES = [f"f{i}" for i in range(28)]
BATCH = 1024


def build():
    import keras

    keras.utils.set_random_seed(0)
    inputs = {f: keras.Input((), name=f) for f in FEATURES}
    h = keras.layers.Concatenate()([keras.layers.Reshape((1,))(v) for v in inputs.values()])
    h = keras.layers.Dense(256, activation="relu")(h)
    h = keras.layers.Dense(256, activation="relu")(h)
    return keras.Model(inputs, keras.layers.Dense(1)(h))


def run(rows: int = 1_000_000, epochs: int = 3) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import polars as pl

    import tfstream as ts

    path = make_numeric_csv(rows)
    loss = keras.losses.BinaryCrossentropy(from_logits=True)

    frame = pl.read_csv(path, schema_overrides={f: pl.Float32 for f in FEATURES})
    x = {f: frame[f].to_numpy() for f in FEATURES}
    y = frame["label"].to_numpy()
    del frame

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    times: list[float] = []
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    model.fit(
        x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0, callbacks=[EpochTimer()]
    )
    results = {"model.fit, rows in memory (anchor)": [rows / t for t in times]}
    print(f"  anchor: {results['model.fit, rows in memory (anchor)']}", flush=True)

    cache_dir = tempfile.mkdtemp(prefix="tfstream-bench-cache-")
    try:
        for name, cache in (
            ("ts.Trainer streaming the CSV", None),
            ("ts.Trainer streaming the CSV, cache=", os.path.join(cache_dir, "c")),
        ):
            trainer = ts.Trainer(build, optimizer=keras.optimizers.Adam(1e-3), loss=loss)
            history = trainer.fit(
                ts.csv(path, label="label"), batch_size=BATCH, epochs=epochs, verbose=0, cache=cache
            )
            results[name] = history.history["rows_per_s"]
            print(
                f"  {name}: {results[name]} (input wait {history.history['input_wait']})",
                flush=True,
            )
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    anchor = results["model.fit, rows in memory (anchor)"]
    print(f"\nTraining on {rows:,} CSV rows (28 floats), MLP 28-256-256-1, batch {BATCH}: rows/s")
    header = "".join(f"{'epoch ' + str(e + 1):>14}" for e in range(epochs))
    print(f"{'variant':<44}{header}")
    for name, values in results.items():
        cells = "".join(f"{v:>9,.0f} {v / a:4.2f}x" for v, a in zip(values, anchor, strict=True))
        print(f"{name:<44}{cells}")
    first = results["ts.Trainer streaming the CSV"][0] / anchor[0]
    later = min(
        v / a
        for v, a in zip(
            results["ts.Trainer streaming the CSV, cache="][1:], anchor[1:], strict=True
        )
    )
    print(
        f"first epoch: {first:.2f}x the anchor (target >= 0.8); later epochs with the cache: "
        f"{later:.2f}x (target >= 0.95)"
    )
    doc = {
        "machine": machine(),
        "rows": rows,
        "epochs": epochs,
        "rows_per_s": results,
        "first_epoch_ratio": first,
        "later_epochs_cached_ratio": later,
    }
    with open(out_path("trainer_csv.json"), "w") as f:
        json.dump(doc, f, indent=2)
    print(f"(written to {out_path('trainer_csv.json')})")
    return doc


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    run(args.rows, args.epochs)


if __name__ == "__main__":
    main()
