"""The paper's training recipe as three functions: the optimiser, the learning-rate schedule and the loss.

:func:`emr_lib.training.train` uses them; notebook 04 writes its training loop by hand with them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .profiles import TrainConfig

__all__ = ["make_optimizer", "lr_at", "segmentation_loss"]


def make_optimizer(model: nn.Module, config: TrainConfig, fused: bool = False) -> torch.optim.Optimizer:
    """SGD with momentum and Nesterov (the paper's) or AdamW, at ``config.lr``. ``fused``: one
    kernel over all parameters (cpu_fast: on a CPU, half the time of the per-tensor loop)."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
            fused=fused or None,
        )
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused or None)


def lr_at(epoch: int, config: TrainConfig) -> float:
    """Learning rate of (0-based) ``epoch``: quadratic warm-up from ``warmup_start``, cosine, flat tail.

    The hrnet-pytorch "cos" schedule the paper used, stepped per epoch: with 3 warm-up epochs
    from 10 % the first four train at 0.1, 0.2, 0.5 and 1.0 of the rate (set at each one's start).
    """
    base, low = config.lr, config.lr * config.min_lr_ratio
    warm, flat, total = config.warmup_epochs, config.flat_epochs, config.epochs
    if warm and epoch < warm:
        start = config.warmup_start * base
        return start + (base - start) * (epoch / warm) ** 2
    decay = max(1, total - warm - flat)
    if epoch >= total - flat:
        return low
    progress = min(1.0, (epoch - warm) / decay)
    return low + 0.5 * (base - low) * (1 + math.cos(math.pi * progress))


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Cross-entropy, plus soft Dice of the landslide class for ``"ce+dice"``."""
    loss = F.cross_entropy(logits, target)
    if kind == "ce+dice":
        prob = logits.float().softmax(dim=1)[:, 1]
        truth = (target == 1).float()
        dice = (2 * (prob * truth).sum() + 1) / (prob.sum() + truth.sum() + 1)
        loss = loss + (1 - dice)
    return loss
