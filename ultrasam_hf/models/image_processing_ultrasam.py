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
"""Image processor class for UltraSam: SAM's, plus ultrasound inputs (DICOM, 16-bit) and the LiteMedSAM recipe."""

import math

import numpy as np
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import ChannelDimension, ImageInput
from transformers.models.sam.image_processing_pil_sam import (
    SamImageProcessorKwargs,
    SamImageProcessorPil,
    _rle_to_mask,
)
from transformers.processing_utils import Unpack

from .configuration_ultrasam import PREPROCESSING_MODES, UltraSamConfig
from .errors import ImageLoadError, UsageError
from .image_loading import load_frames
from .nms import batched_nms
from .transforms import input_size, low_res_size, resized_size


class UltraSamImageProcessorKwargs(SamImageProcessorKwargs, total=False):
    r"""
    preprocessing (`str`, *optional*, defaults to `"sam"`):
        `"sam"`: rescale by 1/255 and normalise with the ImageNet mean/std (SAM). `"litemedsam"`: per-image min-max
        normalisation to [0, 1], `(x - min) / clip(max - min, 1e-8)`, after resizing and before padding, in place of
        rescale + mean/std (LiteMedSAM).
    """

    preprocessing: str


def _mode_defaults(preprocessing: str, image_size: int, mask_size: int) -> dict:
    """Processor settings of a preprocessing mode at an input size (`image_size`) and a decoder low-res size."""
    if preprocessing not in PREPROCESSING_MODES:
        raise UsageError(f"preprocessing={preprocessing!r} is not one of {PREPROCESSING_MODES}.")
    defaults = {
        "preprocessing": preprocessing,
        "size": {"longest_edge": image_size},
        "pad_size": {"height": image_size, "width": image_size},
        "mask_size": {"longest_edge": mask_size},
        "mask_pad_size": {"height": mask_size, "width": mask_size},
    }
    if preprocessing == "litemedsam":
        defaults.update(do_rescale=False, do_normalize=True, image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0])
    return defaults


class UltraSamImageProcessor(SamImageProcessorPil):
    r"""
    SAM's image processor (torchvision-free) for ultrasound. It differs from [`SamImageProcessorPil`] in three ways:

    - inputs: everything [`~ultrasam_hf.models.image_loading.load_frames`] accepts: PIL images of any mode, arrays
      of any real dtype (non-uint8 are min-max scaled to 0..255 per frame), image or DICOM file paths and
      `pydicom.Dataset`s. A multi-frame input (DICOM cine, frame stack) adds one image per frame to the batch.
    - `preprocessing="litemedsam"`: resize the longest side to 256, min-max normalise each image to [0, 1], pad to
      256x256 (the LiteMedSAM recipe, no mean/std). `preprocessing="sam"` (default) is SAM's exactly.
    - `post_process_for_mask_generation` uses a pure-torch NMS.

    Images reach SAM's steps channels-last, always: the layout is never guessed from the shape (a 3-pixel-high
    image is not taken for channels-first). Pass `input_data_format="channels_first"` for `CxHxW` arrays.

    Example:

    ```python
    >>> import numpy as np
    >>> from ultrasam_hf.models.image_processing_ultrasam import UltraSamImageProcessor
    >>> processor = UltraSamImageProcessor.from_preset("lite")
    >>> inputs = processor(np.random.randint(0, 4096, (300, 400), dtype=np.uint16), return_tensors="pt")
    >>> inputs["pixel_values"].shape, inputs["reshaped_input_sizes"].tolist()
    (torch.Size([1, 3, 256, 256]), [[192, 256]])
    ```
    """

    preprocessing = "sam"
    valid_kwargs = UltraSamImageProcessorKwargs

    def __init__(self, **kwargs: Unpack[UltraSamImageProcessorKwargs]):
        preprocessing = kwargs.get("preprocessing") or self.preprocessing
        if preprocessing != "sam":
            size = kwargs.get("size") or {"longest_edge": 256}
            image_size = size["longest_edge"] if isinstance(size, dict) else int(size)
            # without a model config, LiteMedSAM's geometry: its TinyViT (stride 4) decodes masks at the input size
            kwargs = {**_mode_defaults(preprocessing, image_size, image_size), **kwargs}  # validates `preprocessing`
        super().__init__(**kwargs)

    @classmethod
    def from_model_config(cls, config, **kwargs) -> "UltraSamImageProcessor":
        """
        The processor a checkpoint expects, from its [`UltraSamConfig`]: its `preprocessing` mode, its input size
        (`vision_config.image_size`) and masks at the decoder's low-resolution size (4x the embedding grid).
        `kwargs` override any setting. The one way the package turns a config into a processor.
        """
        mask_size = low_res_size(config)
        return cls(**{**_mode_defaults(config.preprocessing, input_size(config), mask_size), **kwargs})

    @classmethod
    def from_preset(cls, preset: str, **kwargs) -> "UltraSamImageProcessor":
        """
        The processor of a model preset (`UltraSamConfig.from_preset(preset)`, see [`from_model_config`]): `"vit-b"`
        (SAM, 1024 px), `"lite"` (LiteMedSAM, 256 px), `"tiny"` / `"tiny-lite"` (64 px, for tests).
        """
        return cls.from_model_config(UltraSamConfig.from_preset(preset), **kwargs)

    def preprocess(
        self,
        images: ImageInput,
        segmentation_maps: ImageInput | None = None,
        **kwargs: Unpack[UltraSamImageProcessorKwargs],
    ) -> BatchFeature:
        r"""
        images (`ImageInput`, path, `pydicom.Dataset`, or a list of them):
            The images; a multi-frame input contributes one image per frame.
        segmentation_maps (`ImageInput`, *optional*):
            The segmentation maps to preprocess, one per image.
        """
        if kwargs.get("preprocessing", self.preprocessing) not in PREPROCESSING_MODES:
            raise UsageError(f"preprocessing={kwargs['preprocessing']!r} is not one of {PREPROCESSING_MODES}.")
        data_format = kwargs.pop("input_data_format", None)
        channels_first = data_format is not None and ChannelDimension(data_format) == ChannelDimension.FIRST
        frames = self.load_images(images, channels_first=channels_first)
        self._check_resizable(frames, kwargs.get("size") or self.size)
        # load_frames gives HxWx3: say so, rather than let transformers guess from the shape
        return super().preprocess(frames, segmentation_maps, input_data_format=ChannelDimension.LAST, **kwargs)

    @staticmethod
    def load_images(images, channels_first: bool = False) -> list[np.ndarray]:
        """Flatten `images` (one input or a possibly nested list) to a list of `HxWx3 uint8` RGB frames;
        `channels_first`: arrays and tensors are `CxHxW` (or `NxCxHxW`)."""
        if isinstance(images, (list, tuple)):
            if len(images) == 0:
                raise ImageLoadError("`images` is an empty list: pass at least one image.")
            return [frame for image in images for frame in UltraSamImageProcessor.load_images(image, channels_first)]
        if channels_first and hasattr(images, "ndim") and hasattr(images, "shape") and images.ndim in (3, 4):
            images = np.moveaxis(np.asarray(images), -3, -1)
        return load_frames(images)

    @staticmethod
    def _check_resizable(frames: list[np.ndarray], size) -> None:
        """An image so thin that its short side would resize to 0 px cannot be embedded: say so."""
        longest_edge = size.get("longest_edge") if hasattr(size, "get") else None  # a dict or a SizeDict
        for frame in frames if longest_edge else []:
            height, width = frame.shape[:2]
            if min(resized_size(height, width, int(longest_edge))) < 1:
                raise ImageLoadError(
                    f"The image is {width}x{height} (width x height): at the model's {longest_edge}-px input its "
                    f"short side would be 0 px. With this long side the short side needs at least "
                    f"{math.ceil(max(height, width) / (2 * int(longest_edge)))} px (pad or crop the image)."
                )

    def _preprocess(self, images: list[np.ndarray], preprocessing: str = "sam", **kwargs):
        """SAM's resize → rescale → normalise → pad; `litemedsam` swaps rescale for per-image min-max."""
        # Segmentation maps come through here too, with do_normalize=False: they are never min-max scaled.
        if preprocessing != "litemedsam" or not kwargs["do_normalize"]:
            return super()._preprocess(images, **kwargs)
        resized, reshaped_input_sizes = super()._preprocess(
            images, **{**kwargs, "do_rescale": False, "do_normalize": False, "do_pad": False}
        )
        processed = []
        for image in resized:
            image = image.astype(np.float32)
            image = (image - image.min()) / np.clip(image.max() - image.min(), 1e-8, None)
            processed.append(self.normalize(image, kwargs["image_mean"], kwargs["image_std"]))
        if kwargs["do_pad"]:
            processed = self.pad(processed, pad_size=kwargs["pad_size"])
        return processed, reshaped_input_sizes

    def post_process_for_mask_generation(self, all_masks, all_scores, all_boxes, crops_nms_thresh):
        """
        Non-maximum suppression over the masks generated on all crops (SAM's, without torchvision).

        Args:
            all_masks (`list[dict]`): RLE masks from `filter_masks`.
            all_scores (`torch.Tensor` of shape `(N,)`): their predicted IoU scores.
            all_boxes (`torch.Tensor` of shape `(N, 4)`): their XYXY boxes.
            crops_nms_thresh (`float`): IoU above which the lower-scoring mask is dropped.

        Returns:
            `(masks, scores, rle_masks, boxes)` of the kept masks, `masks` as boolean arrays.
        """
        import torch

        keep = batched_nms(
            boxes=all_boxes.float(),
            scores=all_scores,
            idxs=torch.zeros(all_boxes.shape[0], device=all_boxes.device),
            iou_threshold=crops_nms_thresh,
        )
        scores = all_scores[keep]
        rle_masks = [all_masks[i] for i in keep.tolist()]
        boxes = all_boxes[keep]
        return [_rle_to_mask(rle) for rle in rle_masks], scores, rle_masks, boxes


__all__ = ["UltraSamImageProcessor"]
