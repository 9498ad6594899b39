"""Downstream tasks on the UltraSam encoder: prompted classification and instance segmentation (Mask2Former).

Importing this package registers `UltraSamBackboneConfig` / `UltraSamBackbone` with `AutoConfig` / `AutoBackbone`.
"""

from .backbone import PYRAMID_STRIDES, UltraSamBackbone, UltraSamBackboneConfig, default_feature_indices

__all__ = ["PYRAMID_STRIDES", "UltraSamBackbone", "UltraSamBackboneConfig", "default_feature_indices"]
