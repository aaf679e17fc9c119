"""A PNG of a run's curves: loss, a metric and throughput (matplotlib, Agg backend, no display).

Example:

>>> plot_history(load_history("runs/x/history.json"), "runs/x/curves.png")   # doctest: +SKIP
"""

from __future__ import annotations

from tfstream.sources.atomic import replacing

__all__ = ["plot_history"]


def plot_history(history: dict, path: str, *, title: str = "") -> str:
    """Draws ``history`` (``{"epochs": [...], "steps": [...]}``, see
    :mod:`tfstream.pipeline.history`) into a PNG at ``path`` (written atomically); returns the
    path.

    Three panels: the loss (the running mean of each epoch, per step) with the epochs'
    training and validation loss; the first other metric likewise; rows/s over a moving window
    of steps and per epoch.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    steps, epochs = history.get("steps", []), history.get("epochs", [])
    figure = Figure(figsize=(13, 3.8), layout="constrained")
    loss_ax, metric_ax, speed_ax = figure.subplots(1, 3)

    _line(loss_ax, steps, "step", "loss", "train (epoch running mean)", alpha=0.5)
    _line(loss_ax, epochs, "step", "loss", "train (epoch)", marker="o")
    _line(loss_ax, epochs, "step", "val_loss", "validation", marker="s")
    loss_ax.set(title="loss", xlabel="global step")

    metric = _first_metric(epochs or steps)
    if metric:
        _line(metric_ax, steps, "step", metric, "train (epoch running mean)", alpha=0.5)
        _line(metric_ax, epochs, "step", metric, "train (epoch)", marker="o")
        _line(metric_ax, epochs, "step", "val_" + metric, "validation", marker="s")
    metric_ax.set(title=metric or "(no metric)", xlabel="global step")

    _line(speed_ax, _smoothed_rate(steps), "step", "rows_per_s", "rows/s (moving)", alpha=0.8)
    _line(speed_ax, epochs, "step", "rows_per_s", "rows/s (epoch)", marker="o")
    speed_ax.set(title="throughput", xlabel="global step", ylabel="rows/s")
    speed_ax.set_ylim(bottom=0)

    for ax in (loss_ax, metric_ax, speed_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    with replacing(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=100)
    return path


def _line(ax, records, x_key: str, y_key: str, label: str, **kwargs) -> None:
    points = [(r[x_key], r[y_key]) for r in records if r.get(y_key) is not None and x_key in r]
    if points:
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, label=label, **kwargs)


def _smoothed_rate(steps, points: int = 60) -> list[dict]:
    """Rows/s over a moving window of about ``len(steps) / points`` records: the rows of the
    window over its seconds (one step's rate alone is noise: steps run asynchronously)."""
    window = max(1, len(steps) // points)
    out, rows, seconds = [], [], []
    previous = None
    for record in steps:
        rate, now = record.get("rows_per_s"), record.get("seconds")
        if rate is None or now is None:
            continue
        dt = now - previous if previous is not None else 0.0
        previous = now
        if dt <= 0:
            continue
        rows.append(rate * dt)
        seconds.append(dt)
        rows, seconds = rows[-window:], seconds[-window:]
        out.append({"step": record["step"], "rows_per_s": sum(rows) / sum(seconds)})
    return out


def _first_metric(records) -> str | None:
    skip = {"epoch", "step", "seconds", "loss", "rows", "rows_per_s", "input_wait"}
    for record in records:
        for key in record:
            if key not in skip and not key.startswith("val_"):
                return key
    return None
