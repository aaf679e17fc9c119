"""Checks of the arguments of a :class:`~tfstream.train.trainer.Trainer` and of its ``fit``:
positive counts, and on a resume, the arguments the checkpoint was saved with (the batch size,
shuffle, seed and epoch length that decide which windows its position counts).

Each raises a ``ValueError`` that says what was expected, what was received and how to fix it.
"""

from __future__ import annotations

from tfstream.train.checkpoint import LoopState

__all__ = ["_check_positive", "_check_same_run"]


def _check_same_run(
    state: LoopState, path, data, batch_size, shuffle, seed, steps_per_epoch
) -> None:
    """A resume must read the windows the checkpoint counted: same batch size, order and
    epoch length."""
    from tfstream.sources.base import Source

    saved_batch = state.batch_size or None
    if saved_batch != batch_size:
        raise ValueError(
            f"Checkpoint {path} was saved by a fit with batch_size={saved_batch}; resuming it "
            f"needs the same batch_size. Received: batch_size={batch_size}. Use a new "
            "checkpoint_dir to start another training."
        )
    shuffled = bool(shuffle) and isinstance(data, Source)
    if shuffled != (state.seed >= 0):
        raise ValueError(
            f"Checkpoint {path} was saved by a fit with shuffle={not shuffled}; resuming it "
            f"needs the same shuffle. Received: shuffle={shuffle}."
        )
    if seed is not None and shuffled and seed != state.seed:
        raise ValueError(
            f"Checkpoint {path} was saved by a fit with seed={state.seed}; resuming it needs "
            f"the same seed (or seed=None). Received: seed={seed}."
        )
    saved_steps = state.steps_per_epoch or None  # -1: a checkpoint from before it was saved
    if state.steps_per_epoch >= 0 and saved_steps != steps_per_epoch:
        raise ValueError(
            f"Checkpoint {path} was saved by a fit with steps_per_epoch={saved_steps}; resuming "
            "it needs the same steps_per_epoch (it decides where each epoch ends, so what the "
            f"saved position counts). Received: steps_per_epoch={steps_per_epoch}. Use a new "
            "checkpoint_dir to start another training."
        )


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
