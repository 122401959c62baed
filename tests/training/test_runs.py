import json
import subprocess

import pytest

from emr_lib.training.loop import train
from emr_lib.training.profiles import get_config
from emr_lib.training.runs import RunFolderError, plan_run, run_dir, run_or_reuse

TINY = dict(synthetic_n=40, synthetic_size=64, size=64, epochs=2, batch_size=8)


def test_every_mode_of_the_run_folder_rule(tmp_path, capsys):
    config = get_config("quick", **TINY)
    out = tmp_path / "run"
    assert plan_run(out, config, "refuse").action == "new"  # nothing there yet
    train(config, out, stop_after=1, progress=False)  # interrupted after epoch 1
    with pytest.raises(RunFolderError, match="already holds a run; pass --resume"):
        plan_run(out, config, "refuse")
    assert plan_run(out, config, "resume").action == plan_run(out, config, "auto").action == "resume"
    record = run_or_reuse(config, out, "resume", progress=False)
    assert record["status"] == "finished" and record["epochs_run"] == 2
    assert plan_run(out, config, "auto").record == record  # finished, same settings: reused

    other = get_config("quick", **{**TINY, "epochs": 3})
    with pytest.raises(RunFolderError, match=r"other settings \(epochs: 2 there, 3 now\)"):
        plan_run(out, other, "resume")
    plan = plan_run(out, other, "auto")  # the notebooks' rule: move the run aside, never delete it
    assert plan.action == "new" and not out.exists()
    assert json.loads((plan.moved_to / "record.json").read_text()) == record
    assert "is kept in" in capsys.readouterr().out


def test_a_folder_without_a_run_is_trained_in_place(tmp_path):
    out = tmp_path / "run"
    (out / "splits").mkdir(parents=True)  # what a run killed before its first epoch ended leaves
    plan = plan_run(out, get_config("quick", **TINY), "overwrite")
    assert plan.action == "new" and plan.moved_to is None and (out / "splits").is_dir()


def test_run_dir_keeps_seeds_side_by_side(tmp_path):
    assert run_dir(tmp_path, "quick", "hrnet") == tmp_path / "quick" / "hrnet"
    assert run_dir(tmp_path, "quick", "hrnet", seed=2) == tmp_path / "quick" / "hrnet-seed2"


def test_runs_made_before_a_setting_existed_are_still_reused(tmp_path, capsys):
    config = get_config("quick", **TINY)
    out = tmp_path / "run"
    record = run_or_reuse(config, out, progress=False)
    stored = json.loads((out / "record.json").read_text())
    del stored["config"]["freeze_epochs"], stored["config"]["pretrained"]  # as a record of an older kit
    (out / "record.json").write_text(json.dumps(stored))
    assert plan_run(out, config, "auto").action == "reuse"
    assert plan_run(out, get_config("quick", **TINY, freeze_epochs=1), "auto").action == "new"  # not the default
    assert record["status"] == "finished"


def test_a_split_without_a_test_part_reports_the_last_epoch_and_old_runs_are_re_evaluated(tmp_path, capsys):
    from emr_lib.evaluation.inference import evaluate
    from emr_lib.training.checkpoints import load_checkpoint, model_from_checkpoint
    from emr_lib.training.run_data import run_datasets

    config = get_config("quick", **TINY, split_ratios={"train": 0.8, "val": 0.2})  # the ablation's 4:1
    out = tmp_path / "ablation"
    record = train(config, out, progress=False)
    assert record["test_split"] == "val" and record["test_selection"] == "last epoch (2)"
    last, _ = evaluate(model_from_checkpoint(out / "last.pt"), run_datasets(config).test, progress=False)
    assert record["test_metrics"] == pytest.approx(last)
    with_test = train(get_config("quick", **TINY), tmp_path / "with-test", progress=False)
    assert (
        with_test["test_selection"]
        == f"best validation epoch ({load_checkpoint(tmp_path / 'with-test' / 'best.pt')['epoch']})"
    )

    # a record from before: best epoch reported, no test_selection; reusing it re-evaluates once
    old = {k: v for k, v in record.items() if k not in ("test_selection", "test_per_image")}
    old["test_metrics"] = {**record["test_metrics"], "mIoU": 0.123}
    (out / "record.json").write_text(json.dumps(old))
    capsys.readouterr()
    updated = run_or_reuse(config, out, "auto", progress=False)
    assert "no test part, so the last epoch (2) is reported" in capsys.readouterr().out
    assert updated["test_metrics"] == pytest.approx(last) and updated["test_metrics_best_epoch"]["mIoU"] == 0.123
    assert json.loads((out / "record.json").read_text())["test_per_image"]


def test_runs_travel_with_their_data_to_another_path(tmp_path):
    """A kit folder moved (or zipped and unzipped) elsewhere reuses its finished runs and resumes its
    interrupted ones: a run's data is what it holds, not where it lies."""
    import shutil

    from emr_lib.data import SyntheticLandslides

    teacher = tmp_path / "teacher" / "kit"
    SyntheticLandslides(40, size=64, seed=0).save(teacher / "data" / "tiny")
    settings = {**TINY, "data": str(teacher / "data" / "tiny")}
    finished = run_or_reuse(get_config("quick", **settings), teacher / "runs" / "done", progress=False)
    train(get_config("quick", **settings), teacher / "runs" / "half", stop_after=1, progress=False)

    learner = tmp_path / "learner" / "elsewhere" / "kit"
    shutil.copytree(teacher, learner)
    shutil.rmtree(teacher)  # the teacher's paths are gone
    moved = get_config("quick", **{**TINY, "data": str(learner / "data" / "tiny")})
    before = (learner / "runs" / "done" / "record.json").read_text()
    assert plan_run(learner / "runs" / "done", moved, "auto").action == "reuse"  # no epoch trained
    assert run_or_reuse(moved, learner / "runs" / "done", progress=False) == finished
    assert (learner / "runs" / "done" / "record.json").read_text() == before  # the record is unchanged
    assert plan_run(learner / "runs" / "half", moved, "auto").action == "resume"
    assert not list((learner / "runs").glob("*.replaced-*"))  # nothing moved aside

    # a record as committed names its data by name only, and is reused all the same
    from emr_lib.training.runs import portable_record

    portable = portable_record(finished)
    assert portable["data"] == portable["config"]["data"] == "tiny" and portable["split_dir"] == "splits"
    assert not any(str(tmp_path) in json.dumps(value) for value in portable.values())
    (learner / "runs" / "done" / "record.json").write_text(json.dumps(portable))
    assert plan_run(learner / "runs" / "done", moved, "auto").action == "reuse"

    # the same folder name holding other images is another dataset: not reused
    SyntheticLandslides(40, size=64, seed=1).save(tmp_path / "other" / "tiny")
    other = get_config("quick", **{**TINY, "data": str(tmp_path / "other" / "tiny")})
    with pytest.raises(RunFolderError, match="other settings"):
        plan_run(learner / "runs" / "done", other, "resume")


def test_kept_records_rebuild_a_table_on_a_fresh_machine_without_training(tmp_path, capsys):
    """``table --from-records``: a record kept beside a table (``keep_records``, as committed) is copied into a
    runs folder that has no run yet and reused; a folder that holds a run keeps it; other settings train."""
    from emr_lib.data import SyntheticLandslides
    from emr_lib.training.runs import keep_records, reuse_kept_record

    SyntheticLandslides(40, size=64, seed=0).save(tmp_path / "data" / "tiny")
    config = get_config("quick", **TINY, data=str(tmp_path / "data" / "tiny"))
    trained = run_or_reuse(config, tmp_path / "old" / "run", progress=False)
    keep_records(tmp_path / "kept", {0: {"row": tmp_path / "old" / "run"}}, {0: {"row": trained}})

    fresh = tmp_path / "fresh" / "run"
    assert not reuse_kept_record(tmp_path / "kept", tmp_path / "fresh" / "other_name")  # nothing kept by that name
    assert reuse_kept_record(tmp_path / "kept", fresh)
    assert plan_run(fresh, config, "auto").action == "reuse"  # no epoch trained, no weights needed
    assert run_or_reuse(config, fresh, progress=False)["test_metrics"] == trained["test_metrics"]
    assert not (fresh / "last.pt").exists()
    # no weights, so no note that they may not match the models of today, however old the record
    from emr_lib.provenance import models_changed_since

    first = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], capture_output=True, text=True).stdout
    old = {**json.loads((fresh / "record.json").read_text()), "commit": first.strip()[:12] or "unknown"}
    (fresh / "record.json").write_text(json.dumps(old))
    capsys.readouterr()
    run_or_reuse(config, fresh, progress=False)
    assert "reusing" in (shown := capsys.readouterr().out) and "has changed since" not in shown
    (fresh / "best.pt").write_bytes(b"")  # weights beside it: the note shows where the models changed since
    run_or_reuse(config, fresh, progress=False)
    assert ("has changed since" in capsys.readouterr().out) == bool(models_changed_since(old["commit"]))

    (fresh / "record.json").write_text(json.dumps({**trained, "status": "mine"}))
    assert not reuse_kept_record(tmp_path / "kept", fresh)  # a folder with a run of its own keeps it
    assert json.loads((fresh / "record.json").read_text())["status"] == "mine"

    longer = get_config("quick", **{**TINY, "epochs": 3}, data=str(tmp_path / "data" / "tiny"))
    elsewhere = tmp_path / "elsewhere" / "run"
    assert reuse_kept_record(tmp_path / "kept", elsewhere)
    assert plan_run(elsewhere, longer, "auto", move=False).action == "new"  # other settings: trained, not reused


def test_a_fine_tuning_run_is_reused_wherever_its_source_weights_lie(tmp_path):
    import torch

    from emr_lib.training.checkpoints import load_checkpoint, weights_digest

    train(get_config("quick", **TINY), tmp_path / "source", progress=False)
    tuned = get_config("quick", **TINY, init=str(tmp_path / "source" / "best.pt"))
    record = run_or_reuse(tuned, tmp_path / "tuned", progress=False)
    assert record["init_weights"] == weights_digest(tmp_path / "source" / "best.pt")

    # the source unpacked elsewhere without its optimiser (a workshop archive): the same weights
    state = load_checkpoint(tmp_path / "source" / "best.pt")
    state.update(optimizer=None)
    torch.save(state, tmp_path / "copy.pt")
    moved = get_config("quick", **TINY, init=str(tmp_path / "copy.pt"))
    assert plan_run(tmp_path / "tuned", moved, "auto").action == "reuse"

    state["model"] = {k: v + 1 if v.is_floating_point() else v for k, v in state["model"].items()}
    torch.save(state, tmp_path / "other.pt")  # other weights: another run
    other = get_config("quick", **TINY, init=str(tmp_path / "other.pt"))
    assert plan_run(tmp_path / "tuned", other, "auto").action == "new"


def test_a_run_made_by_kit_0_1_0_before_the_packages_were_regrouped_is_reused(tmp_path, capsys):
    """fixtures/run-0.1.0: the record, history and splits of a run trained by the flat 0.1.0 layout (commit
    9b177fe, ``emr_lib.train.train``); its checkpoints are left out for size, as a reuse reads the record."""
    import shutil
    from pathlib import Path

    from emr_lib import __version__

    fixture = Path(__file__).parent / "fixtures" / "run-0.1.0"
    record = json.loads((fixture / "record.json").read_text())
    assert record["emr_lib"] == "0.1.0" and __version__ != "0.1.0"
    out = tmp_path / "hrnet"
    shutil.copytree(fixture, out)
    config = get_config("quick", model="hrnet", **TINY)
    assert plan_run(out, config, "auto").action == "reuse"
    assert run_or_reuse(config, out)["test_metrics"] == record["test_metrics"]
    assert "reusing" in capsys.readouterr().out
