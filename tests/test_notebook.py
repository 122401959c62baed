import dataclasses
import json

from emr_lib.notebook import Context
from emr_lib.train import train


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
