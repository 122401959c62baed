"""Export a trained model to ONNX, for inference without PyTorch (onnxruntime, QGIS plug-ins, C++).

>>> export_onnx("runs/workshop/emr_hrnet/best.pt", "emr_hrnet.onnx")  # doctest: +SKIP

The model is converted with :func:`emr_lib.models.deploy` first (every RefConv folded into a
plain convolution), exported with dynamic batch, height and width, and checked against
onnxruntime on the CPU. The graph takes ``image``: float32 (B, 3, H, W) in [0, 1] (H and W
multiples of 32) and returns ``logits``: (B, classes, H, W); class 1 is landslide.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ..models import deploy
from ..training.checkpoints import load_checkpoint, model_from_checkpoint

__all__ = ["export_onnx", "onnx_difference"]

OPSET = 17


def onnx_difference(model: torch.nn.Module, onnx_path: str | Path, images: torch.Tensor) -> float:
    """Largest absolute difference between the torch model's and onnxruntime's logits on ``images``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(["logits"], {"image": images.numpy()})
    with torch.no_grad():
        torch_logits = model(images).numpy()
    return float(np.abs(onnx_logits - torch_logits).max())


def export_onnx(checkpoint: str | Path, dest: str | Path, size: int | None = None, check: bool = True) -> dict:
    """Write the checkpoint's model to ``dest`` as ONNX; with ``check``, compare it with onnxruntime.

    ``size`` (default: the training size) is the example input's side; the graph accepts other
    sizes too. The check runs two random images at ``size`` and at twice it.
    """
    state = load_checkpoint(checkpoint)
    model = deploy(model_from_checkpoint(state))
    size = size or int(state.get("config", {}).get("size", 224))
    if size % 32:
        raise ValueError(f"--size must be a multiple of 32, got {size}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    example = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notes are not the user's concern
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), str(tmp), input_names=["image"], output_names=["logits"],
            dynamic_axes={"image": axes, "logits": axes}, opset_version=OPSET, dynamo=False,
        )  # fmt: skip
    os.replace(tmp, dest)
    result = {"onnx": str(dest), "model": state["model_name"], "size": size, "opset": OPSET}
    if check:
        generator = torch.Generator().manual_seed(1)
        result["max_abs_logit_diff"] = max(
            onnx_difference(model, dest, torch.rand(2, 3, side, side, generator=generator)) for side in (size, 2 * size)
        )
    return result
