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
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tfstream.sources.atomic import write_bytes
from tfstream.sources.files import is_url, open_input, redact
from tfstream.stats import moments
from tfstream.stats.sketches import LevelSampler, Quantiles, Vocabulary

__all__ = ["NumericStats", "Stats", "StatsOptions", "StringStats", "FORMAT", "VERSION"]

FORMAT = "tfstream.stats"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class StatsOptions:
    """Rare knobs of the statistics.

    Args:
        kll_k: KLL sketch size; normalized rank error ~1.3% at 200, ~0.65% at 400.
        quantile_budget: rows per sampling level fed to the quantile sketches (see
            :mod:`tfstream.stats.sketches`); ``None`` feeds every value.
        max_exact_vocabulary: distinct tokens of a string column counted exactly; beyond, a
            frequent-items sketch and an HLL distinct count take over.
        frequent_lg_max_k: log2 of the frequent-items sketch's map size.
        hll_lg_k: log2 of the HLL sketch's register count (distinct-count accuracy).
        seed: seeds the quantile level sampler.

    :meth:`Stats.merge` requires equal options (but for ``seed``): sketches of different sizes
    would merge into one with the larger error of the two while reporting the other's.
    """

    kll_k: int = 200
    quantile_budget: int | None = 32_768
    max_exact_vocabulary: int = 100_000
    frequent_lg_max_k: int = 14
    hll_lg_k: int = 14
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class SampleInfo:
    """How the rows of a :class:`Stats` were chosen: ``method`` is ``"full"``, ``"fraction"``,
    ``"reservoir"`` or ``"head"``; ``size`` the rows sampled; ``population`` the rows they were
    drawn from (None when the pass stopped early, as ``head`` does)."""

    method: str = "full"
    size: int = 0
    population: int | None = 0
    parameter: float | None = None

    @property
    def fraction(self) -> float | None:
        if not self.population:
            return None
        return self.size / self.population


# -- per-column state ------------------------------------------------------------------------


class _Numeric:
    kind = "numeric"

    def __init__(self, dtype: str, options: StatsOptions):
        self.dtype = dtype
        self.inferred = False  # the dtype came from the values: later chunks may widen it
        self.moments = moments.EMPTY
        self.quantiles = Quantiles(options.kll_k)

    def to_json(self) -> dict:
        m = self.moments
        doc = {
            "kind": self.kind,
            "dtype": self.dtype,
            "moments": {k: _json_float(v) for k, v in m._asdict().items()},
            "quantiles": self.quantiles.to_json(),
        }
        if self.inferred:
            doc["inferred"] = True
        return doc

    @classmethod
    def from_json(cls, doc: dict, options: StatsOptions) -> _Numeric:
        col = cls(doc["dtype"], options)
        col.inferred = bool(doc.get("inferred", False))
        fields = {k: _from_json_float(v) for k, v in doc["moments"].items()}
        for key in ("count", "nan_count", "inf_count"):
            fields[key] = int(fields[key])
        col.moments = moments.Moments(**fields)
        col.quantiles = Quantiles.from_json(doc["quantiles"])
        return col


class _String:
    kind = "string"

    def __init__(self, dtype: str, options: StatsOptions):
        self.dtype = dtype
        self.missing = 0
        self.vocabulary = Vocabulary(
            options.max_exact_vocabulary, options.frequent_lg_max_k, options.hll_lg_k
        )

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "dtype": self.dtype,
            "missing": self.missing,
            "vocabulary": self.vocabulary.to_json(),
        }

    @classmethod
    def from_json(cls, doc: dict, options: StatsOptions) -> _String:
        col = cls(doc["dtype"], options)
        col.missing = int(doc["missing"])
        col.vocabulary = Vocabulary.from_json(doc["vocabulary"])
        return col


_KINDS = {"numeric": _Numeric, "string": _String}


# -- public column views ---------------------------------------------------------------------


class NumericStats:
    """Statistics of one numeric column (a read-only view of a :class:`Stats`)."""

    kind = "numeric"

    def __init__(self, name: str, state: _Numeric, sample: SampleInfo):
        self.name = name
        self.dtype = state.dtype
        self._m = state.moments
        self._quantiles = state.quantiles
        self._sample = sample

    @property
    def count(self) -> int:
        """Finite values (those in the mean and variance)."""
        return self._m.count

    @property
    def nan_count(self) -> int:
        return self._m.nan_count

    @property
    def inf_count(self) -> int:
        return self._m.inf_count

    @property
    def mean(self) -> float:
        """The mean of the finite values. For integer columns the differences from the shift
        (a value of the column) are taken in integers, so int64 values beyond ``2**53`` are not
        rounded before they are summed; the mean is rounded to float64 at the end."""
        return self._m.location

    @property
    def variance(self) -> float:
        """Population variance (divides by ``count``); see :attr:`sample_variance`."""
        return self._m.variance(0)

    @property
    def sample_variance(self) -> float:
        """Unbiased variance (divides by ``count - 1``)."""
        return self._m.variance(1)

    @property
    def std(self) -> float:
        return math.sqrt(self.variance) if self._m.count else math.nan

    @property
    def min(self) -> float:
        """The smallest finite value, as a float64: exact up to ``2**53`` in magnitude; an
        int64 or uint64 beyond is the nearest float64 (relative error at most ``2**-53``, e.g.
        a multiple of 256 near ``2**60``). The saved JSON keeps the exact integer."""
        return float(self._m.min)

    @property
    def max(self) -> float:
        """The largest finite value, as a float64 (precision as :attr:`min`)."""
        return float(self._m.max)

    @property
    def mean_stderr(self) -> float:
        """Standard error of :attr:`mean` as an estimate of the mean of all rows: 0 after a full
        pass; after a sample, ``sqrt(s**2 / n * (1 - n/N))`` (no finite-population correction
        when the population is unknown)."""
        if self._sample.method == "full":
            return 0.0 if self._m.count else math.nan
        n = self._m.count
        if n < 2:
            return math.nan
        fraction = self._sample.fraction
        correction = 1.0 - fraction if fraction is not None else 1.0
        return math.sqrt(self.sample_variance / n * max(correction, 0.0))

    def quantiles(self, q: float | Sequence[float]):
        """Approximate quantiles (KLL sketch) for ``q`` in [0, 1]; a float for a float, a list
        for a list. NaN when the column has no finite value."""
        qs = [q] if np.isscalar(q) else list(q)
        for value in qs:
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"quantiles must lie in [0, 1]. Received: {value!r}")
        sketch = self._quantiles.combined()
        out = [math.nan] * len(qs) if sketch is None else list(sketch.get_quantiles(qs))
        return out[0] if np.isscalar(q) else out

    @property
    def quantile_rank_error(self) -> float:
        """KLL's normalized rank error bound (99% confidence) for this column's sketch."""
        return self._quantiles.normalized_rank_error

    def __repr__(self) -> str:
        return (
            f"NumericStats({self.name!r}, count={self.count}, mean={self.mean:.6g}, "
            f"std={self.std:.6g}, min={self.min:.6g}, max={self.max:.6g}, "
            f"nan_count={self.nan_count}, inf_count={self.inf_count})"
        )


class StringStats:
    """Statistics of one string column (a read-only view of a :class:`Stats`)."""

    kind = "string"

    def __init__(self, name: str, state: _String):
        self.name = name
        self.dtype = state.dtype
        self._vocab = state.vocabulary
        self.missing_count = state.missing

    @property
    def count(self) -> int:
        """Present (non-missing) values."""
        return self._vocab_total()

    @property
    def nan_count(self) -> int:
        """Missing values (empty strings, None, NaN), as for numeric columns."""
        return self.missing_count

    @property
    def distinct(self) -> int:
        """Distinct tokens; exact while :attr:`exact`, else an HLL estimate."""
        return self._vocab.distinct

    @property
    def exact(self) -> bool:
        """True while every token is counted exactly."""
        return self._vocab.exact

    def frequencies(self) -> list[tuple[str, int]]:
        """``[(token, count)]``, most frequent first (ties by token)."""
        return self._vocab.most_common()

    def vocabulary(self, max_tokens: int | None = None, min_frequency: int = 1) -> list[str]:
        """Tokens seen at least ``min_frequency`` times, most frequent first, at most
        ``max_tokens`` of them."""
        if max_tokens is not None and max_tokens < 0:
            raise ValueError(f"`max_tokens` must be >= 0 or None. Received: {max_tokens!r}")
        tokens = [t for t, c in self._vocab.most_common() if c >= min_frequency]
        return tokens if max_tokens is None else tokens[:max_tokens]

    def _vocab_total(self) -> int:
        if self._vocab.exact:
            return sum(self._vocab.counts.values())
        return int(self._vocab.frequent.total_weight)

    def __repr__(self) -> str:
        exact = "" if self.exact else " (estimated)"
        return (
            f"StringStats({self.name!r}, count={self.count}, missing={self.missing_count}, "
            f"distinct={self.distinct}{exact})"
        )


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


def _new_column(name: str, spec, options: StatsOptions):
    from tfstream.sources.schema import DTYPES, Column

    if isinstance(spec, Column):
        kind, dtype = spec.kind, spec.dtype
    elif spec in ("numeric", "string"):
        kind, dtype = spec, "float64" if spec == "numeric" else "string"
    elif spec in DTYPES:
        kind, dtype = DTYPES[spec], spec
    else:
        raise ValueError(
            f"Column {name!r}: expected 'numeric', 'string' or a dtype "
            f"{sorted(DTYPES)}. Received: {spec!r}"
        )
    return _KINDS[kind](dtype, options)


def _kind_of(name: str, array: np.ndarray) -> str:
    """The dtype a column of ``array``'s values gets when no schema is given."""
    kind = array.dtype.kind
    if kind == "f":
        return "float64" if array.dtype.itemsize > 4 else "float32"
    if kind in "iub":
        return "int64"
    if kind in "OUS":
        return "string"
    raise TypeError(f"Column {name!r}: cannot compute statistics of {array.dtype} values.")


def _pop_missing(counts: Counter) -> int:
    """Removes missing tokens ("", None, NaN) from ``counts`` and returns how many there were;
    bytes are decoded and other non-strings stringified."""
    missing = counts.pop("", 0) + counts.pop(None, 0)
    odd = [k for k in counts if not isinstance(k, str)]
    for key in odd:
        count = counts.pop(key)
        if isinstance(key, float) and math.isnan(key):
            missing += count
            continue
        text = key.decode("utf-8", errors="replace") if isinstance(key, bytes) else str(key)
        if text:
            counts[text] += count
        else:
            missing += count
    return missing


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


def _json_float(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _from_json_float(value):
    if value is None:
        return math.nan
    if value in ("inf", "-inf"):
        return float(value)
    return value
