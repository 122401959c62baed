import json
import math
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO
from emr_lib.cli import main
from emr_lib.profiles import TrainConfig, get_config
from emr_lib.train import (
    CheckpointError,
    build_splits,
    evaluate,
    load_checkpoint,
    lr_at,
    model_from_checkpoint,
    predict,
    predict_scene,
    train,
)

TINY = dict(synthetic_n=40, synthetic_size=64, size=64, epochs=3, batch_size=8)


def _tiny(**overrides):
    return get_config("quick", **{**TINY, **overrides})


def test_paper_schedule_warms_up_decays_and_flattens():
    config = get_config("paper")
    lrs = [lr_at(e, config) for e in range(config.epochs)]
    assert lrs[0] == pytest.approx(1e-4 + (1e-3 - 1e-4) / 9)  # quadratic warm-up from 10 %
    assert lrs[2] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[2:85], lrs[3:85]))  # cosine decay
    assert lrs[85:] == [pytest.approx(1e-5)] * 15  # flat at 1 % for the last 15 epochs
    assert config.batch_size == 4 and config.size == 512 and config.nesterov and config.momentum == 0.9


def test_profiles_take_overrides_and_reject_typos():
    config = get_config("workshop", epochs=3, **{"model_options.width": 32})
    assert config.epochs == 3 and config.model_options["width"] == 32
    with pytest.raises(ValueError, match="unknown setting 'epoch'"):
        get_config("quick", epoch=3)
    with pytest.raises(ValueError, match="true or false"):
        get_config("quick", augment="yes")
    with pytest.raises(ValueError, match="multiple of 32"):
        get_config("quick", size=100)
    assert isinstance(get_config("quick", lr=1), TrainConfig) and get_config("quick", lr=1).lr == 1.0


def test_quick_training_writes_checkpoints_history_and_record(tmp_path):
    record = train(_tiny(), tmp_path, progress=False)
    assert record["status"] == "finished" and record["epochs_run"] == 3
    for key in ("mIoU", "precision", "recall", "F1", "accuracy"):
        assert 0 <= record["test_metrics"][key] <= 1
    assert sum(map(sum, record["test_confusion_matrix"])) == record["split"]["test"] * 64 * 64
    assert json.loads((tmp_path / "record.json").read_text())["commit"]
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert (tmp_path / "history.csv").read_text().startswith("epoch,")
    state = torch.load(tmp_path / "best.pt", weights_only=True)  # tensors and plain metadata only
    assert state["epoch"] == record["best_epoch"] and state["model_name"] == "emr_hrnet"
    assert (tmp_path / "splits" / "test.txt").is_file()
    model = model_from_checkpoint(tmp_path / "best.pt")
    base, splits, _ = build_splits(_tiny())
    from emr_lib.augment import eval_transform
    from emr_lib.data import DatasetView

    metrics, cm = evaluate(model, DatasetView(base, splits["test"], eval_transform(64)), progress=False)
    assert cm.tolist() == record["test_confusion_matrix"]


def test_same_seed_same_result(tmp_path):
    a = train(_tiny(epochs=2), tmp_path / "a", progress=False)
    b = train(_tiny(epochs=2), tmp_path / "b", progress=False)
    assert a["test_confusion_matrix"] == b["test_confusion_matrix"]
    assert load_checkpoint(tmp_path / "a" / "last.pt")["history"][-1]["train_loss"] == pytest.approx(
        load_checkpoint(tmp_path / "b" / "last.pt")["history"][-1]["train_loss"], abs=0
    )


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    full = train(_tiny(), tmp_path / "full", progress=False)
    partial = train(_tiny(), tmp_path / "resumed", stop_after=1, progress=False)
    assert partial["status"] == "stopped" and "test_metrics" not in partial
    resumed = train(_tiny(), tmp_path / "resumed", resume=True, progress=False)
    assert resumed["epochs_run"] == 3
    assert resumed["test_confusion_matrix"] == full["test_confusion_matrix"]
    a = load_checkpoint(tmp_path / "full" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "resumed" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_model(tmp_path):
    train(_tiny(epochs=1), tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="written for emr_hrnet"):
        train(_tiny(epochs=1, model="hrnet"), tmp_path, resume=True, progress=False)


def test_early_stopping(tmp_path):
    record = train(_tiny(epochs=6, patience=1, lr=1e-9, optimizer="sgd"), tmp_path, progress=False)
    assert record["status"] == "finished" and record["epochs_run"] < 6


@pytest.mark.real_data
def test_quick_profile_on_real_bijie(real_data, tmp_path):
    record = train(get_config("quick", data=str(real_data / "bijie-224"), epochs=2), tmp_path, progress=False)
    assert record["split"] == {"train": 462, "val": 154, "test": 154}
    assert record["test_metrics"]["accuracy"] > 0.5 and not math.isnan(record["test_metrics"]["mIoU"])


def test_predict_and_predict_scene():
    from emr_lib.models import build_model

    model = build_model("emr_hrnet", width="18_small")
    masks, probs = predict(model, torch.rand(2, 3, 64, 64))
    assert masks.shape == (2, 64, 64) and probs.shape == (2, 64, 64)
    assert ((probs >= 0) & (probs <= 1)).all()
    import numpy as np

    scene = np.random.default_rng(0).integers(1, 255, (100, 140, 3), dtype=np.uint8)
    scene[:, :40] = 0  # no-data
    prob = predict_scene(model, scene, tile=64, overlap=16, progress=False)
    assert prob.shape == (100, 140) and prob[:, :20].max() == 0 and prob[:, 60:].min() > 0


@pytest.mark.slow
def test_torchrun_two_cpu_processes_match_a_single_process(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "emr_lib",
        "train",
        "--profile",
        "quick",
        "--data",
        "synthetic",
        "--out",
        str(out),
        "--no-progress",
        "--set",
        "synthetic_n=40",
        "--set",
        "epochs=2",
        "--set",
        'device="cpu"',
    ]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    record = json.loads((out / "record.json").read_text())
    assert record["status"] == "finished" and record["epochs_run"] == 2
    # evaluate the same weights in this single process
    from emr_lib.augment import eval_transform
    from emr_lib.data import DatasetView

    config = get_config("quick", synthetic_n=40, epochs=2)
    base, splits, _ = build_splits(config)
    model = model_from_checkpoint(out / "best.pt")
    metrics, cm = evaluate(model, DatasetView(base, splits["test"], eval_transform(64)), progress=False)
    assert cm.tolist() == record["test_confusion_matrix"]
    assert metrics["mIoU"] == pytest.approx(record["test_metrics"]["mIoU"], abs=1e-12)


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["train", "--model", "unet9000", "--out", str(tmp_path / "x")]) == 2
    assert "unknown model 'unet9000'" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "data folder not found" in capsys.readouterr().err
    assert main(["train", "--set", "epochz=3", "--out", str(tmp_path / "x")]) == 2
    assert "unknown setting 'epochz'" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x02 definitely not a checkpoint")
    assert main(["evaluate", str(corrupt), "--data", "synthetic"]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_cli_train_then_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "--profile",
        "quick",
        "--out",
        str(out),
        "--no-progress",
        "--set",
        "synthetic_n=40",
        "--set",
        "epochs=1",
    ]
    assert main(args) == 0
    assert main(args) == 2 and "--resume" in capsys.readouterr().err  # will not overwrite silently
    assert main(["evaluate", str(out / "best.pt"), "--model", "hrnet"]) == 2
    assert "holds a 'emr_hrnet' model, not 'hrnet'" in capsys.readouterr().err
    assert main(["evaluate", str(out / "best.pt"), "--json", str(tmp_path / "m.json")]) == 0
    assert "mIoU" in capsys.readouterr().out
    assert json.loads((tmp_path / "m.json").read_text())["split"] == "test"
