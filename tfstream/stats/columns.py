"""Per-column state of a :class:`~tfstream.stats.Stats` and its read-only views.

``_Numeric`` (float64 moments and a quantile sketch) and ``_String`` (missing count and a
vocabulary) are the mutable state a :class:`~tfstream.stats.Stats` keeps per column and
saves as JSON; :class:`NumericStats` and :class:`StringStats` are what ``stats["col"]``
returns.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from tfstream.stats import moments
from tfstream.stats.options import SampleInfo, StatsOptions
from tfstream.stats.sketches import Quantiles, Vocabulary

__all__ = ["NumericStats", "StringStats"]


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
