"""ultrasam-hf: UltraSam, the SAM-style ultrasound foundation model, on Hugging Face transformers."""

from .inference.predictor import UltraSamPredictor
from .models.configuration_ultrasam import (
    PRESETS,
    UltraSamConfig,
    UltraSamMaskDecoderConfig,
    UltraSamPromptEncoderConfig,
    UltraSamVisionConfig,
)
from .models.configuration_ultrasam_backbone import UltraSamBackboneConfig
from .models.image_loading import load_frames
from .models.image_processing_ultrasam import UltraSamImageProcessor
from .models.modeling_ultrasam import (
    UltraSamForPromptedClassification,
    UltraSamImageSegmentationOutput,
    UltraSamModel,
    UltraSamPreTrainedModel,
    UltraSamPromptedClassificationOutput,
)
from .models.modeling_ultrasam_backbone import UltraSamBackbone
from .models.processing_ultrasam import UltraSamProcessor
from .registration import register_auto_classes

__version__ = "0.1.0"

register_auto_classes()

__all__ = [
    "PRESETS",
    "UltraSamBackbone",
    "UltraSamBackboneConfig",
    "UltraSamConfig",
    "UltraSamForPromptedClassification",
    "UltraSamImageProcessor",
    "UltraSamImageSegmentationOutput",
    "UltraSamMaskDecoderConfig",
    "UltraSamModel",
    "UltraSamPreTrainedModel",
    "UltraSamPredictor",
    "UltraSamProcessor",
    "UltraSamPromptEncoderConfig",
    "UltraSamPromptedClassificationOutput",
    "UltraSamVisionConfig",
    "load_frames",
    "register_auto_classes",
]
