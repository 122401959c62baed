"""What every command module shares: the user-error type and the data help text."""

from __future__ import annotations

MULTI_DATA_HELP = "; repeat --data (or give A,B) to train on several datasets as one, each split alike"


def data_option(values: list[str] | None) -> str | None:
    """``--data`` given several times (or as ``A,B``): one comma-separated value, as the settings store it."""
    return ",".join(values) if values else None


DATA_HELP = (
    "dataset folder (Bijie layout or images/ + masks/) or 'synthetic'; default: $EMR_DATA, else data/bijie "
    "if present, else the synthetic default"
)


class CLIError(Exception):
    """A user error: printed as one clear message, exit status 2, no traceback."""
