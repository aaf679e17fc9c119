"""SQL ingest: ``ts.sql`` against ``pandas.read_sql(..., chunksize=...)`` on a real PostgreSQL
server, in one run; and peak memory streaming 200,000 vs 2,000,000 rows.

The server is started here (``tfstream.testing.postgres``). The table has an ``id``, a 0/1
``label`` and 28 ``real`` features. tfstream is consumed inside tf.data (``Dataset.reduce``)
in batches of 1024; pandas only builds its DataFrames (no tf.data at all). Peak RSS is measured
in a fresh child process per table size (VmHWM of the child, which only streams).

    python -m benchmarks.ingest_sql [--rows N] [--rss-rows SMALL LARGE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import warnings

from benchmarks._common import consume, peak_rss_mb, report, timed

BATCH = 1024
CHUNK = 10_000
FEATURES = 28
QUICK_ARGS = ["--rows", "200000", "--rss-rows", "200000", "2000000"]


def create_table(url: str, name: str, rows: int, features: int = FEATURES) -> None:
    import psycopg

    columns = ", ".join(f"random()::real as f{i}" for i in range(features))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"drop table if exists {name}")
        conn.execute(
            f"create table {name} as select g::bigint as id, (g % 2)::integer as label, "
            f"{columns} from generate_series(1, {rows}) g"
        )
        conn.execute(f"alter table {name} add primary key (id)")
        conn.execute(f"vacuum analyze {name}")


def stream_peak_rss(url: str, table: str) -> dict:
    """Streams ``table`` through ``ts.sql(...).dataset`` in a fresh process; its peak RSS."""
    code = (
        "import json, sys; from benchmarks.ingest_sql import _child; "
        "print(json.dumps(_child(sys.argv[1], sys.argv[2])))"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", code, url, table],
        capture_output=True, text=True, check=True, cwd=root,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _child(url: str, table: str) -> dict:
    import tfstream as ts

    src = ts.sql(url, f"select * from {table}", label="label", order_by="id", chunk_rows=CHUNK)
    rows = consume(src.dataset(BATCH))
    return {"rows": rows, "peak_rss_mb": peak_rss_mb()}


def run(rows: int = 1_000_000, rss_rows=(200_000, 2_000_000), *, repeats: int = 3) -> dict:
    import pandas as pd
    import psycopg

    import tfstream as ts
    from tfstream.testing.postgres import postgres_server

    with postgres_server() as url:
        create_table(url, "bench", rows)
        query = "select * from bench order by id"

        def tfstream_dataset():
            return consume(ts.sql(url, query, label="label", chunk_rows=CHUNK).dataset(BATCH))

        def tfstream_chunks():
            src = ts.sql(url, query, label="label", chunk_rows=CHUNK)
            return sum(len(chunk["id"]) for chunk in src.iter_chunks())

        def pandas_read_sql():
            with psycopg.connect(url) as conn, warnings.catch_warnings():
                # pandas warns that it only tests SQLAlchemy and sqlite3 connections.
                warnings.simplefilter("ignore", UserWarning)
                return sum(len(frame) for frame in pd.read_sql(query, conn, chunksize=CHUNK))

        def psycopg_fetch_only():
            with psycopg.connect(url) as conn, conn.cursor(name="c", binary=True) as cursor:
                cursor.execute(query)
                n = 0
                while batch := cursor.fetchmany(CHUNK):
                    n += len(batch)
                return n

        load = os.getloadavg()
        methods = [
            ("pandas.read_sql(chunksize=10000)", pandas_read_sql, repeats),
            ("tfstream sql(...).dataset(1024)", tfstream_dataset, repeats),
            ("tfstream sql(...).iter_chunks()", tfstream_chunks, repeats),
            ("psycopg named cursor fetch only", psycopg_fetch_only, repeats),
        ]
        results = _interleaved(methods, rows, repeats)
        rss = {}
        for n in rss_rows:
            create_table(url, f"rss_{n}", n)
            rss[n] = stream_peak_rss(url, f"rss_{n}")
            if rss[n]["rows"] != n:
                raise RuntimeError(f"streamed {rss[n]['rows']} rows of {n}")
            print(f"  peak RSS streaming {n:,} rows: {rss[n]['peak_rss_mb']:.0f} MB", flush=True)
            with psycopg.connect(url) as conn:
                conn.execute(f"drop table rss_{n}")
        small, large = rss_rows
        ratio = rss[large]["peak_rss_mb"] / rss[small]["peak_rss_mb"]
        print(f"  peak RSS ratio {large:,} / {small:,} rows: {ratio:.3f} (target <= 1.2)")
        report(
            f"SQL ingest (PostgreSQL 127.0.0.1): {rows:,} rows x 30 columns, batches of {BATCH}"
            f"; load average {load[0]:.2f}",
            results,
            reference="pandas.read_sql(chunksize=10000)",
            json_name="ingest_sql.json",
            extra={
                "peak_rss_mb": {str(n): v["peak_rss_mb"] for n, v in rss.items()},
                "peak_rss_ratio": ratio,
                "loadavg_before_timing": load,
            },
        )
        return {"results": results, "rss": rss, "ratio": ratio}


def _interleaved(methods, rows: int, repeats: int) -> list[dict]:
    """Best of ``repeats`` rounds, each running every method once in turn, so that a change of
    load on this shared machine hits all methods alike."""
    best = {name: float("inf") for name, _, _ in methods}
    for _ in range(repeats):
        for name, fn, _ in methods:
            seconds, count = timed(fn)
            if count != rows:
                raise RuntimeError(f"{name} produced {count} rows, expected {rows}")
            best[name] = min(best[name], seconds)
            print(f"  {name}: {seconds:.2f} s", flush=True)
    return [{"name": n, "seconds": t, "rows_per_s": rows / t} for n, t in best.items()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rss-rows", type=int, nargs=2, default=[200_000, 2_000_000])
    args = parser.parse_args(argv)
    run(args.rows, tuple(args.rss_rows))


if __name__ == "__main__":
    main()
