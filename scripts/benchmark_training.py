#!/usr/bin/env python
"""Training throughput of each variant on this machine: samples (images) per second of one optimizer step
(forward + backward + AdamW) on the `lite` preset (TinyViT, 256 px), batch 4, a few steps after warm-up.

    python scripts/benchmark_training.py [--preset lite] [--batch-size 4] [--instances 4] [--steps 3] [--out docs/training_throughput.md]

Inputs are synthetic (random pixels, elliptical instances, half box / half point prompts), so the numbers measure the
model, not the data pipeline. `frozen-encoder` reads precomputed embeddings (here random tensors of the right shape);
the cost of building its cache (one encoder forward per image and orientation) is reported on its own line.
`full` is the baseline of the speed-up column.
"""

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from ultrasam_hf import UltraSamConfig, UltraSamModel
from ultrasam_hf.training.module import UltraSamTrainingModule
from ultrasam_hf.training.prompt_sampling import BOX, POINT
from ultrasam_hf.training.trainer import low_res_size
from ultrasam_hf.training.variants import VARIANTS, apply_variant, count_parameters, trains_encoder


def synthetic_batch(config, batch_size: int, instances: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    size, low = int(config.prompt_encoder_config.image_size), low_res_size(config)
    yy, xx = np.mgrid[:low, :low]
    masks, prompts, kinds, index = [], [], [], []
    for image in range(batch_size):
        for k in range(instances):
            cy, cx, ry, rx = rng.uniform(0.3, 0.7) * low, rng.uniform(0.3, 0.7) * low, rng.uniform(0.05, 0.2) * low, rng.uniform(0.05, 0.2) * low
            masks.append(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1)
            scale = size / low
            kinds.append(BOX if k % 2 == 0 else POINT)
            prompts.append([(cx - rx) * scale, (cy - ry) * scale, (cx + rx) * scale, (cy + ry) * scale] if k % 2 == 0 else [cx * scale, cy * scale, 0, 0])
            index.append(image)
    return {
        "pixel_values": torch.rand(batch_size, 3, size, size),
        "image_index": torch.tensor(index),
        "prompt_types": torch.tensor(kinds),
        "prompts": torch.tensor(prompts, dtype=torch.float32),
        "masks": torch.from_numpy(np.stack(masks)),
    }


def time_variant(preset: str, variant: str, batch: dict, steps: int, warmup: int) -> tuple[float, int, int]:
    torch.manual_seed(0)
    model = apply_variant(UltraSamModel(UltraSamConfig.from_preset(preset)), variant)
    trainable, total = count_parameters(model)
    module = UltraSamTrainingModule(model, train_encoder=trains_encoder(variant)).train()
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-4)
    inputs = dict(batch)
    if variant == "frozen-encoder":
        with torch.no_grad():
            inputs["image_embeddings"] = model.get_image_embeddings(batch["pixel_values"])
        inputs.pop("pixel_values")
    timings = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        loss = module(inputs)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in module.parameters() if p.requires_grad], 0.1)
        optimizer.step()
        optimizer.zero_grad()
        if step >= warmup:
            timings.append(time.perf_counter() - start)
    return batch["pixel_values"].shape[0] / float(np.median(timings)), trainable, total


def time_cache(preset: str, batch: dict, steps: int) -> float:
    model = UltraSamModel(UltraSamConfig.from_preset(preset)).eval()
    with torch.no_grad():
        model.get_image_embeddings(batch["pixel_values"])
        start = time.perf_counter()
        for _ in range(steps):
            model.get_image_embeddings(batch["pixel_values"])
    return steps * batch["pixel_values"].shape[0] / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--instances", type=int, default=4, help="prompts per image")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--out", default="docs/training_throughput.md")
    args = parser.parse_args(argv)

    config = UltraSamConfig.from_preset(args.preset)
    batch = synthetic_batch(config, args.batch_size, args.instances)
    rows = []
    for variant in args.variants:
        rate, trainable, total = time_variant(args.preset, variant, batch, args.steps, args.warmup)
        rows.append((variant, rate, trainable, total))
        print(f"{variant:>15}: {rate:7.2f} samples/s  ({trainable:,} / {total:,} trainable)", flush=True)
    cache_rate = time_cache(args.preset, batch, args.steps)
    baseline = next((rate for variant, rate, *_ in rows if variant == "full"), rows[0][1])
    size = config.prompt_encoder_config.image_size
    lines = [
        "# Training throughput per variant (CPU)",
        "",
        f"`python scripts/benchmark_training.py --preset {args.preset} --batch-size {args.batch_size} --instances {args.instances} "
        f"--steps {args.steps}` on {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}. Preset `{args.preset}` ({size} px), batch {args.batch_size} images x {args.instances} prompts "
        f"(half boxes, half points), no clicks; one optimizer step = forward + backward + clip + AdamW; median of "
        f"{args.steps} steps after {args.warmup} warm-up step(s). Synthetic inputs: model cost only.",
        "",
        "| variant | samples/s | speed-up vs full | trainable parameters |",
        "|---|---:|---:|---:|",
    ]
    for variant, rate, trainable, total in rows:
        lines.append(f"| {variant} | {rate:.2f} | {rate / baseline:.1f}x | {trainable:,} / {total:,} |")
    lines += [
        "",
        f"`frozen-encoder` excludes building its embedding cache: {cache_rate:.2f} images/s here (one no-grad encoder forward per "
        "image and orientation, paid once; twice with flips cached).",
        "",
        "Numbers come from a shared 2-core machine and move with its load; compare rows of one run, not across runs.",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
