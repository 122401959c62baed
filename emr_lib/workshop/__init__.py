"""The workshop: the runs handed from the instructor's machine to the learners' (:mod:`.pack`), and the
times and notebook parameters quoted to them, from one file (:mod:`.times`)."""

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
