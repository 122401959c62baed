"""What every command module shares: the parser with defaults in its help, the user-error type and
the data help text."""

from __future__ import annotations

import argparse

MULTI_DATA_HELP = "; repeat --data (or give A,B) to train on several datasets as one, each split alike"


def data_option(values: list[str] | None) -> str | None:
    """``--data`` given several times (or as ``A,B``): one comma-separated value, as the settings store it."""
    return ",".join(values) if values else None


DATA_HELP = (
    "dataset folder (Bijie layout or images/ + masks/) or 'synthetic'; default: $EMR_DATA, else data/bijie "
    "if present, else the synthetic default"
)


PROFILE_HELP = "training profile: quick (CI smoke run), workshop (a CPU laptop), paper (the paper's recipe, GPUs)"
DEVICE_HELP = "auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:1 or mps"


class CLIError(Exception):
    """A user error: printed as one clear message, exit status 2, no traceback."""


class HelpFormatter(argparse.HelpFormatter):
    """Help that shows every option's default (unless its help already says it, or it has none)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, [], argparse.SUPPRESS)
        if action.option_strings and shown and "default" not in text:
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """Every command's parser: its help shows the defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def in_range(kind, low=None, high=None, low_open: bool = False, high_open: bool = False):
    """An argparse ``type`` that reads ``kind`` and refuses values outside [low, high] (or open ends)
    with one line naming the range."""

    def parse(text: str):
        value = kind(text)
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            left = "(" if low_open else "["
            right = ")" if high_open else "]"
            span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
            raise argparse.ArgumentTypeError(f"{value} is outside {span}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def add_required(parser: argparse.ArgumentParser, name: str, help: str) -> None:
    """A required value as a positional; ``--NAME``, its earlier spelling, is still read."""
    parser.add_argument(name, nargs="?", help=help)
    parser.add_argument(f"--{name}", dest=f"{name}_option", help=argparse.SUPPRESS)


def take_required(args: argparse.Namespace, name: str) -> str:
    """The value of a required positional added by :func:`add_required` (or of its ``--NAME``)."""
    value, option = getattr(args, name), getattr(args, f"{name}_option")
    if value and option and value != option:
        raise CLIError(f"{name.upper()} is given twice ({value} and --{name} {option}): give it once")
    if not (value or option):
        raise CLIError(f"{name.upper()} is missing: see --help")
    setattr(args, name, value or option)
    return value or option


def read_scene_pair(image: str, mask: str):
    """A scene and its mask as arrays: GeoTIFFs through GDAL (any compression), else PNG/JPEG."""
    from pathlib import Path

    if Path(image).suffix.lower() in (".tif", ".tiff"):
        from ..mapping.geo import read_raster

        return read_raster(image), read_raster(mask)
    from ..data.io import read_image, read_mask

    return read_image(image), read_mask(mask)
