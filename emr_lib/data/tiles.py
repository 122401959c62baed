"""Cutting a large scene (a UAV orthophoto and its mask) into training tiles."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import SampleDataset, Transform
from .io import DataError, read_image, read_mask, to_binary_mask

__all__ = [
    "HALVES",
    "HELD_OUT",
    "TileWindow",
    "SceneTiles",
    "StitchedScenes",
    "tile_scene",
    "tile_positions",
    "scene_of",
]


# which half of a scene is held out -> (training box, held-out box) as fractions x0, y0, x1, y1
HALVES = {
    "bottom": ((0, 0, 1, 0.5), (0, 0.5, 1, 1)),
    "top": ((0, 0.5, 1, 1), (0, 0, 1, 0.5)),
    "right": ((0, 0, 0.5, 1), (0.5, 0, 1, 1)),
    "left": ((0.5, 0, 1, 1), (0, 0, 0.5, 1)),
}
# and every choice of held-out part: a half, or "all" (the whole scene held out, no training part)
HELD_OUT = {**HALVES, "all": (None, (0, 0, 1, 1))}


# a tile is named after its scene and its top-left pixel: <scene>_y<row>_x<col> (SceneTiles.names)
TILE_NAME = re.compile(r"^(?P<scene>.+)_y(?P<y>\d{5})_x(?P<x>\d{5})$")


def scene_of(name: str) -> str:
    """The scene a tile named ``<scene>_y<row>_x<col>`` was cut from (any other name is its own scene).

    Tiles of one scene overlap in what they show (one slope, one light, one annotator), so a split
    keeps them together and a bootstrap resamples scenes, not tiles.
    """
    match = TILE_NAME.match(name)
    return match["scene"] if match else name


class StitchedScenes(SampleDataset):
    """The scenes a tiled dataset was cut from (tiles named ``<scene>_y<row>_x<col>``), put back together.

    Names are the scenes'; ``read`` pastes each tile at its offset, so whole-scene pictures and
    per-scene statistics come from the tiles a run trains on.
    """

    def __init__(self, tiles: SampleDataset):
        self.tiles, self.parts = tiles, {}
        for index, name in enumerate(tiles.names):
            match = TILE_NAME.match(name)
            if match is None:
                raise DataError(f"{name!r} is not a tile name (<scene>_y<row>_x<col>); the dataset holds no scenes")
            self.parts.setdefault(match["scene"], []).append((index, int(match["y"]), int(match["x"])))
        self.names = sorted(self.parts)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        pieces = [(self.tiles.read(i), y, x) for i, y, x in self.parts[self.names[index]]]
        height = max(y + image.shape[0] for (image, _), y, _ in pieces)
        width = max(x + image.shape[1] for (image, _), _, x in pieces)
        image, mask = np.zeros((height, width, 3), np.uint8), np.zeros((height, width), np.uint8)
        for (tile_image, tile_mask), y, x in pieces:
            image[y : y + tile_image.shape[0], x : x + tile_image.shape[1]] = tile_image
            mask[y : y + tile_mask.shape[0], x : x + tile_mask.shape[1]] = tile_mask
        return image, mask


@dataclass(frozen=True)
class TileWindow:
    y: int
    x: int
    size: int
    nodata_fraction: float


def tile_positions(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets covering ``[0, length)`` with windows of ``tile``; the last one is flush with the end."""
    if length < tile:
        raise DataError(f"the scene ({length} px) is smaller than one tile ({tile} px); use a smaller tile")
    positions = list(range(0, length - tile + 1, stride))
    if positions[-1] != length - tile:
        positions.append(length - tile)
    return positions


class SceneTiles(SampleDataset):
    """Tiles of one scene, kept as windows into the scene array (a tile is copied only when read).

    Items are dicts like every dataset of the kit; names are ``<scene>_y<row>_x<col>``.
    """

    def __init__(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        windows: list[TileWindow],
        name: str = "scene",
        transform: Transform | None = None,
    ):
        self.image, self.mask, self.windows, self.name, self.transform = image, mask, windows, name, transform

    @property
    def names(self) -> list[str]:
        return [f"{self.name}_y{w.y:05d}_x{w.x:05d}" for w in self.windows]

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        w = self.windows[index]
        window = (slice(w.y, w.y + w.size), slice(w.x, w.x + w.size))
        return self.image[window].copy(), self.mask[window].copy()

    def coverage(self) -> float:
        """Share of the scene's pixels that lie in at least one tile."""
        covered = np.zeros(self.mask.shape, bool)
        for w in self.windows:
            covered[w.y : w.y + w.size, w.x : w.x + w.size] = True
        return float(covered.mean())


def tile_scene(
    image: str | Path | np.ndarray,
    mask: str | Path | np.ndarray | None = None,
    tile: int = 512,
    stride: int | None = None,
    max_nodata: float = 0.5,
    nodata: int | tuple[int, int, int] = 0,
    name: str | None = None,
    transform: Transform | None = None,
    region: tuple[int, int, int, int] | None = None,
) -> SceneTiles:
    """Cut a scene into ``tile`` x ``tile`` windows every ``stride`` pixels (default: no overlap).

    With ``region`` = (x0, y0, x1, y1) in pixels, only windows wholly inside that box are cut,
    so the rest of the scene stays unseen (e.g. fine-tune on the top half, test on the bottom).

    A pixel is no-data when all its channels equal ``nodata`` (black outside the flown
    area of an orthophoto); windows with more than ``max_nodata`` of such pixels are
    skipped. The scene is read once and tiles are views into it, so memory stays at
    about the scene's own size. ``mask`` may be None for inference (all background).
    """
    stride = stride or tile
    if tile < 1 or stride < 1:
        raise ValueError(f"tile and stride must be positive, got tile={tile}, stride={stride}")
    if isinstance(image, (str, Path)):
        name = name or Path(image).parent.name or Path(image).stem
        image = read_image(image)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(f"scene image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if mask is None:
        mask = np.zeros(image.shape[:2], np.uint8)
    elif isinstance(mask, (str, Path)):
        mask_path = mask
        mask = read_mask(mask)
        if mask.shape != image.shape[:2]:
            raise DataError(f"mask {mask_path} is {mask.shape[::-1]} but the scene is {image.shape[1::-1]} (w x h)")
    else:
        mask = to_binary_mask(np.asarray(mask))
    if mask.shape != image.shape[:2]:
        raise DataError(f"mask shape {mask.shape} differs from the scene's {image.shape[:2]}")
    nodata_value = np.asarray(nodata, np.uint8).reshape(-1)
    x0, y0, x1, y1 = region if region is not None else (0, 0, image.shape[1], image.shape[0])
    if not (0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]):
        raise DataError(
            f"region {region} is not a box inside the scene (x0,y0,x1,y1 with 0 <= x0 < x1 <= {image.shape[1]} "
            f"and 0 <= y0 < y1 <= {image.shape[0]})"
        )
    windows = []
    for y in (y0 + p for p in tile_positions(y1 - y0, tile, stride)):
        for x in (x0 + p for p in tile_positions(x1 - x0, tile, stride)):
            fraction = float(np.all(image[y : y + tile, x : x + tile] == nodata_value, axis=2).mean())
            if fraction <= max_nodata:
                windows.append(TileWindow(y, x, tile, fraction))
    return SceneTiles(image, mask, windows, name or "scene", transform)
