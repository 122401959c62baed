"""``python -m emr_lib doctor``: is this machine ready for the workshop? One line a check, with the fix.

Checks, in under a minute: Python and the packages (the library's and the notebooks'),
the Jupyter kernel, the device, the data the kit would use (and whether it reads), free
disk space, and an estimate of the workshop profile's minutes per model from a few timed
training steps. Each line starts with ``OK``, ``WARN`` (works, but read the note) or
``FIX`` (blocks the workshop, with what to do); the exit status is 1 when any check says FIX.
"""

from __future__ import annotations

import importlib.metadata
import math
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import TABLES_COPY, DataError, compare_checksums, dataset_kind, open_dataset
from ..experiments.efficiency import benchmark_steps
from ..models import build_model
from ..paths import project_root, resolve_data, resolve_scene
from ..training.profiles import get_config

__all__ = ["Check", "run_doctor", "CHECKS"]

CORE = ("torch", "torchvision", "timm", "segmentation-models-pytorch", "numpy", "pillow", "scipy", "tqdm", "matplotlib")
NOTEBOOKS = ("jupyterlab", "ipywidgets", "papermill", "ipykernel")
MAPPING = ("rasterio", "shapely", "pyogrio", "onnx", "onnxruntime")  # notebook 09, map, export
INSTALL = "pip install -e \".[notebooks]\" in the kit's folder (or see the instructor guide's offline install)"


@dataclass
class Check:
    status: str  # "OK", "WARN" or "FIX"
    what: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<5} {self.what}: {self.detail}"


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info < (3, 11):  # noqa: UP036 - a checkout run without pip install skips requires-python
        return Check("FIX", "python", f"{version} is too old; install Python 3.11 or newer (Colab has it)")
    return Check("OK", "python", f"{version} at {sys.executable}")


def _versions(names) -> tuple[dict[str, str], list[str]]:
    found, missing = {}, []
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return found, missing


def _package_check(what: str, names, missing_status: str = "FIX", needed_for: str = "") -> Check:
    found, missing = _versions(names)
    if missing:
        return Check(missing_status, what, f"missing {', '.join(missing)}{needed_for}: {INSTALL}")
    return Check("OK", what, ", ".join(f"{name} {version}" for name, version in found.items()))


def check_packages() -> Check:
    return _package_check("packages", CORE)


def check_notebook_packages() -> Check:
    return _package_check("notebook packages", NOTEBOOKS)


def check_mapping_packages() -> Check:
    """WARN, not FIX: only notebook 09 and the map and export commands need them."""
    return _package_check("mapping packages", MAPPING, "WARN", " (notebook 09, map, export)")


def check_kernel() -> Check:
    try:
        from jupyter_client.kernelspec import KernelSpecManager  # optional: the notebooks extra
    except ImportError:
        return Check("FIX", "jupyter kernel", f"jupyter_client is missing: {INSTALL}")
    specs = KernelSpecManager().find_kernel_specs()
    if "python3" not in specs:
        return Check("FIX", "jupyter kernel", "no python3 kernel: python -m ipykernel install --user")
    python = KernelSpecManager().get_kernel_spec("python3").argv[0]
    if python not in ("python", "python3") and Path(python).resolve() != Path(sys.executable).resolve():
        fix = (
            f"python -m ipykernel install --user --name emr-hrnet, then pick the kernel 'emr-hrnet' ({sys.executable})"
        )
        return Check("WARN", "jupyter kernel", f"python3 runs {python}, not this environment's Python: {fix}")
    return Check("OK", "jupyter kernel", f"python3 ({specs['python3']})")


def check_device() -> Check:
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return Check("OK", "device", f"CUDA {props.name}, {props.total_memory / 2**30:.0f} GiB")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return Check("OK", "device", "Apple MPS")
    return Check("OK", "device", f"CPU, {torch.get_num_threads()} threads (the workshop profile is made for this)")


def check_data() -> Check:
    data = resolve_data(None)
    if data == "synthetic":
        return Check(
            "WARN", "data", "only the synthetic default; for the real Bijie data see data/README.md (data/bijie)"
        )
    try:
        dataset = open_dataset(data, include_non_landslide=False)
        for i in range(min(3, len(dataset))):
            dataset.read(i)
    except DataError as err:
        return Check("FIX", "data", f"{data} does not read: {err}")
    scene = resolve_scene(None)
    scene_note = f"; UAV scene {scene}" if scene else "; no UAV scene (notebooks 01 and 08 use a synthetic one)"
    listed = project_root() / TABLES_COPY
    if dataset_kind(data) == "bijie" and listed.is_file():  # is it the copy the committed tables were made on?
        result = compare_checksums(data, listed)
        if result["same"] != result["listed"] or result["extra"]:
            return Check(
                "WARN",
                "data",
                f"{len(dataset)} landslide images in {data}, but {result['same']} of the {result['listed']} files of "
                f"the tables' copy are identical: numbers will differ from the committed tables and pre-run runs are "
                f"not reused (python -m emr_lib data compare {data} lists the files){scene_note}",
            )
        scene_note = f"; the very copy the tables were made on{scene_note}"
    return Check("OK", "data", f"{len(dataset)} landslide images in {data}{scene_note}")


def check_disk(minimum_gb: float = 5.0) -> Check:
    free = shutil.disk_usage(project_root()).free / 2**30
    if free < 1:
        return Check("FIX", "disk", f"{free:.1f} GiB free; runs need a few GiB: free some space")
    if free < minimum_gb:
        return Check("WARN", "disk", f"{free:.1f} GiB free; the workshop's runs take about 1 GiB, a full day more")
    return Check("OK", "disk", f"{free:.0f} GiB free")


def check_speed(steps: int = 3) -> Check:
    """Minutes of one workshop EMR-HRNet run here, from a few timed training steps (steps only, x1.3 for the rest)."""
    config = get_config("workshop")
    model = build_model("emr_hrnet", **config.model_options)
    result = benchmark_steps({"emr_hrnet": model}, batch_size=config.batch_size, size=config.size, repeats=steps)
    step_s = result["emr_hrnet"]["train_step_s"]
    minutes = 1.3 * step_s * math.ceil(462 / config.batch_size) * config.epochs / 60
    status = "OK" if minutes < 45 else "WARN"
    note = "" if status == "OK" else "; hand learners the finished runs (instructor guide) or use the quick profile"
    return Check(status, "speed", f"{step_s:.2f} s a training step: about {minutes:.0f} min per workshop model{note}")


CHECKS: list[Callable[[], Check]] = [
    check_python,
    check_packages,
    check_notebook_packages,
    check_mapping_packages,
    check_kernel,
    check_device,
    check_data,
    check_disk,
    check_speed,
]


def run_doctor(timing: bool = True, checks: list[Callable[[], Check]] | None = None) -> list[Check]:
    """Run the checks (without the timed steps when ``timing`` is False), print a line each, return them."""
    results = []
    for check in checks or CHECKS:
        if check is check_speed and not timing:
            continue
        try:
            result = check()
        except Exception as err:  # a check that breaks is itself something to fix
            result = Check("FIX", check.__name__.removeprefix("check_"), f"{type(err).__name__}: {err}")
        print(result.line(), flush=True)
        results.append(result)
    return results
