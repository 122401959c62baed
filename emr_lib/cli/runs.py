"""Commands about runs: ``train``, ``evaluate``, ``table`` and ``compare``."""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

from ..data import DataError, dataset_kind, scene_of, source_of
from ..evaluation.inference import evaluate, scale_curve
from ..evaluation.metrics import format_metrics
from ..evaluation.uncertainty import CompareError, compare_runs, paired_differences, seed_summary
from ..experiments.tables import (
    data_suffix,
    paper_effects,
    run_table,
    split_study_differences,
    split_study_runs,
    table4_row_of,
    table_rows,
    table_runs,
)
from ..figures import FigureStore, table_markdown, write_figures_index
from ..models import explicit_options, list_models
from ..notebook import Context
from ..paths import project_root, resolve_data
from ..provenance import provenance
from ..training.checkpoints import load_checkpoint, model_from_checkpoint
from ..training.profiles import PROFILES, TrainConfig, apply_overrides, get_config, parse_override
from ..training.run_data import run_datasets, scene_split
from ..training.runs import data_names, keep_records, reuse_kept_record, run_or_reuse
from ..training.runtime import select_device
from .common import DATA_HELP, DEVICE_HELP, MULTI_DATA_HELP, PROFILE_HELP, CLIError, data_option, in_range


def _config(args: argparse.Namespace) -> TrainConfig:
    """The profile's configuration with ``--set`` overrides, type-checked field by field.

    With ``--init CKPT`` and no ``--model``, the model and its options are the checkpoint's.
    """
    init = getattr(args, "init", None)
    from_checkpoint = {}
    if init:
        state = load_checkpoint(init)
        if args.model is None:
            args.model = state["model_name"]
            options = explicit_options(state["model_name"], state["model_options"], stored=True)
            from_checkpoint = {f"model_options.{k}": v for k, v in options.items()}
    args.model = args.model or "emr_hrnet"
    if args.model not in list_models():
        raise CLIError(f"unknown model {args.model!r}; choose one of {list_models()}")
    try:
        overrides = {**from_checkpoint, **dict(parse_override(item) for item in args.set)}
        overrides.update(model=args.model, data=resolve_data(data_option(args.data)))
        if init:
            overrides["init"] = str(init)
        if args.device:
            overrides["device"] = args.device
        if args.seed is not None:
            overrides["seed"] = args.seed
        return get_config(args.profile or "quick", **overrides)
    except DataError:
        raise
    except ValueError as err:
        raise CLIError(str(err)) from err


def _stored_settings(out: Path) -> dict | None:
    """The settings of the run in ``out`` (its record's, else its last checkpoint's), or None."""
    if (out / "record.json").is_file():
        return json.loads((out / "record.json").read_text()).get("config")
    if (out / "last.pt").is_file():
        return load_checkpoint(out / "last.pt").get("config")
    return None


def _resume_config(args: argparse.Namespace, out: Path, stored: dict) -> TrainConfig:
    """``train --resume --out DIR``: the run's own model, profile, data and settings; anything passed
    on the command line that differs from them is named, and nothing starts."""
    asked = {"model": args.model, "profile": args.profile, "seed": args.seed, "device": args.device}
    if args.data:
        asked["data"] = resolve_data(data_option(args.data))
    try:
        asked |= {key: value for key, value in (parse_override(item) for item in args.set)}
    except ValueError as err:
        raise CLIError(str(err)) from err
    differ = []
    for key, value in asked.items():
        if value is None:
            continue
        if key.startswith("model_options."):
            held = stored.get("model_options", {}).get(key.split(".", 1)[1])
        else:
            held = stored.get(key)
        if key == "data" and held and data_names(held) == data_names(value):
            continue  # the same folders moved elsewhere: the run folder rule checks they hold what the run read
        if held != value:
            differ.append(f"{key}: {held!r} in the run, {value!r} asked")
    if differ:
        raise CLIError(
            f"{out} holds a run with other settings ({'; '.join(differ)}); leave them out to resume it as it was, "
            "or pass --overwrite (the old run is moved aside) or another --out"
        )
    try:
        return apply_overrides(TrainConfig(), {**stored, **({"data": asked["data"]} if args.data else {})}).validate()
    except ValueError as err:
        raise CLIError(
            f"{out}: its settings cannot be read by this kit ({err}); train it again with --overwrite"
        ) from err


def _cmd_train(args: argparse.Namespace) -> None:
    if args.resume and args.overwrite:
        raise CLIError("--resume continues the run in --out and --overwrite starts it again: pass one of them")
    stored = _stored_settings(Path(args.out)) if args.resume and args.out else None
    if args.resume and not stored:
        where = args.out or "--out"
        raise CLIError(
            f"nothing to resume in {where}: it holds no run (record.json or last.pt); drop --resume to start one"
        )
    if stored:
        config = _resume_config(args, Path(args.out), stored)
        args.model = config.model
    else:
        config = _config(args)
    out = Path(args.out or Path("runs") / (args.profile or "quick") / args.model)
    mode = "overwrite" if args.overwrite else "resume" if args.resume else "refuse"
    record = run_or_reuse(config, out, mode, stop_after=args.stop_after, progress=not args.no_progress)
    print(f"run record: {out / 'record.json'} ({record['status']})")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    state = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(state, expected_model=args.model)
    config = apply_overrides(TrainConfig(), dict(state["config"]))
    config.data = resolve_data(data_option(args.data))
    config.split_dir = args.split_dir or config.split_dir
    config.size = args.size or config.size
    data = run_datasets(config)
    dataset = data.view(args.split)
    device = select_device(args.device or "auto")
    if args.scales:
        _evaluate_scales(args, state, model.to(device), dataset, config, device)
        return
    metrics, cm = evaluate(model.to(device), dataset, config.batch_size, device)
    print(f"{state['model_name']} epoch {state['epoch']} on {config.data} ({args.split}, {len(dataset)} images):")
    print(format_metrics(metrics))
    if args.json:
        result = {"metrics": metrics, "confusion_matrix": cm.tolist(), "checkpoint": str(args.checkpoint)}
        Path(args.json).write_text(json.dumps({**result, "data": config.data, "split": args.split}, indent=1))


def _evaluate_scales(args, state: dict, model, dataset, config: TrainConfig, device) -> None:
    """``evaluate --scales``: the split at several multiples of the training size."""
    rows = scale_curve(model, dataset.base, dataset.names, config.size, args.scales, config.batch_size, device)
    print(f"{config.model} on {config.data} ({args.split}, {len(dataset)} images), trained at {config.size} px:")
    print(f"{'scale':>6} {'size':>5} {'mIoU':>6} {'IoU_ls':>6}")
    for row in rows:
        print(f"{row['factor']:>6.2f} {row['size']:>5d} {100 * row['mIoU']:>6.2f} {100 * row['IoU_landslide']:>6.2f}")
    if args.json:
        result = {"checkpoint": str(args.checkpoint), "data": config.data, "split": args.split, "scales": rows}
        result["trained_at_commit"] = state.get("versions", {}).get("commit")
        result["provenance"] = provenance(device)
        Path(args.json).write_text(json.dumps(result, indent=1))


def _table_context(args: argparse.Namespace, seed: int) -> Context:
    root = project_root()
    output = Path(args.out) if args.out else root / "runs" / "notebooks"
    data = resolve_data(data_option(args.data))
    return Context(f"table {args.number}", args.profile, data, args.device, seed, output, root / "build" / "tables")


# each table's claim is against this row; tables saved against another get its name in theirs
CLAIM_REFERENCES = {2: "hrnet", 3: "hrnet", 4: "baseline", 5: "dema"}


def _saved_stem(number: int, reference: str) -> str:
    """``table4`` for the claim's reference (a split study's too), ``table4_vs_dema_rma`` for another one."""
    reference = table4_row_of(reference)
    if CLAIM_REFERENCES.get(number) == reference:
        return f"table{number}"
    return f"table{number}_vs_" + "_".join(part.lower() for part in reference.split("+") if part)


def _cmd_table(args: argparse.Namespace) -> None:
    if args.split_study and (args.number != 4 or args.reference):
        raise CLIError("--split-study pairs Table 4's ends per split timing, no --reference: table 4 --split-study")
    try:
        data = resolve_data(data_option(args.data))
        specs = split_study_runs(data) if args.split_study else table_runs(args.number, args.rows, data)
    except ValueError as err:
        raise CLIError(str(err)) from err
    reference = args.reference or next(iter(specs))
    if reference not in specs:
        raise CLIError(f"--reference {reference} is not among the rows {list(specs)}")
    seeds = args.seeds or [args.seed]
    if args.number == 3 and (data == "synthetic" or dataset_kind(data) != "sichuan"):
        raise CLIError(
            f"Table 3 is on the Sichuan scenes, not {data}: prepare them with `python -m emr_lib data prepare "
            "sichuan SRC data/sichuan --size 480 --tile 160` (data/README.md) and pass --data data/sichuan"
        )
    by_seed, result = {}, {"seeds": seeds, "runs_by_seed": {}}
    for seed in seeds:
        ctx = _table_context(args, seed)
        if args.from_records:
            folders = [ctx.run_dir(spec.name) for spec in specs.values()]
            kept = [folder.name for folder in folders if reuse_kept_record(args.from_records, folder)]
            if kept:
                print(f"seed {seed}: copied the kept records of {', '.join(kept)} from {args.from_records}")
        by_seed[seed] = run_table(partial(ctx.run, progress=not args.no_progress), specs)
        result["runs_by_seed"][seed] = {row: str(ctx.run_dir(spec.name)) for row, spec in specs.items()}
    result["runs"] = result["runs_by_seed"][seeds[0]]
    kind = None if ctx.data == "synthetic" else dataset_kind(ctx.data)
    result["rows"] = table_rows(args.number, by_seed[seeds[0]], kind)
    print(f"\nTable {args.number}, profile {args.profile}, data {ctx.data_label}, seed {seeds[0]} (percent):\n")
    print(table_markdown(result["rows"]))
    if len(specs) > 1 and (len(seeds) > 1 or args.save):
        spread = seed_summary({row: {s: by_seed[s][row] for s in seeds} for row in specs}, label="row")
        # what the intervals resample: tiles count with their scene, and in the split study copies with theirs
        unit_of = source_of if args.split_study else scene_of if scene_split(ctx.data) else None
        paper = paper_effects(args.number, reference, kind)
        differences = (
            split_study_differences(by_seed)
            if args.split_study
            else paired_differences(by_seed, reference, paper=paper, unit_of=unit_of)
        )
        print(f"\nTest mIoU over seeds {seeds}:\n\n{table_markdown(spread)}")
        units = "images" if unit_of is None else "scenes"
        versus = "the baseline of its split timing" if args.split_study else reference
        print(
            f"\nEach row minus {versus}: per seed, a 95 % paired bootstrap interval over the test {units}; "
            f"seed 'all', the mean over seeds with a 95 % two-level bootstrap interval (seeds, then test {units}); "
            "direction: better / worse / unresolved (the interval holds 0); paper_inside: whether the paper's own "
            "difference lies inside the interval:\n"
        )
        print(table_markdown(differences))
        result |= {"seed_summary": spread, "differences": differences}
        if args.save:
            store = FigureStore(Path(args.save), f"table {args.number} --seeds", args.profile, ctx.data_label)
            caption = f"Table {args.number} rows over seeds {seeds}, profile {args.profile}, {ctx.data_label}"
            stem = _saved_stem(args.number, reference) + data_suffix(ctx.data)  # Bijie + Sichuan beside Bijie
            stem += "_split_study" if args.split_study else ""
            store.save_table(spread, f"{stem}_seeds", caption=f"{caption}: test mIoU (%)")
            store.save_table(differences, f"{stem}_differences", caption=f"{caption}: minus {versus}")
            keep_records(Path(args.save) / "run_records", result["runs_by_seed"], by_seed)  # the tables' sources
            figures_root = project_root() / "figures"
            if Path(args.save).resolve().parent == figures_root.resolve():  # a committed profile folder: index it
                write_figures_index(figures_root, args.profile)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


def _cmd_compare(args: argparse.Namespace) -> None:
    try:
        result = compare_runs(args.run_a, args.run_b, resamples=args.resamples, seed=args.seed)
    except CompareError as err:
        raise CLIError(str(err)) from err
    level = int(100 * result["level"])
    print(
        f"test mIoU {result['mIoU_a']:.2f} ({args.run_a}) - {result['mIoU_b']:.2f} ({args.run_b}) = "
        f"{result['mIoU_diff']:+.2f} points; {level} % paired bootstrap interval [{result['ci_low']:+.2f}, "
        f"{result['ci_high']:+.2f}] over {result['n_images']} test images, {result['resamples']} resamples"
    )
    inside = result["ci_low"] <= 0 <= result["ci_high"]
    print("the interval holds 0: no difference detected at this scale" if inside else "the interval excludes 0")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


def _add_train(commands) -> None:
    """``train``: one run with a profile."""
    tr = commands.add_parser(
        "train",
        help="train a model with a profile (quick, workshop, paper)",
        description="Train a model. Profiles (emr_lib/training/profiles.py): quick = CI smoke run in seconds; "
        "workshop = a real result on a CPU laptop in 10-25 minutes per model; paper = the paper's recipe for a GPU. "
        "Under torchrun --nproc_per_node=N this runs distributed (DDP).",
    )
    tr.add_argument("--model", help="model name (default emr_hrnet, or the --init checkpoint's; see the README)")
    tr.add_argument(
        "--init",
        metavar="CKPT",
        help="fine-tune: start from this checkpoint's weights (its model and options unless --model is given)",
    )
    tr.add_argument(
        "--data",
        action="append",
        help=DATA_HELP + MULTI_DATA_HELP,
    )
    tr.add_argument(
        "--profile", choices=list(PROFILES), help=PROFILE_HELP + " (default: quick; with --resume, the run's)"
    )
    tr.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set epochs=3 --set model_options.width=32 (repeatable)",
    )
    tr.add_argument("--out", help="run folder (default runs/PROFILE/MODEL)")
    tr.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint, with its own model, profile, data and settings",
    )
    tr.add_argument("--overwrite", action="store_true", help="start again in an existing run folder")
    tr.add_argument("--stop-after", type=int, metavar="EPOCH", help="stop after this epoch (resume later)")
    tr.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    tr.add_argument("--seed", type=int, help="random seed (default 0)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars (log lines only)")
    tr.set_defaults(func=_cmd_train)


def _add_evaluate(commands) -> None:
    """``evaluate``: a checkpoint's metrics on a split."""
    ev = commands.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a dataset split",
        description="Compute the paper's metrics for a checkpoint (best.pt or last.pt).",
    )
    ev.add_argument("checkpoint", help="a checkpoint written by train (best.pt, last.pt)")
    ev.add_argument("--data", action="append", help=DATA_HELP + MULTI_DATA_HELP)
    ev.add_argument("--split", default="test", help="test (default), val, train or all")
    ev.add_argument("--split-dir", help="folder of split files (default: made as in training)")
    ev.add_argument("--model", help="check that the checkpoint holds this model")
    ev.add_argument("--size", type=int, help="input size (default: the training size)")
    ev.add_argument(
        "--scales",
        type=in_range(float, 0, low_open=True),
        nargs="+",
        metavar="F",
        help="evaluate at these multiples of the training size instead (e.g. 0.5 0.75 1 1.5 2): scale robustness",
    )
    ev.add_argument("--device", help="auto (default), cpu, cuda, mps")
    ev.add_argument("--json", help="also write the metrics and confusion matrix to this JSON file")
    ev.set_defaults(func=_cmd_evaluate)


def _add_table(commands) -> None:
    """``table``: a paper table from its declared runs."""
    table = commands.add_parser(
        "table",
        help="rebuild the paper's Table 2, 3, 4 or 5: run (or reuse) its runs and print it beside the paper's",
        description="Run or reuse the runs behind a table (emr_lib/experiments/tables.py) in the notebooks' "
        "runs folder, "
        "so runs made by notebooks 04-06 are reused, and print the table beside the paper's.",
    )
    table.add_argument(
        "number",
        type=int,
        help="2 (models on Bijie), 3 (models on the prepared Sichuan scenes), 4 (ablation), 5 (blocks)",
    )
    table.add_argument("--profile", default="quick", choices=list(PROFILES), help=PROFILE_HELP)
    table.add_argument("--data", action="append", help=DATA_HELP + MULTI_DATA_HELP)
    table.add_argument("--rows", nargs="+", metavar="ROW", help="only these rows (default: all)")
    table.add_argument("--seed", type=int, default=0, help="random seed of the runs (without --seeds)")
    table.add_argument(
        "--seeds", nargs="+", type=int, help="run every row with each seed; prints mean and sd, and paired intervals"
    )
    table.add_argument(
        "--save",
        help="save the seed tables and each row's differences to the reference (markdown, CSV, manifest) in this "
        "folder, for one seed too",
    )
    table.add_argument(
        "--reference",
        metavar="ROW",
        help="the row the others are compared with (default: the first row; Table 5's claim: dema)",
    )
    table.add_argument(
        "--split-study",
        action="store_true",
        help="Table 4's baseline and full model on data expanded by the paper's factor, split before and after "
        "the expansion (copies of one image on both sides): what the paper's split may have added",
    )
    table.add_argument("--device", default="auto", help=DEVICE_HELP)
    table.add_argument("--out", help="runs folder (default: runs/notebooks in the project, the notebooks')")
    table.add_argument("--output-dir", dest="out", help=argparse.SUPPRESS)  # the old name, still accepted
    table.add_argument(
        "--from-records",
        metavar="DIR",
        help="first copy the kept run records in DIR (figures/workshop/run_records) into the runs folder where it "
        "has no run yet: a fresh clone rebuilds a committed table without training (records of other settings "
        "or data are moved aside and trained)",
    )
    table.add_argument("--json", help="also write the rows and their run folders to this JSON file")
    table.add_argument("--no-progress", action="store_true", help="no progress bars (log lines only)")
    table.set_defaults(func=_cmd_table)


def _add_compare(commands) -> None:
    """``compare``: a paired bootstrap interval of the mIoU difference between two runs."""
    compare = commands.add_parser(
        "compare",
        help="difference in test mIoU between two runs with a paired bootstrap interval over test images",
        description="Resample the test images (with replacement), recompute both runs' dataset-level mIoU from "
        "their per-image confusion matrices, and report the difference with a 95 % interval.",
    )
    compare.add_argument("run_a", help="a finished run folder (holds record.json)")
    compare.add_argument("run_b", help="another run folder evaluated on the same test images")
    compare.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    compare.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    compare.add_argument("--json", help="also write the result to this JSON file")
    compare.set_defaults(func=_cmd_compare)


def add(commands) -> None:
    for add_command in (_add_train, _add_evaluate, _add_table, _add_compare):
        add_command(commands)
