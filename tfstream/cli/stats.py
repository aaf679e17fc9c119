"""``tfstream stats``: exact column statistics of files in one streaming pass, saved as JSON."""

from __future__ import annotations

import argparse
import sys

from tfstream.cli._common import (
    Timer,
    UsageError,
    add_source_arguments,
    format_report,
    open_from_args,
    positive_int,
)

__all__ = ["add_arguments", "run"]

NAME = "stats"
SUMMARY = "compute exact, mergeable column statistics of files (JSON)"
DESCRIPTION = """\
Stream the files once and compute, per column: count, missing and infinite counts, mean,
variance, std, min, max and quantiles (numbers; float64, exact to ~1e-15), or missing count,
distinct count and the vocabulary by frequency (strings). Print a summary table and save the
statistics as versioned JSON, which `ts.Stats.load(path)` reads back to build Keras
preprocessing layers (stats.normalization(...), stats.preprocessor(...)).

--sample F computes them on a seeded Bernoulli sample of the rows (each kept with probability
F); --reservoir K on a uniform sample of exactly K rows; --head N on the first N rows (and
stops reading there). A sampled result reports its size and the standard error of each mean.

A progress bar on stderr counts the bytes of the files, with an ETA (a sample still reads every
byte; --head counts rows). PATHS and --output may be fsspec URLs (s3://, gs://, hdfs://;
see --storage-options).

exit status: 0 on success; 2 on bad input, with one line on stderr."""
EXAMPLES = """\
examples:
  tfstream stats data/*.csv --label label -o stats.json
  tfstream stats data/ --sample 0.01 -o stats.json     # 1% of the rows
  tfstream stats data/ --reservoir 100000 --seed 7
  tfstream stats out/parquet --columns f0,f1,city --on-error skip
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser)
    sampling = parser.add_mutually_exclusive_group()
    sampling.add_argument(
        "--sample",
        type=_fraction,
        metavar="F",
        help="a Bernoulli sample: keep each row with probability F in (0, 1)",
    )
    sampling.add_argument(
        "--reservoir", type=positive_int, metavar="K", help="a uniform sample of exactly K rows"
    )
    sampling.add_argument("--head", type=positive_int, metavar="N", help="the first N rows only")
    parser.add_argument("--seed", type=int, default=0, help="seeds the sampling (default: 0)")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="save the statistics here as JSON (written atomically)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1); received {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    import tfstream as ts

    source, _ = open_from_args(args)
    sample = None
    if args.sample is not None:
        sample = args.sample
    elif args.reservoir is not None:
        sample = ts.Reservoir(args.reservoir, seed=args.seed)
    elif args.head is not None:
        sample = ts.Head(args.head)
    if args.output and not args.output.endswith(".json"):
        raise UsageError(f"--output must name a .json file; received {args.output!r}")
    with Timer() as timer:
        stats = ts.compute_stats(source, sample=sample, seed=args.seed, progress=not args.quiet)
    report = source.report()
    print(stats.summary())
    rate = report.rows_read / timer.seconds if timer.seconds > 0 else float("nan")
    print(f"read {report.rows_read:,} rows in {timer.seconds:.2f} s ({rate:,.0f} rows/s)")
    print("report: " + format_report(report))
    if args.output:
        path = stats.save(args.output, storage_options=getattr(args, "storage_options", None))
        print(f"statistics saved to {path}")
    sys.stdout.flush()
    return 0
