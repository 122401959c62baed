"""``python -m emr_lib ledger``: REPRODUCTION.md, the ledger of what is and is not reproduced.

Every table and figure of the paper with what the kit does for it, the command, where the
result is and a status; then the kit's deviations from the paper and its reference code.
Numbers are not typed: they are read from :mod:`emr_lib.experiments.paper` and from the tables the
pipeline committed in ``figures/workshop/`` (whose footers name the commit that made them),
so the ledger changes when they do. The pipeline rewrites it after a committed profile runs;
``python -m emr_lib ledger --check`` (and the tests) say when it is stale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..evaluation.uncertainty import direction, format_interval
from ..experiments.causes import difference_causes, input_cost
from ..experiments.claims import (
    COMBINED,
    COMBINED_LABEL,
    PAPER_PLACEMENT_SINCE,
    SEED_CLAIMS,
    STATUSES,
    claim_statuses,
    footer_of,
    interval_units,
    placement_of,
    read_result,
)
from ..experiments.paper import COLUMNS, TABLE2, TABLE3, TABLE4, TABLE5, TABLE7
from ..experiments.tables import TABLE3_DESIGN
from ..experiments.transfer import FINETUNE_RECIPE, full_recipe
from ..paths import project_root
from .times import rendered_times

__all__ = ["PAPER_ITEMS", "render_ledger", "render_readme_results", "stale_files", "write_ledger"]


@dataclass(frozen=True)
class Item:
    paper: str
    kit: str
    command: str
    result: str
    status: str


PAPER_ITEMS = [
    Item("Table 1: the two datasets", "data/README.md: both datasets' sources and layouts; notebook 01 measures "
         "both", "`pipeline --only 01`", "`01_datasets.md`, `01_statistics.md`", "{table1}"),
    Item("Table 2: models on Bijie", "notebook 05, workshop profile (W18-small, 160 px, 40 epochs, CPU)",
         "`pipeline --only 05` or `table 2`", "`05_table2.md`, `table2_seeds.md`", "{table2}"),
    Item("Table 3: models on Sichuan", "notebook 05 on Sichuan's 36 scenes (`data prepare sichuan --size 480 "
         "--tile 160`), each seed testing its own fifth of the scenes", "`table 3 --data data/sichuan`",
         "`05_table3.md`, `table3_seeds.md`", "{table3}"),
    Item("Table 4: ablation", "notebook 06 on Bijie + Sichuan as the paper (`--data A --data B`; its 6524 images "
         "are the expanded count) and on Bijie alone", "`pipeline --only 06 --param tables=4` or `table 4`",
         "`06_table4_bijie_sichuan.md`, `table4_bijie_sichuan_seeds.md`, `06_table4.md`, `table4_seeds.md`",
         "{table4}"),
    Item("Table 5: attention blocks", "notebook 06, the block in HRNet's branches swapped",
         "`pipeline --only 06 --param tables=5` or `table 5`", "`table5_bijie_sichuan_seeds.md`, `06_table5.md`",
         "{table5}"),
    Item("Table 6: other improved models", "none: literature values of models without public code", "-", "-",
         "cannot run here: no code of TransUNet, ShapeFormer, Re-Net variants"),
    Item("Table 7: parameters and FLOPs", "notebook 07 and `efficiency`, in the paper's convention and PyTorch's",
         "`efficiency`", "`07_table7.md`, `07_placements.md`", "{table7}"),
    Item("Figure 1: flowchart", "docs/architecture.md (how a dataset becomes a table)", "-", "-",
         "implemented, not measured (as a diagram of the kit's own flow)"),
    Item("Figure 2: sample images", "notebook 01 sample grids", "`pipeline --only 01`",
         "`01_samples.png`, `01_sichuan_samples.png`", "shown, not assessed: Bijie's images and Sichuan's scenes"),
    Item("Figure 3: CenterRep examples", "notebook 02, our reading of CenterRep", "`pipeline --only 02`",
         "`02_centerrep_examples.png`", "implemented, not measured (as read; the paper leaves the patch shape open)"),
    Item("Figure 4: EMR-HRNet", "emr_lib/models/hrnet.py", "-", "-",
         "implemented, not measured (wiring choices below; parameters and FLOPs: Table 7)"),
    Item("Figure 5: RAD block", "emr_lib/models/blocks.py `RAD`", "-", "-", "implemented, not measured"),
    Item("Figure 6: RefConv", "`RefConv` and `deploy()`", "-", "-",
         "implemented, not measured (deployed and train-time outputs agree, a test checks it)"),
    Item("Figure 7: MDTA", "`MDTA`", "-", "-", "implemented, not measured"),
    Item("Figure 8: DEMA block", "`DEMA`, in every basic block of stages 2-4", "-", "-",
         "implemented, not measured (placement read from section 3.3, below)"),
    Item("Figure 9: EMA", "`EMA`", "-", "-", "implemented, not measured"),
    Item("Figure 10: Bijie predictions", "notebook 05, every model on the same test images", "`pipeline --only 05`",
         "`05_predictions.png`",
         "shown, not assessed: the same test images for every model; the paper's remarks on edges and "
         "salt-and-pepper noise are not measured, and no metric compares the pictures"),
    Item("Figure 11: Sichuan predictions", "notebook 05 on the prepared Sichuan scenes, every model on the same "
         "test tiles", "`pipeline --only 05 --data data/sichuan`", "`05_predictions_sichuan.png`",
         "shown, not assessed: the same test tiles for every model; no metric compares the pictures"),
    Item("Figure 12: Luding County maps", "notebooks 08 and 09 map a whole scene, but here another one (uav-road); "
         "`map` writes GeoTIFFs and polygons for any scene", "`pipeline --only 08,09 --scene DIR`, `map SCENE`",
         "`08_scene_prediction.png`, `09_finetuned_map.png`",
         "cannot run here: Luding is not in the data folder beside the checkout; the figures show another UAV scene"),
    Item("The paper profile itself (W32, 512 px, 100 epochs, expansion)", "`--profile paper`; the GPU study",
         "`pipeline --profile paper`, `study gpu`", "-", "cannot run here: no GPU has been available yet"),
]  # fmt: skip


def _numbers(root: Path) -> list[str]:
    """Each table's rows as a gap to a reference row, in the paper and here: the levels were measured
    under other conditions (512 px, 100 epochs, GPU; Tables 4-5 on Bijie + Sichuan), the gaps are the claims."""
    lines = ["## The numbers, beside the paper's", ""]
    blocks = [
        ("Table 2", "05_table2", "model", "hrnet", {k: v["mIoU"] for k, v in TABLE2.items()}),
        ("Table 3", "05_table3", "model", "hrnet", {k: v["mIoU"] for k, v in TABLE3.items()}),
        ("Table 4", "06_table4", "configuration", "baseline", {k: v[1] for k, v in TABLE4.items()}),
        ("Table 5", "06_table5", "model", "dema", {k: v["mIoU"] for k, v in TABLE5.items()}),
    ]
    for title, name, label, reference, paper in blocks:
        rows = {row[label]: float(row["mIoU"]) for row in read_result(root, f"{name}.csv")}
        if not rows:
            continue
        footer = footer_of(root, name + ".md")
        lines += [
            f"**{title}**, test mIoU (%), from `figures/workshop/{name}.csv` ({footer}; {placement_of(root, footer)}):",
            "",
        ]
        lines += [f"| row | paper | paper - {reference} | kit | kit - {reference} |", "|---|---|---|---|---|"]
        for row, kit in rows.items():
            ref = paper.get(row)
            paper_gap = f"{ref - paper[reference]:+.2f}" if ref is not None and reference in paper else ""
            kit_gap = f"{kit - rows[reference]:+.2f}" if reference in rows else ""
            lines.append(f"| {row} | {'' if ref is None else f'{ref:.2f}'} | {paper_gap} | {kit:.2f} | {kit_gap} |")
        lines.append("")
    return lines


def _table3_columns(root: Path) -> list[str]:
    """Table 3's other columns (precision, recall, accuracy, F1: the paper's macro averages) beside the paper's."""
    rows = read_result(root, "05_table3.csv")
    if not rows:
        return []
    lines = [
        "**Table 3, every column** (%, kit / paper; precision and recall are macro averages over the two classes, "
        "as the paper's), from `figures/workshop/05_table3.csv`:",
        "",
        "| model | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        paper = TABLE3.get(row["model"], {})
        cells = [f"{float(row[c]):.2f} / {paper[c]:.2f}" if c in paper else f"{float(row[c]):.2f}" for c in COLUMNS]
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _seeds(root: Path, number: int, suffix: str = "", data: str = "") -> list[str]:
    """A table's runs over seeds and its rows' differences (``suffix``: the files of other ``data``)."""
    stem = f"table{number}{suffix}"
    spread, differences = read_result(root, f"{stem}_seeds.csv"), read_result(root, f"{stem}_differences.csv")
    if not spread:
        return []
    _, reference, name, reference_name, title = SEED_CLAIMS[number]
    first = differences[0] if differences else {}
    units, unit = interval_units(first, suffix), interval_units(first)  # told once in full, then the bare word
    title += f" on {data}" if data else ""
    lines = [f"## {title}", "", *([*TABLE3_DESIGN, *input_cost(root)] if number == 3 else [])]
    lines += [
        f"Test mIoU (%) per row over seeds, from `figures/workshop/{stem}_seeds.csv` "
        f"({footer_of(root, f'{stem}_seeds.md')}):",
        "",
    ]
    lines += ["| row | seeds | mean | sd | min | max |", "|---|---|---|---|---|---|"]
    for r in spread:
        sd = f"{float(r['mIoU_sd']):.2f}" if r.get("mIoU_sd") else "-"  # one seed has none
        lines.append(
            f"| {r['row']} | {r['seeds']} | {float(r['mIoU_mean']):.2f} | {sd} | "
            f"{float(r['mIoU_min']):.2f} | {float(r['mIoU_max']):.2f} |"
        )
    lines += [
        "",
        f"Each row minus {reference_name}: per seed, a 95 % paired bootstrap interval over the test {units}; seed "
        f"`all`, the mean over seeds with a 95 % two-level bootstrap interval (seeds, then test {unit}) "
        f"(`figures/workshop/{stem}_differences.csv`):",
        "",
    ]
    lines += [
        "| row | seed | difference | interval | direction | paper's difference inside |",
        "|---|---|---|---|---|---|",
    ]
    for r in differences:
        inside = {"True": "yes", "False": "no"}.get(r.get("paper_inside") or "", "-")
        lines.append(
            f"| {r['row']} | {r['seed']} | {float(r['mIoU_diff']):+.2f} | "
            f"[{float(r['ci_low']):+.2f}, {float(r['ci_high']):+.2f}] | "
            f"{r.get('direction') or direction(float(r['ci_low']), float(r['ci_high']))} | {inside} |"
        )
    footer = footer_of(root, f"{stem}_differences.md")
    return [*lines, "", f"_{footer}; {placement_of(root, footer)}._", ""]


def _deviations(root: Path) -> list[str]:
    smp = [  # the comparison models in the paper's convention (21 classes, 512 px) beside its Table 7
        f"{r['model']} {float(r['params_M']):.2f}M / {float(r['GFLOPs_modules']):.1f} GFLOPs "
        f"(paper {TABLE7[r['model']]['params_M']}M / {TABLE7[r['model']]['GFLOPs']} G)"
        for r in read_result(root, "07_table7.csv")
        if (r["num_classes"], r["size"]) == ("21", "512") and r["model"] in TABLE7 and "hrnet" not in r["model"]
    ]
    return [
        "## Where the kit departs from the paper and its reference code",
        "",
        '- **DEMA placement**: the paper says DEMA "replaced the 3x3 convolution layers in the backbone" (section '
        "3.3); the kit reads that as every basic block of stages 2-4 (104 at W32, 18 at W18-small): its second 3x3 "
        "conv dilated by 2, EMA before the residual sum (`emr_lib/models/hrnet.py` says why). This is the default "
        f"since commit {PAPER_PLACEMENT_SINCE}; the kit's lighter variant (`dema_blocks='last'`, 26 of 104 blocks) "
        "was the default before, and every result above says which placement its EMR-HRNet rows have.",
        "- **RMA wiring**: the RAD pyramid's inputs and fusion are our reading of Figs. 4-5 (`hrnet.py`).",
        "- **Dropout**: one dropout (0.5) before the classifier; the paper does not say where it sits.",
        "- **EMA groups**: the factor 32 does not divide HRNet-W18's channels; `ema_groups` picks the largest "
        "divisor with at least 4 channels a group.",
        "- **CenterRep's fill rule** read as 20-30 % of the landslide's bounding-box area, a rectangle with the box's "
        "aspect ratio at its centre, filled from background (or a non-landslide image).",
        "- **Expansion** of the training split only, so no copy of a test image is trained on (the paper does not "
        "say whether it expanded before or after splitting).",
        "- **Data**: every table was made on a third-party copy of Bijie resized to 224 x 224 without keeping the "
        "aspect ratio (official images vary in size); the workshop profile trains at 160 px. `data prepare bijie "
        "DOWNLOAD DEST --size 224` resizes an official download the same way (bilinear images, nearest masks) and "
        "prints its `data_fingerprint`: the same images and masks, but not the third party's resampler, so its "
        "files and fingerprint differ from the tables' copy (each run's `record.json` names the fingerprint it "
        "read), and how far that moves the numbers has not been measured.",
        "- **Comparison models** are segmentation-models-pytorch's, lighter than the paper's (21 classes, 512 px, "
        f"modules-only FLOPs): {'; '.join(smp) or 'run notebook 07'}.",
        "- **Pretraining**: the kit trains from scratch; the reference implementation loads ImageNet weights and "
        "freezes the backbone for the first 50 of 100 epochs by default. This alone may explain gaps. The options "
        "`pretrained` (a local weights file, or a download) and `freeze_epochs` follow the reference when asked.",
        "- **Model selection on Tables 4-5**: the paper's 4:1 split has no validation part, so the kit reports "
        "each run's last epoch (`record.json`: `test_selection`); the 20 % it reports on never chooses an epoch. "
        "(Runs made before this reported their best epoch on those images; reusing them re-evaluates their last "
        "epoch once and keeps the old numbers as `test_metrics_best_epoch`.) The committed workshop Tables 4 "
        "and 5 follow this rule.",
        "- **Schedule and CenterRep in the paper profile** (fixed): the warm-up follows the reference (0.1, 0.2, "
        "0.5, 1.0 of the rate over the first four epochs, a test locks it), and `centerrep` governs the offline "
        "expansion (`record.json` counts `expansion.copies` and `expansion.centerrep_copies`; rows without "
        "CenterRep have none, rows with it have it once, in the copies). The workshop and quick profiles keep "
        "their flat first epoch (`warmup_start=1.0`), so their committed tables stay what they produce.",
        "- **Determinism**: runs are bit-identical for a seed on one machine, not always across CPUs (float "
        "rounding in some kernels differs between processors; README).",
    ]


def _why_differ(root: Path) -> list[str]:
    """Each candidate cause of the gap between the kit's numbers and the paper's, with its measured size."""
    return [
        "## Why the kit's numbers differ from the paper's",
        "",
        "Candidate causes of the gap between the paper's effects and the kit's, each with its size as measured "
        "here (or not):",
        "",
        "| candidate cause | measured size |",
        "|---|---|",
        *[f"| {cause} | {size} |" for cause, size in difference_causes(root)],
        "",
    ]


def _comparisons(root: Path) -> list[str]:
    """How many intervals the ledger shows, and what that does to reading a single one."""
    stems = ("table2", "table3", "table4", f"table4{COMBINED}", "table5", f"table5{COMBINED}")
    rows = [r for stem in stems for r in read_result(root, f"{stem}_differences.csv")]
    pooled = sum(r["seed"] == "all" for r in rows)
    excluded = sum(
        r.get("direction", "") in ("better", "worse") or float(r["ci_low"]) > 0 or float(r["ci_high"]) < 0 for r in rows
    )
    return [
        "## How many comparisons",
        "",
        f"The ledger shows {len(rows)} intervals of a difference ({pooled} pooled over seeds, {len(rows) - pooled} "
        f"for one seed each); {excluded} of them exclude 0. Each is a 95 % interval, so among {len(rows)} "
        f"comparisons of models that did not differ at all about {0.05 * len(rows):.1f} would exclude 0 by chance: "
        "a single interval that excludes 0 is weak evidence on its own. The claims are the pooled rows (seed "
        "`all`), one per table; the per-seed rows show how much one trained pair can mislead.",
        "",
    ]


def render_ledger(root: Path | None = None) -> str:
    root = root or project_root()
    status = claim_statuses(root)
    lines = [
        "# What this kit reproduces of the paper",
        "",
        "Written by `python -m emr_lib ledger` from `emr_lib/experiments/paper.py`, the tables in `figures/workshop/` "
        "and the studies in `benchmarks/results/transfer*/`; "
        "do not edit by hand. Results are the workshop profile's (Bijie, 2-core CPU) unless a row says "
        "otherwise; commands are `python -m emr_lib ...` with `--profile workshop --data <Bijie>`. Every status "
        "starts with one of these words:",
        "",
        *[f"- **{word}**: {meaning}." for word, meaning in STATUSES.items()],
        "",
        "| paper | what the kit does | command | result | status |",
        "|---|---|---|---|---|",
        *[f"| {i.paper} | {i.kit} | {i.command} | {i.result} | {i.status.format(**status)} |" for i in PAPER_ITEMS],
        "",
        *_numbers(root),
        *_table3_columns(root),
        *_seeds(root, 2),
        *_seeds(root, 3),
        *_seeds(root, 4),
        *_seeds(root, 4, COMBINED, f"{COMBINED_LABEL} (the paper's data combination)"),
        *_comparisons(root),
        *_why_differ(root),
        *_transfer(root),
        *_deviations(root),
    ]
    return "\n".join(lines) + "\n"


README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"
# the paper items whose status the README shows: the claims measured here
README_CLAIMS = ("Table 2", "Table 3", "Table 4", "Table 5", "Table 7")


def render_readme_results(root: Path | None = None) -> str:
    """The README's results block: the claims' statuses and the tables beside the paper's, from the files."""
    root = root or project_root()
    status = claim_statuses(root)
    claims = [i for i in PAPER_ITEMS if i.paper.split(":")[0] in README_CLAIMS]
    lines = [
        README_BEGIN,
        "_Written by `python -m emr_lib ledger` from the committed files named below; do not edit by hand. "
        "[REPRODUCTION.md](REPRODUCTION.md) has every table and figure of the paper, the runs over seeds, what "
        "the statuses mean and where the kit departs from the paper._",
        "",
        "| paper | status |",
        "|---|---|",
        *[f"| {i.paper} | {i.status.format(**status)} |" for i in claims],
        "",
        *[line.replace("## The numbers", "#### The numbers") for line in _numbers(root)],
        *_transfer_summary(root),
        README_END,
    ]
    return "\n".join(lines)


TRANSFER_INTRO = (
    "Bijie's workshop EMR-HRNet fine-tuned on k labelled tiles of a new target minus the same network trained from "
    "scratch on them (`python -m emr_lib transfer`; mIoU points on the target's held-out part, mean over the draws "
    "with a two-level 95 % interval; one folder per target and recipe in `benchmarks/results/transfer/`, "
    "[docs/mapping.md](docs/mapping.md) says how each was made)"
)


def _transfer_table(root: Path, recipe_only: bool = False) -> list[str]:
    """A table with one row per committed few-shot study (fine-tuned minus scratch over the draws at each k), or
    nothing when there is none; with ``recipe_only``, only the studies made with ``transfer``'s default recipe."""
    rows, dirty = [], []
    for path in sorted((root / "benchmarks" / "results" / "transfer").glob("*/transfer.json")):
        study = json.loads(path.read_text())
        if recipe_only and full_recipe(study["settings"].get("recipe")) != FINETUNE_RECIPE:
            continue
        pooled = [c for c in study["comparisons"] if c["seed"] == "all" and c["b"] == "scratch"]
        cells = [
            f"k = {c['shots']}: {format_interval(c['mIoU_diff'], c['ci_low'], c['ci_high'])} {c['direction']}"
            for c in pooled
        ]
        draws = pooled[0]["n_seeds"] if pooled else 1
        rows.append(f"| `{path.parent.name}` | {'; '.join(cells)} | {draws} | {study['provenance'].get('commit')} |")
        if "+dirty" in str(study["provenance"].get("commit")):  # made from a checkout with uncommitted changes
            why = study["provenance"].get("dirty_note", "what differed was not recorded")
            dirty.append(f"`{path.parent.name}` was made at `{study['provenance']['commit']}`: {why}.")
    if not rows:
        return []
    notes = (
        ["", "`+dirty` marks a study made from a checkout with uncommitted changes: " + " ".join(dirty)]
        if dirty
        else []
    )
    return ["| study | fine-tuned - scratch at each k | draws | commit |", "|---|---|---|---|", *rows, *notes, ""]


def _transfer_summary(root: Path) -> list[str]:
    """The README's few lines on transfer: the default recipe's studies; REPRODUCTION.md has the rest."""
    table = _transfer_table(root, recipe_only=True)
    if not table:
        return []
    return [
        "#### Transfer to a new region",
        "",
        f"{TRANSFER_INTRO}, with the recipe `transfer` uses by default. "
        "[REPRODUCTION.md](REPRODUCTION.md#transfer-to-a-new-region) has every recipe tried and the source models "
        "compared on a whole scene:",
        "",
        *table,
    ]


def _transfer(root: Path) -> list[str]:
    """The few-shot studies (``transfer``) and source comparisons (``transfer --versus``) committed in
    ``benchmarks/results/``: each recipe's fine-tuned minus scratch over the draws, per target and k."""
    table = _transfer_table(root)
    if not table:
        return []
    lines = ["## Transfer to a new region", "", f"{TRANSFER_INTRO}:", "", *table]
    results = root / "benchmarks" / "results"
    for path in sorted((results / "transfer-sources").glob("*/sources.json")):
        study = json.loads(path.read_text())
        lines += [
            f"Source models tested as they are on `{path.parent.name}` ({study['settings']['held_out_images']} "
            f"held-out tiles; `transfer --versus`, commit {study['provenance'].get('commit')}), percent; "
            "false positives: the share of background pixels predicted landslide:",
            "",
            "| source | mIoU | landslide IoU | landslide precision | false positives |",
            "|---|---|---|---|---|",
            *[
                f"| {r['source']} | {r['mIoU']:.2f} | {r['IoU_landslide']:.2f} | {r['precision_landslide']:.2f} | "
                f"{r['false_positives']:.2f} |"
                for r in study["results"]
            ],
            "",
        ]
        for a in dict.fromkeys(c["a"] for c in study["comparisons"]):
            pairs = [c for c in study["comparisons"] if c["a"] == a]
            said = [
                f"{c['metric']} {format_interval(c['diff'], c['ci_low'], c['ci_high'])} ({c['direction']})"
                for c in pairs
            ]
            lines += [f"{a} minus {pairs[0]['b']}, paired over the tiles: " + "; ".join(said) + ".", ""]
    return lines


def _with_readme_results(readme: str, block: str) -> str:
    if README_BEGIN not in readme or README_END not in readme:
        raise ValueError(f"README.md has no {README_BEGIN} ... {README_END} block for the results")
    before, rest = readme.split(README_BEGIN, 1)
    return before + block + rest.split(README_END, 1)[1]


def stale_files(root: Path | None = None) -> list[str]:
    """The generated files that differ from what the committed results say (for ``ledger --check``)."""
    root = root or project_root()
    stale = [] if (root / "REPRODUCTION.md").read_text() == render_ledger(root) else ["REPRODUCTION.md"]
    readme = (root / "README.md").read_text()
    if _with_readme_results(readme, render_readme_results(root)) != readme:
        stale.append("README.md (results block)")
    for path, text in rendered_times(root).items():  # the episode times, from their one file
        if text != path.read_text():
            stale.append(f"{path.relative_to(root)} (episode times)")
    return stale


def write_ledger(root: Path | None = None) -> Path:
    """Write REPRODUCTION.md and the README's results block; return REPRODUCTION.md's path."""
    root = root or project_root()
    path = root / "REPRODUCTION.md"
    path.write_text(render_ledger(root))
    readme = root / "README.md"
    readme.write_text(_with_readme_results(readme.read_text(), render_readme_results(root)))
    for quoting, text in rendered_times(root).items():  # after the README's results block: it reads the file
        quoting.write_text(text)
    return path
