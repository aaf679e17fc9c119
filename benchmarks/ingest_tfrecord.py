"""TFRecord ingest: tfstream against plain ``TFRecordDataset`` + batched ``parse_example``.

1,000,000 ``tf.train.Example`` records (a 0/1 label and 28 float features) into batches of 1024,
consumed inside tf.data (``Dataset.reduce``). Anchors: the fastest plain pipeline
(batch, then ``parse_example``) and the common per-record one (``parse_single_example``).

    python -m benchmarks.ingest_tfrecord [--rows N] [--skip-slow]
"""

from __future__ import annotations

import argparse
import glob
import os

from benchmarks._common import consume, out_path, report, run_methods

BATCH = 1024
QUICK_ARGS = ["--rows", "200000", "--skip-slow"]


def make_tfrecord(rows: int) -> str:
    from tfstream.testing import write_tfrecord

    directory = out_path(f"tfrecord-{rows}")
    if not glob.glob(os.path.join(directory, "*.tfrecord")):
        write_tfrecord(directory, rows, shards=1)
    return sorted(glob.glob(os.path.join(directory, "*.tfrecord")))[0]


def run(rows: int = 1_000_000, *, skip_slow: bool = False, repeats: int = 2) -> list[dict]:
    import tensorflow as tf

    from tfstream.sources.tfrecord import tfrecord

    path = make_tfrecord(rows)
    mb = os.path.getsize(path) / 1e6
    spec = {"label": tf.io.FixedLenFeature([], tf.int64)}
    spec.update({f"f{i}": tf.io.FixedLenFeature([], tf.float32) for i in range(28)})

    def split(parsed):
        label = parsed.pop("label")
        return parsed, label

    def tfstream_tfrecord():
        return consume(tfrecord(path, label="label").dataset(BATCH))

    def batch_then_parse():
        ds = tf.data.TFRecordDataset(path).batch(BATCH)
        ds = ds.map(lambda s: split(tf.io.parse_example(s, spec)), num_parallel_calls=-1)
        return consume(ds)

    def parse_single():
        ds = tf.data.TFRecordDataset(path)
        ds = ds.map(lambda s: split(tf.io.parse_single_example(s, spec)), num_parallel_calls=-1)
        return consume(ds.batch(BATCH))

    methods = [
        ("tfstream tfrecord(...).dataset", tfstream_tfrecord, repeats),
        ("TFRecordDataset + batch + parse_example", batch_then_parse, repeats),
    ]
    if not skip_slow:
        methods.append(("TFRecordDataset + parse_single_example", parse_single, 1))
    results = run_methods(methods, rows=rows, mb=mb)
    report(
        f"TFRecord ingest: {rows:,} Examples x 29 features ({mb:.0f} MB), batches of {BATCH}",
        results,
        reference="tfstream tfrecord(...).dataset",
        json_name="ingest_tfrecord.json",
    )
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-slow", action="store_true")
    args = parser.parse_args(argv)
    run(args.rows, skip_slow=args.skip_slow)


if __name__ == "__main__":
    main()
