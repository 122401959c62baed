"""Parameters, FLOPs and step timings: the paper's Table 7, measured.

Two FLOP conventions:

- ``count_flops`` uses PyTorch's own ``torch.utils.flop_counter``: it sees every
  convolution and matrix product, functional ones included (RefConv's
  ``F.conv2d``, MDTA's and EMA's ``@``). One multiply-add = 2 FLOPs.
- ``count_flops(..., convention="modules")`` counts only ``nn.Conv2d`` and
  ``nn.Linear`` modules, 2 FLOPs per multiply-add, and EMA's 1x1 and 3x3 convs,
  which EMA's authors run as modules (the kit runs them as one grouped functional
  conv). That is close to what the paper's ``thop`` profile saw: thop has rules for
  modules only, so functional convs (RefConv's, as its authors' code runs it),
  matmuls, interpolation and norms count zero, and bare parameters are missing from
  its parameter total. The gap between the two columns is the cost of EMR-HRNet's
  attention and RefConv that the paper's Table 7 does not show.

FLOPs are counted on the ``meta`` device: no memory is allocated and nothing is
computed, so even U-Net (VGG) at 512 px counts in a fraction of a second.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from ..models import build_model, count_parameters
from .paper import TABLE7

__all__ = [
    "count_parameters",
    "count_flops",
    "efficiency_table",
    "benchmark_steps",
    "speed_rows",
    "train_step",
    "inference_step",
    "timed",
    "PLACEMENTS",
    "placement_table",
    "MODEL_PARTS",
    "part_of",
    "cost_by_part",
    "cost_rows",
    "HRNET_FAMILY",
]


def _as_input_shape(input_size) -> tuple[int, int, int, int]:
    if isinstance(input_size, int):
        return (1, 3, input_size, input_size)
    shape = tuple(input_size)
    if len(shape) == 2:
        return (1, 3, *shape)
    if len(shape) == 4:
        return shape
    raise ValueError(f"input_size must be an int, (H, W) or (B, C, H, W), got {input_size!r}")


def _module_flops(model: nn.Module, x: torch.Tensor) -> int:
    from ..models import EMA  # the one block whose modules the kit calls functionally

    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total += 2 * output.numel() * per_output
        elif isinstance(module, nn.Linear):
            total += 2 * output.numel() * module.in_features
        elif isinstance(module, EMA):
            # EMA's authors run its 1x1 and 3x3 convs as modules on (B*G, C/G, ...) maps, which thop
            # counts; the kit runs the same convs as one grouped F.conv2d, which hooks cannot see
            b, c, h, w = inputs[0].shape
            group_channels = c // module.groups
            total += 2 * b * c * (h + w) * group_channels  # 1x1 on the pooled (H+W) x 1 strip
            total += 2 * b * c * h * w * group_channels * 9  # 3x3 on the map

    kinds = (nn.Conv2d, nn.Linear, EMA)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return total


@torch.no_grad()
def count_flops(model: nn.Module, input_size=512, convention: str = "torch") -> int:
    """FLOPs of one forward pass (2 per multiply-add) for ``input_size`` (int, (H, W) or (B, C, H, W)).

    ``convention="torch"``: PyTorch's flop counter (all convs and matmuls).
    ``convention="modules"``: conv and linear modules only (close to the paper's thop).
    """
    shape = _as_input_shape(input_size)
    meta_model = copy.deepcopy(model).to("meta").eval()
    x = torch.empty(shape, device="meta")
    if convention == "modules":
        return _module_flops(meta_model, x)
    if convention != "torch":
        raise ValueError(f"convention must be 'torch' or 'modules', got {convention!r}")
    counter = FlopCounterMode(display=False)
    with counter:
        meta_model(x)
    return counter.get_total_flops()


def efficiency_table(
    builder: Callable[..., nn.Module],
    models: Sequence[str],
    sizes: Sequence[int] = (480, 512),
    classes: Sequence[int] = (21, 2),
    progress: bool = True,
) -> list[dict]:
    """One row per (model, num_classes, size): parameters, GFLOPs in both conventions, paper values."""
    rows = []
    jobs = [(name, nc) for name in models for nc in classes]
    for name, nc in tqdm(jobs, desc="efficiency", disable=not progress):
        model = builder(name, num_classes=nc)
        params = count_parameters(model)
        for size in sizes:
            paper = TABLE7.get(name, {})
            rows.append(
                {
                    "model": name,
                    "num_classes": nc,
                    "size": size,
                    "params_M": params / 1e6,
                    "GFLOPs_torch": count_flops(model, size) / 1e9,
                    "GFLOPs_modules": count_flops(model, size, convention="modules") / 1e9,
                    "paper_params_M": paper.get("params_M"),
                    "paper_GFLOPs": paper.get("GFLOPs"),
                }
            )
    return rows


def train_step(model: nn.Module, optimizer, x: torch.Tensor, y: torch.Tensor, amp: bool = False) -> torch.Tensor:
    """One optimiser step on (x, y), in bf16 autocast when ``amp`` (on any device); returns the loss."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        logits = model(x)
    loss = F.cross_entropy(logits.float(), y)
    loss.backward()
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def inference_step(model: nn.Module, x: torch.Tensor, amp: bool = False) -> None:
    model.eval()
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        model(x)


def timed(step, device: torch.device) -> float:
    """Seconds ``step()`` takes, waiting for the GPU before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def benchmark_steps(
    models: dict[str, nn.Module],
    batch_size: int = 4,
    size: int = 224,
    repeats: int = 5,
    warmup: int = 1,
    device: str | torch.device = "cpu",
    num_classes: int = 2,
    seed: int = 0,
) -> dict[str, dict]:
    """Time a training step and an inference step of each model, side by side.

    Models alternate within every repetition (so drifts in machine load hit all of
    them alike) and the median over ``repeats`` is reported, in seconds, with the
    ratio to the first model. Speeds must be compared as these ratios, from one run.
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch_size, 3, size, size, generator=generator).to(device)
    y = torch.randint(0, num_classes, (batch_size, size, size), generator=generator).to(device)
    optimizers = {}
    for name, model in models.items():
        model.to(device)
        optimizers[name] = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    times = {name: {"train": [], "infer": []} for name in models}
    for rep in range(warmup + repeats):
        for name, model in models.items():
            train_s = timed(lambda m=model, n=name: train_step(m, optimizers[n], x, y), device)
            infer_s = timed(lambda m=model: inference_step(m, x), device)
            if rep >= warmup:
                times[name]["train"].append(train_s)
                times[name]["infer"].append(infer_s)
    first = next(iter(models))
    result = {}
    for name in models:
        train_s = statistics.median(times[name]["train"])
        infer_s = statistics.median(times[name]["infer"])
        result[name] = {
            "train_step_s": train_s,
            "infer_step_s": infer_s,
            "train_images_per_s": batch_size / train_s,
            "infer_images_per_s": batch_size / infer_s,
            "train_ratio": train_s / statistics.median(times[first]["train"]),
            "infer_ratio": infer_s / statistics.median(times[first]["infer"]),
            "train_times_s": times[name]["train"],
            "infer_times_s": times[name]["infer"],
        }
    return result


HRNET_FAMILY = ("hrnet", "emr_hrnet")  # the models that take a ``width``


def speed_rows(
    names=HRNET_FAMILY, width=32, size: int = 224, batch_size: int = 4, repeats: int = 5, device="cpu"
) -> list[dict]:
    """Models ``names`` timed side by side with :func:`benchmark_steps`, as table rows.

    ``width`` applies to the HRNet family; the comparison models have one size each. Ratios
    are to the first name.
    """
    models = {name: build_model(name, **({"width": width} if name in HRNET_FAMILY else {})) for name in names}
    result = benchmark_steps(models, batch_size=batch_size, size=size, repeats=repeats, device=device)
    keys = ["train_step_s", "train_ratio", "train_images_per_s", "infer_step_s", "infer_ratio"]
    return [
        {
            "model": name,
            "width": str(width) if name in HRNET_FAMILY else "-",
            "size": size,
            "batch": batch_size,
            "device": str(device),
            **{key: r[key] for key in keys},
        }
        for name, r in result.items()
    ]


# Table 7's EMR-HRNet against HRNet-W32 in the placements the kit builds: name -> (model, options)
PLACEMENTS = {
    "hrnet": ("hrnet", {}),
    "emr_hrnet": ("emr_hrnet", {"dema_blocks": "all"}),  # the paper's placement, the default
    "emr_hrnet_light": ("emr_hrnet", {"dema_blocks": "last"}),  # the kit's lighter variant
}


def placement_table(
    width=32,
    size: int = 480,
    num_classes: int = 21,
    step_size: int | None = 224,
    step_batch: int = 4,
    repeats: int = 5,
    device="cpu",
) -> list[dict]:
    """HRNet, EMR-HRNet (the paper's DEMA placement) and the kit's lighter variant, as Table 7 rows.

    Each EMR-HRNet row's extra parameters and FLOPs over HRNet are given in one convention at a
    time: ``*_modules`` counts as the paper's thop did (leaf modules' parameters; conv and linear
    modules' FLOPs), so it is the one to set beside the paper's +1.66M / +1.97G
    (``paper_delta_*``); ``*_torch`` counts every parameter and every conv and matmul, the real
    cost, which the paper does not report. ``train_ratio`` and ``infer_ratio`` are the step
    times over HRNet's, measured side by side (:func:`benchmark_steps`) at ``step_size`` px,
    batch ``step_batch`` on ``device``; ``step_size=None`` skips the timing.
    """
    models = {
        name: build_model(model, num_classes=num_classes, width=width, **options)
        for name, (model, options) in PLACEMENTS.items()
    }
    counts = {
        name: {
            "params_M_modules": count_parameters(model, convention="modules") / 1e6,
            "params_M_torch": count_parameters(model) / 1e6,
            "GFLOPs_modules": count_flops(model, size, convention="modules") / 1e9,
            "GFLOPs_torch": count_flops(model, size) / 1e9,
        }
        for name, model in models.items()
    }
    timings = {}
    if step_size is not None:
        timings = benchmark_steps(
            models, batch_size=step_batch, size=step_size, repeats=repeats, device=device, num_classes=num_classes
        )
    paper_delta = {
        "params_M": TABLE7["emr_hrnet"]["params_M"] - TABLE7["hrnet"]["params_M"],
        "GFLOPs": TABLE7["emr_hrnet"]["GFLOPs"] - TABLE7["hrnet"]["GFLOPs"],
    }
    rows = []
    for name, (model, _) in PLACEMENTS.items():
        own, base = counts[name], counts["hrnet"]
        row = {
            "model": name,
            "dema_blocks": sum(type(m).__name__ == "DEMA" for m in models[name].modules()),
            "width": str(width),
            "size": size,
            "num_classes": num_classes,
            **own,
            **{f"delta_{key}": own[key] - base[key] for key in own},
            "paper_delta_params_M": paper_delta["params_M"] if model == "emr_hrnet" else None,
            "paper_delta_GFLOPs": paper_delta["GFLOPs"] if model == "emr_hrnet" else None,
        }
        if name in timings:
            row |= {
                "step_size": step_size,
                "step_batch": step_batch,
                "train_ratio": timings[name]["train_ratio"],
                "infer_ratio": timings[name]["infer_ratio"],
            }
        rows.append(row)
    return rows


# --- where the cost goes -------------------------------------------------------------------------

MODEL_PARTS = ("stem", "stage 1", "transitions", "block convs", "attention", "fusion", "RMA", "head")


def part_of(name: str) -> str:
    """The part of an HRNetV2 model a parameter or module name (``backbone.stage2.0...``) belongs to.

    Stages 2-4 split into their blocks' convolutions (``block convs``), the attention inside the
    blocks (EMA in DEMA, or Table 5's blocks) and the cross-resolution fusion; the RMA neck and
    the head are parts of their own.
    """
    parts = name.split(".")
    if parts[0] == "neck":
        return "RMA"
    if parts[0] == "head":
        return "head"
    if parts[0] != "backbone" or len(parts) < 2:
        return "other"
    stage = parts[1]
    if stage.startswith("transition"):
        return "transitions"
    if stage == "layer1":
        return "stage 1"
    if stage.startswith("stage"):
        if "fuse_layers" in parts:
            return "fusion"
        return "attention" if "attn" in parts else "block convs"
    return "stem"


@torch.no_grad()
def cost_by_part(model: nn.Module, input_size=224) -> list[dict]:
    """Parameters and FLOPs (torch counter) of each part of an HRNetV2 model (:data:`MODEL_PARTS`).

    FLOPs are attributed to the innermost module that runs them, so nothing is counted twice;
    rows: ``part``, ``params``, ``flops``, in :data:`MODEL_PARTS` order (parts with neither are left out).
    """
    params = dict.fromkeys(MODEL_PARTS, 0)
    for name, parameter in model.named_parameters():
        params[part_of(name)] = params.get(part_of(name), 0) + parameter.numel()
    meta_model = copy.deepcopy(model).to("meta").eval()
    counter = FlopCounterMode(display=False)
    with counter:
        meta_model(torch.empty(_as_input_shape(input_size), device="meta"))
    totals = {
        key.partition(".")[2]: sum(ops.values())
        for key, ops in counter.get_flop_counts().items()
        if key != "Global" and "." in key
    }
    # each module's own FLOPs: its total less those of its nearest counted descendants (a ModuleList
    # is never called, so a transition's convs count under the backbone's, two levels up)
    own = dict(totals)
    for name, total in totals.items():
        parent = name.rpartition(".")[0]
        while parent and parent not in totals:
            parent = parent.rpartition(".")[0]
        if parent:
            own[parent] -= total
    flops = dict.fromkeys(MODEL_PARTS, 0)
    for name, total in own.items():
        flops[part_of(name)] = flops.get(part_of(name), 0) + total
    return [
        dict(part=part, params=params.get(part, 0), flops=flops.get(part, 0))
        for part in (*MODEL_PARTS, "other")
        if params.get(part, 0) or flops.get(part, 0)
    ]


def cost_rows(costs: dict[str, list[dict]]) -> list[dict]:
    """One row per part with each model's parameters (M) and FLOPs (G), from :func:`cost_by_part` per model."""
    longest_first = sorted(costs.values(), key=len, reverse=True)  # the fullest model sets the order
    parts = list(dict.fromkeys(row["part"] for rows in longest_first for row in rows))
    by_model = {model: {row["part"]: row for row in rows} for model, rows in costs.items()}
    return [
        {
            "part": part,
            **{
                f"{model} {column}": by_part.get(part, {}).get(key, 0) / scale
                for model, by_part in by_model.items()
                for key, column, scale in (("params", "params_M", 1e6), ("flops", "GFLOPs", 1e9))
            },
        }
        for part in parts
    ]
