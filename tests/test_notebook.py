import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from emr_lib.notebook import Context
from emr_lib.training.loop import train


def test_notebook_runs_are_reused_resumed_and_never_deleted(tmp_path, capsys):
    tiny = dict(synthetic_n=40, synthetic_size=64, size=64, epochs=2, batch_size=8)
    ctx = Context("t", "quick", "synthetic", "cpu", 0, tmp_path / "runs", tmp_path / "figures")
    first = ctx.run("demo", progress=False, **tiny)
    assert ctx.run("demo", progress=False, **tiny) == first
    assert "reusing" in capsys.readouterr().out

    # killed in epoch 2: last.pt holds epoch 1, and record.json is only written at the end
    train(ctx.config(**tiny), ctx.run_dir("killed"), stop_after=1, progress=False)
    (ctx.run_dir("killed") / "record.json").unlink()
    resumed = ctx.run("killed", progress=False, **tiny)
    assert "resuming" in capsys.readouterr().out
    assert resumed["test_confusion_matrix"] == first["test_confusion_matrix"]

    seed1 = dataclasses.replace(ctx, seed=1)
    second = seed1.run("demo", progress=False, **tiny)
    assert second["seed"] == 1 and seed1.run_dir("demo").name == "demo-seed1"
    assert ctx.run("demo", progress=False, **tiny) == first  # seed 0 is still there
    assert "seed 1" in seed1.provenance_text() and "seed" not in ctx.provenance_text()
    assert ctx.seed_records("demo") == seed1.seed_records("demo") == {0: first, 1: second}

    shorter = ctx.run("demo", progress=False, **{**tiny, "epochs": 1})  # other settings, same folder
    kept = list((tmp_path / "runs" / "quick").glob("demo.replaced-*"))
    assert len(kept) == 1
    assert json.loads((kept[0] / "record.json").read_text())["epochs_run"] == 2
    assert ctx.seed_records("demo") == {0: shorter}  # seed 1 ran 2 epochs: not the same settings


@pytest.mark.slow
def test_notebook_04_runs_the_colab_way_from_the_built_wheel(tmp_path):
    """Colab's situation: a fresh virtualenv whose only packages besides what the first cell installs
    are Colab's preinstalled ones (here this environment's, reached through a .pth file: torch,
    Jupyter), ``google.colab`` imported at kernel start, no EMR_* variable set, the notebook alone
    in a folder; the first cell installs the kit from the built wheel and picks profile, data and
    output folders."""
    import sysconfig

    wheels, venv, work, ipython = (tmp_path / name for name in ("wheels", "colab", "content", "ipython"))
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, REPO], check=True)
    wheel = next(wheels.glob("emr_hrnet_kit-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "colab_preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    startup = ipython / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text(
        "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMR_")}
    env.update(
        IPYTHONDIR=str(ipython),
        PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
        EMR_KIT_REQUIREMENT=f"emr-hrnet-kit @ {wheel.as_uri()}",
    )
    shutil.copy(REPO / "notebooks" / "04_training.ipynb", work)
    command = [venv / "bin" / "python", "-m", "papermill", "04_training.ipynb", "executed.ipynb", "--no-progress-bar"]
    subprocess.run([*command, "-k", "python3"], cwd=work, env=env, check=True, capture_output=True)
    assert (site / "emr_lib" / "training" / "loop.py").is_file(), "the first cell did not install the wheel"
    assert not (site / "jupyterlab").exists() and not (site / "papermill").exists()  # Colab has them
    outputs = "".join(
        "".join(o.get("text", ""))
        for c in json.loads((work / "executed.ipynb").read_text())["cells"]
        for o in c.get("outputs", [])
    )
    assert "profile quick | data synthetic default" in outputs
    assert (work / "emr-runs" / "quick" / "emr_hrnet" / "record.json").is_file()
    assert list((work / "emr-figures").glob("04_*.png")) and (work / "emr-figures" / "manifest.json").is_file()


def test_a_workshop_notebook_says_what_it_will_train_and_refuses_hours_unasked(tmp_path, capsys, monkeypatch):
    from emr_lib.experiments.tables import table_runs
    from emr_lib.notebook import RunBudgetError

    monkeypatch.delenv("EMR_GO_ON", raising=False)
    ctx = Context("05_model_comparison", "workshop", "synthetic", "cpu", 0, tmp_path / "runs", tmp_path / "figures")
    specs = table_runs(2, ["pspnet", "unet_vgg"])
    plan = ctx.plan(specs)
    assert [(s["run"], s["action"]) for s in plan] == [("pspnet", "train"), ("unet_vgg", "train")]
    assert plan[1]["min"] > 60  # the committed VGG U-Net took about 2 h
    with pytest.raises(RunBudgetError, match=r"would train unet_vgg \(about \d+ min\).*EMR_GO_ON=1"):
        ctx.run_table(specs)
    assert "train unet_vgg, about" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()  # refused before anything was trained
    quick = dataclasses.replace(ctx, profile="quick")
    assert quick.plan(table_runs(2, ["hrnet"]))[0]["min"] is None  # no quick records: no estimate, no refusal


def test_a_notebook_reads_its_parameters_from_emr_variables_unless_given_and_colab_keeps_its_own_folders(
    tmp_path, monkeypatch
):
    import sys
    import types

    from emr_lib.notebook import comma_list, notebook_context, setting

    monkeypatch.chdir(tmp_path)
    for key in ("EMR_PROFILE", "EMR_DATA", "EMR_SEED", "EMR_OUTPUT", "EMR_FIGURES", "EMR_MODELS"):
        monkeypatch.delenv(key, raising=False)
    assert setting("profile") == "quick" and setting("seed") == 0 and setting("models").startswith("hrnet,")
    monkeypatch.setenv("EMR_SEED", "3")
    monkeypatch.setenv("EMR_OUTPUT", str(tmp_path / "runs"))
    monkeypatch.setenv("EMR_FIGURES", str(tmp_path / "figs"))
    ctx = notebook_context("99_test", data="synthetic")
    assert (ctx.seed, ctx.output_dir, ctx.figures_dir) == (3, tmp_path / "runs", tmp_path / "figs")
    assert notebook_context("99_test", data="synthetic", seed=1).seed == 1  # a parameter wins over the variable
    assert ctx.with_seed(4).run_dir("emr_hrnet").name == "emr_hrnet-seed4"
    assert comma_list(" 8, 16,32 ", int) == [8, 16, 32] and comma_list("") == []
    monkeypatch.delenv("EMR_OUTPUT")
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    colab = notebook_context("99_test")
    assert colab.data == "synthetic" and colab.output_dir == tmp_path / "emr-runs"
