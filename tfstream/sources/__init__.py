"""Sources: stream tabular records from files, DataFrames and databases into ``tf.data``."""

from tfstream.sources.base import Source
from tfstream.sources.csv import CsvSource, csv
from tfstream.sources.report import DataError, RejectedRow, RowReport
from tfstream.sources.schema import Column, SchemaDriftError, SchemaError

__all__ = [
    "Column",
    "CsvSource",
    "DataError",
    "RejectedRow",
    "RowReport",
    "SchemaDriftError",
    "SchemaError",
    "Source",
    "csv",
]
