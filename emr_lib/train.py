"""Training and evaluation: the paper's recipe, checkpoints that survive interruption, DDP.

>>> from emr_lib.profiles import get_config
>>> from emr_lib.train import train
>>> record = train(get_config("quick"), "runs/quick/emr_hrnet")   # doctest: +SKIP

One entry point, :func:`train`, runs on CPU, one GPU, or several GPUs or CPU processes
under ``torchrun --nproc_per_node=N -m emr_lib train ...`` (DistributedDataParallel:
NCCL on GPUs, gloo on CPUs). It writes into ``out_dir``:

- ``last.pt`` every epoch and ``best.pt`` on the best validation mIoU (atomic writes;
  tensors and plain metadata only, loadable with ``torch.load(weights_only=True)``);
- ``history.json`` / ``history.csv``: per-epoch train loss, val loss, val metrics, lr, time;
- ``splits/``: the train/val/test name lists used;
- ``record.json``: the run's result (test metrics of the best checkpoint and where they
  came from), from which notebooks build their tables.

``resume=True`` continues from ``last.pt``. Every epoch's randomness (shuffling,
augmentation, dropout) is seeded from ``(seed, epoch)``, so an interrupted and resumed
run ends with the same weights as an uninterrupted one on the same machine.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from .augment import CenterRep as CenterRepTransform
from .augment import Compose, Resize, eval_transform, expand_dataset, train_transform
from .data import (
    DataError,
    DatasetView,
    FolderDataset,
    SyntheticLandslides,
    load_splits,
    make_splits,
    open_dataset,
    save_splits,
)
from .efficiency import count_parameters
from .metrics import confusion_matrix, format_metrics, segmentation_metrics
from .models import build_model
from .profiles import TrainConfig
from .provenance import provenance

__all__ = [
    "seed_everything",
    "select_device",
    "lr_at",
    "build_splits",
    "evaluate",
    "predict",
    "predict_scene",
    "per_image_metrics",
    "train",
    "load_checkpoint",
    "model_from_checkpoint",
    "CheckpointError",
]

CHECKPOINT_FORMAT = "emr_lib.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or from another model."""


# --- machine ---------------------------------------------------------------------------------


def _seed_rngs(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global RNG, for third-party code that uses it
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); optionally ask for deterministic kernels."""
    _seed_rngs(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        # warn_only: a few CUDA kernels (bilinear upsampling backward) have no deterministic version
        torch.use_deterministic_algorithms(True, warn_only=True)


def _seed_worker(worker_id: int) -> None:
    _seed_rngs(torch.initial_seed() % 2**32)


def select_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA, then Apple MPS, then CPU; anything else is passed to ``torch.device``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu or auto")
    return device


def default_num_workers(device: torch.device) -> int:
    cpus = os.cpu_count() or 1
    if device.type == "cuda":
        return min(8, cpus)
    return 0 if cpus <= 2 else min(4, cpus // 2)  # on a 2-core laptop, workers only steal compute


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def _init_distributed(device: torch.device) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1:
        return _Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size())


# --- schedule, loss ----------------------------------------------------------------------------


def lr_at(epoch: int, config: TrainConfig) -> float:
    """Learning rate of (0-based) ``epoch``: quadratic warm-up from 10 %, cosine to min, flat tail.

    The hrnet-pytorch "cos" schedule the paper used, stepped per epoch.
    """
    base, low = config.lr, config.lr * config.min_lr_ratio
    warm, flat, total = config.warmup_epochs, config.flat_epochs, config.epochs
    if warm and epoch < warm:
        start = 0.1 * base
        return start + (base - start) * ((epoch + 1) / warm) ** 2 if warm > 1 else base
    decay = max(1, total - warm - flat)
    if epoch >= total - flat:
        return low
    progress = min(1.0, (epoch - warm) / decay)
    return low + 0.5 * (base - low) * (1 + math.cos(math.pi * progress))


def _loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    loss = F.cross_entropy(logits, target)
    if kind == "ce+dice":
        prob = logits.float().softmax(dim=1)[:, 1]
        truth = (target == 1).float()
        dice = (2 * (prob * truth).sum() + 1) / (prob.sum() + truth.sum() + 1)
        loss = loss + (1 - dice)
    return loss


# --- data ----------------------------------------------------------------------------------------


def _open_base(config: TrainConfig):
    if config.data == "synthetic":
        return SyntheticLandslides(config.synthetic_n, size=config.synthetic_size, seed=0), "synthetic"
    path = Path(config.data).expanduser()
    if not path.exists():
        raise DataError(f"data folder not found: {path}. Pass --data PATH (see data/README.md) or 'synthetic'.")
    return open_dataset(path, include_non_landslide=config.include_non_landslide), str(path)


def build_splits(config: TrainConfig, out_dir: str | Path | None = None):
    """The base dataset, its train/val/test name lists and a description of the data."""
    base, described = _open_base(config)
    if config.split_dir:
        splits = load_splits(config.split_dir)
    else:
        splits = make_splits(base.names, config.split_ratios, seed=config.split_seed)
    if out_dir is not None:
        save_splits(splits, Path(out_dir) / "splits")
    return base, splits, described


def _train_dataset(config: TrainConfig, base, names: list[str], out_dir: Path, main: bool):
    if config.offline_expansion > 0:
        expanded = out_dir / "expanded"
        if main and not (expanded / "manifest.json").is_file():
            expand_dataset(base, names, expanded, factor=config.offline_expansion, seed=config.split_seed)
        if dist.is_initialized():
            dist.barrier()
        base = FolderDataset(expanded / "images", expanded / "masks")
        names = base.names
    if config.augment:
        transform = train_transform(config.size, centerrep=config.centerrep)
    elif config.centerrep > 0:
        transform = Compose([CenterRepTransform(config.centerrep), Resize(config.size)])
    else:
        transform = eval_transform(config.size)
    return DatasetView(base, names, transform)


# --- evaluation and prediction -----------------------------------------------------------------


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    num_classes: int = 2,
    progress: bool = True,
    amp: bool = False,
) -> tuple[dict[str, float], torch.Tensor]:
    """Metrics over ``dataset`` from one accumulated confusion matrix, and that matrix.

    Under ``torch.distributed`` every rank evaluates its share of the samples and the
    confusion matrices are summed, so all ranks return the single-process result.
    Also returns the mean cross-entropy as ``loss``.
    """
    from tqdm.auto import tqdm

    device = torch.device(device) if device else next(model.parameters()).device
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    indices = list(range(rank, len(dataset), world))
    loader = DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=batch_size, shuffle=False)
    model.eval()
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    loss_sum = torch.zeros(2, dtype=torch.float64)
    for batch in tqdm(loader, desc="evaluating", leave=False, disable=not (progress and rank == 0)):
        images, masks = batch["image"].to(device), batch["mask"].to(device)
        with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
            logits = model(images)
        loss_sum += torch.tensor([F.cross_entropy(logits.float(), masks, reduction="sum").item(), masks.numel()])
        cm += confusion_matrix(logits.argmax(1), masks, num_classes)
    if world > 1:
        cm, loss_sum = cm.to(device), loss_sum.to(device)
        dist.all_reduce(cm)
        dist.all_reduce(loss_sum)
        cm, loss_sum = cm.cpu(), loss_sum.cpu()
    metrics = segmentation_metrics(cm)
    metrics["loss"] = (loss_sum[0] / loss_sum[1].clamp(min=1)).item()
    return metrics, cm


@torch.no_grad()
def per_image_metrics(model: nn.Module, dataset, device: str | torch.device | None = None) -> list[dict]:
    """Metrics of every image on its own (name, landslide IoU, mIoU, ...), e.g. to find failure cases."""
    device = torch.device(device) if device else next(model.parameters()).device
    model.eval()
    rows = []
    for i in range(len(dataset)):
        item = dataset[i]
        logits = model(item["image"].unsqueeze(0).to(device))
        metrics = segmentation_metrics(confusion_matrix(logits.argmax(1).cpu(), item["mask"].unsqueeze(0)))
        rows.append({"index": i, "name": item["name"], **metrics})
    return rows


@torch.no_grad()
def predict(model: nn.Module, images, device: str | torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks (B, H, W) int64 and landslide probabilities (B, H, W) for images (B, 3, H, W) in [0, 1].

    A single (3, H, W) image or a list of them is accepted too.
    """
    if isinstance(images, (list, tuple)):
        images = torch.stack(list(images))
    if images.dim() == 3:
        images = images.unsqueeze(0)
    device = torch.device(device) if device else next(model.parameters()).device
    model.eval()
    probs = model(images.to(device)).float().softmax(dim=1)
    return probs.argmax(dim=1).cpu(), probs[:, 1].cpu()


@torch.no_grad()
def predict_scene(
    model: nn.Module,
    image: np.ndarray,
    tile: int = 512,
    overlap: int = 64,
    input_size: int | None = None,
    batch_size: int = 4,
    device: str | torch.device | None = None,
    nodata: int = 0,
    progress: bool = True,
) -> np.ndarray:
    """Landslide probability (H, W) float32 of a whole scene by overlapping sliding windows.

    Windows of ``tile`` pixels step by ``tile - overlap``; each is resized to
    ``input_size`` (default: ``tile``) for the model, and overlapping predictions are
    averaged. Windows that are entirely no-data are skipped, and no-data pixels (all
    channels equal to ``nodata``) get probability 0.
    """
    from tqdm.auto import tqdm

    from .data.tiles import tile_positions

    device = torch.device(device) if device else next(model.parameters()).device
    model.eval()
    height, width = image.shape[:2]
    total = np.zeros((height, width), np.float32)
    weight = np.zeros((height, width), np.float32)
    step = tile - overlap
    windows = [(y, x) for y in tile_positions(height, tile, step) for x in tile_positions(width, tile, step)]
    windows = [(y, x) for y, x in windows if np.any(image[y : y + tile, x : x + tile] != nodata)]
    for start in tqdm(range(0, len(windows), batch_size), desc="scene", disable=not progress):
        chunk = windows[start : start + batch_size]
        crops = (
            torch.stack(
                [torch.from_numpy(image[y : y + tile, x : x + tile].copy()).permute(2, 0, 1) for y, x in chunk]
            ).float()
            / 255
        )
        if input_size and input_size != tile:
            crops = F.interpolate(crops, size=(input_size, input_size), mode="bilinear", align_corners=False)
        probs = model(crops.to(device)).float().softmax(dim=1)[:, 1:2]
        if input_size and input_size != tile:
            probs = F.interpolate(probs, size=(tile, tile), mode="bilinear", align_corners=False)
        for (y, x), prob in zip(chunk, probs[:, 0].cpu().numpy()):
            total[y : y + tile, x : x + tile] += prob
            weight[y : y + tile, x : x + tile] += 1
    prob = np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)
    prob[np.all(image == nodata, axis=2)] = 0.0  # no-data pixels are never landslide
    return prob


# --- checkpoints -------------------------------------------------------------------------------


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_write(text: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint with ``weights_only=True``; errors say what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is corrupt, truncated or not an emr_lib checkpoint "
            f"({type(err).__name__}). Use best.pt or last.pt from a finished epoch."
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an emr_lib checkpoint (no '{CHECKPOINT_FORMAT}' format tag)")
    return state


def model_from_checkpoint(state: dict | str | Path, expected_model: str | None = None) -> nn.Module:
    """Rebuild the checkpoint's model (name and options are stored in it) and load its weights."""
    if not isinstance(state, dict):
        state = load_checkpoint(state)
    if expected_model is not None and state["model_name"] != expected_model:
        raise CheckpointError(
            f"the checkpoint holds a {state['model_name']!r} model, not {expected_model!r}; "
            "pass the matching --model or leave it out"
        )
    model = build_model(state["model_name"], num_classes=state["num_classes"], **state["model_options"])
    model.load_state_dict(state["model"])
    return model.eval()


# --- training ----------------------------------------------------------------------------------


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919) % 2**31


def _write_history(history: list[dict], out_dir: Path) -> None:
    _atomic_write(json.dumps(history, indent=1), out_dir / "history.json")
    keys = list(dict.fromkeys(k for row in history for k in row))
    tmp = out_dir / f".history.csv.tmp{os.getpid()}"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, out_dir / "history.csv")


def train(
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
) -> dict:
    """Train ``config.model`` on ``config.data``; return the run record (also in ``record.json``).

    ``stop_after=k`` ends this call after epoch k (a checkpoint is saved; continue later
    with ``resume=True``), for time-boxed sessions such as Colab's.
    """
    from tqdm.auto import tqdm

    config.validate()
    out_dir = Path(out_dir)
    device = select_device(config.device)
    ctx = _init_distributed(device)
    if ctx.main:
        out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed, config.deterministic)

    base, splits, data_desc = build_splits(config, out_dir if ctx.main else None)
    for key in ("train", "val"):
        if not splits.get(key):
            raise DataError(f"the {key} split is empty; use more data or other split ratios")
    train_set = _train_dataset(config, base, splits["train"], out_dir, ctx.main)
    val_set = DatasetView(base, splits["val"], eval_transform(config.size))
    test_names = splits.get("test") or splits["val"]
    test_set = DatasetView(base, test_names, eval_transform(config.size))

    model = build_model(config.model, num_classes=config.num_classes, **config.model_options).to(device)
    use_cuda = device.type == "cuda"
    if config.channels_last and use_cuda:
        model = model.to(memory_format=torch.channels_last)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    amp_dtype = torch.bfloat16 if use_cuda and torch.cuda.is_bf16_supported() else torch.float16
    use_amp = config.amp and use_cuda
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    history: list[dict] = []
    start_epoch, best_miou, best_epoch, bad_epochs = 0, -1.0, 0, 0
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if resume and last_path.is_file():
        state = load_checkpoint(last_path)
        if state["model_name"] != config.model or state["model_options"] != config.model_options:
            raise CheckpointError(
                f"{last_path} was written for {state['model_name']} {state['model_options']}, "
                f"not {config.model} {config.model_options}; resume with the same settings or use a new --out"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history = state["history"]
        start_epoch, best_miou = state["epoch"], state["best_mIoU"]
        best_epoch, bad_epochs = state["best_epoch"], state["bad_epochs"]
        if ctx.main:
            print(f"resuming {out_dir} after epoch {start_epoch}")

    train_model = nn.parallel.DistributedDataParallel(model) if ctx.active else model
    workers = default_num_workers(device) if config.num_workers < 0 else config.num_workers
    n_params = count_parameters(model)
    if ctx.main and start_epoch == 0:
        print(
            f"{config.model} {config.model_options}: {n_params / 1e6:.2f}M parameters on {device}; "
            f"{len(train_set)} train / {len(val_set)} val / {len(test_set)} test images at {config.size} px"
        )

    # taken once, before training: the code (commit) that trains is the one loaded now, even
    # if the checkout moves on while a long run is going
    run_provenance = provenance(device)
    stopped_early = False
    for epoch in range(start_epoch, config.epochs):
        if stop_after is not None and epoch >= stop_after:
            break
        epoch_start = time.perf_counter()
        seed = _epoch_seed(config.seed, epoch)
        _seed_rngs(seed)
        generator = torch.Generator().manual_seed(seed)
        if ctx.active:
            sampler = DistributedSampler(train_set, ctx.world, ctx.rank, shuffle=True, seed=config.seed)
            sampler.set_epoch(epoch)
        else:
            sampler = RandomSampler(train_set, generator=generator)
        loader = DataLoader(
            train_set,
            batch_size=config.batch_size,
            sampler=sampler,
            num_workers=workers,
            worker_init_fn=_seed_worker,
            generator=generator,
            pin_memory=use_cuda,
        )
        lr = lr_at(epoch, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        train_model.train()
        loss_sum, count = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, disable=not (progress and ctx.main))
        for batch in bar:
            images = batch["image"].to(device, non_blocking=True)
            masks = batch["mask"].to(device, non_blocking=True)
            if config.channels_last and use_cuda:
                images = images.to(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                logits = train_model(images)
            loss = _loss(logits.float(), masks, config.loss)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.item() * len(images)
            count += len(images)
            bar.set_postfix(loss=f"{loss_sum / count:.4f}", lr=f"{lr:.2e}")
        if ctx.active:
            totals = torch.tensor([loss_sum, count], dtype=torch.float64, device=device)
            dist.all_reduce(totals)
            loss_sum, count = totals.tolist()
        val_metrics, _ = evaluate(
            model, val_set, config.batch_size, device, config.num_classes, progress=progress, amp=use_amp
        )
        improved = val_metrics["mIoU"] > best_miou
        if improved:
            best_miou, best_epoch, bad_epochs = val_metrics["mIoU"], epoch + 1, 0
        else:
            bad_epochs += 1
        history.append(
            {
                "epoch": epoch + 1,
                "lr": lr,
                "train_loss": loss_sum / max(count, 1),
                "val_loss": val_metrics["loss"],
                **{f"val_{k}": v for k, v in val_metrics.items() if k != "loss"},
                "time_s": time.perf_counter() - epoch_start,
            }
        )
        if ctx.main:
            state = {
                "format": CHECKPOINT_FORMAT,
                "model_name": config.model,
                "model_options": config.model_options,
                "num_classes": config.num_classes,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "epoch": epoch + 1,
                "best_mIoU": best_miou,
                "best_epoch": best_epoch,
                "bad_epochs": bad_epochs,
                "metrics": val_metrics,
                "history": history,
                "config": config.to_dict(),
                "data": data_desc,
                "versions": run_provenance,
            }
            _atomic_save(state, last_path)
            if improved:
                _atomic_save(state, best_path)
            _write_history(history, out_dir)
            print(
                f"epoch {epoch + 1}/{config.epochs}  loss {history[-1]['train_loss']:.4f}  "
                f"val {format_metrics(val_metrics, ('mIoU', 'F1'))}  best {100 * best_miou:.2f} "
                f"(epoch {best_epoch})  lr {lr:.2e}  {history[-1]['time_s']:.0f} s",
                flush=True,
            )
        if ctx.active:
            dist.barrier()
        if config.patience and bad_epochs >= config.patience:
            stopped_early = True
            if ctx.main:
                print(f"early stopping: no better validation mIoU for {bad_epochs} epochs")
            break

    finished = stopped_early or (history and history[-1]["epoch"] == config.epochs)
    record = {
        "status": "finished" if finished else "stopped",
        "model": config.model,
        "options": config.model_options,
        "profile": config.profile,
        "data": data_desc,
        "split": {k: len(v) for k, v in splits.items()},
        "split_dir": str(out_dir / "splits"),
        "seed": config.seed,
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "best_val_mIoU": best_miou,
        "parameters": n_params,
        "wall_time_s": sum(h["time_s"] for h in history),
        "config": config.to_dict(),
        **run_provenance,
    }
    if finished and best_path.is_file():
        model.load_state_dict(load_checkpoint(best_path)["model"])
        test_metrics, cm = evaluate(
            model, test_set, config.batch_size, device, config.num_classes, progress=progress, amp=use_amp
        )
        record.update(
            {
                "test_split": "test" if splits.get("test") else "val",
                "test_metrics": test_metrics,
                "test_confusion_matrix": cm.tolist(),
            }
        )
        if ctx.main:
            print(f"test ({len(test_set)} images, best epoch {best_epoch}): {format_metrics(test_metrics)}")
    if ctx.main:
        _atomic_write(json.dumps(record, indent=1), out_dir / "record.json")
    if ctx.active:
        dist.barrier()
    return record
