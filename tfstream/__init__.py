"""tfstream: train Keras/TensorFlow models on data larger than memory.

>>> import tfstream as ts
>>> src = ts.csv("data/*.csv", label="label")   # doctest: +SKIP
>>> ds = src.dataset(1024)                      # doctest: +SKIP
"""

from tfstream.sources import (
    Column,
    DataError,
    RejectedRow,
    RowReport,
    SchemaDriftError,
    SchemaError,
    Source,
    csv,
)

__version__ = "0.1.0"

__all__ = [
    "Column",
    "DataError",
    "RejectedRow",
    "RowReport",
    "SchemaDriftError",
    "SchemaError",
    "Source",
    "__version__",
    "csv",
]
