"""`ultrasam demo`: the default model (`default_model.py`) on real ultrasound DICOMs, with no download.

The images are two ultrasound DICOMs of pydicom-data: a lymph node with power Doppler (GE, RGB) and a pelvis dual
view with the bladder (Aloka, 16-bit palette colour). For each, a box prompt and a point prompt are run, the mask
chosen as `ultrasam segment` chooses it (`UltraSamPredictor.predict_mask`); overlays (mask contour and prompt drawn
on the image) and the masks are written as PNGs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import default_model


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


def run_demo(out_dir: str | Path = "ultrasam-demo", model_dir: str | Path | None = None, verbose: bool = True):
    """Run every `DEMO_CASES` prompt; returns a list of
    `(case, mask_area_fraction, score, overlay_path, mask_path)`."""
    from PIL import Image

    try:
        from pydicom.data import get_testdata_file
    except ImportError as error:
        raise FileNotFoundError(
            "The demo images come from pydicom-data: `pip install pydicom pydicom-data` (or `ultrasam-hf[demo]`)."
        ) from error
    from ..models.image_loading import load_frames
    from .overlay import draw_overlay
    from .predictor import UltraSamPredictor

    model_dir = Path(model_dir) if model_dir else default_model.default_model_dir(verbose=verbose)
    if verbose:
        print(f"Model: {model_dir}")
    predictor = UltraSamPredictor.from_pretrained(model_dir)  # strict: a folder that is not a model fails here
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results, current = [], None
    for case in DEMO_CASES:
        path = get_testdata_file(case.dicom)
        if path is None:
            raise FileNotFoundError(f"pydicom-data has no {case.dicom}; reinstall pydicom-data.")
        image = load_frames(path)[0]
        if current != case.dicom:
            predictor.set_image(image)
            current = case.dicom
        mask, score = predictor.predict_mask(box=case.box, points=None if case.point is None else [case.point])
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
        if model_dir.resolve() != default_model.PACKAGED_MODEL:
            print(
                "Note: LiteMedSAM was trained with box prompts only; single-point prompts give small or empty masks "
                "with it. The ultrasound-tuned lite checkpoint (ultrasam-lite-us) is trained with points as well."
            )
    return results
