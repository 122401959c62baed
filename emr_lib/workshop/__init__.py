"""The workshop and the kit's own tooling: runs handed from the instructor's machine to the learners'
(:mod:`.pack`), the times quoted to them (:mod:`.times`), the notebooks executed in order (:mod:`.pipeline`),
the site (:mod:`.site`), the checks of a learner's machine (:mod:`.doctor`) and the results ledger (:mod:`.ledger`).
"""

from .doctor import CHECKS, Check, run_doctor
from .ledger import PAPER_ITEMS, render_ledger, render_readme_results, stale_files, write_ledger
from .pack import MANIFEST, WantedRun, describe, episode_runs, pack_runs, reuse_check, unpack_runs
from .pipeline import PipelineError, list_notebooks, run_pipeline, scene_warning, store_checked_outputs
from .site import SiteError, build_site
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
    "TIMES_FILE",
    "episode_times",
    "workshop_params",
    "lab_environment",
    "expected_minutes",
    "run_budget_minutes",
    "header_lines",
    "render_guide_block",
    "rendered_times",
    "WantedRun",
    "episode_runs",
    "pack_runs",
    "unpack_runs",
    "reuse_check",
    "describe",
    "MANIFEST",
    "PipelineError",
    "list_notebooks",
    "run_pipeline",
    "scene_warning",
    "store_checked_outputs",
    "build_site",
    "SiteError",
    "Check",
    "run_doctor",
    "CHECKS",
    "PAPER_ITEMS",
    "render_ledger",
    "render_readme_results",
    "stale_files",
    "write_ledger",
]
