"""Reading one TFRecord file for :class:`~tfstream.sources.tfrecord.TFRecordSource`, block by
block, and the file-level helpers its schema sampling shares (a local copy of a URL TensorFlow
cannot read, the first valid records of a file).

How a file is read:

1. ``tf.data.TFRecordDataset(...).batch(chunk_records)`` reads blocks of serialized records in
   C++; each block is parsed by ONE ``tf.io.parse_example`` call. Every feature is parsed as a
   ``RaggedFeature``: its row lengths tell, without any sentinel value, which records lack the
   feature (NaN for floats, ``b""`` for strings, a rejected record for int64) and which hold
   more than one value (not supported yet: a :class:`SchemaError`).
2. A block that ``parse_example`` refuses (bytes that are not a ``tf.train.Example``) is
   bisected and re-parsed until every bad record is isolated; each is rejected with its record
   index and the good records of the block are kept.
3. A corrupt file (bad CRC, truncated record, broken gzip stream) makes the reader fail in the
   middle of a block. The records of the blocks before it are known good; the file is read again
   from the failing block's first record, in small steps, to keep every good record before the
   corruption and to name the exact index of the first bad one. The rest of the file cannot be
   read: it is reported through ``on_error`` (``report().lost_files`` names the file).
4. ``TFRecordDataset`` stops silently, without an error, when a file (or a gzip stream cut
   short) ends inside a record header. So at the end of each file the bytes of its records are
   compared with the file's size (uncompressed), the gzip trailer's size field (GZIP; on a
   mismatch the file is decompressed once more to tell why) or the decompressed size (ZLIB);
   a difference is reported like a corrupt record.

The first record of every file is checked against the schema, so a file whose features or
feature types differ from the sampled files fails early with a :class:`SchemaDriftError` that
names both files.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from tfstream.sources.base import Chunk
from tfstream.sources.files import is_url, open_input
from tfstream.sources.report import RejectedRow
from tfstream.sources.schema import SchemaDriftError, SchemaError

if TYPE_CHECKING:
    from tfstream.sources.tfrecord import TFRecordSource

__all__ = []

_FIRST_RECORDS_CHECKED = 10  # the first valid one of these is checked against the schema
_RESCAN_STEP = 256  # records per step when a corrupt block is read again
_RECORD_OVERHEAD = 16  # length (8) + length CRC (4) + data CRC (4) bytes around each record
_COPY_PIECE = 8 << 20  # bytes per read when a remote file is copied to local disk
_READ_BATCH = 1024  # records batched at once by TFRecordDataset (rebatched into blocks)


class _FileReader:
    """Reads one TFRecord file block by block (see the module docstring)."""

    def __init__(self, source: TFRecordSource, path: str, report=None):
        import tensorflow as tf

        self.src = source
        self.path = path  # the name in messages
        self.local = path  # what TensorFlow reads: the path, or a local copy of a URL
        self.compression = source.compression_of(path)
        self.names = list(source._schema)
        dtypes = {"float_list": tf.float32, "int64_list": tf.int64, "bytes_list": tf.string}
        self.spec = {
            name: tf.io.RaggedFeature(dtypes[source._kinds[name]], row_splits_dtype=tf.int64)
            for name in self.names
        }
        self.consumed = 0  # bytes of the file taken by the records read so far
        # Told of the bytes read as they are read; only for uncompressed files, where record
        # bytes are file bytes (a compressed file is counted whole when it is finished).
        self.report = report if not self.compression else None
        self.checked = False  # whether the first records were checked against the schema

    # -- the file ----------------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        with _tf_readable(self.path, self.src._storage_options) as local:
            self.local = local
            yield from self._chunks()

    def _chunks(self) -> Iterator[Chunk]:
        import tensorflow as tf

        pos = 0  # index of the next record to read
        while True:
            records = self._records(pos, self.src._chunk_records)
            failure = None
            while True:
                try:
                    batch = next(records)
                except StopIteration:
                    break
                except tf.errors.NotFoundError as e:
                    raise FileNotFoundError(f"{self.path}: {_op_message(e)}") from None
                except tf.errors.OpError as e:
                    failure = e
                    break
                chunk, pos = self._take(batch, pos)
                if chunk is not None:
                    yield chunk
            if failure is None:
                self._check_length(pos)
                return
            # The block starting at record ``pos`` failed to read: find the first bad record.
            good, bad, error = self._rescan(pos, failure)
            if good is not None:
                chunk, pos = self._take(good, pos)
                if chunk is not None:
                    yield chunk
            if bad is not None:
                self.src._ledger.lose_file(
                    RejectedRow(self.path, None, bad, f"corrupt record ({error})", None)
                )
                return
            # The error did not happen again (a transient read error): go on from ``pos``.

    def _take(self, batch, pos: int) -> tuple[Chunk | None, int]:
        """Checks and parses a block whose first record is record ``pos``; returns its chunk
        and the index of the record after it."""
        if not self.checked:
            self._check_first_record(batch, pos)
            self.checked = True
        chunk = self._parse_block(batch, pos)
        before = self.consumed
        pos += self._advance(batch)
        if self.report is not None:
            self.report(self.consumed - before)
        return chunk, pos

    def _records(self, pos: int, step: int):
        import tensorflow as tf

        ds = tf.data.TFRecordDataset(self.local, compression_type=self.compression)
        if pos:
            ds = ds.skip(pos)
        if step > _READ_BATCH and step % _READ_BATCH == 0:
            # Batching 64k strings at once reads ~30% slower than batches of 1024 put together
            # by rebatch (300k records of 500 bytes). Only for whole multiples of 1024: else a
            # block would read into the next batch, and a corrupt record there would fail it.
            return iter(ds.batch(_READ_BATCH).rebatch(step).prefetch(1))
        return iter(ds.batch(step).prefetch(1))

    def _advance(self, batch) -> int:
        import tensorflow as tf

        n = int(batch.shape[0])
        self.consumed += int(tf.reduce_sum(tf.strings.length(batch))) + _RECORD_OVERHEAD * n
        return n

    def _rescan(self, pos: int, error):
        """Reads the records from ``pos`` again, in small steps then one by one, up to the
        first one that fails. Returns ``(good records or None, index of the bad record or
        None, error text)``."""
        import tensorflow as tf

        good = []
        start = pos
        limit = pos + self.src._chunk_records  # the failed block; past it, nothing failed
        for step in (_RESCAN_STEP, 1):
            records = self._records(pos, step)
            failed = False
            while pos < limit:
                try:
                    batch = next(records)
                except StopIteration:
                    break
                except tf.errors.OpError as e:
                    error, failed = e, True
                    break
                good.append(batch)
                pos += int(batch.shape[0])
            if not failed:
                if pos == start:  # nothing read, nothing failed: do not loop forever
                    raise error
                return tf.concat(good, axis=0), None, None
        message = f"{type(error).__name__}: {_op_message(error)}"
        return (tf.concat(good, axis=0) if good else None), pos, message

    def _check_length(self, records: int) -> None:
        """The file's (decompressed) bytes must be exactly its records: ``TFRecordDataset``
        stops quietly, without an error, when the data ends inside a record header."""
        import tensorflow as tf

        if not self.compression:
            size, broken = tf.io.gfile.stat(self.local).length, None
        elif self.compression == "GZIP" and _gzip_size(self.local) == self.consumed % 2**32:
            return  # the gzip trailer holds the decompressed size (mod 2**32)
        else:
            size, broken = _stream_size(self.local, self.compression)
        if size == self.consumed and broken is None:
            return
        if broken is not None:
            reason = (
                f"corrupt record (the {self.compression} stream is {broken} after "
                f"{size} bytes; its {records} whole records end at byte {self.consumed})"
            )
        else:
            stream = "file" if not self.compression else f"decompressed {self.compression} stream"
            reason = (
                f"truncated record: the {stream} ends {size - self.consumed} bytes into a "
                f"record (it is {size} bytes long; its {records} whole records end at byte "
                f"{self.consumed})"
            )
        self.src._ledger.lose_file(RejectedRow(self.path, None, records, reason, None))

    def _check_first_record(self, batch, start: int) -> None:
        """Drift check: the first valid record must fit the schema's feature names and
        kinds."""
        from google.protobuf.message import DecodeError
        from tensorflow.core.example.example_pb2 import Example

        for index in range(min(int(batch.shape[0]), _FIRST_RECORDS_CHECKED)):
            try:
                example = Example.FromString(batch[index].numpy())
            except DecodeError:
                continue
            self._check_example(example, start + index, extras=not self.src._columns_given)
            return

    def _check_example(self, example, index: int, *, extras: bool) -> None:
        kinds = self.src._kinds
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            if name not in kinds:
                if extras:
                    raise SchemaDriftError(
                        f"Schema drift: {self.path} (record {index}) has feature {name!r} "
                        f"({kind}), which the schema inferred from "
                        f"{', '.join(self.src._sampled)} does not have. The schema's features "
                        f"are {list(kinds)}. Pass columns=[...] to read some features and "
                        "ignore the others."
                    )
            elif kind is not None and kind != kinds[name]:
                raise SchemaDriftError(
                    f"Schema drift: feature {name!r} is a {kind} in {self.path} (record "
                    f"{index}), but the schema reads it as a {kinds[name]}, as in "
                    f"{self.src._origins[name]}. Fix the data, or leave the feature out with "
                    "columns=[...]."
                )

    # -- blocks ------------------------------------------------------------------------------

    def _parse_block(self, batch, start: int) -> Chunk | None:
        """Parses a block of serialized records whose first one is record ``start``; bad
        records are rejected, the others returned as one chunk (None when none is left)."""
        pieces: list[Chunk] = []
        self._bisect(batch, start, 0, int(batch.shape[0]), pieces)
        pieces = [p for p in pieces if len(p[self.names[0]])]
        if not pieces:
            return None
        if len(pieces) == 1:
            return pieces[0]
        return {name: np.concatenate([p[name] for p in pieces]) for name in self.names}

    def _bisect(self, batch, start: int, lo: int, hi: int, pieces: list[Chunk]) -> None:
        """Parses records ``lo..hi-1`` of ``batch`` in order; isolates the ones
        ``parse_example`` refuses."""
        import tensorflow as tf

        if hi <= lo:
            return
        part = batch if (lo, hi) == (0, int(batch.shape[0])) else batch[lo:hi]
        try:
            parsed = tf.io.parse_example(part, self.spec)
        except (tf.errors.OpError, UnicodeDecodeError) as e:
            # TF puts the record's bytes in the message; Python may fail to decode it.
            if hi - lo == 1:
                self._reject_unparsable(batch[lo].numpy(), start + lo, e)
                return
            mid = (lo + hi) // 2
            self._bisect(batch, start, lo, mid, pieces)
            self._bisect(batch, start, mid, hi, pieces)
            return
        pieces.append(self._to_chunk(parsed, start + lo, hi - lo))

    def _to_chunk(self, parsed, start: int, n: int) -> Chunk:
        """Ragged parse results -> a chunk; rejects records that lack an int64 feature."""
        out: Chunk = {}
        missing_int: dict[str, np.ndarray] = {}
        for name in self.names:
            ragged = parsed[name]
            values = ragged.flat_values.numpy()
            splits = ragged.row_splits.numpy()
            dtype = self.src._schema[name].dtype
            lengths = np.diff(splits)
            if len(values) == n and (n == 0 or lengths.max() == 1):
                column = values  # the usual case: one value in every record
                present = None
            else:
                several = np.flatnonzero(lengths > 1)
                if len(several):
                    i = int(several[0])
                    raise SchemaError(
                        f"{self.path}, record {start + i}: feature {name!r} holds "
                        f"{int(lengths[i])} values, but tfrecord() reads scalar features only "
                        "(one value per record) for now. Leave the feature out with "
                        "columns=[...]."
                    )
                present = lengths == 1
                column = np.empty(n, dtype=values.dtype)
                column[present] = values
            if dtype == "string":
                if present is not None:
                    column[~present] = b""
            elif dtype == "int64":
                if present is not None:
                    missing_int[name] = ~present
            else:
                column = column.astype(dtype, copy=False)
                if present is not None:
                    column[~present] = np.nan
            out[name] = column
        if missing_int:
            out = self._reject_missing_int(out, missing_int, start, n)
        self.src._ledger.ok(len(out[self.names[0]]))
        return out

    def _reject_missing_int(self, chunk: Chunk, missing: dict, start: int, n: int) -> Chunk:
        bad = np.zeros(n, dtype=bool)
        for mask in missing.values():
            bad |= mask
        for i in np.flatnonzero(bad):
            names = [name for name, mask in missing.items() if mask[i]]
            which = f"feature {names[0]!r}" if len(names) == 1 else f"features {names}"
            self.src._ledger.reject(
                RejectedRow(
                    self.path,
                    None,
                    start + int(i),
                    f"missing value in int64 {which} (declare it float, e.g. "
                    f"schema={{{names[0]!r}: 'float32'}}, to keep such records with NaN)",
                    None,
                )
            )
        return {name: column[~bad] for name, column in chunk.items()}

    def _reject_unparsable(self, record: bytes, index: int, error) -> None:
        from google.protobuf.message import DecodeError
        from tensorflow.core.example.example_pb2 import Example

        try:
            example = Example.FromString(record)
        except DecodeError as e:
            reason = f"not a valid tf.train.Example ({len(record)} bytes; {e})"
        else:
            # A valid Example that TF refuses: a feature of the wrong list kind is drift.
            self._check_example(example, index, extras=False)
            reason = f"tf.io.parse_example refused the record ({_op_message(error)})"
        self.src._ledger.reject(RejectedRow(self.path, None, index, reason, None))


@contextlib.contextmanager
def _tf_readable(path: str, storage_options, *, limit: int | None = None):
    """A path TensorFlow can read for ``path``: itself when local, or ``gs://`` without
    ``storage_options`` (TF reads it natively); else a local copy of the file (its first
    ``limit`` bytes when given), deleted on exit."""
    if not is_url(path) or (path.startswith("gs://") and not storage_options):
        yield path
        return
    fd, local = tempfile.mkstemp(prefix="tfstream-", suffix=".tfrecord")
    try:
        with os.fdopen(fd, "wb") as out, open_input(path, storage_options) as f:
            copied = 0
            while limit is None or copied < limit:
                want = _COPY_PIECE if limit is None else min(_COPY_PIECE, limit - copied)
                piece = f.read(want)
                if not piece:
                    break
                out.write(piece)
                copied += len(piece)
        yield local
    finally:
        os.unlink(local)


def _first_examples(path: str, compression: str, limit: int, name: str | None = None):
    """Yields ``(index, tf.train.Example)`` for the first valid records of a file, stopping
    quietly at a corrupt record (reading reports it). ``name`` is the file's name in
    messages (``path`` may be a local copy)."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError
    from tensorflow.core.example.example_pb2 import Example

    ds = tf.data.TFRecordDataset(path, compression_type=compression).take(limit)
    try:
        records = list(next(iter(ds.batch(limit))).numpy())
    except StopIteration:
        return
    except tf.errors.NotFoundError as e:
        raise FileNotFoundError(f"{name or path}: {_op_message(e)}") from None
    except tf.errors.OpError:
        records = []
        try:
            for record in ds:  # up to the corrupt record
                records.append(record.numpy())
        except tf.errors.OpError:
            pass
    for index, record in enumerate(records):
        try:
            yield index, Example.FromString(record)
        except DecodeError:
            continue


def _gzip_size(path: str) -> int | None:
    """The size field of a gzip file's trailer (the decompressed size of its last member,
    modulo 2**32), or None when the file is too short to have one."""
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "rb") as f:
        size = f.size()
        if size < 18:  # 10 bytes of header, 8 of trailer
            return None
        f.seek(size - 4)
        return int.from_bytes(f.read(4), "little")


def _stream_size(path: str, compression: str) -> tuple[int, str | None]:
    """Decompresses a whole file (every gzip member) without keeping it: returns its
    decompressed size and, when the stream is cut short or corrupt, a description."""
    import tensorflow as tf

    wbits = 31 if compression == "GZIP" else 15
    size = 0
    member = None  # the decompressor of the current gzip member / zlib stream
    with tf.io.gfile.GFile(path, "rb") as f:
        while True:
            data = f.read(1 << 22)
            if not data:
                break
            while data:
                member = member or zlib.decompressobj(wbits)
                try:
                    size += len(member.decompress(data))
                except zlib.error as e:
                    return size, f"corrupt ({e})"
                data, member = (member.unused_data, None) if member.eof else (b"", member)
    if member is not None:
        size += len(member.flush())
        return size, "cut short"
    return size, None


_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")


def _op_message(error) -> str:
    """A TensorFlow error's own words, without the op and function decorations."""
    message = getattr(error, "message", None) or str(error)
    message = _FUNCTION_NODE.sub("", message)
    message = message.split(" [Op:")[0]
    return message.strip().splitlines()[0] if message.strip() else type(error).__name__
