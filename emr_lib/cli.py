"""Command line: ``python -m emr_lib <command> --help``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


class CLIError(Exception):
    """A user error: printed as one clear message, exit status 2, no traceback."""


def _cmd_efficiency(args: argparse.Namespace) -> None:
    from .efficiency import efficiency_table, table_markdown
    from .models import build_model, list_models
    from .provenance import provenance

    models = args.models or list_models()
    unknown = sorted(set(models) - set(list_models()))
    if unknown:
        raise CLIError(f"unknown model(s) {unknown}; choose from {list_models()}")
    rows = efficiency_table(build_model, models, sizes=args.sizes, classes=args.classes)
    columns = [
        "model",
        "num_classes",
        "size",
        "params_M",
        "GFLOPs_torch",
        "GFLOPs_modules",
        "paper_params_M",
        "paper_GFLOPs",
    ]
    meta = provenance()
    note = (
        "GFLOPs_torch: torch.utils.flop_counter (every conv and matmul, functional ones included). "
        "GFLOPs_modules: nn.Conv2d/nn.Linear modules only, close to the paper's thop convention, which "
        "misses functional convs (RefConv), matmuls (MDTA, EMA), interpolation and norms. 2 FLOPs per "
        "multiply-add in both. Paper values: Table 7 at num_classes=21 (HRNet at 480 px, others at 512); "
        "the paper's comparison models are the 'bubbliiiing' implementations, ours are "
        "segmentation-models-pytorch's, so their counts differ."
    )
    markdown = (
        "# Table 7, measured\n\n"
        + table_markdown(rows, columns)
        + f"\n\n{note}\n\nProduced by `python -m emr_lib efficiency` at commit {meta['commit']} "
        f"(torch {meta['torch']}, {meta['created']}).\n"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "efficiency.json").write_text(json.dumps({"rows": rows, "note": note, "provenance": meta}, indent=2))
    (out / "efficiency.md").write_text(markdown)
    print(markdown)
    print(f"saved {out / 'efficiency.json'} and {out / 'efficiency.md'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emr_lib",
        description="EMR-HRNet kit: landslide segmentation models, data, training and evaluation.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    eff = commands.add_parser(
        "efficiency",
        help="parameters and FLOPs of every model (the paper's Table 7, side by side)",
        description="Count parameters and FLOPs of every model at each input size and class count, "
        "print the table beside the paper's Table 7 and save it as JSON and markdown.",
    )
    eff.add_argument("--models", nargs="+", metavar="NAME", help="models to count (default: all)")
    eff.add_argument("--sizes", nargs="+", type=int, default=[480, 512], help="square input sizes (default: 480 512)")
    eff.add_argument(
        "--classes",
        nargs="+",
        type=int,
        default=[21, 2],
        help="class counts (default: 21, the paper's counting convention, and 2)",
    )
    eff.add_argument("--out", default="runs/efficiency", help="output folder (default: runs/efficiency)")
    eff.set_defaults(func=_cmd_efficiency)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except CLIError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
