"""Parquet ingest: tfstream against pyarrow's own ``iter_batches``, in one run.

1,000,000 rows (a 0/1 label and 28 float features) into batches of 1024; tfstream is consumed
inside tf.data (``Dataset.reduce``); the pyarrow anchor only decodes (no tf.data at all).

    python -m benchmarks.ingest_parquet [--rows N]
"""

from __future__ import annotations

import argparse
import glob
import os

from benchmarks._common import consume, out_path, report, run_methods

BATCH = 1024
QUICK_ARGS = ["--rows", "200000"]


def make_parquet(rows: int) -> str:
    from tfstream.testing import write_parquet

    directory = out_path(f"parquet-{rows}")
    if not glob.glob(os.path.join(directory, "*.parquet")):
        write_parquet(directory, rows, shards=1)
    return sorted(glob.glob(os.path.join(directory, "*.parquet")))[0]


def run(rows: int = 1_000_000, *, repeats: int = 2) -> list[dict]:
    import pyarrow.parquet as pq

    from tfstream.sources.parquet import parquet

    path = make_parquet(rows)
    mb = os.path.getsize(path) / 1e6

    def tfstream_parquet():
        return consume(parquet(path, label="label").dataset(BATCH))

    def pyarrow_batches():
        return sum(b.num_rows for b in pq.ParquetFile(path).iter_batches(BATCH))

    def pyarrow_batches_numpy():
        n = 0
        for b in pq.ParquetFile(path).iter_batches(65_536):
            cols = [c.to_numpy() for c in b.columns]
            n += len(cols[0])
        return n

    methods = [
        ("tfstream parquet(...).dataset", tfstream_parquet, repeats),
        ("pyarrow iter_batches(1024) [decode only]", pyarrow_batches, repeats),
        ("pyarrow iter_batches(65536) + to_numpy", pyarrow_batches_numpy, repeats),
    ]
    results = run_methods(methods, rows=rows, mb=mb)
    report(
        f"Parquet ingest: {rows:,} rows x 29 columns ({mb:.0f} MB), batches of {BATCH}",
        results,
        reference="tfstream parquet(...).dataset",
        json_name="ingest_parquet.json",
    )
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    run(args.rows)


if __name__ == "__main__":
    main()
