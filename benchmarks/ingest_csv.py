"""CSV ingest: tfstream against make_csv_dataset, CsvDataset and pandas chunks, in one run.

1,000,000 rows of a 0/1 label and 28 float features, into tf.data batches of 1024. tf.data
pipelines are consumed inside tf.data (``Dataset.reduce``), as a compiled training step would;
pandas and polars are parse-only anchors (no tf.data at all).

The fast methods report the best of 5 runs, taken in turns with their anchors (see
``run_methods``): the machine is shared, and one method's minute can be twice as slow as the
next. (tfstream's dataset turns tf.data's autotuner off: with it on, an iterator's teardown now
and then waited 0.3-1.3 s for the autotuner's thread.)

    python -m benchmarks.ingest_csv [--rows N] [--skip-slow]
"""

from __future__ import annotations

import argparse
import os

from benchmarks._common import consume, make_numeric_csv, report, run_methods

BATCH = 1024
QUICK_ARGS = ["--rows", "200000", "--skip-slow"]


def run(rows: int = 1_000_000, *, skip_slow: bool = False, repeats: int = 5) -> list[dict]:
    import pandas as pd
    import polars as pl
    import tensorflow as tf

    import tfstream as ts

    path = make_numeric_csv(rows)
    mb = os.path.getsize(path) / 1e6
    defaults = [tf.constant(0, tf.int64)] + [tf.constant(0.0, tf.float32)] * 28

    def tfstream_csv():
        return consume(ts.csv(path, label="label").dataset(BATCH))

    def pandas_chunks():
        return sum(len(c) for c in pd.read_csv(path, chunksize=65_536))

    def polars_batches():
        return sum(b.height for b in pl.scan_csv(path).collect_batches())

    def make_csv_dataset():
        ds = tf.data.experimental.make_csv_dataset(
            path, BATCH, label_name="label", num_epochs=1, shuffle=False
        )
        return consume(ds)

    def csv_dataset():
        ds = tf.data.experimental.CsvDataset(path, defaults, header=True).batch(BATCH)
        return consume(ds.map(lambda label, *f: (f, label)))

    def text_line_decode_csv():
        ds = tf.data.TextLineDataset(path).skip(1).batch(BATCH)
        ds = ds.map(lambda lines: tf.io.decode_csv(lines, defaults), num_parallel_calls=-1)
        return consume(ds.map(lambda label, *f: (f, label)))

    methods = [
        ("tfstream ts.csv(...).dataset", tfstream_csv, repeats),
        ("pandas read_csv(chunksize) [parse only]", pandas_chunks, repeats),
        ("polars collect_batches [parse only]", polars_batches, repeats),
        ("TextLineDataset + decode_csv", text_line_decode_csv, 1),
    ]
    if not skip_slow:
        methods += [
            ("make_csv_dataset", make_csv_dataset, 1),
            ("CsvDataset", csv_dataset, 1),
        ]
    results = run_methods(methods, rows=rows, mb=mb)
    report(
        f"CSV ingest: {rows:,} rows x 29 columns ({mb:.0f} MB), batches of {BATCH}",
        results,
        reference="tfstream ts.csv(...).dataset",
        json_name="ingest_csv.json",
        extra={"targets": {"vs pandas chunks": ">= 1.5x", "vs make_csv_dataset": ">= 5x"}},
    )
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-slow", action="store_true", help="skip the two slow TF anchors")
    args = parser.parse_args(argv)
    run(args.rows, skip_slow=args.skip_slow)


if __name__ == "__main__":
    main()
