"""Landslide segmentation datasets on disk, and views of them.

Every class here is a :class:`~emr_lib.data.base.SampleDataset`: ``names``, ``read(i)``
and items as dicts (``image`` float32 (3, H, W) in [0, 1], ``mask`` int64 (H, W),
``name``). The on-disk layouts are documented on :class:`BijieDataset` and
:class:`FolderDataset`; :func:`open_dataset` picks the class by layout.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .base import SampleDataset, Transform
from .io import DataError, list_images, read_image, read_mask
from .packed import PackedDataset
from .tiles import scene_of

__all__ = [
    "Sample",
    "SegmentationFiles",
    "BijieDataset",
    "FolderDataset",
    "DatasetView",
    "open_dataset",
    "is_bijie_layout",
    "indices_of",
]


@dataclass(frozen=True)
class Sample:
    name: str
    image: Path
    mask: Path | None  # None: an image known to hold no landslide (all-background mask)


class SegmentationFiles(SampleDataset):
    """Image/mask pairs on disk; the base of :class:`BijieDataset` and :class:`FolderDataset`."""

    def __init__(self, samples: list[Sample], transform: Transform | None = None, mask_threshold: int | None = None):
        self.samples = samples
        self.transform = transform
        self.mask_threshold = mask_threshold

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.samples]

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The untransformed image (H, W, 3) uint8 and mask (H, W) uint8 0/1 of sample ``index``."""
        sample = self.samples[index]
        image = read_image(sample.image)
        if sample.mask is None:
            return image, np.zeros(image.shape[:2], np.uint8)
        mask = read_mask(sample.mask, self.mask_threshold)
        if mask.shape != image.shape[:2]:
            raise DataError(
                f"image {sample.image} is {image.shape[1]}x{image.shape[0]} but its mask {sample.mask} is "
                f"{mask.shape[1]}x{mask.shape[0]} (width x height); they must be the same size"
            )
        return image, mask

    def sample_digest(self, index: int) -> bytes:
        """sha256 of the sample's files (image, then mask if it has one), without decoding them."""
        sample = self.samples[index]
        digest = hashlib.sha256(sample.image.read_bytes())
        if sample.mask is not None:
            digest.update(sample.mask.read_bytes())
        return digest.digest()

    def validate(self, progress: bool = True) -> list[str]:
        """Read every pair once; return one message per problem (empty when all is well)."""
        problems = []
        for i in tqdm(range(len(self)), desc="checking", disable=not progress):
            try:
                self.read(i)
            except DataError as err:
                problems.append(str(err))
        return problems

    def keep(self, names: Iterable[str]) -> None:
        """Restrict this dataset to ``names`` (e.g. a split), in that order."""
        self.samples = [self.samples[i] for i in indices_of(self.names, names)]


def indices_of(available: Sequence[str], names: Iterable[str]) -> list[int]:
    """Positions of ``names`` in ``available``; a :class:`DataError` names what is missing.

    Splits are stored as sample names, so a split made for another dataset (or a dataset
    that lost files since) shows up here, before anything is trained.
    """
    index = {name: i for i, name in enumerate(available)}
    names = list(names)
    missing = [n for n in names if n not in index]
    if missing:
        raise DataError(
            f"{len(missing)} name(s) of the split are not in the dataset, e.g. {missing[:5]}; "
            "was the split made for another dataset? Make a new split for it with emr_lib.data.make_splits."
        )
    return [index[n] for n in names]


def _pair(images: dict[str, Path], masks: dict[str, Path], images_dir: Path, masks_dir: Path) -> list[Sample]:
    only_images = sorted(set(images) - set(masks))
    only_masks = sorted(set(masks) - set(images))
    if only_images or only_masks:
        parts = []
        if only_images:
            parts.append(
                f"{len(only_images)} image(s) in {images_dir} have no mask in {masks_dir}, "
                f"e.g. {images[only_images[0]].name}"
            )
        if only_masks:
            parts.append(
                f"{len(only_masks)} mask(s) in {masks_dir} have no image in {images_dir}, "
                f"e.g. {masks[only_masks[0]].name}"
            )
        raise DataError("; ".join(parts) + ". Images and masks are matched by file name without extension.")
    return [Sample(name, images[name], masks[name]) for name in sorted(images)]


class FolderDataset(SegmentationFiles):
    """Two folders of images and masks matched by file stem (Sichuan, Luding, your own data).

    Layout::

        images_dir/<name>.png|.jpg|.tif   RGB (or grey) images
        masks_dir/<name>.png              masks, same size: 0/1 or 0/255 single-channel,
                                          palette (index 1 = landslide) or RGB

    Args:
        names: keep only these samples (e.g. a split), in this order.
        mask_threshold: None (masks must hold 0/1/255) or a threshold for lossy masks.
    """

    def __init__(
        self,
        images_dir: str | Path,
        masks_dir: str | Path,
        transform: Transform | None = None,
        names: Iterable[str] | None = None,
        mask_threshold: int | None = None,
    ):
        images_dir, masks_dir = Path(images_dir), Path(masks_dir)
        samples = _pair(list_images(images_dir, "images"), list_images(masks_dir, "masks"), images_dir, masks_dir)
        super().__init__(samples, transform, mask_threshold)
        if names is not None:
            self.keep(names)


class BijieDataset(SegmentationFiles):
    """The Bijie landslide dataset (Ji et al. 2020) in its official folder layout.

    Layout (http://gpcv.whu.edu.cn/data/Bijie_pages.html)::

        root/landslide/image/<name>.png       landslide images (any size)
        root/landslide/mask/<name>.png        masks, same names: 0/255 (official) or 0/1
        root/non-landslide/image/<name>.png   images without landslides (all-background masks)
        root/landslide/dem, polygon_coordinate, non-landslide/dem   optional, not used

    Args:
        names: keep only these samples (e.g. a split), in this order.
        include_non_landslide: add the non-landslide images (default True).
    """

    def __init__(
        self,
        root: str | Path,
        names: Iterable[str] | None = None,
        include_non_landslide: bool = True,
        transform: Transform | None = None,
        mask_threshold: int | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"Bijie dataset folder not found: {self.root}. See data/README.md to download it.")
        if not (self.root / "landslide").is_dir():
            raise DataError(
                f"{self.root} is not in the Bijie layout: expected {self.root / 'landslide' / 'image'} "
                "and landslide/mask (see data/README.md)"
            )
        images_dir, masks_dir = self.root / "landslide" / "image", self.root / "landslide" / "mask"
        samples = _pair(
            list_images(images_dir, "landslide images"),
            list_images(masks_dir, "landslide masks"),
            images_dir,
            masks_dir,
        )
        self.num_landslide = len(samples)
        non_dir = self.root / "non-landslide" / "image"
        if include_non_landslide and non_dir.is_dir():
            landslide_names = {s.name for s in samples}
            for name, path in list_images(non_dir, "non-landslide images").items():
                if name in landslide_names:
                    raise DataError(f"{path} has the same name as a landslide image; names must be unique")
                samples.append(Sample(name, path, None))
        super().__init__(samples, transform, mask_threshold)
        if names is not None:
            self.keep(names)


class DatasetView(SampleDataset):
    """Samples ``names`` of any kit dataset (anything with ``read(i)`` and ``names``), with a transform.

    This is how splits are served: one base dataset, one view per split, each with its
    own transform (augmentation for training, resizing only for evaluation).
    """

    def __init__(self, base, names: Iterable[str], transform: Transform | None = None):
        self.names = list(names)
        self.base, self.indices, self.transform = base, indices_of(base.names, self.names), transform

    def sample_digest(self, index: int) -> bytes:
        return self.base.sample_digest(self.indices[index])

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.base.read(self.indices[index])


def is_bijie_layout(path: str | Path) -> bool:
    """Whether ``path`` is a dataset root in Bijie's official layout (``landslide/image/``)."""
    return (Path(path) / "landslide" / "image").is_dir()


def open_dataset(path: str | Path, include_non_landslide: bool = True, **options) -> SampleDataset:
    """Open a dataset by its layout: Bijie's official layout, an ``images/`` + ``masks/`` folder,
    or a ``.npz`` file written by ``emr_lib data pack``.

    ``include_non_landslide=False`` keeps only the landslide images in every layout: Bijie
    keeps them in their own folder, a prepared folder lists them in ``manifest.json``, a
    packed file marks them.
    """
    path = Path(path)
    if path.suffix == ".npz" and path.is_file():
        return PackedDataset(path, include_non_landslide=include_non_landslide, **options)
    if is_bijie_layout(path):
        return BijieDataset(path, include_non_landslide=include_non_landslide, **options)
    if (path / "images").is_dir() and (path / "masks").is_dir():
        manifest_path = path / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        if not include_non_landslide and "names" not in options:
            non_landslide = set(manifest.get("non_landslide", []))
            if non_landslide:
                listed = FolderDataset(path / "images", path / "masks").names
                options["names"] = [name for name in listed if name not in non_landslide]
        dataset = FolderDataset(path / "images", path / "masks", **options)
        if manifest.get("split_unit") == "scene":  # tiles of prepared scenes: split and resampled by scene
            dataset.group_of = scene_of
        return dataset
    raise DataError(
        f"{path} is neither in the Bijie layout (landslide/image, landslide/mask) nor an images/ + masks/ "
        "folder nor a packed .npz file. Prepare downloads with `python -m emr_lib data prepare` (see data/README.md)."
    )
