"""Scaling from a sample: statistics from 5% of the rows or a fixed-size reservoir, with the
standard error of each mean — and, since this script can afford the full pass too, the actual
error next to it.

``compute_stats(src, sample=0.05)`` keeps each row with probability 0.05 (seeded);
``sample=ts.Reservoir(k)`` keeps exactly k rows, uniformly (Vitter's algorithm R, memory for k
rows); ``sample=ts.Head(n)`` reads only the first n rows (fast, but only as representative as
the file order). A sampled ``Stats`` records how it was drawn (``stats.sample``) and
``stats[col].mean_stderr`` = sqrt(s^2 / n * (1 - n/N)) tells what the sample costs: the actual
error of a mean is within 2 standard errors about 95% of the time.

Run it::

    python examples/sample_scaling.py                  # 300,000 rows of CSV
    python examples/sample_scaling.py --rows 5000 --workdir /tmp/sample
"""

from __future__ import annotations

import argparse
import tempfile
import time

import tfstream as ts
from tfstream.testing import write_csv_shards


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000, help="rows of the generated CSV")
    parser.add_argument(
        "--workdir", help="where to write the data (default: a temporary dir, removed at the end)"
    )
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--reservoir", type=int, default=None, help="k (default: rows / 50)")
    return parser.parse_args()


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main():
    args = parse_args()
    if args.workdir:
        return run(args, args.workdir)
    with tempfile.TemporaryDirectory(prefix="tfstream-sample-") as workdir:  # removed at the end
        return run(args, workdir)


def run(args, workdir: str):
    # 4 CSV shards: a 0/1 label, 8 float features, 1 categorical column (seeded generator).
    write_csv_shards(workdir, args.rows, shards=4, features=8, strings=1, seed=0)
    src = ts.csv(workdir, label="label")
    k = args.reservoir or max(args.rows // 50, 10)

    full, t_full = timed(lambda: ts.compute_stats(src, progress=False))
    frac, t_frac = timed(
        lambda: ts.compute_stats(src, sample=args.fraction, progress=False, seed=1)
    )
    res, t_res = timed(
        lambda: ts.compute_stats(src, sample=ts.Reservoir(k, seed=1), progress=False)
    )
    print(f"full pass: {full.rows:,} rows in {t_full:.2f} s")
    for name, stats, seconds in (("fraction", frac, t_frac), ("reservoir", res, t_res)):
        info = stats.sample
        print(
            f"{name}: {info.size:,} of {info.population:,} rows ({info.fraction:.2%}) "
            f"in {seconds:.2f} s"
        )

    columns = [c for c in full.feature_names if full[c].kind == "numeric"]
    worst = 0.0
    for name, stats in ((f"sample={args.fraction}", frac), (f"Reservoir({k})", res)):
        print(f"\n{name}")
        print(
            f"  {'column':6} {'full mean':>10} {'sample mean':>12} {'std error':>10} "
            f"{'actual error':>13} {'error / se':>10} {'std ratio':>10}"
        )
        for col in columns:
            truth, estimate = full[col], stats[col]
            error = estimate.mean - truth.mean
            z = error / estimate.mean_stderr
            worst = max(worst, abs(z))
            print(
                f"  {col:6} {truth.mean:10.5f} {estimate.mean:12.5f} {estimate.mean_stderr:10.5f} "
                f"{error:+13.5f} {z:+10.2f} {estimate.std / truth.std:10.4f}"
            )
        # A full pass has no sampling error; a sample's error is of the order of its stderr.
        assert full[columns[0]].mean_stderr == 0.0
        vocabulary = stats["s0"].vocabulary()
        assert sorted(vocabulary) == sorted(full["s0"].vocabulary()), vocabulary
    # With 16 seeded estimates, all within 4 standard errors (a 4-sigma miss has p ~ 6e-5).
    assert worst < 4.0, worst
    print(
        f"\nOK: every sampled mean is within {worst:.2f} standard errors of the full-pass mean "
        f"(fraction: {frac.sample.size:,} rows, reservoir: {res.sample.size:,} rows)"
    )
    # What it means for scaling: a Normalization layer from the sample is off from the full one
    # by about stderr / std = 1 / sqrt(n) standard deviations — 2% for n = 2,500 rows.


if __name__ == "__main__":
    main()
