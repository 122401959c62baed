"""Checkpoints: one format, atomic writes, safe loading.

A checkpoint is a dict of tensors and plain metadata, tagged ``"format":
"emr_lib.checkpoint/1"`` and readable with ``torch.load(weights_only=True)``, so loading
one never runs code. It holds the model's name, options and weights, the optimiser and
scaler state, the epoch, the best validation mIoU so far, the history and the run's
configuration: everything :func:`emr_lib.training.loop.train` needs to resume, and everything
:func:`model_from_checkpoint` needs to rebuild the model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..models import build_model, explicit_options
from .profiles import TrainConfig

if TYPE_CHECKING:  # the annotation only: run_data sits above this module
    from .run_data import RunDatasets

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "atomic_save",
    "atomic_write",
    "load_checkpoint",
    "model_from_checkpoint",
    "build_run_model",
    "weights_digest",
    "TrainState",
    "resume_state",
    "training_checkpoint",
]

CHECKPOINT_FORMAT = "emr_lib.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or from another model."""


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a killed process never leaves half a file."""
    tmp = _temporary(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_write(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = _temporary(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint with ``weights_only=True``; errors say what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is corrupt, truncated or not an emr_lib checkpoint "
            f"({type(err).__name__}). Use best.pt or last.pt from a finished epoch."
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an emr_lib checkpoint (no '{CHECKPOINT_FORMAT}' format tag)")
    return state


def model_from_checkpoint(state: dict | str | Path, expected_model: str | None = None) -> nn.Module:
    """Rebuild the checkpoint's model (name and options are stored in it) and load its weights."""
    if not isinstance(state, dict):
        state = load_checkpoint(state)
    if expected_model is not None and state["model_name"] != expected_model:
        raise CheckpointError(
            f"the checkpoint holds a {state['model_name']!r} model, not {expected_model!r}; "
            "pass the matching --model or leave it out"
        )
    options = explicit_options(state["model_name"], state["model_options"], stored=True)
    model = build_model(state["model_name"], num_classes=state["num_classes"], **options)
    model.load_state_dict(state["model"])
    return model.eval()


def build_run_model(config: TrainConfig) -> nn.Module:
    """The run's model: from scratch, with ImageNet weights (``pretrained``), or a checkpoint's (``init``)."""
    model = build_model(config.model, config.num_classes, pretrained=config.pretrained, **config.model_options)
    if config.init:
        state = load_checkpoint(config.init)
        wanted = (config.model, json.loads(json.dumps(config.model_options)), config.num_classes)
        stored_options = explicit_options(state["model_name"], state["model_options"], stored=True)
        held = (state["model_name"], stored_options, state["num_classes"])
        if held != wanted:
            raise CheckpointError(
                f"{config.init} holds {held[0]!r} with options {held[1]} ({held[2]} classes), but this run trains "
                f"{wanted[0]!r} with {wanted[1]} ({wanted[2]} classes): fine-tune the checkpoint's own model "
                f"(--model {held[0]} and the same options) or start from another checkpoint"
            )
        model.load_state_dict(state["model"])
    return model


def weights_digest(path: str | Path) -> str:
    """sha256 over a checkpoint's model weights (names, shapes, values): what a fine-tuning run
    started from, whatever the file's path or its other contents (a packed ``best.pt`` without
    the optimiser's state has the same digest as the original)."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(load_checkpoint(path)["model"].items()):
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# --- a training run's state, as last.pt carries it ----------------------------------------------


@dataclass
class TrainState:
    """What a run carries from epoch to epoch (and in ``last.pt``, to resume)."""

    history: list[dict] = field(default_factory=list)
    epoch: int = 0  # epochs finished
    best_miou: float = -1.0
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, val_miou: float) -> bool:
        """Count a finished epoch's validation mIoU; True when it is the best so far."""
        improved = val_miou > self.best_miou
        if improved:
            self.best_miou, self.best_epoch, self.bad_epochs = val_miou, self.epoch, 0
        else:
            self.bad_epochs += 1
        return improved


def resume_state(path: Path, config: TrainConfig, model: nn.Module, optimizer, scaler) -> TrainState:
    """Load ``last.pt`` into the model, optimiser and scaler; refuse a checkpoint of another model."""
    state = load_checkpoint(path)
    if state["model_name"] != config.model or state["model_options"] != config.model_options:
        raise CheckpointError(
            f"{path} was written for {state['model_name']} {state['model_options']}, "
            f"not {config.model} {config.model_options}; resume with the same settings or use a new --out"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    return TrainState(state["history"], state["epoch"], state["best_mIoU"], state["best_epoch"], state["bad_epochs"])


def training_checkpoint(
    config: TrainConfig, model, optimizer, scaler, state: TrainState, val_metrics, data: RunDatasets, versions
) -> dict:
    """What ``last.pt`` and ``best.pt`` hold after an epoch: weights, optimiser, progress and provenance."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model_name": config.model,
        "model_options": config.model_options,
        "num_classes": config.num_classes,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "epoch": state.epoch,
        "best_mIoU": state.best_miou,
        "best_epoch": state.best_epoch,
        "bad_epochs": state.bad_epochs,
        "metrics": val_metrics,
        "history": state.history,
        "config": config.to_dict(),
        "data": data.description,
        "data_fingerprint": data.fingerprint(),  # what the data is, wherever it lies (runs.plan_run)
        "model_gsd_m": data.model_gsd,
        "versions": versions,
    }
