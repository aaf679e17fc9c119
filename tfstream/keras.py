"""``ts.keras``: tfstream inside Keras' own ``model.fit``.

``ts.keras.accumulate(model, steps)`` — exact gradient accumulation in ``model.fit``.
"""

from tfstream.train.keras import accumulate

__all__ = ["accumulate"]
