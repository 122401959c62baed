"""The paper's published numbers (Jin, Liu, Huang, Sensors 2024), for side-by-side tables.

Percentages as printed. Table 2: Bijie; Table 3: Sichuan and surrounding area (UAV);
Table 4: ablation on Bijie + Sichuan (4:1 split, mIoU); Table 5: attention blocks in
HRNet; Table 7: efficiency (thop FLOPs at num_classes=21; HRNet and EMR-HRNet at 480 px,
the others at 512: EMR-HRNet's 82.15 G fits 480 px).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "COLUMNS",
    "TABLE2",
    "TABLE3",
    "TABLE4",
    "TABLE5",
    "TABLE7",
    "PaperTable",
    "comparison_table",
    "side_by_side",
]

COLUMNS = ("mIoU", "precision", "recall", "accuracy", "F1")


def _rows(table: dict[str, tuple]) -> dict[str, dict[str, float]]:
    return {name: dict(zip(COLUMNS, values)) for name, values in table.items()}


# kit model name -> (mIoU, precision, recall, accuracy, F1)
TABLE2 = _rows(
    {
        "deeplabv3": (79.80, 85.20, 92.21, 93.27, 88.57),
        "pspnet": (80.20, 87.57, 89.30, 94.28, 88.43),
        "segformer": (75.75, 86.28, 84.19, 93.06, 85.22),
        "unet_vgg": (77.03, 87.90, 84.55, 93.59, 86.19),
        "hrnet": (80.24, 87.98, 88.88, 94.35, 88.43),
        "se_unet": (81.52, 87.38, 91.60, 94.55, 89.44),
        "emr_hrnet": (81.70, 87.91, 91.15, 94.68, 89.50),
    }
)
TABLE3 = _rows(
    {
        "deeplabv3": (57.35, 70.31, 77.57, 77.13, 73.76),
        "pspnet": (59.02, 71.61, 73.49, 80.72, 72.54),
        "segformer": (58.84, 71.18, 74.37, 80.08, 72.74),
        "unet_vgg": (58.40, 73.41, 69.90, 82.18, 71.61),
        "hrnet": (59.38, 72.39, 72.83, 81.48, 72.61),
        "se_unet": (63.17, 74.83, 77.86, 82.99, 76.31),
        "emr_hrnet": (71.68, 81.12, 85.03, 87.71, 83.03),
    }
)

# ablation name -> (settings, mIoU)
TABLE4 = {
    "baseline": ({"dema": False, "rma": False}, 60.99),
    "+DEMA": ({"dema": True, "rma": False}, 63.51),
    "+RMA": ({"dema": False, "rma": True}, 62.35),
    "+DEMA+RMA": ({"dema": True, "rma": True}, 66.36),
    "+DEMA+CenterRep": ({"dema": True, "rma": False, "centerrep": True}, 70.17),
    "+DEMA+RMA+CenterRep": ({"dema": True, "rma": True, "centerrep": True}, 72.53),
}
TABLE5 = _rows(
    {
        "gam": (60.71, 72.92, 74.96, 82.16, 73.93),
        "parnet": (61.46, 74.29, 74.32, 83.24, 74.30),
        "cbam": (62.52, 74.77, 75.92, 83.53, 75.34),
        "dema": (63.51, 75.05, 77.89, 83.63, 76.44),
    }
)
TABLE7 = {
    "deeplabv3": {"params_M": 5.82, "GFLOPs": 53.03, "mIoU": 57.35},
    "pspnet": {"params_M": 2.38, "GFLOPs": 6.03, "mIoU": 59.02},
    "segformer": {"params_M": 3.72, "GFLOPs": 13.67, "mIoU": 58.84},
    "unet_vgg": {"params_M": 24.89, "GFLOPs": 452.31, "mIoU": 58.40},
    "hrnet": {"params_M": 29.55, "GFLOPs": 80.18, "mIoU": 59.38},
    "emr_hrnet": {"params_M": 31.21, "GFLOPs": 82.15, "mIoU": 71.68},
}


class PaperTable(NamedTuple):
    """The paper's model comparison for one dataset (Table 2 or 3)."""

    number: int | None  # None: the paper compares no models on this dataset
    dataset: str
    rows: dict[str, dict[str, float]]

    @property
    def caption(self) -> str:
        if self.number is None:
            return f"the paper compares no models on {self.dataset}"
        return f"beside the paper's Table {self.number} ({self.dataset})"


def comparison_table(dataset: str | None) -> PaperTable:
    """The paper's comparison for results on ``dataset`` (a name from ``emr_lib.data.dataset_kind``).

    Sichuan gets Table 3 and Luding nothing (the paper only shows its maps, Fig. 12);
    Bijie, the synthetic default and unnamed data (None) get Table 2 (Bijie) as the reference.
    """
    if dataset == "sichuan":
        return PaperTable(3, "Sichuan", TABLE3)
    if dataset == "luding":
        return PaperTable(None, "Luding", {})
    return PaperTable(2, "Bijie", TABLE2)


def side_by_side(records: dict[str, dict], paper: dict[str, dict[str, float]] | None = None) -> list[dict]:
    """Rows of our test metrics (percent) next to the paper's, one per run record."""
    rows = []
    for name, record in records.items():
        metrics = record["test_metrics"]
        row = {"model": name, **{k: 100 * metrics[k] for k in COLUMNS}}
        if paper is not None and name in paper:
            row.update({f"paper_{k}": v for k, v in paper[name].items()})
        row.update(
            {
                "epochs": record["epochs_run"],
                "params_M": record["parameters"] / 1e6,
                "train_min": record["wall_time_s"] / 60,
                "seed": record.get("seed"),  # provenance of the row's run (the CSV keeps it, see figures.py)
                "commit": record.get("commit"),
                "device": record.get("device"),  # the machine it trained on
            }
        )
        rows.append(row)
    return rows
