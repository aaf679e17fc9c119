"""``make bench``: every benchmark, each with its anchors in the same run.

python -m benchmarks [--quick]   # --quick: 200k rows, no slow TF anchors, no 4M-row file
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = [
    "ingest_csv",
    "ingest_tfrecord",
    "ingest_parquet",
    "ingest_sql",
    "memory_csv",
    "stats_csv",
    "accumulation",
    "trainer_csv",
    "checkpoint_size",
    "remat_mlp",
    "precision_cpu",
    "precision_gpu",
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("names", nargs="*", default=BENCHMARKS, help="benchmarks to run")
    args = parser.parse_args(argv)
    for name in args.names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"\n=== {name} ===", flush=True)
        if args.quick:
            module.main(module.QUICK_ARGS)
        else:
            module.main([])


if __name__ == "__main__":
    main()
