"""Optional pretrained weights: downloaded on request, or read from a local file.

Every model builds offline with random weights by default. ``pretrained=True`` asks
timm / segmentation-models-pytorch to download ImageNet weights, which needs a
network; ``pretrained="path/to/file"`` (``.pth``, ``.pt``, ``.bin`` or
``.safetensors``) loads a file you downloaded yourself.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

log = logging.getLogger(__name__)


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights could not be downloaded or loaded."""


def pretrained_download_error(what: str, err: Exception, repository: str | None = None) -> PretrainedWeightsError:
    """The error for weights that could not be downloaded; it names the file to fetch and where to put it."""
    local = f"weights/{what.split()[0]}.safetensors"
    fetch = (
        f"On a machine with internet access, fetch the weights file of https://huggingface.co/{repository} "
        f"(model.safetensors, or pytorch_model.bin: then name it .bin), put it in this project as {local}, and "
        f"pass pretrained='{local}' (command line: --set pretrained={local}); any path works, as in "
        "build_model(..., pretrained='/path/to/weights.pth')."
        if repository
        else "On a machine with internet access, download the weights file and pass its path: "
        "build_model(..., pretrained='/path/to/weights.pth')."
    )
    return PretrainedWeightsError(
        f"could not download pretrained weights for {what} ({type(err).__name__}: {err}); this machine may have "
        f"no network access. {fetch} Or train from scratch with pretrained=False, the default."
    )


def check_hub(repository: str | None, what: str, timeout: float = 3.0) -> None:
    """Fail at once, naming the file to fetch, when ``repository`` is neither cached nor reachable.

    Without this the hub client retries with growing pauses for most of a minute before it gives up.
    """
    if repository is None:
        return
    from huggingface_hub import constants, try_to_load_from_cache  # comes with timm

    if any(isinstance(try_to_load_from_cache(repository, f), str) for f in ("model.safetensors", "pytorch_model.bin")):
        return  # downloaded before: the hub client reads its cache
    if constants.HF_HUB_OFFLINE:
        raise pretrained_download_error(what, OSError("HF_HUB_OFFLINE is set"), repository)
    try:
        socket.create_connection((urlparse(constants.ENDPOINT).hostname, 443), timeout=timeout).close()
    except OSError as err:
        raise pretrained_download_error(what, err, repository) from err


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (tensors only, weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsError(
            f"pretrained weights file not found: {path}. Pass the path of a downloaded "
            ".pth/.safetensors file, or pretrained=False to train from scratch."
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise PretrainedWeightsError(f"cannot read weights file {path}: {type(err).__name__}: {err}") from err
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise PretrainedWeightsError(f"{path} does not hold a state dict (found {type(state).__name__})")
    return state


def load_local_weights(module: nn.Module, path: str | Path, what: str = "model") -> int:
    """Load the tensors of ``path`` whose names and shapes match ``module``; return how many.

    Keys may carry a ``backbone.``/``encoder.``/``module.`` prefix. Raises if nothing
    matches, so a wrong file never passes silently.
    """
    state = read_state_dict(path)
    own = module.state_dict()
    matched = {}
    for key, tensor in state.items():
        for prefix in ("", "module.", "backbone.", "encoder.", "model."):
            name = key[len(prefix) :] if key.startswith(prefix) else None
            if name in own and own[name].shape == tensor.shape:
                matched[name] = tensor
                break
    if not matched:
        raise PretrainedWeightsError(f"{path} holds no tensor that fits the {what} (names or shapes differ)")
    module.load_state_dict(matched, strict=False)
    log.info("loaded %d of %d tensors of the %s from %s", len(matched), len(own), what, path)
    return len(matched)
