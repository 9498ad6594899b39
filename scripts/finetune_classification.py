#!/usr/bin/env python
r"""Prompted classification: BUS-BRA benign / malignant (official patient-level folds) or the labelled objects of any
built dataset (e.g. USGRA nerve / vessel), the object's box as prompt.

    ultrasam data build bus-bra --raw ../shared/us/bus-bra --out us43d_build
    python scripts/finetune_classification.py --shards us43d_build --raw ../shared/us/bus-bra \
        --init path/to/ultrasam-lite --variant full lora head image-linear --folds 1 2 3 4 5 --cache-dir cache
    python scripts/finetune_classification.py --shards us43d_build --dataset usgra --init path/to/ultrasam-lite \
        --variant head image-linear --cache-dir cache

BUS-BRA rows (images, lesion masks, pathology) come from the built shards (`--shards`); the official folds
(`5-fold-cv.csv`) are release metadata the shards do not carry, so they are read from the raw folder (`--raw`).
Another `--dataset` classifies each object's `--label-field` (default `category`) with its build's split as the
single fold. Compares, per initialisation (`--init`: saved UltraSam folders, or `preset:<name>` for random
weights), the prompted head trained end to end (`full`), with LoRA (`lora`) or alone on the frozen model (`head`),
against the image-level baselines (`image-linear`: frozen encoder + linear head; `image-full`: encoder fine-tuned).
`--cache-dir` keeps the frozen models' per-object head inputs, so a rerun (or an interrupted run) skips the encoder.
Metrics (local `evaluate` module): AUC, balanced accuracy, F1, accuracy of the pooled out-of-fold predictions with
95 % intervals from a bootstrap over patients, the mean ± std of AUC over folds, and the paired differences to the
first `--init`; writes a Markdown table (`--out`) and JSON next to it. Library code:
`ultrasam_hf.downstream.classification`.
"""

import sys
import time

import numpy as np

from ultrasam_hf.data import decoded_rows
from ultrasam_hf.downstream.classification import (
    VARIANTS,
    ClassificationArguments,
    run_classification_benchmark,
    write_results,
)
from ultrasam_hf.downstream.data import bus_bra_folds
from ultrasam_hf.downstream.scripts import report_intro, script_parser


def parse_args(argv=None):
    parser = script_parser(__file__, __doc__, "docs/classification_results.md")
    parser.add_argument(
        "--raw", default="../shared/us/bus-bra", help="raw BUS-BRA folder, for the official folds table"
    )
    parser.add_argument(
        "--dataset",
        default="bus-bra",
        help="bus-bra (official 5 folds) or another built dataset with labelled objects (its split: one fold)",
    )
    parser.add_argument(
        "--label-field", help="object field to classify (default: class_label for bus-bra, else category)"
    )
    parser.add_argument("--variant", nargs="+", default=["full", "lora", "head", "image-linear"], choices=VARIANTS)
    parser.add_argument("--folds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--folds-file", default="5-fold-cv.csv")
    parser.add_argument("--max-train", type=int, help="subsample each fold's training images (small-scale runs)")
    parser.add_argument("--max-test", type=int, help="subsample each fold's test images (small-scale runs)")
    parser.add_argument(
        "--patient-fraction",
        type=float,
        default=1.0,
        help="keep this seeded random fraction of the patients (all their images, in every fold): a smaller run "
        "whose folds keep the official patient-level assignment",
    )
    parser.add_argument("--steps", type=int, default=ClassificationArguments.steps)
    parser.add_argument("--head-steps", type=int, default=ClassificationArguments.head_steps)
    parser.add_argument("--batch-size", type=int, default=ClassificationArguments.batch_size)
    parser.add_argument("--lr", type=float, default=ClassificationArguments.learning_rate)
    parser.add_argument("--head-lr", type=float, default=ClassificationArguments.head_learning_rate)
    parser.add_argument("--mask-loss-weight", type=float, default=ClassificationArguments.mask_loss_weight)
    parser.add_argument(
        "--bootstrap-resamples", type=int, default=ClassificationArguments.bootstrap_resamples, help="per interval"
    )
    parser.add_argument(
        "--raw-features", action="store_true", help="cached variants: do not standardise the frozen features"
    )
    parser.add_argument("--lora-rank", type=int, default=ClassificationArguments.lora_rank)
    parser.add_argument(
        "--cache-dir",
        help="keep the frozen models' per-image head inputs here: a rerun (or an interrupted run) skips the encoder",
    )
    return parser.parse_args(argv)


def bus_bra_rows_and_folds(args, rng):
    """BUS-BRA: the official patient-level folds (raw `5-fold-cv.csv`) and the rows they name."""
    all_folds = bus_bra_folds(args.raw, args.folds_file)
    folds = {}
    for fold in args.folds:
        train, test = list(all_folds[fold]["train"]), list(all_folds[fold]["test"])
        if args.max_train and len(train) > args.max_train:
            train = sorted(rng.choice(train, args.max_train, replace=False).tolist())
        if args.max_test and len(test) > args.max_test:
            test = sorted(rng.choice(test, args.max_test, replace=False).tolist())
        folds[fold] = {"train": train, "test": test}
    needed = {i for parts in folds.values() for i in parts["train"] + parts["test"]}
    rows = decoded_rows(args.shards, "bus-bra", image_ids=needed)  # every split of the build: the folds decide
    missing = needed - {row["image_id"] for row in rows}
    if missing:
        print(
            f"warning: {len(missing)} fold image(s) not in the shards (skipped at build?), e.g. {sorted(missing)[:3]}"
        )
    return rows, folds


def split_rows_and_fold(args):
    """Another dataset: its build's split (train + validation to train, test to test) as the single fold."""
    rows = decoded_rows(args.shards, args.dataset)
    if not rows:
        raise SystemExit(f"no {args.dataset} rows in {args.shards}: build it first (ultrasam data build)")
    parts = {"train": [], "test": []}
    for row in rows:
        parts["test" if row["split"] == "test" else "train"].append(row["image_id"])
    return rows, {1: parts}


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    if args.dataset == "bus-bra":
        rows, folds = bus_bra_rows_and_folds(args, rng)
        label_field, label_names = args.label_field or "class_label", ClassificationArguments().label_names
    else:
        rows, folds = split_rows_and_fold(args)
        label_field = args.label_field or "category"
        label_names = sorted(
            {obj[label_field] for row in rows for obj in row["objects"] if obj.get(label_field) is not None}
        )
        if len(label_names) < 2:
            raise SystemExit(f"{args.dataset}: `{label_field}` has {label_names}: nothing to classify")
    if args.patient_fraction < 1:
        patients = sorted({row["group_id"] for row in rows})
        kept = set(rng.choice(patients, max(1, round(len(patients) * args.patient_fraction)), replace=False))
        rows = [row for row in rows if row["group_id"] in kept]
        print(
            f"--patient-fraction {args.patient_fraction}: {len(kept)} of {len(patients)} patients, {len(rows)} images"
        )
    recipe = ClassificationArguments(
        steps=args.steps,
        head_steps=args.head_steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        head_learning_rate=args.head_lr,
        mask_loss_weight=args.mask_loss_weight,
        lora_rank=args.lora_rank,
        lora_alpha=args.lora_rank,
        standardize_features=not args.raw_features,
        bootstrap_resamples=args.bootstrap_resamples,
        label_names=label_names,
        label_field=label_field,
        seed=args.seed,
    )
    start = time.time()
    records, summary = run_classification_benchmark(
        args.init, args.variant, rows, folds, recipe, cache_dir=args.cache_dir, progress=True
    )
    command, intro = report_intro(__file__, argv, args.note)
    meta = {
        "command": command,
        "recipe": vars(recipe) if hasattr(recipe, "__dict__") else {},
        "dataset": args.dataset,
        "label_names": label_names,
        "folds": {fold: {k: len(v) for k, v in parts.items()} for fold, parts in folds.items()},
        "minutes": round((time.time() - start) / 60, 1),
    }
    write_results(summary, records, meta, args.out, intro)
    print(open(args.out).read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
