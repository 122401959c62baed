"""Reading images and masks, with errors that name the file and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = [
    "DataError",
    "DataNotFoundError",
    "IMAGE_SUFFIXES",
    "resize_pair",
    "read_image",
    "read_mask",
    "list_images",
    "to_binary_mask",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

# Large orthophotos are legitimate input here, so lift PIL's decompression-bomb guard
# to 1 gigapixel (a 30000 x 30000 scene) instead of its 89-megapixel default.
Image.MAX_IMAGE_PIXELS = 1_000_000_000


class DataError(ValueError):
    """Input data is missing or malformed; the message names the file and what was expected."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A named dataset or scene folder does not exist or lacks its files."""


def list_images(folder: str | Path, what: str = "images") -> dict[str, Path]:
    """Image files of ``folder`` by file stem; errors name the folder when it is missing or empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{what} folder not found: {folder}. Check the path, or see data/README.md for the layout.")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            if path.stem in files:
                raise DataError(f"two {what} files share the name {path.stem!r} in {folder}: keep one")
            files[path.stem] = path
    if not files:
        raise DataError(f"{what} folder {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _open(path: Path, what: str) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
        return image
    except FileNotFoundError as err:
        raise DataError(f"{what} file not found: {path}") from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(
            f"cannot read {what} {path}: the file is corrupt or not an image ({err}). "
            "Replace it with a valid image or remove the pair."
        ) from err


def read_image(path: str | Path) -> np.ndarray:
    """An RGB image as a (H, W, 3) uint8 array (grey and palette images are converted)."""
    path = Path(path)
    image = _open(path, "image")
    if image.mode not in ("RGB", "L", "P", "RGBA", "I;16", "I", "F"):
        raise DataError(f"image {path} has unsupported mode {image.mode!r}; save it as 8-bit RGB")
    if image.mode in ("I;16", "I", "F"):
        raise DataError(f"image {path} is not 8-bit ({image.mode}); rescale it to 8-bit RGB first")
    return np.array(image.convert("RGB"))  # a writable copy


def to_binary_mask(values: np.ndarray, path: str | Path = "<array>", threshold: int | None = None) -> np.ndarray:
    """Mask values -> uint8 0/1.

    Default: values must be 0, 1 or 255 (the official Bijie masks use 0/255, prepared
    ones 0/1); any non-zero value is landslide. With ``threshold``, values above it
    are landslide and any value is accepted (for masks saved with JPEG artefacts).
    """
    if threshold is not None:
        return (values > threshold).astype(np.uint8)
    unexpected = np.setdiff1d(np.unique(values), [0, 1, 255])
    if unexpected.size:
        shown = ", ".join(str(v) for v in unexpected[:8])
        raise DataError(
            f"mask {path} has values other than 0/1/255 ({shown}{', ...' if unexpected.size > 8 else ''}). "
            "Masks must be binary; if they were saved lossily, pass mask_threshold=127."
        )
    return (values > 0).astype(np.uint8)


def read_mask(path: str | Path, threshold: int | None = None) -> np.ndarray:
    """A binary mask as a (H, W) uint8 array of 0 (background) and 1 (landslide).

    Single-channel and palette masks are read by value (palette index); RGB masks by
    their brightest channel, so white or any pure colour marks landslide.
    """
    path = Path(path)
    mask = _open(path, "mask")
    if mask.mode in ("RGB", "RGBA"):
        values = np.asarray(mask.convert("RGB")).max(axis=2)
    elif mask.mode in ("L", "P", "1"):
        values = np.asarray(mask).astype(np.uint8)
    elif mask.mode in ("I;16", "I"):
        values = np.asarray(mask)
    else:
        raise DataError(f"mask {path} has unsupported mode {mask.mode!r}; save it as a single-channel PNG")
    return to_binary_mask(values, path, threshold)


def resize_pair(image: np.ndarray, mask: np.ndarray, size) -> tuple[np.ndarray, np.ndarray]:
    """Image (bilinear) and mask (nearest, so it stays 0/1) resized together to ``size`` (int or (h, w))."""
    h, w = (size, size) if np.isscalar(size) else size
    if image.shape[:2] == (h, w):
        return image, mask
    image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
    return image, np.asarray(Image.fromarray(mask).resize((w, h), Image.NEAREST))
