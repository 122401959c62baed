"""Looking inside the networks: tensor shapes per stage, receptive fields, attention maps.

The architecture episode (notebook 03) uses these on the kit's own models:

- :func:`stage_shapes`: the shape of every branch after each part of HRNetV2 (stem,
  stage 1, stages 2-4, the RMA neck, the head), read by forward hooks from a real pass;
- :func:`block_input`: the feature map that enters one block, for probing that block alone;
- :func:`effective_receptive_field` and :func:`erf_radius`: how far the input of a block
  reaches into one output pixel, measured by input gradients (Luo et al., 2016);
- :func:`mdta_attention`: MDTA's channel-to-channel attention for one input.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .blocks import EMA, MDTA

__all__ = [
    "STAGES",
    "stage_shapes",
    "block_input",
    "branch_blocks",
    "effective_receptive_field",
    "erf_radius",
    "mdta_attention",
    "ema_maps",
]

# HRNetV2's parts in forward order: (label, attribute path from the model); a missing part
# (no RMA neck in plain HRNet) is skipped
STAGES = (
    ("stem", "backbone.act2"),
    ("stage 1", "backbone.layer1"),
    ("stage 2", "backbone.stage2"),
    ("stage 3", "backbone.stage3"),
    ("stage 4", "backbone.stage4"),
    ("RMA", "neck"),
    ("head", "head"),
)


def _tensors(output) -> list[torch.Tensor]:
    return list(output) if isinstance(output, (list, tuple)) else [output]


@torch.no_grad()
def stage_shapes(model: nn.Module, image: torch.Tensor) -> list[dict]:
    """Shapes after each part of an HRNetV2 model for ``image`` (3, H, W) or (B, 3, H, W).

    One row per part and branch: ``part``, ``branch`` (0 = finest), ``channels``, ``height``,
    ``width`` and ``stride`` (input height over the branch's height).
    """
    x = image.unsqueeze(0) if image.dim() == 3 else image
    seen: dict[str, list[torch.Tensor]] = {}
    handles = []
    for label, path in STAGES:
        module = model.get_submodule(path) if _has(model, path) else None
        if module is None or isinstance(module, nn.Identity):
            continue
        handles.append(module.register_forward_hook(_recorder(seen, label)))
    was_training = model.training
    try:
        model.eval()(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    rows = []
    for label, _ in STAGES:
        for branch, t in enumerate(seen.get(label, [])):
            rows.append(
                dict(
                    part=label,
                    branch=branch,
                    channels=t.shape[1],
                    height=t.shape[2],
                    width=t.shape[3],
                    stride=x.shape[2] // t.shape[2],
                )
            )
    return rows


def _recorder(seen: dict, label: str):
    def hook(module, inputs, output) -> None:  # returns None: a hook's return value would replace the output
        seen.setdefault(label, _tensors(output))

    return hook


def _has(model: nn.Module, path: str) -> bool:
    try:
        model.get_submodule(path)
    except AttributeError:
        return False
    return True


@torch.no_grad()
def block_input(model: nn.Module, block: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The tensor that enters ``block`` (a submodule of ``model``) when ``model`` sees ``images``."""
    captured: list[torch.Tensor] = []
    handle = block.register_forward_pre_hook(lambda m, args: captured.append(args[0].detach().clone()))
    was_training = model.training
    try:
        model.eval()(images)
    finally:
        model.train(was_training)
        handle.remove()
    if not captured:
        raise ValueError("the block was not called in the forward pass; is it a submodule of the model?")
    return captured[0]


def effective_receptive_field(block: nn.Module, features: torch.Tensor) -> np.ndarray:
    """|d centre output / d input| of ``block`` over ``features`` (B, C, H, W): an (H, W) map, peak 1.

    The gradient of the centre pixel of every output channel, summed, with respect to the
    block's input, in absolute value, summed over input channels and averaged over the B
    images; evaluation mode, so batch norm does not mix the images.
    """
    was_training = block.training
    block.eval()
    try:
        x = features.detach().clone().requires_grad_(True)
        out = block(x)
        h, w = out.shape[-2:]
        centre = out[:, :, h // 2, w // 2].sum()
        (grad,) = torch.autograd.grad(centre, x)
    finally:
        block.train(was_training)
    erf = grad.abs().sum(dim=1).mean(dim=0)
    return (erf / erf.max().clamp_min(1e-30)).numpy()


def erf_radius(erf: np.ndarray, mass: float = 0.9) -> int:
    """Half-width r of the smallest square (2r+1 pixels) around the centre holding ``mass`` of the map."""
    if not 0 < mass <= 1:
        raise ValueError(f"mass must lie in (0, 1], got {mass}")
    h, w = erf.shape
    cy, cx = h // 2, w // 2
    total = float(erf.sum())
    for r in range(max(h, w)):
        inside = erf[max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1].sum()
        if inside >= mass * total:
            return r
    return max(h, w)


@torch.no_grad()
def mdta_attention(mdta: MDTA, features: torch.Tensor) -> torch.Tensor:
    """MDTA's attention for ``features`` (B, C, H, W): (B, heads, C/heads, C/heads), rows sum to 1."""
    attn, _ = mdta.attention(features)
    return attn


def branch_blocks(model: nn.Module, stage: str = "stage2", branch: int = 0) -> Sequence[nn.Module]:
    """The blocks of one branch of one HRNet stage's first module (timm's layout)."""
    return list(model.get_submodule(f"backbone.{stage}.0.branches.{branch}"))


@torch.no_grad()
def ema_maps(ema: EMA, features: torch.Tensor) -> dict[str, np.ndarray]:
    """What each part of :class:`~emr_lib.models.blocks.EMA` computes for one input (1, C, H, W),
    each as an (H, W) map averaged over channels (or groups):

    ``1x1 branch gates`` (the product of the sigmoid gates along H and along W), ``1x1 branch``
    (the gated, group-normalised map), ``3x3 branch``, and ``weights`` (the sigmoid of the
    cross-spatial sum, which multiplies the input).
    """
    parts: dict[str, torch.Tensor] = {}
    b, c, h, w = features.shape
    weights = ema.weights(features[:1], parts)
    maps = {
        "1x1 branch gates": parts["gate_h"] * parts["gate_w"],
        "1x1 branch": parts["branch_1x1"],
        "3x3 branch": parts["branch_3x3"],
        "weights": weights.reshape(1, -1, h, w),
    }
    return {name: t[0].mean(dim=0).numpy() for name, t in maps.items()}
