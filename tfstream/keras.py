"""``ts.keras``: tfstream inside Keras' own ``model.fit``.

``ts.keras.accumulate(model, steps)`` — exact gradient accumulation in ``model.fit``.
``ts.keras.ResumableBackup(directory)`` — crash-proof ``model.fit`` with exact mid-epoch resume.
"""

from tfstream.train.backup import ResumableBackup
from tfstream.train.keras import accumulate

__all__ = ["ResumableBackup", "accumulate"]
