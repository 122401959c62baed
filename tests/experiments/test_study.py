import json

from emr_lib.cli import main


def test_gpu_study_dry_run_writes_every_stage(tmp_path, capsys):
    out = tmp_path / "study"
    # the default budget (9 min): the dry run must still do one pair and stop (it once filled the budget)
    assert main(["study", "gpu", "--dry-run", "--device", "cpu", "--out", str(out)]) == 0
    result = json.loads((out / "study.json").read_text())
    assert set(result["stages"]) == {"correctness", "throughput", "comparison"}
    assert {"device", "torch", "cuda", "cudnn"} <= set(result["environment"])
    correctness = result["correctness"]
    assert correctness["passed"], correctness  # bf16 on the CPU too: finite losses, nonzero gradients, close logits
    assert correctness["logits_max_relative_difference"] <= correctness["tolerance"]
    assert correctness["deploy_max_abs_difference"] < 1e-3
    rows = result["throughput"]["rows"]
    assert {(r["model"], r["amp"]) for r in rows} >= {("hrnet", False), ("hrnet", True), ("emr_hrnet", True)}
    assert all(r["train_images_per_s"] > 0 and r["infer_images_per_s"] > 0 for r in rows)
    assert set(result["throughput"]["paper_profile_train_hours"]) == {"hrnet", "emr_hrnet"}
    runs = result["comparison"]["runs"]
    assert [(r["model"], r["seed"]) for r in runs[:2]] == [("hrnet", 0), ("emr_hrnet", 0)]  # whole pairs, alternating
    assert len(runs) == 2  # one pair in a dry run
    assert result["comparison"]["dema_blocks"] == "all"  # the default model: the paper's placement
    assert "dema_blocks='all'" in (out / "study.md").read_text()
    record = json.loads((out / "runs" / "emr_hrnet-seed0" / "record.json").read_text())
    assert record["config"]["optimizer"] == "sgd" and record["config"]["nesterov"]  # the paper's recipe
    assert len(record["test_per_image"]) == record["split"]["test"]
    assert "# GPU study (dry run)" in (out / "study.md").read_text()
