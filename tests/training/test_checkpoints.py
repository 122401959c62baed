import pytest
import torch

from emr_lib.models import build_model
from emr_lib.training.checkpoints import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    atomic_save,
    load_checkpoint,
    model_from_checkpoint,
)


def test_checkpoints_round_trip_and_errors_name_the_file(tmp_path):
    model = build_model("hrnet", width="18_small")
    state = {
        "format": CHECKPOINT_FORMAT,
        "model_name": "hrnet",
        "model_options": {"width": "18_small"},
        "num_classes": 2,
        "model": model.state_dict(),
    }
    atomic_save(state, tmp_path / "best.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]  # no temporary file left behind
    rebuilt = model_from_checkpoint(tmp_path / "best.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), rebuilt.state_dict().values()))
    with pytest.raises(CheckpointError, match="holds a 'hrnet' model, not 'emr_hrnet'"):
        model_from_checkpoint(tmp_path / "best.pt", expected_model="emr_hrnet")
    with pytest.raises(CheckpointError, match="checkpoint not found: .*missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": 1}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="plain.pt is not an emr_lib checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")


def test_checkpoints_and_runs_from_before_the_dema_placement_changed_keep_their_model(tmp_path):
    """Runs and checkpoints made when EMR-HRNet's default was the lighter variant do not name
    dema_blocks: they rebuild as that variant, and a new run names the paper's placement."""
    from emr_lib.models import DEMA, build_model
    from emr_lib.training.checkpoints import model_from_checkpoint
    from emr_lib.training.profiles import get_config

    old = build_model("emr_hrnet", width="18_small", dema_blocks="last")
    state = {"model_name": "emr_hrnet", "num_classes": 2, "model_options": {"width": "18_small"}}
    rebuilt = model_from_checkpoint({**state, "model": old.state_dict()})
    assert sum(isinstance(m, DEMA) for m in rebuilt.modules()) == 9
    assert get_config("quick").model_options == {"width": "18_small", "dema_blocks": "all"}
    assert get_config("quick", model="hrnet").model_options == {"width": "18_small"}
    assert get_config("quick", **{"model_options.dema_blocks": "last"}).model_options["dema_blocks"] == "last"
