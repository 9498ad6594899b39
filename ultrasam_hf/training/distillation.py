"""Decoupled encoder distillation (MobileSAM's recipe): a small student encoder learns to reproduce a trained model's
image embeddings, from images alone (no masks, no prompts).

The teacher's embeddings are computed once per (image, orientation) with `build_embedding_cache`; the student
(`student_from_teacher`) takes the teacher's prompt encoder, mask decoder and preprocessing unchanged, so once its
embeddings match, it is a drop-in `UltraSamModel` whose masks follow the teacher's. Only the student's encoder trains
(`distill_encoder`: MSE to the teacher's embeddings, AdamW, linear warm-up then cosine decay).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub.errors import StrictDataclassFieldValidationError

from .data import image_array, row_key
from .losses import dice_loss
from .variants import apply_variant

VISION_PREFIX = "vision_encoder."


def student_config(teacher_config, preset: str = "nano", encoder_overrides: dict | None = None):
    """The teacher's config with the vision encoder of `preset`: everything downstream of the embedding (prompt
    encoder, mask decoder, preprocessing, inference settings) is the teacher's. `encoder_overrides` set fields of that
    vision config, e.g. a wider student: `{"nano_embed_dims": [64, 128, 256], "nano_depths": [2, 3, 4],
    "nano_num_heads": 8}`."""
    from ..models.configuration_ultrasam import UltraSamConfig

    vision = UltraSamConfig.from_preset(preset).vision_config
    if encoder_overrides:
        vision = with_encoder_overrides(vision, encoder_overrides)
    teacher_vision = teacher_config.vision_config
    for name in ("image_size", "output_channels", "patch_size"):
        if getattr(vision, name) != getattr(teacher_vision, name):
            raise ValueError(
                f"a {preset!r} student cannot reproduce this teacher's embeddings: {name} is "
                f"{getattr(vision, name)} for the student, {getattr(teacher_vision, name)} for the teacher"
            )
    config = copy.deepcopy(teacher_config)
    config.vision_config = vision
    config.preset = preset
    return config


def with_encoder_overrides(vision_config, overrides: dict):
    """A copy of `vision_config` with `overrides` set (checked by the config class)."""
    values = vision_config.to_dict()
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise ValueError(f"unknown vision config fields {unknown}; see UltraSamVisionConfig for the fields")
    values.update(overrides)
    try:
        return type(vision_config).from_dict(values)
    except (TypeError, ValueError, StrictDataclassFieldValidationError) as error:
        # the strict dataclass check reports a wrong type over several lines
        raise ValueError(" ".join(str(error).split())) from None


def student_from_teacher(teacher, preset: str = "nano", encoder_overrides: dict | None = None):
    """A freshly initialised `preset` encoder (with `encoder_overrides`, see `student_config`) under a copy of the
    teacher's prompt encoder and mask decoder, which are frozen: only `student.vision_encoder` has gradients."""
    from ..models.modeling_ultrasam import UltraSamModel

    student = UltraSamModel(student_config(teacher.config, preset, encoder_overrides))
    shared = {name: tensor for name, tensor in teacher.state_dict().items() if not name.startswith(VISION_PREFIX)}
    missing, unexpected = student.load_state_dict(shared, strict=False)
    not_copied = [name for name in missing if not name.startswith(VISION_PREFIX)]
    if not_copied or unexpected:
        raise ValueError(f"teacher and student differ outside the encoder: missing {not_copied}, extra {unexpected}")
    return apply_variant(student, "encoder-only")


def teacher_geometry_problem(teacher_config, model_config) -> str | None:
    """Why a teacher's embeddings cannot be the model's target (input size, embedding shape), or None."""

    def geometry(config):
        vision = config.vision_config
        side = config.prompt_encoder_config.image_embedding_size
        return int(vision.image_size), f"{vision.output_channels}x{side}x{side}"

    teacher, model = geometry(teacher_config), geometry(model_config)
    if teacher == model:
        return None
    return f"embeds {teacher[0]} px images into {teacher[1]}; the model, {model[0]} px images into {model[1]}"


class DistillationPairs(torch.utils.data.Dataset):
    """`(pixel_values (3, S, S), teacher embedding (C, s, s))` for every (row, orientation) of `rows` (a
    `datasets.Dataset`) in the teacher cache."""

    def __init__(self, rows, image_processor, cache):
        self.rows, self.image_processor, self.cache = rows, image_processor, cache
        orientations = (False, True) if cache.flips else (False,)
        # keys from the id columns: indexing a row would decode its image just to name it
        ids = zip(rows["dataset"], rows["image_id"])
        self.items = [
            (index, flip)
            for index, (dataset, image_id) in enumerate(ids)
            for flip in orientations
            if row_key({"dataset": dataset, "image_id": image_id}, flip) in cache
        ]
        if not self.items:
            raise ValueError(f"none of the {len(rows)} rows has a teacher embedding in {cache.cache_dir}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        row_index, flip = self.items[index]
        row = self.rows[row_index]
        image = image_array(row["image"])
        if flip:
            image = np.ascontiguousarray(image[:, ::-1])
        pixels = self.image_processor(images=image, return_tensors="pt")["pixel_values"][0]
        return pixels, self.cache.get(row_key(row, flip))


@dataclass
class DistillationConfig:
    steps: int = 1000
    batch_size: int = 8
    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    seed: int = 0
    num_workers: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def learning_rate_factor(step: int, config: DistillationConfig) -> float:
    """Linear warm-up over `warmup_steps`, then cosine decay to 0 at `steps`."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def distill_encoder(student, pairs, config: DistillationConfig, progress: bool = True, log_every: int = 50):
    """Train `student.vision_encoder` so that its embeddings of the pixels match the cached teacher embeddings (mean
    squared error). Returns the per-step losses."""
    from tqdm.auto import tqdm

    if config.steps < 1:
        raise ValueError(f"steps must be >= 1, got {config.steps}")
    torch.manual_seed(config.seed)
    parameters = [parameter for parameter in student.vision_encoder.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(step, config))
    loader = torch.utils.data.DataLoader(
        pairs,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=len(pairs) >= config.batch_size,
        num_workers=config.num_workers,
        generator=torch.Generator().manual_seed(config.seed),
    )
    device = next(student.parameters()).device
    student.vision_encoder.train()
    losses, step = [], 0
    bar = tqdm(total=config.steps, desc="distillation", unit="step", disable=not progress)
    while step < config.steps:
        for pixels, target in loader:
            embeddings = student.vision_encoder(pixels.to(device)).last_hidden_state  # get_image_embeddings: no_grad
            loss = F.mse_loss(embeddings, target.to(device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"distillation loss is {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            step += 1
            bar.update(1)
            if step % log_every == 0 or step == config.steps:
                bar.set_postfix(mse=f"{np.mean(losses[-log_every:]):.4f}")
            if step >= config.steps:
                break
    bar.close()
    student.eval()
    return losses


def relative_embedding_error(embeddings: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of `embeddings` to the teacher's `target`, over the variance of `target`: 0 is a copy, 1 is
    no better than the teacher's mean. The distillation term of `pretrain.py --distill-teacher`."""
    target = target.float()  # in float32 under bf16 autocast too: the error is a small fraction of the variance
    return F.mse_loss(embeddings.float(), target) / target.var().clamp_min(1e-12)


# Scores a tenth apart weigh e^2 : 1 in `mask_output_distillation`'s ranking term.
RANKING_TEMPERATURE = 0.05


def mask_output_distillation(
    pred_masks, iou_scores, teacher_masks, teacher_scores, ranking_weight: float = 0.0
) -> torch.Tensor:
    """Per-prompt `(N,)` loss holding a decoder's outputs to the teacher's on the same prompts (EdgeSAM's
    prompt-in-the-loop distillation): over every candidate mask, BCE to the teacher's probabilities plus dice to the
    teacher's mask (`logits > 0`, what is scored), plus the MSE to the teacher's predicted IoUs, which pick the mask
    of an ambiguous click. Shapes as `losses.best_mask_loss`: `(N, M, H, W)` logits and `(N, M)` scores.

    `ranking_weight` adds the KL divergence from the softmax of the teacher's scores to the model's, both at
    temperature `RANKING_TEMPERATURE`, when there are several candidates: the MSE hardly sees two scores a few
    hundredths apart in the wrong order, and that order alone decides which mask a click returns."""
    if pred_masks.shape != teacher_masks.shape or iou_scores.shape != teacher_scores.shape:
        raise ValueError(
            f"the teacher's outputs are {tuple(teacher_masks.shape)} / {tuple(teacher_scores.shape)}, the model's "
            f"{tuple(pred_masks.shape)} / {tuple(iou_scores.shape)}"
        )
    logits, teacher_logits = pred_masks.float().flatten(0, 1), teacher_masks.float().flatten(0, 1)
    bce = F.binary_cross_entropy_with_logits(logits, teacher_logits.sigmoid(), reduction="none").flatten(1).mean(1)
    dice = dice_loss(logits, teacher_logits > 0)
    per_mask = (bce + dice).view(pred_masks.shape[:2]).mean(dim=1)
    loss = per_mask + ((iou_scores.float() - teacher_scores.float()) ** 2).mean(dim=1)
    if ranking_weight and iou_scores.shape[1] > 1:
        log_model = F.log_softmax(iou_scores.float() / RANKING_TEMPERATURE, dim=1)
        log_teacher = F.log_softmax(teacher_scores.float() / RANKING_TEMPERATURE, dim=1)
        ranking = F.kl_div(log_model, log_teacher, reduction="none", log_target=True).sum(dim=1)
        loss = loss + ranking_weight * ranking
    return loss


@torch.no_grad()
def embedding_error_by_dataset(teacher, students: dict, rows, image_processor, progress: bool = True) -> dict:
    """`{dataset: {name: mean relative_embedding_error}}` of each student encoder (`{name: model}`) against the
    teacher's, image by image over `rows` (a `datasets.Dataset`): where a student's embedding strays from the one the
    decoder was trained on."""
    from tqdm.auto import tqdm

    errors: dict[str, dict[str, list[float]]] = {}
    for row in tqdm(rows, desc="embedding error", unit="image", disable=not progress):
        pixels = image_processor(images=image_array(row["image"]), return_tensors="pt")["pixel_values"]
        target = teacher.vision_encoder(pixels).last_hidden_state
        per_model = errors.setdefault(row["dataset"], {name: [] for name in students})
        for name, student in students.items():
            embeddings = student.vision_encoder(pixels).last_hidden_state
            per_model[name].append(relative_embedding_error(embeddings, target).item())
    return {dataset: {name: float(np.mean(v)) for name, v in by_model.items()} for dataset, by_model in errors.items()}


__all__ = [
    "DistillationConfig",
    "DistillationPairs",
    "RANKING_TEMPERATURE",
    "distill_encoder",
    "embedding_error_by_dataset",
    "learning_rate_factor",
    "mask_output_distillation",
    "relative_embedding_error",
    "student_config",
    "student_from_teacher",
    "teacher_geometry_problem",
    "with_encoder_overrides",
]
