"""ONNX export: the exported graph gives the torch model's logits, at other sizes too."""

import pytest

from emr_lib.cli import main
from emr_lib.mapping.export import export_onnx
from emr_lib.training.checkpoints import CheckpointError
from emr_lib.training.loop import train
from emr_lib.training.profiles import get_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(get_config("quick", synthetic_n=24, synthetic_size=64, size=64, epochs=1), out, progress=False)
    return out / "best.pt"


def test_onnx_export_matches_torch_at_two_sizes(checkpoint, tmp_path):
    result = export_onnx(checkpoint, tmp_path / "model.onnx")
    assert (tmp_path / "model.onnx").is_file() and result["size"] == 64
    assert result["max_abs_logit_diff"] < 1e-3


def test_export_command_prints_the_difference_and_names_bad_files(checkpoint, tmp_path, capsys):
    assert main(["export", str(checkpoint), str(tmp_path / "m.onnx")]) == 0
    assert '"max_abs_logit_diff"' in capsys.readouterr().out
    with pytest.raises(SystemExit):  # the .onnx file is a required positional: argparse names it
        main(["export", str(checkpoint)])
    assert "onnx" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="not found"):
        export_onnx(tmp_path / "missing.pt", tmp_path / "x.onnx")
