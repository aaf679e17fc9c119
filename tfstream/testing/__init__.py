"""Helpers for tfstream's tests, benchmarks and demo: seeded generators of tabular data, a
multi-replica strategy on one CPU (imported lazily: it needs TensorFlow), ``CanaryLayer``,
which records the example ids a model trains on (imported on first use: it needs Keras), and
``postgres_server``, a throwaway PostgreSQL server (imported on first use)."""

from tfstream.testing.compare import dataset_columns, max_weight_diff
from tfstream.testing.data import (
    BAD_ROWS,
    CATEGORIES,
    make_frame,
    write_csv_shards,
    write_parquet,
    write_tfrecord,
)
from tfstream.testing.distribute import mirrored_cpu_strategy, split_cpu

# CanaryLayer subclasses a Keras layer: importing it imports TensorFlow (~3 s), which
# `import tfstream.testing` does not. Resolved on first use.
_LAZY = {
    "CanaryLayer": "tfstream.testing.canary",
    "read_canary": "tfstream.testing.canary",
    "postgres_server": "tfstream.testing.postgres",
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'tfstream.testing' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "BAD_ROWS",
    "CATEGORIES",
    "CanaryLayer",
    "dataset_columns",
    "make_frame",
    "max_weight_diff",
    "mirrored_cpu_strategy",
    "postgres_server",
    "read_canary",
    "split_cpu",
    "write_csv_shards",
    "write_parquet",
    "write_tfrecord",
]
