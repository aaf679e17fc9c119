"""Comparisons the tests of "k accumulated micro-batches equal one batch" rely on."""

from __future__ import annotations

import numpy as np

__all__ = ["max_weight_diff"]


def max_weight_diff(a, b) -> float:
    """The largest absolute difference between the weights of two Keras models."""
    pairs = zip(a.get_weights(), b.get_weights(), strict=True)
    return max((float(np.max(np.abs(u - v))) for u, v in pairs if u.size), default=0.0)
