"""Benchmark: workshop training on this CPU, before and after the speed-ups, side by side.

    python benchmarks/bench_cpu_speedup.py --data ../shared/data/bijie-224 [--epochs 2] [--rounds 2]

Trains the workshop EMR-HRNet for ``--epochs`` epochs three ways, alternating for ``--rounds``
rounds so all meet the same machine state: as before the decoded-image cache
(``cache_images=false``: every epoch decodes every PNG again), with the profile's settings now
(the cache: the same numbers), and with ``cpu_fast`` as well (channels_last and bf16 autocast for
the training steps and validation, a fused optimiser step, augmentation at the training size:
other numbers, opt-in). Reports the median epoch time (training steps plus validation) of each
and the ratio to the first. It also times where an epoch goes: reading and augmenting the
training split from the files, from the cache, and from the cache at the training size with
augmentation at that size (and filling the cache, once a run), and one validation pass in fp32
and in bf16. Nothing is asserted; the table is printed and saved to
``runs/benchmarks/cpu_speedup.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from emr_lib.evaluation.inference import evaluate
from emr_lib.figures import table_markdown
from emr_lib.models import build_model
from emr_lib.provenance import provenance
from emr_lib.training.loop import epoch_loader, train
from emr_lib.training.profiles import get_config
from emr_lib.training.run_data import cached_views, run_datasets
from emr_lib.training.runtime import Distributed, select_device


def where_time_goes(config) -> dict:
    """Seconds to read and augment one epoch of the training split (from the files, from the
    decoded cache, and at the training size from a cache kept at it), and for one validation pass
    in fp32 and in bf16."""
    data = run_datasets(config)
    times = {}
    train_view, val_view = data.train(), data.val
    started = time.perf_counter()
    cached_train, cached_val = cached_views([train_view, val_view], progress=False)
    times["decode_into_cache_once_s"] = time.perf_counter() - started
    (at_size,) = cached_views([data.train(augment_at_size=True)], progress=False)  # kept at the size
    views = (("read_augment_s", train_view), ("read_augment_cached_s", cached_train))
    for key, view in (*views, ("read_augment_at_size_cached_s", at_size)):
        started = time.perf_counter()
        for _ in epoch_loader(view, config, 0, Distributed(), workers=0, pin=False):
            pass
        times[key] = time.perf_counter() - started
    model = build_model(config.model, config.num_classes, **config.model_options)
    for key, amp in (("validation_fp32_s", False), ("validation_bf16_s", True)):
        started = time.perf_counter()
        evaluate(model, cached_val, config.batch_size, select_device("cpu"), progress=False, amp=amp)
        times[key] = time.perf_counter() - started
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the Bijie folder (or another dataset)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="runs/benchmarks/cpu_speedup.json")
    args = parser.parse_args()
    settings = {
        "before (no image cache)": {"cache_images": False},
        "profile settings (image cache)": {},
        "image cache + cpu_fast": {"cpu_fast": True},
    }
    epochs = {name: [] for name in settings}
    with tempfile.TemporaryDirectory(prefix="emr-bench-cpu-") as tmp:
        for round_ in range(args.rounds):
            for number, (name, extra) in enumerate(settings.items()):
                config = get_config("workshop", data=args.data, device="cpu", epochs=args.epochs, **extra)
                run_dir = Path(tmp) / f"settings{number}-round{round_}"
                train(config, run_dir, progress=False)
                history = json.loads((run_dir / "history.json").read_text())
                epochs[name] += [row["time_s"] for row in history]
                print(f"round {round_ + 1} {name}: {[round(row['time_s'], 1) for row in history]} s", flush=True)
    baseline = statistics.median(epochs["before (no image cache)"])
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
