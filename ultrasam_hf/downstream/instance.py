"""Instance segmentation downstream task: Mask2Former on the UltraSam encoder (`UltraSamBackbone`), COCO mask mAP.

The paper's recipe (Mask2Former on ViT-B blocks 2/5/8/11, COCO R50 head, backbone lr x0.1, large-scale jitter,
1024 px) is scaled down for a CPU: a small head trained from scratch (`mask2former_config` defaults), input long
side `image_size` (128-256 px), random horizontal flips, a few hundred steps. Evaluation: pycocotools `segm` mAP
at the model's input resolution (ground-truth masks resized like the image, padding cropped away).
"""

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation
from transformers.modeling_outputs import BackboneOutput

from ..evaluation.bootstrap import grouped_bootstrap
from ..inference.model_loading import resolve_model_folder
from ..models.configuration_ultrasam import UltraSamConfig
from ..models.configuration_ultrasam_backbone import UltraSamBackboneConfig
from ..models.image_processing_ultrasam import UltraSamImageProcessor
from .cache import TensorCache, cache_file
from .data import preprocess, stack_pixels


def mask2former_config(
    backbone_config: UltraSamBackboneConfig,
    num_labels: int,
    hidden_dim: int = 64,
    num_queries: int = 20,
    encoder_layers: int = 2,
    decoder_layers: int = 3,
    train_num_points: int = 2048,
    **kwargs,
) -> Mask2FormerConfig:
    """Mask2Former around an UltraSam backbone; `hidden_dim` sets the pixel decoder, mask features and queries."""
    heads = max(1, hidden_dim // 32)
    return Mask2FormerConfig(
        backbone_config=backbone_config,
        use_timm_backbone=False,
        num_labels=num_labels,
        feature_size=hidden_dim,
        mask_feature_size=hidden_dim,
        hidden_dim=hidden_dim,
        encoder_feedforward_dim=4 * hidden_dim,
        dim_feedforward=4 * hidden_dim,
        num_attention_heads=heads,
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        num_queries=num_queries,
        train_num_points=train_num_points,
        feature_strides=[4, 8, 16, 32],
        **kwargs,
    )


def build_instance_model(init: str, image_size: int, num_labels: int, fpn_channels: int = 64, **head_kwargs):
    """Mask2Former whose backbone is the encoder of `init` (UltraSam folder, or `preset:<name>` for random weights),
    resized to `image_size`. Returns (model, the UltraSam config of `init`)."""
    if init.startswith("preset:"):
        source = UltraSamConfig.from_preset(init.split(":", 1)[1])
        encoder_state = None
    else:
        from ..models.modeling_ultrasam import UltraSamModel

        pretrained = UltraSamModel.from_pretrained(resolve_model_folder(init))
        source, encoder_state = pretrained.config, pretrained.vision_encoder.state_dict()
    backbone_config = UltraSamBackboneConfig.from_ultrasam_config(
        source, image_size=image_size, fpn_channels=fpn_channels
    )
    model = Mask2FormerForUniversalSegmentation(mask2former_config(backbone_config, num_labels, **head_kwargs))
    if encoder_state is not None:
        result = model.model.pixel_level_module.encoder.load_encoder_weights(encoder_state)
        if result.unexpected_keys:
            raise ValueError(f"unexpected encoder keys: {result.unexpected_keys[:5]}")
    return model, source


@dataclass
class InstanceArguments:
    image_size: int = 128
    steps: int = 300
    batch_size: int = 4
    learning_rate: float = 1e-4
    backbone_lr_factor: float = 0.1  # the paper's backbone lr x 0.1
    weight_decay: float = 0.05
    max_grad_norm: float = 1.0
    score_threshold: float = 0.0
    max_detections: int = 20
    seed: int = 0
    frozen_encoder: bool = False  # encoder frozen, its taps cached once per image: only pyramid + head train
    bootstrap_resamples: int = 200  # draws of the bootstrap over patients / scans behind the AP intervals
    eval_every: int = 0  # steps between validation mask AP checks (0: no validation, `steps` steps are run)
    patience: int = 5  # validation checks without a better AP before training stops (the best weights are kept)
    min_steps: int = 0  # no early stop before this step (a head on weak features needs steps before any detection)


def make_examples(rows, config: UltraSamConfig, image_size: int, categories: list[str]) -> list[dict]:
    """Examples preprocessed by the processor of `config` (`UltraSamImageProcessor.from_model_config`) at input size
    `image_size`: `pixels` `(C, S, S)` float16 (`preprocess`), `masks` `(N, S, S)` bool, `labels`, `valid` (the
    resized image's height and width inside the padding). Instances lost to the resize are dropped."""
    image_processor = UltraSamImageProcessor.from_model_config(config)
    examples = []
    for row in rows:
        pixels, masks, valid = preprocess(
            image_processor, row["image"], [obj["mask"] for obj in row["objects"]], image_size
        )
        keep = [i for i, m in enumerate(masks) if m.any()]
        examples.append(
            {
                "image_id": row["image_id"],
                "pixels": torch.from_numpy(pixels).half(),
                "masks": torch.from_numpy(masks[keep])
                if keep
                else torch.zeros(0, image_size, image_size, dtype=torch.bool),
                "labels": torch.tensor(
                    [categories.index(row["objects"][i]["category"]) for i in keep], dtype=torch.long
                ),
                "valid": valid,
                "group": str(row.get("group_id") or row["image_id"]),  # patient / scan: what the bootstrap resamples
            }
        )
    return examples


def _pixels(examples):
    return stack_pixels(e["pixels"] for e in examples)


# --------------------------------------------------------------------------------------------------------------
# Frozen encoder: its taps computed once per image (seconds per image on a CPU), the pyramid and the head trained on
# them (the paper fine-tunes the backbone at lr x 0.1; with a frozen one a CPU run takes minutes, not days).


class CachedTapsBackbone(nn.Module):
    """Stands in for an `UltraSamBackbone` inside Mask2Former when its encoder is frozen: the backbone's own
    pyramid levels (trained) run on the batch's cached encoder taps, set in `taps` before each forward."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone_pyramid = backbone.pyramid
        self.levels = backbone.levels  # registered here, so the optimizer and state dict see them
        self.taps = None

    def forward(self, pixel_values, **kwargs) -> BackboneOutput:
        if self.taps is None:
            raise RuntimeError("CachedTapsBackbone: set `taps` (the batch's cached encoder taps) before the forward")
        return BackboneOutput(feature_maps=self.backbone_pyramid([tap.float() for tap in self.taps]))


@torch.no_grad()
def encode_taps(backbone, examples, batch_size: int, cache=None, progress: bool = False) -> dict:
    """The encoder taps (`UltraSamBackbone.encoder_taps`, fp16) of every example not yet in `cache` (a `TensorCache`,
    saved after each batch; an in-memory one when not given); attaches them to the examples as `taps`."""
    from tqdm.auto import tqdm

    cache = TensorCache() if cache is None else cache
    backbone.eval()
    missing = [e for e in examples if e["image_id"] not in cache]
    with tqdm(total=len(missing), desc="encoding (frozen encoder)", unit="img", disable=not progress) as bar:
        for start in range(0, len(missing), batch_size):
            chunk = missing[start : start + batch_size]
            taps = backbone.encoder_taps(_pixels(chunk))
            for index, example in enumerate(chunk):
                cache[example["image_id"]] = tuple(tap[index].half().clone() for tap in taps)
            cache.save()
            bar.update(len(chunk))
    cache.consolidate()
    for example in examples:
        example["taps"] = cache[example["image_id"]]
    return cache


def freeze_encoder(model):
    """Swap the Mask2Former backbone for a `CachedTapsBackbone` on the same pyramid levels; returns the original
    backbone (for `encode_taps`)."""
    pixel_module = model.model.pixel_level_module
    backbone = pixel_module.encoder
    pixel_module.encoder = CachedTapsBackbone(backbone)
    return backbone


def _model_inputs(model, batch, flips=()):
    """`pixel_values` of `batch` (horizontally flipped where `flips`); with a frozen encoder the cached taps are set
    (flipped the same way) and the pixels are only a shape (Mask2Former's pixel mask is made from them)."""
    encoder = model.model.pixel_level_module.encoder
    if isinstance(encoder, CachedTapsBackbone):
        size = batch[0]["pixels"].shape[-1]
        taps = [torch.stack(level) for level in zip(*(e["taps"] for e in batch))]
        for i in np.nonzero(flips)[0] if len(flips) else []:
            for tap in taps:
                tap[i] = tap[i].flip(-1)
        encoder.taps = taps
        return torch.zeros(len(batch), 3, size, size)
    pixels = _pixels(batch)
    for i in np.nonzero(flips)[0] if len(flips) else []:
        pixels[i] = pixels[i].flip(-1)
    return pixels


def validation_ap(model, examples, categories, args: InstanceArguments) -> float:
    """COCO mask AP of `model` on `examples` (the early-stopping criterion); leaves the model in train mode."""
    ap = coco_mask_map(examples, predict_instances(model, examples, args), categories)["AP"]
    model.train()
    return ap


class EarlyStopping:
    """Validation-AP early stopping: keeps a copy of the weights of the best check; `check` says when to stop
    (`patience` checks without a better AP, not before step `min_steps`)."""

    def __init__(self, patience: int, min_steps: int = 0):
        self.patience, self.min_steps = patience, min_steps
        self.best_ap, self.best_step, self.best_state = -1.0, 0, None
        self.curve, self.checks_since_best = [], 0

    def check(self, step: int, ap: float, model, log=print) -> bool:
        self.curve.append([step, round(ap, 4)])
        if ap > self.best_ap:
            self.best_ap, self.best_step, self.best_state = ap, step, copy.deepcopy(model.state_dict())
            self.checks_since_best = 0
        else:
            self.checks_since_best += 1
        log(f"  step {step}: validation mask AP {100 * ap:.1f} (best {100 * self.best_ap:.1f} at {self.best_step})")
        stop = self.checks_since_best >= self.patience and step >= self.min_steps
        if stop:
            log(f"  stopped: no better validation AP in {self.patience} checks")
        return stop

    def restore_best(self, model) -> dict:
        """Loads the best check's weights into `model`; returns what the results record keeps of the run."""
        if self.best_state is None:
            return {}
        model.load_state_dict(self.best_state)
        return {"best_step": self.best_step, "validation_AP": self.best_ap, "validation_curve": self.curve}


def train_instance(model, examples, args: InstanceArguments, log=print, validation=(), categories=()) -> dict:
    """Mask2Former's losses on random batches of `examples` (horizontal flips). With `validation` examples and
    `args.eval_every`, validation mask AP is checked every `eval_every` steps; training stops after `args.patience`
    checks without a better AP (not before `args.min_steps`) and the weights of the best check are restored."""
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    trainable = [e for e in examples if len(e["labels"])]
    backbone = [p for n, p in model.named_parameters() if ".pixel_level_module.encoder.encoder." in n]
    backbone_ids = {id(p) for p in backbone}
    head = [p for p in model.parameters() if id(p) not in backbone_ids]
    groups = [
        {"params": head, "lr": args.learning_rate},
        {"params": backbone, "lr": args.learning_rate * args.backbone_lr_factor},
    ]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=args.weight_decay)
    warmup = max(args.steps // 10, 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, 1.0) * (0.1 if s >= 0.9 * args.steps else 1.0)
    )
    stopper = EarlyStopping(args.patience, args.min_steps) if validation and args.eval_every > 0 else None
    model.train()
    losses = []
    for step in range(args.steps):
        batch = [
            trainable[i] for i in rng.choice(len(trainable), size=min(args.batch_size, len(trainable)), replace=False)
        ]
        masks = [e["masks"].float() for e in batch]
        flips = rng.random(len(batch)) < 0.5
        pixels = _model_inputs(model, batch, flips)
        for i in np.nonzero(flips)[0]:
            masks[i] = masks[i].flip(-1)
        outputs = model(pixel_values=pixels, mask_labels=masks, class_labels=[e["labels"] for e in batch])
        optimizer.zero_grad()
        outputs.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        scheduler.step()
        losses.append(outputs.loss.item())
        if (step + 1) % max(args.steps // 5, 1) == 0:
            log(f"  step {step + 1}/{args.steps}: loss {np.mean(losses[-10:]):.3f}")
        if stopper and ((step + 1) % args.eval_every == 0 or step + 1 == args.steps):
            if stopper.check(step + 1, validation_ap(model, validation, categories, args), model, log):
                break
    record = {"first_loss": losses[0], "last_loss": float(np.mean(losses[-10:])), "steps_run": len(losses)}
    if stopper:
        record.update(stopper.restore_best(model))
    return record


@torch.no_grad()
def predict_instances(model, examples, args: InstanceArguments) -> list[list[dict]]:
    """Per image: detections `{"mask": bool[h, w], "score", "label"}` on the unpadded input region, best first."""
    model.eval()
    predictions = []
    for start in range(0, len(examples), args.batch_size):
        chunk = examples[start : start + args.batch_size]
        outputs = model(pixel_values=_model_inputs(model, chunk))
        size = chunk[0]["pixels"].shape[-1]
        class_probs = outputs.class_queries_logits.softmax(-1)[..., :-1]  # drop "no object"
        mask_logits = F.interpolate(
            outputs.masks_queries_logits, size=(size, size), mode="bilinear", align_corners=False
        )
        for example, probs, logits in zip(chunk, class_probs, mask_logits):
            height, width = example["valid"]
            mask_probs = logits[:, :height, :width].sigmoid()
            binary = mask_probs > 0.5
            mask_score = (mask_probs * binary).flatten(1).sum(1) / binary.flatten(1).sum(1).clamp(min=1)
            scores, labels = (probs * mask_score[:, None]).flatten().topk(min(args.max_detections, probs.numel()))
            queries, labels = labels // probs.shape[1], labels % probs.shape[1]
            detections = [
                {"mask": binary[q].numpy(), "score": float(s), "label": int(c)}
                for q, s, c in zip(queries, scores, labels)
                if s > args.score_threshold and binary[q].any()
            ]
            predictions.append(detections)
    return predictions


def coco_mask_map(examples, predictions, categories: list[str]) -> dict:
    """pycocotools `segm` evaluation; returns AP, AP50, AP75, AR@100 and AP per category (in [0, 1])."""
    import contextlib
    import io

    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def rle(mask):
        encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        encoded["counts"] = encoded["counts"].decode()
        return encoded

    images, annotations, detections = [], [], []
    for image_index, (example, detected) in enumerate(zip(examples, predictions), start=1):
        height, width = example["valid"]
        images.append({"id": image_index, "height": height, "width": width})
        for mask, label in zip(example["masks"], example["labels"]):
            mask = mask[:height, :width].numpy()
            if not mask.any():
                continue
            encoded = rle(mask)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_index,
                    "category_id": int(label) + 1,
                    "segmentation": encoded,
                    "area": float(mask.sum()),
                    "bbox": list(mask_utils.toBbox(encoded)),
                    "iscrowd": 0,
                }
            )
        for detection in detected:
            detections.append(
                {
                    "image_id": image_index,
                    "category_id": detection["label"] + 1,
                    "segmentation": rle(detection["mask"]),
                    "score": detection["score"],
                }
            )
    ground_truth = COCO()
    ground_truth.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": c} for i, c in enumerate(categories)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth.createIndex()
        if not detections:
            return {
                "AP": 0.0,
                "AP50": 0.0,
                "AP75": 0.0,
                "AR100": 0.0,
                **{f"AP_{c}": 0.0 for c in categories},
                "detections": 0,
            }
        results = ground_truth.loadRes(detections)
        evaluator = COCOeval(ground_truth, results, iouType="segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats
    metrics = {"AP": float(stats[0]), "AP50": float(stats[1]), "AP75": float(stats[2]), "AR100": float(stats[8])}
    precision = evaluator.eval["precision"]  # (iou, recall, category, area, max_dets)
    for index, name in enumerate(categories):
        values = precision[:, :, index, 0, -1]
        values = values[values > -1]
        metrics[f"AP_{name}"] = float(values.mean()) if values.size else float("nan")
    metrics["detections"] = len(detections)
    return metrics


def run_instance_benchmark(
    inits,
    train_rows,
    test_rows,
    categories,
    args: InstanceArguments,
    head_kwargs=None,
    log=print,
    cache_dir=None,
    progress: bool = False,
    validation_rows=(),
) -> list[dict]:
    """Per initialisation: Mask2Former trained on `train_rows`, COCO mask AP on `test_rows` with bootstrap intervals
    over the test images' patients / scans (`ap_intervals`). `args.frozen_encoder`: the encoder's taps are computed
    once (kept in `cache_dir` between runs) and only the pyramid and head train. `validation_rows` (with
    `args.eval_every`): early stopping on their mask AP (`train_instance`)."""
    records = []
    for init in inits:
        start = time.time()
        model, config = build_instance_model(init, args.image_size, len(categories), **(head_kwargs or {}))
        train = make_examples(train_rows, config, args.image_size, categories)
        test = make_examples(test_rows, config, args.image_size, categories)
        validation = make_examples(validation_rows, config, args.image_size, categories)
        log(
            f"init {init}: {len(train)} train / {len(test)} test images, "
            f"{sum(len(e['labels']) for e in test)} test instances"
            + (f", {len(validation)} validation images" if validation else "")
            + (" (frozen encoder)" if args.frozen_encoder else "")
        )
        if args.frozen_encoder:
            backbone = freeze_encoder(model)
            path = cache_file(cache_dir, init, args.seed, "taps", args.image_size) if cache_dir else None
            encode_taps(backbone, train + validation + test, args.batch_size, TensorCache(path), progress)
        train_log = train_instance(model, train, args, log, validation, categories)
        predictions = predict_instances(model, test, args)
        metrics = coco_mask_map(test, predictions, categories)
        intervals = ap_intervals(test, predictions, categories, args.bootstrap_resamples, args.seed)
        records.append(
            {
                "init": init,
                "variant": "frozen encoder" if args.frozen_encoder else "fine-tuned encoder",
                **metrics,
                "intervals": intervals,
                **train_log,
                "seconds": round(time.time() - start, 1),
            }
        )
        log(f"  {records[-1]}")  # intervals included: a run stopped later still has them
    return records


def ap_intervals(examples, predictions, categories, resamples: int, seed: int = 0) -> dict:
    """95 % intervals of AP, AP50, AP75 from a bootstrap over the examples' groups (patients / scans; COCO evaluation
    rerun on each draw). With a single group (one scan) there is nothing to resample: the images are resampled."""
    images = [e["image_id"] for e in examples]
    groups = [e["group"] for e in examples]
    if len(set(groups)) < 2:
        groups = images

    def statistic(index):
        metrics = coco_mask_map([examples[i] for i in index], [predictions[i] for i in index], categories)
        return {name: metrics[name] for name in ("AP", "AP50", "AP75")}

    result = grouped_bootstrap(statistic, groups, resamples=resamples, seed=seed)
    result["unit"] = "image" if groups == images else "patient / scan"
    return result


@torch.no_grad()
def oracle_predictions(init: str, rows, examples, categories, batch_boxes: int = 64) -> list[list[dict]]:
    """The prompted model given each ground-truth instance's box (and its class): the upper bound a detector feeding
    the prompted model could reach. Masks at the original size, resized (nearest) to each example's input region
    as `coco_mask_map` evaluates; score = the predicted IoU."""
    from ..inference.predictor import UltraSamPredictor

    predictor = UltraSamPredictor.from_pretrained(init, backend="pytorch")
    predictions = []
    for row, example in zip(rows, examples):
        height, width = example["valid"]
        objects = [obj for obj in row["objects"] if obj["mask"].any()]
        detections = []
        if objects:
            predictor.set_image(row["image"])
            boxes = np.asarray([obj["bbox"] for obj in objects], dtype=np.float32)
            for first in range(0, len(boxes), batch_boxes):
                masks, scores, _ = predictor.predict(boxes=boxes[first : first + batch_boxes], multimask_output=False)
                for obj, mask, score in zip(objects[first:], masks[:, 0], scores[:, 0]):
                    resized = F.interpolate(torch.from_numpy(mask)[None, None].float(), size=(height, width))[0, 0]
                    label = categories.index(obj["category"])
                    detections.append({"mask": resized.bool().numpy(), "score": float(score), "label": label})
        predictions.append(detections)
    return predictions


def run_oracle(init: str, test_rows, categories, args: InstanceArguments, log=print) -> dict:
    """`oracle_predictions` of `init` on the test rows, evaluated like the Mask2Former rows (same input regions)."""
    start = time.time()
    config = UltraSamConfig.from_pretrained(resolve_model_folder(init))
    test = make_examples(test_rows, config, args.image_size, categories)
    predictions = oracle_predictions(init, test_rows, test, categories)
    record = {
        "init": init,
        "variant": "oracle: prompted with ground-truth boxes",
        **coco_mask_map(test, predictions, categories),
        "intervals": ap_intervals(test, predictions, categories, args.bootstrap_resamples, args.seed),
        "first_loss": float("nan"),
        "last_loss": float("nan"),
        "seconds": round(time.time() - start, 1),
    }
    log(f"  {record}")
    return record


def _steps(record: dict) -> str:
    """Steps run, and in brackets the step whose weights were kept (validation early stopping)."""
    if "steps_run" not in record:
        return "—"
    return f"{record['steps_run']}" + (f" ({record['best_step']})" if "best_step" in record else "")


def results_markdown(records, categories) -> str:
    """Mask AP / AP50 / AP75 (x100) with their 95 % bootstrap intervals, per-category AP, AR@100."""
    per_category = " | ".join(f"AP {c}" for c in categories)
    lines = [
        f"| init | variant | mask AP [95 % CI] | AP50 [95 % CI] | AP75 [95 % CI] | AR@100 | {per_category} "
        "| steps (best) | final train loss | s |",
        "|---" * (9 + len(categories)) + "|",
    ]

    def cell(record, name):
        interval = (record.get("intervals") or {}).get(name)
        value = f"{100 * record[name]:.1f}"
        return f"{value} [{100 * interval['low']:.1f}, {100 * interval['high']:.1f}]" if interval else value

    for r in records:
        cats = " | ".join(f"{100 * r[f'AP_{c}']:.1f}" for c in categories)
        loss = "—" if not np.isfinite(r.get("last_loss", float("nan"))) else f"{r['last_loss']:.2f}"
        lines.append(
            f"| {r['init']} | {r.get('variant', '')} | {cell(r, 'AP')} | {cell(r, 'AP50')} | {cell(r, 'AP75')} | "
            f"{100 * r['AR100']:.1f} | {cats} | {_steps(r)} | {loss} | {r['seconds']:.0f} |"
        )
    units = {(r.get("intervals") or {}).get("unit") for r in records} - {None}
    if units:
        lines += ["", f"Intervals: 95 % percentile bootstrap over the test {' / '.join(sorted(units))}s."]
    return "\n".join(lines) + "\n"


def write_results(records, categories, meta, markdown_path, intro: str = "") -> None:
    markdown_path = Path(markdown_path)
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(intro + results_markdown(records, categories), encoding="utf-8")
    markdown_path.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "results": records}, indent=1), encoding="utf-8"
    )


__all__ = [
    "CachedTapsBackbone",
    "EarlyStopping",
    "InstanceArguments",
    "ap_intervals",
    "encode_taps",
    "freeze_encoder",
    "oracle_predictions",
    "run_oracle",
    "build_instance_model",
    "coco_mask_map",
    "make_examples",
    "mask2former_config",
    "predict_instances",
    "results_markdown",
    "run_instance_benchmark",
    "train_instance",
    "validation_ap",
    "write_results",
]
