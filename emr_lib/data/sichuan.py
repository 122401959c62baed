"""The Sichuan and surrounding areas data (Zeng et al. 2021), the paper's Table 3 and half of Tables 4-5.

``python -m emr_lib data prepare sichuan SRC DEST`` reads either form of it:

- the official download (Science Data Bank, doi:10.11922/sciencedb.j00001.00222): ``landslide.zip``,
  1181 x 1181 TIF scenes with a label image each;
- a PNG copy with RGB masks, e.g. the 1024-px copy of 36 scenes with magenta labels.

Images and labels are paired by their number (``Landslide001.png`` with ``LandslideLabel001.png``).
Any label pixel that is not black is landslide; the manifest lists the colours found. Each scene can
be resized (``size``) and cut into tiles (``tile``) named ``<scene>_y<row>_x<col>``; the manifest
then says ``"split_unit": "scene"``, so every split and every bootstrap keeps a scene's tiles together.

The workshop's input, and why (``data/README.md``): each scene resized to 480 px (the paper resized
to 512) and cut into nine 160-px tiles, the workshop's training size, so the network sees a scene
at about the paper's scale instead of a 160-px thumbnail of it (where a 5 % landslide keeps 1,300
pixels instead of 11,500), and 36 scenes give 324 tiles.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .io import IMAGE_SUFFIXES, DataError, read_image
from .tiles import tile_scene

__all__ = ["SCENE_SPLIT_UNIT", "find_scene_pairs", "read_label", "write_scenes"]

SCENE_SPLIT_UNIT = "scene"
# words that mark a label file or folder; removed from a file name, what is left pairs it with its image
LABEL_WORDS = re.compile(r"(?i)(label|mask|_gt|gt_)")


def _pair_key(path: Path) -> str:
    return re.sub(r"[\W_]+", "", LABEL_WORDS.sub("", path.stem)).lower()


def _is_label(path: Path, root: Path) -> bool:
    return any(LABEL_WORDS.search(part) for part in path.relative_to(root).parts)


def find_scene_pairs(root: str | Path) -> list[tuple[str, Path, Path]]:
    """(scene name, image, label) of every scene under ``root``, sorted by name.

    A file is a label when its name or a folder above it says label or mask; it pairs with the
    image whose name is the same once those words are dropped (``LandslideLabel001`` ->
    ``Landslide001``). An image or label without its partner is an error naming the file.
    """
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    images = {_pair_key(p): p for p in files if not _is_label(p, root)}
    labels = {_pair_key(p): p for p in files if _is_label(p, root)}
    if not images or not labels:
        raise DataError(
            f"no image and label files found under {root}: expected the Sichuan download (landslide.zip: TIF "
            "images and labels) or a folder of images/ and masks/ (see data/README.md)"
        )
    for key in sorted(set(images) ^ set(labels)):
        lone = images.get(key) or labels[key]
        partner = "label" if key in images else "image"
        raise DataError(f"{lone} has no {partner} with the same number under {root}; add it or remove the file")
    return sorted((images[key].stem, images[key], labels[key]) for key in images)


def read_label(path: str | Path) -> tuple[np.ndarray, Counter]:
    """A label image as a 0/1 mask (any non-black pixel is landslide) and the count of each colour it holds."""
    path = Path(path)
    try:
        with Image.open(path) as picture:
            rgb = np.asarray(picture.convert("RGB"))
    except (OSError, SyntaxError) as err:
        raise DataError(f"cannot read label {path}: the file is corrupt or not an image ({err})") from err
    packed = rgb.reshape(-1, 3).astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)  # one int per colour
    codes, counts = np.unique(packed, return_counts=True)
    found = Counter({f"{c >> 16},{(c >> 8) & 255},{c & 255}": int(n) for c, n in zip(codes.tolist(), counts)})
    return rgb.any(axis=2).astype(np.uint8), found


def _resized(image: np.ndarray, mask: np.ndarray, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    if size is None or image.shape[:2] == (size, size):
        return image, mask
    image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
    return image, np.asarray(Image.fromarray(mask).resize((size, size), Image.Resampling.NEAREST))


def write_scenes(
    root: str | Path, dest: str | Path, size: int | None = None, tile: int | None = None, progress: bool = True
) -> dict:
    """Write every scene under ``root`` to ``dest/images`` and ``dest/masks`` (0/1 PNG), resized and tiled.

    Returns what the manifest records: scenes, tiles, label colours and the names written.
    """
    if tile is not None and (size is None or size % tile):
        raise DataError(f"--tile {tile} needs --size, a multiple of it (e.g. --size {3 * tile} --tile {tile})")
    dest = Path(dest)
    (dest / "images").mkdir(parents=True, exist_ok=True)
    (dest / "masks").mkdir(parents=True, exist_ok=True)
    pairs, colours, names, shares, sizes = find_scene_pairs(root), Counter(), [], {}, Counter()
    for scene, image_path, label_path in tqdm(pairs, desc="scenes", disable=not progress):
        image = read_image(image_path)
        mask, found = read_label(label_path)
        if mask.shape != image.shape[:2]:
            raise DataError(
                f"label {label_path} is {mask.shape[1]}x{mask.shape[0]} but its image {image_path} is "
                f"{image.shape[1]}x{image.shape[0]}; they must be the same size"
            )
        colours.update(found)
        sizes[f"{image.shape[1]}x{image.shape[0]}"] += 1
        image, mask = _resized(image, mask, size)
        shares[scene] = float(mask.mean())
        pieces = tile_scene(image, mask, tile=tile, max_nodata=1.0, name=scene) if tile else None
        for i, name in enumerate(pieces.names if pieces else [scene]):
            piece_image, piece_mask = pieces.read(i) if pieces else (image, mask)
            Image.fromarray(piece_image).save(dest / "images" / f"{name}.png")
            Image.fromarray(piece_mask).save(dest / "masks" / f"{name}.png")
            names.append(name)
    background = colours.pop("0,0,0", 0)
    return {
        "scenes": [scene for scene, _, _ in pairs],
        "names": names,
        "source_sizes": dict(sizes),
        "landslide_share": shares,
        "label_colours": {"background (0,0,0)": background, **dict(colours.most_common(10))},
        "label_colour_count": len(colours),
        "tiling": {"scene_size": size, "tile": tile, "tiles_per_scene": (size // tile) ** 2} if tile else None,
        "split_unit": SCENE_SPLIT_UNIT if tile else None,
    }
