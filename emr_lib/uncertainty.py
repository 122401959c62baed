"""How far to trust a number: spread over seeds."""

from __future__ import annotations

import statistics

__all__ = ["seed_summary"]


def seed_summary(records: dict[str, dict[int, dict]], key: str = "mIoU", label: str = "configuration") -> list[dict]:
    """Mean, standard deviation and range (percent) of test ``key`` over seeds, one row per entry.

    ``records`` maps a row label to its records by seed (:func:`emr_lib.runs.seed_records`).
    """
    rows = []
    for row, by_seed in records.items():
        values = [100 * record["test_metrics"][key] for record in by_seed.values()]
        rows.append(
            {
                label: row,
                "seeds": ", ".join(map(str, by_seed)),
                f"{key}_mean": statistics.fmean(values),
                f"{key}_sd": statistics.stdev(values) if len(values) > 1 else float("nan"),
                f"{key}_min": min(values),
                f"{key}_max": max(values),
            }
        )
    return rows
