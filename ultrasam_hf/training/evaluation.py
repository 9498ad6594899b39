"""Validation during training: Dice per dataset and prompt type with the paper's test prompts.

Per instance: `box` = tight box of the ground truth (no jitter), `point` = its centroid (snapped inside the mask). The
model's low-res logits are upscaled to the padded input, cropped to the resized image and resized to the original
size (SAM's post-processing), thresholded at 0 and scored with `ultrasam_hf.evaluation.metrics.dice` against the
original-resolution mask. The mask kept is the one with the highest predicted IoU (what a user gets at inference).
"""

from __future__ import annotations

import numpy as np
import torch

from ..evaluation.metrics import dice
from ..evaluation.prompts import box_from_mask, centroid_point
from ..models.transforms import resized_size, scale_coordinates, upscale_logits
from .data import decode_instance_mask, image_array

PROMPT_TYPES = ("box", "point")


@torch.no_grad()
def predict_instances(
    model, image_embeddings, kind: str, prompts: np.ndarray, multimask: bool, chunk: int = 16
) -> torch.Tensor:
    """Low-res logits `(N, h, w)` for N prompts of one `kind` on one image (embedding `(1, C, h, w)`)."""
    outputs = []
    for start in range(0, len(prompts), chunk):
        part = torch.as_tensor(
            prompts[start : start + chunk], dtype=image_embeddings.dtype, device=image_embeddings.device
        )
        if kind == "box":
            out = model(image_embeddings=image_embeddings, input_boxes=part[None], multimask_output=multimask)
        else:
            labels = torch.ones(1, part.shape[0], 1, dtype=torch.long, device=part.device)
            out = model(
                image_embeddings=image_embeddings,
                input_points=part[None, :, None, :],
                input_labels=labels,
                multimask_output=multimask,
            )
        masks, scores = out.pred_masks[0], out.iou_scores[0]  # (P, M, h, w), (P, M)
        best = scores.argmax(dim=-1)
        outputs.append(masks[torch.arange(masks.shape[0]), best])
    return torch.cat(outputs)


@torch.no_grad()
def evaluate_dice(
    model, rows, image_processor, *, multimask: bool = True, max_images: int | None = None, prompt_types=PROMPT_TYPES
) -> dict:
    """Mean Dice per dataset and prompt type over the instances of `rows` (any iterable of rows).

    Returns `{"<dataset>": {"box": dice, "point": dice, "instances": n}, ...}`; the model is put back in its mode.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    input_size = int(model.config.prompt_encoder_config.image_size)
    scores: dict[str, dict[str, list[float]]] = {}
    for count, row in enumerate(rows):
        if max_images is not None and count >= max_images:
            break
        image = image_array(row["image"])
        height, width = image.shape[:2]
        new_size = resized_size(height, width, input_size)
        pixels = image_processor(images=image, return_tensors="pt")["pixel_values"].to(device)
        embeddings = model.get_image_embeddings(pixels)
        masks = [decode_instance_mask(obj) for obj in row["objects"]]
        masks = [m for m in masks if m.any()]
        if not masks:
            continue
        per_dataset = scores.setdefault(row["dataset"], {kind: [] for kind in prompt_types})
        for kind in prompt_types:
            prompts = [box_from_mask(m) if kind == "box" else centroid_point(m) for m in masks]
            prompts = scale_coordinates(prompts, (height, width), new_size, dtype=np.float32)
            logits = predict_instances(model, embeddings, kind, prompts, multimask)
            predicted = (upscale_logits(logits, input_size, new_size, (height, width)) > 0).cpu().numpy()
            per_dataset[kind] += [dice(p, m) for p, m in zip(predicted, masks)]
    model.train(was_training)
    return {
        name: {
            **{kind: float(np.mean(values[kind])) for kind in prompt_types},
            "instances": len(values[prompt_types[0]]),
        }
        for name, values in sorted(scores.items())
    }


def summary_line(step: int, results: dict) -> str:
    """`eval step 200 | bus-bra box 0.812 point 0.701 (n=40) | hc18 ...`"""
    parts = [f"eval step {step}"]
    for name, values in results.items():
        kinds = " ".join(f"{k} {v:.3f}" for k, v in values.items() if k != "instances")
        parts.append(f"{name} {kinds} (n={values['instances']})")
    return " | ".join(parts)


def flatten_results(results: dict, prefix: str = "val") -> dict:
    return {
        f"{prefix}/{name}/{kind}_dice": value
        for name, values in results.items()
        for kind, value in values.items()
        if kind != "instances"
    }


__all__ = ["PROMPT_TYPES", "evaluate_dice", "flatten_results", "predict_instances", "summary_line"]
