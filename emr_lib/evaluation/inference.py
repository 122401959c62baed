"""Inference: dataset metrics, per-image metrics, batch prediction and whole-scene mapping.

Every function takes a trained model (see :func:`emr_lib.training.checkpoints.model_from_checkpoint`)
and works on CPU, one GPU, or, for :func:`evaluate`, every rank of a ``torchrun`` job.
Images are float tensors (3, H, W) in [0, 1], as every dataset of the kit serves them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from ..data import DatasetView
from ..data.augment import eval_transform
from ..data.tiles import tile_positions
from .metrics import confusion_matrix, segmentation_metrics

__all__ = ["evaluate", "per_image_confusion", "per_image_metrics", "predict", "predict_scene", "scale_curve"]


def _device_of(model: nn.Module, device) -> torch.device:
    return torch.device(device) if device else next(model.parameters()).device


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    num_classes: int = 2,
    progress: bool = True,
    amp: bool = False,
    dtype: torch.dtype | None = None,
) -> tuple[dict[str, float], torch.Tensor]:
    """Metrics over ``dataset`` from one accumulated confusion matrix, and that matrix.

    Under ``torch.distributed`` every rank evaluates its share of the samples and the
    confusion matrices are summed, so all ranks return the single-process result.
    Also returns the mean cross-entropy as ``loss``.
    """
    device = _device_of(model, device)
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    loader = DataLoader(Subset(dataset, list(range(rank, len(dataset), world))), batch_size=batch_size, shuffle=False)
    model.eval()
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    loss_sum = torch.zeros(2, dtype=torch.float64)
    for batch in tqdm(loader, desc="evaluating", leave=False, disable=not (progress and rank == 0)):
        images, masks = batch["image"].to(device), batch["mask"].to(device)
        # ``dtype``: the training's (Precision.dtype); None: autocast's default (fp16 on CUDA, bf16 on a CPU)
        with torch.autocast(device.type, dtype=dtype, enabled=amp and device.type in ("cuda", "cpu")):
            logits = model(images)
        loss_sum += torch.tensor([F.cross_entropy(logits.float(), masks, reduction="sum").item(), masks.numel()])
        cm += confusion_matrix(logits.argmax(1), masks, num_classes)
    if world > 1:
        cm, loss_sum = cm.to(device), loss_sum.to(device)
        dist.all_reduce(cm)
        dist.all_reduce(loss_sum)
        cm, loss_sum = cm.cpu(), loss_sum.cpu()
    metrics = segmentation_metrics(cm)
    metrics["loss"] = (loss_sum[0] / loss_sum[1].clamp(min=1)).item()
    return metrics, cm


@torch.no_grad()
def per_image_confusion(
    model: nn.Module, dataset, device: str | torch.device | None = None, batch_size: int = 8
) -> dict[str, list[list[int]]]:
    """The 2 x 2 confusion matrix of every image on its own, by name (rows truth, columns prediction).

    Summed, they give the dataset's matrix; kept apart, they let a bootstrap resample images.
    """
    device = _device_of(model, device)
    model.eval()
    result = {}
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        predictions = model(batch["image"].to(device)).argmax(1).cpu()
        for name, prediction, mask in zip(batch["name"], predictions, batch["mask"]):
            result[name] = confusion_matrix(prediction.unsqueeze(0), mask.unsqueeze(0)).tolist()
    return result


def per_image_metrics(model: nn.Module, dataset, device: str | torch.device | None = None) -> list[dict]:
    """Metrics of every image on its own (name, landslide IoU, mIoU, ...), e.g. to find failure cases."""
    matrices = per_image_confusion(model, dataset, device, batch_size=1)
    return [
        {"index": i, "name": name, **segmentation_metrics(torch.tensor(cm)), "confusion_matrix": cm}
        for i, (name, cm) in enumerate(matrices.items())
    ]


@torch.no_grad()
def predict(model: nn.Module, images, device: str | torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks (B, H, W) int64 and landslide probabilities (B, H, W) for images (B, 3, H, W) in [0, 1].

    A single (3, H, W) image or a list of them is accepted too.
    """
    if isinstance(images, (list, tuple)):
        images = torch.stack(list(images))
    if images.dim() == 3:
        images = images.unsqueeze(0)
    device = _device_of(model, device)
    model.eval()
    probs = model(images.to(device)).float().softmax(dim=1)
    return probs.argmax(dim=1).cpu(), probs[:, 1].cpu()


def _window_probabilities(model, image, windows, tile, input_size, device) -> np.ndarray:
    """Landslide probability (N, tile, tile) of the scene's ``windows`` (top-left corners)."""
    crops = torch.stack(
        [torch.from_numpy(image[y : y + tile, x : x + tile].copy()).permute(2, 0, 1) for y, x in windows]
    )
    crops = crops.float() / 255
    resized = bool(input_size and input_size != tile)
    if resized:
        crops = F.interpolate(crops, size=(input_size, input_size), mode="bilinear", align_corners=False)
    probs = model(crops.to(device)).float().softmax(dim=1)[:, 1:2]
    if resized:
        probs = F.interpolate(probs, size=(tile, tile), mode="bilinear", align_corners=False)
    return probs[:, 0].cpu().numpy()


@torch.no_grad()
def predict_scene(
    model: nn.Module,
    image: np.ndarray,
    tile: int = 512,
    overlap: int = 64,
    input_size: int | None = None,
    batch_size: int = 4,
    device: str | torch.device | None = None,
    nodata: int = 0,
    progress: bool = True,
) -> np.ndarray:
    """Landslide probability (H, W) float32 of a whole scene by overlapping sliding windows.

    Windows of ``tile`` pixels step by ``tile - overlap``; each is resized to
    ``input_size`` (default: ``tile``) for the model, and overlapping predictions are
    averaged. Windows that are entirely no-data are skipped, and no-data pixels (all
    channels equal to ``nodata``) get probability 0.
    """
    device = _device_of(model, device)
    model.eval()
    height, width = image.shape[:2]
    total = np.zeros((height, width), np.float32)
    weight = np.zeros((height, width), np.float32)
    step = tile - overlap
    windows = [(y, x) for y in tile_positions(height, tile, step) for x in tile_positions(width, tile, step)]
    windows = [(y, x) for y, x in windows if np.any(image[y : y + tile, x : x + tile] != nodata)]
    for start in tqdm(range(0, len(windows), batch_size), desc="scene", disable=not progress):
        chunk = windows[start : start + batch_size]
        for (y, x), prob in zip(chunk, _window_probabilities(model, image, chunk, tile, input_size, device)):
            total[y : y + tile, x : x + tile] += prob
            weight[y : y + tile, x : x + tile] += 1
    prob = np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)
    prob[np.all(image == nodata, axis=2)] = 0.0  # no-data pixels are never landslide
    return prob


@torch.no_grad()
def scale_curve(
    model: nn.Module,
    base,
    names: list[str],
    train_size: int,
    factors=(0.5, 0.75, 1.0, 1.25, 1.5, 2.0),
    batch_size: int = 8,
    device: str | torch.device | None = None,
) -> list[dict]:
    """Metrics of images ``names`` of ``base`` shown at ``factor`` x the training size, per factor.

    The same ground at other pixel sizes: how much a model depends on the scale it was trained
    at. Images are resized to round(factor x train_size) and padded with black to a multiple
    of 32 (the models' stride); the padding is left out of the metrics.
    """
    device = _device_of(model, device)
    model.eval()
    rows = []
    for factor in factors:
        size = max(8, round(train_size * factor))
        padded = -(-size // 32) * 32
        cm = torch.zeros(2, 2, dtype=torch.int64)
        for batch in DataLoader(DatasetView(base, names, eval_transform(size)), batch_size=batch_size):
            images = F.pad(batch["image"], (0, padded - size, 0, padded - size)).to(device)
            prediction = model(images)[:, :, :size, :size].argmax(1).cpu()
            cm += confusion_matrix(prediction, batch["mask"], 2)
        rows.append({"factor": factor, "size": size, "pixels": int(cm.sum()), **segmentation_metrics(cm)})
    return rows
