"""The paper's metrics (equations 4-9), computed from one confusion matrix.

Accumulate a single confusion matrix over the whole evaluation set (rows: truth,
columns: prediction), then:

- IoU per class = TP / (TP + FP + FN); ``mIoU`` = mean over classes;
- ``precision`` and ``recall`` are *macro* averages over the classes (background and
  landslide), as the paper's tables are;
- ``F1`` = 2 P R / (P + R) from those macro P and R (every row of the paper's Tables 2,
  3 and 5 satisfies this, e.g. 87.91 / 91.15 -> 89.50);
- ``accuracy`` = correctly classified pixels / all pixels.

Per-class values are returned too (``IoU_landslide``, ``precision_landslide``, ...).
All values are fractions in [0, 1].

Undefined values: a class that occurs in neither truth nor prediction has nothing to
measure; its per-class values are NaN and it is left out of every mean. For a class
that does occur, a zero denominator counts as 0 (e.g. a landslide class that is never
predicted has precision 0), so a mean never hides a failure and never becomes NaN.
"""

from __future__ import annotations

import math

import torch

__all__ = ["CLASS_NAMES", "PAPER_METRICS", "confusion_matrix", "segmentation_metrics", "format_metrics", "as_percent"]

CLASS_NAMES = ("background", "landslide")
PAPER_METRICS = ("mIoU", "precision", "recall", "accuracy", "F1")  # the columns of the paper's tables


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int = 2, ignore_index: int | None = None
) -> torch.Tensor:
    """Confusion matrix (num_classes x num_classes, int64) of class maps of any equal shape.

    ``pred`` may also be logits of shape (B, num_classes, H, W); they are arg-maxed.
    """
    if pred.dim() == target.dim() + 1:
        pred = pred.argmax(dim=1)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    keep = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        keep &= target != ignore_index
    index = target[keep] * num_classes + pred[keep].clamp(0, num_classes - 1)
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes).cpu()


def _ratio(numerator: float, denominator: float, present: bool) -> float:
    if not present:
        return math.nan
    return numerator / denominator if denominator > 0 else 0.0


def _mean(values: list[float]) -> float:
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else math.nan


def segmentation_metrics(cm: torch.Tensor, class_names: tuple[str, ...] = CLASS_NAMES) -> dict[str, float]:
    """``mIoU``, ``precision``, ``recall``, ``F1``, ``accuracy`` and per-class values from ``cm``."""
    cm = torch.as_tensor(cm, dtype=torch.float64)
    n = cm.shape[0]
    names = class_names if len(class_names) == n else tuple(f"class{i}" for i in range(n))
    tp = cm.diag()
    truth = cm.sum(dim=1)  # TP + FN
    predicted = cm.sum(dim=0)  # TP + FP
    metrics: dict[str, float] = {}
    iou, precision, recall = [], [], []
    for c, name in enumerate(names):
        present = bool(truth[c] > 0 or predicted[c] > 0)
        iou.append(_ratio(tp[c].item(), (truth[c] + predicted[c] - tp[c]).item(), present))
        precision.append(_ratio(tp[c].item(), predicted[c].item(), present))
        recall.append(_ratio(tp[c].item(), truth[c].item(), present))
        p, r = precision[-1], recall[-1]
        metrics[f"IoU_{name}"] = iou[-1]
        metrics[f"precision_{name}"] = p
        metrics[f"recall_{name}"] = r
        metrics[f"F1_{name}"] = math.nan if not present else (2 * p * r / (p + r) if p + r > 0 else 0.0)
    macro_p, macro_r = _mean(precision), _mean(recall)
    total = cm.sum().item()
    metrics.update(
        {
            "mIoU": _mean(iou),
            "precision": macro_p,
            "recall": macro_r,
            "F1": 2 * macro_p * macro_r / (macro_p + macro_r) if macro_p + macro_r > 0 else 0.0,
            "accuracy": tp.sum().item() / total if total > 0 else math.nan,
        }
    )
    return metrics


def format_metrics(metrics: dict[str, float], keys=("mIoU", "precision", "recall", "accuracy", "F1")) -> str:
    """``mIoU 81.70  precision 87.91 ...`` in percent, as the paper's tables print them."""
    return "  ".join(f"{k} {100 * metrics[k]:.2f}" for k in keys if k in metrics)


def as_percent(metrics: dict, keys: tuple[str, ...] = PAPER_METRICS) -> dict[str, float]:
    """``metrics``' ``keys`` (fractions) as percentages, as the paper's tables print them."""
    return {key: 100 * metrics[key] for key in keys}
