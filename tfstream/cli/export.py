"""``tfstream export``: a saved Keras model or a Trainer checkpoint directory -> a versioned
SavedModel for TF Serving (see :func:`tfstream.export_saved_model`)."""

from __future__ import annotations

import argparse
import os

from tfstream.cli._common import Timer, UsageError, positive_int

__all__ = ["add_arguments", "load_keras_model", "run"]

NAME = "export"
SUMMARY = "export a Keras model or a training checkpoint as a SavedModel for TF Serving"
DESCRIPTION = """\
Export MODEL as BASE_DIR/<version>/, the layout TF Serving watches: version = the highest
existing one + 1 unless --version is given; it is written under a hidden temporary name and
renamed into place, so a server never loads a half-written version. An existing version is
never overwritten.

MODEL is a saved Keras model (.keras) or a checkpoint directory of `tfstream fit` /
ts.Trainer(checkpoint_dir=...) (its model.keras with the latest checkpoint's weights).
The model takes the raw feature dict, or, with --preprocessor, the output of that Keras model
(e.g. a saved stats.preprocessor()).

The SavedModel has two signatures: serving_default (one tensor per raw feature) and
serving_tf_example (serialized tf.train.Example), returning float32 `predictions` and, for a
classifier (final sigmoid with one unit, or softmax), `probabilities` and `class_ids`; plus
warmup requests in assets.extra/tf_serving_warmup_requests.

exit status: 0 on success; 2 on bad input, with one line on stderr."""
EXAMPLES = """\
examples:
  tfstream export runs/churn/checkpoints --output savedmodels/churn --keep 3
  tfstream export model.keras --preprocessor prep.keras --output savedmodels/churn
  tfstream export model.keras --output savedmodels/churn --version 7 --task binary
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a .keras file or a checkpoint directory")
    parser.add_argument(
        "-o", "--output", required=True, metavar="BASE_DIR", help="the model's base directory"
    )
    parser.add_argument(
        "--preprocessor", metavar="PATH", help="a .keras preprocessor applied before MODEL"
    )
    parser.add_argument(
        "--version", type=positive_int, metavar="N", help="the version (default: highest + 1)"
    )
    parser.add_argument(
        "--keep", type=positive_int, metavar="N", help="then keep only the newest N versions"
    )
    parser.add_argument(
        "--task",
        choices=("auto", "regression", "binary", "multiclass"),
        default="auto",
        help="which outputs to export (default: auto, from the final activation)",
    )


def load_keras_model(path: str):
    """A ``.keras`` file, or the model of a checkpoint directory, uncompiled."""
    import keras

    import tfstream.stats.keras  # noqa: F401 - registers tfstream's layers for loading

    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise UsageError(
                f"{path} is a SavedModel already; `tfstream export` takes a .keras file or a "
                "checkpoint directory."
            )
        from tfstream.train.checkpoint import load_model

        return load_model(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such model: {path}")
    if not path.endswith(".keras"):
        raise UsageError(
            f"expected a .keras file or a checkpoint directory; received {path!r} (save the "
            "model with model.save('model.keras'))."
        )
    return keras.saving.load_model(path, compile=False)


def run(args: argparse.Namespace) -> int:
    from tfstream.export import export_saved_model

    model = load_keras_model(args.model)
    preprocessor = load_keras_model(args.preprocessor) if args.preprocessor else None
    with Timer() as timer:
        path = export_saved_model(
            model,
            args.output,
            preprocessor=preprocessor,
            version=args.version,
            keep=args.keep,
            task=args.task,
        )
    print(f"exported {path} in {timer.seconds:.1f} s")
    print(f"check it: tfstream predict {path} --json request.json")
    return 0
