"""Plots: sample grids, learning curves and prediction overlays (the paper's Figures 2, 10-12).

Overlay colours: true positives green, false positives red, false negatives blue.
Every function returns a matplotlib Figure; :func:`save_figure` writes it with a
provenance caption (profile, data, commit) so a figure always says where it came from.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Patch, Rectangle
from PIL import Image

# fmt: off
__all__ = [
    "overlay", "sample_grid", "plot_statistics", "plot_center_rep_steps", "plot_pairs", "plot_history",
    "plot_overlays", "plot_metric_comparison", "plot_scene", "plot_scale_curves", "plot_hrnet_shapes",
    "plot_receptive_fields", "plot_attention", "plot_maps", "plot_cost_by_part", "save_figure", "OVERLAY_COLOURS",
]
# fmt: on

OVERLAY_COLOURS = {"TP": (0, 200, 0), "FP": (230, 30, 30), "FN": (30, 110, 255)}


def _to_uint8_image(image) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        if image.dim() == 3 and image.shape[0] == 3:
            image = image.permute(1, 2, 0)
        image = image.numpy()
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(image * 255 if image.max() <= 1.0 else image, 0, 255).astype(np.uint8)
    return image


def _to_mask(mask) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    return np.asarray(mask).astype(bool)


def overlay(image, truth, pred=None, alpha: float = 0.5) -> np.ndarray:
    """An RGB (H, W, 3) uint8 image with the mask(s) drawn on it.

    With ``pred``: TP green, FP red, FN blue. Without: the truth in green.
    """
    out = _to_uint8_image(image).astype(np.float32)
    truth = _to_mask(truth)
    if pred is None:
        layers = {"TP": truth}
    else:
        pred = _to_mask(pred)
        layers = {"TP": truth & pred, "FP": pred & ~truth, "FN": truth & ~pred}
    for key, where in layers.items():
        out[where] = (1 - alpha) * out[where] + alpha * np.asarray(OVERLAY_COLOURS[key], np.float32)
    return out.astype(np.uint8)


def sample_grid(dataset, indices: Sequence[int], columns: int = 6, title: str | None = None):
    """Images with their landslide masks outlined, for a quick look at a dataset."""
    rows = int(np.ceil(len(indices) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, indices):
        image, mask = dataset.read(index)
        ax.imshow(image)
        if mask.any():
            ax.contour(mask, levels=[0.5], colors="yellow", linewidths=1.0)
        ax.set_title(f"{dataset.names[index]}\n{100 * mask.mean():.1f} % landslide", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_statistics(rows: Sequence[dict], title: str | None = None):
    """Histogram of landslide fractions and mean colours of landslide vs background pixels."""
    fractions = [100 * r["fraction"] for r in rows if r["fraction"] > 0]
    fig, (ax_hist, ax_colour) = plt.subplots(1, 2, figsize=(10, 3.3))
    ax_hist.hist(fractions, bins=30, color="tab:brown")
    ax_hist.set(xlabel="landslide share of the image (%)", ylabel="images", title="landslide size")
    for offset, label in ((-0.2, "landslide"), (0.2, "background")):
        means = [np.nanmean([r[f"{label}_{c}"] for r in rows]) for c in "RGB"]
        ax_colour.bar(
            np.arange(3) + offset,
            means,
            width=0.4,
            label=label,
            color="tab:brown" if label == "landslide" else "tab:green",
        )
    ax_colour.set_xticks(range(3), ["red", "green", "blue"])
    ax_colour.set(
        ylabel="mean value (0-255)", title="colour", ylim=(0, 300)
    )  # headroom: the legend sits above the bars
    ax_colour.set_yticks(range(0, 256, 50))
    ax_colour.legend(loc="upper center", ncol=2, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_center_rep_steps(image, mask, out_image, out_mask, info):
    """CenterRep's five steps on one sample: input, landslide pixels, box and centre, patch, result."""
    fig, axes = plt.subplots(1, 5, figsize=(15, 3.3))
    axes[0].imshow(image)
    axes[0].set_title("1. image and label")
    axes[0].contour(mask, levels=[0.5], colors="yellow")
    axes[1].imshow(mask, cmap="gray")
    axes[1].set_title("2. landslide pixels")
    axes[2].imshow(image)
    axes[3].imshow(image)
    for p in info:
        y0, x0, y1, x1 = p["bbox"]
        axes[2].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, color="yellow"))
        axes[2].plot(p["center"][1], p["center"][0], "r+", markersize=14)
        top, left, h, w = p["patch"]
        axes[3].add_patch(Rectangle((left - 0.5, top - 0.5), w, h, fill=False, color="red", linewidth=2))
        axes[3].text(left, top - 2, f"{100 * p['achieved_fraction']:.0f} % of box", color="red", fontsize=8)
    axes[2].set_title("3. bounding box, centre")
    axes[3].set_title("4. patch to cover")
    axes[4].imshow(out_image)
    axes[4].contour(out_mask, levels=[0.5], colors="yellow")
    axes[4].set_title("5. result and new label")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_pairs(pairs: Sequence[tuple], titles: tuple[str, str] = ("before", "after")):
    """Columns of (image, mask) pairs: row 1 the first of each pair, row 2 the second; masks outlined."""
    fig, axes = plt.subplots(2, len(pairs), figsize=(2.4 * len(pairs), 5), squeeze=False)
    for col, (first, second) in enumerate(pairs):
        for row, (image, mask) in enumerate((first, second)):
            axes[row, col].imshow(image)
            if np.asarray(mask).any():
                axes[row, col].contour(mask, levels=[0.5], colors="yellow", linewidths=1)
            axes[row, col].axis("off")
        axes[0, col].set_title(titles[0], fontsize=8)
        axes[1, col].set_title(titles[1], fontsize=8)
    fig.tight_layout()
    return fig


def plot_metric_comparison(rows: Sequence[dict], key: str = "mIoU", label: str = "model", units: str = "images"):
    """Our metric next to the paper's (``paper_<key>``) for each row, as a dot plot.

    One line per row (top to bottom in table order): a filled dot for this kit, an open
    diamond for the paper, joined so the gap reads at a glance. Dots, unlike bars, need no
    zero baseline, so the axis spans only the values and differences of a point stay
    visible. Rows without a paper value show only this kit's dot. Rows with ``<key>_low`` and
    ``<key>_high`` (:func:`emr_lib.experiments.tables.table_rows`) get that interval as whiskers around
    this kit's dot. The legend sits below the axes, where it cannot cover a row.
    """
    names = [r[label] for r in rows]
    ours = np.array([r[key] for r in rows], dtype=float)
    paper = np.array([r.get(f"paper_{key}", np.nan) for r in rows], dtype=float)
    low = np.array([r.get(f"{key}_low", np.nan) for r in rows], dtype=float)
    high = np.array([r.get(f"{key}_high", np.nan) for r in rows], dtype=float)
    y = np.arange(len(rows))[::-1]  # first row on top, as in the table
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.6))
    ax.hlines(y, np.fmin(ours, paper), np.fmax(ours, paper), color="0.75", zorder=1)
    if np.isfinite(low).any():
        whiskers = np.nan_to_num(np.stack([ours - low, high - ours]))  # rows without an interval: none drawn
        ax.errorbar(
            ours,
            y,
            xerr=whiskers,
            fmt="none",
            ecolor="tab:blue",
            elinewidth=1.2,
            capsize=3,
            zorder=2,
            label=f"95 % interval over the test {units}",
        )
    ax.scatter(ours, y, s=45, color="tab:blue", zorder=3, label="this kit")
    ax.scatter(paper, y, s=45, marker="D", facecolors="white", edgecolors="tab:orange", zorder=2, label="paper")
    for value, row in zip(ours, y):
        ax.annotate(f"{value:.1f}", (value, row), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=7)
    values = np.concatenate([ours, paper[np.isfinite(paper)], low[np.isfinite(low)], high[np.isfinite(high)]])
    margin = max(1.0, 0.08 * (values.max() - values.min()))
    ax.set_xlim(values.min() - margin, values.max() + margin)
    ax.set_yticks(y, names)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(f"{key} (%)")
    ax.grid(axis="x", color="0.92")
    # the legend in the bottom 0.5 in (save_figure writes its provenance line under the figure)
    height = fig.get_figheight()
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", bbox_to_anchor=(0.5, 0.12 / height),
               ncol=3, frameon=False, fontsize=8)  # fmt: skip
    fig.tight_layout(rect=(0, 0.5 / height, 1, 1))
    return fig


def plot_scene(image, truth, pred, max_side: int = 1200, title: str | None = None, windows=()):
    """A large scene and its prediction (TP/FP/FN), downsampled for display; ``windows``
    (tile windows with ``x``, ``y``, ``size``) are outlined in white."""
    step = max(1, int(np.ceil(max(np.asarray(truth).shape) / max_side)))
    small = overlay(
        _to_uint8_image(image)[::step, ::step], _to_mask(truth)[::step, ::step], _to_mask(pred)[::step, ::step]
    )
    fig, ax = plt.subplots(figsize=(8, 8 * small.shape[0] / small.shape[1]))
    ax.imshow(small)
    for w in windows:
        ax.add_patch(
            Rectangle((w.x / step, w.y / step), w.size / step, w.size / step, fill=False, color="white", linewidth=0.6)
        )
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_scale_curves(curves: dict[str, Sequence[dict]], key: str = "mIoU", xlabel: str = "scale"):
    """``key`` (in %) against ``scale`` for each labelled curve, e.g. a model with and without
    scale jitter; a dashed line marks scale 1 (the training resolution)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, rows in curves.items():
        x = [row.get("scale", row.get("factor")) for row in rows]
        ax.plot(x, [100 * row[key] for row in rows], "o-", label=label)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=0.8)
    ax.set(xscale="log", xlabel=xlabel, ylabel=f"{key} (%)")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_hrnet_shapes(rows: Sequence[dict], title: str | None = None):
    """HRNetV2 as a grid: parts left to right, branches (finest on top) top to bottom, one box per
    tensor labelled C x H x W; grey lines join every branch of one part to every branch of the next
    (the cross-resolution fusion). ``rows`` as :func:`emr_lib.models.anatomy.stage_shapes` gives them."""
    parts = list(dict.fromkeys(row["part"] for row in rows))
    branches = max(row["branch"] for row in rows) + 1
    fig, ax = plt.subplots(figsize=(1.7 * len(parts) + 0.8, 1.1 * branches + 1.0))
    centres: dict[str, list[tuple[float, float]]] = {}
    largest = max(row["channels"] for row in rows)
    for column, part in enumerate(parts):
        for row in (r for r in rows if r["part"] == part):
            y = branches - 1 - row["branch"]
            side = 0.35 + 0.45 * np.sqrt(row["channels"] / largest)  # box width grows with channels
            ax.add_patch(Rectangle((column - side / 2, y - 0.3), side, 0.6, color=plt.cm.viridis(row["branch"] / 4)))
            label = f"{row['channels']}x{row['height']}x{row['width']}\n1/{row['stride']}"
            ax.text(column, y, label, ha="center", va="center", fontsize=7, color="white")
            centres.setdefault(part, []).append((column, y))
    for left, right in zip(parts, parts[1:]):
        for x0, y0 in centres[left]:
            for x1, y1 in centres[right]:
                ax.plot([x0 + 0.4, x1 - 0.4], [y0, y1], color="grey", linewidth=0.5, alpha=0.6, zorder=0)
    ax.set_xticks(range(len(parts)), parts)
    ax.set_yticks(range(branches), [f"branch {branches - i}" for i in range(branches)])
    ax.set(xlim=(-0.6, len(parts) - 0.4), ylim=(-0.6, branches - 0.4))
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_receptive_fields(maps: dict[str, tuple[np.ndarray, int]], zoom: int = 8):
    """Effective receptive fields side by side: each map (peak 1) on a log colour scale, cropped to
    ``zoom`` pixels around the centre, with a square marking the measured radius."""
    from matplotlib.colors import LogNorm

    fig, axes = plt.subplots(1, len(maps), figsize=(3.4 * len(maps), 3.4), squeeze=False)
    for ax, (label, (erf, radius)) in zip(axes[0], maps.items()):
        cy, cx = erf.shape[0] // 2, erf.shape[1] // 2
        crop = erf[cy - zoom : cy + zoom + 1, cx - zoom : cx + zoom + 1]
        image = ax.imshow(np.clip(crop, 1e-4, 1), norm=LogNorm(1e-4, 1), cmap="magma")
        ax.add_patch(
            Rectangle(
                (zoom - radius - 0.5, zoom - radius - 0.5),
                2 * radius + 1,
                2 * radius + 1,
                fill=False,
                edgecolor="cyan",
                linewidth=1.5,
            )
        )
        ax.set_title(f"{label}: radius {radius} px", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="|gradient| / peak")
    return fig


def plot_maps(maps: dict[str, np.ndarray], image=None, title: str | None = None):
    """A row of labelled (H, W) maps, each with its own colour scale, after the input image if given."""
    panels = ([("input", None)] if image is not None else []) + list(maps.items())
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.8), squeeze=False)
    for ax, (label, values) in zip(axes[0], panels):
        ax.imshow(_to_uint8_image(image) if values is None else values, cmap=None if values is None else "viridis")
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_attention(attention: np.ndarray, title: str | None = None):
    """One head's channel-to-channel attention matrix (rows: the channel being rebuilt)."""
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    image = ax.imshow(attention, cmap="viridis")
    ax.set(xlabel="key channel", ylabel="query channel")
    fig.colorbar(image, ax=ax, label="weight")
    if title:  # over the whole figure, so the colour bar cannot clip it
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_cost_by_part(costs: dict[str, Sequence[dict]], title: str | None = None):
    """Parameters (M) and FLOPs (G) per part, one bar per model.

    ``costs`` maps a model to the rows of :func:`emr_lib.experiments.efficiency.cost_by_part`.
    """
    longest_first = sorted(costs.values(), key=len, reverse=True)  # the fullest model sets the order
    parts = list(dict.fromkeys(row["part"] for rows in longest_first for row in rows))
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.25 * len(parts) * len(costs) + 1.4), sharey=True)
    height = 0.8 / len(costs)
    for i, (model, rows) in enumerate(costs.items()):
        by_part = {row["part"]: row for row in rows}
        y = np.arange(len(parts)) + i * height
        for ax, key, scale in ((axes[0], "params", 1e6), (axes[1], "flops", 1e9)):
            ax.barh(y, [by_part.get(p, {}).get(key, 0) / scale for p in parts], height, label=model)
    axes[0].set_yticks(np.arange(len(parts)) + height * (len(costs) - 1) / 2, parts)
    axes[0].invert_yaxis()
    axes[0].set(xlabel="parameters (M)")
    axes[1].set(xlabel="FLOPs (G, torch counter)")
    axes[1].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history: Sequence[dict], title: str | None = None):
    """Training/validation loss, validation mIoU and F1, and the learning rate per epoch (validation
    only where the run validated, see ``val_every``)."""
    epochs = [h["epoch"] for h in history]
    validated = [h for h in history if h.get("val_loss") is not None]
    fig, (ax_loss, ax_metric, ax_lr) = plt.subplots(1, 3, figsize=(13, 3.4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax_loss.plot([h["epoch"] for h in validated], [h["val_loss"] for h in validated], "o-", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_loss.legend()
    for key in ("val_mIoU", "val_F1", "val_IoU_landslide"):
        values = [100 * h[key] for h in validated]
        ax_metric.plot([h["epoch"] for h in validated], values, "o-", label=key.removeprefix("val_"))
    ax_metric.set(xlabel="epoch", ylabel="%", title="validation metrics")
    ax_metric.legend()
    ax_lr.plot(epochs, [h["lr"] for h in history], "o-")
    ax_lr.set(xlabel="epoch", ylabel="learning rate", title="schedule", yscale="log")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_overlays(images, truths, predictions: dict[str, Sequence], names: Sequence[str] | None = None):
    """Rows of samples; columns image, truth, then each model's prediction as TP/FP/FN overlay."""
    columns = 2 + len(predictions)
    fig, axes = plt.subplots(len(images), columns, figsize=(2.4 * columns, 2.4 * len(images)), squeeze=False)
    for row, (image, truth) in enumerate(zip(images, truths)):
        axes[row, 0].imshow(_to_uint8_image(image))
        axes[row, 1].imshow(overlay(image, truth))
        for col, (model, preds) in enumerate(predictions.items(), start=2):
            axes[row, col].imshow(overlay(image, truth, preds[row]))
            if row == 0:
                axes[row, col].set_title(model, fontsize=9)
        if names is not None:
            axes[row, 0].set_ylabel(names[row], fontsize=8)
    axes[0, 0].set_title("image", fontsize=9)
    axes[0, 1].set_title("ground truth", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(color=np.asarray(c) / 255, label=k) for k, c in OVERLAY_COLOURS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def save_figure(fig, path: str | Path, provenance_text: str | None = None, dpi: int = 110) -> Path:
    """Save ``fig`` as a 256-colour PNG, with a small provenance caption at the bottom when given.

    The caption is a strip of its own under the figure, so no legend or label can overprint it.
    Figures of imagery (scenes, sample grids) are committed; as full-colour PNGs they reach
    1-2 MB each, as palette PNGs about a third of that, with no visible difference at this size.
    """

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    picture = Image.open(buffer).convert("RGB")
    if provenance_text:
        strip = plt.figure(figsize=(picture.width / dpi, 0.16), dpi=dpi)
        strip.text(0.05 / (picture.width / dpi), 0.5, provenance_text, fontsize=6, color="0.4", va="center")
        caption = io.BytesIO()
        strip.savefig(caption, format="png", dpi=dpi, facecolor="white")
        plt.close(strip)
        caption = Image.open(caption).convert("RGB")
        stacked = Image.new("RGB", (picture.width, picture.height + caption.height), "white")
        stacked.paste(picture, (0, 0))
        stacked.paste(caption, (0, picture.height))
        picture = stacked
    picture.quantize(256).save(path, optimize=True)
    return path
