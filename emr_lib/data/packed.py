"""A whole dataset in one small file: ``python -m emr_lib data pack``.

For a GPU machine that receives one upload, or a Colab session: every image resized to
one size and stored losslessly as WebP inside a single ``.npz`` (Bijie's 770 landslide
images at 224 px take about 42 MiB; a plain compressed array takes about 87), with the
masks as a compressed uint8 array. On disk::

    pack.npz
      names           (N,)      str     sample names
      image_bytes     (B,)      uint8   the N lossless WebP images, one after the other
      image_offsets   (N + 1,)  int64   where image i starts and ends in image_bytes
      masks           (N, S, S) uint8   0 = background, 1 = landslide
      landslide       (N,)      bool    False for Bijie's non-landslide images
      meta            ()        str     JSON: format, size, source, counts

:class:`PackedDataset` reads it back (it is a :class:`~emr_lib.data.base.SampleDataset`,
so training takes ``--data pack.npz`` like a folder).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .base import SampleDataset
from .io import DataError, resize_pair

__all__ = ["PACK_FORMAT", "PackedDataset", "pack_dataset"]

PACK_FORMAT = "emr_lib.pack/1"


def pack_dataset(
    dataset,
    dest: str | Path,
    size: int,
    source: str = "",
    kind: str | None = None,
    non_landslide=(),
    progress: bool = True,
) -> dict:
    """Write ``dataset`` (any kit dataset, untransformed) resized to ``size`` into ``dest`` (.npz).

    ``kind`` names the dataset (``bijie``, ``sichuan``, ...) for the paper table it is compared
    with; ``non_landslide`` names the images that training leaves out by default.
    """
    non_landslide = set(non_landslide)
    dest = Path(dest)
    if dest.suffix != ".npz":
        raise DataError(f"pack destination {dest} must end in .npz")
    names, chunks, offsets, masks, landslide = list(dataset.names), [], [0], [], []
    for i in tqdm(range(len(names)), desc=f"packing {dest.name}", disable=not progress):
        image, mask = resize_pair(*dataset.read(i), size)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="WEBP", lossless=True, quality=100, method=4)
        chunks.append(np.frombuffer(buffer.getvalue(), np.uint8))
        offsets.append(offsets[-1] + len(chunks[-1]))
        masks.append(mask.astype(np.uint8))
        landslide.append(names[i] not in non_landslide)
    meta = {"format": PACK_FORMAT, "dataset": kind, "size": size, "source": source, "count": len(names)}
    meta["landslide"] = sum(landslide)
    dest.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        dest,
        names=np.array(names),
        image_bytes=np.concatenate(chunks) if chunks else np.zeros(0, np.uint8),
        image_offsets=np.array(offsets, np.int64),
        masks=np.stack(masks) if masks else np.zeros((0, size, size), np.uint8),
        landslide=np.array(landslide, bool),
        meta=np.array(json.dumps(meta)),
    )
    return meta


class PackedDataset(SampleDataset):
    """The samples of a file written by :func:`pack_dataset` (all held in memory, images decoded on read).

    ``include_non_landslide=False`` leaves out the images packed as non-landslide, as training does.
    """

    def __init__(self, path: str | Path, include_non_landslide: bool = True, transform=None):
        self.path = Path(path)
        try:
            with np.load(self.path, allow_pickle=False) as pack:
                arrays = {key: pack[key] for key in pack.files}
        except (OSError, ValueError) as err:
            raise DataError(
                f"cannot read packed dataset {self.path}: {err}. Write it with `emr_lib data pack`."
            ) from err
        missing = {"names", "image_bytes", "image_offsets", "masks", "landslide", "meta"} - set(arrays)
        if missing:
            raise DataError(
                f"{self.path} is not a packed dataset (no {sorted(missing)}); write it with `emr_lib data pack`"
            )
        self.meta = json.loads(str(arrays["meta"]))
        keep = np.flatnonzero(arrays["landslide"] | include_non_landslide)
        self.names = [str(arrays["names"][i]) for i in keep]
        self._keep, self._bytes, self._offsets = keep, arrays["image_bytes"], arrays["image_offsets"]
        self._masks, self.transform = arrays["masks"], transform

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        i = self._keep[index]
        data = self._bytes[self._offsets[i] : self._offsets[i + 1]].tobytes()
        image = np.array(Image.open(io.BytesIO(data)).convert("RGB"))
        return image, self._masks[i].copy()
