"""TFRecord source: files of ``tf.train.Example`` records with scalar features.

The schema is inferred from the first records of up to 8 files spread over the source (see
:func:`tfrecord`); each file is then read block by block by
:mod:`tfstream.sources.tfrecord_reader`, whose docstring tells how bad records, corrupt files and
schema drift are handled.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from tfstream.sources.base import Chunk, Source
from tfstream.sources.files import expand_paths, file_size
from tfstream.sources.schema import Column, SchemaDriftError, SchemaError, normalize_schema
from tfstream.sources.tfrecord_reader import _FileReader, _first_examples, _tf_readable

__all__ = ["TFRecordSource", "tfrecord"]

_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrec", ".tfrecord.gz", ".tfrecords.gz")
_COMPRESSIONS = {"GZIP": "GZIP", "ZLIB": "ZLIB", "NONE": ""}
_DEFAULT_CHUNK = 65_536
_SAMPLE_FILES = 8  # files sampled for inference: the first and others spread over the source
_SAMPLE_FIRST = 1000  # records sampled from the first file
_SAMPLE_OTHER = 100  # records sampled from each other sampled file
_SAMPLE_PREFIX = 8 << 20  # bytes of a remote file copied to sample its first records

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
