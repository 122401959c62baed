"""Per-sample statistics of a landslide dataset: how much landslide, how many, what colour."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage

__all__ = ["sample_statistics", "summarize_statistics"]


def sample_statistics(dataset, indices: Iterable[int] | None = None) -> list[dict]:
    """One dict per sample: landslide fraction, connected landslides, mean RGB of landslide and background."""
    rows = []
    for i in indices if indices is not None else range(len(dataset)):
        image, mask = dataset.read(i)
        landslide = mask.astype(bool)
        _, components = ndimage.label(landslide, structure=np.ones((3, 3), int))
        row = {
            "name": dataset.names[i],
            "fraction": float(landslide.mean()),
            "components": int(components),
            "height": image.shape[0],
            "width": image.shape[1],
        }
        for label, where in (("landslide", landslide), ("background", ~landslide)):
            colour = image[where].mean(axis=0) if where.any() else np.full(3, np.nan)
            row.update({f"{label}_{c}": float(v) for c, v in zip("RGB", colour)})
        rows.append(row)
    return rows


def summarize_statistics(rows: list[dict]) -> dict:
    """Dataset-level summary of :func:`sample_statistics` rows (fractions in percent)."""
    fractions = np.array([r["fraction"] for r in rows]) * 100
    with_landslide = fractions > 0
    components = np.array([r["components"] for r in rows])
    sizes = [f"{r['width']}x{r['height']}" for r in rows]
    return {
        "images": len(rows),
        "size_px": max(set(sizes), key=sizes.count),  # the most common width x height
        "with_landslide": int(with_landslide.sum()),
        "mean_fraction_%": float(fractions[with_landslide].mean()) if with_landslide.any() else 0.0,
        "median_fraction_%": float(np.median(fractions[with_landslide])) if with_landslide.any() else 0.0,
        "min_fraction_%": float(fractions[with_landslide].min()) if with_landslide.any() else 0.0,
        "max_fraction_%": float(fractions.max()),
        "mean_landslides_per_image": float(components[with_landslide].mean()) if with_landslide.any() else 0.0,
    }
