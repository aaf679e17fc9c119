"""Settings and sampling record of a :class:`~tfstream.stats.Stats`.

:class:`StatsOptions` holds the rare knobs (sketch sizes, vocabulary cap, sampler seed);
:class:`SampleInfo` records how the rows of a :class:`~tfstream.stats.Stats` were chosen.
"""

from __future__ import annotations

import dataclasses

__all__ = ["SampleInfo", "StatsOptions"]


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
