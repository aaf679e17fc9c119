"""What the :class:`~tfstream.train.trainer.Trainer` reads: the windows of each epoch of a
``fit`` (each window one optimizer step's global batch) and the batches of an evaluation.

A tfstream source is batched by ``batch_size`` and, with ``shuffle``, read in a fresh order each
epoch: the epoch's seed is drawn from the fit's seed and the epoch (:func:`_epoch_seed`), so the
windows of an epoch can be made again on a resume. A ``tf.data.Dataset`` is used as it is.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tfstream.train.checks import _check_positive

__all__ = ["_Windows", "_as_dataset", "_epoch_seed", "_make_windows"]


class _Windows:
    """``epoch -> dataset`` of that epoch's windows, and the shuffle seed (-1: none)."""

    def __init__(self, make: Callable[[int], object], seed: int | None):
        self._make = make
        self.seed = -1 if seed is None else int(seed)

    def __call__(self, epoch: int):
        return self._make(epoch)


def _make_windows(
    data, batch_size, shuffle, seed, cache, steps_per_epoch, draw_seed: Callable[[], int]
) -> _Windows:
    """``epoch -> dataset`` of the windows (optimizer steps' batches) of that epoch;
    ``draw_seed()`` is the shuffle seed of a source shuffled with ``seed=None``."""
    from tfstream.sources.base import Source

    if cache is not None and not isinstance(data, Source):
        raise ValueError("`cache` applies to sources; cache a tf.data.Dataset yourself.")
    if cache is not None and steps_per_epoch is not None:
        raise ValueError("`cache` needs whole epochs: it cannot be used with steps_per_epoch.")
    if isinstance(data, Source):
        if batch_size is None:
            raise ValueError("`batch_size` (the global batch of one optimizer step) is "
                             "required to train on a source.")  # fmt: skip
        _check_positive("batch_size", batch_size)
        if shuffle and seed is None:
            seed = draw_seed()

        def windows(epoch):
            epoch_seed = _epoch_seed(seed, epoch) if shuffle else None
            return data.dataset(batch_size, shuffle=shuffle, seed=epoch_seed, epochs=1)

        if cache is None:
            return _Windows(windows, seed if shuffle else None)
        cached = windows(0).cache(str(cache))

        def cached_windows(epoch):
            # Batches read back from the cache are prefetched like parsed ones.
            if epoch == 0 or not shuffle:
                return cached.prefetch(tf.data.AUTOTUNE)
            shuffled = cached.shuffle(4096, seed=_epoch_seed(seed, epoch))
            return shuffled.prefetch(tf.data.AUTOTUNE)

        return _Windows(cached_windows, seed if shuffle else None)
    if isinstance(data, tf.data.Dataset):
        if batch_size is not None or shuffle or seed is not None:
            raise ValueError(
                "`batch_size`, `shuffle` and `seed` apply to sources; a tf.data.Dataset is "
                "used as it is (each element is one optimizer step's batch)."
            )
        return _Windows(lambda epoch: data, None)
    raise TypeError(
        f"`data` must be a tfstream source or a tf.data.Dataset. Received: {type(data).__name__}"
    )


def _as_dataset(data, batch_size):
    """A source batched by ``batch_size`` for evaluation, or a dataset as it is."""
    from tfstream.sources.base import Source

    if isinstance(data, Source):
        if batch_size is None:
            raise ValueError("`batch_size` is required to evaluate a source.")
        return data.dataset(batch_size)
    if not isinstance(data, tf.data.Dataset):
        raise TypeError(
            f"`validation` must be a source or a tf.data.Dataset. Received: {type(data).__name__}"
        )
    return data


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
