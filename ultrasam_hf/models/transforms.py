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
"""
Every coordinate transform and resize rule of UltraSam, in one place (as segment-anything's `utils/transforms.py`).

Conventions, stated once: sizes are `(height, width)`; points `(..., 2)` are `(x, y)` with `x` along the width;
boxes `(..., 4)` are `[x0, y0, x1, y1]`. The model input is the image resized so that its long side is the input
size (SAM's `ResizeLongestSide`), padded bottom-right to a square; the decoder's low-resolution logits cover that
padded square at 4x the image-embedding grid. These are the rules `SamProcessor` applies; the predictor, the
evaluation and the training data use these functions rather than their own copies.
"""

import math

import numpy as np


def input_size(config) -> int:
    """Side of the square model input of an `UltraSamConfig` (1024 for vit-b, 256 for lite)."""
    return int(config.vision_config.image_size)


def low_res_size(config) -> int:
    """Side of the decoder's low-resolution logits: 4x the image-embedding grid (256 for vit-b and lite, 32 for
    tiny, 64 for tiny-lite)."""
    return 4 * (int(config.vision_config.image_size) // int(config.vision_config.patch_size))


def resized_size(height: int, width: int, longest_edge: int) -> tuple[int, int]:
    """`(height, width)` with the long side resized to `longest_edge` (SAM's `ResizeLongestSide`, rounded half up)."""
    scale = longest_edge * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def reduction_factor(height: int, width: int, max_side: int | None) -> int:
    """The integer factor by which an image is reduced (box average) so that its long side is at most `max_side`:
    `ceil(long side / max_side)`, 1 when it fits or `max_side` is 0 / `None` (`ultrasam segment --max-side`)."""
    if not max_side or max(height, width) <= max_side:
        return 1
    return math.ceil(max(height, width) / max_side)


def scale_coordinates(
    coords, original_size: tuple[int, int], resized: tuple[int, int], dtype=np.float64
) -> np.ndarray:
    """Points `(..., 2)` or boxes `(..., 4)` from original pixels to resized (model input) pixels: `x` scaled by the
    width ratio, `y` by the height ratio, as `SamProcessor` scales prompts."""
    coords = np.array(coords, dtype=dtype)
    (old_h, old_w), (new_h, new_w) = original_size, resized
    coords[..., 0::2] *= new_w / old_w
    coords[..., 1::2] *= new_h / old_h
    return coords


def upscale_logits(logits, padded_size, resized: tuple[int, int], original_size: tuple[int, int]):
    """
    Low-resolution logits `(..., h, w)` (a torch tensor) → logits `(..., H, W)` at the original image size: bilinear
    upscaling to the padded input, padding cropped away, bilinear resize to the original size (`align_corners=False`
    both times), as `SamImageProcessor.post_process_masks` before its threshold. `padded_size`: an int (square) or
    `(height, width)`. Threshold the result at 0 for masks.
    """
    import torch.nn.functional as F

    padded = (padded_size, padded_size) if isinstance(padded_size, int) else tuple(int(v) for v in padded_size)
    leading = logits.shape[:-2]
    # the layout of the callers' own interpolations, so that results match them bit for bit: (P, C, h, w) as
    # `post_process_masks`, (N, 1, h, w) for `(N, h, w)` as the training evaluation
    channels = leading[-1] if len(leading) >= 2 else 1
    flat = logits.reshape(math.prod(leading) // max(channels, 1), channels, *logits.shape[-2:]).float()
    flat = F.interpolate(flat, size=padded, mode="bilinear", align_corners=False)
    flat = flat[..., : int(resized[0]), : int(resized[1])]
    flat = F.interpolate(flat, size=tuple(int(v) for v in original_size), mode="bilinear", align_corners=False)
    return flat.reshape(*leading, *flat.shape[-2:])


__all__ = ["input_size", "low_res_size", "reduction_factor", "resized_size", "scale_coordinates", "upscale_logits"]
