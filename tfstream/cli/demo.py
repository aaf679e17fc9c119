"""``tfstream demo``: generate a CSV set, inspect it, convert it to TFRecord and Parquet, and
stream each format through ``tf.data``, saying what it does at each step."""

from __future__ import annotations

import argparse
import glob
import math
import os
import sys

from tfstream.cli._common import (
    HelpFormatter,
    Timer,
    format_bytes,
    format_report,
    positive_int,
    table,
)

__all__ = ["add_parser", "run", "stream_rate"]

NAME = "demo"
SUMMARY = "generate a dataset, inspect it, convert it and stream it (rows/s per format)"
DESCRIPTION = """\
Run tfstream's main job on a generated dataset and print what it does, step by step:

  1. generate a CSV set: a 0/1 label, 28 float features and 2 string columns, split over
     --files files, with a few malformed lines in one file;
  2. inspect it (schema, sample, row count, rejected rows with file and line);
  3. compute exact column statistics in one pass and save them as JSON;
  4. convert it to TFRecord shards, and 5. to Parquet shards;
  6. stream each of the three formats through tf.data in batches and compare rows/s, and
     turn the statistics into a Keras preprocessor applied to one batch.

The files stay in --output (each run replaces the demo's own files there)."""
EXAMPLES = """\
examples:
  tfstream demo
  tfstream demo --rows 1000000 --files 8 --output /tmp/tfstream-demo
"""

_FEATURES = 28
_STRINGS = 2
_BAD_ROWS = 5


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME,
        help=SUMMARY,
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--rows", type=positive_int, default=200_000, metavar="N", help="rows (default: 200000)"
    )
    parser.add_argument(
        "--files", type=positive_int, default=4, metavar="K", help="CSV files (default: 4)"
    )
    parser.add_argument(
        "--output",
        default="demo_output",
        metavar="DIR",
        help="where the files go (default: ./demo_output)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=1024, metavar="B", help="default: 1024"
    )
    parser.add_argument("--seed", type=int, default=0, help="data seed (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars on stderr")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from tfstream.cli.convert import convert_source
    from tfstream.cli.inspect import inspect_source
    from tfstream.sources.auto import open_source
    from tfstream.testing import write_csv_shards

    root = args.output
    dirs = {fmt: os.path.join(root, fmt) for fmt in ("csv", "tfrecord", "parquet")}
    rejected_path = os.path.join(root, "rejected-rows.jsonl")
    progress = not args.quiet
    say = _Say(total=6)

    say.step(
        f"generate {args.rows:,} rows (label + {_FEATURES} float + {_STRINGS} string columns) "
        f"in {args.files} CSV file{'s' if args.files != 1 else ''} under {dirs['csv']}"
    )
    _remove(os.path.join(dirs["csv"], "part-*.csv"))
    _remove(rejected_path)
    with Timer() as timer:
        paths = write_csv_shards(
            dirs["csv"],
            args.rows,
            shards=args.files,
            features=_FEATURES,
            strings=_STRINGS,
            seed=args.seed,
            bad_rows=_BAD_ROWS,
        )
    bad_file = paths[len(paths) // 2]
    say.done(
        f"wrote {format_bytes(_size(paths))} in {timer.seconds:.2f} s; {_BAD_ROWS} malformed "
        f"lines were added to {bad_file} on purpose"
    )

    # The deliberately unparsable number is in the last float column: declared, that column
    # stays numeric even when the bad value falls in the rows sampled for type inference.
    schema = {f"f{_FEATURES - 1}": "float32"}
    schema_option = f"--schema f{_FEATURES - 1}=float32"
    say.step(
        f"inspect: tfstream inspect {dirs['csv']} --label label {schema_option} "
        "--on-error skip --rows 3"
    )
    source = open_source(dirs["csv"], label="label", on_error="skip", schema=schema)
    inspect_source(source, fmt="csv", rows=3, out=sys.stdout, progress=progress)

    stats_path = os.path.join(root, "stats.json")
    say.step(
        f"statistics: tfstream stats {dirs['csv']} --label label {schema_option} "
        f"--on-error skip -o {stats_path}"
    )
    stats = _statistics(dirs["csv"], schema, stats_path, progress)

    shard_rows = math.ceil(args.rows / args.files)
    for fmt, options in (
        ("tfrecord", f"--on-error quarantine --quarantine-path {rejected_path}"),
        ("parquet", "--on-error skip"),
    ):
        say.step(
            f"convert to {fmt}: tfstream convert {dirs['csv']} --to {fmt} --output "
            f"{dirs[fmt]} --max-rows-per-shard {shard_rows} {schema_option} {options}"
        )
        if fmt == "tfrecord":
            source = open_source(
                dirs["csv"], on_error="quarantine", quarantine_path=rejected_path, schema=schema
            )
        else:
            source = open_source(dirs["csv"], on_error="skip", schema=schema)
        convert_source(
            source,
            dirs[fmt],
            fmt="csv",
            to=fmt,
            max_rows_per_shard=shard_rows,
            overwrite=True,
            out=sys.stdout,
            progress=progress,
            list_rejected=False,
        )

    say.step(
        f"stream each format through tf.data: source.dataset({args.batch_size}), consumed "
        "with Dataset.reduce"
    )
    results, csv_report = [], None
    for fmt in ("csv", "tfrecord", "parquet"):
        extra = {"schema": schema} if fmt == "csv" else {}
        source = open_source(dirs[fmt], label="label", on_error="skip", **extra)
        rows, seconds = stream_rate(source, args.batch_size)
        files = list(getattr(source, "files", []))
        results.append((fmt, len(files), format_bytes(_size(files)), rows, seconds, rows / seconds))
        if fmt == "csv":
            csv_report = source.report()
    print(table(("format", "files", "size", "rows", "seconds", "rows/s"), results), flush=True)
    print("row report of the CSV stream: " + format_report(csv_report))
    _preprocess_one_batch(stats, open_source(dirs["parquet"], label="label"), args.batch_size)
    print(
        f"\nThe files are in {root}/: csv/, tfrecord/, parquet/, stats.json and the quarantined "
        f"rows in {rejected_path}.\nNext: tfstream inspect {dirs['parquet']} --label label"
    )
    return 0


def _statistics(csv_dir: str, schema: dict, path: str, progress: bool):
    """Computes, saves and summarises the statistics of the CSV set (a few columns shown)."""
    from tfstream.sources.auto import open_source
    from tfstream.stats import compute_stats

    source = open_source(csv_dir, label="label", on_error="skip", schema=schema)
    with Timer() as timer:
        stats = compute_stats(source, progress=progress)
    stats.save(path)
    shown = ["label", "f0", "f1", "f2", *[n for n in stats if stats[n].kind == "string"]]
    print(stats.summary(shown))
    rate = stats.rows / timer.seconds if timer.seconds > 0 else float("nan")
    print(
        f"  ({len(stats)} columns, {stats.rows:,} rows in {timer.seconds:.2f} s, "
        f"{rate:,.0f} rows/s; the other float columns are alike) -> {path}"
    )
    return stats


def _preprocess_one_batch(stats, source, batch_size: int) -> None:
    """``stats.preprocessor()`` applied to one batch: what a model's first layer receives."""
    import numpy as np

    prep = stats.preprocessor()
    features, _ = next(iter(source.dataset(batch_size)))
    out = np.asarray(prep(features))
    numeric = sum(1 for n in stats.feature_names if stats[n].kind == "numeric")
    print(
        f"stats.preprocessor() maps a batch of raw features to a float32 tensor {out.shape}: "
        f"{numeric} standardised numbers (mean {out[:, :numeric].mean():+.3f}, std "
        f"{out[:, :numeric].std():.3f}) and one-hot strings"
    )


def stream_rate(source, batch_size: int) -> tuple[int, float]:
    """Rows and seconds to stream ``source.dataset(batch_size)`` once, end to end."""
    import numpy as np
    import tensorflow as tf

    dataset = source.dataset(batch_size)
    label = source.label

    def count(n, batch):
        column = batch[1] if label is not None else next(iter(batch.values()))
        return n + tf.cast(tf.shape(column)[0], tf.int64)

    with Timer() as timer:
        rows = int(dataset.reduce(np.int64(0), count))
    return rows, timer.seconds


class _Say:
    """Numbered step headers: ``[2/5] inspect: ...``."""

    def __init__(self, total: int):
        self.total = total
        self.index = 0

    def step(self, text: str) -> None:
        self.index += 1
        prefix = "" if self.index == 1 else "\n"
        print(f"{prefix}[{self.index}/{self.total}] {text}", flush=True)

    def done(self, text: str) -> None:
        print(f"  {text}", flush=True)


def _remove(pattern: str) -> None:
    for path in glob.glob(pattern):
        os.remove(path)


def _size(paths) -> int:
    return sum(os.path.getsize(p) for p in paths)
