"""Streaming from PostgreSQL: a query's rows into ``tf.data`` in chunks, with bounded memory.

``ts.sql(url, query, params=..., label=..., chunk_rows=...)`` runs the query through a
server-side cursor (psycopg 3) and fetches ``chunk_rows`` rows at a time, so a table larger
than memory streams like a set of files: the same ``.schema``, ``.dataset(...)``, statistics
and training. Values go in as query parameters, never formatted into the SQL text; NULL becomes
a missing value (NaN for numbers). An exact resume after a crash needs a deterministic order:
``ORDER BY`` a unique key.

This script starts a throwaway PostgreSQL server (``tfstream.testing.postgres``: ``initdb`` and
``pg_ctl`` in a temporary directory, on a free loopback port; it needs the server binaries,
e.g. ``apt-get install postgresql``) — or uses the database at ``--url`` — loads a table with
``COPY``, and then:

1. streams a parameterised query into ``tf.data`` and checks the rows and column sums against
   the database's own aggregates;
2. computes statistics in one pass and checks mean, variance and NULL counts against
   PostgreSQL's ``avg``, ``var_pop`` and ``count``;
3. trains a small model for an epoch straight from the database.

Run it::

    python examples/postgres_source.py                  # 50,000 rows, throwaway server
    python examples/postgres_source.py --rows 2000
    python examples/postgres_source.py --url postgresql://user:password@host/db
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import numpy as np

import tfstream as ts

TABLE = "tfstream_example_events"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the generated table")
    parser.add_argument("--url", help="an existing database (default: a throwaway server)")
    parser.add_argument("--chunk-rows", type=int, default=4_000, help="rows fetched at a time")
    parser.add_argument("--workdir", help="unused: the data live in the database")
    return parser.parse_args()


@contextlib.contextmanager
def database(url: str | None):
    if url:
        yield url
        return
    from tfstream.testing.postgres import find_pg_bin, postgres_server

    if find_pg_bin() is None:
        sys.exit(
            "No PostgreSQL server binaries (pg_ctl) found: install them (apt-get install "
            "postgresql) or pass --url of a database."
        )
    with postgres_server() as throwaway:
        yield throwaway


def load_table(url: str, rows: int) -> None:
    """Creates the table and fills it with COPY: an id, a 0/1 label, two numbers (f1 with
    NULLs) and a city."""
    import psycopg

    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 2))
    city = rng.choice(["Lisbon", "Oslo", "Quito"], rows)
    label = x[:, 0] - x[:, 1] + np.where(city == "Oslo", 1.0, 0.0) + rng.logistic(size=rows) > 0
    missing = rng.random(rows) < 0.03
    with psycopg.connect(url) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(
            f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, label int, f0 real, "
            "f1 double precision, city text)"
        )
        with conn.cursor().copy(f"COPY {TABLE} (id, label, f0, f1, city) FROM STDIN") as copy:
            for i in range(rows):
                f1 = None if missing[i] else float(x[i, 1])
                copy.write_row((i, int(label[i]), float(x[i, 0]), f1, str(city[i])))


def main():
    args = parse_args()
    with database(args.url) as url:
        load_table(url, args.rows)
        run(args, url)


def run(args, url: str) -> None:
    import psycopg

    # Every row with id below a bound, in a deterministic order; the bound is a parameter.
    query = f"SELECT label, f0, f1, city FROM {TABLE} WHERE id < %(limit)s ORDER BY id"
    params = {"limit": args.rows}
    # Numbers arrive as float32 by default (double precision included); f1 is declared
    # float64 here to keep every digit, so its statistics can match the database's exactly.
    src = ts.sql(
        url,
        query,
        params=params,
        label="label",
        chunk_rows=args.chunk_rows,
        schema={"f1": "float64"},
    )
    print("schema:", {name: col.dtype for name, col in src.schema.items()})

    # The database's own answers, to check against.
    with psycopg.connect(url) as conn:
        count, count_f1, sum_label, sum_f0, avg_f0, var_f0, avg_f1, var_f1 = conn.execute(
            "SELECT count(*), count(f1), sum(label), sum(f0::float8), avg(f0::float8), "
            f"var_pop(f0::float8), avg(f1), var_pop(f1) FROM {TABLE} WHERE id < %(limit)s",
            params,
        ).fetchone()

    # -- 1. into tf.data -------------------------------------------------------------------
    rows, labels, total_f0 = 0, 0, 0.0
    for features, label in src.dataset(1024):
        rows += int(label.shape[0])
        labels += int(np.sum(label.numpy()))
        total_f0 += float(np.sum(features["f0"].numpy(), dtype=np.float64))
    print(f"streamed {rows:,} rows in chunks of {args.chunk_rows:,}: {src.report()}")
    assert rows == count and labels == sum_label, (rows, count, labels, sum_label)
    np.testing.assert_allclose(total_f0, sum_f0, rtol=1e-9, atol=1e-6)

    # -- 2. statistics in one pass, against the database's aggregates ----------------------
    stats = ts.compute_stats(src, progress=False)
    print(stats.summary())
    np.testing.assert_allclose(stats["f0"].mean, float(avg_f0), rtol=1e-9)
    np.testing.assert_allclose(stats["f0"].variance, float(var_f0), rtol=1e-9)
    np.testing.assert_allclose(stats["f1"].mean, float(avg_f1), rtol=1e-9)
    np.testing.assert_allclose(stats["f1"].variance, float(var_f1), rtol=1e-9)
    assert stats["f1"].nan_count == count - count_f1, (stats["f1"].nan_count, count - count_f1)
    print(f"statistics equal PostgreSQL's avg/var_pop; {count - count_f1:,} NULLs in f1 counted")

    # -- 3. train straight from the database ------------------------------------------------
    import keras

    def build():
        prep = stats.preprocessor()  # f0, f1 standardised (NULL -> the mean), city one-hot
        h = keras.layers.Dense(16, activation="relu")(prep.output)
        return keras.Model(prep.input, keras.layers.Dense(1)(h))

    trainer = ts.Trainer(
        build,
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)],
        accumulation_steps=2,
    )
    history = trainer.fit(src, batch_size=256, epochs=2, verbose=2)
    accuracy = history.history["binary_accuracy"][-1]
    assert history.history["rows"][-1] == count and accuracy > 0.6, history.history
    print(
        f"OK: {count:,} rows streamed from PostgreSQL equal the table (count, sums, mean, "
        f"variance, NULLs); a model trained on them reached accuracy {accuracy:.3f}"
    )


if __name__ == "__main__":
    main()
