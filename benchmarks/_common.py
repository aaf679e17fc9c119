"""Shared pieces of the benchmarks: generated data, timing, consuming a dataset, the table."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def out_path(name: str) -> str:
    os.makedirs(OUT, exist_ok=True)
    return os.path.join(OUT, name)


def make_numeric_csv(rows: int, *, seed: int = 0) -> str:
    """A CSV of a 0/1 ``label`` and 28 float features ``f0..f27`` (cached in benchmarks/out)."""
    import polars as pl

    path = out_path(f"numeric-{rows}.csv")
    if os.path.exists(path):
        return path
    rng = np.random.default_rng(seed)
    step = 500_000
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        for start in range(0, rows, step):
            n = min(step, rows - start)
            frame = pl.DataFrame({"label": rng.integers(0, 2, n)}).with_columns(
                [pl.Series(f"f{i}", rng.standard_normal(n).astype(np.float32)) for i in range(28)]
            )
            frame.write_csv(f, include_header=start == 0, float_precision=6)
    os.replace(tmp, path)
    return path


def consume(ds) -> int:
    """Rows in a dataset of (features, label) batches, counted inside tf.data (``reduce``): no
    Python per batch, as in a compiled training step."""
    import tensorflow as tf

    def add(n, batch):
        label = batch[1] if isinstance(batch, tuple) else next(iter(batch.values()))
        return n + tf.shape(label, out_type=tf.int64)[0]

    return int(ds.reduce(tf.constant(0, tf.int64), add))


def timed(fn, repeats: int = 1):
    """(best seconds, result) over ``repeats`` runs."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_rss_mb() -> float:
    """Peak resident set of this process (VmHWM). Not ``ru_maxrss``: Linux keeps that across
    ``execve``, so a child started by a big parent would report the parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
    }


def report(title: str, rows: list[dict], *, reference: str, json_name: str, extra=None) -> None:
    """Prints a table with ratios against ``reference`` and writes JSON to benchmarks/out."""
    ref = next(r for r in rows if r["name"] == reference)
    print(f"\n{title}")
    print(f"{'method':<44} {'seconds':>8} {'rows/s':>12} {'MB/s':>8} {'vs ' + reference:>20}")
    for r in rows:
        r["ratio_vs_" + reference] = ref["seconds"] / r["seconds"]
        mbs = f"{r['mb_per_s']:.0f}" if r.get("mb_per_s") else "-"
        print(
            f"{r['name']:<44} {r['seconds']:>8.2f} {r['rows_per_s']:>12,.0f} {mbs:>8} "
            f"{r['ratio_vs_' + reference]:>19.2f}x"
        )
    doc = {"title": title, "machine": machine(), "rows": rows, **(extra or {})}
    with open(out_path(json_name), "w") as f:
        json.dump(doc, f, indent=2)
    print(f"(written to {out_path(json_name)})")


def run_methods(methods, *, rows: int, mb: float) -> list[dict]:
    """Times each ``(name, fn, repeats)``; ``fn`` returns the rows it produced, which must be
    ``rows``. Returns one result dict per method: its best time, and every time in ``runs``.

    Repeats are taken in turns (round 1 runs every method once, round 2 every method with
    ``repeats >= 2``, ...), so a method and its anchor see the same phases of a shared, noisy
    machine instead of one getting a quiet minute and the other a busy one."""
    times: dict[str, list[float]] = {name: [] for name, _, _ in methods}
    for round_ in range(max(repeats for _, _, repeats in methods)):
        for name, fn, repeats in methods:
            if round_ >= repeats:
                continue
            start = time.perf_counter()
            count = fn()
            times[name].append(time.perf_counter() - start)
            if count != rows:
                raise RuntimeError(f"{name} produced {count} rows, expected {rows}")
            print(f"  round {round_ + 1}, {name}: {times[name][-1]:.2f} s", flush=True)
    results = []
    for name, _, _ in methods:
        seconds = min(times[name])
        results.append(
            {
                "name": name,
                "seconds": seconds,
                "runs": times[name],
                "rows_per_s": rows / seconds,
                "mb_per_s": mb / seconds,
            }
        )
    return results


def run_child(script: str, args, *, tf_allocator_stats: bool = False) -> dict:
    """Runs ``python -c script args...`` from the repository root in a fresh process (so each
    measurement has its own peak RSS) and returns the JSON of its last stdout line.

    ``tf_allocator_stats`` puts a BFC allocator on the CPU, which makes
    ``tf.config.experimental.get_memory_info("CPU:0")`` work: exact tensor bytes.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    if tf_allocator_stats:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
    else:
        env.pop("TF_CPU_ALLOCATOR_USE_BFC", None)
    out = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def step_memory(m: dict) -> dict:
    """Adds what a training step allocates to a child's measurement ``m``: ``step_adds_mb``
    (steady peak RSS minus RSS once built) and, with allocator stats, ``tf_step_adds_mb``."""
    steady = m["steady_peak_mb"] if m["steady_peak_mb"] is not None else m["peak_mb"]
    m["step_adds_mb"] = steady - m["after_build_rss_mb"]
    if m["tf_step_peak_mb"] is not None:
        m["tf_step_adds_mb"] = m["tf_step_peak_mb"] - m["tf_built_mb"]
    return m
