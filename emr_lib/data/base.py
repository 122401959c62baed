"""The one base of every dataset in the kit: names, reading one sample, items, saving.

A dataset here is a ``torch.utils.data.Dataset`` with

- ``names``: the samples' names (file stems), in order;
- ``read(index)``: the untransformed image (H, W, 3) uint8 and mask (H, W) uint8 with
  0 = background and 1 = landslide;
- ``transform``: ``None`` or ``transform(image, mask) -> (image, mask)`` on those arrays
  (see :mod:`emr_lib.data.augment`).

From these :class:`SampleDataset` gives the rest: ``len``, items as dicts (``image``:
float32 (3, H, W) in [0, 1], no normalisation, as the paper scales by 1/255 only;
``mask``: int64 (H, W); ``name``) and :meth:`SampleDataset.save`, which writes the
``images/`` + ``masks/`` layout that :class:`~emr_lib.data.FolderDataset` reads back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .io import resize_pair

__all__ = ["Transform", "SampleDataset", "DecodedCache", "to_item"]

Transform = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def to_item(image: np.ndarray, mask: np.ndarray, name: str) -> dict:
    """NumPy image (H, W, 3) uint8 and mask (H, W) -> the item dict of every dataset here."""
    tensor = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float().div_(255.0)
    return {"image": tensor, "mask": torch.from_numpy(np.array(mask, copy=True)).long(), "name": name}


class SampleDataset(Dataset):
    """Base class: subclasses set ``names`` (attribute or property) and implement ``read``."""

    names: list[str]
    transform: Transform | None = None
    # name -> the unit a split keeps whole and a bootstrap resamples (the scene a tile was cut
    # from: :func:`emr_lib.data.tiles.scene_of`); None: every sample is its own unit
    group_of: Callable[[str], str] | None = None

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.names)

    def sample_digest(self, index: int) -> bytes:
        """sha256 of sample ``index``'s content (datasets on disk hash their files instead)."""
        image, mask = self.read(index)
        return hashlib.sha256(image.tobytes() + b"|" + mask.tobytes()).digest()

    def fingerprint(self, names=None) -> str:
        """sha256 over the sorted sample names (all, or ``names``) and each sample's digest."""
        index = {name: i for i, name in enumerate(self.names)}
        digest = hashlib.sha256()
        for name in sorted(index if names is None else names):
            digest.update(name.encode() + b"\0" + self.sample_digest(index[name]))
        return digest.hexdigest()

    def __getitem__(self, index: int) -> dict:
        image, mask = self.read(index)
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return to_item(image, mask, self.names[index])

    def save(self, folder: str | Path, progress: bool = True) -> Path:
        """Write ``images/<name>.png`` and ``masks/<name>.png`` (0/1) under ``folder``, untransformed."""
        folder = Path(folder)
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "masks").mkdir(parents=True, exist_ok=True)
        names = self.names
        for i in tqdm(range(len(names)), desc=f"writing {folder.name}", disable=not progress):
            image, mask = self.read(i)
            Image.fromarray(image).save(folder / "images" / f"{names[i]}.png")
            Image.fromarray(mask.astype(np.uint8)).save(folder / "masks" / f"{names[i]}.png")
        return folder


class DecodedCache(SampleDataset):
    """Another dataset's samples, decoded once and kept in memory (untransformed, or resized).

    Training reads every image once an epoch; decoding Bijie's PNGs took about a third of
    reading and augmenting them (0.7 of 2.1 s an epoch, benchmarks/bench_cpu_speedup.py), so
    keeping the decoded arrays saves that share and changes no number (the transforms, and
    their random draws, are the same). With ``size`` the samples are kept resized to it (as
    :func:`~emr_lib.data.io.resize_pair` does), for transforms that resize first: smaller, and
    that resize is done once. :meth:`fill` decodes ahead, in the main process, so DataLoader
    workers started later share the arrays instead of decoding them again. ``read`` returns
    copies: a transform may write into its input.
    """

    def __init__(self, dataset, size: int | None = None):
        self.dataset, self.names, self.size, self.samples = dataset, dataset.names, size, {}

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index not in self.samples:
            image, mask = self.dataset.read(index)
            self.samples[index] = resize_pair(image, mask, self.size) if self.size else (image, mask)
        image, mask = self.samples[index]
        return image.copy(), mask.copy()

    def sample_digest(self, index: int) -> bytes:
        return self.dataset.sample_digest(index)

    def fill(self, indices, progress: bool = True) -> None:
        """Decode samples ``indices`` now."""
        for index in tqdm(sorted(set(indices)), desc="decoding images into memory", leave=False, disable=not progress):
            self.read(index)
