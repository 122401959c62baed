"""A run's data: one function turns a configuration into its train, val and test datasets.

>>> data = run_datasets(get_config("quick"))          # doctest: +SKIP
>>> data.test[0]["image"].shape                       # doctest: +SKIP

Training, ``python -m emr_lib evaluate`` and every notebook go through
:func:`run_datasets`, so the split a table reports on is the split the model was
selected and tested on. The base dataset is opened by layout (``config.data`` is a
folder, or ``"synthetic"`` for the embedded default); splits are made from the
configuration's ratios and seed, or read from ``config.split_dir``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import (
    DATASET_GSD_M,
    CombinedDataset,
    DataError,
    DatasetView,
    DecodedCache,
    FolderDataset,
    SampleDataset,
    SyntheticLandslides,
    dataset_kind,
    fold_splits,
    load_splits,
    make_splits,
    open_dataset,
    save_splits,
)
from ..data.augment import CenterRep, Compose, Resize, eval_transform, train_transform
from ..data.expansion import ExpandedDataset, copy_group, expand_dataset
from .profiles import TrainConfig
from .runtime import Distributed

__all__ = ["RunDatasets", "run_datasets", "open_base", "model_gsd", "cached_views", "scene_split", "shrink_notes"]

# a prepared image at least this many times the run's input side loses most of a small landslide's pixels
SHRINK_NOTE_FACTOR = 3

# decoded training and validation images kept in memory up to this size (TrainConfig.cache_images)
CACHE_LIMIT_BYTES = 2 * 1024**3


def data_parts(data: str) -> list[str]:
    """The datasets ``data`` names: one, or several separated by commas (trained as one)."""
    return [part.strip() for part in data.split(",") if part.strip()]


def _open_one(part: str, config: TrainConfig) -> SampleDataset:
    if part == "synthetic":
        return SyntheticLandslides(config.synthetic_n, size=config.synthetic_size, seed=0)
    path = Path(part).expanduser()
    if not path.exists():
        raise DataError(f"data folder not found: {path}. Pass --data PATH (see data/README.md) or 'synthetic'.")
    return open_dataset(path, include_non_landslide=config.include_non_landslide)


def scene_split(data: str) -> bool:
    """Whether a dataset ``data`` names holds tiles of scenes (a prepared Sichuan copy): its splits keep a
    scene whole, and its test results are resampled by scene (:func:`emr_lib.evaluation.uncertainty.by_unit`)."""
    parts = [Path(part).expanduser() for part in data_parts(data) if part != "synthetic"]
    return any(part.exists() and open_dataset(part).group_of is not None for part in parts)


def shrink_notes(config: TrainConfig) -> list[str]:
    """A note for each prepared dataset of ``config.data`` whose images (as its ``manifest.json`` says: the
    tile, else the resized size, else the largest original) are at least :data:`SHRINK_NOTE_FACTOR` times the
    run's input side: resized that much, a small landslide keeps few pixels, and another preparation helps."""
    notes = []
    for part in data_parts(config.data):
        manifest = Path(part).expanduser() / "manifest.json"
        if part == "synthetic" or not manifest.is_file():
            continue
        held = json.loads(manifest.read_text())
        side = (held.get("tiling") or {}).get("tile") or (held.get("resized") or {}).get("size")
        sizes = [int(n) for size in held.get("source_sizes") or {} for n in size.split("x")]
        side = side or max(sizes, default=0)
        if side >= SHRINK_NOTE_FACTOR * config.size:
            fix = "--size 480 --tile 160" if held.get("dataset") == "sichuan" else f"--size {config.size}"
            notes.append(
                f"note: {part} holds images of {side} px, resized to {config.size} px for this run "
                f"({side / config.size:.1f} times smaller a side: a small landslide keeps few pixels); "
                f"`python -m emr_lib data prepare {held.get('dataset', 'DATASET')} SRC DEST {fix}` prepares "
                "the workshop's input (data/README.md)"
            )
    return notes


def open_base(config: TrainConfig) -> tuple[SampleDataset, str]:
    """The configuration's whole dataset, and a description of it for records.

    Several datasets (``"A,B"``) are opened as one :class:`~emr_lib.data.CombinedDataset`,
    each part labelled by its folder name.
    """
    parts = data_parts(config.data)
    if len(parts) == 1:
        return _open_one(parts[0], config), "synthetic" if parts[0] == "synthetic" else str(Path(parts[0]))
    labels = [Path(part).name or part for part in parts]
    if len(set(labels)) < len(labels):
        raise DataError(f"the datasets {parts} share a folder name; give each part its own name")
    combined = CombinedDataset({label: _open_one(part, config) for label, part in zip(labels, parts)})
    return combined, " + ".join(parts)


def model_gsd(config: TrainConfig, base: SampleDataset | None = None) -> float | None:
    """Nominal metres per pixel of the images as the model sees them (resized to ``config.size``), or None.

    The dataset's ground pixel size (``config.gsd``, else the published value of a dataset the
    kit knows, e.g. Bijie's 0.8 m) times its images' median width over the training size:
    Bijie's 224-px copy trained at 160 px is seen at about 1.1 m per pixel. **Nominal**: the
    224-px copy was resized from images of many sizes without keeping their aspect ratio, so
    each image's true pixel size differs from it (rows and columns differently); the median
    width stands in for all of them.
    """
    parts = data_parts(config.data)
    gsd = config.gsd
    if gsd is None and len(parts) == 1:
        part = parts[0]
        kind = "synthetic" if part == "synthetic" else (dataset_kind(part) if Path(part).exists() else None)
        gsd = DATASET_GSD_M.get(kind)
    if gsd is None:
        return None
    base = base if base is not None else open_base(config)[0]
    widths = [base.read(i)[0].shape[1] for i in range(min(8, len(base)))]
    return gsd * float(np.median(widths)) / config.size


@dataclass
class RunDatasets:
    """The base dataset of a run, its split name lists, and a dataset per split."""

    config: TrainConfig
    base: SampleDataset
    splits: dict[str, list[str]]
    description: str

    @functools.cached_property
    def model_gsd(self) -> float | None:
        """Metres per pixel of the training images as the model sees them (see :func:`model_gsd`)."""
        return model_gsd(self.config, self.base)

    @property
    def test_split(self) -> str:
        """The part reported as the test set: ``test``, or ``val`` for a split without one."""
        return "test" if self.splits.get("test") else "val"

    def view(self, split: str) -> DatasetView:
        """Split ``split`` (or ``"all"``) resized for evaluation."""
        if split != "all" and split not in self.splits:
            raise DataError(f"split {split!r} not found; the data has {sorted(self.splits)}")
        names = self.base.names if split == "all" else self.splits[split]
        return DatasetView(self.base, names, eval_transform(self.config.size))

    @property
    def val(self) -> DatasetView:
        return self.view("val")

    @property
    def test(self) -> DatasetView:
        return self.view(self.test_split)

    @property
    def parts(self) -> dict[str, int]:
        """Images of each combined dataset (empty for a single dataset)."""
        return {label: len(part) for label, part in getattr(self.base, "parts", {}).items()}

    @functools.cached_property
    def _fingerprint(self) -> str:
        return self.base.fingerprint(sorted({name for names in self.splits.values() for name in names}))

    def fingerprint(self) -> str:
        """sha256 over the names and content of every sample the splits name (the data actually read);
        computed once per run (it reads every file)."""
        return self._fingerprint

    def expansion(self, out_dir: str | Path) -> dict | None:
        """``{"copies", "centerrep_copies"}`` of the run's offline expansion (None without one)."""
        manifest = Path(out_dir) / "expanded" / "manifest.json"
        if self.config.offline_expansion <= 0 or not manifest.is_file():
            return None
        files = json.loads(manifest.read_text())["files"]
        copies = [f for f in files if f["ops"] or "__aug" in f["file"]]
        centerrep = [f for f in copies if any(op["op"] == "center_rep" for op in f["ops"])]
        return {"copies": len(copies), "centerrep_copies": len(centerrep)}

    def require(self, *keys: str) -> None:
        for key in keys:
            if not self.splits.get(key):
                raise DataError(f"the {key} split is empty; use more data or other split ratios")

    def train(
        self, out_dir: str | Path | None = None, dist: Distributed | None = None, augment_at_size: bool = False
    ) -> DatasetView:
        """The training split with the configuration's augmentation.

        ``augment_at_size`` resizes to ``config.size`` first and augments at that size (cheaper
        when the images are larger; other numbers than resizing last, so only with ``cpu_fast``).

        With ``offline_expansion`` the split is first expanded into ``out_dir/expanded``
        (once, by the main process; the others wait) and the expanded copies are served;
        ``centerrep`` then applies to the copies only (a row without CenterRep has none, a row
        with it has it once).
        """
        base, names = self.base, self.splits["train"]
        config, dist = self.config, dist or Distributed()
        if config.offline_expansion > 0:
            if out_dir is None:
                raise ValueError("an expanded training split needs out_dir to be written to")
            expanded = Path(out_dir) / "expanded"
            if dist.main and not (expanded / "manifest.json").is_file():
                # CenterRep goes into the copies (with config.centerrep), not again online below
                factor, p = config.offline_expansion, config.centerrep
                expand_dataset(base, names, expanded, factor=factor, centerrep_p=p, seed=config.split_seed)
            dist.barrier()
            base = FolderDataset(expanded / "images", expanded / "masks")
            names = base.names
            if not config.augment:
                return DatasetView(base, names, eval_transform(config.size))
        if config.augment:
            centerrep = 0.0 if config.split_after_expansion else config.centerrep  # the copies carry it
            transform = train_transform(
                config.size, centerrep, scale_jitter=config.scale_jitter, resize_first=augment_at_size
            )
        elif config.centerrep > 0 and not config.split_after_expansion:  # there, the copies carry it
            centerrep, resize = CenterRep(config.centerrep), Resize(config.size)
            transform = Compose([resize, centerrep] if augment_at_size else [centerrep, resize])
        else:
            transform = eval_transform(config.size)
        return DatasetView(base, names, transform)


def split_names(config: TrainConfig, names: list[str], group_of=None) -> dict[str, list[str]]:
    """One dataset's split for ``config``: by its ratios, or its fold (``split_folds``); scenes kept whole."""
    if config.split_folds:
        return fold_splits(names, config.split_folds, config.seed % config.split_folds, config.split_seed, group_of)
    return make_splits(names, config.split_ratios, seed=config.split_seed, group_of=group_of)


def run_datasets(config: TrainConfig, splits_out: str | Path | None = None) -> RunDatasets:
    """Open ``config.data`` and split it; with ``splits_out``, save the split files there."""
    base, description = open_base(config)
    if config.split_after_expansion:  # the leak, on purpose: copies first, then a split over them one by one
        factor, centerrep = config.split_after_expansion, config.centerrep
        base = ExpandedDataset(base, base.names, factor, centerrep, seed=config.split_seed)
        description += f", expanded x{factor:.2f} before the split"
    if config.split_dir:
        splits = load_splits(config.split_dir)
    elif config.split_after_expansion:  # copies dealt out one by one, scenes kept whole (copy_group)
        splits = make_splits(base.names, config.split_ratios, seed=config.split_seed, group_of=copy_group)
    elif isinstance(base, CombinedDataset):  # each part split on its own, with the same ratios
        splits = {}
        for label in base.parts:
            for key, names in split_names(config, base.part_names(label), base.part_group_of(label)).items():
                splits[key] = splits.get(key, []) + names
    else:
        splits = split_names(config, base.names, base.group_of)
    if splits_out is not None:
        save_splits(splits, splits_out)
    return RunDatasets(config, base, splits, description)


def _leading_resize(view: DatasetView) -> int | tuple | None:
    """The size a view's transform resizes to before anything else, if it does."""
    steps = getattr(view.transform, "transforms", None)
    return steps[0].size if steps and isinstance(steps[0], Resize) else None


def cached_views(views: list[DatasetView], progress: bool = True, limit_bytes: int = CACHE_LIMIT_BYTES) -> list:
    """The same views (names, transforms) served from one :class:`~emr_lib.data.DecodedCache` per
    base dataset, decoded now; the views unchanged (with a note) when the decoded samples would
    take more than ``limit_bytes``, as a large dataset of your own may.

    When every view of a base resizes to one size first (``cpu_fast``'s augmentation at the
    training size, and validation), that base is kept resized to it: the same numbers, as those
    first resizes then find their input at its size, and the resizing is done once."""
    wanted: dict[int, tuple] = {}
    for view in views:
        wanted.setdefault(id(view.base), (view.base, set(), set()))
        wanted[id(view.base)][1].update(view.indices)
        wanted[id(view.base)][2].add(_leading_resize(view))
    estimate = 0
    for base, indices, _ in wanted.values():
        image, mask = base.read(min(indices))
        estimate += len(indices) * (image.nbytes + mask.nbytes)
    if estimate > limit_bytes:
        print(f"not caching the decoded images: about {estimate / 2**30:.1f} GiB (limit {limit_bytes / 2**30:.1f})")
        return views
    caches = {}
    for key, (base, indices, sizes) in wanted.items():
        caches[key] = DecodedCache(base, sizes.pop() if len(sizes) == 1 else None)
        caches[key].fill(indices, progress)
    return [DatasetView(caches[id(view.base)], view.names, view.transform) for view in views]
