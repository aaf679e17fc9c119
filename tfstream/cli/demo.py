"""``tfstream demo``: the main job on a generated dataset — CSV shards, statistics, training with
exact gradient accumulation, export for TF Serving, and a REST request answered by the export —
through the same code as ``tfstream fit`` and ``tfstream predict``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys

from tfstream.cli._common import Timer, format_bytes, positive_int

__all__ = ["add_arguments", "demo_config", "fit_argv", "run"]

NAME = "demo"
SUMMARY = "generate a dataset, train on it with accumulation, export it and query the export"
DESCRIPTION = """\
Run tfstream's main job on a generated dataset and print what it does, step by step:

  1. generate CSV shards: a 0/1 label, 28 float features and 2 string columns, with a few
     malformed lines in one file (skipped and counted: rows are never lost silently);
  2. `tfstream fit`: exact statistics in one streaming pass, a preprocessor built from them
     inside an MLP, training with exact gradient accumulation and checkpoints, and an export
     as a SavedModel for TF Serving;
  3. `tfstream predict`: answer a TF Serving REST request (JSON "instances" of raw rows)
     against the export, and check it against the model in memory.

The default (2,000,000 rows, 3 epochs) takes about 2 minutes on 2 CPU cores. The data and
the run directory stay in --output, and the export goes to OUTPUT/savedmodels/demo/<version>
(or --export-dir). Each run replaces the demo's data and run directory and trains afresh; the
export keeps the last 3 versions."""
EXAMPLES = """\
examples:
  tfstream demo
  tfstream demo --rows 200000 --epochs 1 --output /tmp/tfstream-demo
"""

_FEATURES = 28
_STRINGS = 2
_BAD_ROWS = 5
_REQUEST_ROWS = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rows", type=positive_int, default=2_000_000, metavar="N", help="rows (default: 2000000)"
    )
    parser.add_argument(
        "--files", type=positive_int, default=8, metavar="K", help="CSV shards (default: 8)"
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=3, metavar="E", help="epochs (default: 3)"
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=4096,
        metavar="B",
        help="rows per optimizer step (default: 4096)",
    )
    parser.add_argument(
        "--accumulation-steps",
        type=positive_int,
        default=4,
        metavar="K",
        help="micro-batches accumulated per optimizer step (default: 4)",
    )
    parser.add_argument(
        "--model", default="mlp:64,32", metavar="SPEC", help="model spec (default: mlp:64,32)"
    )
    parser.add_argument(
        "--output",
        default="demo_output",
        metavar="DIR",
        help="data and run directory (default: ./demo_output)",
    )
    parser.add_argument(
        "--export-dir",
        metavar="DIR",
        help="export root; the model goes to DIR/demo/<version> (default: OUTPUT/savedmodels)",
    )
    parser.add_argument("--seed", type=int, default=0, help="data seed (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars on stderr")


def fit_argv(args: argparse.Namespace) -> list[str]:
    """The ``tfstream fit`` arguments of the demo's training: the demo prints them and trains
    with the config they give (:func:`demo_config`)."""
    root = args.output
    return [
        "fit",
        os.path.join(root, "csv"),
        "--label", "label",
        "--name", "demo",
        "--run-dir", os.path.join(root, "run"),
        "--model", args.model,
        "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size),
        "--accumulation-steps", str(args.accumulation_steps),
        "--seed", str(args.seed),
        # Malformed lines are skipped and counted. The unparsable number is in the last float
        # column: declared, it stays numeric even when it falls in the rows sampled to infer
        # the types.
        "--on-error", "skip",
        "--set", f"data.schema={{f{_FEATURES - 1}: float32}}",
        "--export-dir", args.export_dir or os.path.join(root, "savedmodels"),
        "--set", "export.keep=3",
    ]  # fmt: skip


def demo_config(args: argparse.Namespace):
    """The :class:`~tfstream.pipeline.FitConfig` of :func:`fit_argv`, parsed by ``tfstream
    fit``'s own parser."""
    from tfstream.cli import build_parser
    from tfstream.cli.fit import overrides_from_args
    from tfstream.pipeline import load_config

    path, overrides = overrides_from_args(build_parser().parse_args(fit_argv(args)))
    return load_config(path, overrides=overrides)


def run(args: argparse.Namespace) -> int:
    import time

    from tfstream.testing import write_csv_shards

    started = time.perf_counter()
    root = args.output
    csv_dir = os.path.join(root, "csv")
    config = demo_config(args)
    say = _Say(total=3)

    say.step(
        f"generate {args.rows:,} rows (label + {_FEATURES} float + {_STRINGS} string columns) in "
        f"{args.files} CSV shard{'s' if args.files != 1 else ''} under {csv_dir}"
    )
    shutil.rmtree(csv_dir, ignore_errors=True)
    shutil.rmtree(config.resolved_run_dir, ignore_errors=True)  # the demo trains afresh
    with Timer() as timer:
        paths = write_csv_shards(
            csv_dir,
            args.rows,
            shards=args.files,
            features=_FEATURES,
            strings=_STRINGS,
            seed=args.seed,
            bad_rows=_BAD_ROWS,
        )
    size = sum(os.path.getsize(p) for p in paths)
    say.done(
        f"wrote {format_bytes(size)} in {timer.seconds:.1f} s; {_BAD_ROWS} malformed lines were "
        f"added to {paths[len(paths) // 2]} on purpose"
    )

    say.step(f"train: tfstream {shlex.join(fit_argv(args))}")
    from tfstream.pipeline import run_fit

    result = run_fit(config, progress=not args.quiet and sys.stderr.isatty())

    request_path = os.path.join(root, "request.json")
    say.step(
        f"serve: tfstream predict {result.export_path} --json {request_path}  "
        "(a TF Serving REST request)"
    )
    request = _write_request(paths[0], request_path)
    response = _predict(result.export_path, request)
    print(f"  request  {json.dumps(request)[:160]}...")
    print(f"  response {json.dumps(response)}")
    _check_against_model(result.model, request, response)
    print(
        f"\nDone in {time.perf_counter() - started:.0f} s. The data are in {csv_dir}/, the run "
        "(config, statistics, checkpoints, "
        f"TensorBoard logs, history, curves.png) in {result.run_dir}/, and the model for TF "
        f"Serving in {result.export_path}.\nNext: tensorboard --logdir "
        f"{os.path.join(result.run_dir, 'logs')}  |  tfstream predict {result.export_path} "
        f"--json {request_path}",
        flush=True,
    )
    return 0


def _write_request(csv_path: str, path: str) -> dict:
    """A TF Serving REST ``predict`` body of the first rows of ``csv_path`` (raw features, the
    label left out), written to ``path``."""
    import polars as pl

    frame = pl.read_csv(csv_path, n_rows=_REQUEST_ROWS).drop("label")
    request = {"signature_name": "serving_default", "instances": frame.to_dicts()}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(request, f, indent=1)
    return request


def _predict(export_path: str, request: dict) -> dict:
    """The answer of the export to a REST request, by the code of ``tfstream predict``."""
    from tfstream.cli.predict import predict_request

    return predict_request(export_path, request)


def _check_against_model(model, request: dict, response: dict) -> None:
    """The export's predictions must equal the in-memory model's on the same raw rows."""
    import numpy as np

    instances = request["instances"]
    features = {key: np.array([row[key] for row in instances]) for key in instances[0]}
    for key, value in features.items():
        if value.dtype.kind == "f":
            features[key] = value.astype(np.float32)
    expected = np.asarray(model(features)).reshape(len(instances), -1)
    served = np.asarray(_predictions(response), dtype=np.float64).reshape(len(instances), -1)
    diff = float(np.max(np.abs(expected - served)))
    if diff > 1e-5:
        raise RuntimeError(
            f"the export answers {served.ravel().tolist()} but the model in memory gives "
            f"{expected.ravel().tolist()} (max difference {diff:.2g})."
        )
    print(f"  the export's predictions equal the trained model's (max difference {diff:.1g})")


def _predictions(response: dict):
    """The ``predictions`` output of a row-format response (one dict per row when the
    signature has several outputs: predictions, probabilities, class_ids)."""
    if "error" in response:
        raise RuntimeError(f"the export refused the request: {response['error']}")
    predictions = response["predictions"]
    if predictions and isinstance(predictions[0], dict):
        return [row["predictions"] for row in predictions]
    return predictions


class _Say:
    """Numbered step headers: ``[2/3] train: ...``."""

    def __init__(self, total: int):
        self.total = total
        self.index = 0

    def step(self, text: str) -> None:
        self.index += 1
        prefix = "" if self.index == 1 else "\n"
        print(f"{prefix}[{self.index}/{self.total}] {text}", flush=True)

    def done(self, text: str) -> None:
        print(f"  {text}", flush=True)
