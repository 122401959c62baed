"""Synthetic landslides: the kit's embedded default dataset.

A deterministic generator of terrain-like RGB scenes with landslide scars and
exact masks, so every notebook and test runs offline without the real data.
Each sample is made from ``(seed, index)`` alone, so sample 7 is the same whatever
``n`` is, and a few hundred 128-px samples take about a second.

What a scene holds, in painting order:

1. a fractal height field with a regional slope, shaded by a north-west sun
   (relief you can see);
2. vegetation: forest and grassland mixed by low-frequency noise, with fine texture;
3. farmland: 0-3 rotated rectangular fields, some of them bare soil (the
   look-alikes that make the task non-trivial);
4. a road (light, with shoulders) or a river (dark water), a smooth random curve;
5. one or two landslide scars: elongated along the downslope direction, narrow
   crown upslope and wider deposit downslope, irregular edges, bare-soil colours
   with downslope streaks. The mask is exactly the painted scar.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from .base import SampleDataset, Transform

__all__ = ["SyntheticLandslides", "synthetic_scene"]


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth value noise in about [-1, 1]: a random (cells+1)^2 grid, bicubic-resized."""
    grid = rng.uniform(-1, 1, (cells + 1, cells + 1)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((size, size), Image.BICUBIC))


def _fractal(rng: np.random.Generator, size: int, octaves=(2, 4, 8, 16), persistence: float = 0.5) -> np.ndarray:
    total = np.zeros((size, size), np.float32)
    amplitude = 1.0
    for cells in octaves:
        total += amplitude * _noise(rng, size, cells)
        amplitude *= persistence
    return total / sum(persistence**i for i in range(len(octaves)))


def _hillshade(height: np.ndarray, azimuth_deg: float = 315, altitude_deg: float = 45) -> np.ndarray:
    dy, dx = np.gradient(height)
    slope = np.arctan(np.hypot(dx, dy))
    aspect = np.arctan2(-dx, dy)
    az, alt = np.deg2rad(azimuth_deg), np.deg2rad(altitude_deg)
    shade = np.sin(alt) * np.cos(slope) + np.cos(alt) * np.sin(slope) * np.cos(az - aspect)
    return np.clip(shade, 0, 1)


def _curve_distance(rng: np.random.Generator, size: int) -> np.ndarray:
    """Distance of every pixel to a smooth random curve crossing the scene."""
    y, x = rng.uniform(0, size, 2)
    heading = rng.uniform(0, 2 * np.pi)
    turn = 0.0
    line = np.zeros((size, size), bool)
    for _ in range(4 * size):
        turn = 0.9 * turn + rng.normal(0, 0.03)
        heading += turn
        y, x = y + np.sin(heading), x + np.cos(heading)
        if 0 <= y < size and 0 <= x < size:
            line[int(y), int(x)] = True
    # walk both ways from the start so the curve crosses the scene
    return ndimage.distance_transform_edt(~line)


def _scar_mask(rng: np.random.Generator, size: int, downslope: float, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    length = rng.uniform(0.25, 0.65) * size
    width = rng.uniform(0.35, 0.7) * length
    cy, cx = rng.uniform(0.25, 0.75, 2) * size
    u = (xx - cx) * np.cos(downslope) + (yy - cy) * np.sin(downslope)  # along the slope, + is downhill
    v = -(xx - cx) * np.sin(downslope) + (yy - cy) * np.cos(downslope)
    t = np.clip(u / length, -0.5, 0.5) + 0.5  # 0 at the crown, 1 at the toe
    half_width = width / 2 * (0.45 + 0.55 * np.sqrt(t))  # narrow crown, wide deposit
    edge = 0.5 * _fractal(rng, size, octaves=(8, 16, 32), persistence=0.7)
    inside = (v / half_width) ** 2 + (2 * u / length) ** 4 < 1 + edge
    labels, count = ndimage.label(inside)
    if count > 1:  # keep the main body: noise can split off specks
        sizes = ndimage.sum(inside, labels, range(1, count + 1))
        inside = labels == (1 + int(np.argmax(sizes)))
    return ndimage.binary_fill_holes(inside)


class SyntheticLandslides(SampleDataset):
    """``n`` synthetic landslide scenes of ``size`` x ``size`` pixels, deterministic in ``seed``.

    Items are dicts like every dataset of the kit (``image``, ``mask``, ``name``).
    ``p_empty`` is the share of scenes without a landslide (like Bijie's
    non-landslide images). :meth:`save` writes the scenes as an ``images/`` +
    ``masks/`` folder that :class:`~emr_lib.data.FolderDataset` and the CLI read.
    """

    def __init__(
        self, n: int, size: int = 128, seed: int = 0, transform: Transform | None = None, p_empty: float = 0.0
    ):
        if n < 1 or size < 32:
            raise ValueError(f"need n >= 1 and size >= 32, got n={n}, size={size}")
        self.n, self.size, self.seed, self.transform, self.p_empty = n, size, seed, transform, p_empty

    @property
    def names(self) -> list[str]:
        return [f"synthetic_{i:05d}" for i in range(self.n)]

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Scene ``index`` as an image (H, W, 3) uint8 and a mask (H, W) uint8 0/1."""
        if not 0 <= index < self.n:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        s = self.size
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)

        # 1. relief: fractal heights plus a regional slope whose downhill direction we keep
        downslope = rng.uniform(0, 2 * np.pi)
        regional = (xx * np.cos(downslope) + yy * np.sin(downslope)) / s
        height = _fractal(rng, s) * rng.uniform(4, 10) - regional * rng.uniform(4, 12)
        shade = 0.55 + 0.6 * _hillshade(height)

        # 2. vegetation: forest/grass mix with fine texture
        forest = np.array([38, 68, 34], np.float32)
        grass = np.array([92, 120, 58], np.float32) * rng.uniform(0.9, 1.15, 3)
        mix = np.clip(0.5 + 0.8 * _fractal(rng, s, octaves=(3, 6, 12)), 0, 1)[..., None]
        texture = 1 + 0.22 * _fractal(rng, s, octaves=(16, 32, 64), persistence=0.8)[..., None]
        texture = texture + rng.normal(0, 0.07, (s, s, 1)).astype(np.float32)  # canopy speckle
        image = (forest * mix + grass * (1 - mix)) * texture

        # 3. farmland: rotated fields, some bare
        for _ in range(rng.integers(0, 4)):
            fy, fx = rng.uniform(0, s, 2)
            angle = rng.uniform(0, np.pi)
            fu = (xx - fx) * np.cos(angle) + (yy - fy) * np.sin(angle)
            fv = -(xx - fx) * np.sin(angle) + (yy - fy) * np.cos(angle)
            field = (np.abs(fu) < rng.uniform(0.05, 0.2) * s) & (np.abs(fv) < rng.uniform(0.04, 0.12) * s)
            colour = rng.choice([[150, 150, 95], [120, 140, 70], [165, 140, 105]], axis=0)
            stripes = 1 + 0.06 * np.sin(fu * rng.uniform(0.8, 1.6))[..., None]
            image = np.where(field[..., None], np.asarray(colour, np.float32) * stripes, image)

        # 4. a road or a river
        distance = _curve_distance(rng, s)
        if rng.random() < 0.5:
            half = rng.uniform(1.0, 2.2) * s / 128
            image = np.where((distance < half + 1)[..., None], image * 0.75 + 40, image)  # shoulders
            image = np.where((distance < half)[..., None], np.array([172, 166, 152], np.float32), image)
        else:
            half = rng.uniform(1.5, 4.0) * s / 128
            water = np.array([52, 72, 80], np.float32) * (1 - 0.2 * (distance < half / 2))[..., None]
            image = np.where((distance < half)[..., None], water, image)

        # 5. landslide scars along the slope
        mask = np.zeros((s, s), bool)
        if rng.random() >= self.p_empty:
            for _ in range(1 if rng.random() < 0.8 else 2):
                local = downslope + rng.normal(0, 0.25)
                mask |= _scar_mask(rng, s, local, yy, xx)
            u = xx * np.cos(downslope) + yy * np.sin(downslope)
            v = -xx * np.sin(downslope) + yy * np.cos(downslope)
            soil = np.array([178, 152, 120], np.float32) * rng.uniform(0.85, 1.2) * rng.uniform(0.95, 1.05, 3)
            streaks = 1 + 0.05 * np.sin(v * rng.uniform(0.6, 1.2) + 2 * _noise(rng, s, 8))
            freshness = 1.08 - 0.18 * np.clip((u - u[mask].min()) / (np.ptp(u[mask]) + 1), 0, 1)
            rough = 1 + 0.15 * _fractal(rng, s, octaves=(24, 48), persistence=0.9) + rng.normal(0, 0.05, (s, s))
            scar = soil * (streaks * freshness * rough)[..., None]
            # soften the inner rim so edges are not razor-sharp (the mask stays exactly the scar)
            rim = mask & ~ndimage.binary_erosion(mask)
            scar = np.where(rim[..., None], 0.6 * scar + 0.4 * image, scar)
            image = np.where(mask[..., None], scar, image)

        haze = rng.uniform(0.0, 18.0)
        image = image * shade[..., None] * rng.uniform(0.85, 1.12) + haze
        return np.clip(image, 0, 255).astype(np.uint8), mask.astype(np.uint8)


def synthetic_scene(grid: int = 2, size: int = 128, seed: int = 7, nodata_width: int = 0):
    """A large stand-in scene: ``grid`` x ``grid`` synthetic scenes side by side, with an
    optional black (no-data) strip of ``nodata_width`` columns on the left, as outside a
    flight path. Returns (image (H, W, 3) uint8, mask (H, W) uint8)."""
    scenes = SyntheticLandslides(grid * grid, size=size, seed=seed)
    rows = [[scenes.read(r * grid + c) for c in range(grid)] for r in range(grid)]
    image = np.concatenate([np.concatenate([p[0] for p in row], axis=1) for row in rows])
    mask = np.concatenate([np.concatenate([p[1] for p in row], axis=1) for row in rows])
    image[:, :nodata_width] = 0
    mask[:, :nodata_width] = 0
    return image, mask
