"""Training arguments: one dataclass; a YAML/JSON config file (`--config`) sets defaults, command-line flags win."""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from .prompt_sampling import POINT_SAMPLINGS
from .variants import VARIANTS


@dataclass
class TrainingConfig:
    # model
    preset: str | None = field(
        default=None,
        metadata={"help": "UltraSam preset when --init is not given (vit-b (default), lite, tiny, tiny-lite)."},
    )
    init: str | None = field(default=None, metadata={"help": "Any UltraSam folder (from_pretrained) to start from."})
    variant: str = field(default="full", metadata={"help": f"One of {', '.join(VARIANTS)}.", "choices": VARIANTS})
    lora_targets: str = field(default="qkv", metadata={"help": "Comma-separated encoder Linear names for LoRA."})
    lora_rank: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    keep_adapter: bool = field(default=False, metadata={"help": "Save the peft adapter instead of merging it."})
    # data
    data: list[str] = field(default_factory=list, metadata={"help": "Shard folder(s) (<slug>/<split>/*.parquet).", "nargs": "+"})
    pack: str | None = field(
        default=None,
        metadata={"help": "Training pack (scripts/make_training_pack.py): images pre-resized, kept on the device."},
    )
    datasets: list[str] | None = field(default=None, metadata={"help": "Dataset slugs to use (default: all).", "nargs": "+"})
    train_split: str = "train"
    val_split: str = "validation"
    streaming: bool = field(default=False, metadata={"help": "Stream the shards (datasets IterableDataset)."})
    shuffle_buffer: int = 256
    mixing_temperature: float = field(default=1.0, metadata={"help": "Dataset mixing p_i ~ n_i^(1/T); 1 = proportional."})
    max_instances: int = field(default=20, metadata={"help": "Instances (prompts) per image, the paper's 20."})
    point_probability: float = 0.5
    point_sampling: str = field(
        default="uniform",
        metadata={"choices": POINT_SAMPLINGS, "help": "uniform: any mask pixel (the paper); interior: weighted by distance to the background."},
    )
    box_jitter: float = 0.05
    flip_probability: float = 0.5
    clicks: int = field(default=0, metadata={"help": "Corrective-click rounds after the first prediction (SAM-style)."})
    multimask: bool = field(default=True, metadata={"help": "Multimask output on the first round (loss on the best-IoU mask)."})
    multimask_boxes: bool = field(default=True, metadata={"help": "With --multimask, box prompts too (else points only, as SAM)."})
    num_workers: int = 0
    # embedding cache (frozen-encoder)
    cache_dir: str | None = field(default=None, metadata={"help": "Embedding cache folder (default <output-dir>/embedding_cache)."})
    cache_flips: bool = field(default=True, metadata={"help": "Cache mirrored images too (else flips are off)."})
    cache_dtype: str = field(default="float16", metadata={"choices": ("float16", "bfloat16", "float32")})
    # optimisation
    max_steps: int = 30000
    batch_size: int = field(default=8, metadata={"help": "Images per process per micro-batch."})
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 500
    warmup_start_factor: float = 0.001
    milestones: list[int] = field(default_factory=lambda: [20000, 28888], metadata={"nargs": "*"})
    gamma: float = 0.1
    max_grad_norm: float = 0.1
    mixed_precision: str | None = field(
        default=None,
        metadata={"choices": ("no", "bf16", "fp16"), "help": "Default: the accelerate launch config / environment ('no' without one)."},
    )
    compile: bool = field(default=False, metadata={"help": "torch.compile the image encoder (GPU)."})
    max_minutes: float = field(default=0.0, metadata={"help": "Stop and export after this many minutes (0: no limit)."})
    focal_weight: float = 20.0
    dice_weight: float = 1.0
    iou_weight: float = 1.0
    iou_all_masks: bool = field(
        default=False, metadata={"help": "Regress every candidate's predicted IoU (SAM) instead of the chosen one's (paper)."}
    )
    seed: int = 0
    # checkpoints, logging, evaluation
    output_dir: str = "ultrasam-run"
    save_every: int = field(default=0, metadata={"help": "accelerator.save_state every N optimizer steps (0: only at the end)."})
    keep_checkpoints: int = 2
    resume: str | None = field(default=None, metadata={"help": "A checkpoint folder, or 'latest' (in <output-dir>/checkpoints)."})
    eval_every: int = field(default=0, metadata={"help": "Validate every N steps (0: only at the end when --eval-at-end)."})
    eval_at_end: bool = False
    eval_max_images: int | None = None
    log_every: int = 10
    log_with: str = field(default="auto", metadata={"help": "auto (tensorboard if installed, else csv), csv, none, or tracker names."})
    progress: bool = True
    record_samples: bool = field(default=False, metadata={"help": "Write the sample keys each rank trained on (tests)."})


# the training record every run leaves in its output folder (the flat TrainingConfig), for provenance
TRAINING_RECORD = "training_config.json"


def load_config_file(path) -> dict:
    text = Path(path).read_text()
    if str(path).endswith((".yaml", ".yml")):
        import yaml

        values = yaml.safe_load(text) or {}
    else:
        values = json.loads(text)
    names = {f.name for f in dataclasses.fields(TrainingConfig)}
    values = {key.replace("-", "_"): value for key, value in values.items()}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown keys in {path}: {unknown}")
    return values


def build_parser() -> HfArgumentParser:
    parser = HfArgumentParser(TrainingConfig, description="UltraSam pre-training / fine-tuning (Accelerate).")
    parser.add_argument("--config", help="YAML or JSON file of arguments (flag names, - or _); flags override it.")
    return parser


def parse_args(argv=None) -> TrainingConfig:
    config_file = argparse.ArgumentParser(add_help=False)
    config_file.add_argument("--config")
    known, _ = config_file.parse_known_args(argv)
    parser = build_parser()
    if known.config:
        parser.set_defaults(**load_config_file(known.config))
    config = parser.parse_args_into_dataclasses(argv, look_for_args_file=False)[0]
    if isinstance(config.data, str):
        config.data = [config.data]
    if not config.data and not config.pack:
        raise SystemExit("error: --data (shard folder) or --pack (training pack) is required")
    return config


__all__ = ["TrainingConfig", "build_parser", "load_config_file", "parse_args"]
