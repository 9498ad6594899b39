"""ultrasam-hf: UltraSam, the SAM-style ultrasound foundation model, on Hugging Face transformers."""

from .models.configuration_ultrasam import (
    PRESETS,
    UltraSamConfig,
    UltraSamMaskDecoderConfig,
    UltraSamPromptEncoderConfig,
    UltraSamVisionConfig,
)
from .models.configuration_ultrasam_backbone import UltraSamBackboneConfig
from .models.modeling_ultrasam import (
    UltraSamForPromptedClassification,
    UltraSamImageSegmentationOutput,
    UltraSamModel,
    UltraSamPreTrainedModel,
    UltraSamPromptedClassificationOutput,
)
from .models.modeling_ultrasam_backbone import UltraSamBackbone
from .registration import register_auto_classes

__version__ = "0.1.0"

register_auto_classes()

__all__ = [
    "PRESETS",
    "UltraSamBackbone",
    "UltraSamBackboneConfig",
    "UltraSamConfig",
    "UltraSamForPromptedClassification",
    "UltraSamImageSegmentationOutput",
    "UltraSamMaskDecoderConfig",
    "UltraSamModel",
    "UltraSamPreTrainedModel",
    "UltraSamPromptEncoderConfig",
    "UltraSamPromptedClassificationOutput",
    "UltraSamVisionConfig",
    "register_auto_classes",
]
