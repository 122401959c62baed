"""Training profiles in one place, as data, read by the CLI, the pipeline and the notebooks.

- ``quick``: a CI smoke run, seconds to a couple of minutes on 2 CPU cores;
- ``workshop``: a real result on a CPU laptop in 10-25 minutes per model (a small HRNet
  on Bijie at reduced size);
- ``paper``: the paper's recipe for a GPU (HRNet-W32 widths, 512 px, batch 4, 100
  epochs, SGD + Nesterov, lr 1e-3, warm-up + cosine, offline CenterRep expansion).

A :class:`Profile` holds a profile's training settings (the fields of
:class:`TrainConfig` it changes) and what the pipeline and notebooks need to know about
it: the per-cell time limit, whether its figures are scratch (ignored by git), and how
many repetitions a speed measurement takes.

Every training field can be overridden: ``get_config("workshop", epochs=5)`` or on the
command line ``--set epochs=5 --set model_options.width=32``; each value is checked
against the field's type.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "TrainConfig",
    "RECIPE_FIELDS",
    "Profile",
    "PROFILES",
    "get_profile",
    "get_config",
    "apply_overrides",
    "parse_override",
]


# What notebook 04 shows of a configuration: the recipe, beside the paper's
RECIPE_FIELDS = (
    "model",
    "model_options",
    "data",
    "size",
    "batch_size",
    "epochs",
    "optimizer",
    "lr",
    "weight_decay",
    "warmup_epochs",
    "flat_epochs",
    "augment",
    "centerrep",
    "offline_expansion",
    "patience",
    "device",
)


@dataclass
class TrainConfig:
    profile: str = "custom"
    # model
    model: str = "emr_hrnet"
    model_options: dict[str, Any] = field(default_factory=dict)
    num_classes: int = 2
    # data
    data: str = "synthetic"  # a dataset folder, or "synthetic" for the embedded default
    synthetic_n: int = 200
    synthetic_size: int = 128
    include_non_landslide: bool = False  # the paper's Bijie runs use the 770 landslide images
    split_ratios: dict[str, float] = field(default_factory=lambda: {"train": 0.6, "val": 0.2, "test": 0.2})
    split_seed: int = 0
    split_dir: str | None = None  # read train/val/test.txt from here instead of making them
    # k > 0: instead of split_ratios, cut the scenes (or images) into k folds with split_seed; the run of
    # seed s tests fold s mod k, validates on the next and trains on the rest, so k seeds test every
    # scene once (data.fold_splits; with k = 5, 3:1:1 as the paper's 6:2:2). 0: split_ratios
    split_folds: int = 0
    # > 0: the split that the paper's ablation count (6524, the expanded images) may imply, made on purpose to
    # measure it, never a default: every image is expanded by this factor with the recipe (CenterRep at
    # `centerrep` in the copies) BEFORE the split, which is then drawn over originals and copies alike, so
    # copies of one image sit in training and test. 0: split first, expand the training part only
    split_after_expansion: float = 0.0
    size: int = 128  # images are resized to size x size (a multiple of 32)
    augment: bool = True  # flips, 90-degree rotations, small rotations, brightness
    centerrep: float = 0.0  # probability of online CenterRep per training sample
    offline_expansion: float = 0.0  # >0: expand the training split offline by this factor first
    # [low, high]: rescale each training image by a random factor in this range (then crop or pad),
    # so the model meets landslides at other scales; off in every profile (not in the paper's recipe)
    scale_jitter: list[float] | None = None
    # ground pixel size (m) of the dataset's images as stored; None: the dataset's published value
    # when the kit knows it (Bijie 0.8 m). Recorded with the model so `map` can match it.
    gsd: float | None = None
    # ImageNet weights for the backbone: False (from scratch), True (download) or a local file. The
    # reference implementation starts from ImageNet and freezes the backbone for the first half (50 of
    # 100 epochs); offline the kit cannot download, so every profile trains from scratch unless asked.
    pretrained: bool | str = False
    freeze_epochs: int = 0  # the backbone gets no updates in the first N epochs
    init: str | None = None  # start from this checkpoint's weights (same model and options): fine-tuning
    # optimisation
    epochs: int = 10
    batch_size: int = 8
    optimizer: str = "sgd"  # "sgd" (momentum, Nesterov) or "adamw"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    # the first warm-up epoch's rate as a share of lr, rising quadratically to 1: the paper profile's
    # 0.1 is the reference (0.1, 0.2, 0.5, 1.0 over 4 epochs); 1.0 keeps the rate flat, as the
    # workshop and quick profiles have always trained
    warmup_start: float = 1.0
    flat_epochs: int = 0  # the last epochs stay at min_lr
    min_lr_ratio: float = 0.01
    loss: str = "ce"  # "ce" or "ce+dice"
    patience: int = 0  # early stopping on validation mIoU (counted in validations); 0 = off
    # validate every N epochs and after the last one; 0: after the last only. Runs that report
    # their last epoch (a split without a test part) need no other validation: skipping it saves
    # the time of a pass over the held-out part per epoch (most of a few-shot run's time)
    val_every: int = 1
    # machine
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA, MPS, CPU), or a torch device string
    amp: bool = True  # mixed precision, on CUDA only
    channels_last: bool = True  # on CUDA only
    # on a CPU: channels_last memory and bf16 autocast for the training steps and validation (the
    # test evaluation stays fp32), a fused optimiser step, and augmentation at the training size
    # (resized first, and kept at that size by the image cache). Faster on a CPU with AVX-512,
    # but the numbers change, so it is off in every profile: the committed workshop tables are
    # what the profiles produce (README, "Faster CPU training").
    cpu_fast: bool = False
    # decode the training and validation images once and keep them in memory (up to 2 GiB):
    # the same numbers, a shorter epoch (see run_data.cached_views)
    cache_images: bool = True
    num_workers: int = -1  # -1: sized to the machine
    deterministic: bool = True

    def recipe(self, keys: tuple[str, ...] = RECIPE_FIELDS) -> dict:
        """The settings that make up a training recipe (model, data, size, optimiser, schedule, augmentation),
        to show beside the paper's."""
        return {key: getattr(self, key) for key in keys}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> TrainConfig:
        if self.size % 32:
            raise ValueError(f"size must be a multiple of 32, got {self.size}")
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}")
        if self.loss not in ("ce", "ce+dice"):
            raise ValueError(f"loss must be 'ce' or 'ce+dice', got {self.loss!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if self.split_after_expansion and (
            self.split_after_expansion < 1 or self.offline_expansion or self.split_folds
        ):
            raise ValueError(
                "split_after_expansion must be 0 or a factor of at least 1, and it excludes offline_expansion and "
                f"split_folds (got {self.split_after_expansion}, {self.offline_expansion}, {self.split_folds})"
            )
        if self.split_folds and self.split_folds < 3:
            raise ValueError(f"split_folds must be 0 (split_ratios) or at least 3, got {self.split_folds}")
        if self.val_every < 0:
            raise ValueError(f"val_every must be 0 (after the last epoch only) or more, got {self.val_every}")
        if not 0 <= self.freeze_epochs < self.epochs:
            raise ValueError(f"freeze_epochs must be 0 or more and fewer than epochs ({self.epochs})")
        if self.scale_jitter is not None and not (
            len(self.scale_jitter) == 2 and 0 < self.scale_jitter[0] <= self.scale_jitter[1]
        ):
            raise ValueError(f"scale_jitter must be [low, high] with 0 < low <= high, got {self.scale_jitter}")
        if self.gsd is not None and self.gsd <= 0:
            raise ValueError(f"gsd must be a positive number of metres per pixel, got {self.gsd}")
        if "pretrained" in self.model_options:
            raise ValueError("set pretrained (a training setting), not model_options.pretrained")
        return self


@dataclass(frozen=True)
class Profile:
    """A named profile: its training settings and how the pipeline and notebooks treat it."""

    name: str
    settings: dict[str, Any]  # TrainConfig fields that differ from the defaults
    cell_timeout_s: int  # per notebook cell in the pipeline, to catch a hung kernel
    scratch: bool = False  # figures ignored by git and indexed in their own folder
    speed_repeats: int = 5  # repetitions of a side-by-side speed measurement (notebook 07)
    description: str = ""


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        "quick",
        dict(
            model_options={"width": "18_small"},
            synthetic_n=128,
            synthetic_size=64,
            size=64,
            epochs=5,
            batch_size=8,
            optimizer="adamw",
            lr=2e-3,
            warmup_epochs=0,
            num_workers=0,
        ),
        cell_timeout_s=900,
        scratch=True,
        speed_repeats=2,
        description="CI smoke run, seconds to minutes on 2 CPU cores",
    ),
    "workshop": Profile(
        "workshop",
        dict(
            model_options={"width": "18_small"},
            synthetic_n=400,
            synthetic_size=128,
            size=160,
            epochs=40,
            batch_size=8,
            optimizer="adamw",
            lr=2e-3,
            weight_decay=1e-4,
            warmup_epochs=1,
            flat_epochs=0,
        ),
        # one cell of notebook 05 trains every model: about 6 h on a 2-core CPU (the VGG U-Nets 2 h each)
        cell_timeout_s=24 * 3600,
        speed_repeats=5,
        description="a real result on a CPU laptop, 10-25 min per model",
    ),
    "paper": Profile(
        "paper",
        dict(
            model_options={"width": 32},
            synthetic_n=1000,
            synthetic_size=512,
            size=512,
            epochs=100,
            batch_size=4,
            optimizer="sgd",
            lr=1e-3,
            momentum=0.9,
            nesterov=True,
            weight_decay=1e-4,
            warmup_epochs=3,
            warmup_start=0.1,
            flat_epochs=15,
            min_lr_ratio=0.01,
            patience=20,
            augment=False,  # the offline expansion holds the augmented copies
            offline_expansion=5720 / 770,
            centerrep=0.5,  # in the expansion's copies (the paper's EMR-HRNet); Table 4 sets it per row
        ),
        cell_timeout_s=7 * 24 * 3600,  # tens of GPU hours for notebook 05's cell
        speed_repeats=10,
        description="the paper's recipe, for GPUs",
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {list(PROFILES)}")
    return PROFILES[name]


def parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> (key, value); the value is read as JSON when it parses, else a string."""
    if "=" not in text:
        raise ValueError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


_FIELD_TYPES = typing.get_type_hints(TrainConfig)
_TYPE_WORDS = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    dict: "a JSON object",
    list: "a JSON list",
}


def _check_type(key: str, value: Any, wanted) -> Any:
    """``value`` as field ``key`` stores it, or a ValueError saying what the field takes."""
    options = typing.get_args(wanted) if isinstance(wanted, types.UnionType) else (wanted,)
    options = tuple(typing.get_origin(o) or o for o in options)  # dict[str, float] -> dict
    if value is None and type(None) in options:
        return value
    if bool in options:
        if isinstance(value, bool):
            return value
    elif float in options and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif int in options and isinstance(value, (int, float)) and not isinstance(value, bool):
        if value == int(value):
            return int(value)
    elif any(isinstance(value, o) for o in options if o is not type(None)):
        return value
    words = " or ".join(_TYPE_WORDS.get(o, "null") for o in options)
    raise ValueError(f"setting {key} takes {words}, got {value!r}")


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """Set fields (``model_options.width`` reaches into the dict), checking names and types."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    for key, value in overrides.items():
        if key.startswith("model_options."):
            config.model_options = {**config.model_options, key.split(".", 1)[1]: value}
            continue
        if key not in names:
            close = [n for n in names if n.split("_")[0] == key.split("_")[0]]
            hint = f"; did you mean {sorted(close)}?" if close else ""
            raise ValueError(f"unknown setting {key!r}{hint} Settings: {sorted(names)}")
        setattr(config, key, _check_type(key, value, _FIELD_TYPES[key]))
    return config


def get_config(profile: str = "quick", **overrides) -> TrainConfig:
    """The named profile's configuration with ``overrides`` applied.

    Model options whose default changed are spelled out (``models.explicit_options``), so a
    run made before such a change is not taken for one of the model as it is now.
    """
    from ..models import explicit_options  # models import torch and timm: only when a config is made

    config = apply_overrides(TrainConfig(profile=profile, **get_profile(profile).settings), overrides)
    config.model_options = explicit_options(config.model, config.model_options)
    return config.validate()
