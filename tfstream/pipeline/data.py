"""The data side of a ``tfstream fit`` job: opening the training and validation sources, and
the statistics, cached in the run directory under a fingerprint of the inputs.

The fingerprint is a SHA-256 of every training file's absolute path, size and modification
time, and of the options that change the statistics (format, label, columns, schema, bad-row
policy, sampling and seed). A second run with the same fingerprint loads ``stats.json`` instead
of reading the data again; a changed, added or removed file computes them again.

Example:

>>> train, validation = open_sources(config.data, run_dir="runs/x")       # doctest: +SKIP
>>> stats, reused = cached_stats(train, config, run_dir="runs/x")          # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import os

from tfstream.pipeline.config import ConfigError, DataConfig, FitConfig
from tfstream.sources.atomic import replacing

__all__ = [
    "FINGERPRINT_FILE",
    "STATS_FILE",
    "cached_stats",
    "infer_task",
    "open_sources",
    "stats_fingerprint",
    "write_json",
]

STATS_FILE = "stats.json"
FINGERPRINT_FILE = "stats.fingerprint.json"


def open_sources(data: DataConfig, *, run_dir: str):
    """``(train, validation)`` sources of ``data`` (validation None when none is asked for).

    With ``validation_fraction``, the last ``ceil(fraction x files)`` files (name order) are
    the validation source: a streamed source has no row index to split by, and whole files
    keep both sources streaming.

    Raises:
        ConfigError: the label is not a column; a fraction with fewer than 2 files.
        FileNotFoundError: a path does not exist.
    """
    train = _open(data, data.train, run_dir)
    if train.label not in train.schema:
        raise ConfigError(
            f"`data.label` {data.label!r} is not a column of the training data; the columns "
            f"are {list(train.schema)}. Set data.label (--label)."
        )
    if data.validation:
        return train, _open(data, data.validation, run_dir, like=train)
    if data.validation_fraction is None:
        return train, None
    files = list(getattr(train, "files", []))
    if len(files) < 2:
        raise ConfigError(
            f"`data.validation_fraction` holds out whole files, but the training data has "
            f"{len(files)} file. Split it into several files, or give data.validation."
        )
    held = min(len(files) - 1, max(1, math.ceil(data.validation_fraction * len(files))))
    return (
        _open(data, files[:-held], run_dir, like=train),
        _open(data, files[-held:], run_dir, like=train),
    )


def _open(data: DataConfig, paths, run_dir: str, like=None):
    from tfstream.sources.auto import detect_format, open_source

    fmt = data.format or detect_format(paths)
    kwargs = {}
    if data.columns and fmt != "tfrecord":
        kwargs["columns"] = list(data.columns)
    schema = dict(data.schema)
    if like is not None and fmt == "csv":  # the same types as the training data
        schema = {name: col.dtype for name, col in like.schema.items()} | schema
    if schema and fmt != "parquet":
        kwargs["schema"] = schema
    if data.on_error == "quarantine":
        kwargs["quarantine_path"] = os.path.join(run_dir, "rejected-rows.jsonl")
    return open_source(paths, format=fmt, label=data.label, on_error=data.on_error, **kwargs)


def stats_fingerprint(source, config: FitConfig) -> dict:
    """What the statistics depend on, and its SHA-256 (``{"sha256": ..., "inputs": ...}``)."""
    files = []
    for path in getattr(source, "files", []):
        if "://" in path:
            files.append([path, None, None])
        else:
            info = os.stat(path)
            files.append([os.path.abspath(path), info.st_size, info.st_mtime_ns])
    inputs = {
        "files": files,
        "format": type(source).__name__,
        "label": config.data.label,
        "columns": config.data.columns,
        "schema": {name: col.dtype for name, col in source.schema.items()},
        "on_error": config.data.on_error,
        "sample": config.stats.sample,
        "seed": config.stats.seed,
    }
    text = json.dumps(inputs, sort_keys=True)
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "inputs": inputs}


def cached_stats(source, config: FitConfig, *, run_dir: str, progress: bool = True):
    """``(stats, reused)``: the statistics of ``run_dir/stats.json`` when its fingerprint
    matches the source and options, else computed (a full pass or the configured sample),
    saved with their fingerprint."""
    import tfstream as ts

    path = os.path.join(run_dir, STATS_FILE)
    fingerprint_path = os.path.join(run_dir, FINGERPRINT_FILE)
    fingerprint = stats_fingerprint(source, config)
    if os.path.exists(path) and os.path.exists(fingerprint_path):
        with open(fingerprint_path, encoding="utf-8") as f:
            saved = json.load(f)
        if saved.get("sha256") == fingerprint["sha256"]:
            return ts.Stats.load(path), True
    sample = config.stats.sample
    if isinstance(sample, int):
        sample = ts.Reservoir(sample, seed=config.stats.seed)
    stats = ts.compute_stats(source, sample=sample, seed=config.stats.seed, progress=progress)
    stats.save(path)
    write_json(fingerprint_path, fingerprint)
    return stats, False


def infer_task(stats, task: str) -> str:
    """``task``, or for ``"auto"``: ``"binary"`` when every label value is 0 or 1 (an integer
    label with min 0 and max 1, or a float label whose quantiles are all 0 or 1), else
    ``"regression"``.

    Raises:
        ConfigError: a string label, or a binary task whose label is not 0/1.
    """
    label = stats.label
    col = stats[label]
    if col.kind != "numeric":
        raise ConfigError(
            f"the label {label!r} is a string column; tfstream fit trains on a numeric label "
            "(0/1 for binary, a number for regression). Map it to numbers first."
        )
    zero_one = col.count > 0 and col.min == 0.0 and col.max == 1.0
    if zero_one and not col.dtype.startswith("int"):
        qs = col.quantiles([i / 100 for i in range(1, 100)])
        zero_one = all(q in (0.0, 1.0) for q in qs)
    if task == "auto":
        return "binary" if zero_one else "regression"
    if task == "binary" and not (col.min >= 0.0 and col.max <= 1.0):
        raise ConfigError(
            f"`model.task` is 'binary' but the label {label!r} ranges over [{col.min}, "
            f"{col.max}]; expected 0/1 values. Use task: regression, or fix the label."
        )
    return task


def write_json(path: str, doc) -> str:
    """Writes ``doc`` as JSON atomically (temporary name, fsync, then rename)."""
    with replacing(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, sort_keys=False, allow_nan=True)
        f.write("\n")
    return path
