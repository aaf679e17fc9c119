"""Peak RSS while streaming a CSV through ``ts.csv(...).dataset(1024)``: 1M rows vs 4M rows.

Each size runs in a fresh process (peak RSS is per process). Target: the 4M-row peak is at most
1.2x the 1M-row peak — memory is bounded by the block, the chunk queue and the batch, not by the
file. pandas ``read_csv(chunksize=65536)`` is measured the same way beside it.

    python -m benchmarks.memory_csv [--small 1000000] [--large 4000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks._common import machine, make_numeric_csv, out_path

QUICK_ARGS = ["--small", "200000", "--large", "800000"]

_CHILD = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from benchmarks._common import consume, peak_rss_mb
kind, path = sys.argv[1], sys.argv[2]
if kind == "tfstream":
    import tensorflow as tf
    import tfstream as ts
    base = peak_rss_mb()
    start = time.perf_counter()
    rows = consume(ts.csv(path, label="label").dataset(1024))
else:
    import pandas as pd
    base = peak_rss_mb()
    start = time.perf_counter()
    rows = sum(len(c) for c in pd.read_csv(path, chunksize=65536))
print(json.dumps({"rows": rows, "peak_mb": peak_rss_mb(), "after_import_mb": base,
                  "seconds": time.perf_counter() - start}))
"""


def measure(kind: str, path: str) -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, path],
        check=True,
        capture_output=True,
        text=True,
        cwd=root,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(small: int = 1_000_000, large: int = 4_000_000) -> dict:
    paths = {n: make_numeric_csv(n) for n in (small, large)}
    rows = []
    verdict = {}
    for kind in ("tfstream", "pandas"):
        peaks = {}
        for n, path in paths.items():
            m = measure(kind, path)
            if m["rows"] != n:
                raise RuntimeError(f"{kind} read {m['rows']} rows of {n}")
            peaks[n] = m["peak_mb"]
            rows.append(
                {
                    "name": f"{kind} {n:,} rows",
                    "seconds": m["seconds"],
                    "rows_per_s": n / m["seconds"],
                    "peak_rss_mb": m["peak_mb"],
                    "rss_after_imports_mb": m["after_import_mb"],
                }
            )
        verdict[kind] = peaks[large] / peaks[small]
    print(f"\nPeak RSS, {small:,} vs {large:,} rows (fresh process each)")
    print(f"{'run':<28} {'peak RSS MB':>12} {'after imports MB':>17} {'seconds':>8}")
    for r in rows:
        print(
            f"{r['name']:<28} {r['peak_rss_mb']:>12.0f} {r['rss_after_imports_mb']:>17.0f} "
            f"{r['seconds']:>8.1f}"
        )
    for kind, ratio in verdict.items():
        print(f"{kind}: peak({large:,}) / peak({small:,}) = {ratio:.3f}  (target <= 1.2)")
    with open(out_path("memory_csv.json"), "w") as f:
        json.dump({"machine": machine(), "rows": rows, "peak_ratio_large_vs_small": verdict}, f)
    print(f"(written to {out_path('memory_csv.json')})")
    return verdict


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=4_000_000)
    args = parser.parse_args(argv)
    run(args.small, args.large)


if __name__ == "__main__":
    main()
