"""Handing a workshop's runs from the instructor's machine to the learners'.

``python -m emr_lib workshop pack ARCHIVE`` gathers the runs the episodes will ask for (from
the experiments declared in :mod:`emr_lib.experiments`, at the notebooks' parameters) into one
zip with a manifest; ``workshop unpack ARCHIVE`` puts them where the notebooks look
(``runs/notebooks/<profile>/``) and says which are ready, which will resume and which are
missing. A run is reused wherever the kit and its data lie (:mod:`emr_lib.runs` compares the
data's names and fingerprint, not its path), so an unpacked run trains no epoch.

What a packed run holds: ``record.json``, ``best.pt`` (without the optimiser's state, which only
resuming needs), the history and the split lists; an interrupted run also its ``last.pt`` (it
resumes); never ``expanded/`` (rebuilt on demand).
"""

from .pack import MANIFEST, WantedRun, describe, episode_runs, pack_runs, reuse_check, unpack_runs
from .times import (
    EPISODES,
    TIMES_FILE,
    episode_times,
    expected_minutes,
    header_lines,
    lab_environment,
    render_guide_block,
    rendered_times,
    run_budget_minutes,
    workshop_params,
)

__all__ = [
    "EPISODES",
    "MANIFEST",
    "WantedRun",
    "describe",
    "episode_runs",
    "pack_runs",
    "reuse_check",
    "unpack_runs",
    "TIMES_FILE",
    "episode_times",
    "expected_minutes",
    "header_lines",
    "lab_environment",
    "render_guide_block",
    "rendered_times",
    "run_budget_minutes",
    "workshop_params",
]
