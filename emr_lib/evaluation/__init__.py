"""Evaluation: the paper's metrics, inference on tiles and scenes, and intervals over images, scenes and seeds."""

from .inference import evaluate, per_image_confusion, per_image_metrics, predict, predict_scene, scale_curve
from .metrics import CLASS_NAMES, PAPER_METRICS, as_percent, confusion_matrix, format_metrics, segmentation_metrics
from .uncertainty import (
    CompareError,
    bootstrap_interval,
    by_unit,
    compare_runs,
    direction,
    paired_bootstrap,
    paired_differences,
    read_per_image,
    seed_bootstrap,
    seed_summary,
)

__all__ = [
    "CLASS_NAMES",
    "PAPER_METRICS",
    "as_percent",
    "confusion_matrix",
    "segmentation_metrics",
    "format_metrics",
    "evaluate",
    "per_image_confusion",
    "per_image_metrics",
    "predict",
    "predict_scene",
    "scale_curve",
    "seed_summary",
    "CompareError",
    "read_per_image",
    "bootstrap_interval",
    "paired_bootstrap",
    "compare_runs",
    "seed_bootstrap",
    "by_unit",
    "paired_differences",
    "direction",
]
