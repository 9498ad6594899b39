"""`UltraSamPredictor`: embed an image once, then prompt it any number of times — numpy in, numpy out, original
pixel coordinates, like segment-anything's `SamPredictor`.

Conventions: points are `(x, y)` with `x` along the width; boxes are `[x0, y0, x1, y1]`; both in the pixel
coordinates of the image given to `set_image`. Masks come back at that image's size.
"""

import hashlib
import json

import numpy as np
import torch

from ..models.errors import PromptError, UsageError
from ..models.image_loading import load_frames
from ..models.modeling_ultrasam import UltraSamModel
from ..models.processing_ultrasam import UltraSamProcessor
from ..models.transforms import scale_coordinates, upscale_logits
from .allocator import keep_freed_memory
from .backends import make_backend
from .model_loading import load_model_and_processor


def torch_device(device) -> torch.device:
    """`device` as a `torch.device` that exists on this machine; [`UsageError`] naming it otherwise."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise UsageError(f"device {device!r} is not a torch device (e.g. cpu, cuda, cuda:1, mps): {error}") from None
    available = {
        "cpu": lambda: True,
        "cuda": lambda: torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count(),
        "mps": lambda: torch.backends.mps.is_available(),
    }.get(device.type, lambda: True)
    if not available():
        raise UsageError(f"device '{device}' is not available on this machine (use --device cpu).")
    return device


def choose_mask(masks: np.ndarray, scores: np.ndarray, is_box: bool) -> int:
    """Which of one object's candidate masks `(C, H, W)` (scores `(C,)`) to keep. One candidate: that one. Of the
    multimask outputs, a box encloses one whole object, so its largest (outermost) mask is kept (LiteMedSAM's IoU
    head is nearly flat, about 0.2 for all three on the demo images, and its single-mask output misses the
    Doppler-filled half of the demo's lymph node); a point is ambiguous: the best predicted IoU is kept."""
    if len(masks) == 1:
        return 0
    if is_box:
        return int(np.asarray(masks).reshape(len(masks), -1).sum(axis=1).argmax())
    return int(np.asarray(scores).argmax())


class UltraSamPredictor:
    r"""
    Example:

    ```python
    >>> import numpy as np
    >>> from ultrasam_hf import UltraSamConfig, UltraSamModel, UltraSamPredictor
    >>> predictor = UltraSamPredictor(UltraSamModel(UltraSamConfig.from_preset("tiny")))
    >>> predictor.set_image(np.random.randint(0, 255, (120, 160), dtype=np.uint8))
    >>> masks, scores, logits = predictor.predict(boxes=[20, 30, 90, 100], multimask_output=False)
    >>> masks.shape, scores.shape
    ((1, 1, 120, 160), (1, 1))
    ```
    """

    def __init__(
        self,
        model: UltraSamModel,
        processor: UltraSamProcessor | None = None,
        device=None,
        backend="auto",
        model_dir=None,
    ):
        """`backend`: `"auto"` (ONNX Runtime when an export of these weights exists and onnxruntime is installed,
        else PyTorch), `"pytorch"`, `"pytorch-bf16"`, `"onnx"`, `"onnx-int8"` (see `inference/backends.py`), or a
        backend object.
        `model_dir`: the model's folder, where an export in `onnx/` is looked for besides the cache."""
        self.model = model.eval()
        self.processor = processor or UltraSamProcessor.from_model_config(model.config)
        self.device = torch_device(device) if device is not None else next(model.parameters()).device
        self.model.to(self.device)
        if self.device.type == "cpu":
            keep_freed_memory()  # prompts' activations reused, not faulted in again (inference/allocator.py)
        if isinstance(backend, str):
            backend = make_backend(backend, self.model, self.processor, self.device, model_dir)
        self.backend = backend
        self._image_key = None
        self.reset_image()

    @classmethod
    def from_pretrained(cls, path_or_repo_id, device=None, backend="auto", **kwargs) -> "UltraSamPredictor":
        """Load a model folder or Hub repository strictly (and its processor, or the one its config implies):
        a folder that is not a complete UltraSam model raises [`ModelLoadError`] (see `model_loading.load_model`)."""
        device = torch_device(device) if device is not None else None  # before the weights are read
        model, processor = load_model_and_processor(path_or_repo_id, **kwargs)
        return cls(model, processor, device=device, backend=backend, model_dir=path_or_repo_id)

    def reset_image(self) -> None:
        self.image_embeddings = None
        self.original_size = None
        self.reshaped_input_size = None

    @torch.no_grad()
    def set_image(self, image, frame: int | None = None) -> None:
        """Embed `image` (anything `load_frames` accepts). A multi-frame input needs `frame=` to pick one."""
        frames = load_frames(image)
        if len(frames) > 1 and frame is None:
            raise UsageError(f"The image has {len(frames)} frames: pass frame=<index> to choose one.")
        index = 0 if frame is None else frame
        if not 0 <= index < len(frames):
            raise UsageError(f"frame={frame} is out of range for an input with {len(frames)} frame(s).")
        inputs = self.processor.image_processor(frames[index], return_tensors="pt")
        self.original_size = tuple(int(v) for v in inputs["original_sizes"][0])
        self.reshaped_input_size = tuple(int(v) for v in inputs["reshaped_input_sizes"][0])
        self.image_embeddings = self.backend.encode(inputs["pixel_values"].to(self.device))

    def image_key(self) -> str:
        """What `set_image` depends on: this class, the encoder weights and the preprocessing. Predictors with equal
        keys compute the same embedding, so one can take another's (`use_image_of`) — e.g. a fine-tuned decoder and
        its base model sharing a frozen encoder in an evaluation. The backend is part of it."""
        if self._image_key is None:
            digest = hashlib.sha256(type(self).__qualname__.encode())
            digest.update(self.backend.key.encode())
            for name, tensor in sorted(self.model.vision_encoder.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
            digest.update(json.dumps(self.processor.image_processor.to_dict(), sort_keys=True, default=str).encode())
            self._image_key = digest.hexdigest()
        return self._image_key

    def use_image_of(self, other: "UltraSamPredictor") -> None:
        """Take the image set on `other` without re-encoding it; both must have the same `image_key()`."""
        if other.image_embeddings is None:
            raise UsageError("The other predictor has no image set.")
        if other.image_key() != self.image_key():
            raise UsageError("The predictors differ in encoder weights or preprocessing: their embeddings differ.")
        self.image_embeddings = other.image_embeddings.to(self.device)
        self.original_size, self.reshaped_input_size = other.original_size, other.reshaped_input_size

    @torch.no_grad()
    def predict(
        self,
        boxes=None,
        points=None,
        labels=None,
        mask_input=None,
        multimask_output: bool | None = None,
        return_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """
        Segment the objects given by the prompts on the image set by `set_image`.

        Args:
            boxes (`np.ndarray` `(4,)` or `(K, 4)` XYXY, *optional*): one box per object.
            points (`np.ndarray` `(N, 2)` for one object, or `(K, N, 2)`, *optional*): `(x, y)` clicks.
            labels (`np.ndarray` `(N,)` or `(K, N)`, *optional*): 1 foreground, 0 background; all 1 when omitted.
            mask_input (`np.ndarray` `(K, h, w)` or `(h, w)`, *optional*): low-res logits from a previous call
                (its third output), to refine that prediction.
            multimask_output (`bool`, *optional*): three masks per object (with their scores) instead of one;
                by default SAM's rule ([`default_multimask`]): three for a single click per object when the
                checkpoint was trained for them (`config.multimask_output_default`), else one.
            return_logits (`bool`): return mask logits instead of booleans.

        Returns:
            `masks` `(K, C, H, W)` at the original size, `scores` `(K, C)` predicted IoU, and the low-res logits
            `(K, C, h, w)`.
        """
        if self.image_embeddings is None:
            raise UsageError("Call set_image(image) before predict().")
        if boxes is None and points is None and mask_input is None:
            raise PromptError("No prompt given: pass boxes=, points= (with labels=) or mask_input=.")
        if labels is not None and points is None:
            raise PromptError("labels= were given without points=: labels go with points.")
        input_boxes, input_points, input_labels = self._prompts(boxes, points, labels, mask_input is not None)
        num_objects = (
            next(t.shape[1] for t in (input_boxes, input_points) if t is not None)
            if (input_boxes is not None or input_points is not None)
            else 1
        )
        input_masks = None
        if mask_input is not None:
            input_masks = torch.as_tensor(np.asarray(mask_input, dtype=np.float32), device=self.device)
            input_masks = input_masks.reshape(1, -1, *input_masks.shape[-2:])
            if not torch.isfinite(input_masks).all():
                raise PromptError("mask_input contains NaN or infinite values.")
            low_res = self.image_embeddings.shape[-1] * 4
            if input_masks.shape[-2:] != (low_res, low_res) or input_masks.shape[1] not in (1, num_objects):
                raise PromptError(
                    f"mask_input has shape {tuple(np.shape(mask_input))}: expected (K, {low_res}, {low_res}) low-res "
                    f"logits (the third output of predict) with K = 1 or the {num_objects} prompted objects."
                )
        if multimask_output is None:
            multimask_output = self.default_multimask(input_boxes, input_points, input_masks)
        iou_scores, pred_masks = self.backend.decode(
            self.image_embeddings, input_points, input_labels, input_boxes, input_masks, multimask_output
        )
        low_res_logits = pred_masks[0].cpu().float()  # (K, C, h, w); float32 arrays (numpy has no bfloat16)
        pad = self.processor.image_processor.pad_size
        masks = upscale_logits(low_res_logits, (pad.height, pad.width), self.reshaped_input_size, self.original_size)
        masks = masks if return_logits else masks > 0.0  # SAM's mask threshold
        return masks.numpy(), iou_scores[0].cpu().float().numpy(), low_res_logits.numpy()

    def default_multimask(self, input_boxes, input_points, input_masks) -> bool:
        """SAM's rule: three candidate masks only for an ambiguous prompt, one click per object with neither a box
        nor a mask prompt, and only for a checkpoint trained to predict them (`config.multimask_output_default`);
        boxes, several clicks and refinements get the single-mask output."""
        single_click = (
            input_boxes is None and input_masks is None and input_points is not None and input_points.shape[2] == 1
        )
        return bool(self.model.config.multimask_output_default and single_click)

    def predict_mask(self, box=None, points=None, labels=None) -> tuple[np.ndarray, float]:
        """
        One object's mask, chosen the way `ultrasam segment` and `ultrasam demo` choose it: the default output
        ([`default_multimask`]), and of several candidates the one [`choose_mask`] keeps.

        Args:
            box (`(4,)` XYXY, *optional*), points (`(N, 2)`, *optional*), labels (`(N,)`, *optional*): the prompt.

        Returns:
            `mask` `(H, W)` bool at the original size and its predicted IoU.
        """
        mask, score, _ = self.predict_object(box=box, points=points, labels=labels)
        return mask, score

    def predict_object(
        self, box=None, points=None, labels=None, mask_input=None
    ) -> tuple[np.ndarray, float, np.ndarray]:
        """
        [`predict_mask`] that also takes and returns low-res logits: `mask_input` `(h, w)` (the third output of a
        previous call, e.g. on the previous frame of a cine) refines the prompt.

        Returns:
            `mask` `(H, W)` bool, its predicted IoU and its low-res logits `(h, w)`.
        """
        masks, scores, low_res = self.predict(
            boxes=box,
            points=None if points is None else _as_float_array(points, "points").reshape(1, -1, 2),
            labels=labels,
            mask_input=None if mask_input is None else np.asarray(mask_input)[None],
        )
        best = choose_mask(masks[0], scores[0], box is not None)
        return masks[0, best], float(scores[0, best]), low_res[0, best]

    def propagate(self, frames, start_frame: int = 0, prompt=None, **kwargs):
        """Segment one object through a cine loop or volume: the mask of each frame prompts the next. See
        [`~ultrasam_hf.inference.propagation.propagate`] for the arguments."""
        from .propagation import propagate

        return propagate(self, frames, start_frame=start_frame, prompt=prompt, **kwargs)

    def _prompts(self, boxes, points, labels, has_mask: bool = False):
        """Check prompts against the image (the processor's rules) and map them to the model's input frame."""
        height, width = self.original_size
        checked_boxes = checked_points = checked_labels = None
        if boxes is not None:
            boxes = _as_float_array(boxes, "boxes")
            if boxes.size == 0 or boxes.size % 4:
                raise PromptError(f"boxes have shape {boxes.shape}: expected (4,) or (K, 4) as [x0, y0, x1, y1].")
            boxes = boxes.reshape(-1, 4)
            checked_boxes = np.asarray(self.processor._check_and_clip_boxes([boxes.tolist()], [(height, width)])[0])
        if points is not None:
            points = _as_float_array(points, "points")
            if points.size == 0 or points.shape[-1] != 2 or points.ndim > 3:
                raise PromptError(f"points have shape {points.shape}: expected (N, 2) or (K, N, 2) (x, y) pairs.")
            points = points.reshape(1, -1, 2) if points.ndim <= 2 else points
            labels = np.ones(points.shape[:-1]) if labels is None else _as_float_array(labels, "labels")
            labels = labels.reshape(points.shape[:-1]) if labels.size == np.prod(points.shape[:-1]) else labels
            if labels.shape != points.shape[:-1]:
                raise PromptError(f"labels have shape {labels.shape} but points {points.shape}: one label per point.")
            pad_value = self.processor.point_pad_value
            self.processor._check_points(
                [points.tolist()],
                [labels.tolist()],
                [(height, width)],
                pad_value,
                require_real=checked_boxes is None and not has_mask,
            )
            checked_points, checked_labels = points, labels
            if checked_boxes is not None and len(checked_boxes) != len(checked_points):
                raise PromptError(
                    f"{len(checked_boxes)} boxes and {len(checked_points)} point groups: give one point group per box."
                )
        size = self.original_size
        to_tensor = lambda array, dtype=torch.float32: torch.as_tensor(array, dtype=dtype, device=self.device)[None]  # noqa: E731
        return (
            None
            if checked_boxes is None
            else to_tensor(scale_coordinates(checked_boxes, size, self.reshaped_input_size)),
            None
            if checked_points is None
            else to_tensor(scale_coordinates(checked_points, size, self.reshaped_input_size)),
            None if checked_labels is None else to_tensor(checked_labels, torch.int64),
        )


def _as_float_array(values, name: str) -> np.ndarray:
    """A prompt as a float64 array; [`PromptError`] for anything that is not a regular array of numbers."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise PromptError(f"{name} must be a regular array of numbers, got {values!r:.80}: {error}") from None
