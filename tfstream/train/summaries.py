"""TensorBoard summaries of the :class:`~tfstream.train.trainer.Trainer` (``log_dir=``): the
scalars of its logs (loss, metrics, rows/s, input wait) at the optimizer's step count.

Writing them needs the ``tensorboard`` package (``pip install 'tfstream[tensorboard]'``).
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["_summary_writer", "_write_summaries"]


def _summary_writer(log_dir: str):
    try:
        import tensorboard  # noqa: F401 - tf.summary needs it to write scalars
    except ImportError:
        raise ImportError(
            "`log_dir` writes TensorBoard summaries, which needs the tensorboard package: "
            "pip install 'tfstream[tensorboard]'"
        ) from None
    return tf.summary.create_file_writer(log_dir)


def _write_summaries(writer, logs, step, prefix: str) -> None:
    # `step` is the optimizer's iteration count: a MirroredVariable under MirroredStrategy,
    # which int() does not take; its value does.
    with writer.as_default(step=int(tf.convert_to_tensor(step).numpy())):
        for key, value in logs.items():
            try:
                tf.summary.scalar(prefix + key, float(value))
            except (TypeError, ValueError):
                continue
    writer.flush()
