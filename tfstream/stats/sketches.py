"""Mergeable sketches: quantiles of numeric columns and vocabularies of string columns.

Quantiles — Apache DataSketches KLL (Karnin, Lang & Liberty, "Optimal Quantile Approximation in
Streams", FOCS 2016), fed by a *level sampler* so that their cost stays flat on long streams:
level ``j`` takes each row with probability ``2**-j`` until it holds ``budget`` rows, then the
next level begins. Every row belongs to exactly one level and is kept with that level's rate, so
weighting level ``j``'s sketch by ``2**j`` (merging it into itself ``j`` times) estimates the
whole stream without bias. Sketches of equal levels merge as KLL sketches do, so the result
stays mergeable across chunks, files and processes. The sampling adds a rank error of about
``sqrt(1 / (6 * budget))`` (one standard deviation; 0.23% at the default 32,768 rows per level) to
KLL's own (about 1.3% for ``k=200`` at 99% confidence, so ~0.5% for one standard deviation), and
keeps the sketches' cost at ``budget`` rows per doubling of the stream; ``budget=None`` feeds
every value.

Vocabularies — exact counts (a ``Counter``) up to ``max_exact`` distinct tokens; beyond that a
DataSketches frequent-items sketch (Misra-Gries with error bounds) keeps the frequent tokens and
an HLL sketch estimates the distinct count.
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from collections.abc import Mapping

import numpy as np

__all__ = ["LevelSampler", "Quantiles", "Vocabulary"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


# -- quantiles -------------------------------------------------------------------------------


class LevelSampler:
    """Assigns the rows of a stream to levels (see the module docstring). One sampler serves
    every numeric column of a :class:`~tfstream.stats.Stats`, so all columns see the same rows.

    Args:
        budget: rows kept per level; ``None`` keeps every row at level 0.
        seed: seeds the sampling (a ``numpy`` PCG64 generator whose state is saved with the
            statistics, so an interrupted pass resumes with the same draws).
    """

    def __init__(self, budget: int | None = 32_768, seed: int | None = 0):
        if budget is not None and (isinstance(budget, bool) or int(budget) < 1):
            raise ValueError(
                f"`quantile_budget` must be a positive integer or None. Received: {budget!r}"
            )
        self.budget = None if budget is None else int(budget)
        self.level = 0
        self.level_rows = 0
        self.rng = np.random.default_rng(seed)

    def select(self, n: int) -> list[tuple[int, slice | np.ndarray]]:
        """``[(level, rows)]`` for the next ``n`` rows; ``rows`` indexes a chunk of ``n`` rows
        (a slice at level 0, where every row is kept)."""
        if self.budget is None:
            return [(0, slice(0, n))]
        out = []
        start = 0
        while start < n:
            room = self.budget - self.level_rows
            if room <= 0:
                self.level, self.level_rows = self.level + 1, 0
                continue
            if self.level == 0:
                end = min(n, start + room)
                out.append((0, slice(start, end)))
                self.level_rows += end - start
                start = end
                continue
            picked = np.flatnonzero(self.rng.random(n - start) < 0.5**self.level) + start
            if picked.size < room:
                out.append((self.level, picked))
                self.level_rows += picked.size
                break
            taken = picked[:room]
            out.append((self.level, taken))
            self.level, self.level_rows = self.level + 1, 0
            start = int(taken[-1]) + 1
        return out

    def merge_state(self, other: LevelSampler) -> None:
        """Continues at the higher level of the two (rows of equal levels add up)."""
        if other.level > self.level:
            self.level, self.level_rows = other.level, other.level_rows
        elif other.level == self.level:
            self.level_rows += other.level_rows

    def to_json(self) -> dict:
        return {
            "budget": self.budget,
            "level": self.level,
            "level_rows": self.level_rows,
            "rng": self.rng.bit_generator.state,
        }

    @classmethod
    def from_json(cls, doc: dict) -> LevelSampler:
        sampler = cls(doc["budget"], seed=0)
        sampler.level = int(doc["level"])
        sampler.level_rows = int(doc["level_rows"])
        sampler.rng.bit_generator.state = doc["rng"]
        return sampler


class Quantiles:
    """A KLL sketch per sampling level for one numeric column."""

    def __init__(self, k: int = 200):
        self.k = int(k)
        self.levels: list = []
        self._combined = None  # cached: each combination flips KLL's coins anew

    def update(self, level: int, values: np.ndarray) -> None:
        from datasketches import kll_doubles_sketch

        values = np.ascontiguousarray(values, dtype=np.float64)
        if not values.size:
            return
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(values.sum())
        if not finite:
            values = values[np.isfinite(values)]
        elif not values.flags.writeable:  # DataSketches takes writable C-ordered arrays only
            values = values.copy()
        while len(self.levels) <= level:
            self.levels.append(kll_doubles_sketch(self.k))
        self.levels[level].update(values)
        self._combined = None

    def merge(self, other: Quantiles) -> None:
        from datasketches import kll_doubles_sketch

        for level, sketch in enumerate(other.levels):
            if level < len(self.levels):
                self.levels[level].merge(sketch)
            else:
                self.levels.append(kll_doubles_sketch.deserialize(sketch.serialize()))
        self._combined = None

    def combined(self):
        """One KLL sketch of the whole stream: level ``j`` weighted by ``2**j``; None when
        empty."""
        from datasketches import kll_doubles_sketch

        if self._combined is not None:
            return self._combined
        out = None
        for level, sketch in enumerate(self.levels):
            if sketch.is_empty():
                continue
            weighted = kll_doubles_sketch.deserialize(sketch.serialize())
            for _ in range(level):  # doubles every item's weight
                weighted.merge(kll_doubles_sketch.deserialize(weighted.serialize()))
            if out is None:
                out = weighted
            else:
                out.merge(weighted)
        self._combined = out
        return out

    @property
    def normalized_rank_error(self) -> float:
        from datasketches import kll_doubles_sketch

        return kll_doubles_sketch.get_normalized_rank_error(self.k, False)

    def to_json(self) -> dict:
        return {"k": self.k, "levels": [_b64(s.serialize()) for s in self.levels]}

    @classmethod
    def from_json(cls, doc: dict) -> Quantiles:
        from datasketches import kll_doubles_sketch

        q = cls(doc["k"])
        q.levels = [kll_doubles_sketch.deserialize(_unb64(s)) for s in doc["levels"]]
        return q

    def copy(self) -> Quantiles:
        return Quantiles.from_json(self.to_json())


# -- vocabularies ----------------------------------------------------------------------------


class Vocabulary:
    """Token counts of one string column: exact up to ``max_exact`` distinct tokens, then a
    frequent-items sketch (``lg_max_k``) plus an HLL distinct-count sketch (``hll_lg_k``)."""

    def __init__(self, max_exact: int = 100_000, lg_max_k: int = 14, hll_lg_k: int = 14):
        self.max_exact = int(max_exact)
        self.lg_max_k = int(lg_max_k)
        self.hll_lg_k = int(hll_lg_k)
        self.counts: Counter | None = Counter()
        self.frequent = None  # datasketches.frequent_strings_sketch beyond max_exact
        self.distinct_sketch = None  # datasketches.hll_sketch beyond max_exact

    @property
    def exact(self) -> bool:
        return self.counts is not None

    def update(self, counts: Mapping[str, int]) -> None:
        """Adds ``{token: count}`` (e.g. the ``Counter`` of a chunk)."""
        if self.counts is not None:
            self.counts.update(counts)
            if len(self.counts) > self.max_exact:
                self._overflow()
        else:
            self._add_counts(counts)

    def _overflow(self) -> None:
        from datasketches import frequent_strings_sketch, hll_sketch

        counts, self.counts = self.counts, None
        self.frequent = frequent_strings_sketch(self.lg_max_k)
        self.distinct_sketch = hll_sketch(self.hll_lg_k)
        self._add_counts(counts)

    def _add_counts(self, counts: Mapping[str, int]) -> None:
        for token, count in counts.items():
            self.frequent.update(token, count)
            self.distinct_sketch.update(token)

    def merge(self, other: Vocabulary) -> None:
        from datasketches import frequent_strings_sketch, hll_sketch, hll_union

        if self.counts is not None and other.counts is not None:
            self.counts.update(other.counts)
            if len(self.counts) > self.max_exact:
                self._overflow()
            return
        if self.counts is not None:
            self._overflow()
        if other.counts is not None:
            self._add_counts(other.counts)
            return
        self.frequent.merge(frequent_strings_sketch.deserialize(other.frequent.serialize()))
        union = hll_union(self.hll_lg_k)
        union.update(self.distinct_sketch)
        union.update(hll_sketch.deserialize(other.distinct_sketch.serialize_compact()))
        self.distinct_sketch = union.get_result()

    @property
    def distinct(self) -> int:
        """Distinct tokens: exact, or the HLL estimate beyond ``max_exact``."""
        if self.counts is not None:
            return len(self.counts)
        return int(round(self.distinct_sketch.get_estimate()))

    def most_common(self) -> list[tuple[str, int]]:
        """``[(token, count)]`` by count (descending), ties by token; beyond ``max_exact`` the
        frequent tokens with their estimated counts (no false negatives above the sketch's
        error bound)."""
        if self.counts is not None:
            items = self.counts.items()
        else:
            from datasketches import frequent_items_error_type

            found = self.frequent.get_frequent_items(frequent_items_error_type.NO_FALSE_NEGATIVES)
            items = [(token, int(estimate)) for token, estimate, _, _ in found]
        return sorted(items, key=lambda item: (-item[1], item[0]))

    @property
    def count_error(self) -> int:
        """Upper bound of the error of each count (0 while exact)."""
        if self.counts is not None:
            return 0
        return int(
            math.ceil(
                self.frequent.get_epsilon_for_lg_size(self.lg_max_k) * self.frequent.total_weight
            )
        )

    def to_json(self) -> dict:
        doc = {"max_exact": self.max_exact, "lg_max_k": self.lg_max_k, "hll_lg_k": self.hll_lg_k}
        if self.counts is not None:
            doc["counts"] = dict(self.most_common())
        else:
            doc["frequent"] = _b64(self.frequent.serialize())
            doc["distinct"] = _b64(self.distinct_sketch.serialize_compact())
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> Vocabulary:
        from datasketches import frequent_strings_sketch, hll_sketch

        v = cls(doc["max_exact"], doc["lg_max_k"], doc["hll_lg_k"])
        if "counts" in doc:
            v.counts = Counter({str(k): int(c) for k, c in doc["counts"].items()})
        else:
            v.counts = None
            v.frequent = frequent_strings_sketch.deserialize(_unb64(doc["frequent"]))
            v.distinct_sketch = hll_sketch.deserialize(_unb64(doc["distinct"]))
        return v

    def copy(self) -> Vocabulary:
        return Vocabulary.from_json(self.to_json())
