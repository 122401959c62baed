"""How far to trust a number: spread over seeds, and paired bootstrap intervals between runs.

Two sources of chance move a test mIoU: which images happened to be tested, and the seed a
model was trained with (initial weights, batch order, augmentation). :func:`paired_bootstrap`
resamples the images for one pair of runs; :func:`seed_bootstrap` resamples both (seeds, then
images within each drawn seed), so its interval speaks of the two *models*, not of one
trained pair. Every difference gets a ``direction``: ``better`` (the interval lies above 0),
``worse`` (below 0) or ``unresolved`` (it holds 0).

Tiles cut from one scene are not independent test images: with ``unit_of`` (e.g.
:func:`emr_lib.data.scene_of`) their matrices are first summed per scene (:func:`by_unit`), so the
bootstraps resample scenes. When each seed tested other scenes (a fold each, ``split_folds``),
:func:`seed_bootstrap` resamples seeds, then scenes within each drawn seed's own fold.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np

__all__ = [
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


def seed_summary(records: dict[str, dict[int, dict]], key: str = "mIoU", label: str = "configuration") -> list[dict]:
    """Mean, standard deviation and range (percent) of test ``key`` over seeds, one row per entry.

    ``records`` maps a row label to its records by seed (:func:`emr_lib.training.runs.seed_records`). With one
    seed in every row there is no spread to show, so the standard deviation is left out.
    """
    rows = []
    for row, by_seed in records.items():
        values = [100 * record["test_metrics"][key] for record in by_seed.values()]
        rows.append(
            {
                label: row,
                "seeds": ", ".join(map(str, by_seed)),
                f"{key}_mean": statistics.fmean(values),
                f"{key}_sd": statistics.stdev(values) if len(values) > 1 else float("nan"),
                f"{key}_min": min(values),
                f"{key}_max": max(values),
            }
        )
    if all(len(by_seed) < 2 for by_seed in records.values()):
        for row in rows:
            del row[f"{key}_sd"]
    return rows


class CompareError(ValueError):
    """Two runs cannot be compared; the message names the run folder and what is missing."""


def miou(matrices: np.ndarray) -> np.ndarray:
    """mIoU of confusion matrices (..., 2, 2) (rows truth, columns prediction), as metrics.py defines it."""
    tp = np.diagonal(matrices, axis1=-2, axis2=-1).astype(float)
    union = matrices.sum(axis=-1) + matrices.sum(axis=-2) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean(np.where(union > 0, tp / union, np.nan), axis=-1)


def read_per_image(run: str | Path) -> tuple[dict, dict[str, list]]:
    """A finished run's record and its per-image test confusion matrices; errors name the folder."""
    path = Path(run) / "record.json"
    if not path.is_file():
        raise CompareError(f"{run}: no record.json (is it a run folder, and did the run finish?)")
    record = json.loads(path.read_text())
    if "test_per_image" not in record:
        raise CompareError(
            f"{run}: record.json has no per-image test results (test_per_image); it was trained before the kit "
            "kept them, or did not finish. Train it again with the current kit."
        )
    return record, record["test_per_image"]


def _resampled(statistic, n_images: int, resamples: int, seed: int) -> np.ndarray:
    """``statistic(draws)`` for ``resamples`` draws of ``n_images`` images with replacement, in
    chunks of 1000 draws so the summed matrices stay small ((1000, N, 2, 2) at a time)."""
    draws = np.random.default_rng(seed).integers(0, n_images, size=(resamples, n_images))
    return np.concatenate([statistic(draws[start : start + 1000]) for start in range(0, resamples, 1000)])


def bootstrap_interval(per_image: dict[str, list], resamples: int = 2000, seed: int = 0, level=0.95) -> tuple:
    """Percentile bootstrap interval (percent) of one run's dataset-level test mIoU over its test images.

    It says how much the number depends on which images happened to be tested, not how much it
    would move with another seed (for that, train several seeds); to compare two runs on the
    same images use :func:`paired_bootstrap`, which is much narrower.
    """
    matrices = np.array([per_image[name] for name in sorted(per_image)], dtype=np.int64)
    values = _resampled(lambda draw: miou(matrices[draw].sum(1)), len(matrices), resamples, seed)
    low, high = np.quantile(100 * values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def paired_bootstrap(
    per_image_a: dict[str, list], per_image_b: dict[str, list], resamples: int = 10_000, seed: int = 0, level=0.95
) -> dict:
    """Paired bootstrap over test images of the difference in dataset-level mIoU (a - b), in percent.

    Each resample draws the images with replacement, sums the drawn images' confusion matrices
    for each run and recomputes both mIoUs, so the interval reflects which images were tested.
    """
    pair = paired_statistic(per_image_a, per_image_b, miou, resamples, seed, level)
    return {
        "mIoU_a": pair["a"],
        "mIoU_b": pair["b"],
        "mIoU_diff": pair["diff"],
        **{key: pair[key] for key in ("ci_low", "ci_high", "level", "n_images", "resamples", "seed")},
    }


def paired_statistic(
    per_image_a: dict[str, list], per_image_b: dict[str, list], statistic, resamples=10_000, seed=0, level=0.95
) -> dict:
    """:func:`paired_bootstrap` for any ``statistic`` of summed confusion matrices ((..., 2, 2) ->
    (...), a fraction): its value for a and b and a - b with an interval, in percent."""
    if set(per_image_a) != set(per_image_b):
        common = len(set(per_image_a) & set(per_image_b))
        raise CompareError(
            f"the runs were evaluated on different test images ({len(per_image_a)} and {len(per_image_b)}, "
            f"{common} in common); compare runs of the same data and split"
        )
    names = sorted(per_image_a)
    a = np.array([per_image_a[n] for n in names], dtype=np.int64)
    b = np.array([per_image_b[n] for n in names], dtype=np.int64)
    differences = _resampled(
        lambda draw: statistic(a[draw].sum(1)) - statistic(b[draw].sum(1)), len(names), resamples, seed
    )
    low, high = np.nanquantile(100 * differences, [(1 - level) / 2, (1 + level) / 2])
    value_a, value_b = 100 * float(statistic(a.sum(0))), 100 * float(statistic(b.sum(0)))
    return {
        "a": value_a,
        "b": value_b,
        "diff": value_a - value_b,
        "ci_low": float(low),
        "ci_high": float(high),
        "level": level,
        "n_images": len(names),
        "resamples": resamples,
        "seed": seed,
    }


def landslide_precision(matrices: np.ndarray) -> np.ndarray:
    """Of the pixels predicted landslide, the share that are landslide (confusion matrices (..., 2, 2))."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return matrices[..., 1, 1] / matrices[..., :, 1].sum(-1)


def landslide_iou(matrices: np.ndarray) -> np.ndarray:
    """IoU of the landslide class (confusion matrices (..., 2, 2))."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return matrices[..., 1, 1] / (matrices[..., 1, :].sum(-1) + matrices[..., 0, 1])


def false_positive_share(matrices: np.ndarray) -> np.ndarray:
    """Of the background pixels, the share predicted landslide: the false alarms a whole-scene map shows."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return matrices[..., 0, 1] / matrices[..., 0, :].sum(-1)


def direction(ci_low: float, ci_high: float) -> str:
    """``better`` when the interval lies above 0, ``worse`` below 0, else ``unresolved``."""
    return "better" if ci_low > 0 else "worse" if ci_high < 0 else "unresolved"


def format_interval(diff: float, ci_low: float, ci_high: float) -> str:
    """A difference with its interval as the reports write it: ``+1.23 [-0.40, +2.85]``."""
    return f"{float(diff):+.2f} [{float(ci_low):+.2f}, {float(ci_high):+.2f}]"


def _stacked(per_image: list[dict[str, list]], what: str) -> tuple[list[str], np.ndarray]:
    """Per-image matrices of several runs as one array (runs, images, 2, 2); the runs must share images."""
    names = sorted(per_image[0])
    for i, matrices in enumerate(per_image[1:], start=1):
        if sorted(matrices) != names:
            raise CompareError(f"{what} {i} was evaluated on other test images than {what} 0; pool runs of one split")
    return names, np.array([[m[n] for n in names] for m in per_image], dtype=np.int64)


def by_unit(per_image: dict[str, list], unit_of=None) -> dict[str, list]:
    """Per-image confusion matrices summed per unit (``unit_of(name)``: the scene a tile was cut from).

    The dataset-level metrics do not change (they come from the summed matrix either way); a
    bootstrap over the result resamples units. ``unit_of`` None returns ``per_image`` as it is.
    """
    if unit_of is None:
        return per_image
    units: dict[str, np.ndarray] = {}
    for name, matrix in per_image.items():
        key = unit_of(name)
        units[key] = units.get(key, 0) + np.asarray(matrix, dtype=np.int64)
    return {key: matrix.tolist() for key, matrix in sorted(units.items())}


def _pooled(per_seed: np.ndarray, means: np.ndarray, level: float, n_images: int, resamples: int, seed: int) -> dict:
    """A pooled difference over seeds: the mean of ``per_seed`` with the percentile interval of ``means``."""
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {
        "mIoU_diff": float(per_seed.mean()),
        "ci_low": float(low),
        "ci_high": float(high),
        "per_seed": [float(d) for d in per_seed],
        "level": level,
        "n_seeds": len(per_seed),
        "n_images": n_images,
        "resamples": resamples,
        "seed": seed,
        "direction": direction(float(low), float(high)),
    }


def _difference_of(a: np.ndarray, b: np.ndarray):
    """The mIoU difference a - b of a draw of images (rows of two (images, 2, 2) arrays)."""
    return lambda draw: miou(a[draw].sum(1)) - miou(b[draw].sum(1))


def _fold_bootstrap(pairs: list[tuple[dict, dict]], resamples: int, seed: int, level: float) -> dict:
    """:func:`seed_bootstrap` for seeds that each tested other images (a fold each): every seed's
    paired difference is bootstrapped over its own images, then the seeds are drawn with replacement,
    each drawn seed contributing one of its own resampled differences, and averaged."""
    within, per_seed, n_images = [], [], 0
    for k, (a_images, b_images) in enumerate(pairs):
        names = sorted(a_images)
        a = np.array([a_images[n] for n in names], dtype=np.int64)
        b = np.array([b_images[n] for n in names], dtype=np.int64)
        within.append(100 * _resampled(_difference_of(a, b), len(names), resamples, seed + 1 + k))
        per_seed.append(100 * float(miou(a.sum(0)) - miou(b.sum(0))))
        n_images += len(names)
    within = np.nan_to_num(np.array(within))  # (seeds, resamples)
    rng = np.random.default_rng(seed)
    n_seeds = len(pairs)
    drawn_seeds = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    drawn_resamples = rng.integers(0, resamples, size=(resamples, n_seeds))
    means = within[drawn_seeds, drawn_resamples].mean(axis=1)
    return {**_pooled(np.asarray(per_seed), means, level, n_images, resamples, seed), "design": "folds"}


def seed_bootstrap(
    pairs: list[tuple[dict[str, list], dict[str, list]]],
    resamples: int = 10_000,
    seed: int = 0,
    level=0.95,
    folds: bool = False,
) -> dict:
    """Two-level bootstrap of the mean difference in test mIoU (a - b) over seeds, in percent.

    ``pairs`` holds one (a, b) pair of per-image test results for each seed, every run
    tested on the same images. Each resample draws the seeds with replacement, then, within
    each drawn seed, the images with replacement (the same images for a and b: paired), and
    averages the drawn seeds' dataset-level differences. With one seed it is
    :func:`paired_bootstrap` with other draws; with several, the interval widens by the
    seed-to-seed spread, which one pair of runs cannot show. With ``folds`` each seed tested
    images of its own (a fold of a cross-validation, ``split_folds``): see :func:`_fold_bootstrap`.
    """
    if not pairs:
        raise ValueError("seed_bootstrap needs at least one pair of runs")
    for a_images, b_images in pairs:
        if set(a_images) != set(b_images):
            raise CompareError("the two rows were evaluated on different test images; compare runs of one split")
    if folds:
        return _fold_bootstrap(pairs, resamples, seed, level)
    names, a = _stacked([pair[0] for pair in pairs], "seed")
    _, b = _stacked([pair[1] for pair in pairs], "seed")
    n_seeds, n_images = len(pairs), len(names)
    per_seed = 100 * (miou(a.sum(1)) - miou(b.sum(1)))
    rng = np.random.default_rng(seed)
    means = []
    for start in range(0, resamples, 500):
        chunk = min(500, resamples - start)
        seeds = rng.integers(0, n_seeds, size=(chunk, n_seeds, 1))
        images = rng.integers(0, n_images, size=(chunk, n_seeds, n_images))
        diff = miou(a[seeds, images].sum(2)) - miou(b[seeds, images].sum(2))  # (chunk, n_seeds)
        means.append(100 * diff.mean(axis=1))
    return _pooled(per_seed, np.concatenate(means), level, n_images, resamples, seed)


def compare_runs(run_a: str | Path, run_b: str | Path, resamples: int = 10_000, seed: int = 0) -> dict:
    """:func:`paired_bootstrap` of two run folders' test results, with the folders named."""
    (_, per_a), (_, per_b) = read_per_image(run_a), read_per_image(run_b)
    try:
        result = paired_bootstrap(per_a, per_b, resamples, seed)
    except CompareError as err:
        raise CompareError(f"{run_a} vs {run_b}: {err}") from err
    return {"run_a": str(run_a), "run_b": str(run_b), **result}


def paired_differences(
    records_by_seed: dict[int, dict[str, dict]],
    reference: str,
    resamples: int = 10_000,
    paper: dict[str, float] | None = None,
    unit_of=None,
) -> list:
    """Each row minus ``reference``: per seed (paired bootstrap over the test images) and, with
    several seeds, pooled (``seed`` = ``"all"``, :func:`seed_bootstrap`), in percent.

    ``records_by_seed`` maps a seed to ``{row: record}``; records need ``test_per_image``.
    ``paper`` maps a row to the paper's own difference to ``reference`` (points of mIoU): each
    row then says whether that effect lies inside its interval (``paper_inside``). With
    ``unit_of`` the bootstraps resample scenes (:func:`by_unit`), counted in ``n_scenes``.
    """
    count = "n_images" if unit_of is None else "n_scenes"
    # runs whose seed picked their test fold (split_folds) tested other images with every seed
    folds = any(r[reference].get("config", {}).get("split_folds") for r in records_by_seed.values())

    def tested(record: dict) -> dict[str, list]:
        return by_unit(record["test_per_image"], unit_of)

    def row_of(row: str, seed, result: dict, n_seeds: int) -> dict:
        out = {
            "row": row,
            "versus": reference,
            "seed": seed,
            "mIoU_diff": result["mIoU_diff"],
            "ci_low": result["ci_low"],
            "ci_high": result["ci_high"],
            "n_seeds": n_seeds,
            count: result["n_images"],
            "direction": direction(result["ci_low"], result["ci_high"]),
        }
        if paper is not None:
            effect = paper.get(row)
            out["paper_diff"] = effect
            out["paper_inside"] = None if effect is None else bool(result["ci_low"] <= effect <= result["ci_high"])
        return out

    rows = []
    for seed, records in records_by_seed.items():
        for row, record in records.items():
            if row == reference:
                continue
            result = paired_bootstrap(tested(record), tested(records[reference]), resamples)
            rows.append(row_of(row, seed, result, 1))
    if len(records_by_seed) > 1:
        first = next(iter(records_by_seed.values()))
        for row in first:
            if row == reference:
                continue
            pairs = [(tested(r[row]), tested(r[reference])) for r in records_by_seed.values()]
            rows.append(row_of(row, "all", seed_bootstrap(pairs, resamples, folds=folds), len(pairs)))
    return rows
