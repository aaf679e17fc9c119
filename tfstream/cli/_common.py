"""What the subcommands share: the source options, opening a source, and text formatting."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence

__all__ = [
    "SOURCE_FORMATS",
    "HelpFormatter",
    "Timer",
    "UsageError",
    "add_source_arguments",
    "format_bytes",
    "format_report",
    "one_line",
    "open_from_args",
    "parse_bytes",
    "parse_schema",
    "positive_int",
    "progress_bar",
    "report_json",
    "table",
]

SOURCE_FORMATS = ("csv", "tfrecord", "parquet")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)
_DELIMITER_NAMES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


class UsageError(ValueError):
    """A command-line value that the parser could not check by itself."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and examples; shows defaults."""


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """``PATHS...`` and the options that open a source: format, label, delimiter, errors."""
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATHS",
        help="files, globs (quote them) or directories of one format; local or fsspec URLs "
        "(s3://bucket/data/, gs://..., hdfs://..., memory://...)",
    )
    parser.add_argument(
        "--format",
        choices=SOURCE_FORMATS,
        help="the input format (default: guessed from the file suffixes)",
    )
    parser.add_argument("--label", metavar="COL", help="the label column")
    parser.add_argument(
        "--columns",
        metavar="A,B,...",
        help="read only these columns (comma-separated; CSV and Parquet)",
    )
    parser.add_argument(
        "--schema",
        metavar="COL=DTYPE,...",
        help="declare column dtypes (float32, float64, int64, string) instead of inferring "
        "them, e.g. --schema label=int64,price=float64",
    )
    parser.add_argument(
        "--delimiter",
        metavar="CHAR",
        help="CSV field delimiter: one character, or tab, '\\t', comma, semicolon, pipe "
        "(default: ',' and tab for .tsv files)",
    )
    parser.add_argument(
        "--on-error",
        choices=("raise", "skip", "quarantine"),
        default="raise",
        help="bad rows: stop with an error naming file and line (raise, the default), count "
        "and skip them (skip), or also write them to a JSON-lines file (quarantine)",
    )
    parser.add_argument(
        "--quarantine-path",
        metavar="FILE",
        help="where --on-error quarantine writes bad rows "
        "(default: ./tfstream-quarantine-<time>-<pid>.jsonl)",
    )
    parser.add_argument(
        "--storage-options",
        metavar="JSON",
        type=parse_storage_options,
        help="fsspec options for URL paths, as a JSON object, e.g. "
        '\'{"client_kwargs": {"endpoint_url": "http://localhost:9000"}}\'. Prefer the '
        "filesystem's environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
        "AWS_ENDPOINT_URL, GOOGLE_APPLICATION_CREDENTIALS) for credentials: a command line "
        "is visible to other users of the machine",
    )


def open_from_args(args: argparse.Namespace):
    """Opens the source the common options describe (see :func:`add_source_arguments`)."""
    from tfstream.sources.auto import detect_format, open_source

    kwargs = {}
    storage_options = getattr(args, "storage_options", None)
    if storage_options:
        kwargs["storage_options"] = storage_options
    fmt = args.format or detect_format(args.paths, storage_options=storage_options)
    if args.delimiter is not None:
        if fmt != "csv":
            raise UsageError(f"--delimiter applies to CSV input only; the input is {fmt}.")
        kwargs["delimiter"] = _DELIMITER_NAMES.get(args.delimiter.lower(), args.delimiter)
    if args.columns:
        if fmt == "tfrecord":
            raise UsageError("--columns applies to CSV and Parquet input only.")
        kwargs["columns"] = [c.strip() for c in args.columns.split(",") if c.strip()]
    if args.schema:
        kwargs["schema"] = parse_schema(args.schema)
    if args.quarantine_path is not None:
        if args.on_error != "quarantine":
            raise UsageError("--quarantine-path needs --on-error quarantine.")
        kwargs["quarantine_path"] = args.quarantine_path
    source = open_source(args.paths, format=fmt, label=args.label, on_error=args.on_error, **kwargs)
    return source, fmt


def parse_storage_options(text: str) -> dict:
    """An argparse type: a JSON object of fsspec storage options."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        # The text may hold credentials: never echo it.
        raise argparse.ArgumentTypeError(
            "expected a JSON object such as '{\"anon\": true}' (the value is not shown)"
        )
    return value


def parse_schema(text: str) -> dict[str, str]:
    """``"a=int64,b=float32"`` -> ``{"a": "int64", "b": "float32"}``."""
    schema = {}
    for item in text.split(","):
        name, sep, dtype = item.partition("=")
        if not sep or not name.strip() or not dtype.strip():
            raise UsageError(
                f"--schema takes COL=DTYPE pairs separated by commas, e.g. "
                f"label=int64,price=float64; received {text!r}"
            )
        schema[name.strip()] = dtype.strip()
    return schema


def parse_bytes(text: str) -> int:
    """``"134217728"``, ``"128MiB"``, ``"64MB"``, ``"1G"`` -> bytes (K/M/G/T are powers of
    1024, with or without ``i``)."""
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"expected a size in bytes such as 134217728, 128MiB or 1G; received {text!r}"
        )
    number, unit, _ = match.groups()
    value = float(number) * 1024 ** " kmgt".index(unit.lower() or " ")
    if value < 1:
        raise argparse.ArgumentTypeError(f"a size must be at least 1 byte; received {text!r}")
    return int(value)


def positive_int(text: str) -> int:
    """An argparse type: a positive integer, with optional ``_`` separators."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; received {text!r}")
    return value


def one_line(error: BaseException, command: str) -> str:
    """``tfstream <command>: error: <message>`` on one line, with the library's hints
    rephrased as command-line options."""
    message = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    if isinstance(error, KeyError):
        message = f"missing key {message}"
    for value in ("skip", "quarantine", "raise"):
        message = message.replace(f"on_error='{value}'", f"--on-error {value}")
    message = message.replace("format=...", "--format")
    return f"tfstream {command}: error: {message or type(error).__name__}"


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"  # pragma: no cover - the loop returns


def format_report(report, indent: str = "") -> str:
    return "\n".join(indent + line for line in str(report).splitlines())


def report_json(report) -> dict:
    """A :class:`RowReport` as plain JSON values."""
    return {
        "rows_read": report.rows_read,
        "rows_ok": report.rows_ok,
        "rows_rejected": report.rows_rejected,
        "quarantine_path": report.quarantine_path,
        "rejected": [
            {
                "file": row.file,
                "line": row.line,
                "record": row.record,
                "error": row.error,
                "text": row.text,
            }
            for row in report.rejected
        ],
        "lost_files": list(report.lost_files),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "  ") -> str:
    """A plain text table: left-aligned text, right-aligned numbers."""
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], (int, float)) for row in rows) if rows else False
        for i in range(len(headers))
    ]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values):
        out = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ]
        return (indent + "  ".join(out)).rstrip()

    return "\n".join([line(headers)] + [line(r) for r in cells])


def _cell(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def progress_bar(*, enabled: bool, desc: str, unit: str = "rows") -> Callable[[int], object]:
    """A tqdm bar on stderr (shown only when stderr is a terminal and ``enabled``); returns
    its ``update`` and keeps the bar reachable as ``update.bar`` to close it."""
    from tqdm import tqdm

    bar = tqdm(
        desc=desc,
        unit=" " + unit,
        unit_scale=True,
        file=sys.stderr,
        disable=None if enabled else True,
        leave=False,
        dynamic_ncols=True,
    )

    def update(n: int) -> None:
        bar.update(n)

    update.bar = bar
    return update


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._start
