"""Seeded generators of tabular test data, shared by tests, benchmarks and ``tfstream demo``.

Every generator draws the same table for the same arguments: a 0/1 ``label`` (int64) that
depends on the features (a noisy linear rule, so a model can learn it), ``features`` float32
columns ``f0, f1, ...`` and ``strings`` categorical columns ``s0, s1, ...``. Shard ``i`` of a
set is drawn from ``numpy.random.default_rng([seed, i])``, so a set is generated one shard at a
time with memory bounded by the shard; the rule is the same in every shard of a set (its
weights are drawn once, from ``default_rng([seed, 2**31])``).

Example:

>>> from tfstream.testing import make_frame
>>> frame = make_frame(4, features=2, strings=1, seed=0)
>>> list(frame.columns)
['label', 'f0', 'f1', 's0']
"""

from __future__ import annotations

import os

import numpy as np

__all__ = [
    "BAD_ROWS",
    "CATEGORIES",
    "make_frame",
    "write_csv_shards",
    "write_parquet",
    "write_tfrecord",
]

#: The categories string column ``s{j}`` draws from (``CATEGORIES[j % len(CATEGORIES)]``).
CATEGORIES = (
    ("red", "green", "blue", "yellow"),
    ("cat", "dog", "bird", "fish", "horse", "cow"),
    ("low", "medium", "high"),
)

#: Malformed lines ``write_csv_shards(..., bad_rows=k)`` cycles through, by what is wrong.
BAD_ROWS = (
    "too few fields",
    "too many fields",
    "unparsable number",
    "missing label",
)


def make_frame(rows: int, *, features: int = 28, strings: int = 0, seed=0, rule_seed=None):
    """A ``pandas.DataFrame`` of ``rows`` rows: ``label`` (int64 0/1), float32 ``f0..`` and
    string ``s0..`` columns (see the module docstring).

    Args:
        rows: number of rows.
        features: number of float32 feature columns.
        strings: number of categorical string columns.
        seed: an int (or a sequence of ints) seeding ``numpy.random.default_rng``.
        rule_seed: None (the label rule is drawn with the table), or the ``seed`` of a set of
            shards whose rule to use: shard ``i`` of ``write_csv_shards(..., seed=s)`` is
            ``make_frame(n, seed=[s, i], rule_seed=s)``.
    """
    import pandas as pd

    rule = None if rule_seed is None else _rule(rule_seed, features)
    return pd.DataFrame(_columns(rows, features, strings, np.random.default_rng(seed), rule))


def write_csv_shards(
    directory: str | os.PathLike,
    rows: int,
    *,
    shards: int = 1,
    features: int = 28,
    strings: int = 0,
    seed: int = 0,
    bad_rows: int = 0,
    prefix: str = "part",
) -> list[str]:
    """Writes ``rows`` rows as ``shards`` CSV files ``{prefix}-00000.csv, ...`` with a header.

    polars writes the files (about 10x faster than ``pandas.to_csv``); floats are written with
    the shortest text that reads back as the same float32.

    Args:
        directory: created when missing.
        rows: total rows, spread evenly over the shards (the first shards take the remainder).
        shards: number of files.
        features, strings, seed: as in :func:`make_frame`.
        bad_rows: malformed lines added to the middle shard (one of each kind in
            :data:`BAD_ROWS`, in turn), spread over the file. They come on top of ``rows``,
            so a reader that skips them yields exactly ``rows`` rows. The unparsable number
            is in the last float column, ``f{features - 1}``: when it falls in the sample a
            reader infers types from, that column is inferred as text unless declared.
        prefix: file name prefix.

    Returns:
        The paths of the files, in order.
    """
    import polars as pl

    _check_counts(rows=rows, shards=shards, bad_rows=bad_rows)
    os.makedirs(directory, exist_ok=True)
    paths = []
    for index, n in enumerate(_split(rows, shards)):
        path = os.path.join(os.fspath(directory), f"{prefix}-{index:05d}.csv")
        rng = np.random.default_rng([seed, index])
        frame = pl.DataFrame(_columns(n, features, strings, rng, _rule(seed, features)))
        if bad_rows and index == shards // 2:
            _write_with_bad_rows(frame, path, bad_rows)
        else:
            frame.write_csv(path)
        paths.append(path)
    return paths


def write_tfrecord(
    directory: str | os.PathLike,
    rows: int,
    *,
    shards: int = 1,
    features: int = 28,
    strings: int = 0,
    seed: int = 0,
    compression: str | None = None,
    prefix: str = "part",
) -> list[str]:
    """Writes the same table as :func:`write_csv_shards` as TFRecord files of
    ``tf.train.Example`` (``{prefix}-00000.tfrecord``, ``.tfrecord.gz`` with GZIP).

    Returns:
        The paths of the files, in order.
    """
    return _write_shards(
        directory, rows, shards, features, strings, seed, "tfrecord", compression, prefix
    )


def write_parquet(
    directory: str | os.PathLike,
    rows: int,
    *,
    shards: int = 1,
    features: int = 28,
    strings: int = 0,
    seed: int = 0,
    compression: str | None = None,
    prefix: str = "part",
) -> list[str]:
    """Writes the same table as :func:`write_csv_shards` as Parquet files
    (``{prefix}-00000.parquet``, ...).

    Returns:
        The paths of the files, in order.
    """
    return _write_shards(
        directory, rows, shards, features, strings, seed, "parquet", compression, prefix
    )


def _write_shards(directory, rows, shards, features, strings, seed, fmt, compression, prefix):
    from tfstream.sources.writer import ShardWriter

    _check_counts(rows=rows, shards=shards, bad_rows=0)
    schema = {"label": "int64"}
    schema.update({f"f{j}": "float32" for j in range(features)})
    schema.update({f"s{j}": "string" for j in range(strings)})
    with ShardWriter(
        directory,
        format=fmt,
        schema=schema,
        max_bytes_per_shard=None,
        prefix=prefix,
        compression=compression,
        overwrite=True,
    ) as writer:
        for index, n in enumerate(_split(rows, shards)):
            rng = np.random.default_rng([seed, index])
            writer.write(_columns(n, features, strings, rng, _rule(seed, features)))
            writer.finish_shard()
    return writer.shards


def _rule(seed: int, features: int) -> np.ndarray:
    """The label rule's weights of a set of shards (shard numbers stay below 2**31)."""
    return np.random.default_rng([seed, 2**31]).standard_normal(features).astype(np.float32)


def _columns(
    rows: int, features: int, strings: int, rng: np.random.Generator, weights=None
) -> dict:
    x = rng.standard_normal((rows, features), dtype=np.float32)
    if weights is None:
        weights = rng.standard_normal(features).astype(np.float32) if features else None
    logit = x @ weights if features else np.zeros(rows, np.float32)
    noise = rng.logistic(size=rows).astype(np.float32)
    out = {"label": (logit + noise > 0).astype(np.int64)}
    for j in range(features):
        out[f"f{j}"] = x[:, j]
    for j in range(strings):
        categories = np.array(CATEGORIES[j % len(CATEGORIES)], dtype=object)
        out[f"s{j}"] = categories[rng.integers(0, len(categories), rows)]
    return out


def _write_with_bad_rows(frame, path: str, bad_rows: int) -> None:
    """Writes ``frame`` with ``bad_rows`` malformed lines spread evenly between its rows."""
    text = frame.write_csv()
    lines = text.splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    fields = header.rstrip("\n").split(",")
    positions = np.linspace(0, len(body), bad_rows + 2).astype(int)[1:-1]
    for k, pos in enumerate(positions[::-1]):
        kind = BAD_ROWS[(bad_rows - 1 - k) % len(BAD_ROWS)]
        body.insert(int(pos), _bad_line(kind, fields) + "\n")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(header)
        f.writelines(body)


def _bad_line(kind: str, fields: list[str]) -> str:
    good = ["1"] + ["0.5"] * (len(fields) - 1)
    for i, name in enumerate(fields):
        if name.startswith("s"):
            good[i] = "red"
    if kind == "too few fields":
        return ",".join(good[:-1]) if len(good) > 1 else ""
    if kind == "too many fields":
        return ",".join(good + ["0.5"])
    if kind == "unparsable number":
        numeric = [i for i, name in enumerate(fields) if not name.startswith("s")]
        good[numeric[-1]] = "not-a-number"
        return ",".join(good)
    good[0] = ""  # missing label: the int64 column has no missing value
    return ",".join(good)


def _split(rows: int, shards: int) -> list[int]:
    base, extra = divmod(rows, shards)
    return [base + (i < extra) for i in range(shards)]


def _check_counts(*, rows, shards, bad_rows) -> None:
    for name, value, low in (("rows", rows, 0), ("shards", shards, 1), ("bad_rows", bad_rows, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"`{name}` must be an integer >= {low}. Received: {name}={value!r}")
