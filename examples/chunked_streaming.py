"""Chunked streaming: CSV, Parquet and pandas chunks into ``tf.data``, with every row accounted.

The data never has to fit in memory: a tfstream source reads its files block by block (CSV is
parsed by polars, Parquet row group by row group with pyarrow, pandas in chunks) and hands
``tf.data`` numpy chunks of thousands of rows, which ``rebatch`` cuts into batches. Memory is
bounded by the read block, the shuffle buffer and the batch, never by the file size.

This script:

1. writes a few CSV files with one deliberately broken line (a text where a number belongs);
2. streams them with ``on_error="quarantine"``: the bad row is counted in ``src.report()`` and
   written, with its file and line number, to a JSON-lines quarantine file; every good row
   reaches the model;
3. streams the same table from Parquet files and from ``pandas.read_csv(..., chunksize=...)``
   chunks, and checks that the three formats yield the same rows.

Run it::

    python examples/chunked_streaming.py                 # 60,000 rows in a temporary directory
    python examples/chunked_streaming.py --rows 2000 --workdir /tmp/chunked
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import pandas as pd
import tensorflow as tf  # noqa: F401 - imported up front: the timings below measure streaming

import tfstream as ts


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=60_000, help="rows of the generated table")
    parser.add_argument(
        "--workdir", help="where to write the data (default: a temporary dir, removed at the end)"
    )
    parser.add_argument("--batch-size", type=int, default=1024)
    return parser.parse_args()


def make_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """A small tabular problem: a 0/1 label, three float features and a city name."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 3)).astype(np.float32)
    label = (x @ np.array([1.0, -2.0, 0.5], np.float32) + rng.logistic(size=rows) > 0).astype(
        np.int64
    )
    city = rng.choice(["Lisbon", "Oslo", "Quito"], size=rows)
    return pd.DataFrame({"label": label, "x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "city": city})


def write_csv_with_a_bad_row(table: pd.DataFrame, directory: str, files: int = 3):
    """Writes ``table`` as ``files`` CSV files; one line of the middle file is broken.

    Returns the paths and ``(file, line)`` of the broken line (1-based, the header is line 1).
    """
    os.makedirs(directory, exist_ok=True)
    paths = []
    for i, part in enumerate(np.array_split(np.arange(len(table)), files)):
        path = os.path.join(directory, f"part-{i:03d}.csv")
        table.iloc[part].to_csv(path, index=False)
        paths.append(path)
    bad_file = paths[files // 2]
    with open(bad_file, encoding="utf-8") as f:
        lines = f.readlines()
    bad_line = len(lines) // 2 + 1  # 1-based line number of the line we insert
    lines.insert(bad_line - 1, "1,0.5,not-a-number,0.25,Oslo\n")
    with open(bad_file, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return paths, (bad_file, bad_line)


def stream(src, batch_size: int) -> dict:
    """One pass of ``src.dataset(...)`` as a model would see it; returns row count, label sum
    and per-column sums (to compare formats) and the rows/s."""
    start = time.perf_counter()
    rows, label_sum, sums = 0, 0, {}
    for features, label in src.dataset(batch_size):
        rows += int(label.shape[0])
        label_sum += int(label.numpy().sum())
        for name in ("x0", "x1", "x2"):
            sums[name] = sums.get(name, 0.0) + float(
                np.sum(features[name].numpy(), dtype=np.float64)
            )
    seconds = time.perf_counter() - start
    return {"rows": rows, "label_sum": label_sum, "sums": sums, "rows_per_s": rows / seconds}


def main():
    args = parse_args()
    if args.workdir:
        return run(args, args.workdir)
    with tempfile.TemporaryDirectory(prefix="tfstream-chunked-") as workdir:  # removed at the end
        return run(args, workdir)


def run(args, workdir: str):
    table = make_table(args.rows)

    # -- 1. CSV, with a broken line -------------------------------------------------------------
    csv_dir = os.path.join(workdir, "csv")
    _, (bad_file, bad_line) = write_csv_with_a_bad_row(table, csv_dir)
    quarantine = os.path.join(workdir, "quarantine.jsonl")
    if os.path.exists(quarantine):
        os.remove(quarantine)  # a rerun in the same workdir starts a fresh quarantine file
    # The CSV reader infers column types from a sample of rows of several files; declare the
    # float columns so the broken number is a bad row rather than turning x1 into a string.
    src = ts.csv(
        csv_dir,
        label="label",
        schema={"x0": "float32", "x1": "float32", "x2": "float32"},
        on_error="quarantine",
        quarantine_path=quarantine,
    )
    print("schema:", {name: col.dtype for name, col in src.schema.items()})
    csv_result = stream(src, args.batch_size)
    report = src.report()
    print(f"CSV: {csv_result['rows']:,} rows streamed at {csv_result['rows_per_s']:,.0f} rows/s")
    print("row report:", report)

    # Nothing is lost silently: rows read = kept + rejected, and the rejected row is on disk
    # with its file, line, reason and raw text.
    assert report.rows_read == report.rows_ok + report.rows_rejected
    assert report.rows_ok == args.rows == csv_result["rows"], (report, csv_result)
    assert report.rows_rejected == 1, report
    with open(quarantine, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    assert len(records) == 1, records
    record = records[0]
    assert os.path.samefile(record["file"], bad_file) and record["line"] == bad_line, record
    print(
        f"quarantined: {os.path.basename(record['file'])}, line {record['line']}: "
        f"{record['error']} -> {record['text']!r}"
    )

    # -- 2. Parquet -----------------------------------------------------------------------------
    parquet_dir = os.path.join(workdir, "parquet")
    os.makedirs(parquet_dir, exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(len(table)), 3)):
        table.iloc[part].to_parquet(
            os.path.join(parquet_dir, f"part-{i:03d}.parquet"), row_group_size=5_000, index=False
        )
    # Chunks of at most `batch_rows` rows (default 65,536; small here so this small table is
    # read in several), with only the requested columns read from disk.
    parquet_src = ts.parquet(parquet_dir, label="label", batch_rows=5_000)
    parquet_result = stream(parquet_src, args.batch_size)
    # What tf.data receives: numpy chunks, which `rebatch` cuts into batches in C++.
    chunk_rows = [len(chunk["label"]) for chunk in parquet_src.iter_chunks()]
    print(
        f"Parquet: {parquet_result['rows']:,} rows streamed at "
        f"{parquet_result['rows_per_s']:,.0f} rows/s, read in {len(chunk_rows)} chunks of at "
        f"most {max(chunk_rows):,} rows"
    )

    # -- 3. pandas chunks -----------------------------------------------------------------------
    # A callable returning a chunk iterator can be read again (one call per pass); a bare
    # `pd.read_csv(..., chunksize=...)` reader works too, for a single pass.
    good_csv = os.path.join(workdir, "clean.csv")
    table.to_csv(good_csv, index=False)
    pandas_src = ts.from_pandas(
        lambda: pd.read_csv(
            good_csv, chunksize=10_000, dtype={f"x{i}": "float32" for i in range(3)}
        ),
        label="label",
    )
    pandas_result = stream(pandas_src, args.batch_size)
    print(
        f"pandas chunks: {pandas_result['rows']:,} rows streamed at "
        f"{pandas_result['rows_per_s']:,.0f} rows/s"
    )

    # The three formats deliver the same rows (the CSV without its broken line).
    for name, result in (("parquet", parquet_result), ("pandas", pandas_result)):
        assert result["rows"] == csv_result["rows"], (name, result)
        assert result["label_sum"] == csv_result["label_sum"], (name, result)
        for column, total in result["sums"].items():
            np.testing.assert_allclose(total, csv_result["sums"][column], rtol=1e-6, atol=1e-3)
    print(
        f"OK: CSV, Parquet and pandas chunks gave the same {args.rows:,} rows; 1 bad row "
        f"quarantined with its file and line"
    )


if __name__ == "__main__":
    main()
