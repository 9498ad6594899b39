"""The training forward: one call = encoder (or cached embeddings) -> prompts sampled on the device -> every prompt
of the batch through the decoder -> losses.

Wrapping the whole step in one `nn.Module.forward` keeps DDP / FSDP happy (one forward per backward) while the decoder
is called several times inside: once per prompt kind (boxes and points cannot share one prompt-encoder call), and once
more per corrective-click round. Prompts are folded into the batch dimension (`point_batch_size` 1), each with its
image's embedding, so per-prompt mask prompts are plain SAM mask prompts. By default the decoder passes go through
the split decoder (`split_decoding.py`: the same function and gradients, the image side once per image). Prompt
sampling, click simulation and the losses run on the model's device, batched, with no host synchronisation (the split
decoder reads the prompts' image indices once per pass): the step is as fast as the model.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .distillation import mask_output_distillation, relative_embedding_error
from .losses import LossWeights, best_mask_loss
from .prompt_sampling import BOX, POINT, sample_correction_clicks, sample_prompts
from .split_decoding import SplitDecoding, supports_split_decoding

TASK_TERMS = ("focal", "dice", "iou_mse", "iou")
LOGGED = (*TASK_TERMS, "distill", "distill_outputs")


class UltraSamTrainingModule(nn.Module):
    """Computes the UltraSam loss of a collated batch (`data.collate` or `pack.ResidentBatches`).

    Batch: `pixel_values` `(B, 3, S, S)`, `image_embeddings` (cached, frozen encoder) or `encoder_features` (the cached
    input of TinyViT stage `frozen_stages`: only the late stages + neck run, with gradients), `masks` `(N, g, g)` bool on the decoder's low-res grid,
    `image_index` `(N,)` (the image of each mask) and optionally `valid_sizes` `(N, 2)` (the resized image inside
    the padded input, for clipping boxes).

    Per mask, one prompt is sampled (box or point, `sample_prompts`). Per prompt and per round: the final pass's
    best-IoU mask loss, plus the first pass's loss when the model has a refinement pass (both summed, not detached,
    as the paper). Rounds: 1 + `clicks`; each click round adds one corrective click from the error region of the
    previous round's mask (the one with the highest *predicted* IoU, as at inference) and gives that mask's low-res
    logits as mask prompt. The first round is multimask (`multimask`; boxes too with `multimask_boxes`), later rounds
    use the single-mask token, as SAM. `single_mask_clicks` adds, for the first round's clicks, a single-mask pass
    and its loss, so that token 0 learns one-click prompts too (models without refinement: with one, the first pass
    is single-mask already). The loss is the mean over prompts of the sum over rounds and passes.

    `teacher_encoder` (a frozen encoder of another model, e.g. the teacher of a distilled student) adds
    `distill_weight` x the mean squared error of the embeddings to the teacher's on the same pixels, relative to the
    variance of the teacher's embeddings (1.0 = no better than their mean): it keeps a student's encoder near the
    embedding the frozen prompt encoder and decoder were trained on while the task loss adapts it. A batch's cached
    `teacher_embeddings` of its pixels replace the call to `teacher_encoder`. `distill_only` computes that term alone
    (no prompts, no decoder): MobileSAM's decoupled distillation on the training batches. `teacher_model` (that
    teacher whole, frozen) adds, for every decoder pass, `output_distill_weight` x `mask_output_distillation` of the
    pass's masks and IoU scores to the teacher's for the same prompts (its own embedding, prompt encoder and decoder):
    the student is scored against the teacher's answers, ambiguous clicks included, not only against the ground
    truth. The teacher's embedding is the one of the embedding term or, without `teacher_encoder`, the batch's cached
    `teacher_embeddings` (a frozen-encoder run: the decoder alone learns to answer as the teacher from the model's own
    cached embeddings). `output_ranking_weight` weighs, within that term, the order of a multimask pass's candidates
    (`mask_output_distillation`'s `ranking_weight`). `split_decoder` (default on) decodes through `SplitDecoding`
    where the model's decoder layers allow it (`supports_split_decoding`), else through the model.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_weights: LossWeights = LossWeights(),
        clicks: int = 0,
        multimask: bool = True,
        multimask_boxes: bool = True,
        single_mask_clicks: bool = False,
        train_encoder: bool = True,
        seed: int = 0,
        point_probability: float = 0.5,
        box_jitter: float = 0.05,
        point_sampling: str = "uniform",
        frozen_stages: int | None = None,
        teacher_encoder: nn.Module | None = None,
        distill_weight: float = 1.0,
        distill_only: bool = False,
        teacher_model: nn.Module | None = None,
        output_distill_weight: float = 1.0,
        output_ranking_weight: float = 0.0,
        split_decoder: bool = True,
    ):
        super().__init__()
        if distill_only and teacher_encoder is None:
            raise ValueError("distill_only needs a teacher_encoder")
        if teacher_model is not None and distill_only:
            raise ValueError("teacher_model needs prompts (not distill_only)")
        # not a submodule: its frozen weights stay out of the optimizer, DDP and the saved checkpoints
        self.__dict__["teacher_encoder"] = teacher_encoder
        self.__dict__["teacher_model"] = teacher_model
        self.output_distill_weight = float(output_distill_weight)
        self.output_ranking_weight = float(output_ranking_weight)
        self.distill_weight = float(distill_weight)
        self.distill_only = distill_only
        self.frozen_stages = frozen_stages
        self.model = model
        self.loss_weights = loss_weights
        self.clicks = int(clicks)
        self.multimask = multimask
        self.multimask_boxes = multimask_boxes
        self.single_mask_clicks = single_mask_clicks
        self.train_encoder = train_encoder
        self.seed = int(seed)
        self.point_probability = point_probability
        self.box_jitter = box_jitter
        self.point_sampling = point_sampling
        self.split_decoder = split_decoder
        self._split_decoders: dict = {}  # per model: built on first use, on the device the model then has
        self._image_sides: dict = {}  # per model, the split decoder's image sides of the step being computed
        self._generator: torch.Generator | None = None
        self._pending_state: torch.Tensor | None = None

    @property
    def config(self):
        return self.model.config

    @property
    def logged_terms(self) -> tuple[str, ...]:
        """The `LOGGED` terms this module computes (the others stay 0 in its logs)."""
        task = () if self.distill_only else TASK_TERMS
        distill = () if self.teacher_encoder is None else ("distill",)
        outputs = () if self.teacher_model is None else ("distill_outputs",)
        return (*task, *distill, *outputs)

    def _input_size(self) -> int:
        return int(self.config.prompt_encoder_config.image_size)

    def generator(self, device: torch.device) -> torch.Generator:
        """The prompt / click RNG, living on the model's device (created on first use, state restorable)."""
        if self._generator is None or self._generator.device != torch.device(device):
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
            if self._pending_state is not None:
                self._generator.set_state(self._pending_state)
                self._pending_state = None
        return self._generator

    def _embeddings(self, batch) -> torch.Tensor:
        if batch.get("image_embeddings") is not None:
            return batch["image_embeddings"]
        context = contextlib.nullcontext() if self.train_encoder else torch.no_grad()
        with context:
            if batch.get("encoder_features") is not None:
                if self.frozen_stages is None:
                    raise ValueError("a batch of encoder_features needs the module's frozen_stages (their stage)")
                encoder = self.model.vision_encoder
                return encoder.from_stage(self.frozen_stages, batch["encoder_features"]).last_hidden_state
            # not `get_image_embeddings`: transformers decorates it with `torch.no_grad()`
            return self.model.vision_encoder(batch["pixel_values"]).last_hidden_state

    def _distillation(self, batch, embeddings) -> tuple[torch.Tensor, torch.Tensor]:
        """The embeddings' `relative_embedding_error` to the teacher's on this batch, and the teacher's: the batch's
        cached `teacher_embeddings` of its pixels where it has them, else `teacher_encoder`'s."""
        if batch.get("pixel_values") is None:
            raise ValueError("distillation needs the batch's pixel_values (not cached embeddings or features)")
        target = batch.get("teacher_embeddings")
        if target is None:
            with torch.no_grad():
                target = self.teacher_encoder(batch["pixel_values"]).last_hidden_state
        if target.shape != embeddings.shape:
            raise ValueError(
                f"the teacher's embeddings are {tuple(target.shape[1:])}, the model's {tuple(embeddings.shape[1:])}"
            )
        return relative_embedding_error(embeddings, target), target

    def _split_decoding(self, model) -> SplitDecoding | None:
        """`model`'s split decoder, when `split_decoder` is on and it computes the model's decoder."""
        if not self.split_decoder:
            return None
        if id(model) not in self._split_decoders:
            self._split_decoders[id(model)] = SplitDecoding(model) if supports_split_decoding(model) else None
        return self._split_decoders[id(model)]

    def _decode(
        self, embeddings, image_index, kind, prompts, clicks, click_labels, mask_prompt, multimask, model=None
    ):
        """One prompt per row, each on `embeddings[image_index]`: the model's outputs (masks and IoU scores of the final
        and first pass)."""
        model = self.model if model is None else model
        kwargs = {"multimask_output": multimask}
        if kind == BOX:
            kwargs["input_boxes"] = prompts[:, None, :4]
            if clicks is not None:
                kwargs["input_points"], kwargs["input_labels"] = clicks[:, None], click_labels[:, None]
        else:
            points = prompts[:, None, :2]
            labels = torch.ones(prompts.shape[0], 1, dtype=torch.long, device=prompts.device)
            if clicks is not None:
                points, labels = torch.cat([points, clicks], dim=1), torch.cat([labels, click_labels], dim=1)
            kwargs["input_points"], kwargs["input_labels"] = points[:, None], labels[:, None]
        if mask_prompt is not None:
            kwargs["input_masks"] = mask_prompt[:, None]
        split = self._split_decoding(model)
        if split is None:
            return model(image_embeddings=embeddings[image_index], **kwargs)
        return split(embeddings, image_index, image_sides=self._image_sides.setdefault(id(model), {}), **kwargs)

    def _output_distillation(self, out, teacher_embeddings, *decode_args) -> torch.Tensor:
        """`mask_output_distillation` of a decoder pass `out` to the teacher's pass on the same prompts."""
        with torch.no_grad():
            teacher = self._decode(teacher_embeddings, *decode_args, model=self.teacher_model)
        return mask_output_distillation(
            out.pred_masks[:, 0],
            out.iou_scores[:, 0],
            teacher.pred_masks[:, 0],
            teacher.iou_scores[:, 0],
            ranking_weight=self.output_ranking_weight,
        )

    def forward(self, batch: dict) -> dict:
        try:
            return self._step(batch)
        finally:
            self._image_sides = {}  # the next step's weights differ

    def _step(self, batch: dict) -> dict:
        embeddings = self._embeddings(batch)
        targets, image_index = batch["masks"], batch["image_index"]
        distill, teacher_embeddings = None, batch.get("teacher_embeddings")
        if self.teacher_encoder is not None:
            distill, teacher_embeddings = self._distillation(batch, embeddings)
        elif self.teacher_model is not None and teacher_embeddings is None:
            raise ValueError("teacher_model needs a teacher_encoder or the batch's cached teacher_embeddings")
        if self.distill_only:
            logs = {name: torch.zeros((), device=targets.device) for name in LOGGED}
            logs["distill"] = distill.detach().float()
            return {"loss": self.distill_weight * distill, "logs": logs, "prompts": 0}
        generator = self.generator(targets.device)
        kinds, prompts = sample_prompts(
            targets,
            generator,
            self._input_size(),
            point_probability=self.point_probability,
            box_jitter=self.box_jitter,
            point_sampling=self.point_sampling,
            valid_sizes=batch.get("valid_sizes"),
        )
        prompts = prompts.to(embeddings.dtype)
        total = embeddings.sum() * 0.0  # keeps the graph connected when a batch has no usable instance
        logs = {name: torch.zeros((), device=targets.device) for name in LOGGED}
        count = max(int(kinds.numel()), 1)
        for kind in (BOX, POINT):
            selected = (kinds == kind).nonzero(as_tuple=True)[0]
            if selected.numel() == 0:
                continue
            group_index = image_index[selected]
            group_prompts, group_targets = prompts[selected], targets[selected]
            clicks = click_labels = mask_prompt = None
            for round_index in range(1 + self.clicks):
                # SAM: multimask only for the first, ambiguous prompt (optionally not for boxes, which SAM deems
                # unambiguous); refinement models always end multimask.
                multimask = self.multimask and round_index == 0 and (kind == POINT or self.multimask_boxes)
                decode_args = (kind, group_prompts, clicks, click_labels, mask_prompt)
                out = self._decode(embeddings, group_index, *decode_args, multimask)
                terms = best_mask_loss(out.pred_masks[:, 0], out.iou_scores[:, 0], group_targets, self.loss_weights)
                loss = terms["loss"]
                if out.first_pass_pred_masks is not None:
                    first = best_mask_loss(
                        out.first_pass_pred_masks[:, 0],
                        out.first_pass_iou_scores[:, 0],
                        group_targets,
                        self.loss_weights,
                    )
                    loss = loss + first["loss"]
                elif multimask and kind == POINT and self.single_mask_clicks:
                    # (a refinement model's first pass, above, is single-mask already)
                    single = self._decode(embeddings, group_index, *decode_args, False)
                    masks, scores = single.pred_masks[:, 0], single.iou_scores[:, 0]
                    loss = loss + best_mask_loss(masks, scores, group_targets, self.loss_weights)["loss"]
                    if self.teacher_model is not None:
                        outputs = self._output_distillation(
                            single, teacher_embeddings, group_index, *decode_args, False
                        )
                        loss = loss + self.output_distill_weight * outputs
                if self.teacher_model is not None:
                    # (refinement models: the final pass only, the one the teacher is scored on)
                    outputs = self._output_distillation(out, teacher_embeddings, group_index, *decode_args, multimask)
                    loss = loss + self.output_distill_weight * outputs
                    logs["distill_outputs"] = logs["distill_outputs"] + outputs.detach().float().sum() / (
                        1 + self.clicks
                    )
                total = total + loss.sum()
                for name in TASK_TERMS:
                    logs[name] = logs[name] + terms[name].detach().float().sum() / (1 + self.clicks)
                if round_index < self.clicks:
                    with torch.no_grad():
                        chosen = out.iou_scores[:, 0].argmax(dim=-1)
                        rows = torch.arange(chosen.shape[0], device=chosen.device)
                        mask_prompt = out.pred_masks[:, 0][rows, chosen].detach()
                        point, label = sample_correction_clicks(
                            mask_prompt, group_targets, generator, self._input_size()
                        )
                    point = point.to(embeddings.dtype)
                    clicks = point if clicks is None else torch.cat([clicks, point], dim=1)
                    click_labels = label if click_labels is None else torch.cat([click_labels, label], dim=1)
        loss, logs = total / count, {name: value / count for name, value in logs.items()}
        if distill is not None:
            loss = loss + self.distill_weight * distill
            logs["distill"] = distill.detach().float()
        return {"loss": loss, "logs": logs, "prompts": count}

    # RNG of prompt sampling and click simulation, saved with the accelerator state.
    def generator_state(self) -> torch.Tensor:
        if self._generator is None:
            return torch.Generator().manual_seed(self.seed).get_state()
        return self._generator.get_state()

    def set_generator_state(self, state: torch.Tensor) -> None:
        self._generator, self._pending_state = None, state


__all__ = ["UltraSamTrainingModule"]
