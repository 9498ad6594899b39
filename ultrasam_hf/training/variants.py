"""Which parameters train, per `--variant`, and how the result is saved.

| variant | trains | encoder at train time | saved as |
|---|---|---|---|
| `full` | everything | run, with gradients | plain `UltraSamModel` |
| `lora` | LoRA (peft) on the encoder's `qkv` Linears (rank 16, alpha 16) + prompt encoder + mask decoder | run | merged `UltraSamModel` (default) or a peft adapter folder (`--keep-adapter`) |
| `adapter` | peft IA³ adapters (learned per-channel scales of every encoder block's `qkv` output and MLP output-layer input) + prompt encoder + mask decoder | run | merged `UltraSamModel` or adapter folder |
| `decoder-only` | prompt encoder + mask decoder | run without gradients | plain `UltraSamModel` |
| `encoder-only` | the image encoder | run, with gradients | plain `UltraSamModel` |
| `frozen-encoder` | prompt encoder + mask decoder | never: precomputed embeddings (`embedding_cache`) | plain `UltraSamModel` |
| `iou-head` | the mask decoder's IoU prediction head (its MLP only) | never: precomputed embeddings | plain `UltraSamModel`, same masks |
| `late-encoder` | TinyViT stages `frozen_stages`.. + neck + prompt encoder + mask decoder | early part (patch embedding + stages 0..`frozen_stages`-1, default 2) never: its output is precomputed (`embedding_cache`, `frozen_stages`); late part run, with gradients | plain `UltraSamModel` (early part as loaded) |

`adapter` is peft's IA³ rather than Med-SA bottleneck adapters: IA³ is the adapter family peft ships that merges back
into the weights, so every variant ends as a plain `UltraSamModel` that the processor, evaluation and conversion code
load without extra modules (a bottleneck adapter cannot be merged and would need a modeling change). The paper's
maintainer reports full fine-tuning beating both LoRA and Med-SA (UltraSam issue #3).

`late-encoder` is for TinyViT encoders (`lite`, `tiny-lite`), whose high-resolution early stages cost most of the
forward on a CPU (`lite`: patch embedding at 256x256, stage 0 at 256x256, stage 1 at 128x128, stages 2-3 at 64x64);
it is refused for ViT-B and nano encoders (`late_encoder_problem`).

`iou-head` recalibrates which candidate mask a click returns (the highest predicted IoU) without changing any mask:
the IoU token's embedding feeds the decoder's transformer, so only the head's MLP on its output trains. Its terms are
the IoU regression (`--iou-all-masks`: every candidate) and, with `--distill-teacher`, the teacher's scores
(`--distill-outputs`, `--distill-ranking`); the mask terms have nothing to move.

`encoder-only` is the end-to-end stage of an encoder distillation (`distillation.py`): the student's encoder learns
from the mask losses through the teacher's prompt encoder and mask decoder, which stay as they are.

The random-Fourier positional matrix (`shared_image_embedding.positional_embedding`) is a fixed buffer in SAM; it
stays frozen in every variant.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

VARIANTS = ("full", "lora", "adapter", "decoder-only", "encoder-only", "frozen-encoder", "iou-head", "late-encoder")
EMBEDDING_VARIANTS = ("frozen-encoder", "iou-head")  # train on precomputed image embeddings (`embedding_cache`)
CACHED_VARIANTS = (*EMBEDDING_VARIANTS, "late-encoder")  # train on precomputed encoder outputs
DECODER_MODULES = ["prompt_encoder", "mask_decoder"]
DEFAULT_FROZEN_STAGES = 2


def late_encoder_problem(vision_config, frozen_stages) -> str | None:
    """Why the `late-encoder` variant cannot split this vision config at TinyViT stage `frozen_stages` (None: it can)."""
    encoder_type = getattr(vision_config, "encoder_type", "vit")
    if encoder_type != "tiny_vit":
        return (
            f"--variant late-encoder splits a TinyViT encoder (presets lite, tiny-lite) at a stage; this model's "
            f"encoder is {encoder_type!r} (ViT-B / nano): use full, lora, adapter, decoder-only, encoder-only, "
            "frozen-encoder or iou-head"
        )
    stages = len(vision_config.tiny_vit_embed_dims)
    if isinstance(frozen_stages, bool) or not isinstance(frozen_stages, int) or not 0 <= frozen_stages <= stages:
        return f"--frozen-stages must be in [0, {stages}] (the TinyViT encoder's stages), got {frozen_stages!r}"
    return None


def check_split(model, frozen_stages) -> None:
    """`ValueError` unless `model`'s vision encoder is a TinyViT that splits at stage `frozen_stages`."""
    problem = late_encoder_problem(model.config.vision_config, frozen_stages)
    if problem is None and not hasattr(model.vision_encoder, "up_to_stage"):
        problem = f"--variant late-encoder needs a TinyViT encoder, got {type(model.vision_encoder).__name__}"
    if problem:
        raise ValueError(problem)


def _targets_regex(names: list[str]) -> str:
    alternatives = "|".join(sorted(set(names)))
    return rf".*vision_encoder\..*\.({alternatives})$"


def apply_variant(
    model: nn.Module,
    variant: str,
    lora_targets=("qkv",),
    lora_rank: int = 16,
    lora_alpha: int = 16,
    lora_dropout: float = 0.0,
    modules_to_save=tuple(DECODER_MODULES),
    frozen_stages: int = DEFAULT_FROZEN_STAGES,
):
    """Freeze / wrap `model` for `variant`; returns the model to train (a `PeftModel` for lora / adapter).
    `modules_to_save`: what trains besides the lora / adapter weights (the prompted-classification task: its head).
    `frozen_stages`: `late-encoder`'s split (patch embedding + TinyViT stages before it frozen)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant == "late-encoder":
        check_split(model, frozen_stages)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    if variant in ("lora", "adapter"):
        import peft

        if variant == "lora":
            config = peft.LoraConfig(
                r=lora_rank,
                lora_alpha=lora_alpha,
                lora_dropout=lora_dropout,
                target_modules=_targets_regex(list(lora_targets)),
                modules_to_save=list(modules_to_save),
            )
        else:
            mlp_out = ["lin2", "fc2"]  # SAM ViT's MLP output Linear / TinyViT's
            config = peft.IA3Config(
                target_modules=_targets_regex(["qkv", *mlp_out]),
                feedforward_modules=_targets_regex(mlp_out),
                modules_to_save=list(modules_to_save),
            )
        model = peft.get_peft_model(model, config)
    elif variant in ("decoder-only", "frozen-encoder"):
        for parameter in model.vision_encoder.parameters():
            parameter.requires_grad_(False)
    elif variant == "iou-head":
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.startswith("mask_decoder.iou_prediction_head."))
    elif variant == "encoder-only":
        for name in DECODER_MODULES:
            for parameter in model.get_submodule(name).parameters():
                parameter.requires_grad_(False)
    elif variant == "late-encoder":
        for name in model.vision_encoder.modules_up_to_stage(frozen_stages):
            for parameter in model.vision_encoder.get_submodule(name).parameters():
                parameter.requires_grad_(False)
    for name, parameter in model.named_parameters():
        if "positional_embedding" in name:
            parameter.requires_grad_(False)
    return model


def trains_encoder(variant: str) -> bool:
    return variant in ("full", "lora", "adapter", "encoder-only", "late-encoder")


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def export_model(
    model: nn.Module,
    output_dir,
    processor=None,
    keep_adapter: bool = False,
    base_dir=None,
    safe_max_shard_size="2GB",
    training_record=None,
):
    """Write the trained model to `output_dir`: plain `UltraSamModel` weights (peft variants merged), or with
    `keep_adapter` the peft adapter (adapter + trained decoder) plus the base model it applies to.

    A kept adapter loads with `PeftModel.from_pretrained(UltraSamModel.from_pretrained(<base>), output_dir)`, the base
    being `adapter_config.json`'s `base_model_name_or_path`: the Hub id of `base_dir` when it has one (a Hub id, the
    shipped model), else `base_dir` itself (the `--init` folder, or the initial weights the trainer saved to
    `output_dir/base` when training started from a preset), to be replaced by its Hub id before a push.

    Either way the folder is a self-contained Hub repository (`ultrasam_hf.hub`: remote code, complete auto_map,
    `AutoPeftModel`-ready adapter config, a card from `training_record`, the training configuration).
    """
    import peft

    from ..hub.model_card import hub_id_of, write_folder_card
    from ..hub.model_repo import prepare_model_repo

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    record = {"init": str(base_dir) if base_dir is not None else None, **dict(training_record or {})}
    if isinstance(model, peft.PeftModel):
        if keep_adapter:
            if base_dir is None:
                raise ValueError("keep_adapter needs base_dir: the folder of the base model the adapter applies to")
            base_id = hub_id_of(base_dir)
            model.peft_config["default"].base_model_name_or_path = base_id or str(base_dir)
            model.save_pretrained(output_dir)
            model.get_base_model().config.save_pretrained(output_dir)
            if processor is not None:
                processor.save_pretrained(output_dir)
            prepare_model_repo(output_dir)
            write_folder_card(output_dir, training_record=record)  # replaces peft's empty template
            return output_dir
        model = model.merge_and_unload()
    model._loaded_weights_dtype = None  # a trained model is saved in the dtype it trained in, not its init's
    model.save_pretrained(output_dir, max_shard_size=safe_max_shard_size)
    if processor is not None:
        processor.save_pretrained(output_dir)
    prepare_model_repo(output_dir)
    write_folder_card(output_dir, training_record=record)
    return output_dir


def read_adapter_base(output_dir) -> str:
    return json.loads((Path(output_dir) / "adapter_config.json").read_text())["base_model_name_or_path"]


__all__ = [
    "CACHED_VARIANTS",
    "DEFAULT_FROZEN_STAGES",
    "VARIANTS",
    "apply_variant",
    "check_split",
    "count_parameters",
    "export_model",
    "late_encoder_problem",
    "read_adapter_base",
    "trains_encoder",
]
