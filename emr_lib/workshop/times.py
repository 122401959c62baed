"""The times and parameters quoted to learners, from one file (``benchmarks/results/episode-times.json``).

Each episode's teaching and exercise minutes and its run times per profile (the workshop's measured from
the committed run records), the schedules with the notebook parameters their pre-run runs were made
with, the longest run a workshop notebook trains unasked; written into every notebook's header, the
instructor guide's tables, schedules and pre-run commands, and the README by ``python -m emr_lib ledger``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..training.runs import data_names

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
]

# the episodes that train or reuse runs of their own, by notebook number
EPISODES = ("04", "05", "06", "08", "09")

# --- the times quoted to learners, from one file ------------------------------------------------

TIMES_FILE = Path("benchmarks") / "results" / "episode-times.json"
GUIDE = Path("docs") / "instructor-guide.md"
GUIDE_BLOCKS = ("episodes", "schedules", "sichuan")
README_QUICK = ("<!-- quick-time:begin -->", "<!-- quick-time:end -->")


def workshop_params(root: Path) -> dict[str, str]:
    """The notebook parameters a workshop's learners run with (``models``, ``tables``): every schedule's
    in :data:`TIMES_FILE`, which must agree, and so the notebooks' own defaults (a test checks them)."""
    params = {json.dumps(s["params"], sort_keys=True) for s in episode_times(root)["schedules"].values()}
    if len(params) != 1:
        raise ValueError(f"the schedules in {TIMES_FILE} ask for different notebook parameters: {sorted(params)}")
    return json.loads(params.pop())


def expected_minutes(model: str, profile: str, root: Path, data: str | None = None) -> float | None:
    """Minutes a run of ``model`` took in ``profile``: the median wall time of the committed run records
    (``figures/<profile>/run_records``) of that model on the project's 2-core CPU, or None when none is known.
    With ``data``, only the runs on data of those folder names count, when there are any (Sichuan's tiles
    train in about half a Bijie run's time)."""
    records = [
        json.loads(path.read_text()) for path in (root / "figures" / profile / "run_records").glob("*/record.json")
    ]
    records = [r for r in records if r["config"]["model"] == model]
    if data:
        on_data = [r for r in records if data_names(r["config"]["data"]) == data_names(data)]
        records = on_data or records
    minutes = sorted(r["wall_time_s"] / 60 for r in records)
    return minutes[len(minutes) // 2] if minutes else None


def run_budget_minutes(root: Path) -> float:
    """The longest run a workshop notebook trains without being told to go on (:data:`TIMES_FILE`)."""
    return float(episode_times(root)["run_budget_min"])


def lab_environment(profile: str, data: str | None, root: Path) -> dict[str, str]:
    """The ``EMR_*`` variables ``python -m emr_lib lab`` starts JupyterLab with: the profile, the data and,
    in the workshop profile, the parameters the pre-run runs were made with."""
    env = {"EMR_PROFILE": profile}
    if data:
        env["EMR_DATA"] = data
    if profile == "workshop":
        env |= {f"EMR_{key.upper()}": value for key, value in workshop_params(root).items()}
    return env


def _measured(text: str, root: Path) -> str:
    """``{runs:PREFIX}`` in a time -> the range of the wall times of the committed workshop run records
    whose folder starts with PREFIX (``figures/workshop/run_records``), e.g. ``17-21 min``."""

    def minutes(match: re.Match) -> str:
        folders = (root / "figures" / "workshop" / "run_records").glob(f"{match.group(1)}*/record.json")
        times = sorted(json.loads(path.read_text())["wall_time_s"] / 60 for path in folders)
        return f"{times[0]:.0f}-{times[-1]:.0f} min" if times else "not measured yet"

    return re.sub(r"\{runs:([\w+-]+)\}", minutes, text)


def episode_times(root: Path) -> dict:
    """The committed episode times (:data:`TIMES_FILE`): per episode, minutes to teach and for the
    exercises and run times per profile (``{runs:PREFIX}`` measured from the run records); the
    schedules and their notebook parameters."""
    times = json.loads((root / TIMES_FILE).read_text())
    for episode in times["episodes"].values():
        episode["workshop"] = _measured(episode["workshop"], root)
    return times


def header_lines(times: dict, number: str) -> tuple[str, str]:
    """A notebook header's "Time to run" and "Teaching" lines."""
    e = times["episodes"][number]
    run = (
        "**Time to run** (quick and workshop measured on a 2-core CPU, paper estimated; "
        f"`{TIMES_FILE.as_posix()}`): quick {e['quick']}; workshop {e['workshop']}; paper {e['paper']}."
    )
    teach = f"**Teaching:** {e['teach_min']} min" + (
        f" · **Exercises:** {e['exercise_min']} min" if e["exercise_min"] else ""
    )
    return run, teach


def _minutes(clock: str, minutes: int) -> str:
    hours, mins = (int(x) for x in clock.split(":"))
    total = hours * 60 + mins + minutes
    return f"{total // 60}:{total % 60:02d}"


def _slots(times: dict, schedule: dict) -> list[tuple[str, str]]:
    rows, clock = [], schedule["start"]
    for slot in schedule["slots"]:
        if len(slot) == 1:
            e = times["episodes"][slot[0]]
            what = f"{slot[0]} {e['title']}" + (", exercises" if e["exercise_min"] else "")
            minutes = e["teach_min"] + e["exercise_min"]
        else:
            what, minutes = slot
        rows.append((clock, what))
        clock = _minutes(clock, minutes)
    return [*rows, (clock, "end")]


def _prerun(schedule: dict) -> list[str]:
    episodes = [slot[0] for slot in schedule["slots"] if len(slot) == 1]
    training = [e for e in episodes if e in ("04", "05", "06", "09")]  # 09: its few-shot study
    params = schedule["params"]
    flags = f"--models {params['models']} --tables {params['tables']}"
    # each parameter only where a notebook of the run declares it (the pipeline refuses others)
    declared = [f"--param models={params['models']}"] * ("05" in training) + [f"--param tables={params['tables']}"] * (
        "06" in training
    )
    lines = [
        " ".join(
            [
                "python -m emr_lib pipeline --profile workshop --data data/bijie",
                f"--only {','.join(training)}",
                *declared,
            ]
        )
    ]
    if "04" in episodes:  # exercise 2 asks for the next seed; the pipeline does not train it
        lines.append("python -m emr_lib table 2 --rows emr_hrnet --seed 1 --profile workshop --data data/bijie")
    packed = ",".join(e for e in episodes if e in EPISODES)
    lines.append(f"python -m emr_lib workshop pack workshop-runs.zip --only {packed} {flags}")
    return lines


def render_guide_block(times: dict, name: str) -> str:
    """The instructor guide's generated block ``name`` (episodes table, or schedules with pre-run commands)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    note = f"_Written by `python -m emr_lib ledger` from `{TIMES_FILE.as_posix()}`; do not edit by hand._"
    if name == "episodes":
        lines = [
            note,
            "",
            "| episode | teach | exercises | runs live in the workshop profile | what to pre-run |",
            "|---|---|---|---|---|",
            *[
                f"| {n} {e['title']} | {e['teach_min']} min | {e['exercise_min'] or '-'} min | {e['workshop']} | "
                f"{e['prerun']} |".replace("| - min |", "| - |")
                for n, e in times["episodes"].items()
            ],
            "",
            f"The quick profile runs all {len(times['episodes'])} notebooks in about "
            f"{round(times['quick_pipeline']['seconds'] / 60)} min ({times['quick_pipeline']['seconds']} s, "
            f"{times['quick_pipeline']['source']}).",
        ]
    else:
        lines = [note]
        for title, schedule in times["schedules"].items():
            params = schedule["params"]
            lines += [
                "",
                f"### {title}",
                "",
                "Learners start JupyterLab with the parameters the pre-run runs were made with "
                f"(models {params['models']}, tables {params['tables']}), on any system:",
                "`python -m emr_lib lab --profile workshop --data data/bijie`.",
                "",
                "| time | what |",
                "|---|---|",
                *[f"| {clock} | {what} |" for clock, what in _slots(times, schedule)],
                "",
                "Before the day, on one machine, one after another (never two trainings at once on 2 cores):",
                "",
                "```bash",
                *_prerun(schedule),
                "```",
            ]
    return "\n".join([begin, *lines, end])


def render_sichuan_block(root: Path) -> str:
    """The guide's block on Sichuan's scenes in place of Bijie: what a run took on each, from the records."""
    note = "_Written by `python -m emr_lib ledger` from the committed run records; do not edit by hand._"
    took = []
    for model, label in (("hrnet", "HRNet"), ("emr_hrnet", "EMR-HRNet")):
        sichuan = expected_minutes(model, "workshop", root, "sichuan")
        bijie = expected_minutes(model, "workshop", root, "bijie-224")
        if sichuan and bijie and sichuan != bijie:
            took.append(f"{label} about {sichuan:.0f} min (Bijie: {bijie:.0f})")
    times = (
        f"A workshop run took {', '.join(took)} on this project's 2-core CPU, the medians of the committed "
        "run records on each"
        if took
        else "No run on Sichuan is committed yet, so no time is quoted"
    )
    lines = [
        note,
        "",
        "Notebooks 01 and 05 can use the paper's Sichuan scenes instead of Bijie (Table 3, Figure 11). Prepare",
        "them once as data/README.md says (`python -m emr_lib data prepare sichuan SRC data/sichuan --size 480",
        "--tile 160`), then start the lab with `--data data/sichuan` and keep 05's `models` to HRNet and",
        f"EMR-HRNet. {times}. Pre-run with",
        "`python -m emr_lib table 3 --rows hrnet emr_hrnet --profile workshop --data data/sichuan`.",
        "",
        *_combination_lines(root),
    ]
    return "\n".join(["<!-- sichuan:begin -->", *lines, "<!-- sichuan:end -->"])


def _combination_lines(root: Path) -> list[str]:
    """The guide's lines on notebook 06 over Bijie + Sichuan (the paper's ablation data): what a run took there,
    the median of the committed records of its Table 4-5 rows (the split study's runs aside)."""
    folders = (root / "figures" / "workshop" / "run_records").glob("bijie+sichuan_ablation_*/record.json")
    minutes = sorted(
        json.loads(path.read_text())["wall_time_s"] / 60
        for path in folders
        if not path.parent.name.endswith(("_expanded", "_leaky"))
    )
    if not minutes:
        return []
    median, budget = minutes[len(minutes) // 2], run_budget_minutes(root)
    past = f"past a workshop run's budget ({budget:.0f} min)" if median > budget else "within a workshop run's budget"
    return [
        "Notebook 06 can run the ablation on Bijie and Sichuan together, as the paper did (`--data",
        f"data/bijie,data/sichuan`). A run there took about {median:.0f} min on this project's 2-core CPU (the median",
        f"of {len(minutes)} committed runs), {past}, so pre-run its six Table 4 rows the evening before:",
        "`python -m emr_lib pipeline --profile workshop --data data/bijie,data/sichuan --only 06 --param tables=4",
        "--go-on`.",
    ]


def _replace_block(text: str, begin: str, end: str, block: str, where: str) -> str:
    if begin not in text or end not in text:
        raise ValueError(f"{where} has no {begin} ... {end} block")
    before, rest = text.split(begin, 1)
    return before + block + rest.split(end, 1)[1]


def rendered_times(root: Path) -> dict[Path, str]:
    """Every file that quotes the episode times, as it should read: the guide, the README and the
    notebooks (their headers)."""
    times = episode_times(root)
    guide = (root / GUIDE).read_text()
    for name in GUIDE_BLOCKS:
        block = render_sichuan_block(root) if name == "sichuan" else render_guide_block(times, name)
        guide = _replace_block(guide, f"<!-- {name}:begin -->", f"<!-- {name}:end -->", block, str(GUIDE))
    readme = (root / "README.md").read_text()
    quick = f"{README_QUICK[0]}about {round(times['quick_pipeline']['seconds'] / 60)} minutes{README_QUICK[1]}"
    files = {root / GUIDE: guide, root / "README.md": _replace_block(readme, *README_QUICK, quick, "README.md")}
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        files[path] = _with_header_times(path.read_text(), *header_lines(times, path.name[:2]))
    return files


def _with_header_times(text: str, run: str, teach: str) -> str:
    notebook = json.loads(text)
    header = "".join(notebook["cells"][0]["source"])
    paragraphs = header.split("\n\n")
    for i, paragraph in enumerate(paragraphs):
        if paragraph.startswith("**Time to run**"):
            paragraphs[i] = run
        elif paragraph.startswith("**Teaching:**"):
            paragraphs[i] = teach
    notebook["cells"][0]["source"] = "\n\n".join(paragraphs).splitlines(keepends=True)
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
