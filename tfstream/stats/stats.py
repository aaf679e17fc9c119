"""``Stats``: exact, mergeable, resumable statistics of every column of a stream.

``fit`` is ``reset + partial_fit``: a :class:`Stats` starts empty, takes chunks with
:meth:`Stats.partial_fit`, merges with another (:meth:`Stats.merge`, associative and commutative)
and saves to / loads from versioned JSON (no pickle), locally or at an fsspec URL, so a pass can
be split over processes or interrupted and resumed. :func:`compute_stats` runs one pass over a
source, optionally on a sample.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tfstream.sources.atomic import write_bytes
from tfstream.sources.files import is_url, open_input, redact
from tfstream.stats import moments
from tfstream.stats.columns import (
    _KINDS,
    NumericStats,
    StringStats,
    _kind_of,
    _new_column,
    _Numeric,
    _pop_missing,
    _String,
)
from tfstream.stats.options import SampleInfo, StatsOptions
from tfstream.stats.sketches import LevelSampler

__all__ = ["NumericStats", "Stats", "StatsOptions", "StringStats", "FORMAT", "VERSION"]

FORMAT = "tfstream.stats"
VERSION = 1


# -- Stats -----------------------------------------------------------------------------------


class Stats:
    """Statistics of every column of a stream: exact float64 moments, quantile sketches and
    vocabularies, mergeable and resumable.

    Args:
        schema: ``{column: "numeric" | "string" | dtype | Column}``, or None to take the
            columns (and kinds) from the first :meth:`partial_fit`.
        label: the label column (statistics are kept for it; :meth:`preprocessor` leaves it
            out).
        options: a :class:`StatsOptions`.

    Example:

    >>> import numpy as np, tfstream as ts
    >>> stats = ts.Stats()
    >>> stats = stats.partial_fit({"x": np.array([1.0, 2.0, np.nan])})
    >>> stats = stats.partial_fit({"x": np.array([3.0])})
    >>> stats["x"].mean, stats["x"].nan_count
    (2.0, 1)
    """

    def __init__(
        self,
        schema: Mapping[str, object] | None = None,
        *,
        label: str | None = None,
        options: StatsOptions | None = None,
    ):
        self.options = options or StatsOptions()
        self.label = label
        self.rows = 0
        self.sample = SampleInfo()
        self._columns: dict[str, _Numeric | _String] = {}
        self._sampler = LevelSampler(self.options.quantile_budget, self.options.seed)
        if schema is not None:
            self._columns = {
                name: _new_column(name, spec, self.options) for name, spec in schema.items()
            }
            if label is not None and label not in self._columns:
                raise ValueError(
                    f"`label` must name a column of the schema. Received: label={label!r}; "
                    f"the columns are {list(self._columns)}"
                )

    # -- access ------------------------------------------------------------------------------

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    @property
    def feature_names(self) -> list[str]:
        return [name for name in self._columns if name != self.label]

    @property
    def schema(self) -> dict[str, str]:
        """``{column: dtype}``."""
        return {name: col.dtype for name, col in self._columns.items()}

    def __contains__(self, name: str) -> bool:
        return name in self._columns

    def __getitem__(self, name: str) -> NumericStats | StringStats:
        if name not in self._columns:
            raise KeyError(
                f"No statistics for column {name!r}. The columns are {list(self._columns)}"
            )
        col = self._columns[name]
        if isinstance(col, _Numeric):
            return NumericStats(name, col, self.sample)
        return StringStats(name, col)

    def __iter__(self):
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    # -- fitting -----------------------------------------------------------------------------

    def partial_fit(self, features: Mapping[str, Iterable]) -> Stats:
        """Adds a chunk: ``{column: array}`` of equal lengths. Returns ``self``.

        The first chunk fixes the columns when the :class:`Stats` was made without a schema;
        later chunks must hold exactly those columns.
        """
        if not isinstance(features, Mapping):
            raise TypeError(
                "`partial_fit` takes a dict of columns {name: array}. Received: "
                f"{type(features).__name__}"
            )
        arrays = {name: np.asarray(values) for name, values in features.items()}
        if not self._columns:
            if not arrays:
                raise ValueError("`partial_fit` received no columns.")
            self._columns = {
                name: _new_column(name, _kind_of(name, a), self.options)
                for name, a in arrays.items()
            }
            for col in self._columns.values():
                if isinstance(col, _Numeric):
                    col.inferred = True
        self._check_columns(arrays)
        lengths = {len(a) for a in arrays.values()}
        if any(a.ndim != 1 for a in arrays.values()) or len(lengths) != 1:
            shapes = {name: a.shape for name, a in arrays.items()}
            raise ValueError(f"`partial_fit` needs 1-D columns of one length. Received {shapes}")
        n = lengths.pop()
        if n == 0:
            return self
        levels = self._sampler.select(n)
        for name, col in self._columns.items():
            x = arrays[name]
            if isinstance(col, _Numeric):
                if x.dtype.kind not in "fiub":
                    raise TypeError(
                        f"Column {name!r} is numeric, but the chunk holds {x.dtype} values."
                    )
                if col.inferred and _kind_of(name, x) != col.dtype:
                    # int64 then floats (pandas chunks whose first had no NaN), or float32
                    # then float64: the preprocessor's input must take every value seen.
                    col.dtype = "float64"
                col.moments = moments.update(col.moments, x)
                for level, rows in levels:
                    col.quantiles.update(level, x[rows])
            else:
                counts = Counter(x.tolist() if x.dtype.kind != "O" else x)
                col.missing += _pop_missing(counts)
                col.vocabulary.update(counts)
        self.rows += n
        if self.sample.method == "full":
            self.sample = SampleInfo("full", self.rows, self.rows)
        return self

    def _check_columns(self, arrays: Mapping[str, np.ndarray]) -> None:
        missing = [name for name in self._columns if name not in arrays]
        extra = [name for name in arrays if name not in self._columns]
        if missing or extra:
            raise ValueError(
                f"The chunk's columns do not match the statistics' columns "
                f"{list(self._columns)}: missing {missing}, not in the schema {extra}. "
                "Pass exactly these columns, or start a Stats with the schema you need."
            )

    def merge(self, other: Stats) -> Stats:
        """A new :class:`Stats` of both streams; ``self`` and ``other`` are unchanged. Exact for
        counts and moments in any order (associative up to rounding, ~1e-16; commutative bit for
        bit); sketches merge as DataSketches sketches do.

        Both must have the same columns, label and :class:`StatsOptions`. The options of a side
        without rows do not count (``Stats()`` can start a reduction over shards computed with
        other options); seeds may differ (the merged options then have ``seed=None``).

        Raises:
            ValueError: the columns, labels or options differ.
        """
        if not isinstance(other, Stats):
            raise TypeError(f"`merge` takes a Stats. Received: {type(other).__name__}")
        mine = {n: c.kind for n, c in self._columns.items()}
        theirs = {n: c.kind for n, c in other._columns.items()}
        if mine and theirs and mine != theirs:
            raise ValueError(
                "Cannot merge statistics of different schemas: "
                f"{_schema_diff(mine, theirs)}. Compute both over the same columns."
            )
        if self.label is not None and other.label is not None and self.label != other.label:
            raise ValueError(
                f"Cannot merge statistics with different labels: {self.label!r} and "
                f"{other.label!r}."
            )
        options = _merge_options(self, other)
        # Start from a side with rows: its sketches have the merged sizes.
        first, second = (other, self) if self.rows == 0 < other.rows else (self, other)
        out = Stats.from_json({**first.to_json(), "options": dataclasses.asdict(options)})
        if not out._columns:
            out._columns = Stats.from_json(second.to_json())._columns
        elif second._columns:
            for name, col in out._columns.items():
                theirs_col = second._columns[name]
                if isinstance(col, _Numeric):
                    inferred = col.inferred or theirs_col.inferred
                    if inferred and col.dtype != theirs_col.dtype:
                        col.dtype = "float64"  # as partial_fit widens (commutes)
                    col.inferred = inferred
                    col.moments = moments.merge(col.moments, theirs_col.moments)
                    col.quantiles.merge(theirs_col.quantiles)
                else:
                    col.missing += theirs_col.missing
                    col.vocabulary.merge(theirs_col.vocabulary.copy())
        out.label = self.label if self.label is not None else other.label
        out.rows = self.rows + other.rows
        out.sample = _merge_samples(self.sample, other.sample)
        out._sampler.merge_state(second._sampler)
        return out

    # -- persistence -------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "label": self.label,
            "rows": self.rows,
            "sample": dataclasses.asdict(self.sample),
            "options": dataclasses.asdict(self.options),
            "sampler": self._sampler.to_json(),
            "columns": {name: col.to_json() for name, col in self._columns.items()},
        }

    @classmethod
    def from_json(cls, doc: Mapping) -> Stats:
        if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
            raise ValueError(
                f"Not a tfstream statistics document (its 'format' is not {FORMAT!r})."
            )
        if doc.get("version") != VERSION:
            raise ValueError(
                f"Statistics format version {doc.get('version')!r} is not supported by this "
                f"tfstream (it reads version {VERSION}). Recompute the statistics."
            )
        options = StatsOptions(**doc["options"])
        stats = cls(label=doc["label"], options=options)
        stats.rows = int(doc["rows"])
        stats.sample = SampleInfo(**doc["sample"])
        stats._sampler = LevelSampler.from_json(doc["sampler"])
        stats._columns = {
            name: _KINDS[col["kind"]].from_json(col, options)
            for name, col in doc["columns"].items()
        }
        return stats

    def save(
        self, path: str | os.PathLike, *, storage_options: Mapping[str, Any] | None = None
    ) -> str:
        """Writes the statistics as JSON, atomically: a crash never leaves a half-written file
        under ``path``.

        Args:
            path: a local path (a temporary file in the same directory, fsync'ed and renamed
                into place) or an fsspec URL (``gs://bucket/stats.json``, ``memory://...``:
                uploaded under a hidden temporary key next to it, then moved into place; on
                object stores a server-side copy, so the object appears whole or not at all).
            storage_options: options of the URL's fsspec filesystem (credentials, endpoint).

        Returns:
            ``path`` (a URL without its credentials).
        """
        path = os.fspath(path)
        data = json.dumps(self.to_json(), indent=1, allow_nan=False).encode("utf-8")
        write_bytes(path, data, storage_options)
        return redact(path) if is_url(path) else path

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, storage_options: Mapping[str, Any] | None = None
    ) -> Stats:
        """Reads statistics written by :meth:`save` from a local path or an fsspec URL
        (``storage_options`` go to its filesystem).

        Raises:
            FileNotFoundError: nothing is at ``path``.
            ValueError: ``path`` holds no tfstream statistics of this version.
        """
        path = os.fspath(path)
        with open_input(path, storage_options) as f:
            try:
                doc = json.load(f)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ValueError(f"{redact(path)}: not valid JSON ({e}).") from None
        try:
            return cls.from_json(doc)
        except (KeyError, TypeError) as e:
            raise ValueError(f"{redact(path)}: malformed statistics document ({e!r}).") from None

    # -- Keras ---------------------------------------------------------------------------------

    def normalization(self, columns: str | Sequence[str] | None = None):
        """A float32 ``keras.layers.Normalization(mean=, variance=)`` for ``columns`` (default:
        every numeric feature), in that order; it expects those columns stacked on the last
        axis. Stays float32 under a mixed-precision global policy."""
        from tfstream.stats.keras import normalization

        return normalization(self, columns)

    def rescaling(self, columns: str | Sequence[str] | None = None):
        """A float32 ``keras.layers.Rescaling`` mapping ``[min, max]`` of each column to
        ``[0, 1]`` (min-max scaling)."""
        from tfstream.stats.keras import rescaling

        return rescaling(self, columns)

    def preprocessor(self, columns: Sequence[str] | None = None, **kwargs):
        """A Keras model from the raw feature dict sources yield to one float32 tensor; see
        :func:`tfstream.stats.keras.preprocessor` for the options."""
        from tfstream.stats.keras import preprocessor

        return preprocessor(self, columns, **kwargs)

    def summary(self, columns: Sequence[str] | None = None) -> str:
        """A readable table of ``columns`` (default: every column)."""
        from tfstream.stats.report import summary

        return summary(self, columns)

    def __repr__(self) -> str:
        return (
            f"Stats(columns={len(self._columns)}, rows={self.rows:,}, sample={self.sample.method})"
        )


# -- helpers ---------------------------------------------------------------------------------


def _merge_options(a: Stats, b: Stats) -> StatsOptions:
    """The options of ``a.merge(b)``: those of the side with rows, or equal ones (seeds may
    differ: each side sampled its rows at the right rates, so they merge; the seed is then
    None)."""
    if a.options == b.options:
        return a.options
    if (a.rows == 0) != (b.rows == 0):
        return a.options if a.rows else b.options
    mine, theirs = dataclasses.asdict(a.options), dataclasses.asdict(b.options)
    differ = [k for k in mine if k != "seed" and mine[k] != theirs[k]]
    if differ:
        listed = ", ".join(f"{k} ({mine[k]!r} vs {theirs[k]!r})" for k in differ)
        raise ValueError(
            f"Cannot merge statistics computed with different options: {listed}; the first "
            f"has {a.options}, the second {b.options}. Their sketches differ in size and error; "
            "compute both with the same StatsOptions (only `seed` may differ)."
        )
    return dataclasses.replace(a.options, seed=None)


def _merge_samples(a: SampleInfo, b: SampleInfo) -> SampleInfo:
    if a.size == 0:
        return b
    if b.size == 0:
        return a
    method = a.method if a.method == b.method else "mixed"
    population = (
        None if a.population is None or b.population is None else (a.population + b.population)
    )
    parameter = a.parameter if a.parameter == b.parameter else None
    return SampleInfo(method, a.size + b.size, population, parameter)


def _schema_diff(a: Mapping[str, str], b: Mapping[str, str]) -> str:
    only_a = [n for n in a if n not in b]
    only_b = [n for n in b if n not in a]
    kinds = [f"{n} ({a[n]} vs {b[n]})" for n in a if n in b and a[n] != b[n]]
    parts = []
    if only_a:
        parts.append(f"only in the first: {only_a}")
    if only_b:
        parts.append(f"only in the second: {only_b}")
    if kinds:
        parts.append(f"different kinds: {kinds}")
    return "; ".join(parts)
