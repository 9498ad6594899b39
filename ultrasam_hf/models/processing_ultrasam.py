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
"""Processor class for UltraSam: SAM's, with prompts checked against the image before any tensor work."""

import math
import warnings

import numpy as np
from transformers.models.sam.processing_sam import SamProcessor

from .errors import PromptError
from .image_processing_ultrasam import UltraSamImageProcessor


class UltraSamProcessor(SamProcessor):
    r"""
    SAM's processor on an [`UltraSamImageProcessor`], so it takes ultrasound inputs (DICOM, 16-bit, cine: one
    image per frame) and checks the prompts first.

    Prompts are in original pixel coordinates, `x` along the width and `y` along the height, as in SAM:
    `input_points` `[image, object, point, (x, y)]`, `input_labels` `[image, object, point]`, `input_boxes`
    `[image, box, (x0, y0, x1, y1)]`. The rules, applied per image before any resizing (each failure raises a
    [`PromptError`], a `ValueError`, naming the value):

    - NaN or infinite coordinates.
    - Point labels must be 1 (foreground), 0 (background), -1 (not a point) or the padding value (-10);
      points labelled -1 or -10 are padding and are not checked further.
    - Without boxes, every object needs at least one real point (labelled 1 or 0): padding alone is no prompt.
    - `input_labels` without `input_points`.
    - Shapes SAM cannot batch: per image, points `(points, 2)` or `(objects, points, 2)` with at least one point,
      labels of the points' shape without the last axis, boxes `(boxes, 4)`; the same shapes for every image (pad
      points with label -10); with both points and boxes, one point group per box.
    - A point outside the image (`x` not in `[0, width]` or `y` not in `[0, height]`).
    - A box with `x1 <= x0` or `y1 <= y0`.
    - A box partly outside the image is clipped to it, with a `UserWarning` naming the box; a box with no
      overlap with the image is an error.

    Calling it with `images` only is allowed (embedding-only use).

    Example:

    ```python
    >>> import numpy as np
    >>> from ultrasam_hf import UltraSamConfig, UltraSamProcessor
    >>> processor = UltraSamProcessor.from_model_config(UltraSamConfig.from_preset("lite"))
    >>> image = np.zeros((300, 400), dtype=np.uint8)
    >>> inputs = processor(images=image, input_boxes=[[[40, 30, 200, 150]]], return_tensors="pt")
    >>> inputs["input_boxes"].tolist()
    [[[25.6, 19.2, 128.0, 96.0]]]
    ```
    """

    @classmethod
    def from_model_config(cls, config, **kwargs) -> "UltraSamProcessor":
        """The processor a checkpoint expects, from its [`UltraSamConfig`]
        ([`UltraSamImageProcessor.from_model_config`]; `kwargs` override image-processor settings)."""
        return cls(UltraSamImageProcessor.from_model_config(config, **kwargs))

    def __call__(
        self,
        images=None,
        text=None,
        segmentation_maps=None,
        input_points=None,
        input_labels=None,
        input_boxes=None,
        **kwargs,
    ):
        r"""
        images (path, `pydicom.Dataset`, `PIL.Image.Image`, `np.ndarray` or a list of them):
            The images, anything [`UltraSamImageProcessor`] accepts; a multi-frame input gives one image per frame.
        input_points, input_labels, input_boxes:
            Prompts in original pixel coordinates, as in [`SamProcessor`]; see the class docstring for the checks.
        """
        if images is not None and (input_points is not None or input_boxes is not None or input_labels is not None):
            images = self.image_processor.load_images(images)
            sizes = [frame.shape[:2] for frame in images]
            point_pad_value = kwargs.get("point_pad_value", None)
            point_pad_value = self.point_pad_value if point_pad_value is None else point_pad_value
            objects = self._check_points(
                input_points, input_labels, sizes, point_pad_value, require_real=input_boxes is None
            )
            input_boxes = self._check_and_clip_boxes(input_boxes, sizes)
            if objects is not None and input_boxes is not None and len(input_boxes[0]) != objects:
                raise PromptError(
                    f"{len(input_boxes[0])} boxes per image and {objects} point groups: give one point group per box "
                    "(input_points `(objects, points, 2)` per image)."
                )
            # SamProcessor takes nested lists (or tensors), not NumPy arrays
            input_points, input_labels = (
                v.tolist() if isinstance(v, np.ndarray) else v for v in (input_points, input_labels)
            )
        return super().__call__(
            images=images,
            text=text,
            segmentation_maps=segmentation_maps,
            input_points=input_points,
            input_labels=input_labels,
            input_boxes=input_boxes,
            **kwargs,
        )

    @staticmethod
    def _per_image(prompts, name: str, last_dim: int | None) -> list[np.ndarray]:
        """`prompts` (nested lists or a tensor) as one float array per image; checks the coordinate dimension."""
        if hasattr(prompts, "detach"):
            prompts = prompts.detach().cpu().numpy()
        if not isinstance(prompts, (list, tuple, np.ndarray)) or len(prompts) == 0:
            raise PromptError(f"`{name}` must be a non-empty nested list (one entry per image), got {prompts!r}.")
        arrays = []
        for i, per_image in enumerate(prompts):
            try:
                array = np.asarray(per_image, dtype=np.float64)
            except (TypeError, ValueError) as error:
                raise PromptError(
                    f"`{name}` for image {i} is not a regular numeric nested list: {per_image!r}."
                ) from error
            if last_dim is not None and (array.ndim < 2 or array.shape[-1] != last_dim):
                raise PromptError(
                    f"`{name}` for image {i} has shape {array.shape}: expected the last dimension to hold "
                    f"{last_dim} coordinates, nested as in SamProcessor."
                )
            arrays.append(array)
        return arrays

    @staticmethod
    def _size_of(sizes, i, n_prompted):
        # SamProcessor applies the first image's size to every image's prompts when the counts differ.
        return sizes[i] if len(sizes) == n_prompted else sizes[0]

    def _check_points(self, input_points, input_labels, sizes, point_pad_value, require_real: bool = True):
        """Check points and labels; returns the number of objects (point groups) per image, `None` without points.
        `require_real`: every object needs a point labelled 1 or 0 (no box or mask prompts it otherwise)."""
        if input_labels is not None and input_points is None:
            raise PromptError("input_labels were given without input_points: labels go with points.")
        points = None if input_points is None else self._per_image(input_points, "input_points", 2)
        labels = None if input_labels is None else self._per_image(input_labels, "input_labels", None)
        for i, point in enumerate(points or []):
            if point.ndim not in (2, 3) or point.shape[-2] == 0:
                raise PromptError(
                    f"input_points for image {i} have shape {point.shape}: expected (points, 2) or (objects, points, 2) "
                    "with at least one point."
                )
        if points is not None and len({point.shape for point in points}) > 1:
            raise PromptError(
                f"input_points have shapes {[point.shape for point in points]} across images: give every image the "
                "same number of objects and points (pad with points labelled -10)."
            )
        if labels is not None:
            allowed = {0.0, 1.0, -1.0, float(point_pad_value)}
            for i, label in enumerate(labels):
                bad = sorted(set(label[~np.isin(label, list(allowed))].tolist()))
                if bad:
                    raise PromptError(
                        f"input_labels for image {i} contain {bad}: labels must be 1 (foreground), 0 (background), "
                        f"-1 (not a point) or {point_pad_value} (padding)."
                    )
            if points is not None:
                if len(labels) != len(points):
                    raise PromptError(f"input_labels cover {len(labels)} images but input_points cover {len(points)}.")
                for i, (label, point) in enumerate(zip(labels, points)):
                    if label.shape != point.shape[:-1]:
                        raise PromptError(
                            f"input_labels for image {i} have shape {label.shape}, input_points {point.shape}: "
                            "expected one label per point."
                        )
        if points is None:
            return None
        for i, point in enumerate(points):
            height, width = self._size_of(sizes, i, len(points))
            flat = point.reshape(-1, 2)
            if labels is not None:
                real = ~np.isin(labels[i].reshape(-1), [-1.0, float(point_pad_value)])
            else:
                real = ~(flat == point_pad_value).all(axis=-1)
            if require_real:
                per_object = real.reshape(math.prod(point.shape[:-2]), point.shape[-2])
                empty = np.flatnonzero(~per_object.any(axis=-1)).tolist()
                if empty:
                    raise PromptError(
                        f"Object(s) {empty} of image {i} have no real prompt: every point is labelled -1 (not a "
                        f"point) or {point_pad_value} (padding). Give a point labelled 1 or 0, or a box."
                    )
            for x, y in flat[real]:
                if not (np.isfinite(x) and np.isfinite(y)):
                    raise PromptError(f"Point [{x}, {y}] for image {i} is not finite.")
                if not (0 <= x <= width and 0 <= y <= height):
                    raise PromptError(
                        f"Point [{x}, {y}] for image {i} lies outside the {width}x{height} (width x height) image: "
                        "points are in original pixel coordinates, x along the width."
                    )
        return points[0].shape[0] if points[0].ndim == 3 else 1

    def _check_and_clip_boxes(self, input_boxes, sizes):
        if input_boxes is None:
            return None
        checked = []
        per_image = self._per_image(input_boxes, "input_boxes", 4)
        for i, boxes in enumerate(per_image):
            if boxes.ndim != 2 or boxes.shape[0] == 0:
                raise PromptError(
                    f"input_boxes for image {i} have shape {boxes.shape}: expected (boxes, 4), nested as in "
                    "SamProcessor ([image, box, 4])."
                )
        if len({boxes.shape for boxes in per_image}) > 1:
            raise PromptError(
                f"input_boxes have shapes {[boxes.shape for boxes in per_image]} across images: give every image the "
                "same number of boxes."
            )
        for i, boxes in enumerate(per_image):
            height, width = self._size_of(sizes, i, len(per_image))
            clipped = boxes.copy()
            for box, out in zip(boxes.reshape(-1, 4), clipped.reshape(-1, 4)):
                x0, y0, x1, y1 = box.tolist()
                if not np.isfinite(box).all():
                    raise PromptError(f"Box {box.tolist()} for image {i} is not finite.")
                if x1 <= x0 or y1 <= y0:
                    raise PromptError(
                        f"Box {box.tolist()} for image {i} is empty or inverted: expected [x0, y0, x1, y1] with "
                        "x1 > x0 and y1 > y0."
                    )
                if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
                    raise PromptError(
                        f"Box {box.tolist()} for image {i} lies entirely outside the {width}x{height} "
                        "(width x height) image."
                    )
                out[:] = np.clip(box, 0, [width, height, width, height])
                if not np.array_equal(out, box):
                    warnings.warn(
                        f"Box {box.tolist()} for image {i} extends outside the {width}x{height} (width x height) "
                        f"image: clipped to {out.tolist()}.",
                        UserWarning,
                        stacklevel=3,
                    )
            checked.append(clipped.tolist())
        return checked

    @classmethod
    def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
        # Load our image processor directly: no AutoImageProcessor registration needed to round-trip a folder.
        return [UltraSamImageProcessor.from_pretrained(pretrained_model_name_or_path, **kwargs)]


__all__ = ["UltraSamProcessor"]
