"""``tfstream inspect``: the files, schema, a sample, the row count and the rejected rows of a
source, in one streaming pass."""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from tfstream.cli._common import (
    Timer,
    add_source_arguments,
    format_report,
    open_from_args,
    progress_bar,
    report_json,
    table,
)

__all__ = ["add_arguments", "inspect_source", "run"]

NAME = "inspect"
SUMMARY = "show the schema, a sample, the row count and the rejected rows of files"
DESCRIPTION = """\
Show what tfstream reads from files: the files, the schema (name, kind, dtype), the first
rows, then stream every row once and print the row count and the row report (rows read,
kept and rejected, with the file and line of each rejected row).

The format comes from the file suffixes (.csv/.csv.gz/.tsv, .tfrecord/.tfrecords/.tfrec
and their .gz, .parquet/.pq, or a directory holding such files); --format overrides it.
Memory stays bounded whatever the size of the files.

exit status: 0 on success; 2 on bad input (a missing file, a bad row under
--on-error raise, a schema error), with one line on stderr."""
EXAMPLES = """\
examples:
  tfstream inspect data/train.csv
  tfstream inspect 'data/*.csv.gz' --label label --rows 10
  tfstream inspect data/ --on-error skip            # count bad rows, show where they are
  tfstream inspect out/parquet --json > summary.json
"""

_MAX_FILES_SHOWN = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source_arguments(parser)
    parser.add_argument(
        "--rows",
        type=int,
        default=5,
        metavar="N",
        help="sample rows to show (default: 5; 0 shows none)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of text"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    if args.rows < 0:
        raise argparse.ArgumentTypeError(f"--rows must be >= 0; received {args.rows}")
    source, fmt = open_from_args(args)
    result = inspect_source(
        source,
        fmt=fmt,
        rows=args.rows,
        out=None if args.json else sys.stdout,
        progress=not args.quiet,
    )
    if args.json:
        json.dump(result, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    return 0


def inspect_source(source, *, fmt: str, rows: int = 5, out=sys.stdout, progress=True) -> dict:
    """Streams ``source`` once; prints each part to ``out`` as soon as it is known (nothing
    when ``out`` is None) and returns everything as a JSON-ready dict."""
    files = list(getattr(source, "files", []) or [])
    schema = [{"name": c.name, "kind": c.kind, "dtype": c.dtype} for c in source.schema.values()]
    emit = (lambda text: print(text, file=out, flush=True)) if out is not None else _ignore
    emit(_files_text(fmt, files))
    emit(_schema_text(schema, source.label))
    sample: dict[str, list] = {c["name"]: [] for c in schema}
    taken, shown, count = 0, not rows, 0
    update = progress_bar(enabled=progress and out is not None, desc="reading")
    with Timer() as timer:
        for chunk in source.iter_chunks():
            n = len(next(iter(chunk.values())))
            if taken < rows:
                k = min(rows - taken, n)
                for name in sample:
                    sample[name].extend(_plain(v) for v in chunk[name][:k])
                taken += k
            if not shown and taken == rows:
                emit(_sample_text(sample, taken))
                shown = True
            count += n
            update(n)
    update.bar.close()
    if not shown:  # the source holds fewer rows than asked for
        emit(_sample_text(sample, taken))
    report = source.report()
    rate = count / timer.seconds if timer.seconds > 0 else float("nan")
    emit(f"rows: {count:,} (streamed in {timer.seconds:.2f} s, {rate:,.0f} rows/s)")
    emit("report: " + format_report(report))
    records = [
        {name: _json_value(values[i]) for name, values in sample.items()} for i in range(taken)
    ]
    return {
        "format": fmt,
        "files": files,
        "label": source.label,
        "schema": schema,
        "sample": records,
        "rows": count,
        "seconds": round(timer.seconds, 6),
        "report": report_json(report),
    }


def _ignore(text: str) -> None:
    pass


def _files_text(fmt: str, files: list[str]) -> str:
    if not files:
        return f"format: {fmt}"
    lines = [f"files: {len(files):,} {fmt} file{'s' if len(files) != 1 else ''}"]
    lines += [f"  {f}" for f in files[:_MAX_FILES_SHOWN]]
    if len(files) > _MAX_FILES_SHOWN:
        lines.append(f"  ... and {len(files) - _MAX_FILES_SHOWN:,} more")
    return "\n".join(lines)


def _schema_text(schema: list[dict], label: str | None) -> str:
    title = f"schema: {len(schema)} column{'s' if len(schema) != 1 else ''}"
    title += f" (label: {label})" if label else ""
    rows = [(c["name"], c["kind"], c["dtype"]) for c in schema]
    return title + "\n" + table(("name", "kind", "dtype"), rows)


def _sample_text(sample: dict[str, list], taken: int) -> str:
    import pandas as pd

    if not taken:
        return "sample: no rows"
    frame = pd.DataFrame(sample)
    with pd.option_context(
        "display.max_columns", 10, "display.width", 100, "display.max_colwidth", 24
    ):
        text = frame.to_string(max_cols=10, max_colwidth=24)
    body = "\n".join("  " + line for line in text.splitlines())
    return f"sample: first {taken} row{'s' if taken != 1 else ''}\n{body}"


def _plain(value):
    """A numpy scalar as a plain Python value (bytes decoded, NaN kept as float)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
