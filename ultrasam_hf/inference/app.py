"""`ultrasam app`: the browser app (Gradio). Upload an image, a DICOM (cine too) or a NIfTI / NRRD / MHA volume; click
positive / negative points or two box corners; undo, reset; step through frames and propagate the mask through them;
export the masks as PNG, COCO-RLE JSON and NIfTI.

[`AppSession`] holds one user's image and annotations and does all the work (it needs no Gradio: the tests drive it
directly); [`build_app`] wires it to Gradio components. Everything runs locally: files never leave the machine, and
Gradio's telemetry is off unless `GRADIO_ANALYTICS_ENABLED` says otherwise. Needs `pip install ultrasam-hf[app]`.
"""

import functools
import os
import re
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from .batch import CocoWriter, load_input
from .overlay import draw_overlay
from .propagation import FrameEmbeddings, ObjectPrompt, propagate
from .volumes import volume_suffix, write_mask_volume

CLICK_MODES = ("positive click", "negative click", "box: two corners")
EMBEDDING_CACHE_FRAMES = 128  # ~4 MB each for the lite and vit-b models: re-propagating reuses them
SOURCE_WORDS = {"prompt": "your prompt", "propagated": "propagated", "lost": "propagation lost the object"}


def _stem(name: str) -> str:
    suffix = volume_suffix(name) or Path(name).suffix
    stem = name[: -len(suffix)] if suffix else name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem) or "image"


class AppSession:
    """One user's frames, prompts (per frame: a box and clicks), masks and undo history."""

    def __init__(self, predictor, path, axis: str = "z"):
        path = Path(path)
        self.frames, self.volume, self.spacing = load_input(path, axis)
        self.file_name, self.name = path.name, _stem(path.name)
        self.predictor = predictor
        self.embeddings = FrameEmbeddings(predictor, self.frames, capacity=EMBEDDING_CACHE_FRAMES)
        self.reset()

    def reset(self) -> None:
        self.prompts = {}  # frame -> {"box": [x0, y0, x1, y1] | None, "points": [[x, y]], "labels": [1 | 0]}
        self.history = {}  # frame -> undo actions, last first out
        self.corner = None  # (frame, (x, y)): the first corner of a box being drawn
        self.masks = {}  # frame -> (mask, predicted IoU, source)
        self.propagated_from = None  # the start frame of the last propagation

    def __len__(self) -> int:
        return len(self.frames)

    # ---------------------------------------------------------------------------------------------------- prompts

    def click(self, frame: int, x: float, y: float, mode: str) -> None:
        """A click at pixel `(x, y)` of `frame`: a positive / negative point, or a box corner (two clicks a box)."""
        frame, x, y = self._check(frame), float(x), float(y)
        if mode not in CLICK_MODES:
            raise ValueError(f"Unknown click mode {mode!r}: expected one of {CLICK_MODES}.")
        prompt = self._frame_prompt(frame)
        history = self.history.setdefault(frame, [])
        if mode == CLICK_MODES[2]:
            if self.corner is None or self.corner[0] != frame:
                self.corner = (frame, (x, y))
                history.append(("corner", None))
                return
            (x0, y0), self.corner = self.corner[1], None
            history.append(("box", prompt["box"]))
            prompt["box"] = [min(x0, x), min(y0, y), max(x0, x), max(y0, y)]
        else:
            prompt["points"].append([x, y])
            prompt["labels"].append(1 if mode == CLICK_MODES[0] else 0)
            history.append(("point", None))
        self.segment(frame)

    def undo(self, frame: int) -> None:
        """Take back the last click on `frame`."""
        frame = self._check(frame)
        history = self.history.get(frame)
        if not history:
            return
        action, previous_box = history.pop()
        prompt = self.prompts[frame]
        if action == "corner":
            self.corner = None
            return
        if action == "box":
            prompt["box"] = previous_box
        else:
            prompt["points"].pop()
            prompt["labels"].pop()
        self.segment(frame)

    def _frame_prompt(self, frame: int) -> dict:
        if frame not in self.prompts:
            # clicking on a propagated mask refines it: its box starts the frame's own prompt
            mask = self.masks.get(frame, (None,))[0]
            box = None
            if mask is not None and mask.any():
                rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
                box = [float(cols[0]), float(rows[0]), float(cols[-1]), float(rows[-1])]
            self.prompts[frame] = {"box": box, "points": [], "labels": []}
        return self.prompts[frame]

    def _valid_prompt(self, frame: int) -> ObjectPrompt | None:
        prompt = self.prompts.get(frame)
        if not prompt or (prompt["box"] is None and 1 not in prompt["labels"]):
            return None
        return ObjectPrompt.coerce(prompt)

    def _check(self, frame) -> int:
        frame = int(frame)
        if not 0 <= frame < len(self.frames):
            raise ValueError(f"Frame {frame} is out of range: the image has {len(self.frames)} frame(s).")
        return frame

    # ----------------------------------------------------------------------------------------------- segmentation

    def segment(self, frame: int) -> None:
        """Segment `frame` from its own prompt (drop its mask when the prompt holds no box and no positive click)."""
        prompt = self._valid_prompt(frame)
        if prompt is None:
            self.masks.pop(frame, None)
            return
        self.embeddings.select(frame)
        mask, score, _ = self.predictor.predict_object(**prompt.as_kwargs())
        self.masks[frame] = (mask, score, "prompt")

    def propagate(self, frame: int, progress=None) -> None:
        """Propagate through all frames from `frame` (if it has a prompt, else from the first prompted frame); the
        other prompted frames re-prompt."""
        prompted = {f: p for f in sorted(self.prompts) if (p := self._valid_prompt(f)) is not None}
        if not prompted:
            raise ValueError("Nothing to propagate: prompt the object on a frame first (a box or a positive click).")
        start = int(frame) if int(frame) in prompted else min(prompted)
        reprompts = {f: p for f, p in prompted.items() if f != start}
        result = propagate(self.predictor, self.embeddings, start, prompted[start], reprompts, progress=progress)
        self.masks = {
            index: (result.masks[index], float(result.scores[index]), result.sources[index])
            for index in range(len(self.frames))
        }
        self.propagated_from = start

    # --------------------------------------------------------------------------------------------------- showing

    def overlay(self, frame: int) -> np.ndarray:
        frame = self._check(frame)
        image = self.frames[frame]
        mask = self.masks.get(frame, (np.zeros(image.shape[:2], dtype=bool),))[0]
        prompt = self.prompts.get(frame, {"box": None, "points": [], "labels": []})
        points, labels = list(prompt["points"]), list(prompt["labels"])
        if self.corner is not None and self.corner[0] == frame:  # the first corner of a box: shown as a point
            points.append(list(self.corner[1]))
            labels.append(1)
        return np.asarray(draw_overlay(image, mask, box=prompt["box"], points=points or None, labels=labels or None))

    def status(self, frame: int) -> str:
        frame = self._check(frame)
        height, width = self.frames[frame].shape[:2]
        parts = [f"**{self.name}**, frame {frame + 1} of {len(self.frames)} ({width} x {height} px)"]
        if self.corner is not None and self.corner[0] == frame:
            parts.append("first box corner set: click the opposite corner")
        if frame in self.masks:
            mask, score, source = self.masks[frame]
            iou = "" if np.isnan(score) else f", predicted IoU {score:.2f}"
            parts.append(f"mask {int(mask.sum())} px ({SOURCE_WORDS.get(source, source)}{iou})")
        else:
            parts.append("no mask yet: click the object, or draw a box")
        if self.propagated_from is not None:
            lost = sum(source == "lost" for _, _, source in self.masks.values())
            parts.append(
                f"propagated through {len(self.frames)} frames from frame {self.propagated_from + 1}"
                + (f", object lost on {lost}" if lost else "")
            )
        return " · ".join(parts)

    # -------------------------------------------------------------------------------------------------- exporting

    def export(self, frame: int, folder) -> list[Path]:
        """Write the mask of `frame` as PNG (0/255), every frame's mask as one COCO-RLE JSON (with the prompts) and
        as a NIfTI mask (0/1; a volume keeps the input's spacing, origin and direction)."""
        frame = self._check(frame)
        if not self.masks:
            raise ValueError("No mask to export yet: click the object first.")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        shape = self.frames[0].shape[:2]
        single = len(self.frames) == 1
        png = folder / (f"{self.name}_mask.png" if single else f"{self.name}_frame{frame:03d}_mask.png")
        current = self.masks.get(frame, (np.zeros(self.frames[frame].shape[:2], dtype=bool),))[0]
        Image.fromarray(current.astype(np.uint8) * 255).save(png)
        writer = CocoWriter(
            {"description": "ultrasam app", "model": str(getattr(self.predictor.model, "name_or_path", ""))}
        )
        labels = np.zeros((len(self.frames), *shape), dtype=np.uint8)
        for index in sorted(self.masks):
            mask, score, source = self.masks[index]
            prompt = self._valid_prompt(index)
            detection = {
                "object": "1",
                "mask": mask,
                "score": score,
                "source": source,
                "prompt": prompt.to_dict() if prompt is not None and source == "prompt" else None,
            }
            writer.add(self.file_name, index, len(self.frames), mask.shape, [detection], None)
            if mask.shape == shape:
                labels[index] = mask
        coco = folder / f"{self.name}_masks.json"
        writer.write(coco)
        nifti = write_mask_volume(labels, folder / f"{self.name}_mask.nii.gz", self.volume, spacing=self.spacing)
        return [png, coco, nifti]


# ---------------------------------------------------------------------------------------------------------- Gradio


def _import_gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr
    except ImportError as error:
        raise ImportError("The app needs Gradio: `pip install ultrasam-hf[app]`.") from error
    return gr


def load_predictor(model=None, device=None):
    from .default_model import default_model_dir
    from .predictor import UltraSamPredictor

    return UltraSamPredictor.from_pretrained(model or default_model_dir(), device=device)


def theme():
    """Gradio's default look with the system's fonts: the page loads nothing from the internet (hospital networks)."""
    gr = _import_gradio()
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )


def build_app(model=None, device=None, predictor=None):
    """The Gradio `Blocks` of the app; `predictor` (else `model` / the default model) is shared by all sessions,
    each of which gets its own [`UltraSamPredictor`] view of it."""
    gr = _import_gradio()
    from .predictor import UltraSamPredictor

    shared = predictor or load_predictor(model, device)

    def fail_clearly(function):
        """Bad input shows as a message in the page, not as a server traceback."""

        @functools.wraps(function)  # Gradio reads the signature: `gr.SelectData`, `gr.Progress`
        def wrapper(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except (ValueError, FileNotFoundError, ImportError, RuntimeError) as error:
                raise gr.Error(str(error)) from error

        return wrapper

    def frame_outputs(session, frame):
        frame = int(frame or 0)
        return session.overlay(frame), session.status(frame)

    @fail_clearly
    def on_upload(file):
        if file is None:
            return None, None, gr.update(value=0, maximum=1, visible=False), "", gr.update(visible=False), None
        path = file if isinstance(file, str) else file.name
        session = AppSession(UltraSamPredictor(shared.model, shared.processor, device=shared.device), path)
        count = len(session)
        slider = gr.update(value=0, minimum=0, maximum=max(count - 1, 1), visible=count > 1)
        image, status = frame_outputs(session, 0)
        return session, image, slider, status, gr.update(visible=count > 1), None

    @fail_clearly
    def on_click(session, frame, mode, event: gr.SelectData):
        if session is None:
            raise ValueError("Upload an image first.")
        x, y = event.index
        session.click(int(frame or 0), x, y, mode)
        return frame_outputs(session, frame)

    @fail_clearly
    def on_frame(session, frame):
        if session is None:
            return None, ""
        return frame_outputs(session, frame)

    @fail_clearly
    def on_undo(session, frame):
        if session is None:
            return None, ""
        session.undo(int(frame or 0))
        return frame_outputs(session, frame)

    @fail_clearly
    def on_reset(session, frame):
        if session is None:
            return None, "", None
        session.reset()
        return (*frame_outputs(session, frame), None)

    @fail_clearly
    def on_propagate(session, frame, progress=gr.Progress()):  # noqa: B008 (how Gradio injects a progress bar)
        if session is None:
            raise ValueError("Upload a cine or volume first.")
        session.propagate(int(frame or 0), progress=lambda done, total: progress(done / total, desc="propagating"))
        return frame_outputs(session, frame)

    @fail_clearly
    def on_export(session, frame):
        if session is None:
            raise ValueError("Upload an image first.")
        folder = tempfile.mkdtemp(prefix="ultrasam-export-")
        return [str(path) for path in session.export(int(frame or 0), folder)]

    with gr.Blocks(title="UltraSam: ultrasound segmentation") as demo:
        gr.Markdown(
            "## UltraSam: promptable ultrasound segmentation\n"
            "Upload an image (PNG, JPG, TIF), a DICOM (cine too) or a NIfTI / NRRD / MHA volume, then click the "
            "object (positive), the background (negative), or two opposite corners of a box. **Research use only, "
            "not a medical device.** Files stay on the machine that runs the app."
        )
        session = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                upload = gr.File(label="Image, DICOM or volume", file_count="single", elem_id="upload")
                mode = gr.Radio(list(CLICK_MODES), value=CLICK_MODES[0], label="A click adds", elem_id="mode")
                with gr.Row():
                    undo = gr.Button("Undo", elem_id="undo")
                    reset = gr.Button("Reset", elem_id="reset")
                propagate_button = gr.Button(
                    "Propagate through all frames", variant="primary", visible=False, elem_id="propagate"
                )
                export = gr.Button("Export masks (PNG, JSON, NIfTI)", elem_id="export")
                downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")
            with gr.Column(scale=3):
                canvas = gr.Image(
                    label="Click on the image", type="numpy", format="png", interactive=False, elem_id="canvas"
                )
                frame = gr.Slider(0, 1, value=0, step=1, label="Frame", visible=False, elem_id="frame")
                status = gr.Markdown(elem_id="status")

        upload.change(on_upload, [upload], [session, canvas, frame, status, propagate_button, downloads])
        canvas.select(on_click, [session, frame, mode], [canvas, status])
        frame.change(on_frame, [session, frame], [canvas, status])
        undo.click(on_undo, [session, frame], [canvas, status])
        reset.click(on_reset, [session, frame], [canvas, status, downloads])
        propagate_button.click(on_propagate, [session, frame], [canvas, status])
        export.click(on_export, [session, frame], [downloads])
    return demo


def launch(model=None, host: str = "127.0.0.1", port: int = 7860, device=None, **kwargs):
    """Build the app and serve it (blocking unless `prevent_thread_lock=True`); `kwargs` go to `Blocks.launch`."""
    demo = build_app(model=model, device=device)
    demo.launch(server_name=host, server_port=port, theme=theme(), **kwargs)
    return demo


__all__ = ["CLICK_MODES", "AppSession", "build_app", "launch", "load_predictor", "theme"]
