#!/usr/bin/env python
"""Training throughput of each variant on this machine: samples (images) per second of one optimizer step
(forward + backward + AdamW) on the `lite` preset (TinyViT, 256 px), batch 4, a few steps after warm-up.

    python scripts/benchmark_training.py [--preset lite] [--batch-size 4] [--instances 4] [--steps 3] [--out docs/training_throughput.md]

Inputs are synthetic (random pixels, elliptical instances, prompts sampled as in training), so the numbers measure
the model, not the data pipeline (`--pipeline` measures the whole step on real data). `frozen-encoder` reads
precomputed embeddings and `late-encoder` precomputed TinyViT features at the input of stage `--frozen-stages` (both
computed once here, before the timed steps, as the cache would hold them); the cost of building each cache (one no-grad
forward of the frozen part per image and orientation) is reported on its own line. `full` is the baseline of the
speed-up column; `--sam-decoder` adds a row per variant with SAM's decoder (`--no-split-decoder` in training).
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from benchmark import cpu_name  # scripts/benchmark.py, next to this script

from ultrasam_hf import UltraSamConfig, UltraSamModel
from ultrasam_hf.models.transforms import low_res_size
from ultrasam_hf.training.module import UltraSamTrainingModule
from ultrasam_hf.training.variants import (
    CACHED_VARIANTS,
    DEFAULT_FROZEN_STAGES,
    EMBEDDING_VARIANTS,
    VARIANTS,
    apply_variant,
    count_parameters,
    late_encoder_problem,
    trains_encoder,
)


def synthetic_batch(config, batch_size: int, instances: int, seed: int = 0, device="cpu") -> dict:
    """Random pixels and `instances` elliptical masks per image, in the training module's batch format."""
    rng = np.random.default_rng(seed)
    size, low = int(config.prompt_encoder_config.image_size), low_res_size(config)
    yy, xx = np.mgrid[:low, :low]
    masks = []
    for _ in range(batch_size * instances):
        cy, cx = rng.uniform(0.3, 0.7, 2) * low
        ry, rx = rng.uniform(0.05, 0.2, 2) * low
        masks.append(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1)
    return {
        "pixel_values": torch.rand(batch_size, 3, size, size, device=device),
        "image_index": torch.arange(batch_size, device=device).repeat_interleave(instances),
        "masks": torch.from_numpy(np.stack(masks)).to(device),
    }


def time_variant(
    preset: str,
    variant: str,
    batch: dict,
    steps: int,
    warmup: int,
    frozen_stages: int = DEFAULT_FROZEN_STAGES,
    split_decoder: bool = True,
) -> tuple[float, int, int]:
    torch.manual_seed(0)
    model = apply_variant(UltraSamModel(UltraSamConfig.from_preset(preset)), variant, frozen_stages=frozen_stages)
    trainable, total = count_parameters(model)
    split = frozen_stages if variant == "late-encoder" else None
    module = UltraSamTrainingModule(
        model, train_encoder=trains_encoder(variant), frozen_stages=split, split_decoder=split_decoder
    )
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-4)
    inputs = dict(batch)
    if variant in CACHED_VARIANTS:  # what the cache holds: computed once, in eval mode
        with torch.no_grad():
            model.eval()
            if variant in EMBEDDING_VARIANTS:
                inputs["image_embeddings"] = model.get_image_embeddings(batch["pixel_values"])
            else:
                inputs["encoder_features"] = model.vision_encoder.up_to_stage(split, batch["pixel_values"])
        inputs.pop("pixel_values")
    module.train()
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


def time_cache(preset: str, batch: dict, steps: int, frozen_stages: int | None = None) -> float:
    """Images/s of building a cache: the whole encoder (frozen-encoder), or its part up to stage `frozen_stages`
    (late-encoder); no grad, eval mode, one warm-up pass."""
    model = UltraSamModel(UltraSamConfig.from_preset(preset)).eval()

    def embed():
        if frozen_stages is None:
            return model.get_image_embeddings(batch["pixel_values"])
        return model.vision_encoder.up_to_stage(frozen_stages, batch["pixel_values"])

    with torch.no_grad():
        embed()
        start = time.perf_counter()
        for _ in range(steps):
            embed()
    return steps * batch["pixel_values"].shape[0] / (time.perf_counter() - start)


def _step_timer(device):
    def now():
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    return now


def pipeline_benchmark(args) -> list[str]:
    """Images/s of: the model alone on a synthetic batch, each loader alone, and loader + model end to end."""
    from ultrasam_hf.training.data import ExampleBuilder, MixingSampler, TrainDataset, collate, load_split
    from ultrasam_hf.training.losses import LossWeights
    from ultrasam_hf.training.pack import ResidentBatches
    from ultrasam_hf.training.trainer import configure_device, make_image_processor

    device = torch.device(args.device)
    configure_device(device)
    now = _step_timer(device)
    model = (
        UltraSamModel.from_pretrained(args.init)
        if args.init
        else UltraSamModel(UltraSamConfig.from_preset(args.preset))
    ).to(device)
    processor = make_image_processor(model.config, args.init)
    if args.compile:
        model.vision_encoder.compile()
    module = UltraSamTrainingModule(
        model, LossWeights(iou_all_masks=True), clicks=args.clicks, multimask_boxes=False, point_sampling="mixed"
    ).train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-5)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

    def train_step(batch):
        with autocast:
            loss = module(batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 0.1)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def rate(batches, step, count):
        iterator = iter(batches)
        for _ in range(args.warmup):
            step(next(iterator))
        start, images = now(), 0
        for _ in range(count):
            batch = next(iterator)
            step(batch)
            images += batch["pixel_values"].shape[0]
        return images / (now() - start)

    def forever(make):
        epoch = 0
        while True:
            yield from make(epoch)
            epoch += 1

    pack = ResidentBatches(args.pack, processor, device, batch_size=args.batch_size, max_instances=args.max_instances)
    instances = max(1, round(float(pack.instance_count.clamp(max=args.max_instances).float().mean())))

    def pack_epoch(epoch):
        pack.set_epoch(epoch)
        return iter(pack)

    results = {}
    synthetic = synthetic_batch(model.config, args.batch_size, instances, device=device)
    results["model only (synthetic batch)"] = rate(
        forever(lambda epoch: iter([synthetic] * 1000)), train_step, args.steps
    )
    results["pack loader alone"] = rate(forever(pack_epoch), lambda batch: None, args.steps)
    results["end to end, pack"] = rate(forever(pack_epoch), train_step, args.steps)
    if args.data:
        rows = load_split(args.data, "train")
        size = int(model.config.prompt_encoder_config.image_size)
        builder = ExampleBuilder(processor, size, low_res_size(model.config), max_instances=args.max_instances)
        sampler = MixingSampler(list(rows["dataset"]))
        loader = torch.utils.data.DataLoader(
            TrainDataset(rows, builder),
            batch_size=args.batch_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=args.num_workers,
            persistent_workers=args.num_workers > 0,
        )

        def shard_batches(epoch):
            sampler.set_epoch(epoch)
            for batch in loader:
                yield {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}

        results[f"shard loader alone ({args.num_workers} workers)"] = rate(
            forever(shard_batches), lambda batch: None, args.steps
        )
        results[f"end to end, shards ({args.num_workers} workers)"] = rate(
            forever(shard_batches), train_step, args.steps
        )
    model_rate = results["model only (synthetic batch)"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    lines = [
        f"# Training pipeline throughput ({device.type})",
        "",
        f"`python scripts/benchmark_training.py {' '.join(args.argv)}` on {name}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads. Model {args.init or args.preset}, variant full, batch {args.batch_size} images, "
        f"~{instances} instances per image (the pack's mean, capped at {args.max_instances}), {args.clicks} click round(s), "
        f"bf16 autocast {'on' if args.bf16 else 'off'}, torch.compile {'on' if args.compile else 'off'}; "
        f"{args.steps} timed steps after {args.warmup} warm-up. One step = forward + backward + clip + AdamW.",
        "",
        "| what | images/s | model-only / this |",
        "|---|---:|---:|",
    ]
    for label, value in results.items():
        lines.append(f"| {label} | {value:.3g} | {model_rate / value:.2f}x |")
    lines += ["", "Rows of one run compare; the end-to-end target is within 1.5x of the model-only rate.", ""]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--instances", type=int, default=4, help="prompts per image")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--frozen-stages", type=int, default=DEFAULT_FROZEN_STAGES, help="late-encoder's split")
    parser.add_argument("--out", default="docs/training_throughput.md")
    parser.add_argument(
        "--sam-decoder",
        action="store_true",
        help="also time each variant with SAM's decoder instead of the split decoder (--no-split-decoder)",
    )
    pipeline = parser.add_argument_group("--pipeline: the whole training step on real data (pack and shards)")
    pipeline.add_argument("--pipeline", action="store_true")
    pipeline.add_argument("--pack", help="training pack (scripts/make_training_pack.py)")
    pipeline.add_argument("--data", help="shard folder, to compare the shard data loader")
    pipeline.add_argument("--init", help="model folder (default: the --preset, random weights)")
    pipeline.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    pipeline.add_argument("--bf16", action="store_true")
    pipeline.add_argument("--compile", action="store_true")
    pipeline.add_argument("--clicks", type=int, default=1)
    pipeline.add_argument("--max-instances", type=int, default=20)
    pipeline.add_argument("--num-workers", type=int, default=0)
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else __import__("sys").argv[1:])
    if args.pipeline:
        if not args.pack:
            parser.error("--pipeline needs --pack")
        lines = pipeline_benchmark(args)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines))
        print("\n".join(lines))
        return 0

    config = UltraSamConfig.from_preset(args.preset)
    variants = list(args.variants)
    if "late-encoder" in variants and late_encoder_problem(config.vision_config, args.frozen_stages):
        print(f"skipping late-encoder: {late_encoder_problem(config.vision_config, args.frozen_stages)}")
        variants.remove("late-encoder")
    batch = synthetic_batch(config, args.batch_size, args.instances)
    rows = []
    for variant in variants:
        for split_decoder in (True, False) if args.sam_decoder else (True,):
            rate, trainable, total = time_variant(
                args.preset, variant, batch, args.steps, args.warmup, args.frozen_stages, split_decoder
            )
            name = variant if split_decoder else f"{variant}, SAM's decoder"
            rows.append((name, rate, trainable, total))
            print(f"{name:>15}: {rate:7.2f} samples/s  ({trainable:,} / {total:,} trainable)", flush=True)
    cache_lines = []
    cached = [variant for variant in variants if variant in EMBEDDING_VARIANTS]
    if cached or not variants:
        rate = time_cache(args.preset, batch, args.steps)
        print(f"embedding cache: {rate:.2f} images/s", flush=True)
        names = " and ".join(f"`{variant}`" for variant in cached or ["frozen-encoder"])
        cache_lines.append(
            f"{names} exclude{'s' if len(cached) < 2 else ''} building the embedding cache: {rate:.2f} images/s here "
            "(one no-grad encoder forward per image and orientation, paid once; twice with flips cached)."
        )
    if "late-encoder" in variants:
        rate = time_cache(args.preset, batch, args.steps, args.frozen_stages)
        print(f"late-encoder cache: {rate:.2f} images/s", flush=True)
        cache_lines.append(
            f"`late-encoder` (`--frozen-stages {args.frozen_stages}`) excludes building its feature cache: {rate:.2f} "
            f"images/s here ({1 / rate:.3g} s per image: one no-grad forward of the patch embedding and stages "
            f"0..{args.frozen_stages - 1} per image and orientation, paid once; twice with flips cached)."
        )
    baseline = next((rate for variant, rate, *_ in rows if variant == "full"), rows[0][1])
    size = config.prompt_encoder_config.image_size
    command = (
        f"--preset {args.preset} --batch-size {args.batch_size} --instances {args.instances} --steps {args.steps}"
    )
    if args.warmup != 1:
        command += f" --warmup {args.warmup}"
    if variants != list(VARIANTS):
        command += f" --variants {' '.join(variants)}"
    if "late-encoder" in variants and args.frozen_stages != DEFAULT_FROZEN_STAGES:
        command += f" --frozen-stages {args.frozen_stages}"
    if args.sam_decoder:
        command += " --sam-decoder"
    lines = [
        "# Training throughput per variant (CPU)",
        "",
        f"`python scripts/benchmark_training.py {command}` on {cpu_name()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}. Preset `{args.preset}` ({size} px), batch {args.batch_size} images x {args.instances} prompts "
        f"(half boxes, half points), no clicks; one optimizer step = forward + backward + clip + AdamW; median of "
        f"{args.steps} steps after {args.warmup} warm-up step(s). Synthetic inputs: model cost only. Prompts are "
        "decoded by the split decoder (`training/split_decoding.py`) except in the rows marked SAM's decoder.",
        "",
        "| variant | samples/s | speed-up vs full | trainable parameters |",
        "|---|---:|---:|---:|",
    ]
    for variant, rate, trainable, total in rows:
        lines.append(f"| {variant} | {rate:.2f} | {rate / baseline:.1f}x | {trainable:,} / {total:,} |")
    for line in cache_lines:
        lines += ["", line]
    lines += [
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
