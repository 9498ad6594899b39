"""Image encoders on one device: UltraSam's ViT-B against transformers' `SamModel` (same weights, same run) and the
lite encoder, in float32 and bfloat16, batch 1 and `--batch`, and compiled; with the parity of each row's masks.

    python scripts/benchmark_encoders.py --device cuda     # -> docs/encoder_benchmark.md (+ .json)
    python scripts/benchmark_encoders.py                   # the CPU

UltraSam's ViT folds SAM's relative-position bias into its queries and keys (`ultrasam_hf/models/modeling_vit.py`):
no `(heads, N, N)` bias in memory, and SDPA's fused kernels (flash on GPUs in bfloat16, and on the CPU).
Rows:
- ms per image: best of `--repeats` encoder calls after a warm-up (compiled rows: after compiling), divided by the
  batch; peak memory: the most GPU memory allocated during the row (on the CPU, not measured per row);
- vs SamModel: SamModel's time per image at the same precision and batch over the row's, then SamModel float32 at
  batch 1 (issue 15's reference) over the row's;
- parity, against SamModel float32 on one synthetic ultrasound-like image: the embedding's largest difference over
  its largest value, and the IoU of the masks that SamModel's decoder gives for a box on each embedding.

Random weights (PyTorch's default initialization of each layer, and the relative-position tables and position
embedding drawn too, which SAM initializes at zero), unless `--model` names an UltraSam `vit-b` folder: speed does
not depend on the weights, and parity of random weights is the stricter test.
"""

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from benchmark import best_time, cpu_name  # noqa: E402

PRECISIONS = ("float32", "bfloat16")


def synthetic_ultrasound(size: int) -> torch.Tensor:
    """(1, 3, size, size) pixels, normalized as SAM's: speckle over a bright fan with a dark oval (a cyst)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    fan = ((x - 0.5) ** 2 + y**2 < 0.9) * np.exp(-1.5 * y)
    cyst = ((x - 0.5) / 0.18) ** 2 + ((y - 0.5) / 0.12) ** 2 < 1
    image = fan * (1 - 0.85 * cyst) * rng.rayleigh(0.5, (size, size))
    image = (image - image.mean()) / image.std()
    return torch.from_numpy(np.repeat(image[None, None], 3, axis=1)).float()


def vit_models(size: int, model_dir: str | None):
    """(SamModel, UltraSam's ViT encoder with the same weights), float32, eval."""
    from transformers import SamConfig, SamModel

    from ultrasam_hf import UltraSamModel
    from ultrasam_hf.models.modeling_vit import UltraSamVisionEncoder

    torch.manual_seed(0)
    if model_dir:
        ultrasam = UltraSamModel.from_pretrained(model_dir).eval()
        if ultrasam.config.vision_config.encoder_type != "vit":
            raise ValueError(
                f"{model_dir} is not a ViT model (encoder_type {ultrasam.config.vision_config.encoder_type})"
            )
        sam = SamModel(SamConfig(vision_config=ultrasam.config.vision_config.to_dict())).eval()
        missing = sam.load_state_dict(ultrasam.state_dict(), strict=False).missing_keys
        if missing:
            raise ValueError(f"{model_dir}: SamModel weights missing from the folder: {missing[:5]}")
    else:
        sam = SamModel(
            SamConfig(vision_config={"image_size": size}, prompt_encoder_config={"image_size": size})
        ).eval()
        # transformers' initialization gives embeddings of about 1e-19 here: PyTorch's default one per layer instead
        for module in sam.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        for layer in sam.vision_encoder.layers:
            for table in (layer.attn.rel_pos_h, layer.attn.rel_pos_w):
                torch.nn.init.normal_(table, std=0.1)
        torch.nn.init.normal_(sam.vision_encoder.pos_embed, std=0.02)
    encoder = UltraSamVisionEncoder(sam.config.vision_config).eval()
    encoder.load_state_dict(sam.vision_encoder.state_dict())
    return sam, encoder


def lite_encoder():
    from ultrasam_hf import UltraSamModel
    from ultrasam_hf.inference.default_model import PACKAGED_MODEL

    return UltraSamModel.from_pretrained(PACKAGED_MODEL).vision_encoder.eval()


def timed_row(encode, pixels, device, repeats) -> dict:
    """Best time per image of `encode(pixels)` and the peak GPU memory it allocated."""

    def run():
        encode(pixels)
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    seconds = best_time(run, repeats)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    return {
        "ms_per_image": seconds * 1000 / pixels.shape[0],
        "images_per_s": pixels.shape[0] / seconds,
        "peak_mb": peak,
    }


def encode_function(encoder, precision: str, compiled: bool):
    """`pixels -> float32 embedding` for `encoder` in `precision` (bfloat16: a bfloat16 copy of the weights)."""
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    module = copy.deepcopy(encoder).to(dtype) if dtype != torch.float32 else encoder
    if compiled:
        module = torch.compile(module)

    @torch.no_grad()
    def encode(pixels):
        return module(pixels.to(dtype)).last_hidden_state.float()

    return encode


def mask_parity(sam, reference, embedding, size) -> dict:
    """Embedding difference and the IoU of SamModel's masks for one box on `embedding` and on `reference`."""
    box = torch.tensor([[[0.3 * size, 0.35 * size, 0.7 * size, 0.65 * size]]], device=reference.device)
    with torch.no_grad():
        masks = [
            sam(image_embeddings=e, input_boxes=box, multimask_output=False).pred_masks > 0
            for e in (reference, embedding)
        ]
    union = (masks[0] | masks[1]).sum().item()
    return {
        "embedding_error": ((embedding - reference).abs().max() / reference.abs().max()).item(),
        "mask_iou": (masks[0] & masks[1]).sum().item() / union if union else 1.0,
    }


def vit_rows(args, device) -> list[dict]:
    sam, encoder = vit_models(args.image_size, args.model)
    sam, encoder = sam.to(device), encoder.to(device)
    image = synthetic_ultrasound(args.image_size).to(device)
    with torch.no_grad():
        reference = sam.get_image_embeddings(image)
    variants = [("SamModel (transformers)", sam.vision_encoder, False), ("UltraSam", encoder, False)]
    if args.compile:
        variants.append(("UltraSam, torch.compile", encoder, True))
    rows = []
    for precision in PRECISIONS:
        # one (bfloat16 copy, compiled) encoder per variant, and its parity, for both batch sizes
        encoders = {name: encode_function(module, precision, compiled) for name, module, compiled in variants}
        parity = {
            name: mask_parity(sam, reference, encode(image), args.image_size) for name, encode in encoders.items()
        }
        for batch in sorted({1, args.batch}):
            pixels = torch.rand(batch, 3, args.image_size, args.image_size, device=device)
            for name, encode in encoders.items():
                row = {"encoder": "vit-b", "runtime": name, "precision": precision, "batch": batch}
                row.update(timed_row(encode, pixels, device, args.repeats))
                row.update(parity[name])
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def lite_rows(args, device) -> list[dict]:
    encoder = lite_encoder().to(device)
    rows = []
    for precision in PRECISIONS:
        pixels = torch.rand(args.batch, 3, 256, 256, device=device)
        for name, compiled in [("UltraSam lite", False)] + (
            [("UltraSam lite, torch.compile", True)] if args.compile else []
        ):
            row = {"encoder": "lite", "runtime": name, "precision": precision, "batch": args.batch}
            row.update(timed_row(encode_function(encoder, precision, compiled), pixels, device, args.repeats))
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def with_ratios(rows: list[dict]) -> list[dict]:
    """Each ViT row's speed against SamModel at its precision and batch, and against SamModel float32 batch 1."""
    sam = {(r["precision"], r["batch"]): r["ms_per_image"] for r in rows if r["runtime"].startswith("SamModel")}
    for row in rows:
        if row["encoder"] == "vit-b":
            row["vs_sam_same_setting"] = sam[row["precision"], row["batch"]] / row["ms_per_image"]
            row["vs_sam_float32_batch1"] = sam["float32", 1] / row["ms_per_image"]
    return rows


def table(rows, details, command) -> str:
    lines = [
        "# Image encoders\n",
        f"Measured with `{command}` on {details['device_name']} (torch {details['torch']}, {details['threads']} CPU "
        f"threads). Image size {details['image_size']} for the ViT, 256 for lite. See the script's docstring for the "
        "columns. The ViT's parity columns are against SamModel float32, batch 1, on the same weights.\n",
        "| encoder | runtime | precision | batch | ms per image | images/s | peak memory (MB) | vs SamModel, same "
        "setting | vs SamModel float32 batch 1 | embedding error | mask IoU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = lambda key: f"{r[key]:.2f}x" if key in r else ""  # noqa: E731
        peak = f"{r['peak_mb']:.0f}" if r.get("peak_mb") is not None else ""
        parity = (f"{r['embedding_error']:.1e}", f"{r['mask_iou']:.4f}") if "mask_iou" in r else ("", "")
        lines.append(
            f"| {r['encoder']} | {r['runtime']} | {r['precision']} | {r['batch']} | {r['ms_per_image']:.2f} | "
            f"{r['images_per_s']:.2f} | {peak} | {ratio('vs_sam_same_setting')} | {ratio('vs_sam_float32_batch1')} | "
            f"{parity[0]} | {parity[1]} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--encoders", nargs="+", choices=["vit-b", "lite"], default=["vit-b", "lite"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--image-size", type=int, default=1024, help="the ViT's input size (1024: SAM's)")
    parser.add_argument("--model", help="an UltraSam vit-b folder for the ViT rows (default: random weights)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="add torch.compile rows (default: on CUDA only)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "encoder_benchmark.md")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    args.compile = device.type == "cuda" if args.compile is None else args.compile
    torch.set_num_threads(args.threads)
    rows = []
    if "vit-b" in args.encoders:
        rows += vit_rows(args, device)
    if "lite" in args.encoders:
        rows += lite_rows(args, device)
    details = {
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "torch": torch.__version__,
        "threads": args.threads,
        "image_size": args.image_size,
    }
    command = "python scripts/benchmark_encoders.py " + " ".join(argv if argv is not None else sys.argv[1:])
    markdown = table(with_ratios(rows), details, command.strip())
    args.out.write_text(markdown)
    args.out.with_suffix(".json").write_text(json.dumps({"details": details, "rows": rows}, indent=2))
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
