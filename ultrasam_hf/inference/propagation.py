"""Mask propagation through a cine loop or a volume: the mask of frame t prompts frame t+1.

UltraSam segments one image from a prompt. Through a sequence, the prompt of every frame after the first comes from
the previous frame's mask: its tight box and, by default, its low-res logits as mask prompt (SAM's refinement
input). Frames with a prompt of their own (the start frame, re-prompts) use that prompt instead, and propagation
goes on from them. When a propagated mask comes out empty the object is marked lost on that frame and the next
frame is prompted from the last non-empty mask.
"""

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ..evaluation.prompts import box_from_mask

DIRECTIONS = ("forward", "backward", "both")


@dataclass
class ObjectPrompt:
    """One object's prompt on one frame, in original pixels: a box `[x0, y0, x1, y1]` and/or clicks `(x, y)` with
    labels (1 foreground, 0 background)."""

    box: list | None = None
    points: list = field(default_factory=list)
    labels: list = field(default_factory=list)

    def __post_init__(self):
        if self.box is not None:
            box = np.asarray(self.box, dtype=np.float64)
            if box.size != 4:
                raise ValueError(f"A box is [x0, y0, x1, y1], got {self.box!r}.")
            self.box = [float(v) for v in box.ravel()]
        points = np.asarray(self.points, dtype=np.float64)
        if points.size % 2:
            raise ValueError(f"Points are (x, y) pairs, got {self.points!r}.")
        self.points = [[float(x), float(y)] for x, y in points.reshape(-1, 2)]
        self.labels = [int(v) for v in np.asarray(self.labels if self.labels else [1] * len(self.points)).ravel()]
        if len(self.labels) != len(self.points):
            raise ValueError(f"{len(self.points)} points but {len(self.labels)} labels: give one label per point.")
        if self.box is None and 1 not in self.labels:
            raise ValueError(
                "A prompt needs a box or at least one positive click (negative clicks alone select nothing)."
            )

    @classmethod
    def coerce(cls, prompt) -> "ObjectPrompt":
        """An `ObjectPrompt`, or a dict with `box`, `points`, `labels`."""
        if isinstance(prompt, cls):
            return prompt
        if isinstance(prompt, dict):
            unknown = set(prompt) - {"box", "points", "labels"}
            if unknown:
                raise ValueError(f"Unknown prompt keys {sorted(unknown)}: expected box, points, labels.")
            return cls(prompt.get("box"), prompt.get("points") or [], prompt.get("labels") or [])
        raise ValueError(f"A prompt is an ObjectPrompt or a dict with box/points/labels, got {type(prompt).__name__}.")

    def as_kwargs(self) -> dict:
        """Keyword arguments of `UltraSamPredictor.predict_object`."""
        if not self.points:
            return {"box": self.box, "points": None, "labels": None}
        return {"box": self.box, "points": np.array(self.points), "labels": np.array(self.labels)}

    def to_dict(self) -> dict:
        return {"box": self.box, "points": self.points, "labels": self.labels}


@dataclass
class PropagationResult:
    """Per frame `t` of the sequence: `masks[t]` `(H, W)` bool, `scores[t]` predicted IoU (NaN where no mask was
    predicted), `boxes[t]` the box prompt used (NaN where none), `sources[t]` one of `"prompt"` (the frame's own
    prompt), `"propagated"`, `"lost"` (the propagated mask came out empty) or `"skipped"` (outside the direction)."""

    masks: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    sources: list


class FrameEmbeddings:
    """Sets a predictor to frame `t` of a sequence, encoding each frame once and keeping the last `capacity`
    embeddings (all when `None`), so that re-propagating after a re-prompt costs decoder passes only."""

    def __init__(self, predictor, frames, capacity: int | None = None):
        self.predictor, self.frames, self.capacity = predictor, frames, capacity
        self._cache = OrderedDict()

    def __len__(self) -> int:
        return len(self.frames)

    def select(self, index: int) -> None:
        predictor = self.predictor
        if index in self._cache:
            self._cache.move_to_end(index)
            predictor.image_embeddings, predictor.original_size, predictor.reshaped_input_size = self._cache[index]
            return
        predictor.set_image(self.frames[index])
        self._cache[index] = (predictor.image_embeddings, predictor.original_size, predictor.reshaped_input_size)
        if self.capacity is not None and len(self._cache) > self.capacity:
            self._cache.popitem(last=False)


def box_prompt_from_mask(mask: np.ndarray, margin: float = 0.0) -> list[float] | None:
    """The tight box of a mask, grown by `margin` times its width / height on each side and clipped to the image;
    `None` for an empty mask."""
    if not mask.any():
        return None
    x0, y0, x1, y1 = box_from_mask(mask)
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    height, width = mask.shape
    return [max(0.0, x0 - dx), max(0.0, y0 - dy), min(width - 1.0, x1 + dx), min(height - 1.0, y1 + dy)]


def _check_frame(index, count: int, what: str) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < count:
        raise ValueError(f"{what} {index!r} is out of range for a sequence of {count} frame(s).")
    return int(index)


def propagate(
    predictor,
    frames,
    start_frame: int = 0,
    prompt=None,
    reprompts: dict | None = None,
    direction: str = "both",
    use_mask_prompt: bool = True,
    box_margin: float = 0.0,
    progress=None,
) -> PropagationResult:
    """
    Segment one object through `frames` from a prompt on `start_frame`.

    Args:
        predictor (`UltraSamPredictor`): the model.
        frames (sequence of images, or a [`FrameEmbeddings`]): the frames, anything `set_image` accepts each;
            a `FrameEmbeddings` reuses the embeddings it holds.
        start_frame (`int`): the frame `prompt` is on.
        prompt (`ObjectPrompt` or `dict` with `box` / `points` / `labels`): the object on `start_frame`.
        reprompts (`dict[int, prompt]`, *optional*): frames whose own prompt replaces the propagated one (an
            annotator correcting a drift); propagation continues from them.
        direction (`str`): `"forward"` (start to last frame), `"backward"` (start to first) or `"both"`.
        use_mask_prompt (`bool`): also pass the previous frame's low-res logits as mask prompt (else its box only).
            Needs frames of one size (the logits live in the padded model input); otherwise boxes only are used.
        box_margin (`float`): grow the propagated box by this fraction of its size on each side.
        progress (`callable`, *optional*): called as `progress(done, total)` after each frame.

    Returns:
        [`PropagationResult`].
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r} is not one of {DIRECTIONS}.")
    embeddings = frames if isinstance(frames, FrameEmbeddings) else FrameEmbeddings(predictor, frames, capacity=2)
    count = len(embeddings)
    if count == 0:
        raise ValueError("No frames to propagate through.")
    start_frame = _check_frame(start_frame, count, "start_frame")
    if prompt is None:
        raise ValueError("propagate needs a prompt on start_frame (a box and/or clicks).")
    prompts = {start_frame: ObjectPrompt.coerce(prompt)}
    for index, extra in (reprompts or {}).items():
        prompts[_check_frame(index, count, "re-prompt frame")] = ObjectPrompt.coerce(extra)

    masks, scores = [None] * count, np.full(count, np.nan)
    boxes, sources = np.full((count, 4), np.nan), ["skipped"] * count
    orders = []
    if direction in ("forward", "both"):
        orders.append(range(start_frame + 1, count))
    if direction in ("backward", "both"):
        orders.append(range(start_frame - 1, -1, -1))
    total = 1 + sum(len(order) for order in orders)

    def segment(index: int, last):
        """Segment frame `index` from its own prompt or from `last` = (mask, low-res logits, size) of the last
        non-empty mask; returns the new `last`."""
        embeddings.select(index)
        size = predictor.original_size
        box, logits = None, None
        if index in prompts:
            box, source = prompts[index].box, "prompt"
            mask, score, logits = predictor.predict_object(**prompts[index].as_kwargs())
        elif last is not None:
            if last[2] != size:  # the previous mask cannot be mapped onto a frame of another size
                raise ValueError(f"Frame {index} has size {size}, the frame before it {last[2]}: cannot propagate.")
            box = box_prompt_from_mask(last[0], box_margin)
            mask, score, logits = predictor.predict_object(box=box, mask_input=last[1] if use_mask_prompt else None)
            source = "propagated" if mask.any() else "lost"
        else:  # nothing to follow (an empty mask on the prompted frame) until the next prompt
            mask, score, source = np.zeros(size, dtype=bool), float("nan"), "lost"
        masks[index], scores[index], sources[index] = mask, score, source
        if box is not None:
            boxes[index] = box
        if progress is not None:
            progress(sum(m is not None for m in masks), total)
        return (mask, logits, size) if mask.any() else last

    from_start = segment(start_frame, None)
    for order in orders:
        last = from_start
        for index in order:
            last = segment(index, last)
    shape = masks[start_frame].shape
    stacked = np.stack([np.zeros(shape, dtype=bool) if mask is None else mask for mask in masks])
    return PropagationResult(stacked, scores, boxes, sources)


__all__ = ["DIRECTIONS", "FrameEmbeddings", "ObjectPrompt", "PropagationResult", "box_prompt_from_mask", "propagate"]
