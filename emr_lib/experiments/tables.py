"""The runs behind the paper's tables, declared as data beside the paper's numbers.

Notebooks 04-06 and ``python -m emr_lib table N`` build Tables 2, 4 and 5 from the same
declarations, so a table rebuilt from the command line reuses the notebooks' runs (same
run names, same settings) and the other way round.

- **Table 2** (model comparison on Bijie): one run per model, named after the model, on the
  profile's 6:2:2 split.
- **Table 3** (the same models on Sichuan's scenes): runs named ``sichuan_<model>``, each seed
  testing its own fifth of the scenes (``split_folds`` = 5: 3:1:1 as 6:2:2), so five seeds test
  every scene once and the bootstraps resample scenes, not their tiles.
- **Table 4** (ablation): EMR-HRNet with DEMA, RMA and online CenterRep switched on and off,
  on the paper's 4:1 split.
- **Table 5** (attention blocks): HRNet with the block in its branches swapped (RMA off),
  on the same split; its DEMA row is Table 4's +DEMA run.

The paper's 4:1 split has no third part, so the 20 % part (``val``) is the reported test set
and its learning curve is drawn, but it never picks an epoch: these tables report each run's
last epoch (``test_selection`` in ``record.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..data import dataset_kind, scene_of
from ..data.expansion import PAPER_EXPANSION, source_of
from ..evaluation.uncertainty import bootstrap_interval, by_unit, paired_differences
from ..models import list_models
from .paper import TABLE3, TABLE4, TABLE5, comparison_table, side_by_side

__all__ = [
    "ABLATION_SPLIT",
    "TABLE3_FOLDS",
    "TABLE3_DESIGN",
    "RunSpec",
    "TABLES",
    "table_runs",
    "data_prefix",
    "data_suffix",
    "PAPER_COMBINATION",
    "combination_prefix",
    "combination_suffix",
    "run_table",
    "table_rows",
    "resampled_units",
    "table4_run_name",
    "table4_row_of",
    "paper_effects",
    "SPLIT_TIMINGS",
    "split_study_runs",
    "split_study_differences",
]

# the paper's 4:1 split for Tables 4 and 5: training and one held-out part
ABLATION_SPLIT = {"train": 0.8, "val": 0.2}
# Table 3: Sichuan's 36 scenes in five folds of 7-8; seed s tests fold s (every scene once over 5 seeds)
TABLE3_FOLDS = 5
# why Table 3's seeds test folds of scenes, as the ledger says where its results are
TABLE3_DESIGN = [
    "Design: Sichuan's 36 scenes are cut into five folds of 7-8 scenes (`split_folds=5`); the run of seed *s* "
    "tests fold *s*, validates on the next and trains on the other three (3:1:1, the paper's 6:2:2). A plain "
    "6:2:2 split of 36 scenes tests only 7, so five seeds of it would test the same 7 five times; the folds test "
    "every scene once at the same cost. A scene's tiles stay together, and the intervals resample seeds, then "
    "the scenes of each seed's own fold (tiles of one scene are not independent).",
    "",
]


@dataclass(frozen=True)
class RunSpec:
    """One training run of a table: its run folder name, model and settings."""

    name: str
    model: str = "emr_hrnet"
    options: dict[str, Any] = field(default_factory=dict)  # merged into the profile's model options
    overrides: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields


def table4_run_name(row: str) -> str:
    return "ablation_" + row.strip("+").replace("+", "_").lower()


def _table2() -> dict[str, RunSpec]:
    return {name: RunSpec(name, model=name) for name in list_models()}


def _table3() -> dict[str, RunSpec]:
    overrides = {"split_folds": TABLE3_FOLDS}
    return {name: RunSpec(f"sichuan_{name}", model=name, overrides=overrides) for name in list_models()}


def _table4() -> dict[str, RunSpec]:
    specs = {}
    for row in TABLE4:
        settings, _ = TABLE4[row]
        overrides = {"centerrep": 0.5 if settings.get("centerrep") else 0.0, "split_ratios": ABLATION_SPLIT}
        specs[row] = RunSpec(
            table4_run_name(row), options={"dema": settings["dema"], "rma": settings["rma"]}, overrides=overrides
        )
    return specs


def _table5() -> dict[str, RunSpec]:
    specs = {}
    for block in TABLE5:
        if block == "dema":  # the same configuration as Table 4's +DEMA row: one run serves both
            specs[block] = _table4()["+DEMA"]
        else:
            options = {"block": block, "rma": False}
            overrides = {"centerrep": 0.0, "split_ratios": ABLATION_SPLIT}  # as its DEMA row: no CenterRep
            specs[block] = RunSpec(f"ablation_block_{block}", options=options, overrides=overrides)
    return specs


TABLES: dict[int, Callable[[], dict[str, RunSpec]]] = {2: _table2, 3: _table3, 4: _table4, 5: _table5}


# the paper's data combination for Tables 4-5 (its ablation trains on Bijie and Sichuan together, split 4:1)
PAPER_COMBINATION = ("bijie", "sichuan")


def combination_prefix(names: tuple[str, ...] | list[str]) -> str:
    """How a table's run names start for the datasets ``names`` trained as one: nothing for one dataset,
    ``bijie+sichuan_`` for :data:`PAPER_COMBINATION`, so the ablation on Bijie + Sichuan never takes the run
    folders of the ablation on Bijie alone."""
    return "+".join(names) + "_" if len(names) > 1 else ""


def combination_suffix(names: tuple[str, ...] | list[str]) -> str:
    """What a saved table's name ends with for the datasets ``names``: nothing for one, ``_bijie_sichuan`` for
    :data:`PAPER_COMBINATION`, so the combined ablation's tables sit beside Bijie's instead of over them."""
    return "_" + "_".join(names) if len(names) > 1 else ""


def _data_names(data: str | None) -> list[str]:
    """The dataset names of ``data`` (folders, comma-separated): what each folder holds, else its own name."""
    parts = [part.strip() for part in (data or "").split(",") if part.strip()]
    return [part if part == "synthetic" else dataset_kind(part) or Path(part).name for part in parts]


def data_prefix(data: str | None) -> str:
    """:func:`combination_prefix` of the datasets in ``data`` (``bijie+sichuan_ablation_baseline``)."""
    return combination_prefix(_data_names(data))


def data_suffix(data: str | None) -> str:
    """:func:`combination_suffix` of the datasets in ``data``."""
    return combination_suffix(_data_names(data))


def table_runs(number: int, rows: list[str] | None = None, data: str | None = None) -> dict[str, RunSpec]:
    """The runs of Table ``number`` (2, 3, 4 or 5), by row label; ``rows`` picks some of them, in that order.

    ``data`` (the data the runs train on) names them: see :func:`data_prefix`.
    """
    if number not in TABLES:
        raise ValueError(f"the kit rebuilds Tables {sorted(TABLES)}, not Table {number}")
    prefix = data_prefix(data)
    specs = {row: replace(spec, name=prefix + spec.name) for row, spec in TABLES[number]().items()}
    unknown = [row for row in rows or [] if row not in specs]
    if unknown:
        raise ValueError(f"Table {number} has no row(s) {unknown}; its rows are {list(specs)}")
    return {row: specs[row] for row in rows} if rows else specs


# What "6524 images split 4:1" may mean (the count after the expansion): Table 4's baseline and full model on
# data expanded by the paper's factor, the split drawn before the expansion (the kit's rule: the training part
# expanded, `offline_expansion`) and after it (`split_after_expansion`: copies of one image on both sides). The
# expansion makes an epoch about 7.4 times longer, so these runs train SPLIT_STUDY_EPOCHS epochs: about the
# steps of a 40-epoch row. Copies carry the row's augmentation (CenterRep in the full model's), none online.
SPLIT_TIMINGS = {"split first": ("offline_expansion", "expanded"), "expanded first": ("split_after_expansion", "leaky")}
SPLIT_STUDY_EPOCHS = 6


TIMING_SEPARATOR = ", "  # a split study's row label: "<Table 4 row>, <timing>"


def table4_row_of(label: str) -> str:
    """The Table 4 row of a row label: itself, or a split study's (``baseline, split first`` -> ``baseline``)."""
    return label.split(TIMING_SEPARATOR)[0]


def split_study_runs(data: str | None = None) -> dict[str, RunSpec]:
    """The runs of the split study: ``"<Table 4 row>, <timing>"`` for the baseline and the full model."""
    specs = {}
    for timing, (setting, tag) in SPLIT_TIMINGS.items():
        for row, spec in table_runs(4, ["baseline", "+DEMA+RMA+CenterRep"], data).items():
            overrides = {**spec.overrides, setting: PAPER_EXPANSION, "augment": False, "epochs": SPLIT_STUDY_EPOCHS}
            label = f"{row}{TIMING_SEPARATOR}{timing}"
            specs[label] = RunSpec(f"{spec.name}_{tag}", spec.model, spec.options, overrides)
    return specs


def split_study_differences(records_by_seed: dict[int, dict[str, dict]], resamples: int = 10_000) -> list[dict]:
    """The full model minus the baseline under each split timing (each timing has its own test images, so
    the rows pair within a timing only), per seed and pooled, beside the paper's +11.54.

    The intervals resample :func:`~emr_lib.data.source_of` units: the split drawn after the expansion tests
    copies of one image side by side, and they are not independent evidence."""
    rows = []
    for timing in SPLIT_TIMINGS:
        full, base = f"+DEMA+RMA+CenterRep, {timing}", f"baseline, {timing}"
        within = {seed: {full: r[full], base: r[base]} for seed, r in records_by_seed.items() if {full, base} <= set(r)}
        paper = {full: paper_effects(4, "baseline")["+DEMA+RMA+CenterRep"]}
        rows += [
            {**row, "timing": timing} for row in paired_differences(within, base, resamples, paper, unit_of=source_of)
        ]
    return rows


def run_table(run: Callable[..., dict], specs: dict[str, RunSpec]) -> dict[str, dict]:
    """Run (or reuse) every spec with ``run(name, model=..., options=..., **overrides)``, e.g.
    a notebook's ``ctx.run``; return the records by row label."""
    return {
        row: run(spec.name, model=spec.model, options=spec.options, **spec.overrides) for row, spec in specs.items()
    }


def table_rows(number: int, records: dict[str, dict], dataset: str | None = None) -> list[dict]:
    """Table ``number``'s rows: this kit's test metrics (percent) beside the paper's.

    ``dataset`` (:func:`emr_lib.data.dataset_kind`) picks Table 3 for Sichuan in place of Table 2.
    Rows whose run kept its per-image test results get ``mIoU_low`` and ``mIoU_high``: the 95 %
    bootstrap interval of the mIoU over the test images (:func:`emr_lib.evaluation.uncertainty.bootstrap_interval`),
    or over the test scenes where the runs tested tiles (:func:`resampled_units`).
    """
    if number == 2:
        rows = side_by_side(records, comparison_table(dataset).rows)
    elif number == 3:
        rows = side_by_side(records, TABLE3)
    elif number == 5:
        rows = side_by_side(records, TABLE5)
    else:
        rows = _table4_rows(records)
    unit_of = scene_of if resampled_units(records) == "scenes" else None
    for row, record in zip(rows, records.values()):
        if "test_per_image" in record:
            tested = by_unit(record["test_per_image"], unit_of)
            row["mIoU_low"], row["mIoU_high"] = bootstrap_interval(tested)
    return rows


def resampled_units(records: dict[str, dict]) -> str:
    """What the intervals of a table's rows resample: "scenes" where its runs tested tiles of scenes (Sichuan, alone
    or beside Bijie, whose images count as a scene each), whose tiles move together; else "images"."""
    names = [name for record in records.values() for name in record.get("test_per_image", {})]
    return "scenes" if any(scene_of(name) != name for name in names) else "images"


def paper_mIoU(number: int, dataset: str | None = None) -> dict[str, float]:
    """The paper's test mIoU (%) of Table ``number``'s rows (Table 3 for Sichuan data in place of 2)."""
    if number == 2:
        return {row: values["mIoU"] for row, values in comparison_table(dataset).rows.items()}
    if number == 3:
        return {row: values["mIoU"] for row, values in TABLE3.items()}
    if number == 5:
        return {row: values["mIoU"] for row, values in TABLE5.items()}
    return {row: miou for row, (_, miou) in TABLE4.items()}


def paper_effects(number: int, reference: str, dataset: str | None = None) -> dict[str, float]:
    """The paper's own difference of each row of Table ``number`` to ``reference``, in points of mIoU
    (Table 2: EMR-HRNet - HRNet = +1.46; Table 4: the full model - the baseline = +11.54)."""
    paper = paper_mIoU(number, dataset)
    if reference not in paper:
        return {}
    return {row: miou - paper[reference] for row, miou in paper.items() if row != reference}


def _table4_rows(records: dict[str, dict]) -> list[dict]:
    return [
        {
            "configuration": row,
            "mIoU": 100 * record["test_metrics"]["mIoU"],
            "paper_mIoU": TABLE4[table4_row_of(row)][1],
            "F1": 100 * record["test_metrics"]["F1"],
            "params_M": record["parameters"] / 1e6,
            "seed": record.get("seed"),
            "commit": record.get("commit"),
            "device": record.get("device"),  # the machine it trained on
        }
        for row, record in records.items()
    ]
