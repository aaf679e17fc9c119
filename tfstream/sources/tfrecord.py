"""TFRecord source: files of ``tf.train.Example`` records with scalar features.

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
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from tfstream.sources.base import Chunk, Source
from tfstream.sources.files import expand_paths, file_size, is_url, open_input
from tfstream.sources.report import RejectedRow
from tfstream.sources.schema import Column, SchemaDriftError, SchemaError, normalize_schema

__all__ = ["TFRecordSource", "tfrecord"]

_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrec", ".tfrecord.gz", ".tfrecords.gz")
_COMPRESSIONS = {"GZIP": "GZIP", "ZLIB": "ZLIB", "NONE": ""}
_DEFAULT_CHUNK = 65_536
_SAMPLE_FILES = 8  # files sampled for inference: the first and others spread over the source
_SAMPLE_FIRST = 1000  # records sampled from the first file
_SAMPLE_OTHER = 100  # records sampled from each other sampled file
_FIRST_RECORDS_CHECKED = 10  # the first valid one of these is checked against the schema
_RESCAN_STEP = 256  # records per step when a corrupt block is read again
_RECORD_OVERHEAD = 16  # length (8) + length CRC (4) + data CRC (4) bytes around each record
_SAMPLE_PREFIX = 8 << 20  # bytes of a remote file copied to sample its first records
_COPY_PIECE = 8 << 20  # bytes per read when a remote file is copied to local disk

_INFERRED = {"float_list": "float32", "int64_list": "int64", "bytes_list": "string"}
_NATURAL_KIND = {
    "float32": "float_list",
    "float64": "float_list",
    "int64": "int64_list",
    "string": "bytes_list",
}
# Which stored list kinds a declared dtype can be read from (int64 values read as floats are
# cast; a float never becomes an int64, and strings only come from bytes).
_READABLE_AS = {
    "float32": ("float_list", "int64_list"),
    "float64": ("float_list", "int64_list"),
    "int64": ("int64_list",),
    "string": ("bytes_list",),
}


def tfrecord(
    paths,
    *,
    label: str | None = None,
    schema: Mapping[str, str] | None = None,
    compression: str | None = None,
    on_error: str = "raise",
    quarantine_path: str | os.PathLike | None = None,
    columns: Sequence[str] | None = None,
    chunk_records: int = _DEFAULT_CHUNK,
    storage_options: Mapping | None = None,
) -> TFRecordSource:
    """Streams TFRecord files of ``tf.train.Example`` records whose features are scalars.

    Args:
        paths: a path, a glob, a directory (every ``.tfrecord``/``.tfrecords``/``.tfrec`` and
            ``.tfrecord.gz``/``.tfrecords.gz`` below it) or a list of them, local or fsspec URLs.
            Files are read in sorted order.
        label: the label feature; datasets then yield ``(features, label)``.
        schema: ``{feature: "float32" | "float64" | "int64" | "string"}`` to override
            inference; other features are inferred from the first 1,000 records of the first
            file and the first 100 records of up to 7 other files spread over the source:
            ``float_list`` -> float32, ``int64_list`` -> int64, ``bytes_list`` -> string.
            A feature may be declared here even when the sampled records lack it. An
            ``int64_list`` feature may be declared ``"float32"``/``"float64"`` (then a record
            without it gets NaN instead of being rejected).
        compression: ``None`` (GZIP for files whose name ends with ``.gz``, else none),
            ``"GZIP"``, ``"ZLIB"`` or ``"NONE"`` (case-insensitive), for every file.
        on_error: what to do with a bad record: bytes that are not a ``tf.train.Example``, a
            missing value in an int64 feature, or a corrupt file (bad CRC, truncated record,
            broken gzip stream: the rest of that file is lost): ``"raise"`` (the error names the
            file and record index), ``"skip"`` (count it in ``report()``) or ``"quarantine"``
            (count it and write where it was and why to a JSON-lines file).
        quarantine_path: where quarantined records are described (default
            ``./tfstream-quarantine-<time>-<pid>.jsonl``).
        columns: read only these features (the label is added when not listed); other
            features are ignored, in every file. Without it, a file that has a feature the
            schema lacks is a :class:`SchemaDriftError`.
        chunk_records: records read and parsed per block; memory grows with it.
        storage_options: options of the fsspec filesystem of URL paths (credentials,
            endpoint...). TensorFlow reads ``gs://`` itself (with its own credentials, when no
            ``storage_options`` are given). Other URLs (``s3://``, ``hdfs://``, ...), which
            TensorFlow cannot read, are copied one file at a time to a local temporary file
            (in ``TMPDIR``; deleted once read), so every CRC and truncation check still
            applies: memory stays bounded, local disk needs room for the largest file. Schema
            inference copies only the first 8 MiB of a sampled file.

    Returns:
        A :class:`TFRecordSource`. String features come out as ``bytes``.

    Raises:
        FileNotFoundError: a path does not exist or a glob/directory names no file.
        SchemaError: a sampled record holds more than one value in a feature (only scalar
            features are supported for now), or ``schema``/``columns`` do not fit the data.
        SchemaDriftError: two files disagree on a feature's type, or a file has a feature the
            schema lacks (without ``columns=``). Raised while reading too.

    Example:

    >>> import tfstream as ts
    >>> src = ts.tfrecord("data/*.tfrecord", label="label")     # doctest: +SKIP
    >>> ds = src.dataset(1024, shuffle=True, seed=0)             # doctest: +SKIP
    >>> src.report()                                             # doctest: +SKIP
    """
    return TFRecordSource(
        paths,
        label=label,
        schema=schema,
        compression=compression,
        on_error=on_error,
        quarantine_path=quarantine_path,
        columns=columns,
        chunk_records=chunk_records,
        storage_options=storage_options,
    )


class TFRecordSource(Source):
    """See :func:`tfstream.tfrecord`."""

    def __init__(
        self,
        paths,
        *,
        label=None,
        schema=None,
        compression=None,
        on_error="raise",
        quarantine_path=None,
        columns=None,
        chunk_records=_DEFAULT_CHUNK,
        storage_options=None,
    ):
        super().__init__(label=label, on_error=on_error, quarantine_path=quarantine_path)
        integer = isinstance(chunk_records, (int, np.integer)) and not isinstance(
            chunk_records, bool
        )
        if not integer or chunk_records < 1:
            raise ValueError(
                "`chunk_records` must be a positive integer (records parsed per block). "
                f"Received: chunk_records={chunk_records!r}"
            )
        self._compression = _check_compression(compression)
        self._chunk_records = int(chunk_records)
        self._storage_options = dict(storage_options or {})
        self._files = expand_paths(
            paths, suffixes=_SUFFIXES, what="TFRecord", storage_options=self._storage_options
        )
        self._columns_given = columns is not None
        overrides = normalize_schema(schema)
        seen, self._sampled = self._sample()
        names = self._select(columns, label, overrides, seen)
        self._schema: dict[str, Column] = {}
        self._kinds: dict[str, str] = {}  # the stored list kind each column is parsed as
        self._origins: dict[str, str] = {}  # where that kind was seen, for drift messages
        for name in names:
            self._schema[name], self._kinds[name], self._origins[name] = _column(
                name, overrides.get(name), seen.get(name)
            )
        if not self._schema:
            raise SchemaError(
                f"The sampled TFRecord files ({', '.join(self._sampled)}) hold no feature to "
                "infer a schema from (are they empty?). Declare the features with "
                "schema={'feature': 'float32', ...}."
            )
        self._resolve_label()

    @property
    def files(self) -> list[str]:
        """The files of the source, in reading order."""
        return list(self._files)

    def compression_of(self, path: str) -> str:
        """The ``compression_type`` ``path`` is read with: ``"GZIP"``, ``"ZLIB"`` or ``""``."""
        if self._compression is not None:
            return self._compression
        return "GZIP" if path.endswith(".gz") else ""

    def _units(self):
        return self._files

    def _read_unit(self, path: str) -> Iterator[Chunk]:
        return _FileReader(self, path).chunks()

    def _unit_bytes(self, path: str) -> int | None:
        return file_size(path, self._storage_options)

    def _read_unit_reporting(self, path: str, report) -> Iterator[Chunk]:
        return _FileReader(self, path, report).chunks()

    # -- construction ------------------------------------------------------------------------

    def _sample(self) -> tuple[dict[str, _Seen], list[str]]:
        """Reads the first records of up to 8 files spread over the source: the list kind of
        every feature, where it was first seen, and where it first disagreed or held several
        values."""
        picks = np.linspace(0, len(self._files) - 1, _SAMPLE_FILES).round().astype(int)
        sampled = [self._files[i] for i in np.unique(picks)]
        seen: dict[str, _Seen] = {}
        for number, path in enumerate(sampled):
            limit = _SAMPLE_FIRST if number == 0 else _SAMPLE_OTHER
            with _tf_readable(path, self._storage_options, limit=_SAMPLE_PREFIX) as local:
                examples = list(_first_examples(local, self.compression_of(path), limit, path))
            for index, example in examples:
                for name, feature in example.features.feature.items():
                    kind = feature.WhichOneof("kind")
                    if kind is None:
                        continue
                    count = len(getattr(feature, kind).value)
                    if name not in seen:
                        seen[name] = _Seen()
                    seen[name].observe(kind, count, path, index)
        return seen, sampled

    def _select(self, columns, label, overrides, seen) -> list[str]:
        if columns is None:
            return list(overrides) + sorted(n for n in seen if n not in overrides)
        if isinstance(columns, str):
            columns = [columns]
        wanted = list(dict.fromkeys(list(columns) + ([label] if label else [])))
        unknown = [n for n in columns if n not in seen and n not in overrides]
        if unknown:
            raise SchemaError(
                f"`columns` names features that no sampled record has: {unknown}. The sampled "
                f"files ({', '.join(self._sampled)}) have {sorted(seen)}. If the features "
                "appear only in later records, declare their type with schema=."
            )
        return [n for n in wanted if n in seen or n in overrides]


class _Seen:
    """What the sampled records tell about one feature."""

    def __init__(self):
        self.kind: str | None = None
        self.where: tuple[str, int] | None = None  # (file, record) where ``kind`` was seen
        self.conflict: tuple[str, str, int] | None = None  # (other kind, file, record)
        self.multi: tuple[int, str, int] | None = None  # (value count, file, record)

    def observe(self, kind: str, count: int, path: str, index: int) -> None:
        if count > 1 and self.multi is None:
            self.multi = (count, path, index)
        if self.kind is None:
            self.kind, self.where = kind, (path, index)
        elif kind != self.kind and self.conflict is None:
            self.conflict = (kind, path, index)


def _column(name: str, declared: Column | None, seen: _Seen | None) -> tuple[Column, str, str]:
    """The column, the list kind it is parsed as and where that kind came from."""
    if seen is not None and seen.multi is not None:
        count, path, index = seen.multi
        raise SchemaError(
            f"{path}, record {index}: feature {name!r} holds {count} values, but tfrecord() "
            "reads scalar features only (one value per record) for now. Leave the feature out "
            "with columns=[...]."
        )
    if seen is not None and seen.conflict is not None:
        kind, path, index = seen.conflict
        first_path, first_index = seen.where
        raise SchemaDriftError(
            f"Schema drift: feature {name!r} is a {seen.kind} in {first_path} (record "
            f"{first_index}) but a {kind} in {path} (record {index}). Fix the data, or leave "
            "the feature out with columns=[...]."
        )
    if declared is None:
        path, index = seen.where
        return Column.of(name, _INFERRED[seen.kind]), seen.kind, f"{path} (record {index})"
    if seen is None:
        return declared, _NATURAL_KIND[declared.dtype], f"schema= ({declared.dtype})"
    path, index = seen.where
    if seen.kind not in _READABLE_AS[declared.dtype]:
        readable = [d for d, kinds in _READABLE_AS.items() if seen.kind in kinds]
        raise SchemaError(
            f"`schema` declares feature {name!r} as {declared.dtype!r}, but it is a "
            f"{seen.kind} in {path} (record {index}). Declare it as one of {readable}."
        )
    return declared, seen.kind, f"{path} (record {index})"


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


def _check_compression(compression) -> str | None:
    if compression is None:
        return None
    key = compression.upper() if isinstance(compression, str) else None
    if key not in _COMPRESSIONS:
        raise ValueError(
            "`compression` must be None (GZIP for names ending with .gz, else none), 'GZIP', "
            f"'ZLIB' or 'NONE'. Received: compression={compression!r}"
        )
    return _COMPRESSIONS[key]


_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")


def _op_message(error) -> str:
    """A TensorFlow error's own words, without the op and function decorations."""
    message = getattr(error, "message", None) or str(error)
    message = _FUNCTION_NODE.sub("", message)
    message = message.split(" [Op:")[0]
    return message.strip().splitlines()[0] if message.strip() else type(error).__name__
