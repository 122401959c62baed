"""Preparing a real dataset you downloaded by hand: ``python -m emr_lib data prepare``.

The kit never downloads data. ``prepare`` takes the archive (``.zip``, ``.tar``,
``.tar.gz``, ``.tgz``) or folder you downloaded from the official page (see
``data/README.md``), extracts it safely, finds the dataset inside, checks its layout,
counts and files, and writes the kit's layout::

    DEST/images/<name>.png      RGB images (PNG)
    DEST/masks/<name>.png       0/1 masks, same names (all 0 for non-landslide images)
    DEST/manifest.json          dataset, source, counts and the sha256 of every file

which :class:`~emr_lib.data.FolderDataset` and :func:`~emr_lib.data.open_dataset` read. Sichuan's
scenes are paired, resized and tiled by :mod:`emr_lib.data.sichuan` (``--size``, ``--tile``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from .datasets import BijieDataset, FolderDataset, SegmentationFiles, is_bijie_layout
from .io import DataError
from .packed import PackedDataset
from .sichuan import write_scenes

__all__ = ["DATASETS", "DATASET_GSD_M", "safe_extract", "find_dataset", "prepare_dataset", "dataset_kind"]

# Official counts (Bijie: Ji et al. 2020; Sichuan: the 59 landslide scenes of landslide.zip, of the
# 107 hazard images the paper used with the debris flows; Luding: 230).
DATASETS = {
    "bijie": {"landslide": 770, "non_landslide": 2003},
    "sichuan": {"landslide": 59},
    "luding": {"landslide": 230},
}
# Ground pixel size in metres of each dataset's imagery as published. Bijie: TripleSat, 0.8 m
# (Ji et al. 2020). "synthetic" is nominal: the generator's scenes are drawn as if at 1 m.
DATASET_GSD_M = {"bijie": 0.8, "synthetic": 1.0}
IMAGE_DIR_NAMES = ("images", "image", "img", "imgs", "jpegimages")
MASK_DIR_NAMES = ("masks", "mask", "labels", "label", "gt", "annotations", "segmentationclass")


def _check_member(name: str, dest: Path) -> Path:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"archive member {name!r} has an absolute path; refusing to extract it")
    if ".." in path.parts:
        raise DataError(f"archive member {name!r} would escape the destination; refusing to extract it")
    target = (dest / path).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise DataError(f"archive member {name!r} would escape the destination; refusing to extract it")
    return target


def safe_extract(archive: str | Path, dest: str | Path) -> Path:
    """Extract a zip or tar archive into ``dest``, refusing any member that escapes it.

    Rejected: absolute paths, ``..`` components, symbolic and hard links, devices.
    Nothing is written unless every member passes.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                _check_member(info.filename, dest)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise DataError(f"archive member {info.filename!r} is a symbolic link; refusing to extract it")
            for info in members:
                zf.extract(info, dest)
        return dest
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _check_member(member.name, dest)
                if member.issym() or member.islnk():
                    raise DataError(f"archive member {member.name!r} is a link; refusing to extract it")
                if not (member.isfile() or member.isdir()):
                    raise DataError(f"archive member {member.name!r} is not a regular file; refusing to extract it")
            # the "data" filter (Python >= 3.11.4) re-checks the same rules inside tarfile
            options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            for member in members:
                tf.extract(member, dest, set_attrs=False, **options)
        return dest
    raise DataError(f"{archive} is not a zip or tar archive; pass the downloaded archive or its extracted folder")


def _find_dir(root: Path, names: tuple[str, ...], exclude: Path | None = None) -> Path | None:
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        for d in dirnames:
            path = Path(dirpath) / d
            if d.lower() in names and path != exclude and "non-landslide" not in path.parts:
                return path
    return None


def find_dataset(root: Path, kind: str) -> SegmentationFiles:
    """Locate the dataset inside an extracted download and open it."""
    if kind == "bijie":
        for dirpath, dirnames, _ in os.walk(root):
            if "landslide" in dirnames and is_bijie_layout(dirpath):
                return BijieDataset(dirpath)
        raise DataError(
            f"no Bijie layout (landslide/image, landslide/mask) found under {root}; "
            "is this the archive from http://gpcv.whu.edu.cn/data/Bijie_pages.html?"
        )
    images = _find_dir(root, IMAGE_DIR_NAMES)
    masks = _find_dir(root, MASK_DIR_NAMES)
    if images is None or masks is None:
        raise DataError(
            f"no images/ and masks/ (or labels/) folders found under {root}; "
            f"the {kind} download should hold one folder of images and one of masks (see data/README.md)"
        )
    return FolderDataset(images, masks)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# how ``prepare --size`` resizes, as the third-party 224-px Bijie copy behind the tables was made:
# every image to size x size, aspect ratio not kept
RESIZE = {"image_interpolation": "bilinear", "mask_interpolation": "nearest", "aspect_ratio_kept": False}


def _resize_in_place(dest: Path, names: list[str], size: int) -> None:
    """Resize every written image (bilinear) and mask (nearest) to ``size`` x ``size``."""
    from PIL import Image

    for name in names:
        for sub, resample in (("images", Image.Resampling.BILINEAR), ("masks", Image.Resampling.NEAREST)):
            path = dest / sub / f"{name}.png"
            if path.is_file():
                with Image.open(path) as picture:
                    resized = picture.resize((size, size), resample)
                resized.save(path)


def _finish(manifest: dict, dest: Path, names: list[str]) -> dict:
    """Add the sha256 of every written file and the ``data_fingerprint`` a run records; write the manifest."""
    written = [f"{sub}/{name}.png" for name in names for sub in ("images", "masks")]
    manifest["files"] = {relative: _sha256(dest / relative) for relative in written}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    from .datasets import open_dataset  # the images a run opens by default: its data_fingerprint

    manifest["data_fingerprint"] = open_dataset(dest, include_non_landslide=False).fingerprint()
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _prepare_scenes(kind: str, src: Path, dest: Path, size: int | None, tile: int | None, progress: bool) -> dict:
    """Sichuan: scenes paired by number, labels of any colour, resized and tiled (:mod:`.sichuan`)."""
    with tempfile.TemporaryDirectory(prefix="emr-prepare-") as tmp:
        root = src if src.is_dir() else safe_extract(src, Path(tmp) / "extracted")
        written = write_scenes(root, dest, size=size, tile=tile, progress=progress)
    scenes, expected = len(written["scenes"]), DATASETS[kind]
    notes = [f"landslide: {scenes} scenes, the official release has {expected['landslide']}"]
    notes = notes if scenes != expected["landslide"] else []
    manifest = {
        "dataset": kind,
        "source": str(src.resolve()),
        "source_sha256": _sha256(src) if src.is_file() else None,
        "counts": {"landslide": len(written["names"]), "non_landslide": 0},
        "official_counts": expected,
        "notes": notes,
        "non_landslide": [],
        "resized": {"size": size, **RESIZE} if size is not None else None,
        **{key: value for key, value in written.items() if key != "names"},
    }
    return _finish(manifest, dest, written["names"])


def prepare_dataset(
    kind: str,
    src: str | Path,
    dest: str | Path,
    progress: bool = True,
    size: int | None = None,
    tile: int | None = None,
) -> dict:
    """Validate a downloaded dataset (archive or folder) and write it in the kit's layout.

    ``size`` resizes every image and mask to ``size`` x ``size`` as the tables' Bijie copy was
    (:data:`RESIZE`: bilinear images, nearest masks, aspect ratio not kept); ``None`` keeps the
    original sizes. ``tile`` (Sichuan's scenes only) then cuts each scene into ``tile``-px tiles
    that every split keeps together. Returns the manifest (also written to ``dest/manifest.json``),
    which holds the ``data_fingerprint`` that a run on this copy records. Raises :class:`DataError`
    listing the problems when the download is not usable.
    """
    if size is not None and size < 32:
        raise DataError(f"--size must be at least 32 pixels, got {size}")
    if kind not in DATASETS:
        raise DataError(f"unknown dataset {kind!r}; choose one of {list(DATASETS)}")
    src, dest = Path(src), Path(dest)
    if not src.exists():
        raise DataError(f"source not found: {src}. Download the dataset first (see data/README.md).")
    if dest.exists() and any(dest.iterdir()):
        raise DataError(f"destination {dest} is not empty; choose a new folder")
    if kind == "sichuan":
        return _prepare_scenes(kind, src, dest, size, tile, progress)
    if tile is not None:
        raise DataError(f"--tile cuts Sichuan's large scenes; {kind}'s images are used whole (leave --tile out)")
    with tempfile.TemporaryDirectory(prefix="emr-prepare-") as tmp:
        root = src if src.is_dir() else safe_extract(src, Path(tmp) / "extracted")
        dataset = find_dataset(root, kind)
        problems = dataset.validate(progress=progress)
        if problems:
            shown = "\n  ".join(problems[:10])
            more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            raise DataError(f"{len(problems)} problem(s) in {src}:\n  {shown}{more}")
        counts = {
            "landslide": sum(s.mask is not None for s in dataset.samples),
            "non_landslide": sum(s.mask is None for s in dataset.samples),
        }
        expected = DATASETS[kind]
        notes = [
            f"{key}: {counts.get(key, 0)} images, the official release has {value}"
            for key, value in expected.items()
            if counts.get(key, 0) != value
        ]
        dataset.save(dest, progress=progress)
    if size is not None:
        _resize_in_place(dest, dataset.names, size)
    manifest = {
        "dataset": kind,
        "source": str(src.resolve()),
        "source_sha256": _sha256(src) if src.is_file() else None,
        "counts": counts,
        "official_counts": expected,
        "notes": notes,
        "non_landslide": [s.name for s in dataset.samples if s.mask is None],
        "resized": {"size": size, **RESIZE} if size is not None else None,
    }
    return _finish(manifest, dest, dataset.names)


def dataset_kind(path: str | Path) -> str | None:
    """Which of :data:`DATASETS` a folder holds, or None (the synthetic default, your own data).

    A folder written by :func:`prepare_dataset` names its dataset in ``manifest.json``;
    a folder in Bijie's official layout is Bijie.
    """
    path = Path(path)
    if path.suffix == ".npz" and path.is_file():  # a packed file names the dataset it was packed from
        kind = PackedDataset(path).meta.get("dataset")
        return kind if kind in DATASETS else None
    manifest = path / "manifest.json"
    if manifest.is_file():
        kind = json.loads(manifest.read_text()).get("dataset")
        return kind if kind in DATASETS else None
    return "bijie" if is_bijie_layout(path) else None
