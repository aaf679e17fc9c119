"""Sources: stream tabular records from files and DataFrames into ``tf.data``.

The factory functions (``csv``, ``tfrecord``, ``parquet``, ``from_pandas``, ``sql``) are
exported by ``tfstream`` itself; here the names ``csv``, ``tfrecord``, ``parquet``, ``pandas``
and ``sql`` stay the submodules of the same names.
"""

from tfstream.sources.auto import open_source
from tfstream.sources.base import Source
from tfstream.sources.csv import CsvSource
from tfstream.sources.pandas import PandasSource
from tfstream.sources.parquet import ParquetSource
from tfstream.sources.report import DataError, RejectedRow, RowReport
from tfstream.sources.schema import Column, SchemaDriftError, SchemaError
from tfstream.sources.sql import (
    SqlConnectionError,
    SqlOptions,
    SqlQueryError,
    SqlSource,
    UnorderedQueryWarning,
)
from tfstream.sources.tfrecord import TFRecordSource
from tfstream.sources.writer import ShardWriter, convert

__all__ = [
    "Column",
    "CsvSource",
    "DataError",
    "PandasSource",
    "ParquetSource",
    "RejectedRow",
    "RowReport",
    "SchemaDriftError",
    "SchemaError",
    "SqlConnectionError",
    "SqlOptions",
    "SqlQueryError",
    "SqlSource",
    "ShardWriter",
    "Source",
    "TFRecordSource",
    "UnorderedQueryWarning",
    "convert",
    "open_source",
]
