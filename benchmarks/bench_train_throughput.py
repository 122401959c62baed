"""Benchmark: training throughput (images/s) of each profile's model on this machine.

    python benchmarks/bench_train_throughput.py [--profiles quick workshop paper] [--steps 5]

For every profile, a training step of EMR-HRNet and HRNet at the profile's width, input
size and batch is timed (alternating, median of ``--steps``). Nothing is asserted; the
table is printed and saved to ``runs/benchmarks/train_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emr_lib.efficiency import hrnet_speed_rows, table_markdown
from emr_lib.profiles import get_config
from emr_lib.provenance import provenance
from emr_lib.train import select_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["quick", "workshop", "paper"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="runs/benchmarks/train_throughput.json")
    args = parser.parse_args()
    device = select_device(args.device)
    rows = []
    for profile in args.profiles:
        config = get_config(profile)
        for row in hrnet_speed_rows(config.model_options["width"], config.size, config.batch_size, args.steps, device):
            rows.append({"profile": profile, **row})
        print(table_markdown(rows[-2:], floatfmt=".3f"), flush=True)
    print(table_markdown(rows, floatfmt=".3f"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "provenance": provenance(device)}, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
