# Copyright 2025 The ultrasam-hf authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Configuration of the UltraSam image encoder as a transformers backbone (`UltraSamBackbone`): which encoder hidden
states feed the four levels of its simple feature pyramid (strides 4, 8, 16, 32) and their width."""

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.backbone_utils import BackboneConfigMixin

from .configuration_ultrasam import UltraSamConfig, UltraSamVisionConfig

PYRAMID_STRIDES = (4, 8, 16, 32)


def default_feature_indices(vision_config: UltraSamVisionConfig) -> list[int]:
    """ViT: four evenly spaced blocks (2, 5, 8, 11 for ViT-B, as the paper); TinyViT: the four stage outputs."""
    if vision_config.encoder_type == "tiny_vit":
        stages = len(vision_config.tiny_vit_embed_dims)
        return [min(i, stages - 1) for i in range(len(PYRAMID_STRIDES))]
    layers = vision_config.num_hidden_layers
    return [max(round((i + 1) * layers / 4) - 1, 0) for i in range(4)]


@strict
class UltraSamBackboneConfig(BackboneConfigMixin, PreTrainedConfig):
    r"""
    vision_config (`UltraSamVisionConfig` or `dict`):
        The encoder (`encoder_type="vit"` or `"tiny_vit"`); `image_size` is the backbone's input size.
    feature_indices (`list[int]`, *optional*):
        Encoder hidden state feeding each pyramid level, finest first: ViT block indices (0-based) or TinyViT stage
        indices. Defaults to `default_feature_indices(vision_config)`.
    fpn_channels (`int`, *optional*, defaults to 256):
        Channels of every pyramid level.
    out_features / out_indices: which of `stage1..stage4` (strides 4, 8, 16, 32) are returned; all by default.

    Example:

    ```python
    >>> import torch
    >>> from ultrasam_hf import UltraSamConfig
    >>> from ultrasam_hf.models.configuration_ultrasam_backbone import UltraSamBackboneConfig
    >>> from ultrasam_hf.models.modeling_ultrasam_backbone import UltraSamBackbone
    >>> config = UltraSamBackboneConfig.from_ultrasam_config(UltraSamConfig.from_preset("tiny-lite"), fpn_channels=32)
    >>> [tuple(f.shape) for f in UltraSamBackbone(config)(torch.rand(1, 3, 64, 64)).feature_maps]
    [(1, 32, 16, 16), (1, 32, 8, 8), (1, 32, 4, 4), (1, 32, 2, 2)]
    ```
    """

    model_type = "ultrasam_backbone"
    sub_configs = {"vision_config": UltraSamVisionConfig}

    vision_config: dict | UltraSamVisionConfig | None = None
    feature_indices: list[int] | tuple[int, ...] | None = None
    fpn_channels: int = 256
    initializer_range: float = 0.02
    _out_features: list[str] | None = None
    _out_indices: list[int] | None = None

    def __post_init__(self, **kwargs):
        if self.vision_config is None:
            self.vision_config = UltraSamVisionConfig()
        elif isinstance(self.vision_config, dict):
            self.vision_config = UltraSamVisionConfig(**self.vision_config)
        if self.vision_config.encoder_type == "nano":
            raise ValueError(
                "the nano encoder has no backbone wrapper (no feature pyramid for Mask2Former yet): start instance "
                "segmentation from a lite or vit-b model, e.g. --init ultrasam-lite-us"
            )
        if self.feature_indices is None:
            self.feature_indices = default_feature_indices(self.vision_config)
        self.feature_indices = list(self.feature_indices)
        if len(self.feature_indices) != len(PYRAMID_STRIDES):
            raise ValueError(f"feature_indices needs {len(PYRAMID_STRIDES)} entries, got {self.feature_indices}")
        self.stage_names = [f"stage{i + 1}" for i in range(len(PYRAMID_STRIDES))]
        out_indices, out_features = kwargs.pop("out_indices", None), kwargs.pop("out_features", None)
        if out_indices is None and out_features is None:
            out_features = list(self.stage_names)  # the whole pyramid, as Mask2Former expects
        self.set_output_features_output_indices(out_indices=out_indices, out_features=out_features)
        super().__post_init__(**kwargs)

    @classmethod
    def from_ultrasam_config(cls, config: UltraSamConfig, image_size: int | None = None, **kwargs):
        """The backbone of an UltraSam model's encoder; `image_size` changes the input size (TinyViT any multiple of
        its stride; ViT interpolates its position embeddings when weights are loaded with `load_encoder_weights`)."""
        vision = config.vision_config.to_dict()
        if image_size is not None:
            vision["image_size"] = image_size
        for key in ("model_type", "transformers_version"):
            vision.pop(key, None)
        return cls(vision_config=UltraSamVisionConfig(**vision), **kwargs)


__all__ = ["UltraSamBackboneConfig", "PYRAMID_STRIDES", "default_feature_indices"]
