"""``ts.sql``: a real PostgreSQL server (tests marked ``postgres``, started once per test process
by the ``postgres_url`` fixture) and sqlite3 from the standard library. Streamed rows are checked
against a direct psycopg / sqlite3 fetch converted independently here, statistics against numpy
float64, sharded reads against the unsharded read, and a pass whose connection is killed by
``pg_terminate_backend`` against an uninterrupted one."""

import datetime
import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid

import numpy as np
import pytest

import tfstream as ts
from tfstream.sources.sql import (
    SqlConnectionError,
    SqlOptions,
    SqlQueryError,
    UnorderedQueryWarning,
    _has_top_level_order_by,
)

N = 50_000
CHUNK = 1000
EPOCH = datetime.datetime(1970, 1, 1)
UTC = datetime.timezone.utc

_BIG = f"""
create table big as select g as id,
  case when g % 7 = 0 then null else (g % 300 - 150)::smallint end as i2,
  case when g % 11 = 0 then null else (g * 37 % 100000 - 50000)::integer end as i4,
  case when g % 5 = 0 then null else g::bigint * 100003 end as i8,
  case when g % 13 = 0 then null else (g * 0.25 - 7)::real end as r,
  case when g % 17 = 0 then null else sin(g)::double precision end as d,
  case when g % 19 = 0 then null else (g * 1.0001 - 9)::numeric(12, 4) end as n,
  case when g % 23 = 0 then null else 'text ' || g || ' é' end as t,
  case when g % 29 = 0 then null else ('v' || (g % 50))::varchar(20) end as v,
  case when g % 31 = 0 then null else (chr(97 + g % 26))::char(3) end as c,
  case when g % 37 = 0 then null else (g % 3 = 0) end as b,
  case when g % 41 = 0 then null else date '2000-01-01' + (g % 20000 - 10000) end as dt,
  case when g % 43 = 0 then null
       else timestamp '1960-01-01 00:00:00.5' + g * interval '1 hour 17 minutes 3.25 seconds'
  end as ts,
  case when g % 47 = 0 then null
       else timestamptz '2020-06-01 12:00:00+02' + g * interval '13 minutes 0.75 seconds'
  end as tz,
  (g % 2)::integer as label
from generate_series(1, {N}) g;
alter table big add primary key (id);
"""
NULLABLE_INTS = ["i2", "i4", "i8", "b", "dt", "ts", "tz"]


@pytest.fixture(scope="module")
def pg(postgres_url):
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(postgres_url) as conn:
        conn.execute("drop table if exists big")
        conn.execute(_BIG)
    return postgres_url


def fetch(url, query, params=None):
    import psycopg

    with psycopg.connect(url) as conn:
        cursor = conn.execute(query, params)
        return [d.name for d in cursor.description], cursor.fetchall()


def expected(names, rows, dtypes):
    """Direct-fetch rows -> numpy columns as the docs say (independent of sql.py)."""
    out = {}
    for k, name in enumerate(names):
        values = [row[k] for row in rows]
        dtype = dtypes[name]
        if dtype == "string":
            out[name] = np.array(["" if v is None else v for v in values], dtype=object)
            continue
        numbers = [np.nan if v is None else _number(v) for v in values]
        out[name] = np.array(numbers, dtype=np.float64).astype(dtype)
    return out


def _number(v):
    if isinstance(v, datetime.datetime):
        delta = v - (EPOCH.replace(tzinfo=UTC) if v.tzinfo else EPOCH)
        return delta.days * 86400 + delta.seconds  # floored: timedelta keeps seconds >= 0
    if isinstance(v, datetime.date):
        return (v - EPOCH.date()).days
    return float(v)


def collect(src, **kwargs):
    chunks = list(src.iter_chunks(**kwargs))
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}, chunks


def assert_columns_equal(got, want):
    assert list(got) == list(want)
    for name in want:
        if want[name].dtype == object:
            assert got[name].tolist() == want[name].tolist(), name
        else:
            assert got[name].dtype == want[name].dtype, name
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)


# -- PostgreSQL --------------------------------------------------------------------------------


@pytest.mark.postgres
def test_schema_from_type_oids(pg):
    src = ts.sql(pg, "select * from big order by id", label="label")
    dtypes = {name: col.dtype for name, col in src.schema.items()}
    assert dtypes == {
        "id": "int64", "i2": "int64", "i4": "int64", "i8": "int64", "r": "float32",
        "d": "float32", "n": "float32", "t": "string", "v": "string", "c": "string",
        "b": "int64", "dt": "int64", "ts": "int64", "tz": "int64", "label": "int64",
    }  # fmt: skip
    assert src.feature_names == [n for n in dtypes if n != "label"]


@pytest.mark.postgres
def test_rows_equal_a_direct_fetch_with_nulls(pg):
    """Every type, NULLs in every column but the key, 50 chunks of 1000 rows."""
    overrides = {name: "float64" for name in NULLABLE_INTS}
    overrides["d"] = "float64"
    src = ts.sql(pg, "select * from big order by id", schema=overrides, chunk_rows=CHUNK)
    got, chunks = collect(src)
    assert len(chunks) == N // CHUNK and max(len(c["id"]) for c in chunks) == CHUNK
    names, rows = fetch(pg, "select * from big order by id")
    dtypes = {name: col.dtype for name, col in src.schema.items()}
    want = expected(names, rows, dtypes)
    assert_columns_equal(got, want)
    assert np.isnan(got["tz"]).sum() == N // 47 and (got["t"] == "").sum() == N // 23
    assert got["c"][1] == "c  "  # char(3) keeps its padding, as psycopg returns it
    report = src.report()
    assert (report.rows_read, report.rows_ok, report.rows_rejected) == (N, N, 0)


@pytest.mark.postgres
def test_null_in_an_int64_column_rejects_the_row(pg):
    query = "select id, i2, b, label from big where id <= 100 order by id"
    with pytest.raises(ts.DataError, match=r"missing value in int64 column 'i2'.*float32"):
        list(ts.sql(pg, query).iter_chunks())
    src = ts.sql(pg, query, on_error="skip", chunk_rows=30)
    got, _ = collect(src)
    names, rows = fetch(pg, query)
    kept = [r for r in rows if r[1] is not None and r[2] is not None]
    assert_columns_equal(got, expected(names, kept, dict.fromkeys(names, "int64")))
    report = src.report()
    assert (report.rows_read, report.rows_ok) == (100, len(kept))
    assert report.rows_rejected == 100 - len(kept) > 0
    first = report.rejected[0]
    assert (first.file, first.record) == ("sql query", 6) and json.loads(first.text)["id"] == 7


@pytest.mark.postgres
def test_big_integers_stay_exact(pg):
    query = "select g, (9007199254740993 + g * 1000)::bigint as k from generate_series(1, 5) g"
    got = collect(ts.sql(pg, query, order_by="g"))[0]
    assert got["k"].tolist() == [9007199254740993 + g * 1000 for g in range(1, 6)]


@pytest.mark.postgres
def test_schema_overrides_and_columns(pg):
    src = ts.sql(
        pg, "select * from big where id % 7 <> 0 and id <= 2000 order by id",
        columns=["i2", "d", "dt", "ts"], schema={"d": "float64", "dt": "string", "ts": "string"},
        label="label",
    )  # fmt: skip
    assert {n: c.dtype for n, c in src.schema.items()} == {
        "i2": "int64", "d": "float64", "dt": "string", "ts": "string", "label": "int64"
    }  # fmt: skip
    got, _ = collect(src)
    names, rows = fetch(
        pg, "select i2, d, dt from big where id % 7 <> 0 and id <= 2000 order by id"
    )
    np.testing.assert_array_equal(got["i2"], [r[0] for r in rows])
    np.testing.assert_array_equal(
        got["d"], np.array([np.nan if r[1] is None else r[1] for r in rows])
    )
    assert got["dt"].tolist() == ["" if r[2] is None else r[2].isoformat() for r in rows]
    assert got["ts"][0] == "1960-01-01 01:17:03.750000"


@pytest.mark.postgres
def test_an_unknown_type_needs_a_string_override(pg):
    query = "select id, gen_random_uuid() as u, '{\"a\": 1}'::jsonb as j from big where id < 4"
    with pytest.raises(ts.SchemaError, match=r"'u' has the database type uuid.*'string'"):
        ts.sql(pg, query)
    src = ts.sql(pg, query, schema={"u": "string", "j": "string"}, order_by="id")
    got, _ = collect(src)
    assert len(got["u"]) == 3 and all(len(u) == 36 for u in got["u"])
    assert got["j"].tolist() == ['{"a": 1}'] * 3


@pytest.mark.postgres
def test_dataset_batches_and_labels(pg):
    src = ts.sql(pg, "select id, r, t, label from big where id <= 5000 order by id",
                 label="label", schema={"r": "float64"})  # fmt: skip
    rows = labels = 0
    for features, label in src.dataset(1024):
        assert set(features) == {"id", "r", "t"}
        rows += int(label.shape[0])
        labels += int(label.numpy().sum())
    assert (rows, labels) == (5000, 2500)


@pytest.mark.postgres
def test_params_are_passed_not_interpolated(pg):
    hostile = "x'; drop table big; --"
    src = ts.sql(pg, "select id from big where t = %s or id = %s order by id",
                 params=[hostile, 42])  # fmt: skip
    assert collect(src)[0]["id"].tolist() == [42]
    src = ts.sql(pg, "select id, t from big where id between %(lo)s and %(hi)s and t like 'text %%'"
                 " order by id", params={"lo": 10, "hi": 12})  # fmt: skip
    assert collect(src)[0]["t"].tolist() == ["text 10 é", "text 11 é", "text 12 é"]
    assert fetch(pg, "select count(*) from big")[1] == [(N,)]


@pytest.mark.postgres
def test_an_open_psycopg_connection_and_a_callable(pg):
    import psycopg

    want = collect(ts.sql(pg, "select id, d from big where id <= 3000 order by id"))[0]
    with psycopg.connect(pg) as conn:
        got = collect(ts.sql(conn, "select id, d from big where id <= 3000 order by id"))[0]
        assert_columns_equal(got, want)
        assert not conn.closed  # tfstream does not close a connection it was given
        chunks = ts.sql(conn, "select id from big order by id", chunk_rows=100).iter_chunks()
        assert next(chunks)["id"].tolist() == list(range(1, 101))
        chunks.close()  # a pass left early leaves the connection usable
        assert conn.execute("select count(*) from big").fetchone() == (N,)
    got = collect(ts.sql(lambda: psycopg.connect(pg), "select id, d from big where id <= 3000",
                         order_by="id", chunk_rows=700))[0]  # fmt: skip
    assert_columns_equal(got, want)


@pytest.mark.postgres
def test_compute_stats_equal_numpy_float64(pg):
    src = ts.sql(pg, "select i2, r, d, n from big", chunk_rows=CHUNK,
                 schema={"i2": "float64", "d": "float64", "n": "float64"})  # fmt: skip
    stats = ts.compute_stats(src, progress=False)
    names, rows = fetch(pg, "select i2, r, d, n from big")
    for k, name in enumerate(names):
        values = np.array([np.nan if r[k] is None else float(r[k]) for r in rows])
        if name == "r":
            values = values.astype(np.float32).astype(np.float64)
        present = values[~np.isnan(values)]
        s = stats[name]
        assert (s.count, s.nan_count) == (len(present), N - len(present)) or (
            s.count == N and s.nan_count == N - len(present)
        )
        scale = np.abs(present).max()
        np.testing.assert_allclose(s.mean, present.mean(), rtol=1e-12, atol=1e-14 * scale)
        np.testing.assert_allclose(s.variance, present.var(), rtol=1e-10, err_msg=name)
        assert (s.min, s.max) == (present.min(), present.max())


@pytest.mark.postgres
@pytest.mark.parametrize("shard_key", [None, "id"])
def test_sharded_reads_equal_the_unsharded_read(pg, shard_key):
    import tensorflow as tf

    query = "select id, i4, t from big where id % 5 <> 1"
    whole = collect(ts.sql(pg, query, order_by="id", schema={"i4": "float64"}))[0]
    parts = []
    for i in range(3):
        src = ts.sql(pg, query, order_by="id", schema={"i4": "float64"}, shard_key=shard_key)
        context = tf.distribute.InputContext(num_input_pipelines=3, input_pipeline_id=i)
        ids = np.concatenate([f["id"].numpy() for f in src.dataset(4096, input_context=context)])
        if shard_key:
            assert set(ids % 3) == {i}
            assert src.report().rows_read == len(ids)  # each pipeline reads only its rows
        else:
            assert src.report().rows_read == len(whole["id"])
        parts.append(ids)
    merged = np.sort(np.concatenate(parts))
    np.testing.assert_array_equal(merged, whole["id"])  # complete and disjoint


@pytest.mark.postgres
def test_shard_key_handles_negative_keys(pg):
    query = "select g as k from generate_series(-20, 20) g"
    got = [collect(ts.sql(pg, query, shard_key="k", order_by="k"), num_shards=4, shard_index=i)
           [0]["k"] for i in range(4)]  # fmt: skip
    assert sorted(np.concatenate(got).tolist()) == list(range(-20, 21))


@pytest.mark.postgres
def test_an_unordered_query_refuses_shuffle_and_row_sharding_and_warns(pg):
    src = ts.sql(pg, "select id, d from big where id < 100")
    with pytest.raises(ValueError, match=r"no top-level ORDER BY.*order_by="):
        src.dataset(10, shuffle=True, seed=1)
    with pytest.raises(ValueError, match="sharding rows"):
        list(src.iter_chunks(num_shards=2, shard_index=0))
    with pytest.warns(UnorderedQueryWarning, match="ORDER BY on a unique key"):
        src.dataset(10)
    ordered = ts.sql(pg, "select id, d from big where id < 100 order by id")
    ids = np.concatenate([f["id"].numpy() for f in ordered.dataset(10, shuffle=True, seed=1)])
    again = np.concatenate([f["id"].numpy() for f in ordered.dataset(10, shuffle=True, seed=1)])
    np.testing.assert_array_equal(ids, again)
    assert sorted(ids.tolist()) == list(range(1, 100))


def test_top_level_order_by_detection():
    assert _has_top_level_order_by("select * from t ORDER  BY id")
    assert _has_top_level_order_by("select a from t union select a from u order by 1")
    assert _has_top_level_order_by("with q as (select 1) select * from q\norder\nby x;")
    assert not _has_top_level_order_by("select * from (select * from t order by id) q")
    assert not _has_top_level_order_by("select row_number() over (order by id) from t")
    assert not _has_top_level_order_by("select 'order by id' from t -- order by id")
    assert not _has_top_level_order_by('select "order by" from t /* order by x */')
    assert not _has_top_level_order_by("select $$ order by $$, $a$ ) order by $a$ from t")
    assert not _has_top_level_order_by("select 'it''s ( order by' from t")


@pytest.mark.postgres
def test_wrong_password_and_unreachable_host_hide_the_password(pg):
    password = pg.split(":")[2].split("@")[0]
    wrong = pg.replace(password, "not-the-password-" + password[:6])
    for url, secret in [(wrong, "not-the-password-"), (pg.replace(pg.split(":")[-1].split("/")[0],
                                                                     "1"), password)]:  # fmt: skip
        with pytest.raises(SqlConnectionError) as info:
            ts.sql(url, "select 1 as x")
        error = info.value
        assert isinstance(error, OSError)
        chain, e = [], error
        while e is not None:
            chain.append(f"{type(e).__name__}: {e} {e.args!r}")
            e = e.__cause__ or e.__context__
        text = "\n".join(chain)
        assert secret not in text and password not in text
        assert "***" in str(error) and "127.0.0.1" in str(error)
    assert password not in repr(ts.sql(pg, "select 1 as x")) and "***" in repr(
        ts.sql(pg, "select 1 as x")
    )
    assert "password authentication failed" in str(
        pytest.raises(SqlConnectionError, ts.sql, wrong, "select 1").value
    )


@pytest.mark.postgres
def test_a_failing_query_raises_the_database_message(pg):
    with pytest.raises(SqlQueryError, match='relation "no_such_table" does not exist'):
        ts.sql(pg, "select * from no_such_table")
    src = ts.sql(pg, "select id, 1 / (50 - id) as x from big where id <= 60 order by id",
                 chunk_rows=10)  # fmt: skip
    with pytest.raises(SqlQueryError, match="division by zero"):
        list(src.iter_chunks())


def app():
    """Options naming the source's connections uniquely, so that only they are killed."""
    return SqlOptions(application_name=f"tfstream-test-{uuid.uuid4().hex[:12]}")


def src_app(src):
    return src._options.application_name


def _terminate_after(url, src, chunks_before_kill):
    """Streams ``src``, killing its server backend after ``chunks_before_kill`` chunks."""
    import psycopg

    out = []
    with psycopg.connect(url, autocommit=True) as admin:
        for i, chunk in enumerate(src.iter_chunks()):
            out.append(chunk)
            if i + 1 == chunks_before_kill:
                killed = admin.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity "
                    "where application_name = %s",
                    [src_app(src)],
                ).fetchall()
                assert killed == [(True,)]
    return out


@pytest.mark.postgres
def test_a_dropped_connection_reconnects_after_the_last_key(pg):
    src = ts.sql(pg, "select id, t from big", order_by="id", chunk_rows=CHUNK, options=app())
    chunks = _terminate_after(pg, src, 3)
    ids = np.concatenate([c["id"] for c in chunks])
    np.testing.assert_array_equal(ids, np.arange(1, N + 1))  # every row once, in order
    assert src.report().rows_read == N


@pytest.mark.postgres
def test_a_dropped_connection_without_a_key_is_an_error(pg):
    src = ts.sql(pg, "select id, t from big order by id", chunk_rows=CHUNK, options=app())
    with pytest.raises(SqlConnectionError, match=r"lost after [\d,]+ rows.*order_by="):
        _terminate_after(pg, src, 3)


@pytest.mark.slow
@pytest.mark.postgres
def test_trainer_on_sql_equals_trainer_on_the_fetched_frame(pg, tmp_path):
    import keras
    import pandas as pd

    query = "select coalesce(d, 0) as d, r, label from big where id <= 2000 and r is not null"

    def trainer(**kwargs):
        keras.utils.set_random_seed(0)
        inputs = {name: keras.Input((), name=name) for name in ["d", "r"]}
        h = keras.layers.Concatenate()([keras.layers.Reshape((1,))(inputs[n]) for n in inputs])
        model = keras.Model(inputs, keras.layers.Dense(1)(h))
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
        return ts.Trainer(model, optimizer=keras.optimizers.SGD(0.01), loss=loss, **kwargs)

    on_sql = trainer()
    history = on_sql.fit(ts.sql(pg, query + " order by id", label="label"), batch_size=256,
                         epochs=2, verbose=0)  # fmt: skip
    assert np.isfinite(history.history["loss"]).all()
    names, rows = fetch(pg, query + " order by id")
    frame = pd.DataFrame(rows, columns=names).astype({"d": "float32", "r": "float32"})
    on_frame = trainer()
    on_frame.fit(ts.from_pandas(frame, label="label"), batch_size=256, epochs=2, verbose=0)
    for a, b in zip(on_sql.model.get_weights(), on_frame.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # Without an ORDER BY, a checkpointed fit warns and a shuffled one is refused.
    unordered = ts.sql(pg, query, label="label")
    with pytest.warns(UnorderedQueryWarning, match="resumable"):
        trainer(checkpoint_dir=tmp_path / "ckpt").fit(unordered, batch_size=256, verbose=0)
    with pytest.raises(ValueError, match="ORDER BY on a unique key"):
        trainer().fit(unordered, batch_size=256, shuffle=True, verbose=0)


@pytest.mark.postgres
def test_trainer_resume_sees_every_row_once_per_epoch(pg, tmp_path):
    import keras

    from tfstream.testing import CanaryLayer, read_canary
    from tfstream.train.checkpoint import CheckpointOptions, latest_state

    rows, batch, epochs = 300, 32, 2
    query = f"select id, coalesce(d, 0) as d, label from big where id <= {rows} order by id"
    log = tmp_path / "seen.txt"

    def build():
        keras.utils.set_random_seed(0)
        inputs = {"id": keras.Input((), name="id", dtype="int64"), "d": keras.Input((), name="d")}
        h = CanaryLayer(log)(keras.layers.Reshape((1,))(inputs["d"]), inputs["id"])
        return keras.Model(inputs, keras.layers.Dense(1)(h))

    class Crash(Exception):
        pass

    class CrashAfter(keras.callbacks.Callback):
        def __init__(self, steps):
            super().__init__()
            self.seen, self.steps = 0, steps

        def on_train_batch_end(self, batch, logs=None):
            self.seen += 1
            if self.seen == self.steps:
                raise Crash

    def trainer():
        return ts.Trainer(
            build, optimizer=keras.optimizers.SGD(0.01),
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
            checkpoint_dir=tmp_path / "ckpt",
            options=ts.TrainerOptions(checkpoint=CheckpointOptions(every_steps=3,
                                                                   every_seconds=None)),
        )  # fmt: skip

    def fit(t, **kwargs):
        return t.fit(ts.sql(pg, query, label="label"), batch_size=batch, epochs=epochs,
                     shuffle=True, seed=5, verbose=0, **kwargs)  # fmt: skip

    with pytest.raises(Crash):
        fit(trainer(), callbacks=[CrashAfter(13)])  # epoch 1 (10 windows) + 3 of epoch 2
    crashed = np.concatenate([i for _, i in read_canary(log)])
    assert len(crashed) == rows + 3 * batch
    _, state = latest_state(tmp_path / "ckpt")
    committed = state.epoch * rows + state.rows_done  # rows trained before the checkpoint
    assert rows < committed < len(crashed)  # a resume mid-epoch 2, some rows to train again
    os.remove(log)
    fit(trainer())
    resumed = np.concatenate([i for _, i in read_canary(log)])
    sequence = np.concatenate([crashed[:committed], resumed])
    assert len(sequence) == epochs * rows
    for e in range(epochs):
        np.testing.assert_array_equal(np.sort(sequence[e * rows : (e + 1) * rows]),
                                      np.arange(1, rows + 1))  # fmt: skip


@pytest.mark.postgres
def test_import_error_names_the_extra(pg, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ImportError, match=r"pip install 'tfstream\[postgres\]'"):
        ts.sql(pg, "select 1 as x")


def test_import_tfstream_does_not_import_psycopg():
    code = "import sys, tfstream; print('psycopg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- any DB-API: sqlite3 -----------------------------------------------------------------------


@pytest.fixture
def sqlite_path(tmp_path):
    path = str(tmp_path / "t.db")
    conn = sqlite3.connect(path)
    conn.execute("create table t (id integer primary key, x real, s text, flag boolean, "
                 "day date, mixed)")  # fmt: skip
    rng = np.random.default_rng(0)
    rows = []
    for i in range(1, 2501):
        x = None if i % 9 == 0 else float(rng.standard_normal())
        s = None if i % 10 == 0 else f"s{i % 7}"
        mixed = [1, 2.5, None][i % 3]
        rows.append((i, x, s, i % 2 == 0, datetime.date(2020, 1, 1 + i % 28), mixed))
    conn.executemany("insert into t values (?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return path


def test_sqlite_rows_equal_a_direct_fetch(sqlite_path):
    conn = sqlite3.connect(sqlite_path, check_same_thread=False)
    src = ts.sql(conn, "select id, x, s, flag, mixed from t where id > ? order by id",
                 params=[100], chunk_rows=333)  # fmt: skip
    dtypes = {n: c.dtype for n, c in src.schema.items()}
    assert dtypes == {"id": "int64", "x": "float32", "s": "string", "flag": "int64",
                      "mixed": "float32"}  # fmt: skip
    got, chunks = collect(src)
    assert len(chunks) == -(-2400 // 333)
    cursor = conn.execute("select id, x, s, flag, mixed from t where id > 100 order by id")
    names = [d[0] for d in cursor.description]
    assert_columns_equal(got, expected(names, cursor.fetchall(), dtypes))
    assert src.report().rows_ok == 2400


def test_sqlite_callable_named_params_and_dates(sqlite_path):
    src = ts.sql(lambda: sqlite3.connect(sqlite_path), "select id, day from t where id <= :n",
                 params={"n": 50}, order_by="id", schema={"day": "string"})  # fmt: skip
    got, _ = collect(src)
    assert got["day"].tolist()[:2] == ["2020-01-02", "2020-01-03"]  # sqlite stores text
    assert got["id"].tolist() == list(range(1, 51))


def test_sqlite_shard_key_and_dataset_in_tf_threads(sqlite_path):
    import tensorflow as tf

    parts = []
    for i in range(2):
        connect = lambda: sqlite3.connect(sqlite_path, check_same_thread=False)  # noqa: E731
        src = ts.sql(connect, "select id, x from t", order_by="id", shard_key="id")
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i)
        parts.append(
            np.concatenate([f["id"].numpy() for f in src.dataset(64, input_context=context)])
        )
        assert set(parts[-1] % 2) == {i}  # mod(id, 2) = i
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(1, 2501))


def test_sqlite_thread_error_says_how_to_fix(sqlite_path):
    conn = sqlite3.connect(sqlite_path)  # check_same_thread=True: tf.data reads elsewhere
    src = ts.sql(conn, "select id from t order by id")
    errors = []

    def read():
        try:
            list(src.iter_chunks())
        except SqlQueryError as e:
            errors.append(str(e))

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert errors and "check_same_thread=False" in errors[0]


def test_sqlite_bad_values_are_rejected_per_on_error(sqlite_path):
    conn = sqlite3.connect(sqlite_path, check_same_thread=False)
    conn.execute("create table m (id integer, v)")
    conn.executemany("insert into m values (?, ?)", [(1, 1.5), (2, "abc"), (3, None), (4, 2)])
    with pytest.raises(ts.DataError, match="not a valid float32"):
        list(ts.sql(conn, "select * from m order by id", schema={"v": "float32"}).iter_chunks())
    src = ts.sql(conn, "select * from m order by id", schema={"v": "float32"}, on_error="skip")
    got, _ = collect(src)
    assert got["id"].tolist() == [1, 3, 4] and np.isnan(got["v"][1])
    assert src.report().rows_rejected == 1
    with pytest.raises(SqlQueryError, match="no such table"):
        ts.sql(conn, "select * from nope")


def test_argument_checks():
    with pytest.raises(ValueError, match="PostgreSQL URL"):
        ts.sql("mysql://u:secret@h/db", "select 1")
    with pytest.raises(ValueError, match=r"mysql://u:\*\*\*@h/db"):
        ts.sql("mysql://u:secret@h/db", "select 1")
    with pytest.raises(TypeError, match="connection_or_url"):
        ts.sql(42, "select 1")
    conn = sqlite3.connect(":memory:")
    with pytest.raises(ValueError, match="chunk_rows"):
        ts.sql(conn, "select 1 as x", chunk_rows=0)
    with pytest.raises(TypeError, match="params"):
        ts.sql(conn, "select ? as x", params="1")
    with pytest.raises(ts.SchemaError, match="order_by"):
        ts.sql(conn, "select 1 as x", order_by="id")
    with pytest.raises(ts.SchemaError, match=r"\['y'\]"):
        ts.sql(conn, "select 1 as x", columns=["y"])
    with pytest.raises(ts.SchemaError, match="AS"):
        ts.sql(conn, "select 1 as x, 2 as x")


_RSS_CHILD = """
import sys, tfstream as ts
src = ts.sql(sys.argv[1], "select * from " + sys.argv[2], label="label", order_by="id")
rows = sum(len(chunk["id"]) for chunk in src.iter_chunks())
status = open("/proc/self/status").read()
peak = int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1])
print(rows, peak)
"""


@pytest.mark.slow
@pytest.mark.postgres
def test_peak_rss_does_not_grow_with_the_table(pg):
    """Streaming 2,000,000 rows peaks within 1.2x of streaming 200,000 (fresh processes; VmHWM,
    which, unlike ru_maxrss, is not inherited across exec)."""
    import psycopg

    peaks = {}
    for n in (200_000, 2_000_000):
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f"drop table if exists rss_{n}")
            conn.execute(
                f"create table rss_{n} as select g::bigint as id, (g % 2)::integer as label, "
                "random()::real as f0, random() as f1, 'row ' || g as s "
                f"from generate_series(1, {n}) g"
            )
        out = subprocess.run([sys.executable, "-c", _RSS_CHILD, pg, f"rss_{n}"],
                             capture_output=True, text=True, check=True)  # fmt: skip
        rows, peak_kb = map(int, out.stdout.split())
        assert rows == n
        peaks[n] = peak_kb
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f"drop table rss_{n}")
    assert peaks[2_000_000] <= 1.2 * peaks[200_000], peaks


def test_docstring_example_runs():
    import doctest

    from tfstream.sources import sql as sql_module

    result = doctest.testmod(sql_module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.postgres
def test_named_cursor_path_for_libpq_before_17_reads_the_same(pg, monkeypatch):
    import psycopg

    query = "select id, i4, t, tz from big where id <= 4321 order by id"
    schema = {"i4": "float64", "tz": "float64"}
    streamed = collect(ts.sql(pg, query, schema=schema, chunk_rows=1000))[0]
    monkeypatch.setattr(psycopg.pq, "version", lambda: 160000)  # FETCH from a named cursor
    fetched, chunks = collect(ts.sql(pg, query, schema=schema, chunk_rows=1000))
    assert [len(c["id"]) for c in chunks] == [1000] * 4 + [321]
    assert_columns_equal(fetched, streamed)
