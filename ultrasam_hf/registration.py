"""Auto-class registration, and the `auto_map` that makes saved folders load with `trust_remote_code=True`."""

from transformers import AutoBackbone, AutoConfig, AutoModel, AutoModelForMaskGeneration

from .models.configuration_ultrasam import UltraSamConfig
from .models.configuration_ultrasam_backbone import UltraSamBackboneConfig
from .models.modeling_ultrasam import UltraSamForPromptedClassification, UltraSamModel
from .models.modeling_ultrasam_backbone import UltraSamBackbone

_registered = False


def register_auto_classes() -> None:
    """Idempotent: register UltraSam with AutoConfig / AutoModel / AutoModelForMaskGeneration / AutoProcessor, and its
    backbone with AutoConfig / AutoBackbone (so that Mask2Former folders built on it load again)."""
    global _registered
    if _registered:
        return
    AutoConfig.register(UltraSamConfig.model_type, UltraSamConfig, exist_ok=True)
    AutoModel.register(UltraSamConfig, UltraSamModel, exist_ok=True)
    AutoModelForMaskGeneration.register(UltraSamConfig, UltraSamModel, exist_ok=True)
    AutoConfig.register(UltraSamBackboneConfig.model_type, UltraSamBackboneConfig, exist_ok=True)
    AutoBackbone.register(UltraSamBackboneConfig, UltraSamBackbone, exist_ok=True)
    # Saved folders carry auto_map entries pointing at the copied model files; `UltraSamModel` folders also name
    # AutoModelForMaskGeneration (its `_extra_auto_classes`).
    UltraSamConfig.register_for_auto_class()
    UltraSamModel.register_for_auto_class("AutoModel")
    UltraSamForPromptedClassification.register_for_auto_class("AutoModel")
    UltraSamBackboneConfig.register_for_auto_class()
    UltraSamBackbone.register_for_auto_class("AutoBackbone")
    _register_processor()
    _registered = True


def _register_processor() -> None:
    try:
        from .models.image_processing_ultrasam import UltraSamImageProcessor
        from .models.processing_ultrasam import UltraSamProcessor
    except ImportError:  # processor files not present in a minimal install
        return
    from transformers import AutoImageProcessor, AutoProcessor

    AutoImageProcessor.register(UltraSamConfig, slow_image_processor_class=UltraSamImageProcessor, exist_ok=True)
    AutoProcessor.register(UltraSamConfig, UltraSamProcessor, exist_ok=True)
    UltraSamImageProcessor.register_for_auto_class("AutoImageProcessor")
    UltraSamProcessor.register_for_auto_class("AutoProcessor")
