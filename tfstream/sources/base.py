"""Source: the shape every format shares — a schema, a ``dataset(...)``, a ``report()``.

A format implements two hooks: ``_units()`` (the independent pieces of the source, usually its
files) and ``_read_unit(unit)`` (yields *chunks*: ``dict[str, np.ndarray]`` of equal length,
typed as the schema says, thousands of rows each). Everything else lives here once: the epoch
loop, file-order shuffling, the row shuffle buffer, sharding by ``tf.distribute.InputContext``,
and the hand-over to ``tf.data``.

Two optional hooks let a progress bar go by bytes: ``_unit_bytes(unit)`` (the unit's size, None
when unknown) and ``_read_unit_reporting(unit, report)`` (reads like ``_read_unit`` and calls
``report(n)`` as ``n`` more bytes of the unit are consumed). Without them a unit's bytes are
counted when it is finished.

Why chunks and not rows or batches: a Python generator costs ~2 ms per element handed to
``tf.data`` (29 columns), so per-row or per-batch generators are slow; chunks cross once every
few ten-thousand rows and ``Dataset.rebatch`` cuts them into batches in C++.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from tfstream.sources.interpreter_exit import until_exit
from tfstream.sources.report import RowLedger, RowReport
from tfstream.sources.schema import Column

__all__ = ["Chunk", "Source", "DEFAULT_SHUFFLE_BUFFER"]

Chunk = dict[str, np.ndarray]

#: Rows held by the shuffle buffer unless ``shuffle_buffer=`` says otherwise.
DEFAULT_SHUFFLE_BUFFER = 65_536


class Source(abc.ABC):
    """A stream of tabular rows with a fixed schema.

    Subclasses set ``self._schema`` (all columns, label included) before use and implement
    :meth:`_units` and :meth:`_read_unit`.
    """

    def __init__(self, *, label: str | None, on_error: str = "raise", quarantine_path=None):
        self._label = label
        self._ledger = RowLedger(on_error, quarantine_path)
        self._schema: dict[str, Column] = {}

    # -- hooks -----------------------------------------------------------------------------

    @abc.abstractmethod
    def _units(self) -> Sequence[Any]:
        """The independent pieces of the source, in their natural order (usually files)."""

    @abc.abstractmethod
    def _read_unit(self, unit: Any) -> Iterator[Chunk]:
        """Yields the chunks of one unit, counting rows in ``self._ledger``."""

    def _unit_bytes(self, unit: Any) -> int | None:
        """The size of one unit in bytes (a file's size on disk); None when unknown."""
        return None

    def _read_unit_reporting(self, unit: Any, report: Callable[[int], None]) -> Iterator[Chunk]:
        """``_read_unit``, calling ``report(n)`` as ``n`` more bytes of the unit are read.
        The default reports nothing: the unit's bytes are counted once it is finished."""
        return self._read_unit(unit)

    # -- public ------------------------------------------------------------------------------

    @property
    def schema(self) -> dict[str, Column]:
        """``{column: Column}`` for every column the source yields, the label included."""
        return dict(self._schema)

    @property
    def label(self) -> str | None:
        return self._label

    @property
    def feature_names(self) -> list[str]:
        return [name for name in self._schema if name != self._label]

    def report(self) -> RowReport:
        """Rows read, kept and rejected so far, over every pass made over this source."""
        return self._ledger.report()

    @property
    def reads_in_any_thread(self) -> bool:
        """Whether a pass may run in a thread other than the one that made the source
        (``compute_stats`` then parses the next chunk in a background thread). False for
        sources bound to their thread, such as a default ``sqlite3`` connection."""
        return True

    def total_bytes(self) -> int | None:
        """Bytes one pass reads (the sum of the files' sizes), or None when the source cannot
        tell (a DataFrame iterator, a query). Progress bars use it for an ETA."""
        total = 0
        for unit in self._units():
            size = self._unit_bytes(unit)
            if size is None:
                return None
            total += size
        return total

    def iter_chunks(
        self,
        *,
        shuffle: bool = False,
        seed: int | None = None,
        epoch: int = 0,
        shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
        num_shards: int = 1,
        shard_index: int = 0,
        on_bytes: Callable[[int], None] | None = None,
    ) -> Iterator[Chunk]:
        """Yields one pass over the source as numpy chunks (all columns, label included).

        This is what :meth:`dataset` feeds to ``tf.data``; statistics and writers use it
        directly. With ``shuffle``, the unit (file) order is permuted and rows go through a
        shuffle buffer of ``shuffle_buffer`` rows, both seeded by ``(seed, epoch)``.

        Sharding: by unit when there are at least ``num_shards`` units, else by row (every
        pipeline then reads every row and keeps its own, so each pipeline's reads are counted
        in ``report()``).

        ``on_bytes(n)`` is called as ``n`` more bytes of the source are read (see
        :meth:`total_bytes`): within a file as the format allows, and the rest of each file
        when it is finished, so over a whole pass the calls add up to ``total_bytes()``
        (the sizes of the files this pass reads).
        """
        units = list(self._units())
        # Shard first, in the natural order, so that pipelines with different (or no) seeds
        # still split the data into disjoint, complete shards; then shuffle within the shard.
        by_unit = num_shards > 1 and len(units) >= num_shards
        if by_unit:
            units = units[shard_index::num_shards]
        rng = None
        if shuffle:
            if seed is None:
                seed = int(np.random.SeedSequence().generate_state(1)[0])
            rng = np.random.default_rng([seed, epoch])
        by_row = num_shards > 1 and not by_unit
        if rng is not None and not by_row:  # row shards need one unit order in all pipelines
            units = [units[i] for i in rng.permutation(len(units))]
        if on_bytes is None:
            chunks = (chunk for unit in units for chunk in self._read_unit(unit))
        else:
            chunks = (chunk for unit in units for chunk in self._read_counted(unit, on_bytes))
        if by_row:
            chunks = _shard_rows(chunks, num_shards, shard_index)
        if rng is not None:
            chunks = _shuffle_rows(chunks, shuffle_buffer, rng)
        for chunk in chunks:
            if _length(chunk):
                yield chunk

    def dataset(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int | None = None,
        epochs: int | None = 1,
        drop_remainder: bool = False,
        input_context=None,
        shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    ):
        """A ``tf.data.Dataset`` of ``(features, label)`` batches (``features`` alone when the
        source has no label); ``features`` is ``{column: Tensor[batch]}``.

        Args:
            batch_size: rows per batch (per input pipeline when ``input_context`` is given:
                pass ``input_context.get_per_replica_batch_size(global_batch)``).
            shuffle: permute the file order and pass rows through a shuffle buffer.
            seed: makes the shuffle reproducible; each epoch gets its own order.
            epochs: passes over the data; ``None`` repeats forever. Batches never straddle two
                epochs: each epoch ends with its own (possibly short) last batch.
            drop_remainder: drop the short last batch of each epoch.
            input_context: a ``tf.distribute.InputContext``; this pipeline then reads its
                shard: whole files when there are at least as many files as pipelines, else
                every n-th row.
            shuffle_buffer: rows held by the shuffle buffer (memory grows with it).

        The order is deterministic: without ``shuffle`` it is the file order; with it, fixed
        by ``seed``. Memory is bounded by the read block, the shuffle buffer and the batch,
        never by the file size.

        tf.data's autotuner is off for this dataset and those built on it
        (``options().autotune.enabled`` is False): it has nothing to tune here (the prefetch
        buffers size themselves), and its thread, when an iterator is torn down at the end of a
        pass, now and then held the pass up for 0.3-1.3 s (in ~1 of 5 passes over a 1M-row
        CSV on a 2-core machine; never with it off). ``map(num_parallel_calls=AUTOTUNE)``
        added on top then runs one call per core. To turn it back on:
        ``opts = tf.data.Options(); opts.autotune.enabled = True; ds = ds.with_options(opts)``.
        """
        import tensorflow as tf

        _check_positive("batch_size", batch_size)
        _check_positive("shuffle_buffer", shuffle_buffer)
        if epochs is not None:
            _check_positive("epochs", epochs)
        if shuffle and seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        num_shards, shard_index = 1, 0
        if input_context is not None:
            num_shards = input_context.num_input_pipelines
            shard_index = input_context.input_pipeline_id
        signature = self._signature()

        def generate(epoch):
            chunks = self.iter_chunks(
                shuffle=shuffle,
                seed=seed,
                epoch=int(epoch),
                shuffle_buffer=shuffle_buffer,
                num_shards=num_shards,
                shard_index=shard_index,
            )
            for chunk in until_exit(chunks):
                yield self._split_label(chunk)

        def one_epoch(epoch):
            ds = tf.data.Dataset.from_generator(generate, args=(epoch,), output_signature=signature)
            # The prefetch lets the reader parse the next chunk while rebatch cuts this one.
            return ds.prefetch(2).rebatch(batch_size, drop_remainder=drop_remainder)

        if epochs == 1:
            # The same pipeline without the epoch flat_map, whose function tracing and
            # instantiation cost ~35 ms per dataset.
            ds = one_epoch(0)
        else:
            epoch_ids = tf.data.Dataset.range(epochs) if epochs is not None else _forever()
            ds = epoch_ids.flat_map(one_epoch)
        options = tf.data.Options()
        options.autotune.enabled = False
        return ds.prefetch(tf.data.AUTOTUNE).with_options(options)

    # -- helpers -----------------------------------------------------------------------------

    def _read_counted(self, unit, on_bytes: Callable[[int], None]) -> Iterator[Chunk]:
        """Reads one unit, passing its bytes to ``on_bytes``: what the reader reports (never
        past the unit's size), then the rest once the unit is finished."""
        size = self._unit_bytes(unit)
        done = 0

        def report(n: int) -> None:
            nonlocal done
            if size is not None:
                n = min(n, size - done)
            if n > 0:
                done += n
                on_bytes(n)

        yield from self._read_unit_reporting(unit, report)
        if size is not None and size > done:
            report(size - done)

    def _signature(self):
        import tensorflow as tf

        features = {
            name: tf.TensorSpec([None], col.tf_dtype, name=None)
            for name, col in self._schema.items()
            if name != self._label
        }
        if self._label is None:
            return features
        return features, tf.TensorSpec([None], self._schema[self._label].tf_dtype)

    def _split_label(self, chunk: Chunk):
        if self._label is None:
            return chunk
        features = {k: v for k, v in chunk.items() if k != self._label}
        return features, chunk[self._label]

    def _resolve_label(self) -> None:
        """Checks that the label names a column; call once the schema is known."""
        if self._label is not None and self._label not in self._schema:
            raise ValueError(
                f"`label` must name a column of the source. Received: label={self._label!r}; "
                f"the columns are {list(self._schema)}"
            )


def _forever():
    import tensorflow as tf

    return tf.data.Dataset.range(np.iinfo(np.int64).max)


def _length(chunk: Chunk) -> int:
    return len(next(iter(chunk.values()))) if chunk else 0


def _take(chunk: Chunk, index) -> Chunk:
    return {k: v[index] for k, v in chunk.items()}


def _concat(a: Chunk, b: Chunk) -> Chunk:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def _shard_rows(chunks: Iterator[Chunk], num_shards: int, shard_index: int) -> Iterator[Chunk]:
    """Keeps the rows whose position in the pass is ``shard_index`` modulo ``num_shards``."""
    offset = 0
    for chunk in chunks:
        n = _length(chunk)
        first = (shard_index - offset) % num_shards
        yield _take(chunk, slice(first, n, num_shards))
        offset += n


def _shuffle_rows(chunks: Iterator[Chunk], buffer: int, rng: np.random.Generator):
    """A shuffle buffer over chunks: each row leaves uniformly at random from a pool of the
    buffer plus the incoming chunk, as ``tf.data``'s shuffle does row by row."""
    pool: Chunk | None = None
    for chunk in chunks:
        pool = chunk if pool is None else _concat(pool, chunk)
        n = _length(pool)
        if n > buffer:
            order = rng.permutation(n)
            yield _take(pool, order[: n - buffer])
            pool = _take(pool, order[n - buffer :])
    if pool is not None:
        yield _take(pool, rng.permutation(_length(pool)))


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
