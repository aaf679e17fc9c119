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
from tfstream.sources.sql import sql
from tfstream.sources.tfrecord import tfrecord
from tfstream.stats import Head, Reservoir, Stats, StatsOptions, compute_stats

__version__ = "0.1.0"

# The training engine imports TensorFlow (~3 s); sources and statistics do not. These names are
# resolved on first use, so `import tfstream` stays light.
_LAZY = {
    "CheckpointOptions": ("tfstream.train.checkpoint", "CheckpointOptions"),
    "ExportOptions": ("tfstream.export.saved_model", "ExportOptions"),
    "export_saved_model": ("tfstream.export.saved_model", "export_saved_model"),
    "Preempted": ("tfstream.train.checkpoint", "Preempted"),
    "Trainer": ("tfstream.train.trainer", "Trainer"),
    "TrainerOptions": ("tfstream.train.trainer", "TrainerOptions"),
    "export": ("tfstream.export", None),
    "keras": ("tfstream.keras", None),
    "train": ("tfstream.train", None),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'tfstream' has no attribute {name!r}")
    import importlib

    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


__all__ = [
    "CheckpointOptions",
    "Column",
    "DataError",
    "ExportOptions",
    "Head",
    "RejectedRow",
    "Reservoir",
    "Preempted",
    "RowReport",
    "SchemaDriftError",
    "SchemaError",
    "ShardWriter",
    "Source",
    "Stats",
    "StatsOptions",
    "Trainer",
    "TrainerOptions",
    "__version__",
    "compute_stats",
    "convert",
    "csv",
    "export",
    "export_saved_model",
    "from_pandas",
    "keras",
    "open_source",
    "parquet",
    "sql",
    "tfrecord",
    "train",
]
