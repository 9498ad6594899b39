"""The training forward: one call = encoder (or cached embeddings) -> every prompt of the batch -> losses.

Wrapping the whole step in one `nn.Module.forward` keeps DDP / FSDP happy (one forward per backward) while the decoder
is called several times inside: once per prompt kind (boxes and points cannot share one prompt-encoder call), and once
more per corrective-click round. Prompts are folded into the batch dimension (`point_batch_size` 1), each with its
image's embedding, so per-prompt mask prompts are plain SAM mask prompts.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .losses import LossWeights, best_mask_loss
from .prompt_sampling import BOX, POINT, sample_correction_clicks


class UltraSamTrainingModule(nn.Module):
    """Computes the UltraSam loss of a collated batch (`data.collate`).

    Per prompt and per round: the final pass's best-IoU mask loss, plus the first pass's loss when the model has a
    refinement pass (both summed, not detached, as the paper). Rounds: 1 + `clicks`; each click round adds one
    corrective click from the error region of the previous round's mask (the one with the highest *predicted* IoU,
    as at inference) and gives that mask's low-res logits as mask prompt. The loss is the mean over prompts of the
    sum over rounds and passes.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_weights: LossWeights = LossWeights(),
        clicks: int = 0,
        multimask: bool = True,
        multimask_boxes: bool = True,
        train_encoder: bool = True,
        click_seed: int = 0,
    ):
        super().__init__()
        self.model = model
        self.loss_weights = loss_weights
        self.clicks = int(clicks)
        self.multimask = multimask
        self.multimask_boxes = multimask_boxes
        self.train_encoder = train_encoder
        self.click_generator = torch.Generator().manual_seed(int(click_seed))

    @property
    def config(self):
        return self.model.config

    def _input_size(self) -> int:
        return int(self.config.prompt_encoder_config.image_size)

    def _embeddings(self, batch) -> torch.Tensor:
        if batch.get("image_embeddings") is not None:
            return batch["image_embeddings"]
        context = contextlib.nullcontext() if self.train_encoder else torch.no_grad()
        with context:
            # not `get_image_embeddings`: transformers decorates it with `torch.no_grad()`
            return self.model.vision_encoder(batch["pixel_values"]).last_hidden_state

    def _decode(self, embeddings, kind, prompts, clicks, click_labels, mask_prompt, multimask):
        kwargs = {"image_embeddings": embeddings, "multimask_output": multimask}
        if kind == BOX:
            kwargs["input_boxes"] = prompts[:, None, :4]
            if clicks is not None:
                kwargs["input_points"], kwargs["input_labels"] = clicks[:, None], click_labels[:, None]
        else:
            points, labels = prompts[:, None, :2], torch.ones(prompts.shape[0], 1, dtype=torch.long, device=prompts.device)
            if clicks is not None:
                points, labels = torch.cat([points, clicks], dim=1), torch.cat([labels, click_labels], dim=1)
            kwargs["input_points"], kwargs["input_labels"] = points[:, None], labels[:, None]
        if mask_prompt is not None:
            kwargs["input_masks"] = mask_prompt[:, None]
        return self.model(**kwargs)

    def forward(self, batch: dict) -> dict:
        embeddings = self._embeddings(batch)
        image_index, kinds = batch["image_index"], batch["prompt_types"]
        prompts, targets = batch["prompts"].to(embeddings.dtype), batch["masks"]
        total = embeddings.sum() * 0.0  # keeps the graph connected when a batch has no usable instance
        logs = {"focal": 0.0, "dice": 0.0, "iou_mse": 0.0, "iou": 0.0, "prompts": int(kinds.numel())}
        count = max(int(kinds.numel()), 1)
        for kind in (BOX, POINT):
            selected = (kinds == kind).nonzero(as_tuple=True)[0]
            if selected.numel() == 0:
                continue
            group_embeddings = embeddings[image_index[selected]]
            group_prompts, group_targets = prompts[selected], targets[selected]
            clicks = click_labels = mask_prompt = None
            for round_index in range(1 + self.clicks):
                # SAM: multimask only for the first, ambiguous prompt (optionally not for boxes, which SAM deems
                # unambiguous); refinement models always end multimask.
                multimask = self.multimask and round_index == 0 and (kind == POINT or self.multimask_boxes)
                out = self._decode(group_embeddings, kind, group_prompts, clicks, click_labels, mask_prompt, multimask)
                terms = best_mask_loss(out.pred_masks[:, 0], out.iou_scores[:, 0], group_targets, self.loss_weights)
                loss = terms["loss"]
                if out.first_pass_pred_masks is not None:
                    first = best_mask_loss(out.first_pass_pred_masks[:, 0], out.first_pass_iou_scores[:, 0], group_targets, self.loss_weights)
                    loss = loss + first["loss"]
                total = total + loss.sum()
                for name in ("focal", "dice", "iou_mse", "iou"):
                    logs[name] += float(terms[name].detach().sum()) / (1 + self.clicks)
                if round_index < self.clicks:
                    with torch.no_grad():
                        chosen = out.iou_scores[:, 0].argmax(dim=-1)
                        rows = torch.arange(chosen.shape[0], device=chosen.device)
                        mask_prompt = out.pred_masks[:, 0][rows, chosen].detach()
                        point, label = sample_correction_clicks(mask_prompt, group_targets, self.click_generator, self._input_size())
                    clicks = point if clicks is None else torch.cat([clicks, point], dim=1)
                    click_labels = label if click_labels is None else torch.cat([click_labels, label], dim=1)
        for name in ("focal", "dice", "iou_mse", "iou"):
            logs[name] /= count
        return {"loss": total / count, "logs": logs}

    # RNG of the click simulation, saved with the accelerator state.
    def state_dict_extra(self) -> dict:
        return {"click_generator": self.click_generator.get_state()}

    def load_state_dict_extra(self, state: dict) -> None:
        self.click_generator.set_state(state["click_generator"])


__all__ = ["UltraSamTrainingModule"]
