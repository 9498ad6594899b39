"""Prompted classification downstream task (the paper's BUS-BRA benign / malignant experiment, and the labelled
objects of any built dataset, e.g. USGRA nerve / vessel), and its baselines.

Variants, all on the same encoder and initialisation:

- `full`: `UltraSamForPromptedClassification`, every parameter trained; loss = cross-entropy of the per-prompt class
  + `mask_loss_weight` x (BCE + Dice) of the prompt's mask (segmentation and classification train jointly, as the
  paper adds the classification loss to the mask losses).
- `lora`: the same model with LoRA (peft) on the encoder's `qkv` projections; only LoRA weights and the head train.
- `head`: frozen model, only the classification MLP trains, on its cached per-prompt input
  [mask token 0, mean decoder image tokens, mean encoder features before the neck] (computed once per image,
  standardised with the training fold's statistics).
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
from ..evaluation.bootstrap import grouped_bootstrap
from ..evaluation.prompts import box_from_mask, jittered_box
from ..inference.model_loading import resolve_model_folder
from ..models.configuration_ultrasam import UltraSamConfig
from ..models.image_processing_ultrasam import UltraSamImageProcessor
from ..models.modeling_ultrasam import UltraSamForPromptedClassification
from ..models.modeling_ultrasam_image_classifier import UltraSamImageClassifier
from ..training.variants import apply_variant
from .cache import TensorCache, cache_file
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
    standardize_features: bool = True  # cached variants: z-score the frozen features (training-fold statistics)
    bootstrap_resamples: int = 1000  # draws of the patient bootstrap behind every interval
    seed: int = 0
    label_names: list = field(default_factory=lambda: ["benign", "malignant"])
    label_field: str = "class_label"  # the object field classified (`category` for USGRA nerve / vessel)


# --------------------------------------------------------------------------------------------------------------
# Examples


def make_examples(
    rows: list[dict], config: UltraSamConfig, label_names: list[str], label_field: str = "class_label"
) -> dict[str, dict]:
    """One example per labelled object (its `label_field`, e.g. BUS-BRA's `class_label` benign / malignant or USGRA's
    `category` nerve / vessel), preprocessed by the model's processor (`UltraSamImageProcessor.from_model_config`,
    input size and mode of `config`): `pixels` `(C, S, S)` float16 (`preprocess`; one tensor shared by the objects of
    an image), `mask` `(S, S)` bool, `box` xyxy in input pixels (tight inclusive box of the preprocessed mask, as
    `box_from_mask`), `label` int, `image_id`, `group` (patient / scan). Keyed by the image id when the image has one
    labelled object (BUS-BRA), else by `<image id>#<object index>`. Objects without a label are left out."""
    image_processor = UltraSamImageProcessor.from_model_config(config)
    size = config.vision_config.image_size
    examples = {}
    for row in rows:
        objects = [(k, obj) for k, obj in enumerate(row["objects"]) if obj.get(label_field) is not None]
        if not objects:
            continue
        pixels, masks, (new_h, _) = preprocess(
            image_processor, row["image"], [obj["mask"] for _, obj in objects], size
        )
        pixels = torch.from_numpy(pixels).half()
        scale = new_h / row["image"].shape[0]
        for (index, obj), mask in zip(objects, masks):
            key = row["image_id"] if len(objects) == 1 else f"{row['image_id']}#{index}"
            examples[key] = {
                "pixels": pixels,
                "mask": torch.from_numpy(mask),
                # an object too small to survive the resize keeps its scaled release box
                "box": box_from_mask(mask) if mask.any() else [v * scale for v in obj["bbox"]],
                "label": label_names.index(obj[label_field]),
                "image_id": row["image_id"],
                "group": str(row.get("group_id") or row["image_id"]),  # patient / scan: what the bootstrap resamples
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
    """`init`: a saved UltraSam folder, shipped model name or Hub id, or `preset:<name>` for a randomly initialised
    preset."""
    if init.startswith("preset:"):
        return UltraSamForPromptedClassification(
            UltraSamConfig.from_preset(init.split(":", 1)[1], num_labels=num_labels)
        )
    return UltraSamForPromptedClassification.from_pretrained(resolve_model_folder(init), num_labels=num_labels)


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
    model: UltraSamForPromptedClassification, examples, ids, batch_size: int, cache=None, progress: bool = False
) -> dict[str, torch.Tensor]:
    """Frozen model, one encoder pass per image: the prompted head's input vector per example id (exact box prompt;
    the objects of one image are prompted together). Its last `vision_config.hidden_size` entries are the mean-pooled
    encoder features before the neck. Vectors go into `cache` (a `TensorCache`, saved after every batch so that an
    interrupted run resumes; an in-memory one when not given)."""
    from tqdm.auto import tqdm

    model.eval()
    captured = {}
    hook = model.classifier.register_forward_pre_hook(lambda module, inputs: captured.__setitem__("x", inputs[0]))
    cache = TensorCache() if cache is None else cache
    by_image = {}
    for example_id in ids:
        by_image.setdefault(examples[example_id].get("image_id", example_id), []).append(example_id)
    images = list(by_image.values())
    try:
        with tqdm(total=len(images), desc="encoding (frozen model)", unit="img", disable=not progress) as bar:
            for start in range(0, len(images), batch_size):
                chunk = images[start : start + batch_size]
                # images with the same number of objects go through together: (images, objects, 4) boxes
                for count in sorted({len(objects) for objects in chunk}):
                    same = [objects for objects in chunk if len(objects) == count]
                    pixels = stack_pixels(examples[objects[0]]["pixels"] for objects in same)
                    boxes = torch.tensor([[examples[i]["box"] for i in objects] for objects in same])
                    model(pixel_values=pixels, input_boxes=boxes.float(), multimask_output=False)
                    for objects, vectors in zip(same, captured["x"]):
                        for example_id, vector in zip(objects, vectors):
                            cache[example_id] = vector.clone()
                cache.save()
                bar.update(len(chunk))
    finally:
        hook.remove()
    cache.consolidate()
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
    progress: bool = False,
) -> list[dict]:
    """All `variants` for one initialisation and one fold; one record per variant, with the test images' ids, labels
    and positive-class scores (`scores`: out-of-fold predictions, for the bootstrap intervals of `summarize`).
    `head_cache` (a `TensorCache`) keeps the frozen model's per-image head inputs across the folds."""
    num_labels = len(args.label_names)
    records = []
    torch.manual_seed(args.seed)

    cached = [v for v in variants if v in CACHED_VARIANTS]
    if cached:
        start = time.time()
        model = load_prompted_model(init, num_labels)
        cache = head_cache if head_cache is not None else TensorCache()
        missing = sorted((set(train_ids) | set(test_ids)) - set(cache))
        if missing:
            cache_head_inputs(model, examples, missing, args.batch_size, cache=cache, progress=progress)
        cache_seconds = time.time() - start
        hidden = model.config.vision_config.hidden_size
        train_x = torch.stack([cache[i] for i in train_ids]).float()
        test_x = torch.stack([cache[i] for i in test_ids]).float()
        if args.standardize_features:
            # the head input concatenates three feature blocks of unrelated scales; a probe on frozen features
            # standardises each feature with the training images' statistics
            mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
            train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
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
            seconds = time.time() - start + cache_seconds / len(cached)
            records.append(_record(variant, scores, test_ids, examples, metric, train_log, head, seconds))
            log(f"  {variant}: {_loggable(records[-1])}")

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
        seconds = time.time() - start
        records.append(_record(variant, scores, test_ids, examples, metric, train_log, model, seconds))
        log(f"  {variant}: {_loggable(records[-1])}")
    return records


PREDICTION_KEYS = ("image_ids", "groups", "labels", "scores")


def _record(variant, scores, test_ids, examples, metric, train_log, trained: nn.Module, seconds) -> dict:
    test_labels = [examples[i]["label"] for i in test_ids]
    return {
        "variant": variant,
        **compute_metrics(scores, test_labels, metric),
        **train_log,
        "trainable_parameters": sum(p.numel() for p in trained.parameters() if p.requires_grad),
        "seconds": round(seconds, 1),
        "image_ids": list(test_ids),
        "groups": [examples[i].get("group", i) for i in test_ids],
        "labels": [int(v) for v in test_labels],
        "scores": np.round(scores, 5).tolist(),  # (N, num_labels) softmax
    }


def _loggable(record: dict) -> dict:
    return {key: value for key, value in record.items() if key not in PREDICTION_KEYS}


def summarize(records: list[dict], metric=None, resamples: int = 1000, seed: int = 0) -> list[dict]:
    """Per (init, variant): mean ± std over folds, and the metrics of the pooled out-of-fold predictions (every image
    scored once, by the fold that held it out) with 95 % intervals from a bootstrap over patients
    (`evaluation.bootstrap.grouped_bootstrap` on the records' `groups`). For every initialisation after the first,
    `difference` holds the paired bootstrap interval of its metrics minus the first's, same variant, same images."""
    metric = metric or load_classification_metric()
    summary, pooled = [], {}
    keys = list(dict.fromkeys((r["init"], r["variant"]) for r in records))
    for init, variant in keys:
        rows = [r for r in records if r["init"] == init and r["variant"] == variant]
        entry = {"init": init, "variant": variant, "folds": [r["fold"] for r in rows]}
        for name in METRICS:
            stats = metric_stats(r[name] for r in rows)
            entry[name], entry[f"{name}_std"] = stats["mean"], stats["std"]
        entry["seconds_per_fold"] = float(np.mean([r["seconds"] for r in rows]))
        if all("scores" in r for r in rows):
            pooled[init, variant] = predictions = _pooled_predictions(rows)
            entry["pooled"] = grouped_bootstrap(
                lambda index: _metrics_at(metric, predictions, index),
                predictions["groups"],
                resamples=resamples,
                seed=seed,
            )
        summary.append(entry)
    reference = keys[0][0] if keys else None
    for entry in summary:
        other, base = pooled.get((entry["init"], entry["variant"])), pooled.get((reference, entry["variant"]))
        if entry["init"] != reference and other is not None and base is not None:
            entry["difference"] = {"reference": reference, **_paired_difference(metric, other, base, resamples, seed)}
    return summary


def _pooled_predictions(rows: list[dict]) -> dict[str, np.ndarray]:
    pooled = {key: [] for key in ("image_ids", "groups", "labels", "scores")}
    for row in rows:
        for key in pooled:
            pooled[key].extend(row.get(key) or row["image_ids"])  # no groups recorded: one group per image
    order = np.argsort(pooled["image_ids"], kind="stable")
    return {key: np.asarray(values)[order] for key, values in pooled.items()}


def _metrics_at(metric, predictions: dict, index: np.ndarray) -> dict[str, float]:
    """The metric module's computation on a subset (its `_compute` directly: 1,000 bootstrap draws would otherwise
    each write an Arrow table)."""
    scores = predictions["scores"][index]
    result = metric._compute(
        predictions=scores.argmax(-1),
        references=predictions["labels"][index],
        scores=scores,
        num_classes=scores.shape[1],
    )
    return {name: result[name] for name in METRICS}


def _paired_difference(metric, other: dict, base: dict, resamples: int, seed: int) -> dict:
    common = np.intersect1d(other["image_ids"], base["image_ids"])
    if common.size == 0:
        return {}
    a = {key: values[np.isin(other["image_ids"], common)] for key, values in other.items()}
    b = {key: values[np.isin(base["image_ids"], common)] for key, values in base.items()}

    def statistic(index):
        first, second = _metrics_at(metric, a, index), _metrics_at(metric, b, index)
        return {name: first[name] - second[name] for name in METRICS}

    return grouped_bootstrap(statistic, a["groups"], resamples=resamples, seed=seed)


def _interval(stats: dict) -> str:
    return f"{stats['value']:.3f} [{stats['low']:.3f}, {stats['high']:.3f}]"


def results_markdown(summary: list[dict], meta: dict) -> str:
    """Pooled out-of-fold metrics with their 95 % patient-bootstrap intervals, the mean ± std of AUC over folds, and
    the paired differences to the first initialisation (when several were run)."""
    names = meta.get("label_names") or ClassificationArguments().label_names
    f1 = f"F1 {names[1]}" if len(names) == 2 else "F1 (macro)"
    lines = [
        f"| init | variant | folds | AUC [95 % CI] | balanced accuracy [95 % CI] | {f1} [95 % CI] "
        "| accuracy [95 % CI] | AUC per fold, mean ± std | s / fold |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in summary:
        folds = ",".join(str(f) for f in entry["folds"])
        pooled = entry.get("pooled")
        cells = [
            _interval(pooled[name]) if pooled else "—" for name in ("roc_auc", "balanced_accuracy", "f1", "accuracy")
        ]
        per_fold = f"{entry['roc_auc']:.3f} ± {entry['roc_auc_std']:.3f}"
        lines.append(
            f"| {entry['init']} | {entry['variant']} | {folds} | {' | '.join(cells)} | {per_fold} "
            f"| {entry['seconds_per_fold']:.0f} |"
        )
    differences = [entry for entry in summary if entry.get("difference")]
    if differences:
        lines += [
            "",
            f"Paired differences to `{differences[0]['difference']['reference']}` (same variant, same images; "
            "95 % patient-bootstrap intervals; an interval that excludes 0 is a difference):",
            "",
            f"| init | variant | Δ AUC | Δ balanced accuracy | Δ {f1} |",
            "|---|---|---|---|---|",
        ]
        for entry in differences:
            cells = " | ".join(_interval(entry["difference"][name]) for name in ("roc_auc", "balanced_accuracy", "f1"))
            lines.append(f"| {entry['init']} | {entry['variant']} | {cells} |")
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
    """Config of an initialisation (`preset:<name>`, a saved folder, shipped model name or Hub id), without building
    the model."""
    if init.startswith("preset:"):
        return UltraSamConfig.from_preset(init.split(":", 1)[1])
    return UltraSamConfig.from_pretrained(resolve_model_folder(init))


def run_classification_benchmark(
    inits, variants, rows, folds: dict, args: ClassificationArguments, log=print, cache_dir=None, progress=False
):
    """`folds`: `{fold: {"train": image ids, "test": image ids}}`. Returns (per-fold records, summary). `cache_dir`: where the
    frozen models' head inputs are kept between runs (`TensorCache`); `progress`: a bar over the encoder pass."""
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
            prepared[key] = make_examples(rows, config, args.label_names, args.label_field)
        examples = prepared[key]
        head_cache = TensorCache(cache_file(cache_dir, init, args.seed) if cache_dir else None)
        for fold, parts in folds.items():
            # folds list image ids; an image with several labelled objects gives several examples
            train_images, test_images = set(parts["train"]), set(parts["test"])
            train_ids = [k for k, e in examples.items() if e["image_id"] in train_images]
            test_ids = [k for k, e in examples.items() if e["image_id"] in test_images]
            log(f"init {init} fold {fold}: {len(train_ids)} train / {len(test_ids)} test examples (labelled objects)")
            if not train_ids or not test_ids:
                log(f"  fold {fold} skipped: no {'training' if not train_ids else 'test'} images")
                continue
            for record in run_fold(
                init, variants, examples, train_ids, test_ids, args, metric, log, head_cache, progress
            ):
                records.append({"init": init, "fold": fold, **record})
    return records, summarize(records, metric, resamples=args.bootstrap_resamples, seed=args.seed)


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
