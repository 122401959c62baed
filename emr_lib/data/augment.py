"""Augmentation: CenterRep (the paper's own) and the joint transforms of one training recipe.

All functions work on NumPy arrays: images (H, W, 3) uint8, masks (H, W) uint8 with
0 (background) and 1 (landslide). Image and mask are always transformed together
(nearest-neighbour for masks).

:func:`train_transform` is the one augmentation recipe. Training applies it online;
the offline expansion (:mod:`emr_lib.data.expansion`) applies the same recipe and writes the
parameters each transform drew (``Compose.apply``) into its manifest.

CenterRep, as we read the paper's five steps (Section 2.2)
-----------------------------------------------------------
1. find the landslide pixels (mask > 0);
2. find their bounding box and its centre;
3. draw a fill fraction f in ``fill`` (20-30 %);
4. cover a rectangle centred on the box centre, with the box's aspect ratio and an
   area of f x the box's area, with non-landslide content, and set the mask to
   background there;
5. leave every other pixel unchanged.

The paper leaves two things open, which we make parameters:

- the patch's *shape*: a rectangle with the bounding box's aspect ratio, so it always
  lies inside the box (also when the landslide touches the image border);
- its *source*: a random crop of a non-landslide image when one is given (``source``),
  else a window of background pixels of the same image (the integral image finds a
  window with no landslide pixel; when none exists, the window with the fewest is
  taken and its landslide pixels are filled from their nearest background pixel).

Several landslides: by default each connected component (8-connectivity, at least
``min_area`` pixels) gets its own patch (``per="component"``); ``per="union"``
treats all landslide pixels as one region with one bounding box, the most literal
reading of the paper, whose images usually hold a single landslide. An empty mask
leaves the sample unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from .io import resize_pair

__all__ = [
    "center_rep",
    "Compose",
    "Resize",
    "RandomFlip",
    "RandomRotate90",
    "RandomRotation",
    "RandomBrightness",
    "RandomScale",
    "CenterRep",
    "train_transform",
    "eval_transform",
]

Ops = list[dict]  # what the transforms of one call drew, one dict per transform that changed the sample


def _as_rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def fill_range(fill) -> tuple[float, float]:
    lo, hi = (fill, fill) if np.isscalar(fill) else fill
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"fill must be a fraction or a (low, high) range in (0, 1], got {fill}")
    return float(lo), float(hi)


def _background_window(image: np.ndarray, landslide: np.ndarray, ph: int, pw: int, rng) -> tuple[np.ndarray, str]:
    """A (ph, pw) window of the image with no landslide pixel (or the fewest, inpainted)."""
    table = np.pad(landslide.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    counts = table[ph:, pw:] - table[:-ph, pw:] - table[ph:, :-pw] + table[:-ph, :-pw]
    clean = np.argwhere(counts == 0)
    if len(clean):
        y, x = clean[rng.integers(len(clean))]
        return image[y : y + ph, x : x + pw].copy(), "background"
    y, x = np.unravel_index(np.argmin(counts), counts.shape)
    window = image[y : y + ph, x : x + pw].copy()
    # fill the window's landslide pixels from the nearest background pixel of the image
    _, (iy, ix) = ndimage.distance_transform_edt(landslide, return_indices=True)
    window_landslide = landslide[y : y + ph, x : x + pw]
    yy, xx = np.nonzero(window_landslide)
    window[yy, xx] = image[iy[y + yy, x + xx], ix[y + yy, x + xx]]
    return window, "inpainted"


def _source_crop(source: np.ndarray, ph: int, pw: int, rng) -> np.ndarray:
    if source.shape[0] < ph or source.shape[1] < pw:
        scale = max(ph / source.shape[0], pw / source.shape[1])
        size = (int(np.ceil(source.shape[1] * scale)), int(np.ceil(source.shape[0] * scale)))
        source = np.asarray(Image.fromarray(source).resize(size, Image.BILINEAR))
    y = rng.integers(source.shape[0] - ph + 1)
    x = rng.integers(source.shape[1] - pw + 1)
    return source[y : y + ph, x : x + pw]


def center_rep(
    image: np.ndarray,
    mask: np.ndarray,
    fill=(0.2, 0.3),
    source: np.ndarray | None = None,
    rng=None,
    per: str = "component",
    min_area: int = 16,
    return_info: bool = False,
):
    """CenterRep: cover the centre of each landslide with non-landslide content.

    Args:
        image: (H, W, 3) uint8. mask: (H, W), non-zero = landslide.
        fill: fraction of the bounding box's area to cover, or a (low, high) range.
        source: a non-landslide image (H', W', 3) to take the patch from; None takes
            background pixels of ``image`` itself.
        rng: a NumPy Generator or seed.
        per: "component" (a patch per connected landslide) or "union" (one patch).
        min_area: components smaller than this (pixels) are left alone.
        return_info: also return a list with, per patch, the bounding box
            (y0, x0, y1, x1 inclusive), its centre, the patch (top, left, height,
            width), the drawn and the achieved fraction and the content's source.

    Returns:
        ``(image, mask)`` as new arrays (mask uint8 0/1), plus ``info`` if asked.
    """
    if image.ndim != 3 or image.shape[:2] != mask.shape:
        raise ValueError(f"image (H, W, 3) and mask (H, W) must match, got {image.shape} and {mask.shape}")
    if per not in ("component", "union"):
        raise ValueError(f"per must be 'component' or 'union', got {per!r}")
    rng = _as_rng(rng)
    lo, hi = fill_range(fill)
    out_image, out_mask = image.copy(), (mask > 0).astype(np.uint8)
    landslide = out_mask.astype(bool)
    info = []
    if per == "union":
        regions = [landslide] if landslide.any() else []
    else:
        labels, count = ndimage.label(landslide, structure=np.ones((3, 3), int))
        regions = [labels == i for i in range(1, count + 1)]
    for region in regions:
        if region.sum() < min_area:
            continue
        ys, xs = np.nonzero(region)
        y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
        bh, bw = y1 - y0 + 1, x1 - x0 + 1
        cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
        fraction = rng.uniform(lo, hi)
        # the box's aspect ratio; the width is rounded against the height so the area is close to f x box
        ph = int(np.clip(round(bh * np.sqrt(fraction)), 1, bh))
        pw = int(np.clip(round(fraction * bh * bw / ph), 1, bw))
        top = int(np.clip(round(cy - (ph - 1) / 2), y0, y1 - ph + 1))
        left = int(np.clip(round(cx - (pw - 1) / 2), x0, x1 - pw + 1))
        if source is not None:
            content, origin = _source_crop(np.asarray(source), ph, pw, rng), "source"
        else:
            content, origin = _background_window(image, landslide, ph, pw, rng)
        out_image[top : top + ph, left : left + pw] = content
        out_mask[top : top + ph, left : left + pw] = 0
        info.append(
            {
                "bbox": (int(y0), int(x0), int(y1), int(x1)),
                "center": (float(cy), float(cx)),
                "patch": (top, left, ph, pw),
                "fraction": float(fraction),
                "achieved_fraction": ph * pw / (bh * bw),
                "content": origin,
            }
        )
    return (out_image, out_mask, info) if return_info else (out_image, out_mask)


# --- joint transforms: explicit-parameter operations, then random wrappers ------------------


def flip(image, mask, horizontal: bool, vertical: bool):
    if horizontal:
        image, mask = image[:, ::-1], mask[:, ::-1]
    if vertical:
        image, mask = image[::-1], mask[::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def rotate90(image, mask, k: int):
    return np.ascontiguousarray(np.rot90(image, k)), np.ascontiguousarray(np.rot90(mask, k))


def rotate(image, mask, angle: float):
    """Rotate by ``angle`` degrees about the centre; borders reflect (image bilinear, mask nearest)."""
    image = ndimage.rotate(image, angle, axes=(1, 0), reshape=False, order=1, mode="reflect")
    mask = ndimage.rotate(mask, angle, axes=(1, 0), reshape=False, order=0, mode="reflect")
    return image, mask


def brightness(image, mask, factor: float):
    return np.clip(image.astype(np.float32) * factor, 0, 255).astype(np.uint8), mask


def _log(ops: Ops | None, op: dict) -> None:
    if ops is not None:
        ops.append(op)


class Compose:
    """Apply transforms in order; each gets ``(image, mask, rng, ops)`` and appends what it drew to ``ops``.

    Called as ``transform(image, mask)``, the NumPy generator is seeded from torch's RNG,
    so ``torch.manual_seed`` (and DataLoader's per-worker seeding) makes augmentation
    reproducible. :meth:`apply` takes a generator and also returns the drawn parameters.
    """

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, image: np.ndarray, mask: np.ndarray):
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        image, mask, _ = self.apply(image, mask, rng)
        return image, mask

    def apply(
        self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, Ops]:
        """``(image, mask, ops)``: the transformed sample and, per transform that changed it, its parameters."""
        ops: Ops = []
        for transform in self.transforms:
            image, mask = transform(image, mask, rng, ops)
        return image, mask, ops

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"


class Resize:
    def __init__(self, size: int | tuple[int, int]):
        self.size = size

    def __call__(self, image, mask, rng=None, ops=None):
        return resize_pair(image, mask, self.size)

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class RandomScale:
    """Rescale by a factor drawn log-uniformly from [low, high], then crop (when larger) or pad with
    no-data black (when smaller) back to the input size: the same ground at another pixel size."""

    def __init__(self, low: float = 0.5, high: float = 2.0):
        self.low, self.high = low, high

    def __call__(self, image, mask, rng, ops: Ops | None = None):
        factor = float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))
        h, w = mask.shape
        sh, sw = max(1, round(h * factor)), max(1, round(w * factor))
        scaled_image, scaled_mask = resize_pair(image, mask, (sh, sw))
        _log(ops, {"op": "scale", "factor": round(factor, 3)})
        if sh >= h and sw >= w:  # crop a random part of the enlarged image
            y, x = int(rng.integers(sh - h + 1)), int(rng.integers(sw - w + 1))
            return scaled_image[y : y + h, x : x + w].copy(), scaled_mask[y : y + h, x : x + w].copy()
        out_image, out_mask = np.zeros_like(image), np.zeros_like(mask)
        y, x = int(rng.integers(max(h - sh, 0) + 1)), int(rng.integers(max(w - sw, 0) + 1))
        ch, cw = min(sh, h), min(sw, w)
        out_image[y : y + ch, x : x + cw] = scaled_image[:ch, :cw]
        out_mask[y : y + ch, x : x + cw] = scaled_mask[:ch, :cw]
        return out_image, out_mask

    def __repr__(self) -> str:
        return f"RandomScale({self.low}, {self.high})"


class RandomFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, image, mask, rng, ops: Ops | None = None):
        horizontal, vertical = bool(rng.random() < self.p), bool(rng.random() < self.p)
        if horizontal or vertical:
            _log(ops, {"op": "flip", "horizontal": horizontal, "vertical": vertical})
        return flip(image, mask, horizontal, vertical)


class RandomRotate90:
    def __call__(self, image, mask, rng, ops: Ops | None = None):
        k = int(rng.integers(4))
        if k:
            _log(ops, {"op": "rotate90", "k": k})
        return rotate90(image, mask, k)


class RandomRotation:
    def __init__(self, degrees: float = 30, p: float = 0.5):
        self.degrees, self.p = degrees, p

    def __call__(self, image, mask, rng, ops: Ops | None = None):
        if rng.random() >= self.p:
            return image, mask
        angle = float(rng.uniform(-self.degrees, self.degrees))
        _log(ops, {"op": "rotate", "degrees": angle})
        return rotate(image, mask, angle)


class RandomBrightness:
    def __init__(self, delta: float = 0.2, p: float = 0.5):
        self.delta, self.p = delta, p

    def __call__(self, image, mask, rng, ops: Ops | None = None):
        if rng.random() >= self.p:
            return image, mask
        factor = float(rng.uniform(1 - self.delta, 1 + self.delta))
        _log(ops, {"op": "brightness", "factor": factor})
        return brightness(image, mask, factor)


class CenterRep:
    """CenterRep as an online transform, applied with probability ``p``.

    ``sources``: optional non-landslide images to take patches from (one is drawn
    per call); without them the patch comes from the sample's own background.
    """

    def __init__(self, p: float = 0.5, fill=(0.2, 0.3), sources: Sequence[np.ndarray] | None = None):
        self.p, self.fill, self.sources = p, fill, sources

    def __call__(self, image, mask, rng, ops: Ops | None = None):
        if rng.random() >= self.p or not mask.any():
            return image, mask
        source = self.sources[rng.integers(len(self.sources))] if self.sources else None
        image, mask, info = center_rep(image, mask, self.fill, source=source, rng=rng, return_info=True)
        patches = [
            {"patch": p["patch"], "fraction": round(p["achieved_fraction"], 4), "content": p["content"]} for p in info
        ]
        _log(ops, {"op": "center_rep", "patches": patches})
        return image, mask


def train_transform(
    size=None,
    centerrep: float = 0.0,
    rotation: float = 30,
    brightness_delta: float = 0.2,
    sources=None,
    fill=(0.2, 0.3),
    scale_jitter: Sequence[float] | None = None,
    resize_first: bool = False,
) -> Compose:
    """The training recipe: CenterRep with probability ``centerrep`` (if > 0), flips, 90-degree
    rotations, a small rotation and a brightness change (the paper's), then resize to ``size``;
    with ``scale_jitter`` ([low, high], not the paper's) a random rescale last.

    ``resize_first`` resizes before the other steps: on images larger than ``size`` these then
    work on fewer pixels (Bijie's 224 px at 160: half the time), and give other numbers."""
    steps: list[Callable] = [Resize(size)] if size and resize_first else []
    if centerrep > 0:
        steps.append(CenterRep(centerrep, fill=fill, sources=sources))
    steps += [RandomFlip(), RandomRotate90()]
    if rotation:
        steps.append(RandomRotation(rotation))
    if brightness_delta:
        steps.append(RandomBrightness(brightness_delta))
    if size and not resize_first:
        steps.append(Resize(size))
    if scale_jitter:
        steps.append(RandomScale(*scale_jitter))
    return Compose(steps)


def eval_transform(size=None) -> Compose | None:
    return Compose([Resize(size)]) if size else None
