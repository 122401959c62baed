"""Data: real datasets, large-scene tiling, the synthetic default and splits.

See ``data/README.md`` for how to obtain and prepare the real datasets.
"""

from .augment import (
    CenterRep,
    Compose,
    RandomBrightness,
    RandomFlip,
    RandomRotate90,
    RandomRotation,
    RandomScale,
    Resize,
    center_rep,
    eval_transform,
    train_transform,
)
from .base import DecodedCache, SampleDataset, to_item
from .checksums import TABLES_COPY, compare_checksums, write_checksums
from .combined import CombinedDataset
from .datasets import (
    BijieDataset,
    DatasetView,
    FolderDataset,
    SegmentationFiles,
    indices_of,
    is_bijie_layout,
    open_dataset,
)
from .expansion import PAPER_EXPANSION, ExpandedDataset, copy_group, expand_dataset, original_of, source_of
from .io import DataError, DataNotFoundError, read_image, read_mask
from .packed import PackedDataset, pack_dataset
from .prepare import DATASET_GSD_M, dataset_kind, prepare_dataset, safe_extract
from .splits import PAPER_SPLIT, fold_splits, load_splits, make_splits, save_splits
from .stats import sample_statistics, summarize_statistics
from .synthetic import SyntheticLandslides, synthetic_scene
from .tiles import SceneTiles, StitchedScenes, scene_of, tile_scene

__all__ = [
    "TABLES_COPY",
    "compare_checksums",
    "write_checksums",
    "SampleDataset",
    "DecodedCache",
    "CombinedDataset",
    "BijieDataset",
    "FolderDataset",
    "SegmentationFiles",
    "DatasetView",
    "SyntheticLandslides",
    "PackedDataset",
    "pack_dataset",
    "synthetic_scene",
    "DATASET_GSD_M",
    "DataError",
    "DataNotFoundError",
    "open_dataset",
    "is_bijie_layout",
    "indices_of",
    "read_image",
    "read_mask",
    "to_item",
    "tile_scene",
    "SceneTiles",
    "StitchedScenes",
    "make_splits",
    "fold_splits",
    "scene_of",
    "save_splits",
    "load_splits",
    "PAPER_SPLIT",
    "prepare_dataset",
    "dataset_kind",
    "safe_extract",
    "sample_statistics",
    "summarize_statistics",
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
    "PAPER_EXPANSION",
    "ExpandedDataset",
    "expand_dataset",
    "original_of",
    "copy_group",
    "source_of",
]
