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
    ShardWriter,
    Source,
    convert,
    open_source,
)
from tfstream.sources.csv import csv
from tfstream.sources.pandas import from_pandas
from tfstream.sources.parquet import parquet
from tfstream.sources.tfrecord import tfrecord
from tfstream.stats import Head, Reservoir, Stats, StatsOptions, compute_stats

__version__ = "0.1.0"

__all__ = [
    "Column",
    "DataError",
    "Head",
    "RejectedRow",
    "Reservoir",
    "RowReport",
    "SchemaDriftError",
    "SchemaError",
    "ShardWriter",
    "Source",
    "Stats",
    "StatsOptions",
    "__version__",
    "compute_stats",
    "convert",
    "csv",
    "from_pandas",
    "open_source",
    "parquet",
    "tfrecord",
]
