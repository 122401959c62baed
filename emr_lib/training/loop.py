"""Training: the paper's recipe, checkpoints that survive interruption, DDP.

>>> from emr_lib.training import get_config, train
>>> record = train(get_config("quick"), "runs/quick/emr_hrnet")   # doctest: +SKIP

One entry point, :func:`train`, runs on CPU, one GPU, or several GPUs or CPU processes
under ``torchrun --nproc_per_node=N -m emr_lib train ...`` (DistributedDataParallel:
NCCL on GPUs, gloo on CPUs). It writes into ``out_dir``:

- ``last.pt`` every epoch and ``best.pt`` on the best validation mIoU (atomic writes;
  see :mod:`emr_lib.training.checkpoints`);
- ``history.json`` / ``history.csv``: per-epoch train loss, val loss, val metrics, lr, time;
- ``splits/``: the train/val/test name lists used;
- ``record.json``: the run's result (test metrics of the best checkpoint and where they
  came from), from which notebooks build their tables.

``resume=True`` continues from ``last.pt``. Every epoch's randomness is seeded from
``(seed, epoch)`` (:func:`emr_lib.training.runtime.epoch_seed`), so an interrupted and resumed
run ends with the same weights as an uninterrupted one on the same machine.

The loop is small named steps: the recipe's optimiser and schedule (:mod:`.recipe`),
:func:`train_one_epoch`, :func:`resume_state`, :func:`run_record`.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm.auto import tqdm

from ..data.splits import splits_digest
from ..evaluation.inference import evaluate, per_image_confusion
from ..evaluation.metrics import format_metrics
from ..models import backbone_of, count_parameters
from ..paths import shown_path
from ..provenance import provenance
from .checkpoints import (
    TrainState,
    atomic_save,
    atomic_write,
    build_run_model,
    load_checkpoint,
    resume_state,
    training_checkpoint,
    weights_digest,
)
from .profiles import TrainConfig
from .recipe import lr_at, make_optimizer, segmentation_loss
from .run_data import RunDatasets, cached_views, run_datasets, shrink_notes
from .runtime import (
    Distributed,
    Precision,
    default_num_workers,
    epoch_seed,
    init_distributed,
    seed_everything,
    seed_rngs,
    seed_worker,
    select_device,
    uses_channels_last,
    uses_cpu_fast,
)

__all__ = ["train", "train_one_epoch", "epoch_loader", "run_record", "evaluate_final"]


# --- one epoch -----------------------------------------------------------------------------------


def epoch_loader(
    train_set, config: TrainConfig, epoch: int, ctx: Distributed | None = None, workers: int = 0, pin: bool = False
) -> DataLoader:
    """The epoch's shuffled loader; its order and augmentation follow ``(seed, epoch)``."""
    ctx = ctx or Distributed()
    seed = epoch_seed(config.seed, epoch)
    seed_rngs(seed)
    generator = torch.Generator().manual_seed(seed)
    if ctx.active:
        sampler = DistributedSampler(train_set, ctx.world, ctx.rank, shuffle=True, seed=config.seed)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(train_set, generator=generator)
    return DataLoader(
        train_set,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=workers,
        worker_init_fn=seed_worker,
        generator=generator,
        pin_memory=pin,
    )


def train_one_epoch(
    model,
    loader,
    optimizer,
    precision: Precision,
    config: TrainConfig,
    device,
    desc: str = "",
    progress: bool = True,
    frozen=(),
    on_step=None,
) -> float:
    """One pass over ``loader``; returns the mean training loss over all ranks' samples.

    ``frozen`` parameters get no update: their gradients are dropped before each step (which
    is safe under DDP, where switching ``requires_grad`` after wrapping the model is not).
    ``on_step``, when given, is called with each step's loss (a float) after the update.
    """
    model.train()
    channels_last = uses_channels_last(config, device)
    loss_sum, count = 0.0, 0
    # the bar counts, the loop iterates the loader itself: tqdm.auto's asyncio wrapper calls iter() on
    # what it wraps, and a second DataLoader iterator draws from the epoch's generator (another sample
    # order than the plain loop of notebook 04) and, with workers, starts them twice
    bar = tqdm(total=len(loader), desc=desc, leave=False, disable=not progress)
    for batch in loader:
        images = batch["image"].to(device, non_blocking=True)
        masks = batch["mask"].to(device, non_blocking=True)
        if channels_last:
            images = images.to(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=precision.dtype, enabled=precision.enabled):
            logits = model(images)
        loss = segmentation_loss(logits.float(), masks, config.loss)
        optimizer.zero_grad(set_to_none=True)
        precision.scaler.scale(loss).backward()
        for parameter in frozen:
            parameter.grad = None
        precision.scaler.step(optimizer)
        precision.scaler.update()
        if on_step is not None:
            on_step(loss.item())
        loss_sum += loss.item() * len(images)
        count += len(images)
        bar.update(1)
        bar.set_postfix(loss=f"{loss_sum / count:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
    bar.close()
    if dist.is_initialized():
        totals = torch.tensor([loss_sum, count], dtype=torch.float64, device=device)
        dist.all_reduce(totals)
        loss_sum, count = totals.tolist()
    return loss_sum / max(count, 1)


# --- state, resume, record -----------------------------------------------------------------------


def validates_after(epoch: int, config: TrainConfig) -> bool:
    """Whether the run validates after ``epoch`` (1-based): every ``val_every`` epochs, and the last."""
    return epoch == config.epochs or (config.val_every > 0 and epoch % config.val_every == 0)


def history_row(epoch: int, lr: float, train_loss: float, val_metrics: dict | None, seconds: float) -> dict:
    """One line of ``history.json``: the epoch (1-based), its rate, losses, validation metrics (None
    after an epoch without validation, see ``val_every``) and time."""
    val_metrics = val_metrics or {}
    val = {f"val_{k}": v for k, v in val_metrics.items() if k != "loss"}
    return {
        "epoch": epoch,
        "lr": lr,
        "train_loss": train_loss,
        "val_loss": val_metrics.get("loss"),
        **val,
        "time_s": seconds,
    }


def write_history(history: list[dict], out_dir: Path) -> None:
    """``history.json`` and ``history.csv``, both written atomically."""
    atomic_write(json.dumps(history, indent=1), out_dir / "history.json")
    keys = list(dict.fromkeys(k for row in history for k in row))
    tmp = out_dir / f".history.csv.tmp{os.getpid()}"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, out_dir / "history.csv")


def run_record(config: TrainConfig, data: RunDatasets, state: TrainState, finished: bool, out_dir: Path, **extra):
    """The run's ``record.json`` content, before the test metrics are added."""
    return {
        "status": "finished" if finished else "stopped",
        "model": config.model,
        "options": config.model_options,
        "profile": config.profile,
        "data": data.description,
        "data_fingerprint": data.fingerprint(),
        "model_gsd_m": data.model_gsd,
        **({"data_parts": data.parts} if data.parts else {}),
        "splits_digest": splits_digest(data.splits),  # a run reads its given lists wherever they lie
        **({"init_weights": weights_digest(config.init)} if config.init else {}),  # what fine-tuning started from
        **({"expansion": data.expansion(out_dir)} if config.offline_expansion > 0 else {}),
        "split": {k: len(v) for k, v in data.splits.items()},
        "split_dir": str(out_dir / "splits"),
        "seed": config.seed,
        "epochs_run": len(state.history),
        "best_epoch": state.best_epoch,
        "best_val_mIoU": state.best_miou,
        "wall_time_s": sum(h["time_s"] for h in state.history),
        "config": config.to_dict(),
        **extra,
    }


def evaluate_final(model, out_dir: Path, data: RunDatasets, config: TrainConfig, device, progress, per_image: bool):
    """Test metrics of the weights a run reports, loaded into ``model``: the best validation epoch's
    when the data has a test part; the last epoch's when it has none (Tables 4-5's 4:1 split), so
    the images reported on never choose the epoch. With ``per_image``, each image's confusion
    matrix too, for paired comparisons of runs (a bootstrap over test images). Always in fp32,
    whatever the training precision, so the per-image matrices add up to the reported one."""
    last = data.test_split != "test"
    state = load_checkpoint(out_dir / ("last.pt" if last else "best.pt"))
    model.load_state_dict(state["model"])
    metrics, cm = evaluate(model, data.test, config.batch_size, device, config.num_classes, progress=progress)
    selection = f"{'last' if last else 'best validation'} epoch ({state['epoch']})"
    result = {"test_split": data.test_split, "test_selection": selection, "test_metrics": metrics,
              "test_confusion_matrix": cm.tolist()}  # fmt: skip
    if per_image:
        result["test_per_image"] = per_image_confusion(model, data.test, device, config.batch_size)
    return result


# --- the loop ------------------------------------------------------------------------------------


def train(
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    compact: bool = False,
    on_step=None,
) -> dict:
    """Train ``config.model`` on ``config.data``; return the run record (also in ``record.json``).

    ``stop_after=k`` ends this call after epoch k (a checkpoint is saved; continue later with
    ``resume=True``), for time-boxed sessions such as Colab's. ``compact=True`` (notebooks): one
    progress bar over the epochs (with ``progress``) instead of a bar and a line per epoch.
    ``on_step`` is called with every training step's loss (see :func:`train_one_epoch`).
    """
    config.validate()
    out_dir = Path(out_dir)
    device = select_device(config.device)
    ctx = init_distributed(device)
    if ctx.main:
        out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed, config.deterministic)
    data = run_datasets(config, out_dir / "splits" if ctx.main else None)
    data.require("train", "val")
    fast = uses_cpu_fast(config, device)
    train_set, val_set, test_set = data.train(out_dir, ctx, augment_at_size=fast), data.val, data.test
    if config.cache_images:  # decoded once (and resized once, with cpu_fast), for every epoch
        train_set, val_set = cached_views([train_set, val_set], progress=progress and ctx.main and not compact)

    model = build_run_model(config).to(device)
    frozen = _backbone_parameters(model, config)
    if uses_channels_last(config, device):
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config, fused=fast)
    precision = Precision.for_device(device, config.amp, cpu_bf16=config.cpu_fast)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    state = TrainState()
    if resume and last_path.is_file():
        state = resume_state(last_path, config, model, optimizer, precision.scaler)
        if ctx.main:
            print(f"resuming {shown_path(out_dir)} after epoch {state.epoch}")
    train_model = nn.parallel.DistributedDataParallel(model) if ctx.active else model
    workers = default_num_workers(device) if config.num_workers < 0 else config.num_workers
    n_params = count_parameters(model)
    if ctx.main and state.epoch == 0:
        _EpochReport.first_line(config, n_params, device, (len(train_set), len(val_set), len(test_set)))
        for note in shrink_notes(config):  # said before hours of training on scenes shrunk too far
            print(note)
    # taken once, before training: the code (commit) that trains is the one loaded now, even
    # if the checkout moves on while a long run is going
    run_provenance = provenance(device)
    stopped_early = False
    inner_progress = progress and not compact  # compact: no bars inside an epoch, no line per epoch
    report = _EpochReport(config, state.epoch, progress, compact)
    for epoch in range(state.epoch, config.epochs):
        if stop_after is not None and epoch >= stop_after:
            break
        epoch_start = time.perf_counter()
        loader = epoch_loader(train_set, config, epoch, ctx, workers, pin=device.type == "cuda")
        lr = lr_at(epoch, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        desc, show = f"epoch {epoch + 1}/{config.epochs}", inner_progress and ctx.main
        held = frozen if epoch < config.freeze_epochs else ()
        train_loss = train_one_epoch(
            train_model, loader, optimizer, precision, config, device, desc, show, held, on_step
        )
        val_metrics = _validate(model, val_set, config, device, inner_progress, precision, epoch + 1)
        state.epoch = epoch + 1
        improved = val_metrics is not None and state.update(val_metrics["mIoU"])
        state.history.append(history_row(epoch + 1, lr, train_loss, val_metrics, time.perf_counter() - epoch_start))
        if ctx.main:
            checkpoint = training_checkpoint(
                config, model, optimizer, precision.scaler, state, val_metrics, data, run_provenance
            )
            atomic_save(checkpoint, last_path)
            if improved:
                atomic_save(checkpoint, best_path)
            write_history(state.history, out_dir)
            report.epoch(state, val_metrics, lr)
        ctx.barrier()
        if config.patience and val_metrics is not None and state.bad_epochs >= config.patience:
            stopped_early = True
            if ctx.main:
                print(f"early stopping: no better validation mIoU for {state.bad_epochs} epochs")
            break

    report.close()
    finished = stopped_early or bool(state.history and state.history[-1]["epoch"] == config.epochs)
    record = run_record(config, data, state, finished, out_dir, parameters=n_params, **run_provenance)
    if finished and best_path.is_file():
        record.update(evaluate_final(model, out_dir, data, config, device, inner_progress, ctx.main))
        if ctx.main:
            metrics = format_metrics(record["test_metrics"])
            print(f"test ({len(test_set)} images, {record['test_selection']}): {metrics}")
    if ctx.main:
        atomic_write(json.dumps(record, indent=1), out_dir / "record.json")
    ctx.barrier()
    return record


def _validate(model, val_set, config: TrainConfig, device, progress: bool, precision, epoch: int) -> dict | None:
    """Validation metrics after ``epoch`` (1-based), or None when the run skips it (``val_every``)."""
    if not validates_after(epoch, config):
        return None
    amp = (precision.enabled, precision.dtype)
    metrics, _ = evaluate(model, val_set, config.batch_size, device, config.num_classes, progress, *amp)
    return metrics


def _backbone_parameters(model: nn.Module, config: TrainConfig) -> list:
    """The parameters ``freeze_epochs`` holds still (none when it is 0)."""
    if not config.freeze_epochs:
        return []
    backbone = backbone_of(model)
    if backbone is None:
        raise ValueError(f"freeze_epochs: {config.model} has no backbone or encoder to freeze")
    return list(backbone.parameters())


class _EpochReport:
    """How a run reports its epochs: a line each (the command line), or one bar over the epochs
    (``compact``, notebooks: one output instead of one per epoch; nothing when headless)."""

    def __init__(self, config: TrainConfig, done: int, progress: bool, compact: bool):
        self.config, self.compact = config, compact
        self.bar = tqdm(
            total=config.epochs, initial=done, desc=config.model, unit="epoch", disable=not (compact and progress)
        )

    @staticmethod
    def first_line(config: TrainConfig, n_params: int, device, sizes: tuple[int, int, int]) -> None:
        print(
            f"{config.model} {config.model_options}: {n_params / 1e6:.2f}M parameters on {device}; "
            f"{sizes[0]} train / {sizes[1]} val / {sizes[2]} test images at {config.size} px"
        )

    def epoch(self, state: TrainState, val_metrics: dict | None, lr: float) -> None:
        last, config = state.history[-1], self.config
        # a run that validates every few epochs (val_every) or only at the end has no best yet: say when it will
        later = (e for e in range(last["epoch"] + 1, config.epochs + 1) if validates_after(e, config))
        best = f"{100 * state.best_miou:.2f}" if state.best_epoch else f"after epoch {next(later, config.epochs)}"
        if self.compact:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{last['train_loss']:.4f}", best_val_mIoU=best)
            return
        val = f"val {format_metrics(val_metrics, ('mIoU', 'F1'))}  " if val_metrics else ""
        best = f"best {best} (epoch {state.best_epoch})" if state.best_epoch else f"not validated yet: {best}"
        print(
            f"epoch {last['epoch']}/{config.epochs}  loss {last['train_loss']:.4f}  "
            f"{val}{best}  lr {lr:.2e}  {last['time_s']:.0f} s",
            flush=True,
        )

    def close(self) -> None:
        self.bar.close()
