"""Prompted classification downstream task (the paper's BUS-BRA benign / malignant experiment), and its baselines.

Variants, all on the same encoder and initialisation:

- `full`: `UltraSamForPromptedClassification`, every parameter trained; loss = cross-entropy of the per-prompt class
  + `mask_loss_weight` x (BCE + Dice) of the prompt's mask (segmentation and classification train jointly, as the
  paper adds the classification loss to the mask losses).
- `lora`: the same model with LoRA (peft) on the encoder's `qkv` projections; only LoRA weights and the head train.
- `head`: frozen model, only the classification MLP trains, on its cached per-prompt input
  [mask token 0, mean decoder image tokens, mean encoder features before the neck] (computed once per image).
- `image-linear`: image-level baseline, a linear layer on the cached mean-pooled encoder features before the neck.
- `image-full`: image-level baseline, the encoder and that linear layer fine-tuned together (the paper's baseline).

The prompt is the lesion box (jittered by up to 5 % per corner while training, exact at test, as the paper).
`run_classification_benchmark` loops over initialisations x folds x variants and returns per-fold metrics and the
mean ± std over folds; `results_markdown` writes the table.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import get_cosine_schedule_with_warmup

from ..evaluation.aggregate import metric_stats
from ..evaluation.prompts import box_from_mask, jittered_box
from ..models.configuration_ultrasam import UltraSamConfig
from ..models.image_processing_ultrasam import UltraSamImageProcessor
from ..models.modeling_ultrasam import UltraSamForPromptedClassification
from ..models.modeling_ultrasam_image_classifier import UltraSamImageClassifier
from ..training.variants import apply_variant
from .data import preprocess, stack_pixels

VARIANTS = ("full", "lora", "head", "image-linear", "image-full")
CACHED_VARIANTS = ("head", "image-linear")
METRICS = ("accuracy", "balanced_accuracy", "f1", "roc_auc")
METRIC_PATH = Path(__file__).resolve().parent / "ultrasam_classification_metric"


def load_classification_metric(**kwargs):
    """The `ultrasam_classification_metric` evaluate module from this package's folder (offline, no scikit-learn)."""
    import evaluate

    return evaluate.load(str(METRIC_PATH), **kwargs)


@dataclass
class ClassificationArguments:
    """Training recipe. Defaults are the CPU-sized recipe used for `docs/classification_results.md`."""

    steps: int = 200  # optimisation steps of the `full`, `lora` and `image-full` variants
    head_steps: int = 500  # steps of the cached `head` / `image-linear` variants (cheap)
    batch_size: int = 8
    head_batch_size: int = 64
    learning_rate: float = 1e-4
    head_learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    max_grad_norm: float = 1.0
    mask_loss_weight: float = 1.0
    box_jitter: float = 0.05
    lora_rank: int = 16
    lora_alpha: int = 16
    class_weighting: bool = True  # inverse-frequency class weights in the cross-entropy
    seed: int = 0
    label_names: list = field(default_factory=lambda: ["benign", "malignant"])


# --------------------------------------------------------------------------------------------------------------
# Examples


def make_examples(rows: list[dict], config: UltraSamConfig, label_names: list[str]) -> dict[str, dict]:
    """Examples keyed by image id, preprocessed by the model's processor
    (`UltraSamImageProcessor.from_model_config(config)`, input size and mode of `config`): `pixels` `(C, S, S)`
    float16 (`preprocess`), `mask` `(S, S)` bool, `box` xyxy in input pixels (tight inclusive box of the preprocessed
    mask, as `box_from_mask`), `label` int. Rows must hold exactly one labelled object (BUS-BRA)."""
    image_processor = UltraSamImageProcessor.from_model_config(config)
    size = config.vision_config.image_size
    examples = {}
    for row in rows:
        obj = row["objects"][0]
        pixels, masks, (new_h, _) = preprocess(image_processor, row["image"], [obj["mask"]], size)
        scale = new_h / row["image"].shape[0]
        examples[row["image_id"]] = {
            "pixels": torch.from_numpy(pixels).half(),
            "mask": torch.from_numpy(masks[0]),
            # a lesion too small to survive the resize keeps its scaled release box
            "box": box_from_mask(masks[0]) if masks[0].any() else [v * scale for v in obj["bbox"]],
            "label": label_names.index(obj["class_label"]),
        }
    return examples


def _box(example, rng=None, jitter=0.0) -> list[float]:
    """The box prompt: exact, or (training) `jittered_box` of the example's mask, the package's training boxes."""
    if rng is None or not jitter or not example["mask"].any():
        return example["box"]
    return jittered_box(example["mask"].numpy(), rng, jitter)


def _batch(examples, ids, rng=None, jitter=0.0):
    pixels = stack_pixels(examples[i]["pixels"] for i in ids)
    boxes = [_box(examples[i], rng, jitter) for i in ids]
    return {
        "pixel_values": pixels,
        "input_boxes": torch.tensor(boxes, dtype=torch.float32)[:, None],
        "masks": torch.stack([examples[i]["mask"] for i in ids]),
        "labels": torch.tensor([examples[i]["label"] for i in ids]),
    }


# --------------------------------------------------------------------------------------------------------------
# Models


def load_prompted_model(init: str, num_labels: int) -> UltraSamForPromptedClassification:
    """`init`: a saved UltraSam folder, or `preset:<name>` for a randomly initialised preset."""
    if init.startswith("preset:"):
        return UltraSamForPromptedClassification(
            UltraSamConfig.from_preset(init.split(":", 1)[1], num_labels=num_labels)
        )
    return UltraSamForPromptedClassification.from_pretrained(init, num_labels=num_labels)


def add_lora(model: UltraSamForPromptedClassification, rank: int, alpha: int):
    """LoRA on the encoder's `qkv` projections, the package's LoRA path (`training.variants.apply_variant`); the
    classification head stays trainable, everything else frozen."""
    return apply_variant(model, "lora", lora_rank=rank, lora_alpha=alpha, modules_to_save=["classifier"])


def trainable_parameter_names(model: nn.Module) -> list[str]:
    return [name for name, param in model.named_parameters() if param.requires_grad]


# --------------------------------------------------------------------------------------------------------------
# Losses and loops


def mask_loss(mask_logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """BCE + Dice between `(B, h, w)` low-res logits and full-size boolean masks (downsampled by area)."""
    target = F.interpolate(masks[:, None].float(), size=mask_logits.shape[-2:], mode="area")[:, 0]
    target = (target > 0.5).float()
    bce = F.binary_cross_entropy_with_logits(mask_logits, target)
    probability = mask_logits.sigmoid().flatten(1)
    target = target.flatten(1)
    dice = 1 - (2 * (probability * target).sum(1) + 1) / (probability.sum(1) + target.sum(1) + 1)
    return bce + dice.mean()


def class_weights(labels, num_labels: int, enabled: bool) -> torch.Tensor | None:
    if not enabled:
        return None
    counts = np.bincount(np.asarray(labels), minlength=num_labels).astype(np.float64)
    weights = counts.sum() / np.maximum(counts, 1) / num_labels
    return torch.tensor(weights, dtype=torch.float32)


def _optimizer(model, args, head_names=("classifier",)):
    head, body = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (head if any(part in name for part in head_names) else body).append(param)
    groups = [{"params": body, "lr": args.learning_rate}, {"params": head, "lr": args.head_learning_rate}]
    return torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=args.weight_decay)


def _linear_warmup_cosine(optimizer, steps):
    """Linear warm-up over the first tenth of the steps, then cosine decay to 0 (transformers' schedule)."""
    return get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=max(steps // 10, 1), num_training_steps=steps)


def _sample(ids, labels, batch_size, rng):
    return [ids[i] for i in rng.choice(len(ids), size=min(batch_size, len(ids)), replace=len(ids) < batch_size)]


def train_end_to_end(model, variant, examples, train_ids, args: ClassificationArguments, num_labels: int) -> dict:
    """Train `full` / `lora` (prompted) or `image-full` (image-level) for `args.steps` steps; returns a log."""
    rng = np.random.default_rng(args.seed)
    weights = class_weights([examples[i]["label"] for i in train_ids], num_labels, args.class_weighting)
    model.train()
    optimizer = _optimizer(model, args)
    scheduler = _linear_warmup_cosine(optimizer, args.steps)
    losses = []
    for _ in range(args.steps):
        batch = _batch(examples, _sample(train_ids, None, args.batch_size, rng), rng, args.box_jitter)
        if variant == "image-full":
            logits = model(batch["pixel_values"])
            loss = F.cross_entropy(logits, batch["labels"], weight=weights)
        else:
            outputs = model(
                pixel_values=batch["pixel_values"], input_boxes=batch["input_boxes"], multimask_output=False
            )
            loss = F.cross_entropy(outputs.logits[:, 0], batch["labels"], weight=weights)
            if args.mask_loss_weight:
                loss = loss + args.mask_loss_weight * mask_loss(outputs.pred_masks[:, 0, 0], batch["masks"])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], args.max_grad_norm)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return {"first_loss": losses[0], "last_loss": float(np.mean(losses[-10:]))}


@torch.no_grad()
def predict_end_to_end(model, variant, examples, ids, batch_size) -> np.ndarray:
    """Softmax scores `(N, num_labels)`."""
    model.eval()
    scores = []
    for start in range(0, len(ids), batch_size):
        batch = _batch(examples, ids[start : start + batch_size])
        if variant == "image-full":
            logits = model(batch["pixel_values"])
        else:
            logits = model(
                pixel_values=batch["pixel_values"], input_boxes=batch["input_boxes"], multimask_output=False
            ).logits[:, 0]
        scores.append(logits.softmax(-1))
    return torch.cat(scores).numpy()


@torch.no_grad()
def cache_head_inputs(
    model: UltraSamForPromptedClassification, examples, ids, batch_size: int
) -> dict[str, torch.Tensor]:
    """Frozen model, one pass per image: the prompted head's input vector per image id (exact box prompt). Its last
    `vision_config.hidden_size` entries are the mean-pooled encoder features before the neck."""
    model.eval()
    captured = {}
    hook = model.classifier.register_forward_pre_hook(lambda module, inputs: captured.__setitem__("x", inputs[0]))
    cache = {}
    try:
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            batch = _batch(examples, chunk)
            model(pixel_values=batch["pixel_values"], input_boxes=batch["input_boxes"], multimask_output=False)
            for image_id, vector in zip(chunk, captured["x"][:, 0]):
                cache[image_id] = vector.clone()
    finally:
        hook.remove()
    return cache


def train_cached_head(head: nn.Module, features, labels, args: ClassificationArguments, num_labels: int) -> dict:
    rng = np.random.default_rng(args.seed)
    weights = class_weights(labels.numpy(), num_labels, args.class_weighting)
    optimizer = torch.optim.AdamW(head.parameters(), lr=args.head_learning_rate, weight_decay=args.weight_decay)
    scheduler = _linear_warmup_cosine(optimizer, args.head_steps)
    head.train()
    losses = []
    for _ in range(args.head_steps):
        index = torch.from_numpy(rng.choice(len(labels), size=min(args.head_batch_size, len(labels)), replace=False))
        loss = F.cross_entropy(head(features[index]), labels[index], weight=weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return {"first_loss": losses[0], "last_loss": float(np.mean(losses[-10:]))}


def compute_metrics(scores: np.ndarray, labels, metric=None) -> dict:
    metric = metric or load_classification_metric()
    result = metric.compute(
        predictions=scores.argmax(-1).tolist(),
        references=list(labels),
        scores=scores.tolist(),
        num_classes=scores.shape[1],
    )
    return {name: result[name] for name in (*METRICS, "count")}


# --------------------------------------------------------------------------------------------------------------
# Benchmark


def run_fold(
    init,
    variants,
    examples,
    train_ids,
    test_ids,
    args: ClassificationArguments,
    metric=None,
    log=print,
    head_cache=None,
) -> list[dict]:
    """All `variants` for one initialisation and one fold; one record per variant. `head_cache` (a dict) keeps the
    frozen model's per-image head inputs across the folds of one initialisation."""
    num_labels = len(args.label_names)
    test_labels = [examples[i]["label"] for i in test_ids]
    records = []
    torch.manual_seed(args.seed)

    cached = [v for v in variants if v in CACHED_VARIANTS]
    if cached:
        start = time.time()
        model = load_prompted_model(init, num_labels)
        cache = head_cache if head_cache is not None else {}
        missing = sorted((set(train_ids) | set(test_ids)) - set(cache))
        cache.update(cache_head_inputs(model, examples, missing, args.batch_size) if missing else {})
        cache_seconds = time.time() - start
        hidden = model.config.vision_config.hidden_size
        train_x = torch.stack([cache[i] for i in train_ids])
        test_x = torch.stack([cache[i] for i in test_ids])
        train_y = torch.tensor([examples[i]["label"] for i in train_ids])
        for variant in cached:
            start = time.time()
            torch.manual_seed(args.seed)
            if variant == "head":
                head = model.classifier  # the paper's MLP, freshly initialised on the frozen model
                for module in head:
                    if hasattr(module, "reset_parameters"):
                        module.reset_parameters()
                x_train, x_test = train_x, test_x
            else:
                head = nn.Linear(hidden, num_labels)
                x_train, x_test = train_x[:, -hidden:], test_x[:, -hidden:]
            train_log = train_cached_head(head, x_train, train_y, args, num_labels)
            head.eval()
            with torch.no_grad():
                scores = head(x_test).softmax(-1).numpy()
            records.append(
                {
                    "variant": variant,
                    **compute_metrics(scores, test_labels, metric),
                    **train_log,
                    "trainable_parameters": sum(p.numel() for p in head.parameters()),
                    "seconds": round(time.time() - start + cache_seconds / len(cached), 1),
                }
            )
            log(f"  {variant}: {records[-1]}")

    for variant in (v for v in variants if v not in CACHED_VARIANTS):
        start = time.time()
        torch.manual_seed(args.seed)
        model = load_prompted_model(init, num_labels)
        if variant == "lora":
            model = add_lora(model, args.lora_rank, args.lora_alpha)
        elif variant == "image-full":
            model = UltraSamImageClassifier(model.vision_encoder, model.config.vision_config.hidden_size, num_labels)
        train_log = train_end_to_end(model, variant, examples, train_ids, args, num_labels)
        scores = predict_end_to_end(model, variant, examples, test_ids, args.batch_size)
        records.append(
            {
                "variant": variant,
                **compute_metrics(scores, test_labels, metric),
                **train_log,
                "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
                "seconds": round(time.time() - start, 1),
            }
        )
        log(f"  {variant}: {records[-1]}")
    return records


def summarize(records: list[dict]) -> list[dict]:
    """Mean ± std over folds per (init, variant)."""
    summary = []
    keys = list(dict.fromkeys((r["init"], r["variant"]) for r in records))
    for init, variant in keys:
        rows = [r for r in records if r["init"] == init and r["variant"] == variant]
        entry = {"init": init, "variant": variant, "folds": [r["fold"] for r in rows]}
        for name in METRICS:
            stats = metric_stats(r[name] for r in rows)
            entry[name], entry[f"{name}_std"] = stats["mean"], stats["std"]
        entry["seconds_per_fold"] = float(np.mean([r["seconds"] for r in rows]))
        summary.append(entry)
    return summary


def results_markdown(summary: list[dict], meta: dict) -> str:
    lines = [
        "| init | variant | folds | accuracy | balanced accuracy | F1 (malignant) | AUC | s / fold |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in summary:
        cells = " | ".join(f"{entry[m]:.3f} ± {entry[m + '_std']:.3f}" for m in METRICS)
        folds = ",".join(str(f) for f in entry["folds"])
        lines.append(f"| {entry['init']} | {entry['variant']} | {folds} | {cells} | {entry['seconds_per_fold']:.0f} |")
    return "\n".join(lines) + "\n"


def write_results(summary, records, meta, markdown_path, intro: str = "") -> None:
    markdown_path = Path(markdown_path)
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    text = intro + results_markdown(summary, meta)
    markdown_path.write_text(text, encoding="utf-8")
    markdown_path.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "summary": summary, "per_fold": records}, indent=1), encoding="utf-8"
    )


def model_config(init: str) -> UltraSamConfig:
    """Config of an initialisation (`preset:<name>` or a saved folder), without building the model."""
    if init.startswith("preset:"):
        return UltraSamConfig.from_preset(init.split(":", 1)[1])
    return UltraSamConfig.from_pretrained(init)


def run_classification_benchmark(inits, variants, rows, folds: dict, args: ClassificationArguments, log=print):
    """`folds`: `{fold: {"train": ids, "test": ids}}`. Returns (per-fold records, summary)."""
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}; choose from {VARIANTS}")
    metric = load_classification_metric()
    records, prepared = [], {}
    for init in inits:
        config = model_config(init)
        key = (
            config.vision_config.image_size,
            config.vision_config.patch_size,
            config.preprocessing,
        )  # what the processor depends on
        if key not in prepared:
            prepared[key] = make_examples(rows, config, args.label_names)
        examples = prepared[key]
        head_cache = {}
        for fold, parts in folds.items():
            train_ids = [i for i in parts["train"] if i in examples]
            test_ids = [i for i in parts["test"] if i in examples]
            log(f"init {init} fold {fold}: {len(train_ids)} train / {len(test_ids)} test images")
            for record in run_fold(init, variants, examples, train_ids, test_ids, args, metric, log, head_cache):
                records.append({"init": init, "fold": fold, **record})
    return records, summarize(records)


__all__ = [
    "CACHED_VARIANTS",
    "ClassificationArguments",
    "METRICS",
    "UltraSamImageClassifier",
    "VARIANTS",
    "add_lora",
    "cache_head_inputs",
    "load_classification_metric",
    "load_prompted_model",
    "make_examples",
    "results_markdown",
    "run_classification_benchmark",
    "summarize",
    "trainable_parameter_names",
    "write_results",
]
