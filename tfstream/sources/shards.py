"""One shard file being written by :class:`~tfstream.sources.ShardWriter`: TFRecord records or
Parquet row groups go to a temporary file; ``commit`` fsyncs it and renames it to its final
name (see :mod:`tfstream.sources.atomic`), ``discard`` deletes it. Also the Arrow encoding of
chunks for Parquet shards and the byte size of rows that bounds a shard.
"""

from __future__ import annotations

import os

import numpy as np

from tfstream.sources.atomic import fsync_directory
from tfstream.sources.base import Chunk
from tfstream.sources.example_codec import _utf8
from tfstream.sources.schema import Column

__all__ = []


class _Shard:
    """One shard being written under ``temp``; ``commit`` renames it to ``path``."""

    def __init__(self, path: str, temp: str):
        self.path = path
        self.temp = temp
        self.rows = 0
        self.bytes = 0

    def write(self, records, start: int, stop: int, nbytes: int) -> None:
        self._write(records, start, stop)
        self.rows += stop - start
        self.bytes += nbytes

    def commit(self) -> None:
        self._close(complete=True)
        with open(self.temp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.temp, self.path)
        fsync_directory(os.path.dirname(self.path))

    def discard(self) -> None:
        """Deletes the temporary file; errors while closing it are moot and ignored, so the
        exception that caused the discard is the one that propagates."""
        try:
            self._close(complete=False)
        except Exception:  # noqa: BLE001
            pass
        if os.path.exists(self.temp):
            os.remove(self.temp)

    def _write(self, records, start: int, stop: int) -> None:
        raise NotImplementedError

    def _close(self, *, complete: bool) -> None:
        raise NotImplementedError


class _TFRecordShard(_Shard):
    def __init__(self, path: str, temp: str, compression: str):
        import tensorflow as tf

        super().__init__(path, temp)
        self._writer = tf.io.TFRecordWriter(temp, tf.io.TFRecordOptions(compression))

    def _write(self, records, start, stop):
        buffer, starts, ends = records
        # The pybind method itself: TFRecordWriter.write only forwards to it (~0.2 us a row).
        write = super(type(self._writer), self._writer).write
        for a, b in zip(starts[start:stop], ends[start:stop], strict=True):
            write(buffer[a:b])

    def _close(self, *, complete):
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()


class _ParquetShard(_Shard):
    """Buffers up to ``row_group_rows`` rows and writes them as one row group."""

    def __init__(self, path, temp, arrow_schema, compression, row_group_rows):
        import pyarrow.parquet as pq

        super().__init__(path, temp)
        self._file = open(temp, "wb")
        try:
            # Dictionaries only for strings: on distinct floats a dictionary page costs more
            # than the values (pyarrow falls back to plain encoding only after 1 MiB).
            self._writer = pq.ParquetWriter(
                self._file,
                arrow_schema,
                compression=compression,
                use_dictionary=[f.name for f in arrow_schema if f.type == "string"],
            )
        except Exception:
            self._file.close()
            os.remove(temp)
            raise
        self._group = row_group_rows
        self._pending: list = []
        self._pending_rows = 0

    def _write(self, table, start, stop):
        self._pending.append(table.slice(start, stop - start))
        self._pending_rows += stop - start
        if self._pending_rows >= self._group:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        import pyarrow as pa

        table = pa.concat_tables(self._pending)
        full = table.num_rows if final else table.num_rows - table.num_rows % self._group
        if full:
            self._writer.write_table(table.slice(0, full), row_group_size=self._group)
        rest = table.slice(full)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def _close(self, *, complete):
        if self._writer is None:
            return
        try:
            if self._pending and complete:
                self._flush(final=True)
            self._writer.close()
            self._file.flush()
        finally:
            self._writer = None
            self._file.close()


# -- Parquet encoding ----------------------------------------------------------------------------


def _arrow_schema(schema: dict[str, Column]):
    import pyarrow as pa

    types = {
        "float32": pa.float32(),
        "float64": pa.float64(),
        "int64": pa.int64(),
        "string": pa.string(),
    }
    return pa.schema([pa.field(name, types[col.dtype]) for name, col in schema.items()])


def _arrow_table(chunk: Chunk, arrow_schema):
    import pyarrow as pa

    arrays = [pa.array(chunk[field.name], type=field.type) for field in arrow_schema]
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


def _row_bytes(chunk: Chunk) -> np.ndarray:
    """Uncompressed size of each row: itemsize per number, UTF-8 bytes + 4 per string."""
    n = len(next(iter(chunk.values())))
    sizes = np.zeros(n, np.int64)
    for values in chunk.values():
        if values.dtype.kind in "OUS":
            sizes += _utf8(values).lengths + 4
        else:
            sizes += values.dtype.itemsize
    return sizes
