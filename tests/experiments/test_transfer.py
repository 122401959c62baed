import json

import pytest

from emr_lib.cli import main
from emr_lib.data import synthetic_scene
from emr_lib.experiments.transfer import (
    FINETUNE_RECIPE,
    STARTS,
    compare_sources,
    held_out_split,
    recipe_folder,
    scene_target,
    transfer_study,
)
from emr_lib.training.checkpoints import weights_digest
from emr_lib.training.loop import train
from emr_lib.training.profiles import get_config

TINY = dict(synthetic_n=60, synthetic_size=64, size=64, epochs=2, batch_size=8)


def test_held_out_split_uses_the_targets_own_parts_when_named():
    names = ["train_0_0", "train_0_1", "val_0_0", "test_1_0", "test_1_1"]
    assert held_out_split(names) == {"train": ["train_0_0", "train_0_1"], "val": ["test_1_0", "test_1_1"]}
    plain = held_out_split([f"img_{i}" for i in range(10)], seed=0)
    assert len(plain["train"]) == 8 and len(plain["val"]) == 2 and not set(plain["train"]) & set(plain["val"])


def test_transfer_on_the_synthetic_default_writes_every_start_with_intervals(tmp_path, capsys):
    source = train(get_config("quick", model="hrnet", **TINY), tmp_path / "source", progress=False)
    assert source["status"] == "finished"
    study = transfer_study(
        tmp_path / "source" / "best.pt",
        "synthetic",
        [4, 8],
        [0],
        tmp_path / "study",
        "quick",
        overrides=TINY,
        progress=False,
    )
    written = json.loads((tmp_path / "study" / "transfer.json").read_text())
    assert written["results"] == json.loads(json.dumps(study["results"]))
    for k in (4, 8):
        rows = {r["start"]: r for r in written["results"] if r["shots"] == k}
        assert set(rows) == set(STARTS)
        for row in rows.values():
            assert 0 <= row["ci_low"] <= row["mIoU"] <= row["ci_high"] <= 100
    zero = [r["mIoU"] for r in written["results"] if r["start"] == "zero_shot"]
    assert zero[0] == zero[1]  # the same model on the same held-out images
    assert {(c["a"], c["b"]) for c in written["comparisons"]} == {("finetune", "scratch"), ("finetune", "zero_shot")}
    splits = (tmp_path / "study" / "k4-seed0" / "splits" / "train.txt").read_text().split()
    assert len(splits) == 4  # k labelled tiles, no more
    assert (tmp_path / "study" / "transfer.png").stat().st_size > 5_000

    # the command line reuses every run of the study
    capsys.readouterr()
    args = ["transfer", str(tmp_path / "source" / "best.pt"), "synthetic", str(tmp_path / "study"), "--shots", "4", "8"]
    sets = [f"--set={key}={value}" for key, value in TINY.items()]
    assert main([*args, *sets]) == 0
    out = capsys.readouterr().out
    assert "reusing" in out and "parameters on" not in out


def test_a_scene_target_never_trains_on_the_held_out_half(tmp_path):
    image, mask = synthetic_scene(grid=4, size=64)  # 256 x 256 px
    scene_target(image, mask, tmp_path / "target", tile=64, held_out="bottom")
    names = sorted(p.stem for p in (tmp_path / "target" / "images").glob("*.png"))
    parts = held_out_split(names)
    rows = {part: [int(n.split("_y")[1][:5]) for n in parts[part]] for part in parts}
    assert len(parts["train"]) == 7 * 3 and len(parts["val"]) == 4 * 2  # half-overlapping vs side by side
    assert max(rows["train"]) + 64 <= 128 <= min(rows["val"])  # no training pixel in the bottom half
    scene_target(image, mask, tmp_path / "half", tile=32, held_out="right", scale=0.5)  # a 128 x 128 scene
    halved = sorted(p.stem for p in (tmp_path / "half" / "images").glob("*.png"))
    assert len(halved) == 3 * 7 + 2 * 4 and all(int(n.split("_x")[1]) >= 64 for n in halved if n.startswith("test_"))
    with pytest.raises(ValueError, match="held_out"):
        scene_target(image, mask, tmp_path / "other", tile=64, held_out="middle")


def test_validating_only_after_the_last_epoch_changes_no_reported_number(tmp_path, capsys):
    records, said = {}, {}
    for every in (1, 0):
        config = get_config("quick", model="hrnet", split_ratios={"train": 0.8, "val": 0.2}, val_every=every, **TINY)
        records[every] = train(config, tmp_path / str(every), progress=False)
        said[every] = capsys.readouterr().out
    assert "epoch 1/2  loss" in said[0] and "not validated yet: after epoch 2" in said[0]  # not a best of "-"
    assert "not validated yet" not in said[1] and "best " in said[1]
    assert records[0]["test_selection"] == records[1]["test_selection"] == "last epoch (2)"
    assert records[0]["test_metrics"] == records[1]["test_metrics"]  # validation leaves training untouched
    history = json.loads((tmp_path / "0" / "history.json").read_text())
    assert [row["val_loss"] is None for row in history] == [True, False]


def test_transfer_takes_a_scene_with_its_mask_from_the_command_line(tmp_path, capsys):
    from PIL import Image

    train(get_config("quick", model="hrnet", **TINY), tmp_path / "source", progress=False)
    image, mask = synthetic_scene(grid=4, size=64)
    Image.fromarray(image).save(tmp_path / "scene.png")
    Image.fromarray(mask * 255).save(tmp_path / "mask.png")
    args = ["transfer", str(tmp_path / "source" / "best.pt"), str(tmp_path / "scene.png"), str(tmp_path / "study")]
    sets = [f"--set={key}={value}" for key, value in TINY.items() if not key.startswith("synthetic")]
    assert main([*args, "--shots", "4", "--tile", "64", "--runs", str(tmp_path / "runs"), *sets]) != 0
    assert "--mask" in capsys.readouterr().err
    scene = ["--mask", str(tmp_path / "mask.png"), "--tile", "64", "--seeds", "0", "1"]
    assert main([*args, *scene, "--shots", "4", "--runs", str(tmp_path / "runs"), *sets]) == 0
    study = json.loads((tmp_path / "study" / "transfer.json").read_text())
    assert study["settings"]["held_out_images"] == 8 and study["settings"]["training_pool"] == 21
    assert (tmp_path / "runs" / "k4-seed0" / "scratch" / "record.json").is_file()
    assert (tmp_path / "runs" / "k4-seed1" / recipe_folder(FINETUNE_RECIPE) / "record.json").is_file()
    pooled = [c for c in study["comparisons"] if c["seed"] == "all"]
    assert [(c["a"], c["b"], c["n_seeds"]) for c in pooled] == [
        ("finetune", "scratch", 2),
        ("finetune", "zero_shot", 2),
    ]
    for c in pooled:
        per_seed = [d["mIoU_diff"] for d in study["comparisons"] if d["seed"] != "all" and d["b"] == c["b"]]
        assert c["mIoU_diff"] == pytest.approx(sum(per_seed) / 2) and c["ci_low"] <= c["mIoU_diff"] <= c["ci_high"]


def test_transfers_help_states_the_recipe_its_options_fall_back_to(capsys):
    with pytest.raises(SystemExit):
        main(["transfer", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option, key in (("--lr", "lr"), ("--warmup-epochs", "warmup_epochs"), ("--freeze-epochs", "freeze_epochs")):
        help_text = text.split(f"{option} ")[-1].split(" --")[0]
        assert f"the recipe's, {FINETUNE_RECIPE[key]:g})" in help_text, (option, help_text)


def test_source_models_are_compared_zero_shot_on_a_whole_scene(tmp_path, capsys):
    from PIL import Image

    for name, seed in (("plain", 0), ("other", 1)):
        train(get_config("quick", model="hrnet", seed=seed, **TINY), tmp_path / name, progress=False)
    image, mask = synthetic_scene(grid=4, size=64)
    Image.fromarray(image).save(tmp_path / "scene.png")
    Image.fromarray(mask * 255).save(tmp_path / "mask.png")
    plain, other = (str(tmp_path / name / "best.pt") for name in ("plain", "other"))
    scene = [str(tmp_path / "scene.png"), str(tmp_path / "out"), "--mask", str(tmp_path / "mask.png"), "--tile", "64"]
    refused = ["transfer", plain, *scene, "--held-out", "all", "--versus", other, "--shots", "4", "--lr", "0.1"]
    assert main(refused) == 2  # --versus trains nothing: the study's options would be silently ignored
    assert "without training: drop --shots, --lr" in capsys.readouterr().err
    assert main(["transfer", plain, *scene, "--held-out", "all", "--versus", other]) == 0
    assert "false_positives" in capsys.readouterr().out
    study = json.loads((tmp_path / "out" / "sources.json").read_text())
    assert not list((tmp_path / "out" / "target" / "images").glob("train_*"))  # the whole scene is held out
    assert study["settings"]["held_out_images"] == 16  # 4 x 4 side-by-side tiles
    assert [row["source"] for row in study["results"]] == ["plain", "other"]  # named by their run folders
    assert study["settings"]["weights"] == {
        name: weights_digest(path) for name, path in (("plain", plain), ("other", other))
    }
    plain_row, other_row = study["results"]
    assert [c["metric"] for c in study["comparisons"]] == [
        "mIoU",
        "IoU_landslide",
        "precision_landslide",
        "false_positives",
    ]
    for c in study["comparisons"]:
        assert (c["a"], c["b"]) == ("other", "plain")
        assert c["diff"] == pytest.approx(other_row[c["metric"]] - plain_row[c["metric"]], nan_ok=True)  # 0/0 precision
    fewer = next(c for c in study["comparisons"] if c["metric"] == "false_positives")
    expected = "better" if fewer["ci_high"] < 0 else "worse" if fewer["ci_low"] > 0 else "unresolved"
    assert fewer["direction"] == expected  # fewer false alarms is better
    itself = compare_sources({"a": plain, "b": plain}, str(tmp_path / "out" / "target"), tmp_path / "self")
    assert all(c["diff"] == c["ci_low"] == c["ci_high"] == 0 for c in itself["comparisons"] if c["metric"] == "mIoU")
