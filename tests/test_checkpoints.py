import pytest
import torch

from emr_lib.checkpoints import CHECKPOINT_FORMAT, CheckpointError, atomic_save, load_checkpoint, model_from_checkpoint
from emr_lib.models import build_model


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
