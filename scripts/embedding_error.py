#!/usr/bin/env python
r"""How far each distilled student's image embedding is from its teacher's, dataset by dataset.

    python scripts/embedding_error.py --teacher ultrasam_hf/assets/ultrasam-lite-us --models nano-a nano-b \
        --data us43d_build --split test --per-dataset 12

For `--per-dataset` images of each dataset (a seeded draw, as `distill_encoder.py` picks them), the mean squared
error of each student's embedding to the teacher's over the variance of the teacher's (0: a copy; 1: no better than the
teacher's mean; the term `pretrain.py --distill-teacher` trains). Prints a Markdown table; `--out` also writes JSON.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

from ultrasam_hf.inference.model_loading import load_model_and_processor
from ultrasam_hf.models.modeling_ultrasam import UltraSamModel
from ultrasam_hf.training.data import load_split, rows_per_dataset
from ultrasam_hf.training.distillation import embedding_error_by_dataset, teacher_geometry_problem


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="ultrasam_hf/assets/ultrasam-lite-us", help="the model distilled from")
    parser.add_argument("--models", nargs="+", required=True, help="student model folders")
    parser.add_argument("--data", nargs="+", required=True, help="US-43d build folder(s)")
    parser.add_argument("--datasets", nargs="+", help="dataset slugs (default: every built one)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--per-dataset", type=int, default=12, help="at most this many images of each dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the table as JSON here")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    teacher, processor = load_model_and_processor(args.teacher, UltraSamModel)
    names = [Path(folder).name for folder in args.models]
    if len(set(names)) < len(names):  # two folders of one name: tell them apart by path
        names = list(args.models)
    students = {}
    for name, folder in zip(names, args.models):
        student = load_model_and_processor(folder, UltraSamModel)[0]
        problem = teacher_geometry_problem(teacher.config, student.config)
        if problem:
            raise SystemExit(f"--teacher {args.teacher} {problem} ({folder})")
        students[name] = student.eval()
    rows = rows_per_dataset(load_split(args.data, args.split, args.datasets), args.per_dataset, args.seed)
    table = embedding_error_by_dataset(
        teacher.eval(), students, rows, processor.image_processor, progress=not args.no_progress
    )
    images = dict(sorted(collections.Counter(rows["dataset"]).items()))
    print(f"| dataset | images | {' | '.join(students)} |")
    print(f"|---|---|{'---|' * len(students)}")
    for dataset in sorted(table):
        errors = " | ".join(f"{table[dataset][name]:.3f}" for name in students)
        print(f"| {dataset} | {images[dataset]} | {errors} |")
    if args.out:
        record = {"teacher": args.teacher, "split": args.split, "images": images, "relative_error": table}
        Path(args.out).write_text(json.dumps(record, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
