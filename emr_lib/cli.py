"""Command line: ``python -m emr_lib <command> --help``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .checkpoints import CheckpointError, load_checkpoint, model_from_checkpoint
from .data import (
    DataError,
    SyntheticLandslides,
    dataset_kind,
    make_splits,
    open_dataset,
    pack_dataset,
    prepare_dataset,
    save_splits,
    tile_scene,
)
from .efficiency import efficiency_table
from .experiments import run_table, table_rows, table_runs
from .figures import table_markdown
from .inference import evaluate
from .metrics import format_metrics
from .models import PretrainedWeightsError, build_model, list_models
from .notebook import Context
from .paths import project_root, resolve_data
from .pipeline import PipelineError, run_pipeline, store_checked_outputs
from .profiles import PROFILES, TrainConfig, apply_overrides, get_config, parse_override
from .provenance import provenance
from .run_data import run_datasets
from .runs import RunFolderError, run_or_reuse
from .runtime import select_device
from .study import run_study

__all__ = ["main", "build_parser"]

DATA_HELP = (
    "dataset folder (Bijie layout or images/ + masks/) or 'synthetic'; default: $EMR_DATA, else data/bijie "
    "if present, else the synthetic default"
)


class CLIError(Exception):
    """A user error: printed as one clear message, exit status 2, no traceback."""


EFFICIENCY_COLUMNS = ["model", "num_classes", "size", "params_M", "GFLOPs_torch", "GFLOPs_modules"]
EFFICIENCY_NOTE = (
    "GFLOPs_torch: torch.utils.flop_counter (every conv and matmul, functional ones included). "
    "GFLOPs_modules: nn.Conv2d/nn.Linear modules only, close to the paper's thop convention, which "
    "misses functional convs (RefConv), matmuls (MDTA, EMA), interpolation and norms. 2 FLOPs per "
    "multiply-add in both. Paper values: Table 7 at num_classes=21 (HRNet at 480 px, others at 512); "
    "the paper's comparison models are the 'bubbliiiing' implementations, ours are "
    "segmentation-models-pytorch's, so their counts differ."
)


def _check_models(names: list[str]) -> None:
    unknown = sorted(set(names) - set(list_models()))
    if unknown:
        raise CLIError(f"unknown model(s) {unknown}; choose from {list_models()}")


def _cmd_efficiency(args: argparse.Namespace) -> None:
    models = args.models or list_models()
    _check_models(models)
    rows = efficiency_table(build_model, models, sizes=args.sizes, classes=args.classes)
    columns = [*EFFICIENCY_COLUMNS, "paper_params_M", "paper_GFLOPs"]
    meta = provenance()
    markdown = (
        "# Table 7, measured\n\n"
        + table_markdown(rows, columns)
        + f"\n\n{EFFICIENCY_NOTE}\n\nProduced by `python -m emr_lib efficiency` at commit {meta['commit']} "
        f"(torch {meta['torch']}, {meta['created']}).\n"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "efficiency.json").write_text(
        json.dumps({"rows": rows, "note": EFFICIENCY_NOTE, "provenance": meta}, indent=2)
    )
    (out / "efficiency.md").write_text(markdown)
    print(markdown)
    print(f"saved {out / 'efficiency.json'} and {out / 'efficiency.md'}")


def _cmd_data_prepare(args: argparse.Namespace) -> None:
    manifest = prepare_dataset(args.dataset, args.src, args.dest)
    counts = ", ".join(f"{v} {k.replace('_', '-')}" for k, v in manifest["counts"].items())
    print(f"prepared {args.dataset}: {counts} images in {args.dest} (manifest.json lists their sha256)")
    for note in manifest["notes"]:
        print(f"note: {note}")


def _cmd_data_split(args: argparse.Namespace) -> None:
    if len(args.ratios) not in (2, 3):
        raise CLIError("--ratios takes 2 (train test) or 3 (train val test) numbers")
    keys = ["train", "val", "test"] if len(args.ratios) == 3 else ["train", "test"]
    total = sum(args.ratios)
    # the same images training opens, so the split files name only images it has
    names = open_dataset(args.data, include_non_landslide=args.include_non_landslide).names
    splits = make_splits(names, dict(zip(keys, [r / total for r in args.ratios])), args.seed)
    save_splits(splits, args.out)
    print("  ".join(f"{k}: {len(v)}" for k, v in splits.items()) + f"  -> {args.out}")


def _cmd_data_pack(args: argparse.Namespace) -> None:
    if args.src == "synthetic":
        dataset, kind, non_landslide = SyntheticLandslides(args.n, size=args.size, seed=0), None, set()
    else:  # the images training leaves out by default are marked, so the packed file keeps that choice
        dataset = open_dataset(args.src, include_non_landslide=args.include_non_landslide)
        kind, non_landslide = dataset_kind(args.src), set(dataset.names) - set(open_dataset(args.src, False).names)
    meta = pack_dataset(dataset, args.dest, args.size, str(args.src), kind, non_landslide)
    megabytes = Path(args.dest).stat().st_size / 2**20
    print(f"packed {meta['count']} images of {args.size} px from {args.src} into {args.dest} ({megabytes:.1f} MiB)")


def _cmd_data_synthetic(args: argparse.Namespace) -> None:
    SyntheticLandslides(args.n, size=args.size, seed=args.seed).save(args.dest)
    print(f"wrote {args.n} synthetic scenes of {args.size} px to {args.dest}")


def _cmd_data_tile(args: argparse.Namespace) -> None:
    tiles = tile_scene(args.image, args.mask, tile=args.tile, stride=args.stride, max_nodata=args.max_nodata)
    tiles.save(args.dest)
    print(f"wrote {len(tiles)} tiles of {args.tile} px to {args.dest} (coverage {tiles.coverage():.1%})")


def _config(args: argparse.Namespace) -> TrainConfig:
    """The profile's configuration with ``--set`` overrides, type-checked field by field."""
    if args.model not in list_models():
        raise CLIError(f"unknown model {args.model!r}; choose one of {list_models()}")
    try:
        overrides = dict(parse_override(item) for item in args.set)
        overrides.update(model=args.model, data=resolve_data(args.data))
        if args.device:
            overrides["device"] = args.device
        if args.seed is not None:
            overrides["seed"] = args.seed
        return get_config(args.profile, **overrides)
    except DataError:
        raise
    except ValueError as err:
        raise CLIError(str(err)) from err


def _cmd_train(args: argparse.Namespace) -> None:
    if args.resume and args.overwrite:
        raise CLIError("--resume continues the run in --out and --overwrite starts it again: pass one of them")
    config = _config(args)
    out = Path(args.out or Path("runs") / args.profile / args.model)
    mode = "overwrite" if args.overwrite else "resume" if args.resume else "refuse"
    record = run_or_reuse(config, out, mode, stop_after=args.stop_after, progress=not args.no_progress)
    print(f"run record: {out / 'record.json'} ({record['status']})")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    state = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(state, expected_model=args.model)
    config = apply_overrides(TrainConfig(), dict(state["config"]))
    config.data = resolve_data(args.data)
    config.split_dir = args.split_dir or config.split_dir
    config.size = args.size or config.size
    dataset = run_datasets(config).view(args.split)
    device = select_device(args.device or "auto")
    metrics, cm = evaluate(model.to(device), dataset, config.batch_size, device)
    print(f"{state['model_name']} epoch {state['epoch']} on {config.data} ({args.split}, {len(dataset)} images):")
    print(format_metrics(metrics))
    if args.json:
        result = {"metrics": metrics, "confusion_matrix": cm.tolist(), "checkpoint": str(args.checkpoint)}
        Path(args.json).write_text(json.dumps({**result, "data": config.data, "split": args.split}, indent=1))


def _cmd_table(args: argparse.Namespace) -> None:
    try:
        specs = table_runs(args.number, args.rows)
    except ValueError as err:
        raise CLIError(str(err)) from err
    root = project_root()
    output = Path(args.output_dir) if args.output_dir else root / "runs" / "notebooks"
    data = resolve_data(args.data)
    ctx = Context(f"table {args.number}", args.profile, data, args.device, args.seed, output, root / "build" / "tables")
    records = run_table(ctx.run, specs)
    rows = table_rows(args.number, records, None if data == "synthetic" else dataset_kind(data))
    print(f"\nTable {args.number}, profile {args.profile}, data {ctx.data_label}, seed {args.seed} (percent):\n")
    print(table_markdown(rows))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": rows, "runs": {r: str(ctx.run_dir(s.name)) for r, s in specs.items()}}, indent=1)
        )


def _cmd_study(args: argparse.Namespace) -> None:
    data = resolve_data(args.data) if args.data or not args.dry_run else "synthetic"
    out = Path(args.out or ("runs/study-gpu-dry" if args.dry_run else "runs/study-gpu"))
    result = run_study(out, data, budget_min=args.budget_min, dry_run=args.dry_run, device=args.device)
    print((out / "study.md").read_text())
    print(f"stages: {result['stages']}; saved {out / 'study.json'} and {out / 'study.md'}")


def _cmd_pipeline(args: argparse.Namespace) -> None:
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
            updated = store_checked_outputs(args.profile)
            print(f"stored the checked outputs of {len(updated)} notebook(s) in notebooks/")
    except (PipelineError, ValueError) as err:
        raise CLIError(str(err)) from err


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
    eff.add_argument("--out", default="runs/efficiency", help="output folder (default: runs/efficiency)")
    eff.set_defaults(func=_cmd_efficiency)


def _add_train(commands) -> None:
    """``train``: one run with a profile."""
    tr = commands.add_parser(
        "train",
        help="train a model with a profile (quick, workshop, paper)",
        description="Train a model. Profiles (emr_lib/profiles.py): quick = CI smoke run in seconds; "
        "workshop = a real result on a CPU laptop in 10-25 minutes per model; paper = the paper's recipe for a GPU. "
        "Under torchrun --nproc_per_node=N this runs distributed (DDP).",
    )
    tr.add_argument("--model", default="emr_hrnet", help="model name (default emr_hrnet; see the README)")
    tr.add_argument(
        "--data",
        help=DATA_HELP,
    )
    tr.add_argument("--profile", default="quick", choices=list(PROFILES))
    tr.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set epochs=3 --set model_options.width=32 (repeatable)",
    )
    tr.add_argument("--out", help="run folder (default runs/PROFILE/MODEL)")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    tr.add_argument("--overwrite", action="store_true", help="start again in an existing run folder")
    tr.add_argument("--stop-after", type=int, metavar="EPOCH", help="stop after this epoch (resume later)")
    tr.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    tr.add_argument("--seed", type=int, help="random seed (default 0)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars (log lines only)")
    tr.set_defaults(func=_cmd_train)


def _add_evaluate(commands) -> None:
    """``evaluate``: a checkpoint's metrics on a split."""
    ev = commands.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a dataset split",
        description="Compute the paper's metrics for a checkpoint (best.pt or last.pt).",
    )
    ev.add_argument("checkpoint", help="a checkpoint written by train (best.pt, last.pt)")
    ev.add_argument("--data", help=DATA_HELP)
    ev.add_argument("--split", default="test", help="test (default), val, train or all")
    ev.add_argument("--split-dir", help="folder of split files (default: made as in training)")
    ev.add_argument("--model", help="check that the checkpoint holds this model")
    ev.add_argument("--size", type=int, help="input size (default: the training size)")
    ev.add_argument("--device", help="auto (default), cpu, cuda, mps")
    ev.add_argument("--json", help="also write the metrics and confusion matrix to this JSON file")
    ev.set_defaults(func=_cmd_evaluate)


def _add_pipeline(commands) -> None:
    """``pipeline``: the notebook series."""
    pipe = commands.add_parser(
        "pipeline",
        help="run the notebook series with papermill and regenerate figures/",
        description="Execute notebooks/01..07 in order (papermill), executed copies in build/notebooks/PROFILE, "
        "figures and tables in figures/PROFILE, and an index in figures/README.md.",
    )
    pipe.add_argument("--profile", default="quick", choices=list(PROFILES))
    pipe.add_argument("--data", help=DATA_HELP)
    pipe.add_argument("--only", nargs="+", metavar="NN", help="run only these notebooks, e.g. --only 03,04")
    pipe.add_argument(
        "--scene",
        help="UAV scene folder (image.png + mask.png) for notebooks 01 and 07 "
        "(default: $EMR_SCENE, else data/uav-scene if present, else a synthetic scene)",
    )
    pipe.add_argument("--device", default="auto")
    pipe.add_argument("--seed", type=int, default=0)
    pipe.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra notebook parameter (checked against each notebook's parameters cell)",
    )
    pipe.add_argument("--no-progress", action="store_true")
    pipe.add_argument(
        "--store-checked-outputs",
        action="store_true",
        help="maintainers: afterwards copy the outputs that nbval checks (cells marked # NBVAL_CHECK_OUTPUT) "
        "into notebooks/ and strip every other output",
    )
    pipe.set_defaults(func=_cmd_pipeline)


def _add_table(commands) -> None:
    """``table``: a paper table from its declared runs."""
    table = commands.add_parser(
        "table",
        help="rebuild the paper's Table 2, 4 or 5: run (or reuse) its runs and print it beside the paper's",
        description="Run or reuse the runs behind a table (emr_lib/experiments.py) in the notebooks' runs folder, "
        "so runs made by notebooks 03-05 are reused, and print the table beside the paper's.",
    )
    table.add_argument("number", type=int, help="2 (models; 3 on prepared Sichuan data), 4 (ablation) or 5 (blocks)")
    table.add_argument("--profile", default="quick", choices=list(PROFILES))
    table.add_argument("--data", help=DATA_HELP)
    table.add_argument("--rows", nargs="+", metavar="ROW", help="only these rows (default: all)")
    table.add_argument("--seed", type=int, default=0)
    table.add_argument("--device", default="auto")
    table.add_argument("--output-dir", help="runs folder (default: runs/notebooks in the project, the notebooks')")
    table.add_argument("--json", help="also write the rows and their run folders to this JSON file")
    table.set_defaults(func=_cmd_table)


def _add_study(commands) -> None:
    """``study gpu``: the prepared GPU measurement."""
    study = commands.add_parser(
        "study",
        help="measure the GPU path in one command: AMP correctness, throughput, HRNet vs EMR-HRNet",
        description="Run the GPU study (emr_lib/study.py) within a time budget and write study.json and study.md. "
        "--dry-run runs every stage at tiny sizes on the CPU.",
    )
    study.add_argument("which", choices=["gpu"], help="the study to run")
    study.add_argument("--budget-min", type=float, default=9.0, help="minutes for all stages (default 9)")
    study.add_argument("--data", help=DATA_HELP + " (a .npz from 'data pack' travels best)")
    study.add_argument("--out", help="output folder (default runs/study-gpu, or runs/study-gpu-dry)")
    study.add_argument("--device", default="auto")
    study.add_argument("--dry-run", action="store_true", help="tiny sizes on the synthetic data, on any machine")
    study.set_defaults(func=_cmd_study)


def _add_data(commands) -> None:
    """``data``: prepare, split, synthetic, tile."""
    data = commands.add_parser("data", help="prepare real datasets, make splits, write synthetic data, tile scenes")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    prep = data_commands.add_parser(
        "prepare",
        help="validate a downloaded dataset and write it in the kit's layout",
        description="Check an archive or folder downloaded by hand from the official page (see data/README.md) "
        "and write DEST/images, DEST/masks (0/1) and DEST/manifest.json with sha256 sums.",
    )
    prep.add_argument("dataset", choices=["bijie", "sichuan", "luding"], help="which dataset SRC holds")
    prep.add_argument("src", help="the downloaded archive (.zip, .tar, .tar.gz) or its extracted folder")
    prep.add_argument("dest", help="a new, empty folder for the prepared dataset")
    prep.set_defaults(func=_cmd_data_prepare)

    split = data_commands.add_parser("split", help="make seeded train/val/test split files for a dataset")
    split.add_argument("data", help="a dataset folder (Bijie layout or images/ + masks/)")
    split.add_argument(
        "--ratios",
        nargs="+",
        type=float,
        default=[6, 2, 2],
        help="train val test (default 6 2 2, the paper's), or train test (4 1 for the ablation)",
    )
    split.add_argument("--seed", type=int, default=0)
    split.add_argument(
        "--include-non-landslide",
        action="store_true",
        help="also split the non-landslide images (training leaves them out unless include_non_landslide is set)",
    )
    split.add_argument("--out", required=True, help="folder for train.txt, val.txt, test.txt")
    split.set_defaults(func=_cmd_data_split)

    pack = data_commands.add_parser(
        "pack",
        help="pack a dataset into one small .npz (lossless WebP) for a GPU machine or Colab",
        description="Resize every image to --size and store the dataset losslessly in one .npz file, which "
        "--data accepts like a folder (Bijie's 770 landslide images at 224 px: about 42 MiB).",
    )
    pack.add_argument("src", help="a dataset folder (Bijie layout or images/ + masks/), or 'synthetic'")
    pack.add_argument("dest", help="the .npz file to write")
    pack.add_argument("--size", type=int, default=224, help="image size in pixels (default 224)")
    pack.add_argument("--n", type=int, default=200, help="with src 'synthetic': number of scenes (default 200)")
    pack.add_argument(
        "--include-non-landslide", action="store_true", help="also pack the non-landslide images (marked as such)"
    )
    pack.set_defaults(func=_cmd_data_pack)

    synth = data_commands.add_parser("synthetic", help="write the synthetic default dataset as images/ + masks/")
    synth.add_argument("dest")
    synth.add_argument("--n", type=int, default=200, help="number of scenes (default 200)")
    synth.add_argument("--size", type=int, default=128, help="scene size in pixels (default 128)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=_cmd_data_synthetic)

    tile = data_commands.add_parser("tile", help="cut a large scene and its mask into training tiles")
    tile.add_argument("image", help="the scene (RGB image file)")
    tile.add_argument("mask", help="its mask (0/1 or 0/255, same size)")
    tile.add_argument("dest", help="folder for images/ and masks/ of the tiles")
    tile.add_argument("--tile", type=int, default=512, help="tile size in pixels (default 512)")
    tile.add_argument("--stride", type=int, default=None, help="step between tiles (default: the tile size)")
    tile.add_argument("--max-nodata", type=float, default=0.5, help="skip tiles with more no-data (black) than this")
    tile.set_defaults(func=_cmd_data_tile)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emr_lib",
        description="EMR-HRNet kit: landslide segmentation models, data, training and evaluation.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for add in (_add_efficiency, _add_train, _add_evaluate, _add_pipeline, _add_table, _add_study, _add_data):
        add(commands)
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
