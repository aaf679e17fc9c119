"""Source.dataset: the one-epoch pipeline equals the first epoch of the multi-epoch one."""

import gzip
import os

import numpy as np
import pandas as pd
import pytest

import tfstream as ts
from tfstream.testing.data import write_csv_shards


def _batches(ds):
    out = []
    for features, label in ds:
        out.append(({k: v.numpy() for k, v in features.items()}, label.numpy()))
    return out


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(3)
    paths = []
    for i in range(3):
        frame = pd.DataFrame(
            {"id": np.arange(i * 500, (i + 1) * 500), "x": rng.standard_normal(500)}
        )
        path = tmp_path / f"part-{i}.csv"
        frame.to_csv(path, index=False)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("shuffle", [False, True])
def test_one_epoch_equals_first_epoch_of_two(files, shuffle):
    """``epochs=1`` skips the epoch ``flat_map``; batches and shuffle seeds must not change."""
    src = ts.csv(files, label="x")
    kwargs = dict(shuffle=shuffle, seed=11, shuffle_buffer=300)
    one = _batches(src.dataset(64, epochs=1, **kwargs))
    two = _batches(src.dataset(64, epochs=2, **kwargs))
    assert len(two) == 2 * len(one)
    for (f1, l1), (f2, l2) in zip(one, two[: len(one)], strict=True):
        np.testing.assert_array_equal(f1["id"], f2["id"])
        np.testing.assert_array_equal(l1, l2)
    ids = np.concatenate([f["id"] for f, _ in one])
    assert sorted(ids) == list(range(1500))  # a whole pass, every row once
    second = np.concatenate([f["id"] for f, _ in two[len(one) :]])
    assert sorted(second) == list(range(1500))
    if shuffle:
        assert not np.array_equal(ids, second)  # each epoch gets its own order
    else:
        np.testing.assert_array_equal(ids, np.arange(1500))


@pytest.mark.parametrize("epochs", [1, 3])
def test_autotune_is_off_and_can_be_turned_back_on(files, epochs):
    """Off by default (its thread sometimes held up the end of a pass for ~1 s); what a user
    builds on the dataset inherits it, and ``with_options`` turns it back on."""
    import tensorflow as tf

    ds = ts.csv(files, label="x").dataset(64, epochs=epochs)
    assert ds.options().autotune.enabled is False
    mapped = ds.map(lambda f, y: (f, y * 2), num_parallel_calls=tf.data.AUTOTUNE)
    assert mapped.options().autotune.enabled is False
    rows = sum(int(tf.shape(y)[0]) for _, y in mapped)
    assert rows == 1500 * epochs
    options = tf.data.Options()
    options.autotune.enabled = True
    assert mapped.with_options(options).options().autotune.enabled is True


# -- bytes for progress bars -------------------------------------------------------------------


def _bytes_of_pass(src):
    calls = []
    rows = sum(len(next(iter(c.values()))) for c in src.iter_chunks(on_bytes=calls.append))
    return rows, calls


@pytest.fixture
def every_format(tmp_path):
    from tfstream.testing.data import write_parquet, write_tfrecord

    csv_dir = tmp_path / "csv"
    write_csv_shards(csv_dir, 3000, shards=2, features=3, seed=4)
    frame = pd.read_csv(csv_dir / "part-00000.csv")
    with gzip.open(tmp_path / "gz.csv.gz", "wt") as f:
        frame.to_csv(f, index=False)
    return {
        "csv": (ts.csv(str(csv_dir), block_bytes=4096), 3000),
        "csv.gz": (ts.csv(str(tmp_path / "gz.csv.gz"), block_bytes=4096), len(frame)),
        "parquet": (
            ts.parquet(write_parquet(tmp_path / "pq", 3000, shards=2), batch_rows=500),
            3000,
        ),
        "tfrecord": (ts.tfrecord(write_tfrecord(tmp_path / "tf", 3000), chunk_records=500), 3000),
        "tfrecord.gz": (
            ts.tfrecord(
                write_tfrecord(tmp_path / "tfgz", 900, compression="GZIP"), chunk_records=100
            ),
            900,
        ),
    }


@pytest.mark.parametrize("kind", ["csv", "csv.gz", "parquet", "tfrecord", "tfrecord.gz"])
def test_bytes_reported_add_up_to_the_file_sizes(every_format, kind):
    src, rows = every_format[kind]
    total = sum(os.path.getsize(p) for p in src.files)
    assert src.total_bytes() == total
    got_rows, calls = _bytes_of_pass(src)
    assert got_rows == rows
    assert sum(calls) == total and all(n > 0 for n in calls)
    if kind != "tfrecord.gz":  # compressed TFRecord files are counted whole
        assert len(calls) > 2 * len(src.files)  # progress within each file, not only at its end
    # Statistics and rows are the same with and without the counting.
    plain = np.concatenate([c["label"] for c in src.iter_chunks()])
    counted = np.concatenate([c["label"] for c in src.iter_chunks(on_bytes=lambda n: None)])
    np.testing.assert_array_equal(plain, counted)


def test_sources_without_sizes_report_none():
    src = ts.from_pandas(pd.DataFrame({"x": [1.0, 2.0]}))
    assert src.total_bytes() is None
    rows, calls = _bytes_of_pass(src)
    assert rows == 2 and calls == []
