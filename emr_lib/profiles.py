"""Training profiles in one place, read by the CLI, the pipeline and the notebooks.

- ``quick``: a CI smoke run, seconds to a couple of minutes on 2 CPU cores;
- ``workshop``: a real result on a CPU laptop in about 20 minutes (a small HRNet on
  Bijie at reduced size);
- ``paper``: the paper's recipe for a GPU (HRNet-W32 widths, 512 px, batch 4, 100
  epochs, SGD + Nesterov, lr 1e-3, warm-up + cosine, offline CenterRep expansion).

Every field can be overridden: ``get_config("workshop", epochs=5)`` or on the command
line ``--set epochs=5 model_options.width=32``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrainConfig", "PROFILES", "get_config", "apply_overrides", "parse_override"]


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
    size: int = 128  # images are resized to size x size (a multiple of 32)
    augment: bool = True  # flips, 90-degree rotations, small rotations, brightness
    centerrep: float = 0.0  # probability of online CenterRep per training sample
    offline_expansion: float = 0.0  # >0: expand the training split offline by this factor first
    # optimisation
    epochs: int = 10
    batch_size: int = 8
    optimizer: str = "sgd"  # "sgd" (momentum, Nesterov) or "adamw"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    flat_epochs: int = 0  # the last epochs stay at min_lr
    min_lr_ratio: float = 0.01
    loss: str = "ce"  # "ce" or "ce+dice"
    patience: int = 0  # early stopping on validation mIoU; 0 = off
    # machine
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA, MPS, CPU), or a torch device string
    amp: bool = True  # mixed precision, on CUDA only
    channels_last: bool = True  # on CUDA only
    num_workers: int = -1  # -1: sized to the machine
    deterministic: bool = True

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
        return self


PROFILES: dict[str, dict[str, Any]] = {
    "quick": dict(
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
    "workshop": dict(
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
    "paper": dict(
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
        flat_epochs=15,
        min_lr_ratio=0.01,
        patience=20,
        augment=False,  # the offline expansion holds the augmented copies
        offline_expansion=5720 / 770,
    ),
}


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


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """Set fields (``model_options.width`` reaches into the dict) and check names and types."""
    names = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for key, value in overrides.items():
        if key.startswith("model_options."):
            config.model_options = {**config.model_options, key.split(".", 1)[1]: value}
            continue
        if key not in names:
            close = [n for n in names if n.split("_")[0] == key.split("_")[0]]
            hint = f"; did you mean {close}?" if close else ""
            raise ValueError(f"unknown setting {key!r}{hint} Settings: {sorted(names)}")
        current = getattr(config, key)
        if isinstance(current, bool) and not isinstance(value, bool):
            raise ValueError(f"setting {key} takes true or false, got {value!r}")
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(current, int) and not isinstance(current, bool) and isinstance(value, float):
            if value != int(value):
                raise ValueError(f"setting {key} takes an integer, got {value!r}")
            value = int(value)
        setattr(config, key, value)
    return config


def get_config(profile: str = "quick", **overrides) -> TrainConfig:
    """The named profile's configuration with ``overrides`` applied."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {list(PROFILES)}")
    config = TrainConfig(profile=profile, **PROFILES[profile])
    return apply_overrides(config, overrides).validate()
