"""A readable summary table of a :class:`~tfstream.stats.Stats`."""

from __future__ import annotations

import math

__all__ = ["summary"]

_TOP_TOKENS = 3


def summary(stats, columns=None) -> str:
    """Numeric columns (count, missing, mean, std, min, median, max) and string columns
    (count, missing, distinct, most frequent tokens) as plain-text tables; ``columns`` limits
    the rows shown (the title still counts every column)."""
    from tfstream.cli._common import table

    lines = [_title(stats)]
    shown = [stats[n] for n in (stats if columns is None else columns)]
    numeric = [col for col in shown if col.kind == "numeric"]
    strings = [col for col in shown if col.kind == "string"]
    if numeric:
        sampled = stats.sample.method != "full"
        headers = ["column", "count", "missing", "inf", "mean"]
        headers += ["+-stderr"] if sampled else []
        headers += ["std", "min", "median", "max"]
        rows = []
        for col in numeric:
            row = [_name(col.name, stats.label), col.count, col.nan_count, col.inf_count]
            row += [_num(col.mean)] + ([_num(col.mean_stderr)] if sampled else [])
            row += [_num(col.std), _num(col.min), _num(col.quantiles(0.5)), _num(col.max)]
            rows.append(row)
        lines += ["numeric columns:", table(headers, rows)]
    if strings:
        rows = []
        for col in strings:
            top = ", ".join(f"{t!r} ({c:,})" for t, c in col.frequencies()[:_TOP_TOKENS])
            distinct = f"{col.distinct:,}" + ("" if col.exact else " (est.)")
            rows.append([_name(col.name, stats.label), col.count, col.missing_count, distinct, top])
        lines += ["string columns:", table(["column", "count", "missing", "distinct", "top"], rows)]
    return "\n".join(lines)


def _title(stats) -> str:
    s = stats.sample
    text = f"statistics of {stats.rows:,} rows, {len(stats)} columns"
    if s.method == "fraction":
        text += f" (Bernoulli sample, fraction {s.parameter:g}, of {s.population:,} rows)"
    elif s.method == "reservoir":
        text += f" (reservoir sample of {s.population:,} rows)"
    elif s.method == "head":
        text += " (the first rows only)"
    return text


def _name(name: str, label: str | None) -> str:
    return f"{name} (label)" if name == label else name


def _num(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if value == 0 or 1e-4 <= abs(value) < 1e6:
        return f"{value:.6g}"
    return f"{value:.4e}"
