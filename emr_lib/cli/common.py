"""What every command module shares: the user-error type and the data help text."""

from __future__ import annotations

DATA_HELP = (
    "dataset folder (Bijie layout or images/ + masks/) or 'synthetic'; default: $EMR_DATA, else data/bijie "
    "if present, else the synthetic default"
)


class CLIError(Exception):
    """A user error: printed as one clear message, exit status 2, no traceback."""
