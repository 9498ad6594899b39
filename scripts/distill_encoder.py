#!/usr/bin/env python
r"""Distil a trained UltraSam model's image encoder into the small `nano` encoder (images only).

    python scripts/distill_encoder.py --teacher ultrasam_hf/assets/ultrasam-lite-us --data us43d_build \
        --per-dataset 200 --cache-dir teacher_cache --steps 1500 --out ultrasam-nano-us

The teacher's embeddings of the `--split` images of every built dataset (at most `--per-dataset` each, seeded) are
computed once into `--cache-dir` (reused by a rerun with the same teacher); the student (`--preset`, default `nano`)
gets the teacher's prompt encoder and mask decoder, frozen, and its encoder learns to reproduce the embeddings (MSE).
`--encoder FIELD=VALUE ...` reshapes the fresh student (e.g. a wider `nano`).
The output folder is a complete model (weights, processor, card, remote code) plus `distillation_log.json` (the
settings, the images used per dataset, the loss curve). Library code: `ultrasam_hf.training.distillation`.

`--student-only` writes the untrained student (a fresh `--preset` encoder under the teacher's frozen prompt encoder
and mask decoder) and stops: the `--init` of `pretrain.py --distill-teacher TEACHER --distill-only`, which distils on
a training pack's images with the teacher running on each batch (on a GPU; `scripts/distill_nano.sh`).
"""

import argparse
import collections
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from ultrasam_hf.inference.model_loading import load_model_and_processor
from ultrasam_hf.models.modeling_ultrasam import UltraSamModel
from ultrasam_hf.training.data import load_split, rows_per_dataset
from ultrasam_hf.training.distillation import (
    DistillationConfig,
    DistillationPairs,
    distill_encoder,
    student_from_teacher,
    teacher_geometry_problem,
)
from ultrasam_hf.training.embedding_cache import build_embedding_cache
from ultrasam_hf.training.teacher_runtime import TEACHER_RUNTIMES, teacher_encoder
from ultrasam_hf.training.variants import apply_variant, export_model


def parse_args(argv=None):
    defaults = DistillationConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="ultrasam_hf/assets/ultrasam-lite-us", help="trained model folder")
    parser.add_argument("--data", nargs="+", help="US-43d build folder(s)")
    parser.add_argument("--datasets", nargs="+", help="dataset slugs (default: every built one)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--per-dataset", type=int, help="at most this many images of each dataset")
    parser.add_argument("--cache-dir", help="where the teacher's embeddings are kept")
    parser.add_argument("--cache-flips", action="store_true", help="also embed mirrored images (2x the teacher cost)")
    parser.add_argument(
        "--cache-batch-size", type=int, default=1, help="teacher batch (on a 2-core CPU, 1 is the fastest)"
    )
    parser.add_argument(
        "--teacher-runtime",
        choices=TEACHER_RUNTIMES,
        default="auto",
        help="where the teacher embeds the cache's images: onnx (its ONNX Runtime graph, exported once into the cache; "
        "about 3x faster on a CPU), pytorch, or auto (onnx where onnxruntime is installed)",
    )
    parser.add_argument("--preset", default="nano", help="the student's encoder")
    parser.add_argument(
        "--encoder",
        nargs="+",
        default=[],
        metavar="FIELD=VALUE",
        help="set fields of the fresh student's vision config, e.g. a wider nano: nano_embed_dims=64,128,256 "
        "nano_depths=2,3,4 nano_num_heads=8 (comma-separated values are lists)",
    )
    parser.add_argument(
        "--student", help="continue from this distilled student (its encoder; a fresh --preset one otherwise)"
    )
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps)
    parser.add_argument("--num-workers", type=int, default=defaults.num_workers)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", required=True, help="output model folder")
    parser.add_argument("--student-only", action="store_true", help="write the untrained student and stop")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if not args.student_only and not (args.data and args.cache_dir):
        parser.error("--data and --cache-dir are required (except with --student-only)")
    if args.student_only and args.student:
        parser.error("--student-only writes an untrained student; --student continues a trained one: pick one")
    if args.encoder and args.student:
        parser.error("--encoder shapes a fresh student; --student continues one whose shape is fixed: pick one")
    try:
        args.encoder = dict(parse_field(setting) for setting in args.encoder)
    except ValueError as error:
        parser.error(f"--encoder: {error}")
    return args


def parse_field(setting: str):
    """`"nano_depths=2,3,4"` -> `("nano_depths", [2, 3, 4])`; a value without commas is an int, a float or text."""
    name, separator, value = setting.partition("=")
    if not separator or not name or not value:
        raise ValueError(f"expected FIELD=VALUE, got {setting!r}")

    def number(text):
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    return name, [number(part) for part in value.split(",")] if "," in value else number(value)


def main(argv=None):
    args = parse_args(argv)
    config = DistillationConfig(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(DistillationConfig)}
    )
    teacher, processor = load_model_and_processor(args.teacher, UltraSamModel)
    teacher.eval()
    if args.student:
        student = apply_variant(load_model_and_processor(args.student, UltraSamModel)[0], "encoder-only")
        problem = teacher_geometry_problem(teacher.config, student.config)
        if problem:
            raise SystemExit(f"--teacher {args.teacher} {problem}")
    else:
        torch.manual_seed(args.seed)  # the student's initial encoder
        try:
            student = student_from_teacher(teacher, args.preset, args.encoder)
        except ValueError as error:
            raise SystemExit(f"--preset {args.preset} --encoder ...: {error}") from None
    if args.student_only:
        record = {"variant": f"untrained {args.preset} encoder under the teacher's decoder", "init": args.teacher}
        print(f"saved {export_model(student, args.out, processor, training_record=record)}")
        return
    rows = rows_per_dataset(load_split(args.data, args.split, args.datasets), args.per_dataset, args.seed)
    images = dict(sorted(collections.Counter(rows["dataset"]).items()))
    print(f"{len(rows)} {args.split} images: {images}")

    started = time.perf_counter()
    cache = build_embedding_cache(
        teacher,
        rows,
        processor.image_processor,
        args.cache_dir,
        flips=args.cache_flips,
        batch_size=args.cache_batch_size,
        progress=not args.no_progress,
        vision_encoder=teacher_encoder(teacher, args.teacher, args.teacher_runtime, "cpu", processor),
    )
    cache_seconds = time.perf_counter() - started
    pairs = DistillationPairs(rows, processor.image_processor, cache)
    started = time.perf_counter()
    losses = distill_encoder(student, pairs, config, progress=not args.no_progress)
    train_seconds = time.perf_counter() - started

    record = {
        "variant": f"distillation ({student.config.preset} encoder, MSE to the teacher's embeddings)",
        "init": args.student or args.teacher,
        "datasets": sorted(images),
        "max_steps": config.steps,
        "learning_rate": config.learning_rate,
    }
    out = export_model(student, args.out, processor, training_record=record)
    log = {
        "teacher": args.teacher,
        "teacher_runtime": args.teacher_runtime,
        "preset": student.config.preset,
        "encoder_overrides": args.encoder,
        "continued_from": args.student,
        "split": args.split,
        "images": images,
        "pairs": len(pairs),
        "config": config.to_dict(),
        "teacher_cache_seconds": round(cache_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "final_mse": float(np.mean(losses[-50:])),
        "loss_every_10_steps": [round(float(np.mean(losses[i : i + 10])), 5) for i in range(0, len(losses), 10)],
    }
    (Path(out) / "distillation_log.json").write_text(json.dumps(log, indent=1))
    print(f"saved {out}: final MSE {log['final_mse']:.4f} ({train_seconds / 60:.1f} min of training)")


if __name__ == "__main__":
    main()
