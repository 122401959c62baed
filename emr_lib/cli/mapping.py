"""``map`` (a scene to georeferenced rasters and polygons) and ``export`` (ONNX).

Both need the mapping extras (rasterio, shapely, pyogrio; onnx, onnxruntime), imported here
only when the command runs, so the rest of the kit works without GDAL.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.tiles import HELD_OUT
from .common import CLIError, add_required, in_range, read_scene_pair, take_required

GEO_INSTALL = "pip install rasterio shapely pyogrio onnx onnxruntime (or pip install 'emr-hrnet-kit[notebooks]')"


def _bands(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError as err:
        raise CLIError(f"--bands takes three band numbers like 1,2,3, got {text!r}") from err


def _cmd_map(args: argparse.Namespace) -> None:
    try:
        from ..mapping.scene import map_scene
    except ImportError as err:
        raise CLIError(f"map needs {err.name}: {GEO_INSTALL}") from err
    take_required(args, "checkpoint")
    take_required(args, "out")
    summary = map_scene(
        args.scene, args.checkpoint, args.out, bands=_bands(args.bands), gsd=args.gsd, scale=args.scale,
        window=args.window, overlap=args.overlap, batch_size=args.batch_size, tta=args.tta,
        threshold=args.threshold, min_area=args.min_area, vector_format=args.format, overwrite=args.overwrite,
        device=args.device, progress=not args.no_progress,
    )  # fmt: skip
    area = summary["landslide_area_m2"]
    area_text = f"{area / 1e4:.2f} ha" if area is not None else f"{summary['landslide_pixels']} px"
    if summary.get("model_gsd_m") and args.scale is None:
        print(
            f"model ground pixel size {summary['model_gsd_m']:.2f} m (nominal: the training images were resized, "
            f"so it is the dataset's published pixel size times its median width over the training size); "
            f"scene {summary['scene_gsd_m'] or 0:.2f} m; pass --scale to override"
        )
    print(
        f"mapped {args.scene} at scale {summary['scale']:.3f} ({summary['windows']} windows, "
        f"{summary['seconds']:.0f} s, {summary['megapixels_per_s']:.2f} Mpx/s): {summary['polygons']} landslides, "
        f"{area_text}; outputs in {args.out}"
    )
    print(
        "a region the model never saw? label a part of the scene and measure what fine-tuning buys against "
        f"training from scratch: python -m emr_lib transfer {args.checkpoint} SCENE OUT --mask MASK --tile SIZE "
        f"--scale {summary['scale']:.3g} (docs/mapping.md)"
    )


def _cmd_export(args: argparse.Namespace) -> None:
    try:
        from ..mapping.export import export_onnx
    except ImportError as err:
        raise CLIError(f"export needs {err.name}: {GEO_INSTALL}") from err
    try:
        result = export_onnx(args.checkpoint, args.onnx, size=args.size, check=not args.no_check)
    except ImportError as err:
        raise CLIError(f"checking the export needs {err.name}: {GEO_INSTALL}, or pass --no-check") from err
    except ValueError as err:
        raise CLIError(str(err)) from err
    print(json.dumps(result, indent=1))


def _cmd_transfer(args) -> None:
    from ..experiments.transfer import transfer_study
    from ..training.profiles import parse_override

    study_options = {"--shots": args.shots, "--seeds": args.seeds, "--runs": args.runs, "--set": args.set}
    study_options |= {"--lr": args.lr, "--warmup-epochs": args.warmup_epochs, "--freeze-epochs": args.freeze_epochs}
    if args.versus and any(value is not None for value in study_options.values()):
        named = ", ".join(option for option, value in study_options.items() if value is not None)
        raise CLIError(f"--versus tests the models as they are, without training: drop {named}")
    overrides = dict(parse_override(item) for item in args.set or [])
    given = {"lr": args.lr, "warmup_epochs": args.warmup_epochs, "freeze_epochs": args.freeze_epochs}
    recipe = {key: value for key, value in given.items() if value is not None}  # the rest: FINETUNE_RECIPE's
    data = "synthetic" if args.target == "synthetic" else str(Path(args.target).expanduser().resolve())
    if data != "synthetic" and not Path(data).exists():
        raise CLIError(f"{args.target} does not exist: give a dataset folder (images/ + masks/), a scene or synthetic")
    if Path(data).is_file():
        data = str(_scene_target(args))
    if args.versus:
        _compare_sources(args, data)
        return
    try:
        study = transfer_study(
            args.checkpoint,
            data,
            args.shots or DEFAULT_SHOTS,
            args.seeds or [0],
            args.out,
            args.profile,
            recipe,
            overrides,
            runs=args.runs,
        )
    except ValueError as err:
        raise CLIError(str(err)) from err
    print((Path(args.out) / "transfer.md").read_text())
    print(f"{len(study['results'])} results in {Path(args.out) / 'transfer.json'}")


def _compare_sources(args, data: str) -> None:
    from ..experiments.transfer import compare_sources

    paths = [args.checkpoint, *args.versus]
    names = [Path(path).parent.name or Path(path).stem for path in paths]
    checkpoints = dict(zip(names if len(set(names)) == len(names) else paths, paths))
    try:
        compare_sources(checkpoints, data, args.out, args.profile)
    except ValueError as err:
        raise CLIError(str(err)) from err
    print((Path(args.out) / "sources.md").read_text())


def _scene_target(args) -> Path:
    """TARGET is a scene: tile it and its --mask into OUT/target (training half, held-out half)."""
    from ..experiments.transfer import scene_target

    if not args.mask or not args.tile:
        raise CLIError(f"{args.target} is a scene: give its --mask and the --tile size in scene pixels")
    image, mask = read_scene_pair(args.target, args.mask)
    if mask.shape != image.shape[:2]:
        raise CLIError(f"{args.mask} is {mask.shape[::-1]} but {args.target} is {image.shape[1::-1]} (w x h)")
    try:
        return scene_target(image, mask, Path(args.out) / "target", args.tile, args.held_out, args.scale)
    except ValueError as err:
        raise CLIError(str(err)) from err


DEFAULT_SHOTS = [8, 32, 128]


def _add_transfer(commands) -> None:
    transfer = commands.add_parser(
        "transfer",
        help="few-shot transfer to a new region: zero-shot, fine-tuned and from scratch against k labelled tiles",
        description="For each k in --shots and each seed, draw k labelled tiles from TARGET's training part; "
        "test the source CHECKPOINT as it is, fine-tuned on them, and a model trained from scratch on them "
        "(same epochs) on TARGET's held-out part; write transfer.json, transfer.md and transfer.png to OUT.",
    )
    transfer.add_argument("checkpoint", help="the source model (best.pt of a run)")
    transfer.add_argument(
        "target",
        help="the target: a dataset folder (images/ + masks/, e.g. from data tile; train_/test_ names are its parts), "
        "a scene (with --mask and --tile) or synthetic",
    )
    add_required(transfer, "out", "folder for the runs and results")
    transfer.add_argument("--mask", help="with a scene as TARGET: its mask (0/1 or 0/255, same size)")
    transfer.add_argument("--tile", type=in_range(int, 32), help="with a scene: tile size in scene pixels")
    transfer.add_argument(
        "--held-out",
        choices=sorted(HELD_OUT),
        default="bottom",
        help="with a scene: the half tested on, never trained on (default bottom; all: the whole scene, for --versus)",
    )
    transfer.add_argument(
        "--scale",
        type=in_range(float, 0, low_open=True),
        default=1.0,
        help="with a scene: resample it by this factor before tiling (as map --scale; default 1)",
    )
    transfer.add_argument(
        "--versus",
        nargs="+",
        metavar="CKPT",
        help="instead of the study: test CHECKPOINT and these source models as they are on TARGET's held-out part "
        "(mIoU, landslide precision, false positives, each against CHECKPOINT), e.g. a model trained with "
        "non-landslide images; writes sources.json and sources.md",
    )
    transfer.add_argument("--runs", help="folder for the runs (default OUT); share it between recipes")
    # the study's options default to None so that --versus, which trains nothing, can refuse them
    shots = " ".join(map(str, DEFAULT_SHOTS))
    transfer.add_argument("--shots", nargs="+", type=in_range(int, 1), help=f"values of k (default {shots})")
    transfer.add_argument("--seeds", nargs="+", type=int, help="draws of the k tiles and training seeds (default 0)")
    transfer.add_argument("--profile", default="quick", choices=["quick", "workshop", "paper"])
    # Defaults (None) fall back to transfer.FINETUNE_RECIPE, the measured best (docs/mapping.md); read there, not
    # here, so that the CLI's start does not import the training modules.
    transfer.add_argument("--lr", type=float, help="fine-tuning rate (default: the recipe's, 0.002)")
    transfer.add_argument("--warmup-epochs", type=int, help="fine-tuning warm-up epochs (default: the recipe's, 1)")
    transfer.add_argument(
        "--freeze-epochs", type=int, help="fine-tuning epochs with the backbone frozen (default: the recipe's, 0)"
    )
    transfer.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a training setting, e.g. epochs=20"
    )
    transfer.set_defaults(func=_cmd_transfer)


def add(commands) -> None:
    _add_transfer(commands)
    mapper = commands.add_parser(
        "map",
        help="map landslides on a GeoTIFF (or PNG/JPEG) scene: probability, mask and polygons",
        description="Map SCENE with CHECKPOINT's model into the folder OUT. Read SCENE window by window, "
        "resample it to the ground pixel size the model was trained "
        "at, predict with blended overlapping windows and write probability.tif, mask.tif (the scene's size, "
        "CRS and transform), landslides.gpkg (or .geojson) with area_m2 and mean_prob, quicklook.png and map.json.",
    )
    mapper.add_argument("scene", help="a GeoTIFF (any size), or a PNG/JPEG without coordinates")
    add_required(mapper, "checkpoint", "a checkpoint written by train (best.pt)")
    add_required(mapper, "out", "folder for the outputs")
    mapper.add_argument("--bands", help="the RGB bands, 1-based (default 1,2,3)")
    mapper.add_argument(
        "--gsd",
        type=in_range(float, 0, low_open=True),
        help="the scene's ground pixel size in metres (needed without a projected CRS)",
    )
    mapper.add_argument(
        "--scale",
        type=in_range(float, 0, low_open=True),
        help="resample by this factor instead of matching ground pixel sizes",
    )
    mapper.add_argument(
        "--window", type=int, help="window side in model pixels (default: the training size, which the model knows)"
    )
    mapper.add_argument("--overlap", type=int, help="overlap of windows in model pixels (default: a quarter window)")
    mapper.add_argument("--batch-size", type=in_range(int, 1), default=4, help="windows predicted at once")
    mapper.add_argument("--tta", action="store_true", help="average over flips (4x slower, a little smoother)")
    mapper.add_argument(
        "--threshold",
        type=in_range(float, 0, 1, low_open=True, high_open=True),
        default=0.5,
        help="probability above which a pixel is landslide, between 0 and 1",
    )
    mapper.add_argument("--min-area", type=float, help="drop polygons smaller than this (m²; default 16 pixels' area)")
    mapper.add_argument("--format", choices=["gpkg", "geojson"], default="gpkg", help="polygon file format")
    mapper.add_argument("--overwrite", action="store_true", help="replace the results of an earlier map in --out")
    mapper.add_argument("--device", help="auto (default), cpu, cuda, mps")
    mapper.add_argument("--no-progress", action="store_true", help="no progress bars")
    mapper.set_defaults(func=_cmd_map)

    export = commands.add_parser(
        "export",
        help="export a checkpoint's model to ONNX, checked against onnxruntime",
        description="Fold RefConv (deploy), export with dynamic batch and image size, and print the largest "
        "logit difference between torch and onnxruntime on random images.",
    )
    export.add_argument("checkpoint", help="a checkpoint written by train (best.pt)")
    export.add_argument("onnx", help="the .onnx file to write")
    export.add_argument("--size", type=int, help="example input side (default: the training size)")
    export.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    export.set_defaults(func=_cmd_export)
