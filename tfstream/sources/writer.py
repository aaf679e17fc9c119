"""ShardWriter: write any stream of chunks as TFRecord or Parquet shards of bounded size.

Each shard is written under a hidden temporary name in the output directory
(``.part-00003.tfrecord.tmp-<pid>``), flushed, fsync'ed and renamed to its final name only when
it is complete. A crash or an exception therefore never leaves a partial file under a final
name: the ``with`` block deletes the shard it was writing and keeps the completed ones.

TFRecord shards hold one ``tf.train.Example`` per row, with one scalar feature per column
(``float_list`` for float32/float64 — stored as float32, which is all ``float_list`` holds —,
``int64_list`` for int64, ``bytes_list`` of UTF-8 for strings). The Examples are serialized
column-wise by numpy rather than built as protos row by row: the protobuf wire format of a
scalar feature is a fixed prefix (key, tags, lengths) plus the value, so a whole chunk is
encoded with a few array operations and the bytes are identical to
``tf.train.Example.SerializeToString()`` up to the order of the features.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from tfstream.sources.base import Chunk
from tfstream.sources.schema import Column, normalize_schema

__all__ = ["ShardWriter", "convert", "FORMATS"]

#: Output formats and the suffix of their shards.
FORMATS = {"tfrecord": ".tfrecord", "parquet": ".parquet"}

_MiB = 1 << 20
#: Rows encoded at once: bounds the TFRecord encoder's temporary arrays (a few MB).
_ENCODE_ROWS = 8192
#: Framing TFRecord adds to each record: length (8), CRC of length (4), CRC of data (4).
_TFRECORD_OVERHEAD = 16


class ShardWriter:
    """Writes chunks (``{column: np.ndarray}``) into TFRecord or Parquet shards, atomically.

    Use it as a context manager: leaving the ``with`` block finishes the last shard; an
    exception inside it deletes the unfinished shard (completed shards stay) and propagates.

    Args:
        directory: output directory, created when missing.
        format: ``"tfrecord"`` or ``"parquet"``.
        schema: ``{column: Column}`` (e.g. ``source.schema``) or ``{column: dtype}`` with dtypes
            ``"float32"``, ``"float64"``, ``"int64"``, ``"string"``. Every chunk must hold
            these columns.
        max_rows_per_shard: at most this many rows per shard (``None``: no row bound).
        max_bytes_per_shard: at most about this many bytes per shard (``None``: no byte bound).
            TFRecord counts the exact bytes of the records before compression (a GZIP shard
            is smaller); Parquet counts the rows' uncompressed size (``itemsize`` per number,
            UTF-8 bytes + 4 per string) plus a reserve for the footer, which the encoded file
            (plain-encoded numbers, dictionary-encoded strings) does not exceed in practice.
            A shard always takes at least one row.
        prefix: shards are named ``{prefix}-00000.tfrecord``, ``{prefix}-00001.tfrecord``, ...
        compression: TFRecord: ``None`` or ``"GZIP"`` (shards then end with ``.tfrecord.gz``).
            Parquet: a codec name (``"snappy"``, the default, ``"zstd"``, ``"gzip"``,
            ``"none"``, ...).
        overwrite: if ``directory`` already holds shards named ``{prefix}-*`` with this suffix,
            delete them first; without it, such shards raise ``FileExistsError`` (mixing
            shards of two runs would silently mix two datasets).
        row_group_rows: Parquet only: rows per row group (readers stream by row group, so
            this bounds their memory, and the writer buffers at most this many rows).

    Example:

    >>> import numpy as np, tempfile
    >>> from tfstream.sources.writer import ShardWriter
    >>> out = tempfile.mkdtemp()
    >>> with ShardWriter(out, schema={"x": "float32", "y": "int64"},
    ...                  max_rows_per_shard=2) as writer:
    ...     writer.write({"x": np.arange(3, dtype=np.float32), "y": np.arange(3)})
    >>> [os.path.basename(p) for p in writer.shards]
    ['part-00000.tfrecord', 'part-00001.tfrecord']
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        format: str = "tfrecord",
        schema: Mapping[str, str | Column],
        max_rows_per_shard: int | None = None,
        max_bytes_per_shard: int | None = 128 * _MiB,
        prefix: str = "part",
        compression: str | None = None,
        overwrite: bool = False,
        row_group_rows: int = 65_536,
    ):
        if format not in FORMATS:
            raise ValueError(
                f"`format` must be one of {sorted(FORMATS)}. Received: format={format!r}"
            )
        self._schema = normalize_schema(schema)
        if not self._schema:
            raise ValueError("`schema` must name at least one column. Received: schema={}")
        _check_bound("max_rows_per_shard", max_rows_per_shard)
        _check_bound("max_bytes_per_shard", max_bytes_per_shard)
        _check_bound("row_group_rows", row_group_rows, allow_none=False)
        if not isinstance(prefix, str) or not prefix or os.sep in prefix or prefix[0] == ".":
            raise ValueError(
                "`prefix` must be a non-empty file name prefix without a path separator "
                f"that does not start with '.'. Received: prefix={prefix!r}"
            )
        self._format = format
        self._directory = os.fspath(directory)
        self._max_rows = max_rows_per_shard
        self._max_bytes = max_bytes_per_shard
        self._prefix = prefix
        self._row_group_rows = row_group_rows
        if format == "tfrecord":
            self._compression = _tfrecord_compression(compression)
            self._suffix = ".tfrecord" + (".gz" if self._compression else "")
            self._encoder = _ExampleEncoder(self._schema)
        else:
            self._compression = "snappy" if compression is None else str(compression).lower()
            self._suffix = ".parquet"
            self._arrow_schema = _arrow_schema(self._schema)
        # Bytes of a shard that are not row data: Parquet's footer and page headers.
        self._overhead = 0 if format == "tfrecord" else 4096 + 128 * len(self._schema)
        os.makedirs(self._directory, exist_ok=True)
        self._clear_old_shards(overwrite)
        self._shards: list[str] = []
        self._shard_rows: list[int] = []
        self._open: _Shard | None = None
        self._closed = False

    # -- public ------------------------------------------------------------------------------

    @property
    def shards(self) -> list[str]:
        """Final paths of the completed shards, in order."""
        return list(self._shards)

    @property
    def shard_rows(self) -> list[int]:
        """Rows in each completed shard."""
        return list(self._shard_rows)

    @property
    def rows_written(self) -> int:
        """Rows in completed shards and in the shard being written."""
        return sum(self._shard_rows) + (self._open.rows if self._open else 0)

    @property
    def bytes_written(self) -> int:
        """Bytes on disk of the completed shards."""
        return sum(os.path.getsize(p) for p in self._shards)

    def write(self, chunk: Chunk) -> None:
        """Appends a chunk: ``{column: 1-D array}``, every schema column (others are ignored),
        equal lengths.

        Numbers are cast to the column's dtype (``int64`` columns refuse floats); strings may
        be ``str`` or UTF-8 ``bytes``.
        """
        if self._closed:
            raise ValueError("This ShardWriter is closed; create a new one to write more rows.")
        chunk, n = self._check_chunk(chunk)
        for start in range(0, n, _ENCODE_ROWS):
            part = {k: v[start : start + _ENCODE_ROWS] for k, v in chunk.items()}
            self._write_piece(part)

    def finish_shard(self) -> None:
        """Completes the current shard now (if it holds rows); the next row starts a new one."""
        if self._open is not None:
            shard, self._open = self._open, None
            try:
                shard.commit()
            except BaseException:
                shard.discard()
                raise
            self._shards.append(shard.path)
            self._shard_rows.append(shard.rows)

    def close(self) -> None:
        """Completes the last shard. Idempotent."""
        if not self._closed:
            self.finish_shard()
            self._closed = True

    def abort(self) -> None:
        """Deletes the shard being written; completed shards stay."""
        if self._open is not None:
            shard, self._open = self._open, None
            shard.discard()
        self._closed = True

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    # -- internals ---------------------------------------------------------------------------

    def _write_piece(self, chunk: Chunk) -> None:
        if self._format == "tfrecord":
            records, sizes = self._encoder.encode(chunk)
            sizes = sizes + _TFRECORD_OVERHEAD
        else:
            records, sizes = _arrow_table(chunk, self._arrow_schema), _row_bytes(chunk)
        n, start = len(sizes), 0
        ends = np.cumsum(sizes)
        while start < n:
            rows = self._open.rows if self._open else 0
            used = self._overhead + (self._open.bytes if self._open else 0)
            take = n - start
            if self._max_rows is not None:
                take = min(take, self._max_rows - rows)
            if self._max_bytes is not None:
                base = ends[start - 1] if start else 0
                fits = int(np.searchsorted(ends, base + self._max_bytes - used, side="right"))
                take = min(take, fits - start)
            if take <= 0:
                if rows == 0:  # one row larger than the byte bound: it gets its own shard
                    take = 1
                else:
                    self.finish_shard()
                    continue
            if self._open is None:
                self._open = self._new_shard()
            stop = start + take
            self._open.write(
                records, start, stop, int(ends[stop - 1] - (ends[start - 1] if start else 0))
            )
            start = stop
            if self._max_rows is not None and self._open.rows >= self._max_rows:
                self.finish_shard()

    def _new_shard(self) -> _Shard:
        index = len(self._shards)
        name = f"{self._prefix}-{index:05d}{self._suffix}"
        path = os.path.join(self._directory, name)
        temp = os.path.join(self._directory, f".{name}.tmp-{os.getpid()}")
        if self._format == "tfrecord":
            return _TFRecordShard(path, temp, self._compression)
        return _ParquetShard(
            path, temp, self._arrow_schema, self._compression, self._row_group_rows
        )

    def _check_chunk(self, chunk) -> tuple[Chunk, int]:
        if not isinstance(chunk, Mapping):
            raise TypeError(
                f"`chunk` must be a dict of column arrays. Received: {type(chunk).__name__}"
            )
        missing = [name for name in self._schema if name not in chunk]
        if missing:
            raise ValueError(
                f"The chunk lacks columns of the schema: {missing}. Received columns: {list(chunk)}"
            )
        out, lengths = {}, set()
        for name, column in self._schema.items():
            values = np.asarray(chunk[name])
            if values.ndim != 1:
                raise ValueError(
                    f"Column {name!r} must be 1-D. Received an array of shape {values.shape}"
                )
            if column.dtype != "string":
                if not np.can_cast(values.dtype, column.dtype, casting="same_kind"):
                    raise TypeError(
                        f"Column {name!r} is {column.dtype} in the schema, but the chunk holds "
                        f"{values.dtype} values. Declare it as float in the schema, or cast it."
                    )
                values = values.astype(column.dtype, copy=False)
            out[name] = values
            lengths.add(len(values))
        if len(lengths) > 1:
            raise ValueError(
                "The columns of a chunk must have equal lengths. Received lengths "
                f"{ {name: len(v) for name, v in out.items()} }"
            )
        return out, lengths.pop()

    def _clear_old_shards(self, overwrite: bool) -> None:
        """Shards of an earlier run (compressed or not) would mix with this run's."""
        suffixes = (".tfrecord", ".tfrecord.gz") if self._format == "tfrecord" else (".parquet",)
        old = sorted(
            name
            for name in os.listdir(self._directory)
            if name.startswith(self._prefix + "-") and name.endswith(suffixes)
        )
        if old and not overwrite:
            raise FileExistsError(
                f"{self._directory} already holds {len(old)} {self._format} shard(s) named "
                f"{self._prefix}-* (e.g. {old[0]}). Pass overwrite=True to replace them, or "
                "choose another directory or prefix."
            )
        for name in old:
            os.remove(os.path.join(self._directory, name))


def convert(
    source,
    directory: str | os.PathLike,
    *,
    format: str = "tfrecord",
    max_rows_per_shard: int | None = None,
    max_bytes_per_shard: int | None = 128 * _MiB,
    prefix: str = "part",
    compression: str | None = None,
    overwrite: bool = False,
    progress=None,
) -> list[str]:
    """Streams a source into shards (see :class:`ShardWriter`); memory stays bounded by the
    source's chunk and the writer's buffers, whatever the size of the data.

    Args:
        source: any :class:`tfstream.sources.Source` (its ``schema``, label included, is kept).
        directory, format, max_rows_per_shard, max_bytes_per_shard, prefix, compression,
            overwrite: as in :class:`ShardWriter`.
        progress: optional callable, called with the number of rows of each chunk written
            (e.g. ``tqdm(...).update``).

    Returns:
        The paths of the shards, in order. The source's ``report()`` tells which rows were
        rejected on the way.

    Example:

    >>> import tfstream as ts                                          # doctest: +SKIP
    >>> convert(ts.csv("data/*.csv"), "out/", format="parquet")         # doctest: +SKIP
    ['out/part-00000.parquet', ...]
    """
    with ShardWriter(
        directory,
        format=format,
        schema=source.schema,
        max_rows_per_shard=max_rows_per_shard,
        max_bytes_per_shard=max_bytes_per_shard,
        prefix=prefix,
        compression=compression,
        overwrite=overwrite,
    ) as writer:
        for chunk in source.iter_chunks():
            writer.write(chunk)
            if progress is not None:
                progress(len(next(iter(chunk.values()))))
    return writer.shards


# -- shards ------------------------------------------------------------------------------------


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
        _fsync_directory(os.path.dirname(self.path))

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


def _fsync_directory(directory: str) -> None:
    """Makes a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


# -- TFRecord encoding ---------------------------------------------------------------------------
#
# Wire format (protobuf): Example{1: Features{1: repeated MapEntry{1: key, 2: Feature}}};
# Feature{1: BytesList | 2: FloatList | 3: Int64List}, each list {1: values}, numbers packed. A
# field of wire type 2 is ``tag, varint(len(body)), body`` with ``tag = field_number << 3 | 2``.
#
# A chunk's records are laid out right-aligned in an ``(n, longest)`` byte matrix: the float
# features, whose bytes have a fixed size, come last in every record, so they fill the same
# columns of every row and are copied as one 2-D block; only the few variable-size bytes
# (lengths, int64 varints, strings) are gathered one by one.


class _Bytes(NamedTuple):
    """``n`` byte strings: row ``i`` is ``data[starts[i] : starts[i] + lengths[i]]``."""

    data: np.ndarray  # uint8
    starts: np.ndarray  # int64
    lengths: np.ndarray  # int64


class _ExampleEncoder:
    """Serializes chunks of a fixed schema into ``tf.train.Example`` records, column-wise."""

    def __init__(self, schema: dict[str, Column]):
        self._floats: list[tuple[str, int]] = []  # (name, offset of its value in the block)
        self._others: list[tuple[str, str, bytes]] = []  # (name, dtype, key field + value tag)
        template = b""  # the float block: every float entry with a zero value
        for name, column in schema.items():
            key = _field(1, name.encode("utf-8"))
            if column.dtype in ("float32", "float64"):
                float_list = b"\x0a\x04"  # field 1 (packed), 4 bytes
                feature = b"\x12" + _varint_bytes(len(float_list) + 4) + float_list
                entry = key + b"\x12" + _varint_bytes(len(feature) + 4) + feature
                prefix = b"\x0a" + _varint_bytes(len(entry) + 4) + entry
                self._floats.append((name, len(template) + len(prefix)))
                template += prefix + bytes(4)
            else:
                self._others.append((name, column.dtype, key + b"\x12"))
        self._template = np.frombuffer(template, np.uint8)

    def encode(self, chunk: Chunk) -> tuple[tuple[bytes, list[int], list[int]], np.ndarray]:
        """Returns ``((buffer, starts, ends), sizes)``: record ``i`` is
        ``buffer[starts[i]:ends[i]]``, ``sizes[i]`` bytes long."""
        n = len(next(iter(chunk.values())))
        width = len(self._template)
        parts: list[_Bytes] = []
        for name, dtype, key in self._others:
            if dtype == "int64":
                payload, list_tag, feature_tag = _varints(chunk[name].view(np.uint64)), 1, 3
            else:
                payload, list_tag, feature_tag = _utf8(chunk[name]), 1, 1
            entry, length = [payload], payload.lengths
            for prefix in (_tag(list_tag), _tag(feature_tag)):
                entry, length = _wrap(prefix, entry, length)
            entry, length = _wrap(key, entry, length)
            entry, length = _wrap(_tag(1), entry, length)
            parts += entry
        body = width + sum((p.lengths for p in parts), np.zeros(n, np.int64))
        head, sizes = _wrap(_tag(1), parts, body)
        variable = _concat(head)
        longest = int(sizes.max()) if n else 0
        matrix = np.empty((n, longest), np.uint8)
        if width:  # the float entries: the template, then each value into its 4 bytes
            matrix[:, longest - width :] = self._template
            fields = [f"c{j}" for j in range(len(self._floats))]
            record = np.dtype(
                {
                    "names": fields,
                    "formats": ["<f4"] * len(fields),
                    "offsets": [longest - width + offset for _, offset in self._floats],
                    "itemsize": longest,
                }
            )
            rows = matrix.view(record).reshape(n)
            for field, (name, _) in zip(fields, self._floats, strict=True):
                rows[field] = chunk[name]  # float64 values are rounded to float32 here
        row_starts = np.arange(n, dtype=np.int64) * longest + (longest - sizes)
        block = _as_block(variable, n)
        if block is not None:  # every record has the same size
            matrix[:, : longest - width] = block
        else:
            index = np.repeat(row_starts - variable.starts, variable.lengths)
            index += np.arange(len(index), dtype=np.int64)
            matrix.reshape(-1)[index] = variable.data
        ends = np.arange(1, n + 1, dtype=np.int64) * longest
        return (matrix.tobytes(), row_starts.tolist(), ends.tolist()), sizes


def _wrap(prefix: bytes, parts: list[_Bytes], length: np.ndarray):
    """``prefix, varint(length), *parts``: a length-delimited field around ``parts`` (whose
    rows are ``length`` bytes long) when ``prefix`` is its tag; a map entry's value when
    ``prefix`` is the key field followed by the value's tag. Returns the parts and their
    lengths."""
    n = len(length)
    size = _varints(length.astype(np.uint64))
    return [_const(prefix, n), size, *parts], length + len(prefix) + size.lengths


def _tag(field_number: int) -> bytes:
    return _varint_bytes(field_number << 3 | 2)


def _field(number: int, body: bytes) -> bytes:
    return _tag(number) + _varint_bytes(len(body)) + body


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _varints(values: np.ndarray) -> _Bytes:
    """Protobuf varints of uint64 ``values`` (an int64 is encoded as its two's complement)."""
    values = np.ascontiguousarray(values, dtype=np.uint64)
    n = len(values)
    if not n or values.max() < 0x80:
        return _fixed(values.astype(np.uint8).reshape(n, 1))
    lengths = np.ones(n, np.int64)
    rest = values >> np.uint64(7)
    while rest.any():
        lengths += rest > 0
        rest >>= np.uint64(7)
    width = int(lengths.max())
    shifts = np.arange(width, dtype=np.uint64) * np.uint64(7)
    groups = ((values[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    groups |= (np.arange(width) < lengths[:, None] - 1).astype(np.uint8) << 7
    data = groups[np.arange(width) < lengths[:, None]]
    return _Bytes(data, _starts(lengths), lengths)


def _utf8(values: np.ndarray) -> _Bytes:
    """UTF-8 bytes of an array of ``str`` (or ``bytes``); ``None`` becomes empty."""
    import pyarrow as pa

    if values.dtype.kind in "SU":
        values = values.astype(object)
    array = pa.array(values, type=pa.large_binary())
    offsets = np.frombuffer(array.buffers()[1], np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    data = array.buffers()[2]
    data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    return _Bytes(data, offsets[:-1].copy(), np.diff(offsets))


def _const(value: bytes, n: int) -> _Bytes:
    return _Bytes(
        np.frombuffer(value, np.uint8), np.zeros(n, np.int64), np.full(n, len(value), np.int64)
    )


def _fixed(block: np.ndarray) -> _Bytes:
    n, width = block.shape
    return _Bytes(block.reshape(-1), np.arange(n, dtype=np.int64) * width, np.full(n, width))


def _starts(lengths: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(lengths), np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts


def _concat(parts: list[_Bytes]) -> _Bytes:
    """Row-wise concatenation: row ``i`` of the result is row ``i`` of each part, in order.
    Runs of parts with one size per row are first joined as 2-D blocks; the rest is one
    gather."""
    n = len(parts[0].lengths)
    merged: list[_Bytes] = []
    run: list[np.ndarray] = []
    for part in parts:
        block = _as_block(part, n)
        if block is not None:
            run.append(block)
            continue
        if run:
            merged.append(_fixed(np.hstack(run)))
            run = []
        merged.append(part)
    if run:
        merged.append(_fixed(np.hstack(run)))
    if len(merged) == 1:
        return merged[0]
    lengths = np.stack([p.lengths for p in merged], axis=1)  # (n, parts)
    data = np.concatenate([p.data for p in merged])
    bases = np.cumsum([0] + [len(p.data) for p in merged[:-1]])
    sources = np.stack([p.starts + b for p, b in zip(merged, bases, strict=True)], axis=1)
    seg_lengths = lengths.reshape(-1)
    index = np.repeat(sources.reshape(-1) - _starts(seg_lengths), seg_lengths)
    index += np.arange(len(index), dtype=np.int64)
    row_lengths = lengths.sum(axis=1)
    return _Bytes(data[index], _starts(row_lengths), row_lengths)


def _as_block(part: _Bytes, n: int) -> np.ndarray | None:
    """``part`` as an ``(n, width)`` array when every row has the same length and the rows are
    a constant or laid out back to back; else None."""
    if not n or not (part.lengths == part.lengths[0]).all():
        return None
    width = int(part.lengths[0])
    if len(part.data) == width and not part.starts.any():
        return np.broadcast_to(part.data, (n, width))
    if len(part.data) == n * width and part.starts[0] == 0:
        if np.array_equal(part.starts, np.arange(n, dtype=np.int64) * width):
            return part.data.reshape(n, width)
    return None


def _tfrecord_compression(compression) -> str:
    value = "" if compression in (None, "", "none", "NONE") else str(compression).upper()
    if value not in ("", "GZIP"):
        raise ValueError(
            "`compression` for TFRecord shards must be None or 'GZIP'. "
            f"Received: compression={compression!r}"
        )
    return value


def _check_bound(name: str, value, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer{' or None' if allow_none else ''}. "
            f"Received: {name}={value!r}"
        )
