"""Statistics: exact, mergeable, resumable column statistics and the Keras layers built from
them (see :class:`Stats` and :func:`compute_stats`)."""

from tfstream.stats.compute import Head, Reservoir, compute_stats
from tfstream.stats.moments import Moments
from tfstream.stats.stats import NumericStats, SampleInfo, Stats, StatsOptions, StringStats

__all__ = [
    "Head",
    "Moments",
    "NumericStats",
    "Reservoir",
    "SampleInfo",
    "Stats",
    "StatsOptions",
    "StringStats",
    "compute_stats",
]
