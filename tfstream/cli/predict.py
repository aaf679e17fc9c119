"""``tfstream predict``: answer a TF Serving REST ``:predict`` body with a SavedModel, locally,
exactly as TF Serving's REST API would (see :mod:`tfstream.export.serving`)."""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["add_arguments", "predict_request", "run"]

NAME = "predict"
SUMMARY = "answer a TF Serving REST request (JSON) with a SavedModel, as TF Serving would"
DESCRIPTION = """\
Read a TF Serving REST `:predict` request body and print the response TF Serving would send,
so that a request can be checked before deploying. SAVEDMODEL is a version directory, or a
base directory (its highest version is used, as TF Serving does).

Request formats: row format {"instances": [{"f0": 1.5, "city": "Oslo"}, ...]} answered with
{"predictions": [...]}, and columnar format {"inputs": {"f0": [1.5], "city": ["Oslo"]}}
answered with {"outputs": ...}; optional "signature_name" (default serving_default). Missing
numbers are sent as NaN; strings as text or {"b64": "..."}.

exit status: 0 on success; 2 when the request is refused, with TF Serving's error body
{"error": "..."} on stdout."""
EXAMPLES = """\
examples:
  tfstream predict savedmodels/churn --json request.json
  echo '{"instances": [{"f0": 1.0}]}' | tfstream predict savedmodels/churn/3 --json -
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("savedmodel", metavar="SAVEDMODEL", help="a SavedModel directory")
    parser.add_argument(
        "--json", required=True, metavar="FILE", help="the request body (- for stdin)"
    )
    parser.add_argument("--indent", type=int, metavar="N", help="indent the JSON output")


def predict_request(savedmodel, request) -> dict:
    """The REST response body to ``request`` (a dict or JSON text): the answer, or TF
    Serving's error body ``{"error": ...}`` for a request it would refuse."""
    from tfstream.export.serving import ServingError, load, predict

    try:
        return predict(load(savedmodel), request)
    except ServingError as error:
        return error.body()


def run(args: argparse.Namespace) -> int:
    from tfstream.export.serving import ServingError, load, predict

    try:
        if args.json == "-":
            body = sys.stdin.read()
        else:
            with open(args.json, encoding="utf-8") as f:
                body = f.read()
    except OSError as error:
        raise OSError(f"cannot read the request {args.json}: {error.strerror}") from None
    try:
        response, status = predict(load(args.savedmodel), body), 0
    except ServingError as error:
        response, status = error.body(), 2
    print(json.dumps(response, indent=args.indent))
    sys.stdout.flush()
    return status
