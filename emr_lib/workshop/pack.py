"""Handing a workshop's runs from the instructor's machine to the learners'.

``python -m emr_lib workshop pack ARCHIVE`` gathers the runs the episodes will ask for (from
the experiments declared in :mod:`emr_lib.experiments.tables`, at the notebooks' parameters) into one
zip with a manifest; ``workshop unpack ARCHIVE`` puts them where the notebooks look
(``runs/notebooks/<profile>/``) and says which are ready, which will resume and which are
missing. A run is reused wherever the kit and its data lie (:mod:`emr_lib.training.runs` compares the
data's names and fingerprint, not its path), so an unpacked run trains no epoch.

What a packed run holds: ``record.json``, ``best.pt`` (without the optimiser's state, which only
resuming needs), the history and the split lists; an interrupted run also its ``last.pt`` (it
resumes); never ``expanded/`` (rebuilt on demand).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch

from .. import __version__
from ..experiments.tables import table_runs
from ..experiments.transfer import EPISODE_DRAWS, study_run_folders
from ..models import list_models
from ..paths import shown_path
from ..provenance import provenance
from ..training.checkpoints import load_checkpoint
from ..training.profiles import PROFILES, get_config
from ..training.runs import data_names, run_dir, same_data
from .times import EPISODES, expected_minutes

__all__ = ["EPISODES", "WantedRun", "episode_runs", "pack_runs", "unpack_runs", "reuse_check", "describe", "MANIFEST"]

MANIFEST = "workshop-manifest.json"


@dataclass(frozen=True)
class WantedRun:
    """One run an episode asks for: its run folder name and seed, and which episodes need it."""

    name: str
    seed: int
    episodes: tuple[str, ...]


def episode_runs(
    episodes=EPISODES,
    models: str = "hrnet,emr_hrnet,pspnet,deeplabv3",
    tables: str = "4",
    seed: int = 0,
    profile: str = "workshop",
) -> list[WantedRun]:
    """The runs the episodes ask for at these parameters (each notebook's ``models``, ``tables`` and
    ``seed``): 04 trains EMR-HRNet (and, in exercise 2, the next seed), 05 Table 2's models, 06
    Tables 4 and 5, 08 and 09 reuse 04's EMR-HRNet, and 09 trains its few-shot study (the
    profile's draws, fine-tuned and from scratch, in its own folder)."""
    wanted: dict[tuple[str, int], list[str]] = {}

    def add(name: str, run_seed: int, episode: str) -> None:
        episodes_of = wanted.setdefault((name, run_seed), [])
        if episode not in episodes_of:  # Table 5's DEMA row is Table 4's +DEMA run
            episodes_of.append(episode)

    for episode in sorted(set(episodes)):
        if episode in ("04", "08", "09"):
            add("emr_hrnet", seed, episode)
        if episode == "04":
            add("emr_hrnet", seed + 1, episode)  # exercise 2: the same run with the next seed
        if episode == "05":
            names = list_models() if models == "all" else [m.strip() for m in models.split(",") if m.strip()]
            for spec in table_runs(2, names).values():
                add(spec.name, seed, episode)
        if episode == "09":
            for folder in study_run_folders(*EPISODE_DRAWS[profile]):
                add(f"09_mapping/transfer/{folder}", 0, episode)
        if episode == "06":
            for number in sorted({int(t) for t in str(tables).split(",") if t.strip()}):
                for spec in table_runs(number).values():
                    add(spec.name, seed, episode)
    return [WantedRun(name, run_seed, tuple(eps)) for (name, run_seed), eps in wanted.items()]


def _status(folder: Path) -> tuple[str, dict | None]:
    record_path = folder / "record.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("status") == "finished":
            return "ready", record
    if (folder / "last.pt").is_file():
        return "resumes", None
    return "missing", None


def _packed_files(folder: Path, status: str) -> list[Path]:
    skipped = {"last.pt"} if status == "ready" else set()
    return [
        path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in skipped and "expanded" not in path.relative_to(folder).parts
    ]


def _without_optimizer(path: Path) -> bytes:
    """``best.pt`` without the optimiser's state: the notebooks only rebuild its model, and the
    state is most of the file (AdamW keeps two tensors per weight)."""
    state = load_checkpoint(path)
    state.update(optimizer=None, scaler=None)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def pack_runs(archive: str | Path, runs_root: str | Path, profile: str, wanted: list[WantedRun]) -> dict:
    """Write ``archive`` (a zip) with every wanted run that exists under ``runs_root/<profile>``
    and a manifest listing each run's status (ready, resumes, missing) and test mIoU."""
    runs_root, archive = Path(runs_root), Path(archive)
    entries = []
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for run in wanted:
            folder = run_dir(runs_root, profile, run.name, run.seed)
            relative = folder.relative_to(runs_root / profile).as_posix()  # a run's folder, or a study's
            status, record = _status(folder)
            files = _packed_files(folder, status) if status != "missing" else []
            for path in files:
                member = str(PurePosixPath(profile, relative, *path.relative_to(folder).parts))
                if path.name == "best.pt" and status == "ready":
                    zf.writestr(member, _without_optimizer(path))
                else:
                    zf.write(path, member)
            entries.append(
                {
                    "run": relative,
                    "seed": run.seed,
                    "episodes": list(run.episodes),
                    "status": status,
                    "test_mIoU": record["test_metrics"]["mIoU"] if record and "test_metrics" in record else None,
                    "data": Path(record["data"]).name if record and record.get("data") else None,
                    "data_fingerprint": record.get("data_fingerprint") if record else None,
                    "model": record.get("model") if record else None,
                    "files": len(files),
                }
            )
        manifest = {"profile": profile, "runs": entries, "packed_by": provenance()}
        zf.writestr(MANIFEST, json.dumps(manifest, indent=1))
    return manifest


def _safe_member(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and not PurePosixPath(name).is_absolute() and ".." not in parts


def unpack_runs(archive: str | Path, runs_root: str | Path) -> dict:
    """Extract ``archive`` into ``runs_root`` (``runs_root/<profile>/<run>``); a run folder that
    already holds a record is left as it is (``kept``). Returns the manifest with each run's
    outcome in ``unpacked``: ready, resumes, missing, or kept."""
    archive, runs_root = Path(archive), Path(runs_root)
    if not zipfile.is_zipfile(archive):
        raise ValueError(f"{archive} is not a zip archive: unpack the file `python -m emr_lib workshop pack` wrote")
    with zipfile.ZipFile(archive) as zf:
        if MANIFEST not in zf.namelist():
            raise ValueError(f"{archive} has no {MANIFEST}: make it with python -m emr_lib workshop pack")
        manifest = json.loads(zf.read(MANIFEST))
        unsafe = [name for name in zf.namelist() if not _safe_member(name)]
        if unsafe:
            raise ValueError(f"{archive} holds paths outside its folder ({unsafe[:3]}); not unpacking it")
        for entry in manifest["runs"]:
            folder = runs_root / manifest["profile"] / entry["run"]
            if entry["status"] != "missing" and (folder / "record.json").is_file():
                entry["unpacked"] = "kept"  # the learner's own run stays
                continue
            prefix = f"{manifest['profile']}/{entry['run']}/"
            for name in (n for n in zf.namelist() if n.startswith(prefix)):
                zf.extract(name, runs_root)
            entry["unpacked"] = entry["status"]
    return manifest


def reuse_check(manifest: dict, runs_root: str | Path, data: str, root: Path) -> list[str]:
    """Why a learner's notebooks would not reuse the unpacked runs, one line each (empty: they all would).

    The kit: another version packed them, or this kit's profile settings differ from theirs (a run is
    reused only for the same settings). The data: ``data`` (the learner's, by the notebooks' rule) must
    have the same folder name and content (fingerprint) as the data the runs read. Each line names the
    runs and episodes that would train again, with the minutes such a run took on the project's CPU.
    """
    problems, profile = [], manifest["profile"]
    packed = manifest.get("packed_by", {}).get("emr_lib")
    if packed and packed != __version__:
        problems.append(
            f"the runs were packed with kit {packed}, this is {__version__}: install {packed} to reuse them"
        )
    for entry in manifest["runs"]:
        if entry.get("unpacked", entry["status"]) != "ready" or not entry.get("data_fingerprint"):
            continue
        folder = Path(runs_root) / profile / entry["run"]  # the run's folder as packed (with its -seedN)
        stored = json.loads((folder / "record.json").read_text())["config"]
        now = get_config(profile, model=stored["model"]).to_dict()
        drift = sorted(k for k in PROFILES[profile].settings if k != "model_options" and stored.get(k) != now.get(k))
        minutes = expected_minutes(stored["model"], profile, root, stored["data"])
        retrains = f"episodes {','.join(entry['episodes'])} would train {entry['run']} again" + (
            f" (about {minutes:.0f} min)" if minutes else ""
        )
        if drift:
            problems.append(f"this kit's {profile} profile differs in {', '.join(drift)}: {retrains}")
        elif data_names(data) != data_names(stored["data"]) or not same_data(data, entry["data_fingerprint"], stored):
            problems.append(f"your data {Path(data).name} is not the data the runs read ({entry['data']}): {retrains}")
    return problems


def describe(manifest: dict, runs_root: str | Path) -> str:
    """One line per run of an (un)packed manifest, then a count; for the command line."""
    lines = [f"runs of profile {manifest['profile']} in {shown_path(Path(runs_root) / manifest['profile'])}:"]
    for entry in manifest["runs"]:
        outcome = entry.get("unpacked", entry["status"])
        score = f"test mIoU {100 * entry['test_mIoU']:.2f}" if entry.get("test_mIoU") is not None else ""
        meaning = {
            "ready": "reused as it is",
            "kept": "your own run, left in place",
            "resumes": "interrupted: continues from its last epoch when its notebook runs",
            "missing": "not in the archive: its notebook will train it",
        }[outcome]
        lines.append(f"  {outcome:8s} {entry['run']:28s} episodes {','.join(entry['episodes']):12s} {score} {meaning}")
    counts = {
        key: sum(e.get("unpacked", e["status"]) == key for e in manifest["runs"])
        for key in ("ready", "kept", "resumes", "missing")
    }
    lines.append(", ".join(f"{n} {key}" for key, n in counts.items() if n))
    return "\n".join(lines)
