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

from emr_lib.efficiency import benchmark_steps
from emr_lib.models import build_model
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
    models = {"hrnet": build_model("hrnet", width=width), "emr_hrnet": build_model("emr_hrnet", width=width)}
    result = benchmark_steps(models, batch_size=args.batch, size=args.size, repeats=args.repeats, device=args.device)
    print(f"width {args.width}, {args.size} px, batch {args.batch}, {args.repeats} repeats, device {args.device}")
    print(f"{'model':<10} {'train s':>8} {'ratio':>6} {'infer s':>8} {'ratio':>6}")
    for name, r in result.items():
        train = f"{r['train_step_s']:8.3f} {r['train_ratio']:6.2f}"
        print(f"{name:<10} {train} {r['infer_step_s']:8.3f} {r['infer_ratio']:6.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "result": result, "provenance": provenance(args.device)}, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
