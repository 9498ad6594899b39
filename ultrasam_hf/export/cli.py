"""`ultrasam export onnx`."""

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model for another runtime (onnx: ONNX graphs for ONNX Runtime)",
        description="Export an UltraSam model folder for another runtime.",
    )
    formats = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)
    onnx = formats.add_parser(
        "onnx",
        help="image encoder and prompt decoder as two ONNX graphs, with a manifest of their preprocessing",
        description="Write encoder.onnx (pixels -> image embeddings), decoder.onnx (prompt encoder + one mask "
        "decoder pass, any number of objects, points, boxes, optional mask prompt) and ultrasam_onnx.json "
        "(preprocessing, inputs, outputs, weights fingerprint, parity against PyTorch measured on export). "
        "The predictor and `ultrasam segment` use an export found in MODEL/onnx or in the cache (the default "
        "--out) automatically. Needs the onnx extra: pip install 'ultrasam-hf[onnx]'.",
    )
    onnx.add_argument(
        "model",
        nargs="?",
        help="UltraSam model folder, shipped model name (ultrasam-nano-us) or Hub id (default: the default model)",
    )
    onnx.add_argument(
        "--out", help="output folder (default: $ULTRASAM_CACHE/onnx/<fingerprint>, where it is found again)"
    )
    onnx.add_argument("--int8", action="store_true", help="also write dynamically quantised int8 graphs")
    onnx.add_argument("--check-image", help="image or DICOM for the parity check (default: a synthetic frame)")
    onnx.set_defaults(func=run_export_onnx)


def run_export_onnx(args) -> int:
    from ..inference.backends import onnxruntime_available
    from ..inference.default_model import default_model_dir
    from ..inference.model_loading import load_model_and_processor
    from ..models.image_loading import load_frames
    from .onnx_export import export_onnx, read_manifest

    if not onnxruntime_available():
        raise ValueError("exporting needs onnx and onnxruntime: pip install 'ultrasam-hf[onnx]'")
    source = args.model or default_model_dir()
    # strict: a folder that is not a complete UltraSam model is an error, never a random model exported
    model, processor = load_model_and_processor(source)
    image = load_frames(Path(args.check_image))[0] if args.check_image else None
    folder = export_onnx(model.eval(), processor, args.out, int8=args.int8, image=image)
    parity = read_manifest(folder)["parity"]
    for precision, stats in parity.items():
        if isinstance(stats, dict):
            print(
                f"{precision}: max |embedding diff| {stats['max_abs_embedding_diff']:.2e}, max |logit diff| "
                f"{stats['max_abs_logit_diff']:.2e}, min mask IoU {stats['min_mask_iou']:.4f} vs PyTorch"
            )
    print(f"Exported {source} -> {folder}")
    return 0
