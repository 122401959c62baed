import json
import os
import shutil
import zipfile

import pytest

from conftest import REPO
from emr_lib.cli import main
from emr_lib.training.loop import train
from emr_lib.training.profiles import get_config
from emr_lib.training.runs import plan_run
from emr_lib.workshop import MANIFEST, episode_runs, pack_runs, unpack_runs

TINY = dict(synthetic_n=24, synthetic_size=64, size=64, epochs=1, batch_size=8)


def test_episode_runs_follow_the_notebooks_parameters():
    runs = {(run.name, run.seed): run.episodes for run in episode_runs(("04", "05", "06"), "hrnet,emr_hrnet", "4")}
    assert runs[("emr_hrnet", 0)] == ("04", "05")
    assert runs[("emr_hrnet", 1)] == ("04",)  # notebook 04's exercise 2: the next seed
    assert ("hrnet", 0) in runs and ("pspnet", 0) not in runs
    assert sum(name.startswith("ablation_") for name, _ in runs) == 6  # Table 4 only
    table5 = episode_runs(("06",), tables="4,5")
    assert [run.episodes for run in table5 if run.name == "ablation_dema"] == [("06",)]  # shared with Table 5, once


def _snapshot(root):
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_a_packed_run_is_reused_at_another_path_with_no_epoch_trained(tmp_path, capsys):
    teacher, learner = tmp_path / "teacher" / "kit", tmp_path / "elsewhere" / "learner" / "kit"
    config = get_config("quick", model="hrnet", **TINY)
    train(config, teacher / "runs" / "quick" / "hrnet", progress=False)
    wanted = [run for run in episode_runs(("05",), "hrnet") if run.name == "hrnet"]
    manifest = pack_runs(tmp_path / "runs.zip", teacher / "runs", "quick", wanted)
    assert [entry["status"] for entry in manifest["runs"]] == ["ready"]
    with zipfile.ZipFile(tmp_path / "runs.zip") as zf:
        names = zf.namelist()
    assert MANIFEST in names and "quick/hrnet/record.json" in names and "quick/hrnet/last.pt" not in names

    shutil.rmtree(teacher)  # the instructor's folder is gone: nothing may point back to it
    unpacked = unpack_runs(tmp_path / "runs.zip", learner / "runs")
    assert unpacked["runs"][0]["unpacked"] == "ready"
    before = _snapshot(learner / "runs")
    plan = plan_run(learner / "runs" / "quick" / "hrnet", config)
    assert plan.action == "reuse"
    assert main(["workshop", "unpack", str(tmp_path / "runs.zip"), "--runs", str(learner / "runs")]) == 0
    assert "kept" in capsys.readouterr().out  # a second unpack leaves the learner's runs alone
    assert _snapshot(learner / "runs") == before


def test_episode_09s_few_shot_study_is_packed_and_reused_where_the_learner_keeps_it(tmp_path, capsys):
    from emr_lib.data import synthetic_scene
    from emr_lib.experiments.transfer import EPISODE_DRAWS, scene_target, transfer_study

    shots, seeds = EPISODE_DRAWS["quick"]
    wanted = episode_runs(("09",), profile="quick")
    assert len(wanted) == 1 + 2 * len(shots) * len(seeds)  # the source model, then fine-tuned and scratch runs
    teacher, learner = tmp_path / "teacher", tmp_path / "elsewhere" / "learner"
    image, mask = synthetic_scene(grid=6, size=64)
    for kit in (teacher, learner):  # each machine cuts the same tiles from its own copy of the scene
        scene_target(image, mask, kit / "work" / "transfer-target", tile=64)
    source = teacher / "runs" / "quick" / "emr_hrnet"
    train(get_config("quick", model="hrnet", **TINY), source, progress=False)
    study = teacher / "runs" / "quick" / "09_mapping" / "transfer"
    tiny = {key: value for key, value in TINY.items() if not key.startswith("synthetic")}
    target = str(teacher / "work" / "transfer-target")
    first = transfer_study(source / "best.pt", target, shots, seeds, study, "quick", overrides=tiny, progress=False)
    manifest = pack_runs(tmp_path / "runs.zip", teacher / "runs", "quick", wanted)
    assert [entry["status"] for entry in manifest["runs"]] == ["ready"] * len(wanted)

    shutil.rmtree(teacher / "runs")
    unpack_runs(tmp_path / "runs.zip", learner / "runs")
    capsys.readouterr()
    moved = learner / "runs" / "quick"
    again = transfer_study(
        moved / "emr_hrnet" / "best.pt",  # without its optimiser now: the same weights
        str(learner / "work" / "transfer-target"),
        shots,
        seeds,
        moved / "09_mapping" / "transfer",
        "quick",
        overrides=tiny,
        progress=False,
    )
    assert "parameters on" not in capsys.readouterr().out  # no run trained again
    assert again["results"] == first["results"]


def test_unpack_refuses_an_archive_that_writes_outside_its_folder(tmp_path):
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr(MANIFEST, json.dumps({"profile": "quick", "runs": []}))
        zf.writestr("../escape.txt", "x")
    with pytest.raises(ValueError, match="outside"):
        unpack_runs(tmp_path / "bad.zip", tmp_path / "runs")
    assert not (tmp_path / "escape.txt").exists()


def test_unpacking_a_file_that_is_no_zip_is_one_line(tmp_path, capsys):
    from emr_lib.cli import main

    (tmp_path / "runs.zip").write_text("not a zip")
    assert main(["workshop", "unpack", str(tmp_path / "runs.zip"), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a zip archive" in err and len(err.splitlines()) == 1


def _bash_block(markdown: str, after: str) -> list[str]:
    """The command lines of the first bash block after the line ``after`` in a document."""
    text = markdown.split(after, 1)[1]
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip().startswith("python -m emr_lib")]


def _as_quick(line: str, archive) -> list[str]:
    """A guide's command as the quick rehearsal runs it: the quick profile, the synthetic data, a scratch archive."""
    import shlex

    line = line.replace("--profile workshop", "--profile quick").replace("--data data/bijie", "--data synthetic")
    args = shlex.split(line.replace("workshop-runs.zip", str(archive)))[3:]  # after "python -m emr_lib"
    if args[:2] == ["workshop", "pack"] and "--profile" not in args:
        args += ["--profile", "quick"]
    return args


def test_rehearsal_the_guides_own_commands_pre_run_pack_and_a_learners_notebooks_train_nothing(
    tmp_path, capsys, monkeypatch
):
    """The 3-hour schedule's pre-run block and the learner set-up page's block, taken from the documents and
    run in the quick profile: the pre-run trains nothing the guide did not plan, and after unpacking
    elsewhere and starting as `lab` would, the learner's notebooks 04 and 05 train nothing."""
    import papermill

    from emr_lib.workshop import lab_environment, workshop_params

    teacher_runs = REPO / "runs" / "notebooks"
    if not (teacher_runs / "quick" / "emr_hrnet" / "record.json").is_file():
        if os.environ.get("CI"):
            pytest.fail("no quick runs: the README's set-up command runs the pipeline first")
        pytest.skip("run python -m emr_lib pipeline --profile quick first")
    archive = tmp_path / "workshop-runs.zip"
    guide = (REPO / "docs" / "instructor-guide.md").read_text()
    prerun = _bash_block(guide, "### A 3-hour session")
    assert [line.split()[3] for line in prerun] == ["pipeline", "table", "workshop"]
    params = workshop_params(REPO)
    planned = {(r.name, r.seed) for r in episode_runs(("04", "05"), params["models"], params["tables"])}
    before = {p.parent.name for p in (teacher_runs / "quick").glob("*/record.json")}
    for line in prerun:
        assert main(_as_quick(line, archive)) == 0, line
    made = {p.parent.name for p in (teacher_runs / "quick").glob("*/record.json")} - before
    planned_folders = {name if seed == 0 else f"{name}-seed{seed}" for name, seed in planned}
    assert made <= planned_folders, f"the pre-run trained runs the guide did not plan: {made - planned_folders}"

    learner = tmp_path / "learner"
    setup = _bash_block((REPO / "docs" / "learner-setup.md").read_text(), "Your instructor gives you")
    unpack, lab = (_as_quick(line, archive) for line in setup)
    assert unpack[:2] == ["workshop", "unpack"] and lab[0] == "lab"
    assert main([*unpack, "--runs", str(learner / "runs")]) == 0
    assert "WARN" not in capsys.readouterr().out  # the learner's kit and data reuse every run
    before = _snapshot(learner / "runs")
    env = lab_environment("quick", "synthetic", REPO)  # what `lab --profile quick --data synthetic` starts with
    folders = {"EMR_OUTPUT": str(learner / "runs"), "EMR_FIGURES": str(learner / "figures"), "EMR_DEVICE": "cpu"}
    for key, value in {**env, **folders}.items():  # the notebooks read them, as in the lab: no parameter given
        monkeypatch.setenv(key, value)
    for name in ("04_training", "05_model_comparison"):
        papermill.execute_notebook(
            str(REPO / "notebooks" / f"{name}.ipynb"),
            str(tmp_path / f"{name}.ipynb"),
            cwd=str(tmp_path),
            progress_bar=False,
            kernel_name="python3",
        )
    assert _snapshot(learner / "runs") == before  # no run trained, resumed, moved aside or rewritten
    outputs = "".join(
        "".join(o.get("text", ""))
        for c in json.loads((tmp_path / "05_model_comparison.ipynb").read_text())["cells"]
        for o in c.get("outputs", [])
    )
    assert "reuse" in outputs and "parameters on" not in outputs  # reused, no training's first line


def test_the_guide_schedules_fit_and_pre_run_exactly_what_their_episodes_ask_for():
    import shlex

    from emr_lib.workshop.times import _prerun, _slots, episode_times

    times = episode_times(REPO)
    for title, schedule in times["schedules"].items():
        slots = _slots(times, schedule)
        hours, minutes = (int(x) for x in slots[-1][0].split(":"))
        start_h, start_m = (int(x) for x in schedule["start"].split(":"))
        length = hours * 60 + minutes - start_h * 60 - start_m
        assert length <= (180 if "3-hour" in title else 8 * 60), f"{title} takes {length} min"
        episodes = [slot[0] for slot in schedule["slots"] if len(slot) == 1]
        assert episodes == sorted(episodes)  # in the series' order
        commands = [shlex.split(line) for line in _prerun(schedule)]
        pack = next(c for c in commands if c[3:5] == ["workshop", "pack"])
        only = pack[pack.index("--only") + 1].split(",")
        assert set(only) == {e for e in episodes if e in ("04", "05", "06", "08", "09")}
        params = schedule["params"]
        assert (
            pack[pack.index("--models") + 1] == params["models"]
            and pack[pack.index("--tables") + 1] == params["tables"]
        )
        pipeline = next(c for c in commands if c[3] == "pipeline")
        trained = pipeline[pipeline.index("--only") + 1].split(",")
        assert trained == [e for e in episodes if e in ("04", "05", "06", "09")]
        wanted = {(r.name, r.seed) for r in episode_runs(only, params["models"], params["tables"])}
        # what the pipeline trains (notebooks 04-06 and 09 at these parameters), plus the next seed of 04's
        # exercise 2, which the table command trains: nothing more, nothing less
        made = {(r.name, r.seed) for r in episode_runs(trained, params["models"], params["tables"])}
        assert wanted == made
        assert ("emr_hrnet", 1) in wanted and any(c[3] == "table" and "--seed" in c for c in commands)


def test_notebook_defaults_are_the_workshops_own_choices_and_lab_starts_with_them(monkeypatch, capsys):
    import subprocess

    from emr_lib.cli import main
    from emr_lib.notebook import setting
    from emr_lib.workshop import workshop_params

    params = workshop_params(REPO)
    for key in ("models", "tables"):  # the notebooks' defaults: no "all" that trains for hours unasked
        monkeypatch.delenv(f"EMR_{key.upper()}", raising=False)
        assert setting(key) == params[key], key
    for notebook, key in (("05_model_comparison", "models"), ("06_ablation", "tables")):
        source = (REPO / "notebooks" / f"{notebook}.ipynb").read_text()
        assert f'{key} = setting(\\"{key}\\", {key})' in source, notebook  # None in the cell takes the default
    started = {}

    def fake_run(command, env):
        started.update(command=command, env=env)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert main(["lab", "--profile", "workshop", "--data", "synthetic", "--", "--no-browser"]) == 0
    assert started["command"][1:4] == ["-m", "jupyter", "lab"] and started["command"][-1] == "--no-browser"
    env = started["env"]
    assert env["EMR_PROFILE"] == "workshop" and env["EMR_DATA"] == "synthetic"
    assert env["EMR_MODELS"] == params["models"] and env["EMR_TABLES"] == params["tables"]
    assert "EMR_MODELS=" in capsys.readouterr().out


def test_unpack_says_which_runs_a_learners_kit_or_data_would_not_reuse(tmp_path):
    from emr_lib import __version__
    from emr_lib.training.run_data import run_datasets
    from emr_lib.workshop import reuse_check

    config = get_config("quick", model="hrnet")
    folder = tmp_path / "runs" / "quick" / "hrnet"
    folder.mkdir(parents=True)
    fingerprint = run_datasets(config).fingerprint()
    record = {"config": config.to_dict(), "data": "synthetic", "data_fingerprint": fingerprint}
    (folder / "record.json").write_text(json.dumps(record))
    entry = {"run": "hrnet", "seed": 0, "episodes": ["05"], "status": "ready", "data": "synthetic"}
    manifest = {"profile": "quick", "runs": [{**entry, "data_fingerprint": fingerprint}]}
    manifest["packed_by"] = {"emr_lib": __version__}
    assert reuse_check(manifest, tmp_path / "runs", "synthetic", REPO) == []
    assert main(["data", "synthetic", str(tmp_path / "mine"), "--n", "12", "--size", "64"]) == 0
    (other,) = reuse_check(manifest, tmp_path / "runs", str(tmp_path / "mine"), REPO)
    assert (
        "your data mine is not the data the runs read (synthetic)" in other and "episodes 05 would train hrnet" in other
    )
    drifted = {**record, "config": {**record["config"], "lr": 0.5}}
    (folder / "record.json").write_text(json.dumps(drifted))
    (drift,) = reuse_check(manifest, tmp_path / "runs", "synthetic", REPO)
    assert "quick profile differs in lr" in drift
    (folder / "record.json").write_text(json.dumps(record))
    manifest["packed_by"]["emr_lib"] = "0.0.1"
    (version,) = reuse_check(manifest, tmp_path / "runs", "synthetic", REPO)
    assert "packed with kit 0.0.1" in version
