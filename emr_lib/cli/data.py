"""``data`` commands: prepare downloads, split, write synthetic data, tile scenes, pack."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data import (
    TABLES_COPY,
    SyntheticLandslides,
    compare_checksums,
    dataset_kind,
    make_splits,
    open_dataset,
    pack_dataset,
    prepare_dataset,
    save_splits,
    tile_scene,
    write_checksums,
)
from ..paths import project_root
from .common import CLIError, add_required, in_range, read_scene_pair, take_required


def _cmd_data_prepare(args: argparse.Namespace) -> None:
    manifest = prepare_dataset(args.dataset, args.src, args.dest, size=args.size, tile=args.tile)
    counts = ", ".join(f"{v} {k.replace('_', '-')}" for k, v in manifest["counts"].items() if v)
    print(f"prepared {args.dataset}: {counts} images in {args.dest} (manifest.json lists their sha256)")
    if args.size:
        print(f"resized to {args.size} x {args.size}: bilinear images, nearest masks, aspect ratio not kept")
    if manifest.get("tiling"):
        tiling = manifest["tiling"]
        print(
            f"{len(manifest['scenes'])} scenes cut into {tiling['tiles_per_scene']} tiles of {tiling['tile']} px "
            "each, named <scene>_y<row>_x<col>: splits keep a scene's tiles together"
        )
    if "label_colours" in manifest:
        colours = "; ".join(f"{colour}: {n} px" for colour, n in manifest["label_colours"].items())
        print(f"label colours found (any non-black pixel is landslide): {colours}")
    print(f"data_fingerprint {manifest['data_fingerprint']} (runs on this copy record it; equal only for equal files)")
    for note in manifest["notes"]:
        print(f"note: {note}")


def _cmd_data_split(args: argparse.Namespace) -> None:
    if len(args.ratios) not in (2, 3):
        raise CLIError("--ratios takes 2 (train test) or 3 (train val test) numbers")
    keys = ["train", "val", "test"] if len(args.ratios) == 3 else ["train", "test"]
    total = sum(args.ratios)
    # the same images training opens, so the split files name only images it has
    dataset = open_dataset(args.data, include_non_landslide=args.include_non_landslide)
    take_required(args, "out")
    ratios = dict(zip(keys, [r / total for r in args.ratios]))
    splits = make_splits(dataset.names, ratios, args.seed, group_of=dataset.group_of)
    save_splits(splits, args.out)
    if dataset.group_of is None:
        print("  ".join(f"{k}: {len(v)}" for k, v in splits.items()) + f"  -> {args.out}")
    else:  # tiles of scenes: each scene on one side
        scenes = {k: len({dataset.group_of(n) for n in v}) for k, v in splits.items()}
        print("  ".join(f"{k}: {scenes[k]} scenes ({len(v)} tiles)" for k, v in splits.items()) + f"  -> {args.out}")


def _cmd_data_pack(args: argparse.Namespace) -> None:
    if args.src == "synthetic":
        dataset, kind, non_landslide = SyntheticLandslides(args.n, size=args.size, seed=0), None, set()
    else:  # the images training leaves out by default are marked, so the packed file keeps that choice
        dataset = open_dataset(args.src, include_non_landslide=args.include_non_landslide)
        kind, non_landslide = dataset_kind(args.src), set(dataset.names) - set(open_dataset(args.src, False).names)
    meta = pack_dataset(dataset, args.dest, args.size, str(args.src), kind, non_landslide)
    megabytes = Path(args.dest).stat().st_size / 2**20
    print(f"packed {meta['count']} images of {args.size} px from {args.src} into {args.dest} ({megabytes:.1f} MiB)")


def _cmd_data_compare(args: argparse.Namespace) -> None:
    listed = Path(args.against) if args.against else project_root() / TABLES_COPY
    if args.write:
        print(f"listed {write_checksums(args.folder, listed)} files of {args.folder} in {listed}")
        return
    result = compare_checksums(args.folder, listed)
    print(f"{args.folder}: {result['same']} of the {result['listed']} files listed in {listed.name} are identical")
    for what in ("differ", "missing", "extra"):
        if result[what]:
            shown = ", ".join(result[what][:5]) + (", ..." if len(result[what]) > 5 else "")
            print(f"  {len(result[what])} {what}: {shown}")
    if result["same"] != result["listed"] or result["extra"]:
        print("not the copy the committed tables were made on: your numbers may differ from them")


def _cmd_data_synthetic(args: argparse.Namespace) -> None:
    SyntheticLandslides(args.n, size=args.size, seed=args.seed).save(args.dest)
    print(f"wrote {args.n} synthetic scenes of {args.size} px to {args.dest}")


def _region(args: argparse.Namespace) -> tuple[int, int, int, int] | None:
    """``--region x0,y0,x1,y1`` in pixels, or in the scene's map coordinates with ``--region-units map``."""
    if args.region is None:
        return None
    try:
        values = [float(v) for v in args.region.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise CLIError(f"--region takes four numbers x0,y0,x1,y1, got {args.region!r}")
    if args.region_units == "pixels":
        return tuple(round(v) for v in values)
    from ..mapping.geo import pixel_region  # map coordinates need the scene's transform (the maps extra)

    box = pixel_region(args.image, values)
    if box is None:
        raise CLIError(f"{args.image} has no coordinates: give --region in pixels")
    return box


def _cmd_data_tile(args: argparse.Namespace) -> None:
    image, mask, name = args.image, args.mask, None
    if Path(args.image).suffix.lower() in (".tif", ".tiff"):  # tile_scene reads PNG/JPEG paths itself
        image, mask = read_scene_pair(args.image, args.mask)
        name = Path(args.image).stem
    tiles = tile_scene(
        image, mask, tile=args.tile, stride=args.stride, max_nodata=args.max_nodata, name=name, region=_region(args)
    )
    tiles.save(args.dest)
    print(f"wrote {len(tiles)} tiles of {args.tile} px to {args.dest} (coverage {tiles.coverage():.1%})")


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
    prep.add_argument(
        "--size",
        type=in_range(int, 32),
        help="resize every image and mask to SIZE x SIZE as the tables' copy was (224: bilinear images, nearest "
        "masks, aspect ratio not kept); default: keep the original sizes",
    )
    prep.add_argument(
        "--tile",
        type=in_range(int, 32),
        help="sichuan: cut each resized scene into TILE x TILE tiles (SIZE a multiple of TILE; the workshop's "
        "input is --size 480 --tile 160, see data/README.md); splits then keep a scene's tiles together",
    )
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
    split.add_argument("--seed", type=int, default=0, help="seed of the random split")
    split.add_argument(
        "--include-non-landslide",
        action="store_true",
        help="also split the non-landslide images (training leaves them out unless include_non_landslide is set)",
    )
    add_required(split, "out", "folder for train.txt, val.txt, test.txt")
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

    compare = data_commands.add_parser(
        "compare",
        help="is this copy the one the committed tables were made on? (file by file, sha256)",
        description="Compare a dataset folder, file by file (images and masks by name, any layout), with a list "
        f"of names, sizes and sha256: by default {TABLES_COPY.as_posix()}, the copy behind the workshop tables.",
    )
    compare.add_argument("folder", help="a dataset folder (Bijie layout or images/ + masks/)")
    compare.add_argument("--against", help=f"the list to compare with (default {TABLES_COPY.as_posix()})")
    compare.add_argument("--write", action="store_true", help="write the folder's list to --against instead")
    compare.set_defaults(func=_cmd_data_compare)

    synth = data_commands.add_parser("synthetic", help="write the synthetic default dataset as images/ + masks/")
    synth.add_argument("dest", help="a new folder for images/ and masks/")
    synth.add_argument("--n", type=int, default=200, help="number of scenes (default 200)")
    synth.add_argument("--size", type=int, default=128, help="scene size in pixels (default 128)")
    synth.add_argument("--seed", type=int, default=0, help="seed of the generator")
    synth.set_defaults(func=_cmd_data_synthetic)

    tile = data_commands.add_parser("tile", help="cut a large scene and its mask into training tiles")
    tile.add_argument("image", help="the scene (RGB image file)")
    tile.add_argument("mask", help="its mask (0/1 or 0/255, same size)")
    tile.add_argument("dest", help="folder for images/ and masks/ of the tiles")
    tile.add_argument("--tile", type=in_range(int, 1), default=512, help="tile size in pixels")
    tile.add_argument("--stride", type=in_range(int, 1), help="step between tiles (default: the tile size)")
    tile.add_argument(
        "--max-nodata",
        type=in_range(float, 0, 1),
        default=0.5,
        help="skip tiles with a larger share of no-data (black) pixels than this, between 0 and 1",
    )
    tile.add_argument(
        "--region",
        metavar="X0,Y0,X1,Y1",
        help="cut tiles only inside this box (pixels; the rest of the scene stays unseen, e.g. for testing)",
    )
    tile.add_argument(
        "--region-units", choices=["pixels", "map"], default="pixels", help="--region in pixels or map coordinates"
    )
    tile.set_defaults(func=_cmd_data_tile)


add = _add_data
