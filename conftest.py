"""Settings for the notebook checks (nbval): quick profile, synthetic data, headless, build/ folders.

The kernels nbval starts inherit this environment. Outputs marked ``# NBVAL_CHECK_OUTPUT`` are
compared with the stored ones (after tests/nbval_sanitize.cfg); stderr is never compared.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ.update(
    {
        "EMR_PROFILE": "quick",
        "EMR_DATA": "synthetic",
        "EMR_HEADLESS": "1",
        # the pipeline's runs folder: runs it already trained with the same settings are reused
        "EMR_OUTPUT": str(ROOT / "runs" / "notebooks"),
        "EMR_FIGURES": str(ROOT / "build" / "nbval" / "figures"),
    }
)


def pytest_collection_modifyitems(items):
    for item in items:
        parent = getattr(item, "parent", None)
        if parent is not None and hasattr(parent, "skip_compare") and "stderr" not in parent.skip_compare:
            parent.skip_compare = (*parent.skip_compare, "stderr")
