"""ShardWriter: write any stream of chunks as TFRecord or Parquet shards of bounded size.

Each shard is written under a hidden temporary name in the output directory
(``.part-00003.tfrecord.tmp-<pid>``), flushed, fsync'ed and renamed to its final name only when
it is complete. A crash or an exception therefore never leaves a partial file under a final
name: the ``with`` block deletes the shard it was writing and keeps the completed ones.

The output may be an fsspec URL (``s3://bucket/out/``, ``memory://...``). Object stores have no
atomic rename, so a shard is written to a local temporary file (in ``TMPDIR``), uploaded when
complete under a hidden temporary key (``.part-00003.tfrecord.tmp-<pid>-<random>``) and then
moved to its final key (on S3 a server-side copy, which makes the final object appear whole or
not at all, then a delete of the temporary key). A crash may leave a hidden temporary key
behind, never a partial object under a final name; local disk holds one shard at a time.

TFRecord shards hold one ``tf.train.Example`` per row, with one scalar feature per column,
serialized column-wise by :mod:`tfstream.sources.example_codec`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping

import numpy as np

from tfstream.sources.atomic import upload
from tfstream.sources.base import Chunk
from tfstream.sources.example_codec import _ExampleEncoder
from tfstream.sources.files import is_url, redact, url_filesystem
from tfstream.sources.schema import Column, normalize_schema
from tfstream.sources.shards import (
    _arrow_schema,
    _arrow_table,
    _ParquetShard,
    _row_bytes,
    _Shard,
    _TFRecordShard,
)

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
        storage_options: options of the fsspec filesystem when ``directory`` is a URL
            (credentials, endpoint...). See the module docstring for how shards reach an
            object store.

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
        storage_options: Mapping | None = None,
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
        self._remote = None  # (fsspec filesystem, directory on it) for a URL
        if is_url(self._directory):
            self._remote = url_filesystem(self._directory, storage_options)
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
        if self._remote is None:
            os.makedirs(self._directory, exist_ok=True)
            self._staging = self._directory
        else:
            fs, where = self._remote
            fs.makedirs(where, exist_ok=True)
        self._clear_old_shards(overwrite)
        if self._remote is not None:  # after the checks: nothing to clean up if they raise
            self._staging = tempfile.mkdtemp(prefix="tfstream-shards-")
        self._shards: list[str] = []
        self._shard_rows: list[int] = []
        self._uploaded_bytes: list[int] = []
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
    def shard_bytes(self) -> list[int]:
        """Bytes of each completed shard (as stored: compressed), local or remote."""
        if self._remote is None:
            return [os.path.getsize(p) for p in self._shards]
        return list(self._uploaded_bytes)

    @property
    def bytes_written(self) -> int:
        """Bytes on disk of the completed shards."""
        return sum(self.shard_bytes)

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
            path = shard.path if self._remote is None else self._upload(shard.path)
            self._shards.append(path)
            self._shard_rows.append(shard.rows)

    def close(self) -> None:
        """Completes the last shard. Idempotent."""
        if not self._closed:
            try:
                self.finish_shard()
            finally:
                self._closed = True
                self._remove_staging()

    def abort(self) -> None:
        """Deletes the shard being written; completed shards stay."""
        if self._open is not None:
            shard, self._open = self._open, None
            shard.discard()
        self._closed = True
        self._remove_staging()

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
        path = os.path.join(self._staging, name)
        temp = os.path.join(self._staging, f".{name}.tmp-{os.getpid()}")
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

    def _upload(self, local: str) -> str:
        """Moves a completed local shard to the remote directory (temporary key, then its
        final key); returns its URL."""
        fs, where = self._remote
        final = f"{where.rstrip('/')}/{os.path.basename(local)}"
        size = os.path.getsize(local)
        try:
            upload(fs, final, local=local)
        finally:
            os.remove(local)
        self._uploaded_bytes.append(size)
        return redact(fs.unstrip_protocol(final))

    def _remove_staging(self) -> None:
        if self._remote is not None and os.path.isdir(self._staging):
            shutil.rmtree(self._staging, ignore_errors=True)

    def _existing_names(self) -> list[str]:
        if self._remote is None:
            return os.listdir(self._directory)
        fs, where = self._remote
        try:
            listed = fs.ls(where, detail=False)
        except FileNotFoundError:  # object stores have no empty directories
            return []
        return [p.rstrip("/").rpartition("/")[2] for p in listed]

    def _clear_old_shards(self, overwrite: bool) -> None:
        """Shards of an earlier run (compressed or not) would mix with this run's."""
        suffixes = (".tfrecord", ".tfrecord.gz") if self._format == "tfrecord" else (".parquet",)
        old = sorted(
            name
            for name in self._existing_names()
            if name.startswith(self._prefix + "-") and name.endswith(suffixes)
        )
        if old and not overwrite:
            raise FileExistsError(
                f"{redact(self._directory)} already holds {len(old)} {self._format} shard(s) named "
                f"{self._prefix}-* (e.g. {old[0]}). Pass overwrite=True to replace them, or "
                "choose another directory or prefix."
            )
        for name in old:
            if self._remote is None:
                os.remove(os.path.join(self._directory, name))
            else:
                fs, where = self._remote
                fs.rm(f"{where.rstrip('/')}/{name}")


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
    storage_options: Mapping | None = None,
) -> list[str]:
    """Streams a source into shards (see :class:`ShardWriter`); memory stays bounded by the
    source's chunk and the writer's buffers, whatever the size of the data.

    Args:
        source: any :class:`tfstream.sources.Source` (its ``schema``, label included, is kept).
        directory, format, max_rows_per_shard, max_bytes_per_shard, prefix, compression,
            overwrite, storage_options: as in :class:`ShardWriter` (``directory`` may be an
            fsspec URL).
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
        storage_options=storage_options,
    ) as writer:
        for chunk in source.iter_chunks():
            writer.write(chunk)
            if progress is not None:
                progress(len(next(iter(chunk.values()))))
    return writer.shards


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
