"""``tfstream fit``: the main job from a config file and/or flags — statistics, training with
checkpoints, export for TF Serving (see :mod:`tfstream.pipeline`)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "overrides_from_args", "run"]

NAME = "fit"
SUMMARY = "train a model on files end to end: stats, training with checkpoints, export"
DESCRIPTION = """\
Run the main job: open the files (CSV, TFRecord or Parquet), compute exact column statistics
(or a sample's; cached in the run directory and reused while the files and options are
unchanged), build the preprocessor into a model (an MLP, wide-and-deep, linear, or your own
module:function), train it with tfstream's Trainer (exact gradient accumulation, precision,
strategy, remat, checkpoints, validation), and export a SavedModel for TF Serving to
<export-dir>/<name>/<version>. It ends with a summary: rows, rows/s, peak memory, final
metrics, export path.

The settings come from a YAML or TOML config file (see tfstream/pipeline/config.py for every
key), then from the flags, which win; --set KEY=VALUE sets any key (e.g. --set
model.dropout=0.1). A bad key or value stops the command with one line naming it.

Everything goes to the run directory (--run-dir, default runs/<name>): config.yaml,
stats.json, checkpoints/, logs/ (TensorBoard), history.json, curves.png and summary.json.
Running the same command again resumes from the checkpoints (--checkpoint-dir to keep them
elsewhere). SIGTERM or Ctrl-C saves a checkpoint and exits with status 75: run the command
again to resume.

exit status: 0 on success; 2 on a bad config or bad input, with one line on stderr;
75 when stopped by SIGTERM/SIGINT after saving a checkpoint."""
EXAMPLES = """\
examples:
  tfstream fit fit.yaml
  tfstream fit data/*.csv --label label --model mlp:256,128 --epochs 3 --batch-size 4096 \\
      --accumulation-steps 4 --name churn
  tfstream fit fit.toml --epochs 5 --set train.learning_rate=3e-4 --run-dir runs/churn-lr
  tfstream fit data/ --validation-fraction 0.1 --sample 100000 --no-export
"""

_CONFIG_SUFFIXES = (".yaml", ".yml", ".toml")

#: flag dest -> (config key, kind): "path" values stay strings, "paths" lists, "value" parsed.
_FLAGS = {
    "name": ("name", "text"),
    "run_dir": ("run_dir", "text"),
    "checkpoint_dir": ("checkpoint_dir", "text"),
    "label": ("data.label", "text"),
    "format": ("data.format", "text"),
    "validation": ("data.validation", "paths"),
    "validation_fraction": ("data.validation_fraction", "value"),
    "on_error": ("data.on_error", "text"),
    "sample": ("stats.sample", "value"),
    "model": ("model.spec", "text"),
    "task": ("model.task", "text"),
    "epochs": ("train.epochs", "value"),
    "batch_size": ("train.batch_size", "value"),
    "accumulation_steps": ("train.accumulation_steps", "value"),
    "optimizer": ("train.optimizer", "text"),
    "learning_rate": ("train.learning_rate", "value"),
    "precision": ("train.precision", "text"),
    "strategy": ("train.strategy", "text"),
    "remat": ("train.remat", "text"),
    "steps_per_epoch": ("train.steps_per_epoch", "value"),
    "seed": ("train.seed", "value"),
    "export_dir": ("export.base_dir", "text"),
    "export_version": ("export.version", "value"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="CONFIG|PATHS",
        help="a config file (.yaml, .yml, .toml) and/or the training files, globs or directories",
    )
    parser.add_argument("-c", "--config", metavar="FILE", help="the config file")
    group = parser.add_argument_group("job")
    group.add_argument(
        "--name", help="the job's name (default: the config file's name, or 'model')"
    )
    group.add_argument("--run-dir", metavar="DIR", help="default: runs/<name>")
    group.add_argument(
        "--checkpoint-dir",
        metavar="DIR",
        help="checkpoints and resume (default: <run-dir>/checkpoints)",
    )
    group = parser.add_argument_group("data")
    group.add_argument("--label", metavar="COL", help="the label column (default: label)")
    group.add_argument(
        "--format", metavar="FMT", help="csv, tfrecord or parquet (default: by suffix)"
    )
    group.add_argument("--validation", nargs="+", metavar="PATHS", help="validation files")
    group.add_argument(
        "--validation-fraction", metavar="F", help="hold out this fraction of the training files"
    )
    group.add_argument("--on-error", metavar="MODE", help="bad rows: raise, skip or quarantine")
    group.add_argument(
        "--sample", metavar="F|K", help="statistics from a fraction F of the rows, or K rows"
    )
    group = parser.add_argument_group("model and training")
    group.add_argument(
        "--model", metavar="SPEC", help="linear, mlp:256,128, wide_deep:256,128, module:function"
    )
    group.add_argument("--task", metavar="TASK", help="auto, binary or regression")
    group.add_argument("--epochs", metavar="N")
    group.add_argument("--batch-size", metavar="B", help="the global batch of one optimizer step")
    group.add_argument("--accumulation-steps", metavar="K", help="micro-batches per step")
    group.add_argument("--optimizer", metavar="NAME", help="a Keras optimizer name (default: adam)")
    group.add_argument("--learning-rate", metavar="LR")
    group.add_argument(
        "--precision", metavar="P", help="auto, float32, mixed_float16, mixed_bfloat16"
    )
    group.add_argument("--strategy", metavar="S", help="auto, one_device or mirrored")
    group.add_argument("--remat", metavar="MODE", help="full, blocks or larger_than")
    group.add_argument("--steps-per-epoch", metavar="N")
    group.add_argument("--seed", metavar="N", help="the shuffle seed")
    group.add_argument("--no-shuffle", action="store_true", help="read in file order")
    group.add_argument("--deterministic", action="store_true", help="bit-reproducible training")
    group = parser.add_argument_group("export and output")
    group.add_argument("--export-dir", metavar="DIR", help="the export root (default: savedmodels)")
    group.add_argument("--export-version", metavar="N", help="default: the next free version")
    group.add_argument("--no-export", action="store_true", help="do not export")
    group.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set any config key, e.g. --set model.dropout=0.1 (repeatable)",
    )
    group.add_argument("--quiet", action="store_true", help="no progress bars")


def overrides_from_args(args: argparse.Namespace) -> tuple[str | None, dict]:
    """``(config_path, {dotted key: value})`` from the command line (flags win over the
    config file; values stay unchecked until :func:`tfstream.pipeline.load_config`)."""
    from tfstream.cli._common import UsageError

    configs = [p for p in args.inputs if p.lower().endswith(_CONFIG_SUFFIXES)]
    paths = [p for p in args.inputs if not p.lower().endswith(_CONFIG_SUFFIXES)]
    if args.config:
        configs.insert(0, args.config)
    if len(configs) > 1:
        raise UsageError(f"give one config file; received {len(configs)}: {', '.join(configs)}")
    overrides: dict = {}
    if paths:
        overrides["data.train"] = paths
    for dest, (key, kind) in _FLAGS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        overrides[key] = _scalar(value) if kind == "value" else value
    if args.no_shuffle:
        overrides["train.shuffle"] = False
    if args.deterministic:
        overrides["train.deterministic"] = True
    if args.no_export:
        overrides["export.enabled"] = False
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set takes KEY=VALUE, e.g. --set train.epochs=3; received {item!r}")
        overrides[key.strip()] = _parse_value(text)
    if not configs and "name" not in overrides:
        overrides["name"] = "model"
    return (configs[0] if configs else None), overrides


def _scalar(text: str):
    """``"3"`` -> 3, ``"1e-3"`` -> 0.001, ``"true"``/``"null"``, else the text itself."""
    for convert in (int, float):
        try:
            return convert(text.replace("_", ""))
        except ValueError:
            pass
    return {"true": True, "false": False, "null": None, "none": None}.get(text.lower(), text)


def _parse_value(text: str):
    """A ``--set`` value: a number, or YAML (``[a, b]``, ``{k: v}``, ``true``), or the text."""
    value = _scalar(text.strip())
    if not isinstance(value, str):
        return value
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def run(args: argparse.Namespace) -> int:
    from tfstream.pipeline.config import load_config

    path, overrides = overrides_from_args(args)
    config = load_config(path, overrides=overrides)
    from tfstream.pipeline.run import run_fit
    from tfstream.train.preemption import Preempted

    try:
        run_fit(config, progress=not args.quiet and sys.stderr.isatty())
    except Preempted as preempted:
        import signal

        print(
            f"tfstream fit: stopped by {signal.Signals(preempted.signal).name} after saving "
            f"{preempted.path}. Run the same command again to resume (exit status "
            f"{preempted.code}).",
            file=sys.stderr,
            flush=True,
        )
        return int(preempted.code)
    return 0
