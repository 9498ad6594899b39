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
"""Automatic mask generation for UltraSam checkpoints: transformers' mask-generation pipeline with the checkpoint's
own settings."""

from transformers.pipelines.mask_generation import MaskGenerationPipeline

# What a saved UltraSam folder's `config.custom_pipelines` holds, so that `pipeline("mask-generation", model=folder,
# trust_remote_code=True)` builds `UltraSamMaskGenerationPipeline` from the folder's own code.
CUSTOM_PIPELINES = {
    "mask-generation": {
        "impl": "pipeline_ultrasam.UltraSamMaskGenerationPipeline",
        "pt": ["AutoModelForMaskGeneration"],
        "type": "image",
    }
}


class UltraSamMaskGenerationPipeline(MaskGenerationPipeline):
    r"""
    [`MaskGenerationPipeline`] that differs in two ways:

    - its defaults are the checkpoint's `config.mask_generation` (grid points per side, IoU and stability thresholds,
      crops); arguments given when building the pipeline or calling it win;
    - each grid point asks for what the checkpoint was trained to output (`config.multimask_output_default`): SAM's
      three masks, or the single mask of a checkpoint whose other mask tokens are untrained.

    Example:

    ```python
    >>> from transformers import pipeline
    >>> generator = pipeline("mask-generation", model="path/to/ultrasam-folder", trust_remote_code=True)
    >>> masks = generator("scan.png")["masks"]  # doctest: +SKIP
    ```
    """

    def __init__(self, **kwargs):
        defaults = dict(getattr(kwargs["model"].config, "mask_generation", None) or {})
        super().__init__(**{**defaults, **kwargs})

    def _forward(self, model_inputs, *args, **kwargs):
        model_inputs["multimask_output"] = bool(getattr(self.model.config, "multimask_output_default", True))
        return super()._forward(model_inputs, *args, **kwargs)


def mask_generation_pipeline(model, **kwargs) -> UltraSamMaskGenerationPipeline:
    """`pipeline("mask-generation")` on an UltraSam model object or folder, built from the installed classes (no
    `trust_remote_code`: a saved folder's `custom_pipelines` would ask for it). `kwargs` go to `pipeline`."""
    from transformers import pipeline

    return pipeline("mask-generation", model=model, pipeline_class=UltraSamMaskGenerationPipeline, **kwargs)


__all__ = ["CUSTOM_PIPELINES", "UltraSamMaskGenerationPipeline", "mask_generation_pipeline"]
