import json
import math
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO
from emr_lib.cli import main
from emr_lib.evaluation.inference import evaluate
from emr_lib.training import lr_at, train
from emr_lib.training.checkpoints import CheckpointError, build_run_model, load_checkpoint, model_from_checkpoint
from emr_lib.training.profiles import get_config
from emr_lib.training.run_data import run_datasets

TINY = dict(synthetic_n=40, synthetic_size=64, size=64, epochs=3, batch_size=8)


def _tiny(**overrides):
    return get_config("quick", **{**TINY, **overrides})


def test_paper_schedule_warms_up_decays_and_flattens():
    config = get_config("paper")
    lrs = [lr_at(e, config) for e in range(config.epochs)]
    assert lrs[:4] == [pytest.approx(x) for x in (1e-4, 2e-4, 5e-4, 1e-3)]  # the reference's warm-up
    assert all(a >= b for a, b in zip(lrs[3:85], lrs[4:85]))  # cosine decay
    assert lrs[85:] == [pytest.approx(1e-5)] * 15  # flat at 1 % for the last 15 epochs
    assert config.batch_size == 4 and config.size == 512 and config.nesterov and config.momentum == 0.9


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
    metrics, cm = evaluate(model, run_datasets(_tiny()).test, progress=False)
    assert cm.tolist() == record["test_confusion_matrix"]


def test_same_seed_same_result_with_or_without_the_decoded_image_cache(tmp_path):
    a = train(_tiny(epochs=2), tmp_path / "a", progress=False)
    b = train(_tiny(epochs=2, cache_images=False), tmp_path / "b", progress=False)
    assert get_config("workshop").cache_images  # on by default: it changes no number
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
    record = train(get_config("quick", data=str(real_data / "bijie-224"), epochs=1), tmp_path, progress=False)
    assert record["split"] == {"train": 462, "val": 154, "test": 154}
    assert record["test_metrics"]["accuracy"] > 0.5 and not math.isnan(record["test_metrics"]["mIoU"])


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
    config = get_config("quick", synthetic_n=40, epochs=2)
    model = model_from_checkpoint(out / "best.pt")
    metrics, cm = evaluate(model, run_datasets(config).test, progress=False)
    assert cm.tolist() == record["test_confusion_matrix"]
    assert metrics["mIoU"] == pytest.approx(record["test_metrics"]["mIoU"], abs=1e-12)


def test_record_says_which_data_commit_and_seed_made_it(tmp_path):
    record = train(_tiny(epochs=1, seed=2), tmp_path, progress=False)
    assert record["seed"] == 2 and record["commit"] and len(record["data_fingerprint"]) == 64
    assert record["data_fingerprint"] == run_datasets(_tiny()).fingerprint()  # the same data, the same print
    assert run_datasets(_tiny(synthetic_n=41)).fingerprint() != record["data_fingerprint"]


def test_frozen_backbone_stays_put_for_its_epochs_then_trains(tmp_path):
    from emr_lib.models import backbone_of

    train(_tiny(epochs=2, freeze_epochs=1), tmp_path / "frozen", stop_after=1, progress=False)
    train(_tiny(epochs=2), tmp_path / "free", stop_after=1, progress=False)
    start = model_from_checkpoint(load_checkpoint(tmp_path / "free" / "last.pt") | {"model": _initial_weights()})
    frozen = model_from_checkpoint(tmp_path / "frozen" / "last.pt")
    free = model_from_checkpoint(tmp_path / "free" / "last.pt")

    def same_backbone(a, b):
        return all(torch.equal(p, q) for p, q in zip(backbone_of(a).parameters(), backbone_of(b).parameters()))

    assert same_backbone(frozen, start) and not same_backbone(free, start)  # epoch 1: only the head moved
    assert not all(torch.equal(p, q) for p, q in zip(frozen.head.parameters(), start.head.parameters()))
    resumed = train(_tiny(epochs=2, freeze_epochs=1), tmp_path / "frozen", resume=True, progress=False)
    assert resumed["epochs_run"] == 2
    assert not same_backbone(model_from_checkpoint(tmp_path / "frozen" / "last.pt"), start)  # epoch 2: unfrozen
    with pytest.raises(ValueError, match="fewer than epochs"):
        _tiny(epochs=2, freeze_epochs=2)


def _initial_weights():
    from emr_lib.models import build_model
    from emr_lib.training.runtime import seed_everything

    seed_everything(0)  # as train() does before building the model
    return build_model("emr_hrnet", width="18_small").state_dict()


def test_asking_for_downloaded_weights_offline_names_the_file_to_fetch(tmp_path, no_network):
    from emr_lib.models import PretrainedWeightsError

    with pytest.raises(PretrainedWeightsError, match=r"huggingface.co/timm/hrnet_w18_small.* --set pretrained="):
        train(_tiny(epochs=1, pretrained=True), tmp_path, progress=False)


def test_init_fine_tunes_a_checkpoint_and_refuses_another_model(tmp_path, capsys):
    train(_tiny(epochs=1), tmp_path / "a", progress=False)
    checkpoint = tmp_path / "a" / "best.pt"
    saved = load_checkpoint(checkpoint)["model"]
    start = build_run_model(_tiny(init=str(checkpoint))).state_dict()
    assert all(torch.equal(start[k], saved[k]) for k in saved)
    with pytest.raises(CheckpointError, match="holds 'emr_hrnet'.*fine-tune the checkpoint's own model"):
        build_run_model(_tiny(init=str(checkpoint), model="hrnet"))
    settings = [f"--set={k}={v}" for k, v in TINY.items() if k != "epochs"] + ["--set=epochs=1"]
    args = ["train", "--init", str(checkpoint), "--out", str(tmp_path / "b"), "--no-progress", *settings]
    assert main(args) == 0  # no --model: the checkpoint's model and options
    record = json.loads((tmp_path / "b" / "record.json").read_text())
    assert record["config"]["init"] == str(checkpoint) and record["model"] == "emr_hrnet"
    assert record["model_gsd_m"] == pytest.approx(1.0) and load_checkpoint(tmp_path / "b" / "best.pt")["model_gsd_m"]
    assert main([*args[: -len(settings)], "--model", "hrnet", "--overwrite", *settings]) == 2
    assert "fine-tune" in capsys.readouterr().err


def test_cpu_fast_trains_in_bf16_and_channels_last_and_is_off_by_default(tmp_path):
    from emr_lib.training.runtime import Precision, uses_channels_last

    cpu = torch.device("cpu")
    assert not Precision.for_device(cpu, amp=True).enabled  # the profiles' default: fp32 on a CPU
    fast = Precision.for_device(cpu, amp=True, cpu_bf16=True)
    assert fast.enabled and fast.dtype == torch.bfloat16 and not fast.scaler.is_enabled()
    assert uses_channels_last(_tiny(cpu_fast=True), cpu) and not uses_channels_last(_tiny(), cpu)
    record = train(_tiny(epochs=1, cpu_fast=True, device="cpu"), tmp_path, progress=False)
    assert record["status"] == "finished" and math.isfinite(record["test_metrics"]["loss"])
    assert load_checkpoint(tmp_path / "last.pt")["optimizer"]["param_groups"][0]["fused"]  # the fused step
    # validation ran in bf16, the test evaluation in fp32: the per-image matrices add up to the reported one
    summed = torch.tensor(list(record["test_per_image"].values())).sum(0)
    assert summed.tolist() == record["test_confusion_matrix"]
    assert not any(get_config(name).cpu_fast for name in ("quick", "workshop", "paper"))


def test_paper_profile_history_warms_up_as_the_reference_and_centerrep_governs_the_expansion(tmp_path):
    tiny = dict(synthetic_n=16, synthetic_size=64, size=64, model_options={"width": "18_small"}, num_workers=0)
    default = train(get_config("paper", **tiny), tmp_path / "default", stop_after=4, progress=False)
    history = json.loads((tmp_path / "default" / "history.json").read_text())
    assert [h["lr"] for h in history] == [pytest.approx(x) for x in (1e-4, 2e-4, 5e-4, 1e-3)]
    assert default["expansion"]["copies"] > 0 and default["expansion"]["centerrep_copies"] > 0
    without = train(get_config("paper", centerrep=0.0, epochs=1, **tiny), tmp_path / "without", progress=False)
    assert without["expansion"]["copies"] == default["expansion"]["copies"]
    assert without["expansion"]["centerrep_copies"] == 0
    for name in ("quick", "workshop"):  # their schedules as they have always been: no ramp
        config = get_config(name)
        assert lr_at(0, config) == config.lr


def test_a_hand_written_loop_computes_the_same_losses_as_train(tmp_path, capsys):
    """Notebook 04's loop by hand (forward, loss, backward, step, schedule) against the kit's train."""
    from emr_lib.training import epoch_loader, make_optimizer, segmentation_loss
    from emr_lib.training.runtime import seed_everything

    config = _tiny(model="emr_hrnet")
    seed_everything(config.seed)
    train_set = run_datasets(config).train()
    model = build_run_model(config)
    optimizer = make_optimizer(model, config)
    model.train()
    for group in optimizer.param_groups:
        group["lr"] = lr_at(0, config)
    hand = []
    for step, batch in enumerate(epoch_loader(train_set, config, 0)):
        if step == 3:
            break
        loss = segmentation_loss(model(batch["image"]), batch["mask"], config.loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        hand.append(loss.item())

    kit = []
    train(config, tmp_path, stop_after=1, progress=False, compact=True, on_step=kit.append)
    assert len(kit) >= 3
    assert kit[:3] == pytest.approx(hand, rel=1e-5)
    assert hand[0] != hand[1]  # the steps moved the weights
    assert "epoch 1/" not in capsys.readouterr().out  # compact: no line per epoch
