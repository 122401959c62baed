"""Seeded, reproducible splits saved as plain text files of sample names.

Splits are made on the original images, before any augmentation, so that no
augmented copy of a test image can leak into training: :func:`emr_lib.data.augment.expand_dataset`
only ever expands the ``train`` list. Tiles cut from one scene are split together
(``group_of``, e.g. :func:`emr_lib.data.tiles.scene_of`): a split cuts scenes, not tiles.

:func:`fold_splits` cuts the scenes (or images) into k folds instead, so that k runs test every
scene once at the cost of k runs of the plain split: run s tests fold s, validates on the next fold
and trains on the rest (with k = 5: 3:1:1, the paper's 6:2:2).

``PAPER_SPLIT`` = 6:2:2 train/val/test is the paper's for Tables 2 and 3; the split of
Tables 4 and 5 is declared with their runs in :mod:`emr_lib.experiments.tables`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from .io import DataError

__all__ = ["PAPER_SPLIT", "make_splits", "fold_splits", "save_splits", "load_splits", "splits_digest"]

PAPER_SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2}


def _groups(names: Iterable[str], group_of: Callable[[str], str] | None) -> dict[str, list[str]]:
    """Sorted names by group (each name its own group without ``group_of``), groups in sorted order."""
    names = sorted(set(names))
    if not names:
        raise DataError("cannot split an empty list of names")
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(group_of(name) if group_of else name, []).append(name)
    return dict(sorted(groups.items()))


def make_splits(
    names: Iterable[str],
    ratios: dict[str, float] | None = None,
    seed: int = 0,
    group_of: Callable[[str], str] | None = None,
) -> dict[str, list[str]]:
    """Shuffle ``names`` with ``seed`` and cut them by ``ratios`` (default 6:2:2).

    With ``group_of`` (name -> group, e.g. the scene a tile was cut from) the groups are shuffled
    and cut by the ratios, and every name goes where its group goes: no group on two sides.
    The result depends only on the set of names, the ratios and the seed, not on the
    order the names come in. Every name lands in exactly one split.
    """
    ratios = dict(PAPER_SPLIT if ratios is None else ratios)
    groups = list(_groups(names, group_of).values())
    if any(r < 0 for r in ratios.values()) or not np.isclose(sum(ratios.values()), 1.0):
        raise ValueError(f"split ratios must be non-negative and sum to 1, got {ratios}")
    order = np.random.default_rng(seed).permutation(len(groups))
    bounds = np.round(np.cumsum(list(ratios.values())) * len(groups)).astype(int)
    splits, start = {}, 0
    for key, end in zip(ratios, bounds):
        splits[key] = [name for i in order[start:end] for name in groups[i]]
        start = end
    return splits


def fold_splits(
    names: Iterable[str], folds: int, fold: int, seed: int = 0, group_of: Callable[[str], str] | None = None
) -> dict[str, list[str]]:
    """Fold ``fold`` of a ``folds``-fold cross-validation: ``test`` that fold, ``val`` the next, ``train`` the rest.

    The groups (scenes with ``group_of``, else names) are shuffled with ``seed`` and dealt to the
    folds in turn, so fold sizes differ by at most one group, and the folds of one ``seed`` never
    overlap: over ``fold`` = 0 .. folds - 1 every group is tested exactly once.
    """
    if folds < 3:
        raise ValueError(f"a fold split needs at least 3 folds (train, val and test), got {folds}")
    groups = list(_groups(names, group_of).values())
    if len(groups) < folds:
        raise DataError(f"cannot cut {len(groups)} scenes or images into {folds} folds; use fewer folds")
    order = np.random.default_rng(seed).permutation(len(groups))
    dealt = [[name for i in order[k::folds] for name in groups[i]] for k in range(folds)]
    test, val = fold % folds, (fold + 1) % folds
    train = [name for k in range(folds) if k not in (test, val) for name in dealt[k]]
    return {"train": train, "val": dealt[val], "test": dealt[test]}


def save_splits(splits: dict[str, Sequence[str]], folder: str | Path) -> Path:
    """Write ``<split>.txt`` files (one name a line) in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for key, names in splits.items():
        (folder / f"{key}.txt").write_text("".join(f"{n}\n" for n in names))
    return folder


def load_splits(folder: str | Path, keys: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Read ``<split>.txt`` files of ``folder`` (all of them, or ``keys``)."""
    folder = Path(folder)
    files = [folder / f"{k}.txt" for k in keys] if keys else sorted(folder.glob("*.txt"))
    if not files:
        raise DataError(f"no split files (*.txt) in {folder}; make them with emr_lib.data.make_splits")
    splits = {}
    for path in files:
        if not path.is_file():
            raise DataError(f"split file not found: {path}")
        splits[path.stem] = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    seen: dict[str, str] = {}
    for key, names in splits.items():
        for name in names:
            if name in seen:
                raise DataError(
                    f"{name!r} is in both {seen[name]}.txt and {key}.txt in {folder}: splits must not overlap"
                )
            seen[name] = key
    return splits


def splits_digest(splits: dict[str, Sequence[str]]) -> str:
    """sha256 of split lists (which images trained, validated and tested a run), wherever they lie."""
    return hashlib.sha256(json.dumps({k: list(v) for k, v in splits.items()}, sort_keys=True).encode()).hexdigest()
