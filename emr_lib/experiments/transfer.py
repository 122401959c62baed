"""Transfer to a new region, measured: ``python -m emr_lib transfer CHECKPOINT TARGET``.

For each number of labelled target tiles k (``shots``) and each seed, k tiles are drawn from the
target's training part and three models are tested on the target's held-out part (the same
images for all three):

- **zero_shot**: the source checkpoint as it is;
- **finetune**: the source checkpoint trained further on the k tiles with the fine-tuning recipe
  (``recipe``: learning rate, warm-up and frozen-backbone epochs);
- **scratch**: the same model trained from scratch on the same k tiles with the profile's recipe
  and the same number of epochs.

No extra labelled image chooses an epoch: each trained run reports its last epoch (its split has
a training part and the held-out part only, as the ablation's does), so the runs validate only
after their last epoch (``val_every=0``: a pass over the held-out part per epoch would be most of a
few-shot run's time). Every number comes with a
95 % bootstrap interval over the held-out images, and each pair (finetune - scratch,
finetune - zero_shot) with a paired one, since the images are shared; over several seeds, each k
also gets the mean difference over its draws with a two-level interval (seed ``all``, as
``table N --seeds``): the unit a recipe is judged at. The held-out part is the
target's own (names starting ``test_``, as in the Martian tiles) when it has one, else a seeded
20 % of its images; its training part is the rest (``val_`` images are not used). A scene with
its mask becomes such a target with :func:`scene_target`: half-overlapping ``train_`` tiles from
one half, ``test_`` tiles side by side from the other, so no held-out pixel is ever trained on.

Writes ``transfer.json`` (``{"results": [{"shots", "start", "seed", "mIoU", "IoU_landslide",
"ci_low", "ci_high"}, ...], "comparisons": [...]}``, percent), ``transfer.md`` and ``transfer.png``
into ``out``, and keeps every run under ``runs/k<k>-seed<s>/`` (``runs`` defaults to ``out``;
reused when run again): ``scratch`` and one ``finetune-<recipe>`` folder per recipe, so studies of
several recipes sharing one ``runs`` folder train the scratch runs once.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..data.splits import make_splits, save_splits
from ..data.tiles import HALVES, HELD_OUT
from ..evaluation.inference import per_image_confusion
from ..evaluation.metrics import segmentation_metrics
from ..evaluation.uncertainty import (
    bootstrap_interval,
    direction,
    false_positive_share,
    landslide_iou,
    landslide_precision,
    miou,
    paired_bootstrap,
    paired_statistic,
    seed_bootstrap,
)
from ..figures import table_markdown
from ..provenance import provenance
from ..training.checkpoints import load_checkpoint, model_from_checkpoint, weights_digest
from ..training.profiles import TrainConfig, get_config
from ..training.run_data import run_datasets
from ..training.runs import run_or_reuse

__all__ = [
    "FINETUNE_RECIPE",
    "compare_sources",
    "STARTS",
    "HALVES",
    "held_out_split",
    "recipe_folder",
    "scene_target",
    "transfer_study",
    "plot_transfer",
    "transfer_summary",
    "EPISODE_DRAWS",
]

# the fine-tuning recipe measured best on the UAV scene (benchmarks/results/transfer/): the
# workshop's rate with one warm-up epoch; the earlier recipe (lr 2e-4, no warm-up) never beat
# training from scratch there (figures/workshop/09_transfer.md at commit 635126e)
FINETUNE_RECIPE = {"lr": 2e-3, "warmup_epochs": 1, "freeze_epochs": 0}
# notebook 09's study by profile: (shots, seeds); the workshop's runs are made ahead and packed
EPISODE_DRAWS = {
    "quick": ((4, 16), (0,)),
    "workshop": ((8, 16, 32), (0, 1, 2)),
    "paper": ((8, 16, 32), (0, 1, 2)),
}
STARTS = ("zero_shot", "finetune", "scratch")
PAIRS = (("finetune", "scratch"), ("finetune", "zero_shot"))  # compared image by image (a - b)


def held_out_split(names: list[str], seed: int = 0) -> dict[str, list[str]]:
    """The target's training pool and held-out part: its own ``train_``/``test_`` parts when its
    names carry them (``test_`` alone: all held out, as ``scene_target(..., "all")`` writes), else a
    seeded 80:20 split."""
    if any(n.startswith("test_") for n in names):
        return {
            "train": [n for n in names if n.startswith("train_")],
            "val": [n for n in names if n.startswith("test_")],
        }
    return make_splits(names, {"train": 0.8, "val": 0.2}, seed=seed)


def scene_target(
    image: np.ndarray, mask: np.ndarray, dest: str | Path, tile: int, held_out: str = "bottom", scale: float = 1.0
) -> Path:
    """Tile a scene (H, W, 3) and its mask (H, W) into a transfer target under ``dest``
    (``images/`` + ``masks/``): ``train_`` tiles overlapping by half from one half of the scene,
    ``test_`` tiles side by side (the last flush with the edge) from the ``held_out`` half (bottom,
    top, left or right; ``all``: the whole scene as ``test_`` tiles, no training part, for
    :func:`compare_sources`). Tiles that are mostly no-data (black) are skipped, as ``data tile`` does.
    ``scale`` resamples the scene first (as ``map --scale``), so that ``tile``-pixel tiles at the
    training size show the ground at the scale the source model works best at."""
    from ..data.io import resize_pair
    from ..data.tiles import tile_scene

    if held_out not in HELD_OUT:
        raise ValueError(f"held_out must be one of {sorted(HELD_OUT)}, got {held_out!r}")
    if scale != 1.0:
        image, mask = resize_pair(image, mask, (round(mask.shape[0] * scale), round(mask.shape[1] * scale)))
    height, width = mask.shape
    for prefix, box, stride in zip(("train", "test"), HELD_OUT[held_out], (tile // 2, tile)):
        if box is None:
            continue
        region = (round(box[0] * width), round(box[1] * height), round(box[2] * width), round(box[3] * height))
        if min(region[2] - region[0], region[3] - region[1]) < tile:
            raise ValueError(f"tile {tile} px is larger than half the scene ({width} x {height} px)")
        tile_scene(image, mask, tile=tile, stride=stride, name=prefix, region=region).save(dest, progress=False)
    return Path(dest)


def full_recipe(recipe: dict | None = None) -> dict:
    """``recipe`` with what it leaves out taken from ``FINETUNE_RECIPE``."""
    return {**FINETUNE_RECIPE, **(recipe or {})}


def recipe_folder(recipe: dict) -> str:
    """The run folder of a fine-tuning recipe, e.g. ``finetune-lr0.0002-warmup_epochs0-freeze_epochs0``."""
    return "finetune-" + "-".join(f"{key}{value:g}" for key, value in sorted(recipe.items()))


def study_run_folders(shots, seeds, recipe: dict | None = None) -> list[str]:
    """The run folders of a study, relative to its ``runs`` folder (``k8-seed0/scratch``, ...)."""
    finetune = recipe_folder(full_recipe(recipe))
    return [f"k{k}-seed{seed}/{start}" for k in shots for seed in seeds for start in (finetune, "scratch")]


def _scores(per_image: dict[str, list]) -> dict:
    total = torch.tensor(np.array(list(per_image.values())).sum(0))
    metrics = segmentation_metrics(total)
    low, high = bootstrap_interval(per_image)
    return {
        "mIoU": 100 * metrics["mIoU"],
        "IoU_landslide": 100 * metrics["IoU_landslide"],
        "ci_low": low,
        "ci_high": high,
    }


def _source_config(checkpoint: Path, target: str, profile: str, overrides: dict) -> TrainConfig:
    state = load_checkpoint(checkpoint)
    config = get_config(profile, model=state["model_name"], data=target, num_classes=state["num_classes"], **overrides)
    config.model_options = dict(state["model_options"])
    return config


def transfer_study(
    checkpoint: str | Path,
    target: str,
    shots: list[int],
    seeds: list[int],
    out: str | Path,
    profile: str = "quick",
    recipe: dict | None = None,
    overrides: dict | None = None,
    progress: bool = True,
    runs: str | Path | None = None,
) -> dict:
    """Run (or reuse) the study described in the module docstring; return what ``transfer.json`` holds."""
    checkpoint, out, runs = Path(checkpoint), Path(out), Path(runs or out)
    recipe = full_recipe(recipe)
    base = _source_config(checkpoint, target, profile, {"val_every": 0, **(overrides or {})})
    names = run_datasets(base).base.names
    parts = held_out_split(sorted(names), base.split_seed)
    too_many = [k for k in shots if k > len(parts["train"])]
    if too_many:
        raise ValueError(f"shots {too_many}: the target's training part has only {len(parts['train'])} images")

    results, comparisons, kept = [], [], {}
    zero_shot = None
    for k in shots:
        for seed in seeds:
            folder = runs / f"k{k}-seed{seed}"
            drawn = sorted(np.random.default_rng(seed).choice(parts["train"], size=k, replace=False).tolist())
            save_splits({"train": drawn, "val": parts["val"]}, folder / "splits")
            scratch = replace(base, split_dir=str(folder / "splits"), seed=seed)
            finetune = replace(scratch, init=str(checkpoint), **recipe)
            per_image = {}
            for start, config, name in (("finetune", finetune, recipe_folder(recipe)), ("scratch", scratch, "scratch")):
                record = run_or_reuse(config, folder / name, "auto", progress=progress, compact=True)
                per_image[start] = record["test_per_image"]
            if zero_shot is None:  # the same held-out images every time: evaluated once
                model = model_from_checkpoint(checkpoint)
                zero_shot = per_image_confusion(model, run_datasets(scratch).val)
            per_image["zero_shot"] = zero_shot
            kept[k, seed] = per_image
            for start in STARTS:
                results.append({"shots": k, "start": start, "seed": seed, **_scores(per_image[start])})
            for a, b in PAIRS:
                pair = paired_bootstrap(per_image[a], per_image[b])
                comparisons.append(
                    {
                        "shots": k,
                        "seed": seed,
                        "a": a,
                        "b": b,
                        "mIoU_diff": pair["mIoU_diff"],
                        "ci_low": pair["ci_low"],
                        "ci_high": pair["ci_high"],
                        "direction": direction(pair["ci_low"], pair["ci_high"]),
                        "n_seeds": 1,
                    }
                )
    if len(seeds) > 1:  # each k over its draws: a two-level bootstrap (draws, then held-out images)
        for k in shots:
            for a, b in PAIRS:
                pooled = seed_bootstrap([(kept[k, seed][a], kept[k, seed][b]) for seed in seeds])
                keys = ("mIoU_diff", "ci_low", "ci_high", "direction", "n_seeds")
                comparisons.append({"shots": k, "seed": "all", "a": a, "b": b, **{key: pooled[key] for key in keys}})
    study = {
        "results": results,
        "comparisons": comparisons,
        "settings": {
            "checkpoint": checkpoint.name,
            "target": Path(target).name if target != "synthetic" else "synthetic",
            "held_out_images": len(parts["val"]),
            "training_pool": len(parts["train"]),
            "profile": profile,
            "recipe": recipe,
            "overrides": overrides or {},
            "epochs": base.epochs,
        },
        "provenance": provenance(),
    }
    _write(study, out)
    return study


# what compare_sources reports, each a statistic of summed confusion matrices (a fraction)
SOURCE_STATISTICS = {
    "mIoU": miou,
    "IoU_landslide": landslide_iou,
    "precision_landslide": landslide_precision,
    "false_positives": false_positive_share,
}


def compare_sources(checkpoints: dict, target: str, out: str | Path, profile: str = "quick") -> dict:
    """Source models (name -> checkpoint) tested as they are on ``target``'s held-out part, e.g. one
    trained with Bijie's non-landslide images against one without: does it raise fewer false alarms?

    For each model: mIoU, landslide IoU, landslide precision and ``false_positives`` (the share of
    background pixels predicted landslide), percent; for each model after the first, its
    difference from the first in each of those, paired over the held-out images with a 95 %
    interval and a direction (``better`` for false positives means fewer). Writes ``sources.json``
    and ``sources.md`` into ``out``; nothing is trained.
    """
    names, out = list(checkpoints), Path(out)
    if len(names) < 2:
        raise ValueError("compare_sources needs at least two checkpoints (name -> path)")
    config = _source_config(Path(checkpoints[names[0]]), target, profile, {})
    parts = held_out_split(sorted(run_datasets(config).base.names), config.split_seed)
    save_splits(parts, out / "splits")
    held_out = run_datasets(replace(config, split_dir=str(out / "splits"))).val
    per_image = {name: per_image_confusion(model_from_checkpoint(checkpoints[name]), held_out) for name in names}
    rows = []
    for name in names:
        total = np.array(list(per_image[name].values())).sum(0)
        extra = {key: 100 * float(SOURCE_STATISTICS[key](total)) for key in ("precision_landslide", "false_positives")}
        rows.append({"source": name, **_scores(per_image[name]), **extra})
    comparisons = []
    for name in names[1:]:
        for key, statistic in SOURCE_STATISTICS.items():
            pair = paired_statistic(per_image[name], per_image[names[0]], statistic)
            low, high = (
                (-pair["ci_high"], -pair["ci_low"]) if key == "false_positives" else (pair["ci_low"], pair["ci_high"])
            )
            comparisons.append(
                {
                    "a": name,
                    "b": names[0],
                    "metric": key,
                    "diff": pair["diff"],
                    "ci_low": pair["ci_low"],
                    "ci_high": pair["ci_high"],
                    "direction": direction(low, high),  # fewer false positives is better
                }
            )
    study = {
        "results": rows,
        "comparisons": comparisons,
        "settings": {
            "checkpoints": {name: str(checkpoints[name]) for name in names},
            "weights": {name: weights_digest(checkpoints[name]) for name in names},  # the path alone can change
            "target": Path(target).name if target != "synthetic" else "synthetic",
            "held_out_images": len(parts["val"]),
            "profile": profile,
        },
        "provenance": provenance(),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "sources.json").write_text(json.dumps(study, indent=1))
    caption = (
        f"Source models tested as they are on {study['settings']['target']} ({len(parts['val'])} held-out images), "
        f"commit {study['provenance'].get('commit')}, {study['provenance'].get('device')}; percent, 95 % bootstrap "
        "intervals over the held-out images (paired for the differences)"
    )
    columns = ["source", "mIoU", "ci_low", "ci_high", *list(SOURCE_STATISTICS)[1:]]
    tables = [table_markdown(rows, columns), table_markdown(comparisons, list(comparisons[0]))]
    (out / "sources.md").write_text("\n\n".join([caption, *tables]) + "\n")
    return study


def transfer_summary(study: dict, pair: tuple[str, str] = ("finetune", "scratch")) -> list[dict]:
    """One row per k: each start's mIoU and landslide IoU (%, mean over the seeds), and ``pair``'s
    difference (a - b) with its interval and direction: over the draws when there are several
    (seed ``all``), else the one draw's."""
    rows = []
    for k in sorted({r["shots"] for r in study["results"]}):
        row: dict = {"shots": k}
        for start in STARTS:
            drawn = [r for r in study["results"] if r["shots"] == k and r["start"] == start]
            row[f"{start}_mIoU"] = float(np.mean([r["mIoU"] for r in drawn]))
            row[f"{start}_IoU_landslide"] = float(np.mean([r["IoU_landslide"] for r in drawn]))
        compared = [c for c in study["comparisons"] if c["shots"] == k and (c["a"], c["b"]) == pair]
        chosen = next((c for c in compared if c["seed"] == "all"), compared[0])
        row.update(
            {f"{pair[0]}-{pair[1]}": chosen["mIoU_diff"], "ci_low": chosen["ci_low"], "ci_high": chosen["ci_high"]}
        )
        row.update(direction=chosen["direction"], n_seeds=chosen["n_seeds"])
        rows.append(row)
    return rows


def plot_transfer(results: list[dict]):
    """mIoU and landslide IoU (%) against the number of labelled target tiles, one colour per start
    (zero_shot, finetune, scratch): each seed a point with its 95 % interval (mIoU), the mean a line."""
    import matplotlib.pyplot as plt  # plotting only here: the study itself needs no matplotlib

    starts = list(dict.fromkeys(r["start"] for r in results))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for colour, start in zip(("0.5", "tab:blue", "tab:orange", "tab:green"), starts):
        rows = [r for r in results if r["start"] == start]
        shots = sorted({r["shots"] for r in rows})
        for ax, key in zip(axes, ("mIoU", "IoU_landslide")):
            means = [np.mean([r[key] for r in rows if r["shots"] == k]) for k in shots]
            ax.plot(shots, means, "-", color=colour, label=start)
            for r in rows:
                error = [[r[key] - r["ci_low"]], [r["ci_high"] - r[key]]] if key == "mIoU" else None
                ax.errorbar(r["shots"], r[key], yerr=error, fmt="o", color=colour, markersize=3, alpha=0.7)
    every_k = sorted({r["shots"] for r in results})
    for ax, label in zip(axes, ("mIoU (%)", "landslide IoU (%)")):
        ax.set(xscale="log", xlabel="labelled target tiles (k)", ylabel=label)
        ax.set_xticks(every_k, [str(k) for k in every_k], minor=False)
        ax.minorticks_off()
    axes[0].legend()
    fig.tight_layout()
    return fig


def _write(study: dict, out: Path) -> None:
    from .. import viz  # plotting only here: matplotlib stays out of the study's imports

    out.mkdir(parents=True, exist_ok=True)
    (out / "transfer.json").write_text(json.dumps(study, indent=1))
    settings, origin = study["settings"], study["provenance"]
    caption = (
        f"Transfer of {settings['checkpoint']} to {settings['target']} ({settings['held_out_images']} held-out images, "
        f"profile {settings['profile']}, {settings['epochs']} epochs, fine-tuning {settings['recipe']}), "
        f"commit {origin.get('commit')}, {origin.get('device')}; "
        "percent, 95 % bootstrap intervals over the held-out images"
    )
    rows = study["results"]
    columns = ["shots", "seed", "start", "mIoU", "ci_low", "ci_high", "IoU_landslide"]
    pairs = ["shots", "seed", "a", "b", "mIoU_diff", "ci_low", "ci_high", "direction", "n_seeds"]
    text = "\n\n".join(
        [
            caption,
            table_markdown(rows, columns),
            "Paired differences (a - b; seed `all`: over the draws, a two-level bootstrap):",
            table_markdown(study["comparisons"], pairs),
        ]
    )
    (out / "transfer.md").write_text(text + "\n")
    viz.save_figure(plot_transfer(study["results"]), out / "transfer.png", caption)
