"""Training arguments: one dataclass; a YAML/JSON config file (`--config`) sets defaults, command-line flags win."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from ..models.errors import UsageError
from .prompt_sampling import POINT_SAMPLINGS
from .teacher_runtime import TEACHER_RUNTIMES
from .variants import (
    CACHED_VARIANTS,
    DEFAULT_FROZEN_STAGES,
    EMBEDDING_VARIANTS,
    VARIANTS,
    late_encoder_problem,
    trains_encoder,
)


@dataclass
class TrainingConfig:
    # model
    preset: str | None = field(
        default=None,
        metadata={"help": "UltraSam preset when --init is not given (vit-b (default), lite, tiny, tiny-lite)."},
    )
    init: str | None = field(default=None, metadata={"help": "Any UltraSam folder (from_pretrained) to start from."})
    variant: str = field(
        default="full",
        metadata={
            "help": f"One of {', '.join(VARIANTS)}. late-encoder (TinyViT only): patch embedding + the first "
            "--frozen-stages stages frozen, their output cached once per image; the later stages, neck and decoder train.",
            "choices": VARIANTS,
        },
    )
    frozen_stages: int = field(
        default=DEFAULT_FROZEN_STAGES,
        metadata={
            "help": "late-encoder: TinyViT stages frozen and cached with the patch embedding (0..4; 2 = up to the "
            "input of stage 2, the 64x64 stages of lite)."
        },
    )
    lora_targets: str = field(default="qkv", metadata={"help": "Comma-separated encoder Linear names for LoRA."})
    lora_rank: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    keep_adapter: bool = field(default=False, metadata={"help": "Save the peft adapter instead of merging it."})
    # data
    data: list[str] = field(
        default_factory=list, metadata={"help": "Shard folder(s) (<slug>/<split>/*.parquet).", "nargs": "+"}
    )
    pack: str | None = field(
        default=None,
        metadata={"help": "Training pack (scripts/make_training_pack.py): images pre-resized, kept on the device."},
    )
    datasets: list[str] | None = field(
        default=None, metadata={"help": "Dataset slugs to use (default: all).", "nargs": "+"}
    )
    train_split: str = "train"
    val_split: str = "validation"
    streaming: bool = field(default=False, metadata={"help": "Stream the shards (datasets IterableDataset)."})
    shuffle_buffer: int = 256
    mixing_temperature: float = field(
        default=1.0, metadata={"help": "Dataset mixing p_i ~ n_i^(1/T); 1 = proportional."}
    )
    dataset_weights: list[str] | None = field(
        default=None,
        metadata={
            "help": "SLUG=FACTOR ... : multiply these datasets' mixing probabilities (after --mixing-temperature), "
            "then renormalise; e.g. tg3k=3 to see a dataset the model lags on three times as often.",
            "nargs": "+",
        },
    )
    max_instances: int = field(default=20, metadata={"help": "Instances (prompts) per image, the paper's 20."})
    point_probability: float = 0.5
    point_sampling: str = field(
        default="uniform",
        metadata={
            "choices": POINT_SAMPLINGS,
            "help": "uniform: any mask pixel (the paper); interior: weighted by distance to the background.",
        },
    )
    box_jitter: float = 0.05
    flip_probability: float = 0.5
    clicks: int = field(
        default=0, metadata={"help": "Corrective-click rounds after the first prediction (SAM-style)."}
    )
    multimask: bool = field(
        default=True, metadata={"help": "Multimask output on the first round (loss on the best-IoU mask)."}
    )
    multimask_boxes: bool = field(
        default=True, metadata={"help": "With --multimask, box prompts too (else points only, as SAM)."}
    )
    single_mask_clicks: bool = field(
        default=False,
        metadata={
            "help": "With --multimask, also train the single-mask token on the first round's single clicks (one more "
            "decoder pass for them), so that it can answer one click as the multimask tokens do."
        },
    )
    distill_teacher: str | None = field(
        default=None,
        metadata={
            "help": "A model folder whose image embeddings the encoder is also held to (MSE over the teacher's "
            "variance, on the same pixels): the end-to-end stages of a distilled student (docs/nano_distillation.md)."
        },
    )
    distill_weight: float = field(default=1.0, metadata={"help": "Weight of the --distill-teacher term."})
    distill_outputs: float = field(
        default=0.0,
        metadata={
            "help": "Weight of a term holding every decoder pass's masks and IoU scores to the --distill-teacher's on "
            "the same prompts (its own embedding, prompt encoder and decoder): BCE + dice to its masks, MSE to its IoU "
            "scores. 0 (default): off. With --variant frozen-encoder or iou-head, both models' embeddings are cached "
            "and only the prompt encoder and decoder (iou-head: the IoU head) train."
        },
    )
    distill_ranking: float = field(
        default=0.0,
        metadata={
            "help": "With --distill-outputs: weight of a term holding the order of a click's candidate masks to the "
            "teacher's, the KL divergence of the softmax of the predicted IoUs (temperature 0.05) to the teacher's. "
            "A click returns the candidate of highest predicted IoU, and two scores a few hundredths apart in the "
            "wrong order cost the MSE of --distill-outputs almost nothing. 0 (default): off."
        },
    )
    teacher_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Folder of the --distill-teacher's embeddings of the training images, built when missing or stale "
            "(e.g. a scripts/distill_encoder.py --cache-dir of the same images, then with --rows-per-dataset, "
            "--rows-seed and --no-cache-flips as it was built). --variant frozen-encoder or iou-head with "
            "--distill-outputs: its embeddings feed the teacher's decoder (default <output-dir>/teacher_cache). "
            "full, encoder-only, lora, adapter: they replace the teacher's encoder on every batch (a nano full "
            "stage on a 2-core CPU: 1.6x the images per second)."
        },
    )
    teacher_runtime: str = field(
        default="auto",
        metadata={
            "help": "Where the --distill-teacher's encoder runs (on each batch, or for its embedding cache): onnx (its "
            "ONNX Runtime graph, exported once into the cache: the same embeddings, a distillation step about 2x "
            "faster on a 2-core CPU), pytorch, or auto (onnx on a CPU with onnxruntime installed, else pytorch).",
            "choices": TEACHER_RUNTIMES,
        },
    )
    distill_only: bool = field(
        default=False,
        metadata={
            "help": "Train on the --distill-teacher term alone: no prompts, no decoder (decoupled distillation)."
        },
    )
    rows_per_dataset: int | None = field(
        default=None,
        metadata={
            "help": "Train on at most this many images of each dataset, drawn with --rows-seed (default: all; not "
            "with --pack or --streaming). The draw of scripts/distill_encoder.py --per-dataset at the same seed."
        },
    )
    rows_seed: int | None = field(
        default=None,
        metadata={
            "help": "Seed of the --rows-per-dataset draw (default: --seed): a cache's images stay the same while the "
            "training seed changes."
        },
    )
    num_workers: int = 0
    # embedding cache (frozen-encoder) / early-stage feature cache (late-encoder)
    cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Cache folder (default <output-dir>/embedding_cache, late-encoder <output-dir>/stage<N>_cache)."
        },
    )
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
        metadata={
            "choices": ("no", "bf16", "fp16"),
            "help": "Default: the accelerate launch config / environment ('no' without one).",
        },
    )
    compile: bool = field(default=False, metadata={"help": "torch.compile the image encoder (GPU)."})
    split_decoder: bool = field(
        default=True,
        metadata={
            "help": "Decode the prompts through the split decoder (training/split_decoding.py): SAM's decoder with "
            "the image side once per image and the later layers' image projections folded into the prompt tokens, "
            "the same function with about half the FLOPs. Off: SAM's decoder on a copy of the image per prompt. "
            "Models with adapted decoder layers (LoRA) always take SAM's."
        },
    )
    max_minutes: float = field(
        default=0.0, metadata={"help": "Stop and export after this many minutes (0: no limit)."}
    )
    focal_weight: float = 20.0
    dice_weight: float = 1.0
    iou_weight: float = 1.0
    iou_all_masks: bool = field(
        default=False,
        metadata={"help": "Regress every candidate's predicted IoU (SAM) instead of the chosen one's (paper)."},
    )
    seed: int = 0
    # checkpoints, logging, evaluation
    output_dir: str = "ultrasam-run"
    save_every: int = field(
        default=0, metadata={"help": "accelerator.save_state every N optimizer steps (0: only at the end)."}
    )
    keep_checkpoints: int = 2
    resume: str | None = field(
        default=None, metadata={"help": "A checkpoint folder, or 'latest' (in <output-dir>/checkpoints)."}
    )
    eval_every: int = field(
        default=0, metadata={"help": "Validate every N steps (0: only at the end when --eval-at-end)."}
    )
    eval_at_end: bool = False
    eval_max_images: int | None = None
    log_every: int = 10
    log_with: str = field(
        default="auto", metadata={"help": "auto (tensorboard if installed, else csv), csv, none, or tracker names."}
    )
    progress: bool = True
    record_samples: bool = field(
        default=False, metadata={"help": "Write the sample keys each rank trained on (tests)."}
    )


# the training record every run leaves in its output folder (the flat TrainingConfig): provenance, and a `--config`
TRAINING_RECORD = "training_config.json"
TRAINING_DATA = "training_data.json"  # training images per dataset and licence (`data.manifest.training_licence_mix`)


def flat_config(config: TrainingConfig) -> dict:
    """The settings as scalars (lists comma-joined, None left out): trackers' hyper-parameter tables take only
    scalars. `load_config_file` reads it back, so a run's `training_config.json` is a valid `--config`."""
    return {
        k: (",".join(map(str, v)) if isinstance(v, list) else v)
        for k, v in dataclasses.asdict(config).items()
        if v is not None
    }


def _list_fields() -> dict[str, type]:
    """`{field name: element type}` of the list flags (`list[int]`, `list[str] | None`, ...)."""
    found = {}
    for name, hint in typing.get_type_hints(TrainingConfig).items():
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        for option in typing.get_args(hint) if union else (hint,):
            if typing.get_origin(option) is list:
                found[name] = typing.get_args(option)[0]
    return found


def _as_list(name: str, value, kind: type, path) -> list | None:
    """A list flag from a config file: a list, one value, or the comma-joined string of `flat_config`."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else [value]
    items = [item.strip() if isinstance(item, str) else item for item in items]
    try:
        if kind is int and any(isinstance(item, (bool, float)) for item in items):  # "650" or 650, never 6.5 or True
            raise ValueError
        return [kind(item) for item in items if item != ""]
    except (TypeError, ValueError):
        raise UsageError(f"{name} in {path} must be a list of {kind.__name__}, got {value!r}") from None


def load_config_file(path) -> dict:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--config {path} cannot be read: {getattr(error, 'strerror', None) or error}") from None
    try:
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
    except Exception as error:  # yaml.YAMLError / json.JSONDecodeError
        reason = " ".join(str(error).split())[:200]
        raise UsageError(
            f"--config {path} is not valid {'YAML' if str(path).endswith(('.yaml', '.yml')) else 'JSON'}: {reason}"
        ) from None
    if not isinstance(values, dict):
        raise UsageError(f"--config {path} holds a {type(values).__name__}, not a mapping of flag names to values")
    names = {f.name for f in dataclasses.fields(TrainingConfig)}
    values = {str(key).replace("-", "_"): value for key, value in values.items()}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UsageError(f"unknown keys in {path}: {unknown}")
    for name, kind in _list_fields().items():
        if name in values:
            values[name] = _as_list(name, values[name], kind, path)
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
        raise UsageError("--data (shard folder) or --pack (training pack) is required")
    return config


# (field, test, what it must be): checked by `validate_config`; a config file bypasses argparse's own checks
_RANGES = (
    ("max_steps", lambda v: v >= 1, ">= 1"),
    ("batch_size", lambda v: v >= 1, ">= 1"),
    ("gradient_accumulation_steps", lambda v: v >= 1, ">= 1"),
    ("max_instances", lambda v: v >= 1, ">= 1"),
    ("learning_rate", lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    ("weight_decay", lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    ("warmup_steps", lambda v: v >= 0, ">= 0"),
    ("warmup_start_factor", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("gamma", lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    ("max_grad_norm", lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    ("point_probability", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("flip_probability", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("box_jitter", lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    ("mixing_temperature", lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    ("clicks", lambda v: v >= 0, ">= 0"),
    ("num_workers", lambda v: v >= 0, ">= 0"),
    ("shuffle_buffer", lambda v: v >= 1, ">= 1"),
    ("lora_rank", lambda v: v >= 1, ">= 1"),
    ("lora_dropout", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("save_every", lambda v: v >= 0, ">= 0"),
    ("keep_checkpoints", lambda v: v >= 0, ">= 0"),
    ("eval_every", lambda v: v >= 0, ">= 0"),
    ("log_every", lambda v: v >= 1, ">= 1"),
    ("max_minutes", lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    ("focal_weight", lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    ("dice_weight", lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    ("iou_weight", lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    ("distill_weight", lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    ("distill_outputs", lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    ("distill_ranking", lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
)


def dataset_factors(dataset_weights: list[str] | None) -> dict[str, float]:
    """`--dataset-weights` (`["tg3k=3", ...]`) as `{slug: factor}`; a clear error for anything else."""
    factors: dict[str, float] = {}
    for item in dataset_weights or []:
        slug, sep, value = str(item).partition("=")
        try:
            factor = float(value)
        except ValueError:
            factor = math.nan
        if not sep or not slug or not (math.isfinite(factor) and factor > 0):
            raise UsageError(f"--dataset-weights takes SLUG=FACTOR with a finite factor > 0, got {item!r}")
        if slug in factors:
            raise UsageError(f"--dataset-weights names {slug!r} twice")
        factors[slug] = factor
    return factors


def validate_config(config: TrainingConfig) -> None:
    """Check every setting and input of a run before anything is created: value ranges and choices, the shard
    folders (each with `<slug>/<train split>/*.parquet`, every `--datasets` slug present), `--pack`, `--init` (a
    complete UltraSam folder), `--output-dir` and the `--resume` checkpoint. [`UsageError`], [`ModelLoadError`] or
    [`CheckpointError`] naming the setting otherwise."""
    from ..cli import check_output_folder
    from ..models.configuration_ultrasam import PRESETS
    from .data import shard_files

    for name, test, expected in _RANGES:
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not test(value):
            raise UsageError(f"--{name.replace('_', '-')} must be {expected}, got {value!r}")
    for name, choices in (
        ("variant", VARIANTS),
        ("point_sampling", POINT_SAMPLINGS),
        ("cache_dtype", ("float16", "bfloat16", "float32")),
        ("mixed_precision", (None, "no", "bf16", "fp16")),
    ):
        if getattr(config, name) not in choices:
            raise UsageError(
                f"--{name.replace('_', '-')} must be one of {[c for c in choices if c]}, got {getattr(config, name)!r}"
            )
    if any(not isinstance(m, int) or m < 0 for m in config.milestones):
        raise UsageError(f"--milestones must be step numbers >= 0, got {config.milestones}")
    if config.variant == "lora" and not [t for t in config.lora_targets.split(",") if t.strip()]:
        raise UsageError("--variant lora needs --lora-targets (comma-separated Linear names, e.g. qkv)")
    if config.init:
        from ..inference.model_loading import check_model_folder, resolve_model_folder

        check_model_folder(resolve_model_folder(config.init))
    elif config.preset is not None and config.preset not in PRESETS:  # None: vit-b (`load_model_config`)
        raise UsageError(f"--preset must be one of {sorted(PRESETS)}, got {config.preset!r}")
    if config.variant == "late-encoder":
        from .trainer import load_model_config

        problem = late_encoder_problem(
            load_model_config(config.init, config.preset).vision_config, config.frozen_stages
        )
        if problem:
            raise UsageError(problem)
    if config.teacher_runtime != "auto" and not config.distill_teacher:
        raise UsageError(f"--teacher-runtime {config.teacher_runtime} needs --distill-teacher (a teacher to run)")
    if config.distill_only and not config.distill_teacher:
        raise UsageError("--distill-only needs --distill-teacher (the model whose embeddings to learn)")
    if config.distill_outputs and (config.distill_only or not config.distill_teacher):
        raise UsageError(
            "--distill-outputs needs --distill-teacher (whose outputs to learn) and prompts (no --distill-only)"
        )
    if config.distill_teacher:
        from ..inference.model_loading import check_model_folder, resolve_model_folder

        if config.variant in EMBEDDING_VARIANTS:
            if not config.distill_outputs:
                raise UsageError(
                    f"--variant {config.variant} trains no encoder: with --distill-teacher it needs --distill-outputs "
                    "(the decoder learns the teacher's answers; both models' embeddings are cached)"
                )
        elif not trains_encoder(config.variant) or config.variant in CACHED_VARIANTS:
            raise UsageError(
                f"--distill-teacher trains the encoder on pixels: --variant {config.variant} does not (use full, "
                "encoder-only, lora or adapter; or frozen-encoder / iou-head with --distill-outputs)"
            )
        check_model_folder(resolve_model_folder(config.distill_teacher))
        from .distillation import teacher_geometry_problem
        from .trainer import load_model_config

        problem = teacher_geometry_problem(
            load_model_config(config.distill_teacher, None), load_model_config(config.init, config.preset)
        )
        if problem:
            raise UsageError(f"--distill-teacher {config.distill_teacher} {problem}")
    if config.teacher_cache_dir:
        if not config.distill_teacher:
            raise UsageError("--teacher-cache-dir holds a --distill-teacher's embeddings: set --distill-teacher")
        if config.pack or config.streaming:
            raise UsageError("--teacher-cache-dir embeds the rows of --data shards: not with --pack or --streaming")
    if config.rows_seed is not None and config.rows_per_dataset is None:
        raise UsageError("--rows-seed draws the rows of --rows-per-dataset: set --rows-per-dataset too")
    if config.distill_ranking and not config.distill_outputs:
        raise UsageError("--distill-ranking weighs a part of the --distill-outputs term: set --distill-outputs too")
    if config.rows_per_dataset is not None:
        if config.pack or config.streaming:
            raise UsageError("--rows-per-dataset selects rows of --data shards: not with --pack or --streaming")
        if config.rows_per_dataset < 1:
            raise UsageError(f"--rows-per-dataset must be >= 1, got {config.rows_per_dataset}")
    if config.pack and not Path(config.pack).exists():
        raise UsageError(f"--pack {config.pack} does not exist (make one with scripts/make_training_pack.py)")
    found: set[str] = set()
    for folder in config.data:
        if not Path(folder).is_dir():
            raise UsageError(f"--data {folder} is not a folder (a build folder of `ultrasam data build --out`)")
        files = shard_files(folder, config.train_split, config.datasets)
        if not files and not config.pack:
            raise UsageError(
                f"--data {folder} has no {config.train_split!r} shards (expected <slug>/{config.train_split}/*.parquet)"
            )
        found |= set(files)
    missing = sorted(set(config.datasets or []) - found)
    if missing and config.data:
        raise UsageError(f"--datasets {missing} have no {config.train_split!r} shards under {config.data}")
    trained = set(config.datasets or found)
    unknown = sorted(set(dataset_factors(config.dataset_weights)) - trained)
    if unknown and trained:  # a --pack's datasets are checked when it loads (`MixingSampler`)
        raise UsageError(f"--dataset-weights names {unknown}, which this run does not train on ({sorted(trained)})")
    check_output_folder(config.output_dir, "--output-dir")
    if config.resume:
        from .trainer import check_resume_checkpoint

        check_resume_checkpoint(config.resume, config.output_dir)


__all__ = [
    "TrainingConfig",
    "build_parser",
    "dataset_factors",
    "flat_config",
    "load_config_file",
    "parse_args",
    "validate_config",
]
