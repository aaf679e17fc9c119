"""Helpers for tfstream's tests, benchmarks and demo: seeded generators of tabular data."""

from tfstream.testing.data import (
    BAD_ROWS,
    CATEGORIES,
    make_frame,
    write_csv_shards,
    write_parquet,
    write_tfrecord,
)

__all__ = [
    "BAD_ROWS",
    "CATEGORIES",
    "make_frame",
    "write_csv_shards",
    "write_parquet",
    "write_tfrecord",
]
