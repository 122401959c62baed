"""Benchmark: EMR-HRNet vs HRNet training and inference steps, side by side.

    python benchmarks/bench_model_step.py --width 32 --size 224 --batch 4 --repeats 5

Same width, input and batch; the models alternate within each repetition and the
median is reported. Speeds are compared as ratios from this one run; this is a
benchmark, not a test, so it asserts nothing. Results go to
``runs/benchmarks/model_step.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from emr_lib.experiments.efficiency import HRNET_FAMILY, speed_rows
from emr_lib.figures import table_markdown
from emr_lib.provenance import provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", default="32", help="HRNet width: 18, 32, 48 or 18_small")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="runs/benchmarks/model_step.json")
    args = parser.parse_args()
    width = int(args.width) if args.width.isdigit() else args.width
    rows = speed_rows(HRNET_FAMILY, width, args.size, args.batch, args.repeats, args.device)
    print(table_markdown(rows, floatfmt=".3f"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows, "provenance": provenance(args.device)}, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
