"""Incremental statistics: ``Stats.partial_fit`` chunk by chunk, shards merged, a pass saved
half-way and resumed — each checked against numpy (float64, two passes) and scikit-learn's
``StandardScaler.partial_fit``; then the statistics become a Keras ``Normalization`` layer.

Why not ``keras.layers.Normalization.adapt``? It needs a pass of its own, cannot be merged
across shards or resumed, and accumulates in float32: on a column like ``1e6 + N(0, 1)`` its
variance is off by orders of magnitude (printed at the end). tfstream accumulates mean and M2 in
float64 with the pairwise update of Chan, Golub & LeVeque (1983), relative to a per-column
shift, so the result does not depend on chunk sizes or merge order.

Run it::

    python examples/incremental_statistics.py                 # 200,000 rows
    python examples/incremental_statistics.py --rows 5000 --workdir /tmp/stats
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import tfstream as ts


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the generated stream")
    parser.add_argument(
        "--workdir", help="where to save statistics (default: a temporary dir, removed at the end)"
    )
    parser.add_argument("--chunks", type=int, default=25, help="chunks of uneven sizes")
    return parser.parse_args()


def chunks(rows: int, count: int, seed: int = 0):
    """A stream of ``count`` chunks ``{column: array}`` of uneven sizes, as a source's
    ``iter_chunks()`` yields them.

    ``price`` sits at 1e6 with unit spread: the hard case for float32 accumulation. ``age`` has
    missing values (NaN), which statistics count and leave out of the moments.
    """
    rng = np.random.default_rng(seed)
    bounds = np.unique(np.r_[0, np.sort(rng.integers(0, rows, count - 1)), rows])
    for n in np.diff(bounds):
        age = rng.normal(40.0, 12.0, n)
        age[rng.random(n) < 0.05] = np.nan
        yield {
            "price": 1e6 + rng.standard_normal(n),
            "age": age,
            "income": rng.lognormal(10.0, 1.0, n),
            "city": rng.choice(["Lisbon", "Oslo", "Quito", "Hanoi"], n),
        }


NUMERIC = ("price", "age", "income")


def main():
    args = parse_args()
    if args.workdir:
        return run(args, args.workdir)
    with tempfile.TemporaryDirectory(prefix="tfstream-stats-") as workdir:  # removed at the end
        return run(args, workdir)


def run(args, workdir: str):
    all_chunks = list(chunks(args.rows, args.chunks))  # kept only for the numpy reference
    sizes = [len(c["price"]) for c in all_chunks]
    print(
        f"{args.rows:,} rows in {len(all_chunks)} chunks of {min(sizes):,} to {max(sizes):,} rows"
    )

    # -- 1. one pass, chunk by chunk (StandardScaler.partial_fit style) ------------------------
    stats = ts.Stats()
    for chunk in all_chunks:
        stats.partial_fit(chunk)
    print(stats.summary())

    # -- 2. shards: each worker (or process) computes its own Stats; merge in any order --------
    shards = [ts.Stats() for _ in range(3)]
    for i, chunk in enumerate(all_chunks):
        shards[i % 3].partial_fit(chunk)
    merged = shards[2].merge(shards[0]).merge(shards[1])

    # -- 3. a pass interrupted half-way: save, load (in a new process, say), finish ------------
    half = len(all_chunks) // 2
    first_half = ts.Stats()
    for chunk in all_chunks[:half]:
        first_half.partial_fit(chunk)
    path = first_half.save(os.path.join(workdir, "stats-partial.json"))  # atomic write
    resumed = ts.Stats.load(path)
    for chunk in all_chunks[half:]:
        resumed.partial_fit(chunk)
    print(f"saved after {half} chunks to {path}, loaded and finished the pass")

    # -- references: numpy float64 (two-pass) and scikit-learn ---------------------------------
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    for chunk in all_chunks:
        scaler.partial_fit(np.column_stack([chunk[c] for c in NUMERIC]))  # NaN-aware
    print(f"\n{'column':8} {'tfstream mean':>22} {'numpy mean':>22} {'sklearn mean':>22}")
    worst = 0.0
    for j, name in enumerate(NUMERIC):
        values = np.concatenate([c[name] for c in all_chunks])
        values = values[np.isfinite(values)]
        mean = values.mean(dtype=np.float64)
        variance = np.mean((values - mean) ** 2)  # two-pass: the stable reference
        for candidate in (stats, merged, resumed):
            col = candidate[name]
            assert col.count == values.size
            worst = max(
                worst,
                abs(col.mean - mean) / max(abs(mean), 1.0),
                abs(col.variance - variance) / variance,
            )
        np.testing.assert_allclose(stats[name].mean, scaler.mean_[j], rtol=1e-10)
        np.testing.assert_allclose(stats[name].variance, scaler.var_[j], rtol=1e-8)
        print(f"{name:8} {stats[name].mean:22.12f} {mean:22.12f} {scaler.mean_[j]:22.12f}")
    assert worst < 1e-10, worst
    assert stats["age"].nan_count == sum(int(np.isnan(c["age"]).sum()) for c in all_chunks)
    assert stats["city"].vocabulary() == merged["city"].vocabulary() == resumed["city"].vocabulary()
    print(
        f"OK: one pass, 3 merged shards and a saved/resumed pass all equal numpy float64 "
        f"(worst relative difference {worst:.1e}) and StandardScaler.partial_fit"
    )

    # -- 4. into Keras ---------------------------------------------------------------------------
    import keras
    import tensorflow as tf

    norm = stats.normalization(["age", "income"])  # float32 layer, stays float32 under mixed
    table = np.column_stack([np.concatenate([c[n] for c in all_chunks]) for n in ("age", "income")])
    table = table[np.isfinite(table).all(axis=1)].astype("float32")  # NaN rows: impute first
    out = np.asarray(norm(table))
    print(
        f"Normalization(age, income) on the rows: mean {out.mean(0).round(3)}, "
        f"std {out.std(0).round(3)}"
    )
    np.testing.assert_allclose(out.mean(0), 0.0, atol=0.02)

    # Keras' own adapt() on the large-offset column, for comparison (float32 accumulation).
    adapted = keras.layers.Normalization()
    prices = np.concatenate([c["price"] for c in all_chunks])
    adapted.adapt(tf.data.Dataset.from_tensor_slices(prices.astype("float32")[:, None]).batch(1024))
    print(
        f"price variance: tfstream {stats['price'].variance:.6f}, "
        f"Normalization.adapt {float(np.asarray(adapted.variance).squeeze()):.6f} "
        f"(numpy float64: {np.var(prices):.6f})"
    )


if __name__ == "__main__":
    main()
