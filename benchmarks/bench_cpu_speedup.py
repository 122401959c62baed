"""Benchmark: workshop training on this CPU, the profile's settings against ``cpu_fast``, side by side.

    python benchmarks/bench_cpu_speedup.py --data ../shared/data/bijie-224 [--epochs 2] [--rounds 2]

Trains the workshop EMR-HRNet for ``--epochs`` epochs with the profile's settings and with
``--set cpu_fast=true`` (channels_last and bf16 autocast on the CPU), alternating for
``--rounds`` rounds so both meet the same machine state, and reports the median epoch time
(training steps plus validation) of each and their ratio. It also times where an epoch goes:
reading and augmenting the training split alone, and one validation pass. Nothing is
asserted; the table is printed and saved to ``runs/benchmarks/cpu_speedup.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from emr_lib.figures import table_markdown
from emr_lib.inference import evaluate
from emr_lib.models import build_model
from emr_lib.profiles import get_config
from emr_lib.provenance import provenance
from emr_lib.run_data import run_datasets
from emr_lib.runtime import Distributed, select_device
from emr_lib.train import epoch_loader, train


def where_time_goes(config) -> dict:
    """Seconds to read and augment one epoch of the training split, and for one validation pass."""
    data = run_datasets(config)
    started = time.perf_counter()
    for _ in epoch_loader(data.train(), config, 0, Distributed(), workers=0, pin=False):
        pass
    reading = time.perf_counter() - started
    model = build_model(config.model, config.num_classes, **config.model_options)
    started = time.perf_counter()
    evaluate(model, data.val, config.batch_size, select_device("cpu"), progress=False)
    return {"read_augment_s": reading, "validation_s": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the Bijie folder (or another dataset)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="runs/benchmarks/cpu_speedup.json")
    args = parser.parse_args()
    settings = {"profile settings": {}, "cpu_fast": {"cpu_fast": True}}
    epochs = {name: [] for name in settings}
    with tempfile.TemporaryDirectory(prefix="emr-bench-cpu-") as tmp:
        for round_ in range(args.rounds):
            for name, extra in settings.items():
                config = get_config("workshop", data=args.data, device="cpu", epochs=args.epochs, **extra)
                run_dir = Path(tmp) / f"{name}-{round_}".replace(" ", "_")
                train(config, run_dir, progress=False)
                history = json.loads((run_dir / "history.json").read_text())
                epochs[name] += [row["time_s"] for row in history]
                print(f"round {round_ + 1} {name}: {[round(row['time_s'], 1) for row in history]} s", flush=True)
    baseline = statistics.median(epochs["profile settings"])
    rows = [
        {"settings": name, "median_epoch_s": statistics.median(times), "speed-up": baseline / statistics.median(times)}
        for name, times in epochs.items()
    ]
    parts = where_time_goes(get_config("workshop", data=args.data, device="cpu"))
    print(table_markdown(rows, floatfmt=".2f"))
    print({key: round(value, 2) for key, value in parts.items()})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    result = {"rows": rows, "epochs": epochs, "where_time_goes": parts, **provenance("cpu")}
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
