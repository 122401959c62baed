"""Benchmark: peak memory and throughput of ``map`` on synthetic GeoTIFFs of growing size.

    python benchmarks/bench_map.py [--sizes 4096 16384] [--checkpoint CKPT] [--window PX]

Writes georeferenced synthetic scenes of each side (UTM, 1 m, black no-data border) and
maps each in a fresh process, which reports its peak resident memory (``ru_maxrss``) and
the scene's megapixels per second. A checkpoint is trained in the quick profile when none
is given (the model's weights do not change the cost). Memory should follow the window,
not the scene: the largest scene's peak over the smallest's is printed as a ratio.
Nothing is asserted (tests/test_mapping.py checks the ratio on small scenes); the table is
printed and saved to ``runs/benchmarks/map.json`` with the commit and machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from emr_lib.figures import table_markdown
from emr_lib.mapping.geo import write_synthetic_geotiff
from emr_lib.provenance import provenance
from emr_lib.training.loop import train
from emr_lib.training.profiles import get_config

CHILD = """
import json, resource, sys, warnings
warnings.simplefilter("ignore")
from emr_lib.mapping.scene import map_scene
summary = map_scene(sys.argv[1], sys.argv[2], sys.argv[3], window=int(sys.argv[4]) or None, progress=False)
print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": summary["seconds"], "mpx_per_s": summary["megapixels_per_s"]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[4096, 16384])
    parser.add_argument("--checkpoint", help="a trained checkpoint (default: a quick-profile model trained here)")
    parser.add_argument("--window", type=int, default=0, help="window in model pixels (default: the training size)")
    parser.add_argument("--out", default="runs/benchmarks/map.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="emr-bench-map-") as tmp:
        tmp = Path(tmp)
        checkpoint = args.checkpoint
        if checkpoint is None:
            train(get_config("quick"), tmp / "run", progress=False)
            checkpoint = tmp / "run" / "best.pt"
        for size in args.sizes:
            scene, _ = write_synthetic_geotiff(tmp / f"scene{size}.tif", size, 1.0, seed=0, nodata_border=size // 16)
            command = [
                sys.executable,
                "-c",
                CHILD,
                str(scene),
                str(checkpoint),
                str(tmp / f"map{size}"),
                str(args.window),
            ]
            result = json.loads(
                subprocess.run(command, capture_output=True, text=True, check=True).stdout.split("\n")[-2]
            )
            rows.append({"side_px": size, "megapixels": size * size / 1e6, **result})
            (tmp / f"scene{size}.tif").unlink()
            print(rows[-1], flush=True)
    for row in rows:
        row["peak_vs_smallest"] = row["peak_rss_mib"] / rows[0]["peak_rss_mib"]
    print(table_markdown(rows, floatfmt=".2f"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows, "window": args.window, **provenance()}, indent=1))


if __name__ == "__main__":
    main()
