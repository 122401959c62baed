"""``python -m emr_lib study gpu``: one prepared command that measures the GPU path.

Made to spend a lent GPU's few minutes well: every stage is tested on the CPU first
(``--dry-run`` runs them all at tiny sizes in well under two minutes), and the command
stops starting new work when its time budget (``--budget-min``) is spent. In order:

1. **environment**: the GPU, its memory, and the torch, CUDA and cuDNN versions;
2. **correctness**: EMR-HRNet training steps with bf16 autocast and channels_last against
   fp32, from the same weights and batch (losses finite, gradients nonzero, logits within
   a stated tolerance), and :func:`~emr_lib.models.deploy` parity;
3. **throughput**: training and inference images/s of HRNet and EMR-HRNet, AMP off and on,
   alternating, medians, at the paper's batch and at the fastest batch that fits; and the
   hours that a paper-profile run on the expanded training split implies;
4. **comparison**: HRNet and EMR-HRNet trained from scratch with the paper's recipe (SGD
   Nesterov, warm-up + cosine, the reference's batch-scaled learning rate) on the given
   data, alternating models and seeds until the budget is spent. Each run is an ordinary
   run folder whose ``record.json`` holds per-image confusion matrices.

Results go to ``OUT/study.json`` and ``OUT/study.md``. The study needs only torch, timm,
numpy, pillow, scipy and tqdm (no smp), and reads the data from one packed ``.npz``
(``python -m emr_lib data pack``) or any dataset folder.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..data.expansion import PAPER_EXPANSION
from ..figures import table_markdown
from ..models import build_model, deploy
from ..provenance import provenance
from ..training.loop import train
from ..training.profiles import get_config
from ..training.runtime import select_device
from .efficiency import inference_step, timed, train_step

__all__ = ["StudySettings", "environment", "amp_correctness", "throughput", "comparison", "run_study"]

MODELS = ("hrnet", "emr_hrnet")


@dataclass(frozen=True)
class StudySettings:
    width: int | str = 32
    size: int = 512  # throughput input, the paper's
    batch: int = 4  # the paper's
    batches: tuple[int, ...] = (4, 8, 16, 32, 64)  # tried for the fastest batch that fits
    repeats: int = 5
    warmup: int = 2
    correctness_steps: int = 3
    compare_size: int = 224  # the shared Bijie copy's size
    compare_batch: int = 16
    max_epochs: int = 100
    train_images: int = 462  # Bijie's 6:2:2 training split, for the paper-profile estimate
    tolerance: float = 0.05  # bf16 logits: max |difference| / max |fp32 logit|
    synthetic_n: int = 400  # scenes, when the data is the synthetic default
    max_seeds: int | None = None  # seed pairs of the comparison at most (None: as many as the budget allows)

    @classmethod
    def dry_run(cls) -> StudySettings:
        """Every stage at tiny sizes, for the CPU and the tests."""
        return cls(
            width="18_small",
            size=64,
            batch=2,
            batches=(2, 4),
            repeats=2,
            warmup=1,
            correctness_steps=2,
            compare_size=64,
            compare_batch=4,
            max_epochs=2,
            synthetic_n=24,
            max_seeds=1,  # one pair shows that the stage works; more would only fill the budget
        )


def environment(device: torch.device) -> dict:
    info = {
        "device": str(device),
        "torch": str(torch.__version__),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info |= {"gpu": properties.name, "gpu_memory_GiB": round(properties.total_memory / 2**30, 1)}
        info["bf16"] = torch.cuda.is_bf16_supported()
    return info


def _batch(batch: int, size: int, device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, size, size, generator=generator)
    return x.to(device), torch.randint(0, 2, (batch, size, size), generator=generator).to(device)


def amp_correctness(device: torch.device, settings: StudySettings) -> dict:
    """bf16 + channels_last against fp32 from the same weights and batch, and deploy() parity."""
    torch.manual_seed(0)
    fp32 = build_model("emr_hrnet", width=settings.width).to(device).eval()
    mixed = copy.deepcopy(fp32).to(memory_format=torch.channels_last)
    x, y = _batch(settings.batch, settings.size, device)
    with torch.no_grad():
        reference = fp32(x)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            low = mixed(x.contiguous(memory_format=torch.channels_last)).float()
    relative = ((reference - low).abs().max() / reference.abs().max()).item()
    same_class = (reference.argmax(1) == low.argmax(1)).float().mean().item()
    result = {"logits_max_relative_difference": relative, "argmax_agreement": same_class}
    for name, model, amp in (("fp32", fp32, False), ("bf16", mixed, True)):
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        torch.manual_seed(1)  # the same dropout masks for both
        losses = [train_step(model, optimizer, x, y, amp).item() for _ in range(settings.correctness_steps)]
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        result[f"{name}_losses"] = losses
        result[f"{name}_grads_nonzero"] = sum(bool(g.abs().sum() > 0) for g in grads) / max(len(grads), 1)
    with torch.no_grad():
        original = copy.deepcopy(fp32).eval()
        deployed = deploy(copy.deepcopy(fp32))
        result["deploy_max_abs_difference"] = (original(x) - deployed(x)).abs().max().item()
    finite = all(torch.isfinite(torch.tensor(result[f"{n}_losses"])).all() for n in ("fp32", "bf16"))
    result["passed"] = bool(
        finite
        and relative <= settings.tolerance
        and result["fp32_grads_nonzero"] > 0.9
        and result["bf16_grads_nonzero"] > 0.9
        and result["deploy_max_abs_difference"] < 1e-3
    )
    result["tolerance"] = settings.tolerance
    return result


def _speeds(models: dict, batch: int, settings: StudySettings, device) -> list[dict]:
    """Train and inference images/s of every model with AMP off and on, alternating, medians."""
    x, y = _batch(batch, settings.size, device)
    x = x.contiguous(memory_format=torch.channels_last)
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9) for name, m in models.items()}
    times: dict[tuple, list[float]] = {}
    for rep in range(settings.warmup + settings.repeats):
        for name, model in models.items():
            for amp in (False, True):
                train_s = timed(lambda m=model, n=name, a=amp: train_step(m, optimizers[n], x, y, a), device)
                infer_s = timed(lambda m=model, a=amp: inference_step(m, x, a), device)
                if rep >= settings.warmup:
                    times.setdefault((name, amp, "train"), []).append(train_s)
                    times.setdefault((name, amp, "infer"), []).append(infer_s)
    return [
        {
            "model": name,
            "amp": amp,
            "batch": batch,
            "size": settings.size,
            "train_images_per_s": batch / statistics.median(times[(name, amp, "train")]),
            "infer_images_per_s": batch / statistics.median(times[(name, amp, "infer")]),
        }
        for name in models
        for amp in (False, True)
    ]


def _fastest_batch(model, settings: StudySettings, device) -> int:
    """The batch (of ``settings.batches``) with the most training images/s with AMP that fits in memory."""
    best, best_rate = settings.batches[0], 0.0
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    model.train()
    for batch in settings.batches:
        try:
            x, y = _batch(batch, settings.size, device)
            for _ in range(2):
                train_step(model, optimizer, x, y, amp=True)
            rate = batch / timed(lambda x=x, y=y: train_step(model, optimizer, x, y, amp=True), device)
        except torch.OutOfMemoryError:
            break
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if rate > best_rate:
            best, best_rate = batch, rate
    return best


def throughput(device: torch.device, settings: StudySettings) -> dict:
    """Images/s at the paper's batch and at the fastest batch that fits, and the paper-profile hours."""
    models = {
        name: build_model(name, width=settings.width).to(device).to(memory_format=torch.channels_last)
        for name in MODELS
    }
    fastest = _fastest_batch(models["emr_hrnet"], settings, device)
    rows = _speeds(models, settings.batch, settings, device)
    if fastest != settings.batch:
        rows += _speeds(models, fastest, settings, device)
    expanded = round(PAPER_EXPANSION * settings.train_images)
    hours = {
        row["model"]: 100 * expanded / row["train_images_per_s"] / 3600
        for row in rows
        if row["amp"] and row["batch"] == settings.batch
    }
    return {"rows": rows, "fastest_batch": fastest, "paper_profile_train_hours": hours, "expanded_images": expanded}


def _recipe(model: str, data: str, seed: int, epochs: int, settings: StudySettings, device: str):
    """The paper profile at the study's size, batch and epochs, lr scaled as the reference does."""
    lr = min(max(4e-3 * settings.compare_batch / 16, 5e-4), 0.1)  # hrnet-pytorch: 1e-3 at batch 4
    return get_config(
        "paper",
        model=model,
        data=data,
        seed=seed,
        device=device,
        size=settings.compare_size,
        batch_size=settings.compare_batch,
        lr=lr,
        epochs=epochs,
        warmup_epochs=int(min(max(0.05 * epochs, 1), 3)),
        flat_epochs=int(0.15 * epochs),
        patience=0,
        augment=True,  # online augmentation in place of the offline expansion, to fit the budget
        offline_expansion=0.0,
        synthetic_n=settings.synthetic_n,
        synthetic_size=settings.compare_size,
        **{"model_options.width": settings.width},
    )


def comparison(data: str, out: Path, deadline: float, settings: StudySettings, device: torch.device) -> dict:
    """HRNet and EMR-HRNet from scratch, seed after seed (both models each), until ``deadline``.

    A one-epoch probe of the slower model sizes the runs so that two seeds of both fit;
    a seed is started only when both of its runs are expected to finish in time, and no more
    than ``settings.max_seeds`` seeds are run. EMR-HRNet is the kit's default, so its DEMA
    placement is the paper's (``dema_blocks`` in the result says which was measured).
    """
    probe = train(_recipe("emr_hrnet", data, 0, 1, settings, str(device)), out / "probe", progress=False)
    epoch_s = 1.2 * probe["wall_time_s"]
    epochs = int(max(1, min(settings.max_epochs, (deadline - time.monotonic()) / (4 * epoch_s))))
    runs, pair_s, seed = [], 2 * epochs * epoch_s, 0

    def another_seed() -> bool:
        if settings.max_seeds is not None and seed >= settings.max_seeds:
            return False
        return seed == 0 or deadline - time.monotonic() >= pair_s

    while another_seed():
        pair_start = time.monotonic()
        for model in MODELS:
            folder = out / f"{model}-seed{seed}"
            record = train(_recipe(model, data, seed, epochs, settings, str(device)), folder, progress=False)
            runs.append(
                {
                    "model": model,
                    "seed": seed,
                    "test_mIoU": 100 * record["test_metrics"]["mIoU"],
                    "best_epoch": record["best_epoch"],
                    "minutes": record["wall_time_s"] / 60,
                    "run": str(folder),
                }
            )
        pair_s = max(pair_s, time.monotonic() - pair_start)
        seed += 1
    placement = probe["config"]["model_options"].get("dema_blocks")
    return {
        "epochs": epochs,
        "batch": settings.compare_batch,
        "size": settings.compare_size,
        "dema_blocks": placement,
        "runs": runs,
    }


def _summary_markdown(result: dict) -> str:
    lines = [f"# GPU study ({'dry run' if result['dry_run'] else 'full'})", "", "## Environment", ""]
    lines += [f"- {key}: {value}" for key, value in result["environment"].items()]
    for title, key in (("Correctness (bf16 + channels_last vs fp32)", "correctness"),):
        if key in result:
            lines += ["", f"## {title}", ""] + [f"- {k}: {v}" for k, v in result[key].items()]
    if "throughput" in result:
        lines += ["", "## Throughput (medians, alternating)", "", table_markdown(result["throughput"]["rows"])]
        hours = ", ".join(f"{m} {h:.2f} h" for m, h in result["throughput"]["paper_profile_train_hours"].items())
        lines += ["", f"Paper-profile training implied (100 epochs on the expanded training split): {hours}."]
    if result.get("comparison", {}).get("runs"):
        placement = result["comparison"].get("dema_blocks")
        lines += ["", "## HRNet vs EMR-HRNet from scratch", "", table_markdown(result["comparison"]["runs"])]
        lines += ["", f"EMR-HRNet's DEMA placement: `dema_blocks={placement!r}`."]
    lines += [
        "",
        f"_budget {result['budget_min']} min, stages {result['stages']}, commit {result['provenance']['commit']}_",
    ]
    return "\n".join(lines) + "\n"


def run_study(out: str | Path, data: str, budget_min: float = 9.0, dry_run: bool = False, device: str = "auto") -> dict:
    """Run the stages in order within ``budget_min`` minutes; write ``study.json`` and ``study.md``."""
    out, start = Path(out), time.monotonic()
    deadline = start + 60 * budget_min
    settings = StudySettings.dry_run() if dry_run else StudySettings()
    chosen = select_device(device)
    result = {"dry_run": dry_run, "budget_min": budget_min, "settings": asdict(settings), "stages": {}}
    result["environment"] = environment(chosen)
    result["provenance"] = provenance(chosen)
    out.mkdir(parents=True, exist_ok=True)
    for name, stage in (
        ("correctness", lambda: amp_correctness(chosen, settings)),
        ("throughput", lambda: throughput(chosen, settings)),
        ("comparison", lambda: comparison(data, out / "runs", deadline, settings, chosen)),
    ):
        if time.monotonic() > deadline:
            result["stages"][name] = "skipped: budget spent"
            continue
        stage_start = time.monotonic()
        result[name] = stage()
        result["stages"][name] = f"{time.monotonic() - stage_start:.0f} s"
        (out / "study.json").write_text(json.dumps(result, indent=1))  # what is done survives a kill
    (out / "study.md").write_text(_summary_markdown(result))
    return result
