"""The UltraSam training loop on Accelerate: single process, multi-process DDP (GPU or CPU/gloo), FSDP.

`train(config)` is all `scripts/pretrain.py` calls. Resuming is exact on a CPU: the data order is a function of
(seed, epoch) (`MixingSampler`), every sample's randomness of (seed, epoch, position) (`ExampleBuilder`), the
consumed batches of the current epoch are skipped with `accelerator.skip_first_batches`, and the click-simulation RNG
is saved per rank next to `accelerator.save_state`'s model / optimizer / scheduler / RNG files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, DistributedType, set_seed

from ..data.manifest import training_licence_mix
from ..models.errors import CheckpointError, CheckpointNotFoundError, UltraSamError
from ..models.transforms import low_res_size
from .config import TRAINING_DATA, TRAINING_RECORD, TrainingConfig, dataset_factors, flat_config
from .data import (
    ExampleBuilder,
    MixingSampler,
    StreamingTrainDataset,
    TrainDataset,
    collate,
    load_split,
    rows_per_dataset,
)
from .embedding_cache import build_embedding_cache
from .evaluation import evaluate_dice, flatten_results, summary_line
from .losses import LossWeights
from .module import LOGGED, UltraSamTrainingModule
from .teacher_runtime import teacher_encoder
from .trackers import resolve_trackers
from .variants import CACHED_VARIANTS, apply_variant, check_split, count_parameters, export_model, trains_encoder


def load_model_config(init: str | None, preset: str | None):
    """The UltraSam config of `init` (a model folder, shipped model name or Hub id) or of a preset."""
    from ..inference.model_loading import resolve_model_folder
    from ..models.configuration_ultrasam import UltraSamConfig

    if init:
        return UltraSamConfig.from_pretrained(resolve_model_folder(init))
    return UltraSamConfig.from_preset(preset or "vit-b")


def load_model(config: TrainingConfig):
    from ..models.modeling_ultrasam import UltraSamModel

    if config.init:
        from ..inference.model_loading import load_model as load_strictly

        return load_strictly(config.init, UltraSamModel)  # a folder that is not a complete model is an error
    return UltraSamModel(load_model_config(None, config.preset))


def load_teacher(folder: str | None, device):
    """The frozen model of the folder `--distill-teacher` names (None without one)."""
    if not folder:
        return None
    from ..inference.model_loading import load_model as load_strictly
    from ..models.modeling_ultrasam import UltraSamModel

    return load_strictly(folder, UltraSamModel).to(device).eval().requires_grad_(False)


def make_image_processor(model_config, init: str | None = None):
    """The processor the checkpoint was saved with, else the one its config implies (`from_model_config`)."""
    from ..inference.model_loading import load_processor

    if init:
        return load_processor(init, model_config).image_processor
    from ..models.image_processing_ultrasam import UltraSamImageProcessor

    return UltraSamImageProcessor.from_model_config(model_config)


def make_processor(image_processor):
    from ..models.processing_ultrasam import UltraSamProcessor

    return UltraSamProcessor(image_processor)


def lr_lambda(warmup_steps: int, start_factor: float, milestones, gamma: float):
    """mmengine's LinearLR warm-up (start_factor -> 1 over warmup_steps) times MultiStepLR (x gamma per milestone)."""
    milestones = sorted(int(m) for m in milestones)

    def factor(step: int) -> float:
        warm = (
            1.0
            if step >= warmup_steps or warmup_steps <= 0
            else start_factor + (1 - start_factor) * step / warmup_steps
        )
        return warm * gamma ** sum(step >= m for m in milestones)

    return factor


def configure_device(device) -> None:
    """Every decoder call of a step has another number of prompts; on CUDA, cuDNN's attention plans a graph per new
    shape, which cost ~9 ms of CPU per call and left the GPU idle (torch.profiler on an H200): use the other SDPA
    kernels."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.enable_cudnn_sdp(False)


def weights_digest(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def force_cpu_processes() -> bool:
    """True for a multi-process launch on a machine without CUDA (`accelerate launch --multi_gpu --num_processes 2`,
    `torchrun`): Accelerate then runs DDP on CPU with gloo (MULTI_CPU) instead of falling back to one independent
    process per rank. `ACCELERATE_USE_CPU=1` forces it too."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    return (world_size > 1 and not torch.cuda.is_available()) or os.environ.get("ACCELERATE_USE_CPU", "").lower() in (
        "1",
        "true",
        "yes",
    )


def latest_checkpoint(output_dir) -> Path | None:
    checkpoints = [p for p in (Path(output_dir) / "checkpoints").glob("step_*") if p.name.split("_")[1].isdigit()]
    checkpoints.sort(key=lambda p: int(p.name.split("_")[1]))
    complete = [p for p in checkpoints if (p / "trainer_state_rank0.json").is_file()]
    return complete[-1] if complete else None


TRAINER_STATE_KEYS = ("step", "epoch", "batches_in_epoch", "prompt_generator")


def read_trainer_state(path, process_index: int = 0) -> dict:
    """The trainer state a checkpoint folder saved for one rank; [`CheckpointError`] naming the file when it is
    missing, truncated or incomplete."""
    state_file = Path(path) / f"trainer_state_rank{process_index}.json"
    try:
        state = json.loads(state_file.read_text())
    except FileNotFoundError:
        raise CheckpointError(
            f"cannot resume from {path}: {state_file.name} is missing (an unfinished checkpoint?)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(
            f"cannot resume from {path}: {state_file.name} is truncated or corrupt ({error})"
        ) from None
    missing = [key for key in TRAINER_STATE_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(f"cannot resume from {path}: {state_file.name} lacks {missing}")
    return state


def check_resume_checkpoint(resume, output_dir) -> Path | None:
    """The checkpoint `--resume` names (`latest`: the newest complete one under `output_dir`, `None` when there is
    none yet), checked before training starts: its rank-0 state and the headers of its safetensors files."""
    path = latest_checkpoint(output_dir) if str(resume) == "latest" else Path(resume)
    if path is None:
        return None
    if not path.is_dir():
        raise CheckpointNotFoundError(f"--resume {path} is not a checkpoint folder (<output-dir>/checkpoints/step_N)")
    read_trainer_state(path)
    from safetensors import safe_open

    for weights in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="pt"):
                pass
        except Exception as error:  # safetensors' own error type: truncated or corrupt header
            raise CheckpointError(
                f"cannot resume from {path}: {weights.name} is truncated or corrupt ({error})"
            ) from None
    return path


class Trainer:
    def __init__(self, config: TrainingConfig):
        self.config = config
        self.output_dir = Path(config.output_dir)
        trackers = resolve_trackers(config.log_with, self.output_dir / "logs")
        self.accelerator = Accelerator(
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            mixed_precision=config.mixed_precision,
            project_dir=str(self.output_dir),
            log_with=trackers,
            cpu=force_cpu_processes(),
            step_scheduler_with_optimizer=False,  # the schedule is in optimizer steps, whatever the process count
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        )
        self.log_with = trackers
        set_seed(config.seed)
        self.state = {"step": 0, "epoch": 0, "batches_in_epoch": 0}

    # ----------------------------------------------------------------------------------------------------- setup
    def setup(self):
        config, accelerator = self.config, self.accelerator
        model = load_model(config)
        config.preset = getattr(model.config, "preset", None) or config.preset  # the record names what was trained
        self.image_processor = make_image_processor(model.config, config.init)
        self.input_size = int(model.config.prompt_encoder_config.image_size)
        self.low_res = low_res_size(model.config)

        if config.pack and (config.streaming or config.variant in CACHED_VARIANTS):
            raise ValueError(
                "--pack keeps images on the device: it does not combine with --streaming or --variant "
                f"{config.variant}"
            )
        frozen_stages = config.frozen_stages if config.variant == "late-encoder" else None
        if frozen_stages is not None:
            check_split(model, frozen_stages)  # before the cache: a ViT / nano encoder is refused here
        with accelerator.main_process_first():
            if config.pack:
                rows = None
            elif config.streaming:
                by_dataset = load_split(
                    config.data, config.train_split, config.datasets, streaming=True, by_dataset=True
                )
                rows = None
            else:
                rows = load_split(config.data, config.train_split, config.datasets)
                rows_seed = config.seed if config.rows_seed is None else config.rows_seed
                rows = rows_per_dataset(rows, config.rows_per_dataset, rows_seed)
            self.val_rows = None
            if (config.eval_every or config.eval_at_end) and config.data:
                try:
                    self.val_rows = load_split(config.data, config.val_split, config.datasets)
                except FileNotFoundError as error:
                    accelerator.print(f"no validation split: {error}")

        teacher = load_teacher(config.distill_teacher, accelerator.device)
        teacher_runner = None  # the teacher's encoder, where --teacher-runtime puts it
        if teacher is not None:
            from ..inference.model_loading import load_processor

            with accelerator.main_process_first():  # one process exports the teacher's graph, the others find it
                teacher_runner = teacher_encoder(
                    teacher,
                    config.distill_teacher,
                    config.teacher_runtime,
                    accelerator.device,
                    load_processor(config.distill_teacher, teacher.config),
                    verbose=accelerator.is_main_process,
                )
        cache = teacher_cache = None
        flip_probability = config.flip_probability

        # this run's rows, settings and processes
        def cached(encoder_model, folder, stages=None, vision_encoder=None):
            return build_embedding_cache(
                encoder_model,
                rows,
                self.image_processor,  # also the teacher's: the pixels a teacher of a full run sees
                folder,
                flips=config.cache_flips,
                dtype=config.cache_dtype,
                process_index=accelerator.process_index,
                num_processes=accelerator.num_processes,
                wait_for_everyone=accelerator.wait_for_everyone,
                progress=config.progress and accelerator.is_main_process,
                frozen_stages=stages,
                vision_encoder=vision_encoder,
            )

        if config.variant in CACHED_VARIANTS:
            if config.streaming:
                raise ValueError(
                    f"--variant {config.variant} reads precomputed encoder outputs: use map-style shards (no --streaming)"
                )
            model.to(accelerator.device)
            default_dir = "embedding_cache" if frozen_stages is None else f"stage{frozen_stages}_cache"
            cache = cached(model, config.cache_dir or self.output_dir / default_dir, frozen_stages)
        # the teacher's embeddings: what its decoder reads next to cached embeddings (--distill-outputs), or, in a
        # stage that trains the encoder, what replaces running its encoder on every batch
        if teacher is not None and (cache is not None or config.teacher_cache_dir):
            teacher_cache = cached(
                teacher, config.teacher_cache_dir or self.output_dir / "teacher_cache", vision_encoder=teacher_runner
            )
        one_sided = [c for c in (cache, teacher_cache) if c is not None and not c.flips]
        if one_sided and flip_probability:
            accelerator.print(f"flips off: the embedding cache {one_sided[0].cache_dir} holds one orientation")
            flip_probability = 0.0
        self.base_dir = config.init
        if config.keep_adapter and config.variant in ("lora", "adapter") and not config.init:
            self.base_dir = str(self.output_dir / "base")
            if accelerator.is_main_process:  # a repository of its own (card, remote code), to push before the adapter
                record = {
                    "note": f"initial weights ({config.preset or 'vit-b'} preset) of the adapter in the parent folder"
                }
                export_model(model, self.base_dir, make_processor(self.image_processor), training_record=record)
        builder = ExampleBuilder(
            image_processor=self.image_processor,
            input_size=self.input_size,
            low_res_size=self.low_res,
            seed=config.seed,
            max_instances=config.max_instances,
            flip_probability=flip_probability,
            embedding_cache=cache,
            teacher_cache=teacher_cache,
        )
        model = apply_variant(
            model,
            config.variant,
            config.lora_targets.split(","),
            config.lora_rank,
            config.lora_alpha,
            config.lora_dropout,
            frozen_stages=config.frozen_stages,
        )
        self.trainable, self.total = count_parameters(model)
        configure_device(accelerator.device)
        if config.compile:
            model.vision_encoder.compile()  # in place: parameter names (and the saved weights) stay as they are
        module = UltraSamTrainingModule(
            model,
            LossWeights(
                focal=config.focal_weight,
                dice=config.dice_weight,
                iou=config.iou_weight,
                iou_all_masks=config.iou_all_masks,
            ),
            clicks=config.clicks,
            multimask=config.multimask,
            multimask_boxes=config.multimask_boxes,
            single_mask_clicks=config.single_mask_clicks,
            train_encoder=trains_encoder(config.variant),
            seed=config.seed * 1000 + accelerator.process_index,
            point_probability=config.point_probability,
            box_jitter=config.box_jitter,
            point_sampling=config.point_sampling,
            frozen_stages=frozen_stages,
            # (a cached run holds no pixels: the teacher's embeddings come with the batch)
            teacher_encoder=None if cache is not None else teacher_runner,
            distill_weight=config.distill_weight,
            distill_only=config.distill_only,
            teacher_model=teacher if config.distill_outputs else None,
            output_distill_weight=config.distill_outputs,
            output_ranking_weight=config.distill_ranking,
            split_decoder=config.split_decoder,
        )
        optimizer = torch.optim.AdamW(
            [p for p in module.parameters() if p.requires_grad],
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(config.warmup_steps, config.warmup_start_factor, config.milestones, config.gamma)
        )

        factors = dataset_factors(config.dataset_weights)  # --dataset-weights, on every data path
        if config.pack:
            from .pack import ResidentBatches

            self.train_dataset = self.train_loader = ResidentBatches(
                config.pack,
                self.image_processor,
                accelerator.device,
                batch_size=config.batch_size,
                seed=config.seed,
                temperature=config.mixing_temperature,
                factors=factors,
                max_instances=config.max_instances,
                flip_probability=config.flip_probability,
                rank=accelerator.process_index,
                world_size=accelerator.num_processes,
                datasets=config.datasets,
            )
            self.check_pack(self.train_loader.summary)
            self.mixing = self.train_loader.sampler.weights
            packed = self.train_loader.summary["images"]
            self.train_counts = {slug: packed[slug] for slug in (config.datasets or packed) if slug in packed}
            self.sampler = None
            module, optimizer, scheduler = accelerator.prepare(module, optimizer, scheduler)
        elif config.streaming:
            from datasets import interleave_datasets
            from datasets.distributed import split_dataset_by_node

            from .data import mixing_weights, scale_mixing

            slugs = sorted(by_dataset)
            counts = {
                slug: (by_dataset[slug].info.splits.total_num_examples if by_dataset[slug].info.splits else 1) or 1
                for slug in slugs
            }
            weights = scale_mixing(mixing_weights(counts, config.mixing_temperature), factors)
            self.train_counts = counts
            self.mixing = weights
            stream = (
                by_dataset[slugs[0]]
                if len(slugs) == 1
                else interleave_datasets(
                    [by_dataset[s] for s in slugs],
                    probabilities=[weights[s] for s in slugs],
                    seed=config.seed,
                    stopping_strategy="all_exhausted",
                )
            )
            stream = stream.shuffle(seed=config.seed, buffer_size=config.shuffle_buffer)
            stream = split_dataset_by_node(
                stream, rank=accelerator.process_index, world_size=accelerator.num_processes
            )
            self.train_dataset = StreamingTrainDataset(stream, builder, rank=accelerator.process_index)
            self.sampler = None
            # ranks already read disjoint rows: the loader is not sharded again by accelerate
            self.train_loader = torch.utils.data.DataLoader(
                self.train_dataset, batch_size=config.batch_size, collate_fn=collate, num_workers=config.num_workers
            )
            module, optimizer, scheduler = accelerator.prepare(module, optimizer, scheduler)
        else:
            self.sampler = MixingSampler(
                list(rows["dataset"]),
                seed=config.seed,
                temperature=config.mixing_temperature,
                factors=factors,
            )
            self.train_dataset = TrainDataset(rows, builder)
            self.train_counts = dict(Counter(rows["dataset"]))
            self.mixing = self.sampler.weights
            loader = torch.utils.data.DataLoader(
                self.train_dataset,
                batch_size=config.batch_size,
                sampler=self.sampler,
                collate_fn=collate,
                num_workers=config.num_workers,
            )
            module, optimizer, self.train_loader, scheduler = accelerator.prepare(module, optimizer, loader, scheduler)
        self.module, self.optimizer, self.scheduler = module, optimizer, scheduler
        if self.log_with:
            accelerator.init_trackers("ultrasam", config=flat_config(config))

    # ----------------------------------------------------------------------------------------------- checkpoints
    def save_checkpoint(self):
        accelerator = self.accelerator
        path = self.output_dir / "checkpoints" / f"step_{self.state['step']}"
        accelerator.save_state(str(path))
        unwrapped = accelerator.unwrap_model(self.module)
        state = {**self.state, "prompt_generator": unwrapped.generator_state().tolist()}
        (path / f"trainer_state_rank{accelerator.process_index}.json").write_text(json.dumps(state))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process and self.config.keep_checkpoints > 0:
            checkpoints = sorted(path.parent.glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
            for old in checkpoints[: -self.config.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    def load_checkpoint(self, path):
        path = latest_checkpoint(self.output_dir) if str(path) == "latest" else Path(path)
        if path is None:
            self.accelerator.print("--resume latest: no checkpoint yet, starting from scratch")
            return
        state = read_trainer_state(path, self.accelerator.process_index)
        try:
            self.accelerator.load_state(str(path))
        except UltraSamError:
            raise
        except Exception as error:  # a truncated model / optimizer / RNG file: torch, safetensors or pickle errors
            reason = " ".join(str(error).split())[:300]
            raise CheckpointError(f"cannot resume from {path}: {type(error).__name__}: {reason}") from error
        generator_state = torch.tensor(state.pop("prompt_generator"), dtype=torch.uint8)
        self.accelerator.unwrap_model(self.module).set_generator_state(generator_state)
        self.state.update(state)
        self.accelerator.print(
            f"resumed from {path} at step {self.state['step']} (epoch {self.state['epoch']}, batch {self.state['batches_in_epoch']})"
        )

    def out_of_time(self) -> bool:
        """`--max-minutes`: stop (and export) once the wall-clock budget is spent, e.g. on a leased GPU."""
        return bool(self.config.max_minutes) and time.perf_counter() - self.started > 60 * self.config.max_minutes

    def check_pack(self, summary: dict) -> None:
        expected = (self.input_size, self.low_res, getattr(self.image_processor, "preprocessing", "sam"))
        found = (summary["input_size"], summary["low_res_size"], summary["preprocessing"])
        if found != expected:
            raise ValueError(
                f"the pack {self.config.pack} was made for input {found[0]} px, masks {found[1]} px, {found[2]!r} "
                f"preprocessing; the model needs {expected[0]} / {expected[1]} / {expected[2]!r} (rebuild the pack)"
            )

    # -------------------------------------------------------------------------------------------------- evaluate
    def evaluate(self):
        accelerator, config = self.accelerator, self.config
        results = None
        if accelerator.is_main_process and self.val_rows is not None:
            model = accelerator.unwrap_model(self.module).model
            results = evaluate_dice(
                model,
                self.val_rows,
                self.image_processor,
                multimask=config.multimask,
                max_images=config.eval_max_images,
            )
            accelerator.print(summary_line(self.state["step"], results))
            if self.log_with:
                accelerator.log(flatten_results(results), step=self.state["step"])
        accelerator.wait_for_everyone()
        return results

    # ----------------------------------------------------------------------------------------------------- train
    def train(self) -> dict:
        from tqdm.auto import tqdm

        config, accelerator = self.config, self.accelerator
        self.setup()
        if config.resume:
            self.load_checkpoint(config.resume)
        accelerator.print(
            f"UltraSam training: variant {config.variant}, {self.trainable:,} / {self.total:,} trainable parameters, "
            f"{accelerator.num_processes} process(es) on {accelerator.device}, mixed precision {accelerator.mixed_precision}"
        )
        if config.dataset_weights:
            mix = ", ".join(
                f"{slug} {p:.1%}" for slug, p in sorted(self.mixing.items(), key=lambda kv: (-kv[1], kv[0]))
            )
            accelerator.print(
                f"dataset mix (--mixing-temperature {config.mixing_temperature:g}, --dataset-weights): {mix}"
            )
        bar = tqdm(
            total=config.max_steps,
            initial=self.state["step"],
            desc="train",
            disable=not (config.progress and accelerator.is_main_process),
        )
        seen_keys: list[str] = []
        window = {"loss": 0.0, **dict.fromkeys(LOGGED, 0.0), "batches": 0, "samples": 0}
        logged_terms = accelerator.unwrap_model(self.module).logged_terms
        window_start = time.perf_counter()
        last_eval = None
        self.module.train()
        self.started = time.perf_counter()
        while self.state["step"] < config.max_steps and not self.out_of_time():
            if self.sampler is not None:
                self.sampler.set_epoch(self.state["epoch"])
            else:
                self.train_dataset.set_epoch(self.state["epoch"])
            loader = self.train_loader
            if self.state["batches_in_epoch"] and config.pack:
                loader = self.train_loader.skip(self.state["batches_in_epoch"])
            elif self.state["batches_in_epoch"]:
                loader = accelerator.skip_first_batches(self.train_loader, self.state["batches_in_epoch"])
            if hasattr(loader, "iteration"):
                # Accelerate's loaders call sampler.set_epoch(self.iteration) on __iter__: keep it on our epoch
                loader.iteration = self.state["epoch"]
            finished_epoch = True
            for batch in loader:
                if config.record_samples:
                    seen_keys += [
                        f"{self.state['epoch']}:{int(p)}:{k}" for p, k in zip(batch["positions"], batch["keys"])
                    ]
                batch = {k: (v.to(accelerator.device) if torch.is_tensor(v) else v) for k, v in batch.items()}
                with accelerator.accumulate(self.module):
                    output = self.module(batch)
                    accelerator.backward(output["loss"])
                    if accelerator.sync_gradients and config.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(self.module.parameters(), config.max_grad_norm)
                    self.optimizer.step()
                    if accelerator.sync_gradients:
                        self.scheduler.step()
                    self.optimizer.zero_grad()
                self.state["batches_in_epoch"] += 1
                # running sums stay on the device: no host synchronisation between log lines
                window["loss"] += output["loss"].detach()
                for name in LOGGED:
                    window[name] += output["logs"][name]
                window["batches"] += 1
                window["samples"] += len(batch["keys"])
                if not accelerator.sync_gradients:
                    continue
                self.state["step"] += 1
                step = self.state["step"]
                bar.update(1)
                if step % config.log_every == 0 or step == config.max_steps:
                    elapsed = time.perf_counter() - window_start
                    logs = {
                        f"train/{k}": float(window[k]) / max(window["batches"], 1) for k in ("loss", *logged_terms)
                    }
                    logs["train/lr"] = self.scheduler.get_last_lr()[0]
                    logs["train/samples_per_second"] = (
                        window["samples"] * accelerator.num_processes / max(elapsed, 1e-9)
                    )
                    bar.set_postfix(loss=f"{logs['train/loss']:.4f}", lr=f"{logs['train/lr']:.2e}")
                    if self.log_with:
                        accelerator.log(logs, step=step)
                    window = dict.fromkeys(window, 0.0)
                    window_start = time.perf_counter()
                if config.save_every and step % config.save_every == 0 and step < config.max_steps:
                    self.save_checkpoint()
                if config.eval_every and step % config.eval_every == 0:
                    last_eval = self.evaluate()
                if step >= config.max_steps or self.out_of_time():
                    finished_epoch = False
                    break
            if finished_epoch:
                self.state["epoch"] += 1
                self.state["batches_in_epoch"] = 0
        bar.close()
        if config.eval_at_end and (not config.eval_every or self.state["step"] % config.eval_every):
            last_eval = self.evaluate()
        return self.finish(seen_keys, last_eval)

    def finish(self, seen_keys, last_eval) -> dict:
        config, accelerator = self.config, self.accelerator
        accelerator.wait_for_everyone()
        if config.save_every:
            self.save_checkpoint()
        unwrapped = accelerator.unwrap_model(self.module).model
        digest = weights_digest(unwrapped)
        if config.record_samples:
            rank = accelerator.process_index
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / f"samples_rank{rank}.txt").write_text("\n".join(seen_keys) + "\n")
            (self.output_dir / f"weights_rank{rank}.sha256").write_text(digest + "\n")
        if accelerator.distributed_type == DistributedType.FSDP:
            # sharded parameters: gather a full state dict (collective), load it into a fresh copy on the main process
            full_state = accelerator.get_state_dict(self.module)
            if accelerator.is_main_process:
                fresh = apply_variant(
                    load_model(config),
                    config.variant,
                    config.lora_targets.split(","),
                    config.lora_rank,
                    config.lora_alpha,
                    config.lora_dropout,
                    frozen_stages=config.frozen_stages,
                )
                fresh.load_state_dict({k.removeprefix("model."): v for k, v in full_state.items()})
                unwrapped = fresh
        if accelerator.is_main_process:
            # what the checkpoint was trained to output for an ambiguous click (the predictor's default)
            unwrapped.config.multimask_output_default = bool(config.multimask)
            # what the model learnt from, per dataset and licence: the card's training-data table (written first)
            self.output_dir.mkdir(parents=True, exist_ok=True)
            mix = training_licence_mix(self.train_counts)
            (self.output_dir / TRAINING_DATA).write_text(json.dumps(mix, indent=1))
            record = flat_config(config)
            export_model(
                unwrapped,
                self.output_dir,
                make_processor(self.image_processor),
                config.keep_adapter,
                self.base_dir,
                training_record=record,
            )
            (self.output_dir / TRAINING_RECORD).write_text(json.dumps(record, indent=1))
            if last_eval is not None:
                (self.output_dir / "eval_results.json").write_text(json.dumps(last_eval, indent=1))
        accelerator.wait_for_everyone()
        accelerator.end_training()
        return {"step": self.state["step"], "weights_sha256": digest, "eval": last_eval}


def train(config: TrainingConfig) -> dict:
    return Trainer(config).train()


__all__ = [
    "Trainer",
    "configure_device",
    "latest_checkpoint",
    "load_model",
    "load_model_config",
    "low_res_size",
    "lr_lambda",
    "make_image_processor",
    "train",
    "weights_digest",
]
