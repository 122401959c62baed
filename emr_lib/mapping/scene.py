"""Map a scene: landslide probability, mask and polygons for a GeoTIFF (or PNG/JPEG) of any size.

>>> summary = map_scene("scene.tif", "runs/workshop/emr_hrnet/best.pt", "maps/scene")  # doctest: +SKIP

Three passes, none of which holds the scene:

1. **Model grid.** The scene is resampled on the fly to the ground pixel size the model was
   trained at (``scale`` = scene GSD / model GSD; the model's GSD is nominal, see
   :func:`emr_lib.training.run_data.model_gsd`) and cut into overlapping windows; each
   window's probabilities are weighted by a smooth taper (high in the middle, low at the
   edges, so overlaps blend without seams) and accumulated in a strip one window high. Rows
   that no later window touches are written to a temporary GeoTIFF and dropped.
2. **Scene grid.** Block by block, that raster is resampled back to the scene's grid and
   written as ``probability.tif`` and ``mask.tif`` with the scene's CRS, transform and
   no-data.
3. **Polygons** from the mask (see :func:`emr_lib.mapping.geo.polygons_from_mask`) and a quick look.

Everything is written to a hidden folder first and moved into place at the end, so an
interrupted run leaves no half-written result.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import rasterio
import torch
from PIL import Image
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window
from torch import nn
from tqdm.auto import tqdm

from ..data.io import DataError
from ..data.tiles import tile_positions
from ..evaluation.metrics import segmentation_metrics
from ..models import deploy
from ..provenance import provenance
from ..training.checkpoints import load_checkpoint, model_from_checkpoint
from ..training.profiles import TrainConfig, apply_overrides
from ..training.run_data import model_gsd
from ..training.runtime import select_device
from .geo import (
    GDAL_CACHE_MB,
    MASK_NODATA,
    PROBABILITY_NODATA,
    Scene,
    open_scene,
    polygons_from_mask,
    raster_profile,
    scene_blocks,
    write_polygons,
)

__all__ = [
    "OUTPUT_NAMES",
    "checkpoint_gsd",
    "inference_scale",
    "window_weights",
    "map_scene",
    "scene_metrics",
    "scale_sweep",
    "plot_map",
]

OUTPUT_NAMES = ("probability.tif", "mask.tif", "landslides.gpkg", "landslides.geojson", "quicklook.png", "map.json")
VECTOR_DRIVERS = {"gpkg": "GPKG", "geojson": "GeoJSON"}


def checkpoint_gsd(state: dict) -> float | None:
    """Metres per pixel of the images the checkpoint's model was trained on (None if unknown).

    Recorded by training since the ``map`` command exists; for older checkpoints it is worked
    out again from the run's settings when their data is still where the run found it.
    """
    if "model_gsd_m" in state:
        return state["model_gsd_m"]
    try:
        return model_gsd(apply_overrides(TrainConfig(), dict(state.get("config", {}))))
    except (OSError, ValueError):
        return None


def inference_scale(scene: Scene, model_gsd_m: float | None, scale: float | None = None) -> float:
    """Model pixels per scene pixel: ``scale`` if given, else scene GSD / model GSD, else 1 (warned)."""
    if scale is not None:
        if scale <= 0:
            raise DataError(f"--scale must be positive, got {scale}")
        return float(scale)
    if scene.gsd_m and model_gsd_m:
        return scene.gsd_m / model_gsd_m
    if not model_gsd_m:
        why = "the checkpoint does not say at which ground pixel size its model was trained"
        fix = "pass --scale, or train with --set gsd=METRES (the training images' pixel size)"
    else:
        why = f"{scene.path} has no ground pixel size"
        fix = f"pass --gsd METRES so it is resampled to the model's nominal {model_gsd_m:.2f} m, or --scale"
    warnings.warn(f"{why}: mapping at the scene's own resolution; {fix}", stacklevel=2)
    return 1.0


def window_weights(size: int) -> np.ndarray:
    """(size, size) blending weights: a 2-D Hann taper, kept above zero so scene edges count."""
    ramp = np.sin(np.pi * (np.arange(size) + 0.5) / size) ** 2
    return np.maximum(np.outer(ramp, ramp), 1e-3).astype(np.float32)


@torch.no_grad()
def _predict(model: nn.Module, crops: np.ndarray, tta: bool, device: torch.device) -> np.ndarray:
    """Landslide probability (N, t, t) of uint8 crops (N, t, t, 3); with ``tta``, averaged over flips."""
    images = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255).to(device)
    flips = [(), (3,), (2,), (2, 3)] if tta else [()]
    total = torch.zeros(images.shape[0], *images.shape[2:], device=device)
    for dims in flips:
        prob = model(images.flip(dims) if dims else images).float().softmax(1)[:, 1]
        total += prob.flip([d - 1 for d in dims]) if dims else prob
    return (total / len(flips)).cpu().numpy()


def _read_model_window(scene: Scene, row: int, col: int, tile: int, grid: tuple[int, int]):
    """The scene under model-grid window (row, col), as a (tile, tile, 3) crop and its validity."""
    (mh, mw), h, w = grid, min(tile, grid[0] - row), min(tile, grid[1] - col)
    sy, sx = scene.height / mh, scene.width / mw
    rgb, valid = scene.read(Window(col * sx, row * sy, w * sx, h * sy), (h, w))
    crop, crop_valid = np.zeros((tile, tile, 3), np.uint8), np.zeros((tile, tile), bool)
    crop[:h, :w], crop_valid[:h, :w] = rgb, valid
    return crop, crop_valid


def _model_grid_probability(scene, model, dest, scale, tile, overlap, batch_size, tta, device, progress) -> int:
    """Pass 1: probabilities on the model's grid into ``dest``; returns the windows that held data."""
    grid = (max(1, round(scene.height * scale)), max(1, round(scene.width * scale)))
    mh, mw = grid
    step = max(1, tile - overlap)
    rows = tile_positions(mh, tile, step) if mh > tile else [0]
    cols = tile_positions(mw, tile, step) if mw > tile else [0]
    weights, used = window_weights(tile), 0
    profile = dict(driver="GTiff", width=mw, height=mh, count=1, dtype="float32", tiled=True,
                   blockxsize=256, blockysize=256, compress="deflate", BIGTIFF="IF_SAFER")  # fmt: skip
    strip, top = np.zeros((2, tile, mw + tile), np.float32), 0  # weighted sum and weight, rows top..top+tile

    def flush(until: int) -> None:
        n = min(until, mh) - top
        if n > 0:
            total, weight = strip[0, :n, :mw], strip[1, :n, :mw]
            prob = np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)
            out.write(prob[None], window=Window(0, top, mw, n))

    with (
        rasterio.open(dest, "w", **profile) as out,
        tqdm(total=len(rows) * len(cols), desc="windows", unit="win", disable=not progress) as bar,
    ):
        for row in rows:
            if row != top:  # rows above this window row are final
                flush(row)
                strip = np.concatenate([strip[:, row - top :], np.zeros((2, row - top, mw + tile), np.float32)], 1)
                top = row
            for start in range(0, len(cols), batch_size):
                chunk = cols[start : start + batch_size]
                reads = [_read_model_window(scene, row, col, tile, grid) for col in chunk]
                bar.update(len(chunk))
                keep = [i for i, (_, valid) in enumerate(reads) if valid.any()]
                if not keep:
                    continue
                probs = _predict(model, np.stack([reads[i][0] for i in keep]), tta, device)
                for i, prob in zip(keep, probs):
                    weight = weights * reads[i][1]
                    strip[0, :, chunk[i] : chunk[i] + tile] += prob * weight
                    strip[1, :, chunk[i] : chunk[i] + tile] += weight
                used += len(keep)
        flush(mh)
    return used


def _scene_grid_outputs(scene: Scene, model_grid: Path, prob_path: Path, mask_path: Path, threshold, progress) -> dict:
    """Pass 2: probability and mask on the scene's grid, no-data where the scene has none."""
    counts = {"valid_pixels": 0, "landslide_pixels": 0}
    with (
        rasterio.open(model_grid) as grid,
        rasterio.open(prob_path, "w", **raster_profile(scene, "float32", PROBABILITY_NODATA)) as prob_out,
        rasterio.open(mask_path, "w", **raster_profile(scene, "uint8", MASK_NODATA)) as mask_out,
    ):
        sy, sx = grid.height / scene.height, grid.width / scene.width
        for window in tqdm(scene_blocks(scene.height, scene.width), desc="writing", disable=not progress):
            h, w = int(window.height), int(window.width)
            source = Window(window.col_off * sx, window.row_off * sy, w * sx, h * sy)
            prob = grid.read(1, window=source, out_shape=(h, w), resampling=Resampling.bilinear)
            _, valid = scene.read(window)
            landslide = valid & (prob >= threshold)
            prob_out.write(np.where(valid, prob, PROBABILITY_NODATA).astype(np.float32)[None], window=window)
            mask_out.write(np.where(valid, landslide, MASK_NODATA).astype(np.uint8)[None], window=window)
            counts["valid_pixels"] += int(valid.sum())
            counts["landslide_pixels"] += int(landslide.sum())
    return counts


def _quicklook(scene: Scene, mask_path: Path, dest: Path, max_side: int = 1024) -> None:
    """The scene shrunk to ``max_side`` with its landslides tinted red."""
    rgb, _ = scene.overview(max_side)
    with rasterio.open(mask_path) as src:
        mask = src.read(1, out_shape=rgb.shape[:2], resampling=Resampling.nearest) == 1
    picture = rgb.astype(np.float32)
    picture[mask] = 0.55 * picture[mask] + 0.45 * np.array([255, 0, 0])
    Image.fromarray(picture.astype(np.uint8)).save(dest)


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    existing = [name for name in OUTPUT_NAMES if (out_dir / name).exists()]
    if existing and not overwrite:
        raise DataError(
            f"{out_dir} already holds results of an earlier map ({', '.join(existing)}); "
            "pass --overwrite to replace them, or choose another --out"
        )


def map_scene(
    scene_path: str | Path,
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    bands: tuple[int, ...] | None = None,
    gsd: float | None = None,
    scale: float | None = None,
    window: int | None = None,
    overlap: int | None = None,
    batch_size: int = 4,
    tta: bool = False,
    threshold: float = 0.5,
    min_area: float | None = None,
    vector_format: str = "gpkg",
    overwrite: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Map the landslides of ``scene_path`` with the model of ``checkpoint`` into ``out_dir``.

    ``window`` (default: the training size) and ``overlap`` (default: a quarter window) are in
    model pixels, ``window`` a multiple of 32. The training size is the safe default: EMR-HRNet's
    attention blocks pool over the whole window, so a much larger window changes what they see. ``min_area``
    drops polygons smaller than this many m² (pixels for a scene of unknown ground size;
    default: 16 scene pixels). Returns the summary also written to ``map.json``.
    """
    started, out_dir = time.perf_counter(), Path(out_dir)
    state = load_checkpoint(checkpoint)
    window = window or int(state.get("config", {}).get("size", 512))
    if window % 32 or window < 32:
        raise DataError(f"--window must be a multiple of 32 pixels, got {window}")
    overlap = window // 4 if overlap is None else overlap
    if not 0 <= overlap < window:
        raise DataError(f"--overlap must be at least 0 and less than --window ({window}), got {overlap}")
    if vector_format not in VECTOR_DRIVERS:
        raise DataError(f"--format must be one of {list(VECTOR_DRIVERS)}, got {vector_format!r}")
    _check_out_dir(out_dir, overwrite)
    made_out_dir = not out_dir.exists()
    torch_device = select_device(device or "auto")
    model = deploy(model_from_checkpoint(state)).to(torch_device)
    trained_gsd = checkpoint_gsd(state)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # the model-grid raster has no CRS on purpose
        partial = out_dir / f".partial-{os.getpid()}"
        partial.mkdir(parents=True, exist_ok=True)
        scene = None
        try:
            scene = open_scene(scene_path, bands, gsd, workdir=partial)
            factor = inference_scale(scene, trained_gsd, scale)
            args = (scene, model, partial / "model_grid.tif", factor, window, overlap, batch_size, tta)
            windows = _model_grid_probability(*args, torch_device, progress)
            if windows == 0:
                raise DataError(f"{scene_path} holds no valid pixel (all no-data): nothing to map; check --bands")
            prob_path, mask_path = partial / "probability.tif", partial / "mask.tif"
            counts = _scene_grid_outputs(scene, partial / "model_grid.tif", prob_path, mask_path, threshold, progress)
            pixel_area = scene.gsd_m**2 if scene.gsd_m else 1.0
            min_area = 16 * pixel_area if min_area is None else min_area
            polygons, areas, means = polygons_from_mask(mask_path, prob_path, scene.gsd_m, min_area)
            vector = partial / f"landslides.{vector_format}"
            write_polygons(vector, polygons, areas, means, scene.crs, VECTOR_DRIVERS[vector_format])
            _quicklook(scene, mask_path, partial / "quicklook.png")
            seconds = time.perf_counter() - started
            summary = {
                "scene": str(scene_path),
                "checkpoint": str(checkpoint),
                "model": state["model_name"],
                "size": [scene.width, scene.height],
                "crs": scene.crs.to_string() if scene.crs else None,
                "scene_gsd_m": scene.gsd_m,
                "model_gsd_m": trained_gsd,
                "scale": factor,
                "window": window,
                "overlap": overlap,
                "tta": tta,
                "threshold": threshold,
                "windows": windows,
                **counts,
                "landslide_area_m2": counts["landslide_pixels"] * pixel_area if scene.gsd_m else None,
                "polygons": len(polygons),
                "min_area": min_area,
                "seconds": round(seconds, 2),
                "megapixels_per_s": round(scene.width * scene.height / 1e6 / seconds, 3),
                "provenance": provenance(torch_device),
            }
            (partial / "map.json").write_text(json.dumps(summary, indent=1))
            for scratch in ("model_grid.tif", "scene_tiled.tif"):
                (partial / scratch).unlink(missing_ok=True)
            for name in OUTPUT_NAMES:  # an earlier run's other vector format must not linger
                (out_dir / name).unlink(missing_ok=True)
            for produced in partial.iterdir():
                os.replace(produced, out_dir / produced.name)
        finally:
            if scene is not None:
                scene.close()
            shutil.rmtree(partial, ignore_errors=True)
            if made_out_dir and out_dir.is_dir() and not any(out_dir.iterdir()):
                out_dir.rmdir()  # a failed run leaves nothing behind
    return summary


def scene_metrics(
    mask_path: str | Path | np.ndarray,
    truth_path: str | Path | np.ndarray,
    rows: tuple[int, int] | None = None,
    valid: np.ndarray | None = None,
) -> dict[str, float]:
    """Segmentation metrics of a mapped ``mask.tif`` against a true mask of the same grid (any
    raster: 0 background, non-zero landslide), counted block by block over the mask's valid pixels
    (only rows ``rows[0]`` to ``rows[1]`` with ``rows``, e.g. the half of a scene kept unseen).

    A scene held in memory is scored the same way: ``mask_path`` and ``truth_path`` as (H, W)
    arrays (prediction: bool or 0/1; truth: non-zero landslide), ``valid`` the pixels to count
    (default: every pixel; notebook 08 leaves out no-data).
    """
    if isinstance(mask_path, np.ndarray) or isinstance(truth_path, np.ndarray):
        prediction, expected = np.asarray(mask_path), np.asarray(truth_path) > 0
        if prediction.shape != expected.shape:
            raise DataError(f"the prediction is {prediction.shape} but the true mask is {expected.shape}")
        keep = np.ones(prediction.shape, bool) if valid is None else np.asarray(valid, bool)
        first, last = rows or (0, prediction.shape[0])
        return segmentation_metrics(
            torch.from_numpy(_count(prediction[first:last], expected[first:last], keep[first:last]))
        )
    matrix = np.zeros((2, 2), np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(mask_path) as mapped, rasterio.open(truth_path) as truth:
            if (truth.width, truth.height) != (mapped.width, mapped.height):
                raise DataError(
                    f"{truth_path} is {truth.width} x {truth.height} but the map is {mapped.width} x {mapped.height}"
                )
            first, last = rows or (0, mapped.height)
            for window in scene_blocks(last - first, mapped.width):
                window = Window(window.col_off, window.row_off + first, window.width, window.height)
                prediction, expected = mapped.read(1, window=window), truth.read(1, window=window) > 0
                matrix += _count(prediction, expected, prediction != MASK_NODATA)
    return segmentation_metrics(torch.from_numpy(matrix))


def _count(prediction: np.ndarray, expected: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The 2 x 2 confusion matrix (rows truth, columns prediction) over the ``valid`` pixels."""
    return np.bincount(expected[valid].astype(np.int64) * 2 + prediction[valid].astype(np.int64), minlength=4).reshape(
        2, 2
    )


def scale_sweep(
    scene_path: str | Path,
    checkpoint: str | Path,
    truth_path: str | Path,
    scales,
    out_root: str | Path,
    rows: tuple[int, int] | None = None,
    **map_options,
) -> list[dict]:
    """Map the scene at each of ``scales`` (into ``out_root/scale-<s>``) and score it against the truth.

    Answers "at which resolution should this model see this scene?": one row per scale with
    the metrics, the seconds and the mapped folder.
    """
    result = []
    for scale in scales:
        folder = Path(out_root) / f"scale-{scale:g}"
        summary = map_scene(scene_path, checkpoint, folder, scale=scale, overwrite=True, **map_options)
        metrics = scene_metrics(folder / "mask.tif", truth_path, rows)
        result.append({"scale": scale, **metrics, "seconds": summary["seconds"], "folder": str(folder)})
    return result


def plot_map(map_dir: str | Path, scene_path: str | Path, max_side: int = 1000, title: str | None = None):
    """A mapped scene (:func:`map_scene`) shrunk for display, with its landslide polygons outlined in
    yellow: what QGIS shows when both files are opened (here, beside the other GDAL readers, so
    :mod:`emr_lib.viz` needs no GDAL)."""
    import matplotlib.pyplot as plt
    import pyogrio.raw
    import shapely

    map_dir = Path(map_dir)
    vector = next(p for p in (map_dir / "landslides.gpkg", map_dir / "landslides.geojson") if p.is_file())
    with warnings.catch_warnings():  # map_scene already said when the scene has no coordinates
        warnings.simplefilter("ignore", UserWarning)
        scene = open_scene(scene_path, gsd=1.0)  # the ground size does not matter for a picture
    try:
        rgb, _ = scene.overview(max_side)
        to_pixels, shrink = ~scene.transform, scene.width / rgb.shape[1]
    finally:
        scene.close()
    fig, ax = plt.subplots(figsize=(8, 8 * rgb.shape[0] / rgb.shape[1]))
    ax.imshow(rgb)
    for polygon in shapely.from_wkb(pyogrio.raw.read(vector)[2]):
        columns, rows = to_pixels * np.asarray(polygon.exterior.coords).T
        ax.plot(np.asarray(columns) / shrink, np.asarray(rows) / shrink, color="yellow", linewidth=0.9)
    ax.axis("off")
    ax.set_title(title or f"{Path(scene_path).name}: mapped landslides")
    fig.tight_layout()
    return fig
