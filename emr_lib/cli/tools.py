"""Commands around the runs: ``pipeline``, ``site``, ``lab``, ``study`` and ``efficiency``."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from ..experiments.efficiency import efficiency_table, placement_table
from ..experiments.study import run_study
from ..figures import table_markdown
from ..models import build_model, list_models
from ..paths import project_root, resolve_data
from ..provenance import provenance
from ..training.profiles import PROFILES, parse_override
from ..workshop.doctor import run_doctor
from ..workshop.ledger import stale_files, write_ledger
from ..workshop.pipeline import PipelineError, run_pipeline, store_checked_outputs
from ..workshop.site import SiteError, build_site
from ..workshop.times import lab_environment
from .common import DATA_HELP, DEVICE_HELP, PROFILE_HELP, CLIError

EFFICIENCY_COLUMNS = ["model", "num_classes", "size", "params_M", "GFLOPs_torch", "GFLOPs_modules"]


EFFICIENCY_NOTE = (
    "GFLOPs_torch: torch.utils.flop_counter (every conv and matmul, functional ones included). "
    "GFLOPs_modules: nn.Conv2d/nn.Linear modules only, close to the paper's thop convention, which "
    "misses functional convs (RefConv), matmuls (MDTA, EMA), interpolation and norms. 2 FLOPs per "
    "multiply-add in both. Paper values: Table 7 at num_classes=21 (HRNet and EMR-HRNet at 480 px, the others at 512); "
    "the paper's comparison models are the 'bubbliiiing' implementations, ours are "
    "segmentation-models-pytorch's, so their counts differ."
)


def _check_models(names: list[str]) -> None:
    unknown = sorted(set(names) - set(list_models()))
    if unknown:
        raise CLIError(f"unknown model(s) {unknown}; choose from {list_models()}")


PLACEMENT_COLUMNS = [
    "model",
    "dema_blocks",
    "params_M_modules",
    "delta_params_M_modules",
    "paper_delta_params_M",
    "GFLOPs_modules",
    "delta_GFLOPs_modules",
    "paper_delta_GFLOPs",
    "GFLOPs_torch",
    "delta_GFLOPs_torch",
    "train_ratio",
    "infer_ratio",
]
PLACEMENT_NOTE = (
    "EMR-HRNet's extra cost over HRNet-W32 (480 px, 21 classes), one convention at a time: `*_modules` counts "
    "as the paper's thop did, so its deltas are the ones to set beside the paper's +1.66M / +1.97G "
    "(`paper_delta_*`); `GFLOPs_torch` counts every conv and matmul, the real cost, which the paper does not "
    "report. `emr_hrnet` has the paper's DEMA placement (every basic block of stages 2-4), `emr_hrnet_light` "
    "the kit's lighter variant (`dema_blocks='last'`). `train_ratio` / `infer_ratio`: step time over HRNet's, "
    "measured side by side on this machine"
)


def _cmd_efficiency(args: argparse.Namespace) -> None:
    models = args.models or list_models()
    _check_models(models)
    if args.step_size and args.step_size % 32:
        raise CLIError(f"--step-size must be a multiple of 32 (or 0 to skip the timing), got {args.step_size}")
    rows = efficiency_table(build_model, models, sizes=args.sizes, classes=args.classes)
    columns = [*EFFICIENCY_COLUMNS, "paper_params_M", "paper_GFLOPs"]
    placements = placement_table(step_size=args.step_size or None, repeats=args.step_repeats)
    meta = provenance()
    timing = (
        f" (batch 4, {args.step_size} px, median of {args.step_repeats}, on {meta.get('device', 'cpu')})"
        if args.step_size
        else " (not timed: --step-size 0)"
    )
    markdown = (
        "# Table 7, measured\n\n"
        + table_markdown(rows, columns)
        + f"\n\n{EFFICIENCY_NOTE}\n\n## EMR-HRNet's DEMA placements against HRNet-W32\n\n"
        + table_markdown(placements, [c for c in PLACEMENT_COLUMNS if c in placements[0]])
        + f"\n\n{PLACEMENT_NOTE}{timing}.\n\nProduced by `python -m emr_lib efficiency` at commit {meta['commit']} "
        f"(torch {meta['torch']}, {meta['created']}).\n"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"rows": rows, "note": EFFICIENCY_NOTE, "placements": placements, "placement_note": PLACEMENT_NOTE}
    (out / "efficiency.json").write_text(json.dumps({**result, "provenance": meta}, indent=2))
    (out / "efficiency.md").write_text(markdown)
    print(markdown)
    print(f"saved {out / 'efficiency.json'} and {out / 'efficiency.md'}")


def _cmd_pipeline(args: argparse.Namespace) -> None:
    if args.go_on:  # the notebooks' kernels inherit it: runs past a workshop run's budget are trained too
        os.environ["EMR_GO_ON"] = "1"
    try:
        extra = dict(parse_override(item) for item in args.param)
        run_pipeline(
            args.profile,
            data=args.data,
            only=args.only,
            device=args.device,
            seed=args.seed,
            extra=extra,
            progress=not args.no_progress,
            scene=args.scene,
        )
        if args.store_checked_outputs:
            updated = store_checked_outputs(args.profile, only=args.only)
            print(f"stored the checked outputs of {len(updated)} notebook(s) in notebooks/")
    except (PipelineError, ValueError) as err:
        raise CLIError(str(err)) from err


def _cmd_site(args: argparse.Namespace) -> None:
    try:
        build_site(args.profile)
    except SiteError as err:
        raise CLIError(str(err)) from err


def _cmd_study(args: argparse.Namespace) -> None:
    data = resolve_data(args.data) if args.data or not args.dry_run else "synthetic"
    out = Path(args.out or ("runs/study-gpu-dry" if args.dry_run else "runs/study-gpu"))
    result = run_study(out, data, budget_min=args.budget_min, dry_run=args.dry_run, device=args.device)
    print((out / "study.md").read_text())
    print(f"stages: {result['stages']}; saved {out / 'study.json'} and {out / 'study.md'}")


def _cmd_ledger(args: argparse.Namespace) -> None:
    root = project_root()
    if args.check:
        stale = stale_files(root)
        if stale:
            raise CLIError(f"{' and '.join(stale)} stale: run python -m emr_lib ledger")
        print("REPRODUCTION.md, the README's results block and the episode times (guide, notebooks) are up to date")
        return
    print(f"wrote {write_ledger(root)} and the README's results block")


def _add_ledger(commands) -> None:
    """``ledger``: REPRODUCTION.md from paper.py and the committed tables."""
    ledger = commands.add_parser(
        "ledger",
        help="write REPRODUCTION.md: every table and figure of the paper, its status here, and the deviations",
        description="Render REPRODUCTION.md from emr_lib/experiments/paper.py and the tables in figures/workshop/.",
    )
    ledger.add_argument("--check", action="store_true", help="only say whether REPRODUCTION.md is up to date")
    ledger.set_defaults(func=_cmd_ledger)


def _cmd_doctor(args: argparse.Namespace) -> None:
    results = run_doctor(timing=not args.no_timing)
    blocking = [r.what for r in results if r.status == "FIX"]
    if blocking:
        raise CLIError(f"fix {', '.join(blocking)} before the workshop (see the FIX lines above)")
    print("ready for the workshop")


def _add_doctor(commands) -> None:
    """``doctor``: is this machine ready for the workshop?"""
    doctor = commands.add_parser(
        "doctor",
        help="check this machine for the workshop: packages, kernel, device, data, disk, minutes per model",
        description="One line per check, OK / WARN / FIX with the fix; exit status 2 when something blocks.",
    )
    doctor.add_argument("--no-timing", action="store_true", help="skip the few timed training steps")
    doctor.set_defaults(func=_cmd_doctor)


def _add_efficiency(commands) -> None:
    """``efficiency``: parameters and FLOPs (Table 7)."""
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
    eff.add_argument(
        "--step-size",
        type=int,
        default=224,
        help="input size at which the DEMA placements' training and inference steps are timed side by side "
        "(W32, batch 4; default 224; 0 skips the timing)",
    )
    eff.add_argument("--step-repeats", type=int, default=5, help="timed repetitions per step (default 5)")
    eff.add_argument("--out", default="runs/efficiency", help="output folder (default: runs/efficiency)")
    eff.set_defaults(func=_cmd_efficiency)


def _add_pipeline(commands) -> None:
    """``pipeline``: the notebook series."""
    pipe = commands.add_parser(
        "pipeline",
        help="run the notebook series with papermill and regenerate figures/",
        description="Execute notebooks/01..08 in order (papermill), executed copies in build/notebooks/PROFILE, "
        "figures and tables in figures/PROFILE, and an index in figures/README.md.",
    )
    pipe.add_argument("--profile", default="quick", choices=list(PROFILES), help=PROFILE_HELP)
    pipe.add_argument("--data", help=DATA_HELP)
    pipe.add_argument("--only", nargs="+", metavar="NN", help="run only these notebooks, e.g. --only 04,05")
    pipe.add_argument(
        "--scene",
        help="UAV scene folder (image.png + mask.png) for notebooks 01 and 08 "
        "(default: $EMR_SCENE, else data/uav-scene if present, else a synthetic scene)",
    )
    pipe.add_argument("--device", default="auto", help=DEVICE_HELP)
    pipe.add_argument("--seed", type=int, default=0, help="random seed of the notebooks' runs")
    pipe.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra notebook parameter (checked against each notebook's parameters cell)",
    )
    pipe.add_argument("--no-progress", action="store_true", help="no progress bars (log lines only)")
    pipe.add_argument(
        "--go-on",
        action="store_true",
        help="train runs longer than a workshop run's budget too (EMR_GO_ON=1; e.g. notebook 05's VGG U-Nets)",
    )
    pipe.add_argument(
        "--store-checked-outputs",
        action="store_true",
        help="maintainers: afterwards copy the outputs that nbval checks (cells tagged nbval-check-output) "
        "into notebooks/ and strip every other output",
    )
    pipe.set_defaults(func=_cmd_pipeline)


def _add_site(commands) -> None:
    """``site``: the rendered site of the series."""
    site = commands.add_parser(
        "site",
        help="render the notebook series, README and docs as a website in build/site (Sphinx + MyST-NB)",
        description="Build build/site/index.html from the executed notebooks of a profile, the README and docs/. "
        "It never executes a notebook: an episode not executed yet gets a page naming the pipeline command that "
        "executes it. Needs the docs extra.",
    )
    site.add_argument("--profile", default="quick", choices=list(PROFILES), help=PROFILE_HELP)
    site.set_defaults(func=_cmd_site)


def _cmd_lab(args: argparse.Namespace) -> None:
    root = project_root()
    data = resolve_data(args.data) if args.data else None
    env = lab_environment(args.profile, data, root)
    print("JupyterLab on notebooks/ with " + " ".join(f"{key}={value}" for key, value in env.items()))
    command = [sys.executable, "-m", "jupyter", "lab", str(root / "notebooks"), *args.jupyter_args]
    status = subprocess.run(command, env={**os.environ, **env}).returncode
    if status:
        raise CLIError(f"jupyter lab stopped with status {status} (is the notebooks extra installed?)")


def _add_lab(commands) -> None:
    lab = commands.add_parser(
        "lab",
        help="start JupyterLab on the notebooks with a profile's settings (any system, no shell variables)",
        description="Start JupyterLab on notebooks/ with EMR_PROFILE, EMR_DATA and, in the workshop profile, the "
        "notebook parameters the pre-run runs were made with (benchmarks/results/episode-times.json), so the "
        "learners' notebooks reuse those runs. Extra arguments go to jupyter lab.",
    )
    lab.add_argument("--profile", default="workshop", choices=list(PROFILES), help=PROFILE_HELP)
    lab.add_argument("--data", help=DATA_HELP)
    lab.add_argument("jupyter_args", nargs="*", help="after --: passed on to jupyter lab, e.g. -- --no-browser")
    lab.set_defaults(func=_cmd_lab)


def _add_study(commands) -> None:
    """``study gpu``: the prepared GPU measurement."""
    study = commands.add_parser(
        "study",
        help="measure the GPU path in one command: AMP correctness, throughput, HRNet vs EMR-HRNet",
        description="Run the GPU study (emr_lib/experiments/study.py) within a time budget and write study.json "
        "and study.md. "
        "--dry-run runs every stage at tiny sizes on the CPU.",
    )
    study.add_argument("which", choices=["gpu"], help="the study to run")
    study.add_argument("--budget-min", type=float, default=9.0, help="minutes for all stages (default 9)")
    study.add_argument("--data", help=DATA_HELP + " (a .npz from 'data pack' travels best)")
    study.add_argument("--out", help="output folder (default runs/study-gpu, or runs/study-gpu-dry)")
    study.add_argument("--device", default="auto", help=DEVICE_HELP)
    study.add_argument("--dry-run", action="store_true", help="tiny sizes on the synthetic data, on any machine")
    study.set_defaults(func=_cmd_study)


def add(commands) -> None:
    for add_command in (_add_pipeline, _add_site, _add_lab, _add_study, _add_ledger, _add_doctor, _add_efficiency):
        add_command(commands)
