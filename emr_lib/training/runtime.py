"""The machine a run uses: seeds, determinism, device choice and DDP set-up.

Every epoch's randomness (shuffling, augmentation, dropout) is seeded from
``(seed, epoch)`` by :func:`epoch_seed`, so an interrupted and resumed run ends with
the same weights as an uninterrupted one on the same machine.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "Precision",
    "uses_channels_last",
    "uses_cpu_fast",
    "seed_rngs",
    "seed_everything",
    "seed_worker",
    "epoch_seed",
    "select_device",
    "default_num_workers",
    "Distributed",
    "init_distributed",
]


def seed_rngs(seed: int) -> None:
    """Seed Python's, NumPy's legacy global and torch's (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the legacy global RNG, for third-party code that uses it
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); optionally ask for deterministic kernels."""
    seed_rngs(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        # warn_only: a few CUDA kernels (bilinear upsampling backward) have no deterministic version
        torch.use_deterministic_algorithms(True, warn_only=True)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: each worker's generators follow torch's per-worker seed."""
    seed_rngs(torch.initial_seed() % 2**32)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch of a run, so a resumed epoch draws what an uninterrupted one would."""
    return (seed * 1_000_003 + epoch * 7919) % 2**31


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
class Distributed:
    """This process's place in a ``torchrun`` job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group that ``torchrun`` set up (NCCL on GPUs, gloo on CPUs), if any."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


@dataclass
class Precision:
    """Mixed precision on CUDA (bf16 where supported, else fp16 with a scaler); bf16 on a CPU with cpu_fast."""

    enabled: bool
    dtype: torch.dtype
    scaler: torch.amp.GradScaler

    @classmethod
    def for_device(cls, device: torch.device, amp: bool, cpu_bf16: bool = False) -> Precision:
        if device.type == "cpu":  # bf16 needs no scaler
            return cls(cpu_bf16, torch.bfloat16, torch.amp.GradScaler("cuda", enabled=False))
        use_cuda = device.type == "cuda"
        dtype = torch.bfloat16 if use_cuda and torch.cuda.is_bf16_supported() else torch.float16
        enabled = amp and use_cuda
        return cls(enabled, dtype, torch.amp.GradScaler("cuda", enabled=enabled and dtype == torch.float16))


def uses_cpu_fast(config, device: torch.device) -> bool:
    """``config.cpu_fast`` applies: on a CPU only."""
    return config.cpu_fast and device.type == "cpu"


def uses_channels_last(config, device: torch.device) -> bool:
    return (config.channels_last and device.type == "cuda") or uses_cpu_fast(config, device)
