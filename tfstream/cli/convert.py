"""``tfstream convert``: stream files into TFRecord or Parquet shards of bounded size."""

from __future__ import annotations

import argparse
import json
import sys

from tfstream.cli._common import (
    Timer,
    UsageError,
    add_source_arguments,
    format_bytes,
    format_report,
    open_from_args,
    parse_bytes,
    positive_int,
    progress_bar,
    report_json,
    table,
)

__all__ = ["add_arguments", "convert_source", "run"]

NAME = "convert"
SUMMARY = "convert files into TFRecord or Parquet shards"
DESCRIPTION = """\
Stream files (CSV, TFRecord or Parquet) into TFRecord or Parquet shards of bounded size,
with memory bounded whatever the size of the input.

Shards are named part-00000.tfrecord (.tfrecord.gz with --compression gzip) or
part-00000.parquet. Each is written under a hidden temporary name and renamed when
complete, so an interrupted run never leaves a partial file under a final name. TFRecord
shards hold one tf.train.Example per row with one scalar feature per column (float64
columns are stored as float32, all that float_list holds).

Rows rejected on the way (--on-error skip/quarantine) are counted and listed with their
file and line in the report."""
EXAMPLES = """\
examples:
  tfstream convert data/*.csv --to tfrecord --output out/tfrecord
  tfstream convert data/ --to parquet --output out/parquet --max-rows-per-shard 1000000
  tfstream convert big.csv.gz --to tfrecord --output out/ --compression gzip \\
      --max-bytes-per-shard 256MiB --on-error quarantine --quarantine-path bad.jsonl
"""

_MAX_SHARDS_SHOWN = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser)
    parser.add_argument(
        "--to", required=True, choices=("tfrecord", "parquet"), help="the output format"
    )
    parser.add_argument(
        "--output", "-o", required=True, metavar="DIR", help="output directory (created)"
    )
    parser.add_argument(
        "--max-rows-per-shard",
        type=positive_int,
        metavar="N",
        help="at most N rows per shard (default: no row bound)",
    )
    parser.add_argument(
        "--max-bytes-per-shard",
        type=parse_bytes,
        default=128 << 20,
        metavar="BYTES",
        help="at most about this many bytes per shard, e.g. 134217728, 128MiB, 1G "
        "(default: 128MiB; TFRecord counts bytes before compression)",
    )
    parser.add_argument(
        "--compression",
        metavar="CODEC",
        help="TFRecord: gzip; Parquet: snappy (default), zstd, gzip, lz4, brotli or none",
    )
    parser.add_argument("--prefix", default="part", help="shard file name prefix (default: part)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace shards of an earlier run in the output directory (default: refuse)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of text"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    if args.to == "tfrecord" and args.compression not in (None, "gzip", "GZIP", "none"):
        raise UsageError(
            f"--compression for TFRecord must be gzip or none; received {args.compression!r}"
        )
    source, fmt = open_from_args(args)
    result = convert_source(
        source,
        args.output,
        fmt=fmt,
        to=args.to,
        max_rows_per_shard=args.max_rows_per_shard,
        max_bytes_per_shard=args.max_bytes_per_shard,
        compression=args.compression,
        prefix=args.prefix,
        overwrite=args.overwrite,
        storage_options=getattr(args, "storage_options", None),
        out=None if args.json else sys.stdout,
        progress=not args.quiet,
    )
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0


def convert_source(
    source,
    output: str,
    *,
    fmt: str,
    to: str,
    max_rows_per_shard: int | None = None,
    max_bytes_per_shard: int | None = 128 << 20,
    compression: str | None = None,
    prefix: str = "part",
    overwrite: bool = False,
    storage_options=None,
    out=sys.stdout,
    progress: bool = True,
    list_rejected: bool = True,
) -> dict:
    """Converts ``source`` into shards under ``output``; prints what it did to ``out``
    (nothing when None; the rejected rows only with ``list_rejected``) and returns it as a
    JSON-ready dict."""
    from tfstream.sources.writer import ShardWriter

    if to == "tfrecord":
        import tensorflow  # noqa: F401 - imported before the clock starts: it takes seconds

    emit = (lambda text: print(text, file=out, flush=True)) if out is not None else _ignore
    files = list(getattr(source, "files", []) or [])
    what = f"{len(files):,} {fmt} file{'s' if len(files) != 1 else ''}" if files else fmt
    emit(f"converting {what} ({len(source.schema)} columns) to {to} shards in {output}")
    update = progress_bar(enabled=progress and out is not None, desc=f"-> {to}")
    with Timer() as timer:
        with ShardWriter(
            output,
            format=to,
            schema=source.schema,
            max_rows_per_shard=max_rows_per_shard,
            max_bytes_per_shard=max_bytes_per_shard,
            prefix=prefix,
            compression=compression,
            overwrite=overwrite,
            storage_options=storage_options,
        ) as writer:
            for chunk in source.iter_chunks():
                writer.write(chunk)
                update(len(next(iter(chunk.values()))))
    update.bar.close()
    shards = [
        {"path": path, "rows": rows, "bytes": nbytes}
        for path, rows, nbytes in zip(
            writer.shards, writer.shard_rows, writer.shard_bytes, strict=True
        )
    ]
    rows = sum(s["rows"] for s in shards)
    nbytes = sum(s["bytes"] for s in shards)
    rate = rows / timer.seconds if timer.seconds > 0 else float("nan")
    emit(
        f"wrote {len(shards):,} shard{'s' if len(shards) != 1 else ''}: {rows:,} rows, "
        f"{format_bytes(nbytes)} in {timer.seconds:.2f} s ({rate:,.0f} rows/s)"
    )
    if shards:
        listed = [(s["path"], s["rows"], format_bytes(s["bytes"])) for s in shards]
        emit(table(("shard", "rows", "size"), listed[:_MAX_SHARDS_SHOWN]))
        if len(shards) > _MAX_SHARDS_SHOWN:
            emit(f"  ... and {len(shards) - _MAX_SHARDS_SHOWN:,} more")
    report = source.report()
    text = format_report(report)
    if not list_rejected:
        text = "\n".join(line for line in text.splitlines() if not line.startswith("  "))
    emit("report: " + text)
    return {
        "input_format": fmt,
        "output_format": to,
        "output": output,
        "shards": shards,
        "rows": rows,
        "bytes": nbytes,
        "seconds": round(timer.seconds, 6),
        "rows_per_second": round(rate, 1) if timer.seconds > 0 else None,
        "report": report_json(report),
    }


def _ignore(text: str) -> None:
    pass
