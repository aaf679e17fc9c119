"""The ``tfstream`` command line: ``main()`` builds the parser from one module per subcommand
and dispatches to it.

Each subcommand module defines ``NAME``, ``SUMMARY`` (one line for ``tfstream --help``),
``DESCRIPTION`` and ``EXAMPLES`` (its own ``--help``), ``add_arguments(parser)`` and
``run(args) -> int``. Errors a user can fix — a missing file, a bad row, a schema
problem, a bad option — end the command with one line on stderr and exit status 2; set
``TFSTREAM_TRACEBACK=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tfstream.cli import convert, demo, export, fit, inspect, predict, stats
from tfstream.cli._common import HelpFormatter, one_line

__all__ = ["build_parser", "main"]

#: The subcommand modules, in the order ``tfstream --help`` lists them.
COMMANDS = (inspect, stats, convert, fit, export, predict, demo)

_DESCRIPTION = """\
tfstream: train Keras/TensorFlow models on data larger than memory.

Run `tfstream <command> --help` for the options and examples of a command."""
_EXAMPLES = """\
examples:
  tfstream demo                                   # generate data, train, export, predict
  tfstream fit fit.yaml                           # stats -> train -> export (resumable)
  tfstream fit data/*.csv --label label --model mlp:256,128 --epochs 3
  tfstream inspect data/*.csv --label label
  tfstream stats data/*.csv --label label -o stats.json
  tfstream convert data/ --to parquet --output out/parquet
  tfstream export runs/churn/checkpoints --output savedmodels/churn --keep 3
  tfstream predict savedmodels/churn --json request.json   # a TF Serving REST body
"""

#: Exceptions that mean "the input or the options are wrong", not "tfstream has a bug".
_USER_ERRORS = (ValueError, OSError, argparse.ArgumentTypeError)


def build_parser() -> argparse.ArgumentParser:
    from tfstream import __version__

    parser = argparse.ArgumentParser(
        prog="tfstream",
        description=_DESCRIPTION,
        epilog=_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tfstream {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", title="commands")
    for module in COMMANDS:
        command = subparsers.add_parser(
            module.NAME,
            help=module.SUMMARY,
            description=module.DESCRIPTION,
            epilog=module.EXAMPLES,
            formatter_class=HelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``tfstream`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    # TensorFlow's C++ start-up chatter is noise on a command line; an explicit value wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except _USER_ERRORS as error:
        if os.environ.get("TFSTREAM_TRACEBACK"):
            raise
        print(one_line(error, args.command), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tfstream {args.command}: interrupted", file=sys.stderr)
        return 130
