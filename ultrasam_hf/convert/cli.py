"""`ultrasam convert`."""

from __future__ import annotations

import shlex
import sys


def _convert(args) -> int:
    from ..cli import check_output_folder
    from ..models.errors import UsageError
    from . import convert

    command = "ultrasam " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["convert"] else None
    if command is None:
        command = f"ultrasam convert --from {args.source} {args.checkpoint} --out {args.out}"
    kwargs = {"command": command}
    if args.source == "ultrasam":
        kwargs["ffn_identity"] = args.ffn_identity
    elif args.ffn_identity != "auto":
        raise UsageError("--ffn-identity only applies to --from ultrasam")
    check_output_folder(args.out)
    model = convert(args.source, args.checkpoint, args.out, **kwargs)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"Converted {args.checkpoint} ({args.source}, {n_params / 1e6:.1f} M parameters) -> {args.out}")
    return 0


def register(subparsers) -> None:
    from .ultrasam import ULTRASAM_URL

    convert = subparsers.add_parser(
        "convert",
        help="convert a SAM / MedSAM / LiteMedSAM / UltraSam checkpoint to an UltraSam folder",
        description="Convert a checkpoint to a transformers folder (model.safetensors, config.json, processor "
        "config, README.md model card), loading it strictly. Files are read with torch.load(weights_only=True) "
        f"or safetensors. The official UltraSam weights: {ULTRASAM_URL}",
    )
    convert.add_argument(
        "--from",
        dest="source",
        required=True,
        choices=("sam", "medsam", "litemedsam", "ultrasam"),
        help="layout of CHECKPOINT: sam/medsam (segment_anything, e.g. sam_vit_b_01ec64.pth, medsam_vit_b.pth), "
        "litemedsam (lite_medsam.pth), ultrasam (the official mmdet UltraSam.pth)",
    )
    convert.add_argument("checkpoint", help=".pth/.pt/.bin or .safetensors file")
    convert.add_argument("--out", required=True, help="output folder")
    convert.add_argument(
        "--ffn-identity",
        choices=("auto", "add", "none"),
        default="auto",
        help="ultrasam only: whether the release's decoder MLP (mmcv FFN) added its own identity "
        "(add: fold it into the weights; none: keep them; auto: read meta['cfg'], else mmcv's default 'add')",
    )
    convert.set_defaults(func=_convert)
