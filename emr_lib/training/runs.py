"""Run folders: one rule for the CLI, the notebooks and ``python -m emr_lib table``.

A run folder holds what :func:`emr_lib.training.loop.train` writes (``last.pt`` every epoch,
``record.json`` when the run ends). When a run is asked for in a folder that already holds
something, the folder's settings (``record.json``'s or ``last.pt``'s configuration)
are compared with the wanted ones:

- **reuse**: a finished run with the same settings is returned as it is (a run of a split
  without a test part made before the kit reported the last epoch there is evaluated at its
  last epoch once, and its record updated);
- **resume**: an interrupted run (stopped, or killed mid-epoch: only ``last.pt``) with the
  same settings continues from its last epoch;
- **move aside**: a run with other settings is moved to ``<folder>.replaced-<time>``
  before a new run starts. Nothing is ever deleted.

A run's data is identified by what it is, not where it lies: settings that differ only in the
data folder's path count as the same when the folders have the same names and the data now
holds exactly what the run read (its ``data_fingerprint``), so a kit folder moved, or zipped
and unzipped elsewhere, reuses and resumes its runs.

How the modes of :func:`plan_run` map the command line onto this rule:
``auto`` (notebooks, ``table``) applies it as it stands; ``refuse`` (``train`` with
neither flag) stops at a folder that holds a run and names the flags; ``resume``
(``train --resume``) reuses or resumes, and stops at other settings, naming them;
``overwrite`` (``train --overwrite``) moves the old run aside and starts again.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..data.splits import load_splits, splits_digest
from ..models import build_model
from ..paths import shown_path
from ..provenance import models_changed_since
from .checkpoints import CheckpointError, atomic_write, load_checkpoint, weights_digest
from .loop import evaluate_final, train
from .profiles import TrainConfig
from .run_data import run_datasets
from .runtime import select_device

__all__ = [
    "RunFolderError",
    "RunPlan",
    "plan_run",
    "run_or_reuse",
    "run_dir",
    "seed_records",
    "data_names",
    "same_data",
    "portable_record",
    "keep_records",
]

MODES = ("auto", "refuse", "resume", "overwrite")


class RunFolderError(ValueError):
    """The run folder holds a run that the asked-for mode may not touch."""


def as_stored(settings: dict | None) -> dict | None:
    """Settings as JSON stores them (tuples become lists), so stored and wanted ones compare.

    A field added to :class:`TrainConfig` after a run was made counts as its default there, so
    a new setting that is left at its default does not invalidate older runs.
    """
    if settings is None:
        return None
    defaults = {k: v for k, v in dataclasses.asdict(TrainConfig()).items() if k not in settings}
    return json.loads(json.dumps({**defaults, **settings}))


@dataclass
class RunPlan:
    action: str  # "reuse", "resume" or "new"
    record: dict | None = None  # the finished record, for "reuse"
    moved_to: Path | None = None  # where an earlier run was moved aside
    replaces: bool = False  # "new" over a run of other settings (moved aside, unless only planned)


# settings that say where a run was computed, not what it is: a run made on the instructor's GPU
# (device cuda) is the run a learner's notebook (device auto) asks for
WHERE_NOT_WHAT = frozenset({"device", "num_workers"})


def data_names(data: str) -> list[str]:
    """The data folders' names (``synthetic`` as it is), without where they lie."""
    return [part if part == "synthetic" else Path(part).name for part in data.split(",")]


def _same_run(held: dict, wanted: dict, config: TrainConfig) -> bool:
    """Whether a record or checkpoint (``held``: its ``config`` and ``data_fingerprint``) is a run of the
    wanted settings: the same settings, or the same but for the data's path, with folders of the same
    names that now hold exactly the data the run read."""
    stored = as_stored(held.get("config"))
    if stored is None:
        return False
    differing = {k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k)} - WHERE_NOT_WHAT
    if "init" in differing and _same_start(held, wanted["init"]):
        differing.discard("init")  # the same source weights, elsewhere (an unpacked workshop run)
    if "split_dir" in differing and _same_splits(held, wanted["split_dir"]):
        differing.discard("split_dir")  # the same lists of images, elsewhere
    if not differing:
        return True
    if differing != {"data"}:
        return False
    if data_names(stored["data"]) != data_names(wanted["data"]) or not held.get("data_fingerprint"):
        return False
    try:
        return run_datasets(config).fingerprint() == held["data_fingerprint"]
    except (OSError, ValueError):  # the data is not readable where it is now: not the same run
        return False


def same_data(data: str, fingerprint: str, settings: dict) -> bool:
    """Whether ``data`` holds exactly what a run with ``settings`` (its stored config) read: its ``fingerprint``."""
    try:
        config = TrainConfig(**{**as_stored(settings), "data": data})
        return run_datasets(config).fingerprint() == fingerprint
    except (OSError, ValueError, TypeError):  # unreadable data, or settings this kit does not know
        return False


def _same_start(held: dict, init: str | None) -> bool:
    """Whether a fine-tuning run (``held``, its record) started from the weights in ``init``."""
    if not init or not held.get("init_weights") or not Path(init).is_file():
        return False
    try:
        return weights_digest(init) == held["init_weights"]
    except CheckpointError:
        return False


def _same_splits(held: dict, split_dir: str | None) -> bool:
    """Whether a run read from ``split_dir`` (given lists) the very lists it holds (its record)."""
    if not split_dir or not held.get("splits_digest"):
        return False
    try:
        return splits_digest(load_splits(split_dir)) == held["splits_digest"]
    except (OSError, ValueError):
        return False


def _differences(stored: dict | None, wanted: dict) -> str:
    stored = stored or {}
    keys = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
    return ", ".join(f"{k}: {stored.get(k)!r} there, {wanted.get(k)!r} now" for k in keys[:6])


def _move_aside(out: Path) -> Path:
    kept = out.with_name(f"{out.name}.replaced-{_dt.datetime.now():%Y%m%d-%H%M%S}")
    out.rename(kept)
    print(f"{shown_path(out)} held a run with other settings or was replaced; it is kept in {shown_path(kept)}")
    return kept


def plan_run(out: str | Path, config: TrainConfig, mode: str = "auto", move: bool = True) -> RunPlan:
    """What to do in run folder ``out`` for ``config`` (see the module's rule); moves aside when it must
    (``move`` False: only says so, ``replaces``, and touches nothing)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    out = Path(out)
    wanted = as_stored(config.to_dict())
    record_path, last_path = out / "record.json", out / "last.pt"
    holds_run = record_path.is_file() or last_path.is_file()
    if mode == "refuse" and holds_run:
        raise RunFolderError(
            f"{out} already holds a run; pass --resume to continue it, --overwrite to start again "
            "(the old run is moved aside), or --out for a new folder"
        )
    if mode in ("auto", "resume"):
        record = json.loads(record_path.read_text()) if record_path.is_file() else None
        if record and record.get("status") == "finished" and _same_run(record, wanted, config):
            return RunPlan("reuse", record)
        # last.pt is written after every epoch, record.json only when a run ends, so a
        # killed run has only last.pt; its configuration says whether to resume it
        checkpoint = load_checkpoint(last_path) if last_path.is_file() else None
        stored = as_stored(checkpoint.get("config")) if checkpoint else None
        if checkpoint and _same_run(checkpoint, wanted, config):
            return RunPlan("resume")
        if mode == "resume" and holds_run:
            differences = _differences(stored or (record or {}).get("config"), wanted)
            raise RunFolderError(
                f"{out} holds a run with other settings ({differences}); "
                "resume with the same settings, pass --overwrite to move it aside and start again, or use --out"
            )
    # a folder without a run (say, splits written before the first epoch ended) is trained in
    # place; only a run is moved aside. Under torchrun every rank plans the same way.
    if holds_run and not move:
        return RunPlan("new", replaces=True)
    return RunPlan("new", moved_to=_move_aside(out), replaces=True) if holds_run else RunPlan("new")


def run_or_reuse(
    config: TrainConfig,
    out: str | Path,
    mode: str = "auto",
    stop_after: int | None = None,
    progress: bool = True,
    compact: bool = False,
) -> dict:
    """Apply :func:`plan_run`, then train or resume as it says; return the run's record."""
    plan = plan_run(out, config, mode)
    if plan.action == "reuse":
        print(f"reusing {shown_path(out)} (test mIoU {100 * plan.record['test_metrics']['mIoU']:.2f})")
        commit = plan.record.get("commit")
        weights = any((Path(out) / name).is_file() for name in ("best.pt", "last.pt"))  # a kept record has none
        if weights and models_changed_since(commit):
            print(
                f"note: {shown_path(out)} was trained at commit {commit}; emr_lib/models has changed since, "
                "so its weights may not match the models as they are now "
                "(train it again with another run folder to compare)"
            )
        if "test_selection" not in plan.record and plan.record.get("test_split") == "val":
            return _report_last_epoch(Path(out), config, plan.record)
        return plan.record
    return train(config, out, resume=plan.action == "resume", stop_after=stop_after, progress=progress, compact=compact)


def _report_last_epoch(out: Path, config: TrainConfig, record: dict) -> dict:
    """A finished run of a split without a test part (Tables 4-5), made when the kit reported its
    best validation epoch, which those very images chose: evaluate the last epoch instead and
    rewrite ``record.json``, keeping the old metrics as ``test_metrics_best_epoch``."""
    data, device = run_datasets(config), select_device(config.device)
    model = build_model(config.model, config.num_classes, **config.model_options).to(device)
    result = evaluate_final(model, out, data, config, device, progress=False, per_image=True)
    record = {**record, "test_metrics_best_epoch": record["test_metrics"], **result}
    atomic_write(json.dumps(record, indent=1), out / "record.json")
    best, last = 100 * record["test_metrics_best_epoch"]["mIoU"], 100 * result["test_metrics"]["mIoU"]
    print(
        f"{shown_path(out)}: no test part, so the {result['test_selection']} is reported: "
        f"mIoU {last:.2f} (best epoch: {best:.2f})"
    )
    return record


def portable_record(record: dict) -> dict:
    """A run's record as it is committed or handed on: its data and split folders by name, not where the
    machine that trained it kept them. The run folder rule reuses it all the same (data by name and
    fingerprint); ``split_dir``, ``data`` and the configuration's ``data`` and ``split_dir`` change."""
    names = lambda data: ",".join(data_names(data)) if data else data  # noqa: E731
    config = {**record["config"], "data": names(record["config"].get("data"))}
    if config.get("split_dir"):
        config["split_dir"] = Path(config["split_dir"]).name
    portable = {**record, "config": config, "data": names(record.get("data"))}
    if record.get("split_dir"):
        portable["split_dir"] = Path(record["split_dir"]).name
    return portable


def keep_records(dest: str | Path, folders_by_seed: dict, records_by_seed: dict) -> None:
    """Write each run's :func:`portable_record` to ``dest/<run folder name>/record.json`` (a table's sources,
    committed beside it): ``folders_by_seed`` and ``records_by_seed`` map a seed to ``{row: folder}`` and
    ``{row: record}``."""
    for seed, folders in folders_by_seed.items():
        for row, folder in folders.items():
            kept = Path(dest) / Path(folder).name / "record.json"
            kept.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(json.dumps(portable_record(records_by_seed[seed][row]), indent=1), kept)


def reuse_kept_record(kept: str | Path, out: str | Path) -> bool:
    """Copy ``kept/<out's name>/record.json`` (a record :func:`keep_records` wrote, say the committed
    ``figures/workshop/run_records``) into run folder ``out`` when ``out`` holds no run yet; return whether it
    did. The run folder rule then decides: the same settings and data reuse it (a table rebuilt without
    training, no weights), others move it aside and train."""
    source, out = Path(kept) / Path(out).name / "record.json", Path(out)
    if not source.is_file() or (out / "record.json").is_file() or (out / "last.pt").is_file():
        return False
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(source.read_text(), out / "record.json")
    return True


def run_dir(runs_root: str | Path, profile: str, name: str, seed: int = 0) -> Path:
    """``runs_root/<profile>/<name>``, and ``<name>-seed<N>`` for a seed other than 0, so the
    runs of several seeds sit side by side."""
    return Path(runs_root) / profile / (f"{name}-seed{seed}" if seed else name)


def seed_records(runs_root: str | Path, profile: str, name: str, reference: dict) -> dict[int, dict]:
    """Finished records of run ``name`` for every seed under ``runs_root/<profile>``, by seed.

    Only runs whose settings, the seed aside, match ``reference`` (a record) count, so a
    summary never mixes in runs of other settings.
    """

    def settings(record: dict) -> dict:
        return {k: v for k, v in as_stored(record["config"]).items() if k not in ("seed", "data")}

    def data(record: dict) -> tuple:  # what the data is, wherever it lay (see the module's rule)
        return data_names(record["config"]["data"]), record.get("data_fingerprint")

    own, own_data = settings(reference), data(reference)
    found = {}
    for path in (Path(runs_root) / profile).glob(f"{name}*/record.json"):
        record = json.loads(path.read_text())
        same_run = re.fullmatch(rf"{re.escape(name)}(-seed\d+)?", path.parent.name)
        if same_run and record.get("status") == "finished" and settings(record) == own and data(record) == own_data:
            found[record["seed"]] = record
    return dict(sorted(found.items()))
