#!/usr/bin/env python
"""Prompted classification on BUS-BRA (benign / malignant), lesion box as prompt, official patient-level folds.

    python scripts/finetune_classification.py --raw ../shared/us/bus-bra --init path/to/ultrasam-lite \
        --variant full lora head image-linear --folds 1 2 3 4 5

Compares, per initialisation (`--init`: saved UltraSam folders, or `preset:<name>` for random weights), the
prompted head trained end to end (`full`), with LoRA (`lora`) or alone on the frozen model (`head`), against the
image-level baselines (`image-linear`: frozen encoder + linear head; `image-full`: encoder fine-tuned). Metrics:
accuracy, balanced accuracy, F1, AUC (local `evaluate` module), mean ± std over folds; writes a Markdown table
(`--out`) and JSON next to it. Library code: `ultrasam_hf.downstream.classification`.
"""

import argparse
import shlex
import sys
import time
from pathlib import Path

# `scripts/` holds an `evaluate.py`, which would shadow the `evaluate` package when this file is run as a script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np

from ultrasam_hf.downstream.classification import VARIANTS, ClassificationArguments, run_classification_benchmark, write_results
from ultrasam_hf.downstream.data import bus_bra_folds, bus_bra_rows, rows_from_shards


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", default="../shared/us/bus-bra", help="raw BUS-BRA folder (images, masks, CSVs)")
    parser.add_argument("--shards", help="built US-43d shards to read rows from instead of --raw (folds still from --raw)")
    parser.add_argument("--init", nargs="+", required=True, help="UltraSam folders, or preset:<name>")
    parser.add_argument("--variant", nargs="+", default=["full", "lora", "head", "image-linear"], choices=VARIANTS)
    parser.add_argument("--folds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--folds-file", default="5-fold-cv.csv")
    parser.add_argument("--max-train", type=int, help="subsample each fold's training images (small-scale runs)")
    parser.add_argument("--max-test", type=int, help="subsample each fold's test images (small-scale runs)")
    parser.add_argument("--steps", type=int, default=ClassificationArguments.steps)
    parser.add_argument("--head-steps", type=int, default=ClassificationArguments.head_steps)
    parser.add_argument("--batch-size", type=int, default=ClassificationArguments.batch_size)
    parser.add_argument("--lr", type=float, default=ClassificationArguments.learning_rate)
    parser.add_argument("--head-lr", type=float, default=ClassificationArguments.head_learning_rate)
    parser.add_argument("--mask-loss-weight", type=float, default=ClassificationArguments.mask_loss_weight)
    parser.add_argument("--lora-rank", type=int, default=ClassificationArguments.lora_rank)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/classification_results.md")
    parser.add_argument("--note", default="", help="text placed above the table")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    all_folds = bus_bra_folds(args.raw, args.folds_file)
    folds = {}
    for fold in args.folds:
        train, test = list(all_folds[fold]["train"]), list(all_folds[fold]["test"])
        if args.max_train and len(train) > args.max_train:
            train = sorted(rng.choice(train, args.max_train, replace=False).tolist())
        if args.max_test and len(test) > args.max_test:
            test = sorted(rng.choice(test, args.max_test, replace=False).tolist())
        folds[fold] = {"train": train, "test": test}
    needed = sorted({i for parts in folds.values() for i in parts["train"] + parts["test"]})
    if args.shards:
        rows = [row for split in ("train", "validation", "test") for row in rows_from_shards(args.shards, split, "bus-bra")]
        rows = [row for row in rows if row["image_id"] in set(needed)]
    else:
        rows = bus_bra_rows(args.raw, needed)
    recipe = ClassificationArguments(
        steps=args.steps,
        head_steps=args.head_steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        head_learning_rate=args.head_lr,
        mask_loss_weight=args.mask_loss_weight,
        lora_rank=args.lora_rank,
        lora_alpha=args.lora_rank,
        seed=args.seed,
    )
    start = time.time()
    records, summary = run_classification_benchmark(args.init, args.variant, rows, folds, recipe)
    command = "python scripts/finetune_classification.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    meta = {
        "command": command,
        "recipe": vars(recipe) if hasattr(recipe, "__dict__") else {},
        "folds": {fold: {k: len(v) for k, v in parts.items()} for fold, parts in folds.items()},
        "minutes": round((time.time() - start) / 60, 1),
    }
    intro = args.note + ("\n\n" if args.note else "") + f"Command: `{command}`\n\n"
    write_results(summary, records, meta, args.out, intro)
    print(open(args.out).read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
