"""Command line: ``python -m emr_lib <command> --help``.

One module per group of commands: :mod:`.runs` (train, evaluate, table, compare), :mod:`.workshop`,
:mod:`.tools` (pipeline, site, study, efficiency), :mod:`.data` and :mod:`.mapping`
(map, export); each adds its
commands to the parser and maps a user's mistake to one clear line (:class:`CLIError`).
"""

from __future__ import annotations

import sys

from ..data import DataError
from ..models import PretrainedWeightsError
from ..training.checkpoints import CheckpointError
from ..training.runs import RunFolderError
from . import data, mapping, runs, tools, workshop
from .common import CLIError, Parser

__all__ = ["main", "build_parser", "CLIError"]


def build_parser() -> Parser:
    parser = Parser(
        prog="python -m emr_lib",
        description="EMR-HRNet kit: landslide segmentation models, data, training and evaluation.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)

    for module in (runs, workshop, tools, data, mapping):
        module.add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (CLIError, DataError, PretrainedWeightsError, CheckpointError, RunFolderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
