"""The paper's offline expansion: the training split plus augmented copies, as a dataset.

The paper grew Bijie's 770 images to 5720 and Sichuan's 107 to 804 (about 7.4x) before
training. :class:`ExpandedDataset` does this for a training split with the kit's one
augmentation recipe (:func:`emr_lib.data.augment.train_transform`): every original, then
copies that the recipe augmented. Each copy is drawn from its own generator,
``(seed, original, copy)``, so any copy can be read alone and reads the same every time.
:func:`expand_dataset` writes it as ``images/`` + ``masks/`` with a ``manifest.json``
that records, for every file, its original and the parameters each transform drew.

Only the training split is expanded: make the split first, on the original images, so
no copy of a validation or test image can reach training.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .augment import Ops, fill_range, train_transform
from .base import SampleDataset
from .datasets import indices_of
from .tiles import scene_of

__all__ = ["PAPER_EXPANSION", "ExpandedDataset", "copy_group", "expand_dataset", "original_of", "source_of"]

# Bijie 770 -> 5720 and Sichuan 107 -> 804 images in the paper: about 7.4x.
PAPER_EXPANSION = 5720 / 770
COPY_SUFFIX = re.compile(r"__aug\d{2,}$")


def original_of(name: str) -> str:
    """The image an :class:`ExpandedDataset` name was copied from: ``<original>__augNN`` -> ``<original>``
    (an original's own name is returned as it is). Copies of one image are not independent test images."""
    return COPY_SUFFIX.sub("", name)


def source_of(name: str) -> str:
    """The scene an expanded name's image was cut from (a tile's copy counts with its scene, an untiled image is
    its own): the unit a bootstrap over a leaky split's test images resamples."""
    return scene_of(original_of(name))


def copy_group(name: str) -> str:
    """What a split drawn after the expansion deals out as one: copy NN of a whole scene (all its tiles'
    ``__augNN``), or of one image where it is no tile. Copies of one image then land on both sides, as in the
    paper's split of its expanded 6524 images, but a scene is not cut in pieces: the paper split whole images."""
    copy = COPY_SUFFIX.search(name)
    return source_of(name) + (copy.group() if copy else "")


class ExpandedDataset(SampleDataset):
    """``train_names`` of ``dataset`` and ``round(factor * n) - n`` augmented copies of them.

    Copies are spread evenly over the originals (a seeded choice decides which get one
    more). Names are ``<original>`` and ``<original>__augNN``. CenterRep (probability
    ``centerrep_p``) takes its patches from the split's non-landslide images when there
    are any, else from each image's own background.
    """

    def __init__(
        self,
        dataset,
        train_names: Sequence[str],
        factor: float = PAPER_EXPANSION,
        centerrep_p: float = 0.5,
        fill=(0.2, 0.3),
        seed: int = 0,
    ):
        self.dataset, self.train_names = dataset, list(train_names)
        self.positions = dict(zip(self.train_names, indices_of(dataset.names, self.train_names)))
        self.factor, self.centerrep_p, self.fill, self.seed = factor, centerrep_p, fill_range(fill), seed
        n = len(self.train_names)
        total = max(n, round(factor * n))
        copies = np.full(n, (total - n) // n)
        copies[np.random.default_rng(seed).permutation(n)[: (total - n) % n]] += 1
        # (original, its position in the split, copy number; 0 is the original itself)
        self.entries = [(name, i, j) for i, name in enumerate(self.train_names) for j in range(int(copies[i]) + 1)]
        self.names = [name if j == 0 else f"{name}__aug{j:02d}" for name, _, j in self.entries]  # see original_of
        self.operations: dict[str, Ops] = {}
        self._recipe = None

    def _transform(self):
        if self._recipe is None:  # reading every original to find patch sources is done once, when needed
            originals = (self.dataset.read(self.positions[name]) for name in self.train_names)
            sources = [image for image, mask in originals if not mask.any()]
            self._recipe = train_transform(size=None, centerrep=self.centerrep_p, fill=self.fill, sources=sources)
        return self._recipe

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        name, position, copy = self.entries[index]
        image, mask = self.dataset.read(self.positions[name])
        if copy == 0:
            self.operations[self.names[index]] = []
            return image, mask
        rng = np.random.default_rng([self.seed, position, copy])
        image, mask, ops = self._transform().apply(image, mask, rng)
        self.operations[self.names[index]] = ops
        return image, mask

    def manifest(self) -> dict:
        """Counts, settings and, per file, its original and the operations that made it."""
        for index, name in enumerate(self.names):
            if name not in self.operations:
                self.read(index)
        files = [
            {"file": f"{name}.png", "source": original, "ops": self.operations[name]}
            for name, (original, _, _) in zip(self.names, self.entries)
        ]
        return {
            "originals": len(self.train_names),
            "total": len(self.names),
            "factor": self.factor,
            "centerrep_p": self.centerrep_p,
            "fill": list(self.fill),
            "seed": self.seed,
            "files": files,
        }


def expand_dataset(
    dataset,
    train_names: Sequence[str],
    out_dir: str | Path,
    factor: float = PAPER_EXPANSION,
    centerrep_p: float = 0.5,
    fill=(0.2, 0.3),
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Write :class:`ExpandedDataset` to ``out_dir`` (``images/``, ``masks/``, ``manifest.json``).

    The split is checked before any folder is made, so a wrong split leaves nothing behind.
    Returns the manifest.
    """
    expanded = ExpandedDataset(dataset, train_names, factor, centerrep_p, fill, seed)
    out_dir = Path(out_dir)
    expanded.save(out_dir, progress=progress)
    manifest = expanded.manifest()
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
