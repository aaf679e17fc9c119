"""Parquet source: files, globs and Hive-partitioned directories, streamed by row group.

How a file is read:

1. Its footer gives the Arrow schema; the first readable file fixes the source's schema, and
   every other file is compared with it (from its footer, when it is opened, and for all files
   at construction when there are at most 64): a missing or extra column, or a numeric column
   that became a string one, is a :class:`SchemaDriftError` naming both files. ``int32`` vs
   ``int64`` or ``float32`` vs ``float64`` is not drift.
2. ``ParquetFile.iter_batches`` reads only the selected columns, one row group at a time,
   and the batches are cut and joined into chunks of ``batch_rows`` rows. Memory is
   bounded by a row group and a batch, never by the file size (a row group is Parquet's unit of
   decoding: a file written as one huge row group is decoded whole).
3. Each column becomes a numpy array of its schema dtype. Missing values become NaN (floats) or
   ``""`` (strings); a missing value in an ``int64`` column rejects the row, as ``on_error``
   says, with the file and the row's index in the file.
4. Hive partition columns (``year=2024/month=01/part-0.parquet`` below a given directory) are
   appended after the file's columns: integers become ``int64``, anything else ``string``, and
   ``__HIVE_DEFAULT_PARTITION__`` is a missing value.

The Arrow -> numpy conversion (:mod:`tfstream.sources.arrow`) is shared with the pandas and SQL
sources; Hive partition values are found and parsed by :mod:`tfstream.sources.partitions`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from tfstream.sources.arrow import (
    CASTABLE,
    _decoded,
    arrow_family,
    arrow_to_numpy,
    finish_chunk,
    infer_arrow_dtype,
)
from tfstream.sources.base import Chunk, Source
from tfstream.sources.files import arrow_location, expand_paths, file_size
from tfstream.sources.partitions import (
    _INTEGER,
    _constant,
    _hive_values,
    _parse_partition,
    _partition_base,
)
from tfstream.sources.report import DataError, RejectedRow
from tfstream.sources.schema import Column, SchemaDriftError, SchemaError, normalize_schema

__all__ = ["ParquetSource", "parquet"]

_SUFFIXES = (".parquet", ".pq", ".parq")
_DEFAULT_BATCH = 65_536
#: Sources with at most this many files have every footer checked for drift at construction.
_CHECK_ALL_FILES = 64


def parquet(
    paths,
    *,
    label: str | None = None,
    columns: Sequence[str] | None = None,
    schema: Mapping[str, str] | None = None,
    batch_rows: int = _DEFAULT_BATCH,
    on_error: str = "raise",
    quarantine_path: str | os.PathLike | None = None,
    storage_options: Mapping | None = None,
) -> ParquetSource:
    """Streams Parquet files: single files, globs, directories and Hive-partitioned datasets.

    Args:
        paths: a path, a glob, a directory (every ``.parquet``/``.pq``/``.parq`` file below
            it; ``_SUCCESS``, ``_metadata``, ``.crc`` and other hidden files are skipped) or a
            list of them, local or fsspec URLs (``s3://bucket/table/``, ``gs://...``). Files
            are read in sorted order; each file is one unit for sharding
            and shuffling. ``key=value`` directories below a given directory become columns
            (Hive partitioning, as Spark and ``pyarrow.parquet.write_to_dataset`` write it).
        label: the label column; datasets then yield ``(features, label)``.
        columns: read only these columns (the label is added when not listed). Only these
            columns are read from disk.
        schema: ``{column: "float32" | "float64" | "int64" | "string"}`` to override the
            dtypes taken from the first file. By default floating columns are ``float32``
            (``float64`` stays ``float64``), integer and boolean columns ``int64``, string and
            dictionary-of-string columns ``string``, integer partition values ``int64`` and
            other partition values ``string``. Timestamps, dates, times and durations can be
            read as ``"int64"`` (their count of the column's own unit since the epoch: days for
            ``date32``, milliseconds for ``date64``) or ``"string"`` (ISO text); decimals as
            ``"float32"``/``"float64"``; binary columns as ``"string"`` (UTF-8). Other types
            (lists, structs, maps) must be left out with ``columns=``.
        batch_rows: rows per chunk handed to ``tf.data``; memory grows with it.
        on_error: what to do with a row that has a missing value in an ``int64`` column (or a
            value the schema's dtype cannot hold), and with a file that is not readable Parquet:
            ``"raise"`` (the error names the file and row index), ``"skip"`` (count it in
            ``report()``; an unreadable file, or the rest of a file after a corrupt page, is
            listed in ``report().lost_files``) or ``"quarantine"`` (count it and append it to a
            JSON-lines file).
        quarantine_path: where quarantined rows go (default
            ``./tfstream-quarantine-<time>-<pid>.jsonl``).
        storage_options: options of the fsspec filesystem of URL paths (credentials,
            endpoint...). pyarrow reads remote files through it with random reads: footers and
            the selected columns' row groups only.

    Returns:
        A :class:`ParquetSource`.

    Raises:
        FileNotFoundError: a path does not exist or names no Parquet file.
        SchemaError: a column has a type that cannot be fed to TensorFlow, or ``columns``,
            ``schema`` or ``label`` name a column that does not exist.
        SchemaDriftError: two files disagree on their columns or column kinds.
        DataError: (``on_error="raise"``) a file is not readable Parquet, or a row is bad.

    Example:

    >>> import os, tempfile
    >>> import pyarrow as pa, pyarrow.parquet as pq
    >>> path = os.path.join(tempfile.mkdtemp(), "part-0.parquet")
    >>> pq.write_table(pa.table({"x": [0.5, 1.5, 2.5], "y": [0, 1, 0]}), path)
    >>> src = parquet(path, label="y")
    >>> {name: col.dtype for name, col in src.schema.items()}
    {'x': 'float64', 'y': 'int64'}
    >>> features, label = next(iter(src.dataset(2)))
    >>> features["x"].numpy().tolist(), label.numpy().tolist()
    ([0.5, 1.5], [0, 1])
    """
    return ParquetSource(
        paths,
        label=label,
        columns=columns,
        schema=schema,
        batch_rows=batch_rows,
        on_error=on_error,
        quarantine_path=quarantine_path,
        storage_options=storage_options,
    )


class ParquetSource(Source):
    """See :func:`tfstream.parquet`."""

    def __init__(
        self,
        paths,
        *,
        label=None,
        columns=None,
        schema=None,
        batch_rows=_DEFAULT_BATCH,
        on_error="raise",
        quarantine_path=None,
        storage_options=None,
    ):
        super().__init__(label=label, on_error=on_error, quarantine_path=quarantine_path)
        if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
            raise ValueError(
                f"`batch_rows` must be a positive integer. Received: batch_rows={batch_rows!r}"
            )
        self._batch_rows = batch_rows
        self._storage_options = dict(storage_options or {})
        self._files, raw_partitions = _expand(paths, self._storage_options)
        self._columns_given = columns is not None
        self._overrides = normalize_schema(schema)
        footers = self._read_footers()
        self._ref_file = next(iter(footers))
        ref = footers[self._ref_file]
        self._ref_types = {field.name: field.type for field in ref}
        if len(self._ref_types) != len(ref.names):
            dupes = sorted({n for n in ref.names if ref.names.count(n) > 1})
            raise SchemaError(f"{self._ref_file}: the file repeats column names {dupes}.")
        keys = list(dict.fromkeys(k for parts in raw_partitions.values() for k in parts))
        clash = [k for k in keys if k in self._ref_types]
        if clash:
            raise SchemaError(
                f"Partition directories name columns that the files also hold: {clash} "
                f"(e.g. {self._ref_file}). Rename the partition key or drop the column."
            )
        available = list(self._ref_types) + keys
        unknown = [n for n in self._overrides if n not in available]
        if unknown:
            raise SchemaError(
                f"`schema` names columns that {self._ref_file} does not have: {unknown}. "
                f"Its columns are {available}"
            )
        selected = self._select(columns, label, available)
        self._schema = {}
        for name in selected:
            if name in self._ref_types:
                self._schema[name] = self._file_column(name, selected)
            else:
                values = [parts.get(name) for parts in raw_partitions.values()]
                self._schema[name] = self._partition_column(name, values)
        self._resolve_label()
        self._file_columns = [n for n in self._schema if n in self._ref_types]
        self._partitions = {
            path: {
                name: _parse_partition(parts.get(name), self._schema[name].dtype)
                for name in self._schema
                if name not in self._ref_types
            }
            for path, parts in raw_partitions.items()
        }
        for path, footer in footers.items():
            self._check_drift(path, footer)

    @property
    def files(self) -> list[str]:
        return list(self._files)

    def _units(self):
        return self._files

    def _unit_bytes(self, path: str) -> int | None:
        return file_size(path, self._storage_options)

    def _read_unit_reporting(self, path: str, report) -> Iterator[Chunk]:
        return self._read_unit(path, report)

    def _read_unit(self, path: str, report=None) -> Iterator[Chunk]:
        """The file's chunks; ``report(n)`` is told of the bytes of the row groups read so far
        (their compressed size)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            where, filesystem = arrow_location(path, self._storage_options)
            pf = pq.ParquetFile(where, filesystem=filesystem)
        except (pa.ArrowException, OSError) as e:
            self._ledger.lose_file(RejectedRow(path, None, None, _unreadable(e)))
            return
        with contextlib.closing(pf):
            self._check_drift(path, pf.schema_arrow)
            batches = _Batches(pf, self._file_columns, self._batch_rows)
            record = 0
            progress = _RowGroupBytes(pf.metadata) if report is not None else None
            for pieces in batches:
                chunk = self._convert(path, record, pieces)
                record += sum(piece.num_rows for piece in pieces)
                if progress is not None:
                    report(progress.until(record))
                if _length(chunk):
                    yield chunk
        if batches.failure is not None:
            total = pf.metadata.num_rows
            message = (
                f"the file is corrupt from this record on; {total - record:,} of its "
                f"{total:,} rows could not be read ({batches.failure})"
            )
            self._ledger.lose_file(RejectedRow(path, None, record, message))

    # -- construction ------------------------------------------------------------------------

    def _read_footers(self) -> dict:
        """Arrow schemas of the files checked at construction; the first is the reference.

        Every file when there are at most 64, else just the first readable one. An unreadable
        file raises here under ``on_error="raise"``; otherwise it is counted when it is read.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        footers, first_error = {}, None
        for path in self._files:
            if footers and len(self._files) > _CHECK_ALL_FILES:
                break
            try:
                where, filesystem = arrow_location(path, self._storage_options)
                footers[path] = pq.read_schema(where, filesystem=filesystem)
            except (pa.ArrowException, OSError) as e:
                row = RejectedRow(path, None, None, _unreadable(e))
                if self._ledger.on_error == "raise":
                    self._ledger.lose_file(row)  # raises DataError
                first_error = first_error or row
        if not footers:
            raise DataError(
                f"None of the {len(self._files)} Parquet files could be read; the first: "
                f"{first_error.message()}"
            )
        return footers

    def _select(self, columns, label, available) -> list[str]:
        if columns is None:
            return list(available)
        if isinstance(columns, str):
            columns = [columns]
        wanted = list(dict.fromkeys(list(columns) + ([label] if label else [])))
        missing = [c for c in wanted if c not in available]
        if missing:
            raise SchemaError(
                f"`columns` names columns that {self._ref_file} does not have: {missing}. "
                f"Its columns are {available}"
            )
        return [c for c in available if c in wanted]

    def _file_column(self, name: str, selected: list[str]) -> Column:
        arrow_type = self._ref_types[name]
        family = arrow_family(arrow_type)
        if name in self._overrides:
            column = self._overrides[name]
            if family not in CASTABLE[column.dtype]:
                raise SchemaError(
                    f"{self._ref_file}: column {name!r} has Arrow type {arrow_type}, which "
                    f"cannot be read as {column.dtype!r}. Leave it out with `columns=`."
                )
            return Column.of(name, column.dtype)
        try:
            return Column.of(name, infer_arrow_dtype(arrow_type, name))
        except SchemaError as e:
            others = [n for n in selected if n != name and self._readable(n)]
            raise SchemaError(
                f"{self._ref_file}: column {name!r} has Arrow type {arrow_type}, which tfstream "
                f"does not read as it is. {e} Or leave it out with columns={others}."
            ) from None

    def _readable(self, name: str) -> bool:
        """Whether column ``name`` has a dtype without help (or is given one in ``schema=``)."""
        if name not in self._ref_types or name in self._overrides:
            return True
        try:
            infer_arrow_dtype(self._ref_types[name])
        except SchemaError:
            return False
        return True

    def _partition_column(self, name: str, values: list[str | None]) -> Column:
        present = [v for v in values if v is not None]
        if name in self._overrides:
            dtype = self._overrides[name].dtype
        elif present and all(_INTEGER.match(v) for v in present):
            dtype = "int64"
        else:
            dtype = "string"
        for value in present:
            try:
                _parse_partition(value, dtype)
            except ValueError:
                raise SchemaError(
                    f"Partition column {name!r} has the value {value!r}, which is not a valid "
                    f"{dtype}. Set schema={{{name!r}: 'string'}}."
                ) from None
        return Column.of(name, dtype)

    # -- reading -----------------------------------------------------------------------------

    def _check_drift(self, path: str, footer) -> None:
        """Raises :class:`SchemaDriftError` when ``footer`` disagrees with the first file's."""
        if path == self._ref_file:
            return
        types = {field.name: field.type for field in footer}
        if self._columns_given:
            missing, extra = [n for n in self._file_columns if n not in types], []
        else:
            missing = [n for n in self._ref_types if n not in types]
            extra = [n for n in types if n not in self._ref_types]
        if missing or extra:
            hint = " Or read only the shared columns with `columns=`." if extra else ""
            raise SchemaDriftError(
                f"Schema drift: {path} has columns {list(types)}, but {self._ref_file} has "
                f"{list(self._ref_types)} (missing in {path}: {missing}; extra: {extra}). "
                f"All files of one source need the same columns.{hint}"
            )
        for name in self._file_columns:
            family, ref_family = arrow_family(types[name]), arrow_family(self._ref_types[name])
            dtype = self._schema[name].dtype
            if name in self._overrides or ref_family == "null":
                ok = family in CASTABLE[dtype]
            else:
                ok = family in (ref_family, "null")
            if not ok:
                both = {family, ref_family} <= CASTABLE["string"]
                hint = f" or read it as text in all files with schema={{{name!r}: 'string'}}"
                raise SchemaDriftError(
                    f"Schema drift: column {name!r} is {types[name]} in {path} but "
                    f"{self._ref_types[name]} in {self._ref_file}. Fix the data"
                    f"{hint if both else ''}."
                )

    def _convert(self, path: str, record: int, batches: list) -> Chunk:
        import pyarrow as pa

        n = sum(b.num_rows for b in batches)
        columns = {}
        for name, column in self._schema.items():
            if name in self._partitions[path]:
                columns[name] = _constant(column, self._partitions[path][name], n)
            else:
                parts = [_decoded(b.column(name)) for b in batches]
                array = parts[0] if len(parts) == 1 else pa.concat_arrays(parts)
                columns[name] = arrow_to_numpy(array, column)

        def locate(i: int) -> tuple[str, int, str]:
            offset = i
            for batch in batches:
                if offset < batch.num_rows:
                    row = batch.slice(offset, 1).to_pylist()[0]
                    row.update(self._partitions[path])
                    return path, record + i, json.dumps(row, default=str, ensure_ascii=False)
                offset -= batch.num_rows
            raise IndexError(i)

        return finish_chunk(self._ledger, columns, n, locate)


class _Batches:
    """The batches of one file as lists of zero-copy slices of exactly ``size`` rows (the last
    list of the file excepted); batches end at row-group boundaries, so they are cut and joined.

    A corrupt page ends the iteration; the error is kept in ``failure``. Row groups are read one
    ``iter_batches`` call each: over a whole file at once, pyarrow 26 held ~1.5x the file's
    decoded size (343 MB peak on a 232 MB file of 16 row groups) and was slower; per row group,
    memory stays at a few row groups (82 MB on the same file).
    """

    def __init__(self, pf, columns: list[str], size: int):
        self.pf, self.columns, self.size = pf, columns, size
        self.failure: Exception | None = None

    def __iter__(self) -> Iterator[list]:
        pending, rows = [], 0
        for batch in self._batches():
            while batch.num_rows:
                take = min(batch.num_rows, self.size - rows)
                pending.append(batch.slice(0, take))
                rows += take
                batch = batch.slice(take)
                if rows == self.size:
                    yield pending
                    pending, rows = [], 0
        if pending:
            yield pending

    def _batches(self):
        import pyarrow as pa

        for i in range(self.pf.num_row_groups):
            group = self.pf.iter_batches(self.size, row_groups=[i], columns=self.columns)
            while True:
                try:
                    batch = next(group, None)
                except (pa.ArrowException, OSError) as e:
                    self.failure = e
                    return
                if batch is None:
                    break
                yield batch


class _RowGroupBytes:
    """Bytes of a file's row groups (compressed) up to a row: whole row groups before it, and
    the share of the row group it lies in."""

    def __init__(self, metadata):
        groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
        self.rows = np.cumsum([0] + [g.num_rows for g in groups])
        self.sizes = np.cumsum(
            [0]
            + [sum(g.column(j).total_compressed_size for j in range(g.num_columns)) for g in groups]
        )
        self.reported = 0

    def until(self, row: int) -> int:
        """Bytes up to ``row`` not reported before."""
        i = int(np.searchsorted(self.rows, row, side="right")) - 1
        done = int(self.sizes[i])
        if i + 1 < len(self.rows):
            span = self.rows[i + 1] - self.rows[i]
            done += int((self.sizes[i + 1] - self.sizes[i]) * (row - self.rows[i]) / span)
        new, self.reported = done - self.reported, max(done, self.reported)
        return max(new, 0)


def _unreadable(error: Exception) -> str:
    return f"not a readable Parquet file ({error})"


def _length(chunk: Chunk) -> int:
    return len(next(iter(chunk.values()))) if chunk else 0


# -- paths and Hive partitions -----------------------------------------------------------------


def _expand(paths, storage_options=None) -> tuple[list[str], dict[str, dict[str, str | None]]]:
    """The files ``paths`` names, and each file's Hive partition values (``key=value``
    directories between the given directory, or a glob's fixed prefix, and the file)."""
    patterns = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not patterns:
        expand_paths(patterns, suffixes=_SUFFIXES, what="Parquet")  # raises: nothing given
    partitions: dict[str, dict[str, str | None]] = {}
    for pattern in map(os.fspath, patterns):
        base = _partition_base(pattern, storage_options)
        found = expand_paths(
            pattern, suffixes=_SUFFIXES, what="Parquet", storage_options=storage_options
        )
        for path in found:
            if path not in partitions:
                partitions[path] = _hive_values(path, base)
    return list(partitions), partitions
