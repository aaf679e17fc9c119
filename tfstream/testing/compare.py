"""Comparisons the tests rely on: model weights ("k accumulated micro-batches equal one
batch") and the rows a source's dataset yields."""

from __future__ import annotations

import numpy as np

__all__ = ["dataset_columns", "max_weight_diff"]


def max_weight_diff(a, b) -> float:
    """The largest absolute difference between the weights of two Keras models."""
    pairs = zip(a.get_weights(), b.get_weights(), strict=True)
    return max((float(np.max(np.abs(u - v))) for u, v in pairs if u.size), default=0.0)


def dataset_columns(source, batch_size: int, **kwargs) -> dict[str, np.ndarray]:
    """All rows of one pass of ``source.dataset(batch_size, **kwargs)``, as numpy columns; the
    label, when the source has one, under ``"__label__"``."""
    parts: dict[str, list] = {}
    for batch in source.dataset(batch_size, **kwargs):
        features, label = batch if isinstance(batch, tuple) else (batch, None)
        if label is not None:
            parts.setdefault("__label__", []).append(label.numpy())
        for k, v in features.items():
            parts.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}
