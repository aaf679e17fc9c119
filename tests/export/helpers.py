"""Tiny data, statistics, preprocessors and models shared by the export tests."""

from __future__ import annotations

import numpy as np

FEATURES = 3
STRINGS = 2


def tiny_frame(rows: int = 240, seed: int = 0):
    """``make_frame`` with NaNs in f0/f1 and empty strings in s0 (missing values)."""
    from tfstream.testing import make_frame

    frame = make_frame(rows, features=FEATURES, strings=STRINGS, seed=seed)
    rng = np.random.default_rng(seed + 1)
    frame.loc[rng.random(rows) < 0.1, "f0"] = np.nan
    frame.loc[rng.random(rows) < 0.1, "f1"] = np.nan
    frame.loc[rng.random(rows) < 0.1, "s0"] = ""
    return frame


def tiny_stats(frame):
    import tfstream as ts

    return ts.compute_stats(ts.from_pandas(frame, label="label"), progress=False)


def request_columns(rows: int, seed: int) -> dict[str, np.ndarray]:
    """Raw feature columns with NaNs, empty (missing) strings and unseen categories."""
    from tfstream.testing import CATEGORIES

    rng = np.random.default_rng(seed)
    columns = {f"f{j}": rng.normal(size=rows).astype(np.float32) for j in range(FEATURES)}
    columns["f0"][::3] = np.nan
    for j in range(STRINGS):
        pool = [*CATEGORIES[j], "", "never-seen"]
        columns[f"s{j}"] = np.array([pool[k] for k in rng.integers(0, len(pool), rows)], object)
    columns["s0"][1] = ""
    columns["s1"][2] = "unseen-category"
    return columns


def head(width: int, *, units: int = 1, activation: str | None = "sigmoid", seed: int = 0):
    """A small dense model on the preprocessor's output, with seeded non-trivial weights."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((width,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(units, activation=activation),
        ]
    )


def raw_model(prep, *, units: int = 1, activation: str | None = None, seed: int = 0):
    """One Keras model from the raw feature dict (the preprocessor inside) to the output."""
    import keras

    inputs = {n: keras.Input(shape=(), dtype=t.dtype, name=n) for n, t in prep.input.items()}
    body = head(int(prep.output.shape[-1]), units=units, activation=activation, seed=seed)
    return keras.Model(inputs, body(prep(inputs)))


def in_memory(model, columns, preprocessor=None) -> np.ndarray:
    import tensorflow as tf

    features = {
        k: tf.constant(v.astype(str) if v.dtype == object else v) for k, v in columns.items()
    }
    x = preprocessor(features) if preprocessor is not None else features
    return np.asarray(model(x), dtype=np.float32)
