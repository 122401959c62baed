"""What the committed results say about the paper's claims: one status vocabulary, computed from files.

Every status starts with a word of :data:`STATUSES`. Statuses are computed from the tables the
pipeline and ``python -m emr_lib table`` committed in ``figures/workshop/`` (whose footers name
the commit that made them), never typed: Tables 2 and 4 from the pooled difference over seeds
(or, before seeds were pooled, from each seed's paired interval), Table 5 from its pair
intervals (or its rows), Table 7 from the DEMA placement table. :mod:`emr_lib.workshop.ledger` writes
them into REPRODUCTION.md and the README; :mod:`.causes` reads the same files for why the kit's numbers
differ from the paper's.
"""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

from ..evaluation.uncertainty import format_interval
from .paper import TABLE5, TABLE7
from .tables import PAPER_COMBINATION, combination_prefix, combination_suffix

__all__ = [
    "COMBINED",
    "COMBINED_LABEL",
    "COMBINED_RUNS",
    "STATUSES",
    "RESULTS",
    "PAPER_PLACEMENT_SINCE",
    "SEED_CLAIMS",
    "claim_statuses",
    "read_result",
    "footer_of",
    "placement_of",
    "centerrep_effect",
    "interval_units",
]


RESULTS = Path("figures") / "workshop"

# the commit that made the paper's DEMA placement EMR-HRNet's default (before: the lighter variant)
PAPER_PLACEMENT_SINCE = "0a02350"

# the one status vocabulary: every status in the ledger starts with one of these words
STATUSES = {
    "reproduced": "a count within 2 % of the paper's; a comparison whose pooled interval over seeds excludes 0 in "
    "the paper's direction and holds the paper's difference; or data measured as the paper describes it",
    "direction reproduced": "a comparison whose interval excludes 0 in the paper's direction but does not hold "
    "the paper's difference",
    "close": "a count (or an added cost) within 25 % of the paper's, but not within 2 %",
    "not detected at this scale": "a comparison whose pooled interval (with one seed: its paired intervals) holds 0",
    "not reproduced": "a comparison whose interval excludes 0 against the paper's direction, or a count more than "
    "25 % from the paper's",
    "mixed": "comparisons of one table whose intervals exclude 0 in both directions (some better, some worse)",
    "implemented, not measured": "code (or a picture of it) made as the paper describes, tested for shapes and "
    "equivalences, with no number of the paper to compare",
    "shown, not assessed": "a figure made as the paper's was, whose content no metric compares with the paper's",
    "cannot run here": "the data, code or hardware it needs is not available to the kit",
}


def read_result(root: Path, name: str) -> list[dict]:
    path = root / RESULTS / name
    return list(csv.DictReader(path.open())) if path.is_file() else []


def footer_of(root: Path, name: str) -> str:
    path = root / RESULTS / name
    return path.read_text().strip().splitlines()[-1].strip("_") if path.is_file() else "not run"


def placement_of(root: Path, footer: str) -> str:
    """Which DEMA placement a committed result's EMR-HRNet rows have, from the commit its footer names."""
    found = re.search(r"commit ([0-9a-f]{7,40})", footer)
    if not found:
        return "DEMA placement unknown (no commit in the footer)"
    ancestor = subprocess.run(
        ["git", "-C", str(root), "merge-base", "--is-ancestor", PAPER_PLACEMENT_SINCE, found.group(1)],
        capture_output=True,
    )
    if ancestor.returncode == 0:
        return "rows with DEMA blocks have the paper's placement"
    if ancestor.returncode == 1:
        return f"rows with DEMA blocks have the kit's lighter placement (made before {PAPER_PLACEMENT_SINCE})"
    return "DEMA placement unknown (commit not in this checkout's history)"


# the claims that several seeds test: table -> (row, reference row, how each reads, section title)
SEED_CLAIMS = {
    2: ("emr_hrnet", "hrnet", "EMR-HRNet", "HRNet", "HRNet against EMR-HRNet over seeds"),
    3: (
        "emr_hrnet",
        "hrnet",
        "EMR-HRNet",
        "HRNet",
        "HRNet against EMR-HRNet on Sichuan's scenes, each seed testing its own fold of them",
    ),
    4: (
        "+DEMA+RMA+CenterRep",
        "baseline",
        "the full model",
        "the baseline",
        "Table 4's baseline against the full model (+DEMA+RMA+CenterRep) over seeds",
    ),
}


def interval_units(row: dict, suffix: str = "") -> str:
    """What a differences row's intervals resample: "scenes" where it counts them (the tiles of one scene move
    together), else "images"; ``suffix`` :data:`COMBINED` says how a Bijie image counts among them."""
    if not row.get("n_scenes"):
        return "images"
    return "scenes (each Bijie image counts as one)" if suffix == COMBINED else "scenes"


def _pooled_status(pooled: dict, per_seed: list[dict], name: str, reference_name: str, suffix: str = "") -> str:
    """A comparison's status from its pooled row (seed ``all``): its direction against the paper's.
    ``per_seed`` (its seeds' rows) tells whether each seed tested a fold of its own: fewer scenes than pooled."""
    diff, low, high = (float(pooled[k]) for k in ("mIoU_diff", "ci_low", "ci_high"))
    paper = float(pooled["paper_diff"]) if pooled.get("paper_diff") else None
    inside = pooled.get("paper_inside") == "True"
    if pooled["direction"] == "unresolved":
        word = "not detected at this scale"
    elif paper is not None and pooled["direction"] == ("better" if paper > 0 else "worse"):
        word = "reproduced" if inside else "direction reproduced"
    else:
        word = "not reproduced"
    units = interval_units(pooled, suffix)
    over = f"{pooled['n_seeds']} seeds (95 %, two-level bootstrap over seeds, then the test {units})"
    if any(int(r.get("n_scenes") or 0) < int(pooled.get("n_scenes") or 0) for r in per_seed):  # folds (Table 3)
        over = (
            f"{pooled['n_seeds']} seeds, each testing its own fold of the scenes ({pooled['n_scenes']} scenes in all; "
            "95 %, two-level bootstrap over seeds, then scenes)"
        )
    text = f"{word}: {name} minus {reference_name} {format_interval(diff, low, high)} over {over}"
    if paper is not None:
        text += f"; the paper's {paper:+.2f} lies {'inside' if inside else 'outside'} that interval"
    if int(pooled["n_seeds"]) < 5:  # a bootstrap over 3 seeds sees only 10 distinct sets of them
        text += f"; {pooled['n_seeds']} seeds make a rough interval"
    return text


# the paper's data combination for Tables 4-5: its results' files end with COMBINED, its runs' folders start
# with COMBINED_RUNS (experiments.data_suffix, data_prefix); prose names it COMBINED_LABEL
COMBINED = combination_suffix(PAPER_COMBINATION)
COMBINED_RUNS = combination_prefix(PAPER_COMBINATION)
COMBINED_LABEL = " + ".join(name.capitalize() for name in PAPER_COMBINATION)


def _ablation_status(root: Path, one_seed: str) -> str:
    """Table 4's status: on the paper's combination (Bijie + Sichuan) when its runs are committed, with Bijie
    alone beside it; else on Bijie alone."""
    alone = _claim_status(root, 4, one_seed)
    if not read_result(root, f"table4{COMBINED}_differences.csv"):
        return alone
    combined = _claim_status(root, 4, one_seed, COMBINED)
    word, _, said = combined.partition(": ")
    status = f"{word}: on {COMBINED_LABEL} (the paper's data), {said}. On Bijie alone: {alone}"
    if centerrep := centerrep_effect(root):
        status += f". CenterRep's own effect, +DEMA+CenterRep minus +DEMA: {centerrep}"
    return status


def centerrep_effect(root: Path) -> str:
    """CenterRep's own effect, +DEMA+CenterRep minus +DEMA (the paper's +6.66), on the paper's combination and on
    Bijie alone, as ``table 4 --rows +DEMA +DEMA+CenterRep --reference +DEMA --save`` saved it; "" when not saved."""
    told = []
    for suffix, data in ((COMBINED, COMBINED_LABEL), ("", "Bijie")):
        name = f"table4_vs_dema{suffix}_differences.csv"
        rows = [r for r in read_result(root, name) if r["row"] == "+DEMA+CenterRep" and r["versus"] == "+DEMA"]
        if not rows:
            continue
        r = ([p for p in rows if p["seed"] == "all"] or rows)[0]
        pooled = f"{r['n_seeds']} seeds, 95 % bootstrap over seeds, then over"
        over = pooled if r["seed"] == "all" else f"seed {r['seed']}, 95 % paired bootstrap over"
        units = interval_units(r, suffix)
        inside = "inside" if r.get("paper_inside") == "True" else "outside"
        told.append(
            f"on {data} {format_interval(r['mIoU_diff'], r['ci_low'], r['ci_high'])} {r['direction']} ({over} "
            f"{r.get('n_scenes') or r.get('n_images')} test {units}; the paper's {float(r['paper_diff']):+.2f} "
            f"lies {inside} that interval; `{name}`)"
        )
    return "; ".join(told)


def _claim_status(root: Path, number: int, one_seed: str, suffix: str = "") -> str:
    """A table's status from its claim's pooled difference over seeds or, before seeds were pooled,
    from the paired intervals of each seed, when they exist (``suffix``: of the files of other data)."""
    row, reference, name, reference_name, _ = SEED_CLAIMS[number]
    differences = read_result(root, f"table{number}{suffix}_differences.csv")
    rows = [r for r in differences if r["row"] == row and r["versus"] == reference]
    pooled = [r for r in rows if r["seed"] == "all"]
    if pooled:
        return _pooled_status(pooled[0], [r for r in rows if r["seed"] != "all"], name, reference_name, suffix)
    if not rows:
        return one_seed
    above = sum(float(r["ci_low"]) > 0 for r in rows)
    below = sum(float(r["ci_high"]) < 0 for r in rows)
    units = interval_units(rows[0], suffix)
    told = ", ".join(f"seed {r['seed']} {format_interval(r['mIoU_diff'], r['ci_low'], r['ci_high'])}" for r in rows)
    seeds = f"{told}; 95 % paired bootstrap intervals over the test {units}, per seed; seeds not pooled"
    if rows[0].get("paper_diff") and all(r.get("paper_inside") == "False" for r in rows):
        seeds += f"; the paper's {float(rows[0]['paper_diff']):+.2f} lies outside every seed's interval"
    if above == len(rows):
        return f"direction reproduced: {name} above {reference_name} in every seed ({seeds})"
    if below == len(rows):
        return f"not reproduced: {name} below {reference_name} in every seed ({seeds})"
    across = len(rows) - above - below
    return (
        f"not detected at this scale: {name} minus {reference_name} is above 0 in {above}, below 0 in {below} and "
        f"unresolved in {across} of {len(rows)} seeds ({seeds})"
    )


def _model_comparison_status(root: Path) -> str:
    """Table 3's status: against HRNet over seeds, then against SE-UNet (the paper's +8.51) if that pair is saved."""
    status = _claim_status(root, 3, "implemented, not measured: no Table 3 runs are committed yet")
    pairs = [r for r in read_result(root, "table3_vs_se_unet_differences.csv") if r["row"] == "emr_hrnet"]
    if not pairs:
        return status
    r = ([p for p in pairs if p["seed"] == "all"] or pairs)[0]
    pooled = f"{r['n_seeds']} seeds, 95 % bootstrap over seeds, then over"
    over = pooled if r["seed"] == "all" else f"seed {r['seed']}, 95 % paired bootstrap over"
    paper = f"; the paper's {float(r['paper_diff']):+.2f} lies {'inside' if r['paper_inside'] == 'True' else 'outside'}"
    return (
        f"{status}. Against SE-UNet ({over} {r['n_scenes']} test scenes, `table3_vs_se_unet_differences.csv`): "
        f"EMR-HRNet minus SE-UNet {format_interval(r['mIoU_diff'], r['ci_low'], r['ci_high'])} {r['direction']}"
        f"{paper} that interval"
    )


def _blocks_status(root: Path) -> str:
    """Table 5's status: on the paper's combination (Bijie + Sichuan) when its pairs are saved, with Bijie alone
    beside it; on Bijie from its saved pair intervals (each block minus DEMA) when they exist, else from its
    committed rows (where DEMA ranks, the paper: first, and their spread)."""
    alone = _blocks_pairs_status(root) or _blocks_rows_status(root)
    combined = _blocks_pairs_status(root, COMBINED)
    if not combined:
        return alone
    word, _, said = combined.partition(": ")
    return f"{word}: on {COMBINED_LABEL} (the paper's data), {said}. On Bijie alone: {alone}"


def _blocks_pairs_status(root: Path, suffix: str = "") -> str:
    """Table 5's status from ``table5<suffix>_differences.csv`` (each block minus DEMA); "" when not saved."""
    name = f"table5{suffix}_differences.csv"
    pairs = [r for r in read_result(root, name) if r["versus"] == "dema"]
    if not pairs:
        return ""
    pooled = [r for r in pairs if r["seed"] == "all"] or pairs
    # The paper has DEMA first, so its claim holds where every other block is worse than DEMA.
    directions = [r["direction"] for r in pooled]
    if all(d == "worse" for d in directions):
        word = "direction reproduced"
    elif "better" in directions and "worse" in directions:
        word = "mixed"  # some blocks beat DEMA, some lose to it
    elif "better" in directions:
        word = "not reproduced"
    else:
        word = "not detected at this scale"
    units = interval_units(pooled[0], suffix)
    seeds = "pooled over seeds" if pooled is not pairs else f"one seed, paired over the test {units}"
    told = ", ".join(
        f"{r['row']} minus DEMA {format_interval(r['mIoU_diff'], r['ci_low'], r['ci_high'])} {r['direction']}"
        for r in pooled
    )
    inside = [r["row"] for r in pooled if r.get("paper_inside") == "True"]
    paper = f"the paper's difference lies inside the interval for {', '.join(inside) or 'none of them'}"
    missing = [block for block in TABLE5 if block != "dema" and block not in {r["row"] for r in pooled}]
    untrained = f"; {', '.join(missing)} not trained on these data yet" if missing else ""
    return f"{word}: {told} ({seeds}; `{name}`); {paper}{untrained}"


def _blocks_rows_status(root: Path) -> str:
    """Table 5's status from notebook 06's rows alone (no pair intervals saved)."""
    rows = {row["model"]: float(row["mIoU"]) for row in read_result(root, "06_table5.csv")}
    if "dema" not in rows:
        return "cannot run here: not run"
    rank = sorted(rows.values(), reverse=True).index(rows["dema"]) + 1
    spread = max(rows.values()) - min(rows.values())
    order = "as in the paper" if rank == 1 else "the paper has it first"
    return (
        f"not detected at this scale: DEMA ranks {rank} of {len(rows)} ({order}), the blocks within {spread:.2f} "
        "points; one seed, and no pair intervals are committed yet"
    )


def _datasets_status(root: Path) -> str:
    """Table 1's status from notebook 01's table of both datasets (``01_datasets.csv``): what the files show
    (counts, sizes, RGB), beside what only the sources can say (sensor, resolution, dates, places)."""
    rows = {row["dataset"]: row for row in read_result(root, "01_datasets.csv")}
    sources = "sensor, ground resolution, dates, places and landslide types are the sources' (data/README.md)"
    if not rows:
        return f"shown, not assessed: notebook 01 has not written 01_datasets.csv; {sources}"
    told = "; ".join(
        f"{name}: {row['images']} images of {row['size_px']} px, landslide {float(row['mean_fraction_%']):.1f} % "
        "of a picture on average"
        for name, row in rows.items()
    )
    sichuan = "" if any("sichuan" in name for name in rows) else "; Sichuan not prepared"
    return f"reproduced as far as the files show (RGB images, as the paper's Table 1): {told}{sichuan}; {sources}"


def _count_word(measured: float, paper: float) -> str:
    error = abs(measured - paper) / abs(paper)
    return "reproduced" if error <= 0.02 else "close" if error <= 0.25 else "not reproduced"


def _worst(words: list[str]) -> str:
    """The weakest of several statuses (STATUSES runs from the strongest to the weakest claim)."""
    return max(words, key=list(STATUSES).index)


def _efficiency_status(root: Path) -> str:
    """Table 7's status: EMR-HRNet's added parameters and FLOPs in thop's convention against the paper's,
    and HRNet-W32's own counts (``07_placements.csv``, ``07_table7.csv``)."""
    placements = {r["model"]: r for r in read_result(root, "07_placements.csv")}
    hrnet = [
        r
        for r in read_result(root, "07_table7.csv")
        if (r["model"], r["num_classes"], r["size"]) == ("hrnet", "21", "480")
    ]
    if "emr_hrnet" not in placements or not hrnet:
        return "cannot run here: notebook 07 has not written its tables"
    paper_params = TABLE7["emr_hrnet"]["params_M"] - TABLE7["hrnet"]["params_M"]
    paper_flops = TABLE7["emr_hrnet"]["GFLOPs"] - TABLE7["hrnet"]["GFLOPs"]
    emr, light = placements["emr_hrnet"], placements.get("emr_hrnet_light")
    params, flops = float(emr["delta_params_M_modules"]), float(emr["delta_GFLOPs_modules"])
    word = _worst([_count_word(params, paper_params), _count_word(flops, paper_flops)])
    base = hrnet[0]
    base_word = _worst(
        [
            _count_word(float(base["params_M"]), TABLE7["hrnet"]["params_M"]),
            _count_word(float(base["GFLOPs_modules"]), TABLE7["hrnet"]["GFLOPs"]),
        ]
    )
    text = (
        f"{word}: EMR-HRNet adds {params:+.2f}M / {flops:+.2f} G over HRNet-W32 in thop's convention (the paper: "
        f"{paper_params:+.2f}M / {paper_flops:+.2f} G; 480 px, 21 classes)"
    )
    if light:
        text += (
            f", the lighter variant {float(light['delta_params_M_modules']):+.2f}M / "
            f"{float(light['delta_GFLOPs_modules']):+.2f} G"
        )
    return (
        f"{text}; the real cost (torch counter) {float(emr['delta_GFLOPs_torch']):+.2f} G; HRNet-W32 itself "
        f"{base_word} ({float(base['params_M']):.2f}M / {float(base['GFLOPs_modules']):.2f} G); comparison models "
        "are smp's (lighter)"
    )


def claim_statuses(root: Path) -> dict[str, str]:
    """The statuses that depend on results, for ``PAPER_ITEMS``' placeholders."""
    return {
        "table1": _datasets_status(root),
        "table2": _claim_status(root, 2, "not detected at this scale (one seed; see below)"),
        "table3": _model_comparison_status(root),
        "table4": _ablation_status(root, "not detected at this scale (one seed)"),
        "table5": _blocks_status(root),
        "table7": _efficiency_status(root),
    }
