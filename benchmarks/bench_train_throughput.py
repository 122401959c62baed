"""Benchmark: training throughput (images/s) of each profile's model on this machine.

    python benchmarks/bench_train_throughput.py [--profiles quick workshop paper] [--steps 5]
    python benchmarks/bench_train_throughput.py --profiles workshop --models all --train-images 462

For every profile, a training step of HRNet and EMR-HRNet (or of ``--models``; ``all`` is
every comparison model of notebook 05) at the profile's width, input size and batch is
timed (alternating, median of ``--steps``; ratios are to the first model). With
``--train-images N`` each row also estimates the minutes of one training run: N images
per epoch for the profile's epochs, training steps only (evaluation adds to it). Nothing
is asserted; the table is printed and saved to ``runs/benchmarks/train_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from emr_lib.experiments.efficiency import HRNET_FAMILY, speed_rows
from emr_lib.figures import table_markdown
from emr_lib.models import list_models
from emr_lib.provenance import provenance
from emr_lib.training.profiles import get_config
from emr_lib.training.runtime import select_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["quick", "workshop", "paper"])
    parser.add_argument("--models", nargs="+", default=list(HRNET_FAMILY), help="model names, or all")
    parser.add_argument("--train-images", type=int, default=0, help="training images per epoch, for an estimate")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="runs/benchmarks/train_throughput.json")
    args = parser.parse_args()
    device = select_device(args.device)
    names = list_models() if args.models == ["all"] else args.models
    unknown = sorted(set(names) - set(list_models()))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list_models()} or all")
    rows = []
    for profile in args.profiles:
        config = get_config(profile)
        width = config.model_options["width"]
        for row in speed_rows(names, width, config.size, config.batch_size, args.steps, device):
            if args.train_images:
                steps = math.ceil(args.train_images / config.batch_size) * config.epochs
                row["est_train_min"] = row["train_step_s"] * steps / 60
            rows.append({"profile": profile, **row})
        print(table_markdown(rows[-len(names) :], floatfmt=".3f"), flush=True)
    print(table_markdown(rows, floatfmt=".3f"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "provenance": provenance(device)}, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
