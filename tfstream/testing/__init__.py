"""Helpers for tfstream's tests, benchmarks and demo: seeded generators of tabular data, and a
multi-replica strategy on one CPU (imported lazily: it needs TensorFlow)."""

from tfstream.testing.compare import max_weight_diff
from tfstream.testing.data import (
    BAD_ROWS,
    CATEGORIES,
    make_frame,
    write_csv_shards,
    write_parquet,
    write_tfrecord,
)
from tfstream.testing.distribute import mirrored_cpu_strategy, split_cpu

__all__ = [
    "BAD_ROWS",
    "CATEGORIES",
    "make_frame",
    "max_weight_diff",
    "mirrored_cpu_strategy",
    "split_cpu",
    "write_csv_shards",
    "write_parquet",
    "write_tfrecord",
]
