import json

from emr_lib.cli import main
from emr_lib.profiles import get_config
from emr_lib.train import train
from emr_lib.transfer import STARTS, held_out_split, transfer_study

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
