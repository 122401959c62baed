"""Where a result came from: commit, library versions, machine, time."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from pathlib import Path

import torch

from . import __version__


def git_commit(path: str | Path | None = None) -> str:
    """The current commit (with ``+dirty`` when tracked files changed), or ``"unknown"``.

    Changes under ``figures/`` do not count: the pipeline writes there itself, so a second
    notebook of the same run would otherwise call the first one's output a code change.
    """
    cwd = Path(path or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)figures"],
            cwd=cwd,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def models_changed_since(commit: str | None, path: str | Path | None = None) -> bool | None:
    """Whether ``emr_lib/models`` differs now from what it was at ``commit`` (None: cannot tell)."""
    if not commit or commit == "unknown":
        return None
    cwd = Path(path or Path(__file__).resolve().parent)
    try:
        result = subprocess.run(
            # anatomy.py only looks inside the models (notebook 03); it holds no weights
            [
                "git",
                "diff",
                "--quiet",
                commit.removesuffix("+dirty"),
                "--",
                ":/emr_lib/models",
                ":(exclude):/emr_lib/models/anatomy.py",
            ],
            cwd=cwd,
            capture_output=True,
        )
    except OSError:
        return None
    return {0: False, 1: True}.get(result.returncode)  # other codes: not a checkout, or an unknown commit


def device_name(device: torch.device | str | None = None) -> str:
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def provenance(device: torch.device | str | None = None) -> dict:
    """Plain metadata to store beside every table, figure or run record."""
    return {
        "commit": git_commit(),
        "emr_lib": __version__,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "device": device_name(device),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
