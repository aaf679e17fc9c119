"""``compute_stats``: one streaming pass over a source, in full or on a sample."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np

from tfstream.sources.readahead import read_ahead
from tfstream.stats.stats import SampleInfo, Stats, StatsOptions

__all__ = ["Head", "Reservoir", "compute_stats"]


@dataclasses.dataclass(frozen=True)
class Reservoir:
    """``sample=ts.Reservoir(k)``: a uniform sample of exactly ``k`` rows (all of them when the
    source holds fewer), drawn in one pass with memory for ``k`` rows (Vitter's algorithm R,
    vectorised per chunk)."""

    k: int
    seed: int | None = 0

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ValueError(f"`Reservoir(k)` needs a positive integer k. Received: k={self.k!r}")


@dataclasses.dataclass(frozen=True)
class Head:
    """``sample=ts.Head(n)`` (or ``sample=n``, an int): the first ``n`` rows; reading stops
    there. Fast, but only as representative as the order of the data."""

    n: int

    def __post_init__(self):
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise ValueError(f"`Head(n)` needs a positive integer n. Received: n={self.n!r}")


def compute_stats(
    source,
    *,
    columns: Sequence[str] | None = None,
    sample=None,
    progress: bool = True,
    options: StatsOptions | None = None,
    seed: int | None = 0,
) -> Stats:
    """Statistics of every column of ``source`` in one streaming pass.

    Args:
        source: a tfstream source (``ts.csv(...)``, ``ts.parquet(...)``, ...).
        columns: the columns to describe (default: all, the label included).
        sample: None (every row); a fraction in (0, 1) (each row kept with that probability,
            seeded by ``seed``); ``ts.Reservoir(k)`` (a uniform sample of k rows); or an int /
            ``ts.Head(n)`` (the first n rows). A sampled result reports its size and each
            mean's standard error (``stats[col].mean_stderr``).
        progress: show a progress bar (tqdm; terminals and notebooks) by bytes when the
            source knows its size, else by rows.
        options: a :class:`StatsOptions` (sketch sizes, vocabulary cap).
        seed: seeds the row sampling.

    Returns:
        A :class:`Stats`. Rows the source rejects (``on_error="skip"``) are not in it; see
        ``source.report()``.

    Example:

    >>> import tfstream as ts
    >>> stats = ts.compute_stats(ts.csv("data/*.csv", label="label"))   # doctest: +SKIP
    >>> stats["price"].mean, stats["price"].quantiles([0.5, 0.99])       # doctest: +SKIP
    """
    from tfstream.sources.base import Source

    if not isinstance(source, Source):
        raise TypeError(
            "`compute_stats` takes a tfstream source such as ts.csv(...) or "
            f"ts.from_pandas(...). Received: {type(source).__name__}. For chunks you hold "
            "yourself, call Stats().partial_fit(chunk) on each."
        )
    names = _columns(source, columns)
    schema = {name: source.schema[name] for name in names}
    label = source.label if source.label in schema else None
    stats = Stats(schema, label=label, options=options)
    sampler = _sampler(sample, seed)
    # A head reads only its first rows: its bar counts rows. Every other pass reads every
    # byte (a sample is drawn from all rows), so its bar goes by bytes when sizes are known.
    head = isinstance(sampler, _Head)
    chunks = _progress(source, progress, by_bytes=not head)
    if not head and source.reads_in_any_thread:
        # The next chunk is parsed while this one is described. (Not for a head: it would
        # read, and count in source.report(), a chunk past the rows it needs.)
        chunks = read_ahead(chunks)
    with contextlib.closing(chunks):  # an error below stops the reading thread at once
        for chunk in sampler(_project(chunks, names)):
            stats.partial_fit(chunk)
    if sample is not None:
        population = sampler.population()
        stats.sample = SampleInfo(sampler.method, stats.rows, population, sampler.parameter)
    return stats


def _columns(source, columns) -> list[str]:
    if columns is None:
        return list(source.schema)
    if isinstance(columns, str):
        columns = [columns]
    missing = [c for c in columns if c not in source.schema]
    if missing:
        raise ValueError(
            f"`columns` names columns the source does not have: {missing}. Its columns are "
            f"{list(source.schema)}"
        )
    return list(dict.fromkeys(columns))


def _project(chunks, names) -> Iterator[dict]:
    for chunk in chunks:
        yield {name: chunk[name] for name in names}


def _length(chunk) -> int:
    return len(next(iter(chunk.values())))


# -- samplers: callables over a chunk stream that count the rows they saw --------------------


class _All:
    method, parameter = "full", None

    def __init__(self):
        self.seen = 0

    def __call__(self, chunks):
        for chunk in chunks:
            self.seen += _length(chunk)
            yield chunk

    def population(self) -> int | None:
        """Rows the sample was drawn from; None when the pass stopped early."""
        return self.seen


class _Fraction(_All):
    method = "fraction"

    def __init__(self, fraction: float, seed):
        super().__init__()
        self.parameter = fraction
        self.rng = np.random.default_rng(seed)

    def __call__(self, chunks):
        for chunk in chunks:
            n = _length(chunk)
            self.seen += n
            keep = self.rng.random(n) < self.parameter
            yield {name: values[keep] for name, values in chunk.items()}


class _Head(_All):
    method = "head"

    def __init__(self, n: int):
        super().__init__()
        self.parameter = n
        self.stopped = False

    def __call__(self, chunks):
        for chunk in chunks:
            room = self.parameter - self.seen
            n = _length(chunk)
            self.seen += min(n, room)
            yield chunk if n <= room else {k: v[:room] for k, v in chunk.items()}
            if self.seen >= self.parameter:
                self.stopped = True
                return

    def population(self) -> int | None:
        return None if self.stopped else self.seen


class _Reservoir(_All):
    method = "reservoir"

    def __init__(self, k: int, seed):
        super().__init__()
        self.parameter = k
        self.rng = np.random.default_rng(seed)

    def __call__(self, chunks):
        k, pool, filled = self.parameter, None, 0
        for chunk in chunks:
            n = _length(chunk)
            if pool is None:
                pool = {name: np.empty(k, dtype=v.dtype) for name, v in chunk.items()}
            first = min(k - filled, n)
            for name, values in chunk.items():
                pool[name][filled : filled + first] = values[:first]
            filled += first
            if first < n:  # row i (0-based over the pass) replaces a random slot w.p. k/(i+1)
                index = self.seen + np.arange(first, n)
                rows = np.flatnonzero(self.rng.random(n - first) < k / (index + 1)) + first
                slots = self.rng.integers(0, k, rows.size)
                # Several rows may pick one slot: the last of them wins, as in the sequential
                # algorithm.
                slots_rev, last = np.unique(slots[::-1], return_index=True)
                winners = rows[rows.size - 1 - last]
                for name, values in chunk.items():
                    pool[name][slots_rev] = values[winners]
            self.seen += n
        if pool is not None:
            yield {name: values[:filled] for name, values in pool.items()}


def _sampler(sample, seed):
    if sample is None:
        return _All()
    if isinstance(sample, Reservoir):
        return _Reservoir(int(sample.k), sample.seed if sample.seed is not None else seed)
    if isinstance(sample, Head):
        return _Head(int(sample.n))
    if isinstance(sample, (int, np.integer)) and not isinstance(sample, bool) and sample >= 1:
        return _Head(int(sample))
    if isinstance(sample, float) and 0.0 < sample < 1.0:
        return _Fraction(sample, seed)
    if isinstance(sample, float) and sample == 1.0:
        return _All()
    raise ValueError(
        "`sample` must be None (every row), a fraction in (0, 1), ts.Reservoir(k), or an int "
        f"n / ts.Head(n) (the first n rows). Received: sample={sample!r}"
    )


def _progress(source, enabled: bool, *, by_bytes: bool = True, file=None):
    """The source's chunks, with a tqdm bar when ``enabled``: by bytes, with an ETA, when
    ``by_bytes`` and the source knows its size (``Source.total_bytes()``); else by rows."""
    if not enabled:
        return source.iter_chunks()
    total = source.total_bytes() if by_bytes else None
    if total is None:
        return _with_row_bar(source.iter_chunks(), file)
    return _with_byte_bar(source, total, file)


def _bar(file, **kwargs):
    import sys

    from tqdm.auto import tqdm

    return tqdm(
        desc="statistics",
        unit_scale=True,
        file=sys.stderr if file is None else file,
        leave=False,
        dynamic_ncols=True,
        **kwargs,
    )


def _with_row_bar(chunks, file):
    with _bar(file, unit=" rows") as bar:
        for chunk in chunks:
            bar.update(_length(chunk))
            yield chunk


def _with_byte_bar(source, total: int, file):
    with _bar(file, unit="B", unit_divisor=1024, total=total) as bar:
        yield from source.iter_chunks(on_bytes=bar.update)
