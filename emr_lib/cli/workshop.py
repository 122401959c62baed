"""The ``workshop`` command: hand the runs a workshop's episodes need to the learners (pack, unpack)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..paths import project_root, resolve_data
from ..training.profiles import PROFILES
from ..workshop.pack import EPISODES, describe, episode_runs, pack_runs, reuse_check, unpack_runs
from ..workshop.times import workshop_params
from .common import PROFILE_HELP, CLIError


def _cmd_workshop(args: argparse.Namespace) -> None:
    runs_root = Path(args.runs) if args.runs else project_root() / "runs" / "notebooks"
    if args.action == "pack":
        episodes = [e.strip().zfill(2) for part in args.only or [",".join(EPISODES)] for e in part.split(",")]
        unknown = sorted(set(episodes) - set(EPISODES))
        if unknown:
            raise CLIError(f"--only {','.join(unknown)}: the episodes with runs are {', '.join(EPISODES)}")
        params = workshop_params(project_root())  # the notebooks' own defaults
        wanted = episode_runs(episodes, args.models or params["models"], args.tables or params["tables"], args.seed)
        manifest = pack_runs(args.archive, runs_root, args.profile, wanted)
        print(describe(manifest, runs_root))
        print(
            f"packed into {args.archive}; on each learner's machine: python -m emr_lib workshop unpack {args.archive}"
        )
        return
    if not Path(args.archive).is_file():
        raise CLIError(f"{args.archive} does not exist: copy the instructor's archive here first")
    try:
        manifest = unpack_runs(args.archive, runs_root)
    except (ValueError, OSError) as err:
        raise CLIError(str(err)) from err
    print(describe(manifest, runs_root))
    data = resolve_data(args.data)
    problems = reuse_check(manifest, runs_root, data, project_root())
    for problem in problems:
        print(f"WARN  {problem}")
    if not problems:
        print(f"every ready run will be reused by notebooks of profile {manifest['profile']} on {Path(data).name}")


def add(commands) -> None:
    """``workshop pack|unpack``: hand the pre-run runs of a workshop to the learners."""
    workshop = commands.add_parser(
        "workshop",
        help="pack the runs a workshop's episodes need into one zip, or unpack it where the notebooks look",
        description="pack: gather the runs episodes 04-09 will ask for (at the given notebook parameters) "
        "from the runs folder into ARCHIVE, with a manifest. unpack: put them into the runs folder and "
        "say which are ready, which resume and which are missing.",
    )
    workshop.add_argument("action", choices=["pack", "unpack"])
    workshop.add_argument("archive", help="the zip file to write (pack) or read (unpack)")
    workshop.add_argument("--profile", default="workshop", choices=list(PROFILES), help=PROFILE_HELP)
    workshop.add_argument("--only", nargs="+", metavar="NN", help="pack: only these episodes, e.g. --only 04,05")
    workshop.add_argument("--models", help="pack: notebook 05's models parameter (default: the workshop's)")
    workshop.add_argument("--tables", help="pack: notebook 06's tables parameter (default: the workshop's)")
    workshop.add_argument("--seed", type=int, default=0, help="pack: the notebooks' seed parameter (default 0)")
    workshop.add_argument("--runs", help="runs folder (default: runs/notebooks in the project, the notebooks')")
    workshop.add_argument("--data", help="unpack: the data the notebooks will use (default: the notebooks' rule)")
    workshop.set_defaults(func=_cmd_workshop)
