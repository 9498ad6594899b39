"""Dice of one model under several predictor backends (PyTorch, ONNX Runtime fp32 / int8), same images and prompts,
in one run of `ultrasam_hf.evaluation`: what exporting or quantising changes.

    python scripts/eval_backends.py --model ultrasam_hf/assets/ultrasam-lite-us --data /work/builds/us43d \
        --limit 20 --out docs/onnx_int8_dice.md

Backends: `pytorch`, `pytorch-bf16` (encoder and prompt decoder in bfloat16), `onnx` (fp32), `onnx-int8` (encoder
and decoder quantised) and `onnx-int8-encoder` (encoder only). The graphs are exported (with int8) into a temporary
folder first, when an ONNX backend is asked for.
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np


def int8_encoder_only(folder: Path, target: Path) -> Path:
    """An export folder whose int8 graphs are the int8 encoder and the fp32 decoder."""
    from ultrasam_hf.export.onnx_export import MANIFEST

    target.mkdir(parents=True, exist_ok=True)
    for path in folder.glob("*.onnx"):
        shutil.copy(path, target / path.name)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["graphs"]["int8"] = {"encoder": "encoder_int8.onnx", "decoder": "decoder.onnx"}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--datasets", nargs="+")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=20, help="images per dataset (the first ones of the split)")
    parser.add_argument("--prompts", nargs="+", default=["box", "point"])
    parser.add_argument("--backends", nargs="+", default=["pytorch", "onnx", "onnx-int8", "onnx-int8-encoder"])
    parser.add_argument("--out", type=Path, required=True, help="markdown table (a .json beside it)")
    args = parser.parse_args(argv)

    from ultrasam_hf.data.loading import load_rows
    from ultrasam_hf.evaluation.runner import EvalSettings, evaluate
    from ultrasam_hf.export.onnx_backend import OnnxBackend
    from ultrasam_hf.export.onnx_export import export_onnx
    from ultrasam_hf.inference.backends import TorchBFloat16Backend
    from ultrasam_hf.inference.predictor import UltraSamPredictor

    reference = UltraSamPredictor.from_pretrained(args.model, backend="pytorch")
    model, processor = reference.model, reference.processor
    workdir = Path(tempfile.mkdtemp(prefix="ultrasam_eval_backends_"))
    start = time.perf_counter()
    onnx = any(name.startswith("onnx") for name in args.backends)
    folder = export_onnx(model, processor, workdir / "export", int8=True) if onnx else None
    export_seconds = time.perf_counter() - start
    predictors = {}
    for name in args.backends:
        if name == "pytorch":
            predictors[name] = reference
            continue
        if name == "pytorch-bf16":
            predictors[name] = UltraSamPredictor(model, processor, backend=TorchBFloat16Backend(model))
            continue
        source = int8_encoder_only(folder, workdir / "int8_encoder") if name == "onnx-int8-encoder" else folder
        precision = "fp32" if name == "onnx" else "int8"
        predictors[name] = UltraSamPredictor(model, processor, backend=OnnxBackend(model, source, precision))
    rows = load_rows(args.data, args.datasets, args.split, args.limit)
    settings = EvalSettings(prompts=args.prompts, baselines=False, limit=args.limit)
    result = evaluate(predictors, rows, settings, progress=False)

    dice = defaultdict(list)  # (dataset, prompt, backend) -> per-instance Dice
    for record in result.records:
        dice[record["dataset"], record["prompt"], record["model"]].append(record["metrics"]["dice"])
    lines = [
        "| dataset | prompt | n | "
        + " | ".join(args.backends)
        + " | "
        + " | ".join(f"{b} - pytorch" for b in args.backends if b != "pytorch")
        + " |",
        "|---|---|---|" + "---|" * (2 * len(args.backends) - 1),
    ]
    summary = {}
    groups = sorted({(d, p) for d, p, _ in dice}) + [("all", p) for p in args.prompts]
    for dataset, prompt in groups:

        def values(backend, dataset=dataset, prompt=prompt):
            if dataset != "all":
                return np.asarray(dice[dataset, prompt, backend])
            return np.concatenate([np.asarray(v) for (d, p, b), v in dice.items() if p == prompt and b == backend])

        means = {b: float(values(b).mean()) for b in args.backends}
        summary[f"{dataset}/{prompt}"] = {"n": len(values("pytorch")), "mean_dice": means}
        deltas = [f"{100 * (means[b] - means['pytorch']):+.2f}" for b in args.backends if b != "pytorch"]
        row = [dataset, prompt, str(len(values("pytorch")))] + [f"{means[b]:.4f}" for b in args.backends] + deltas
        lines.append("| " + " | ".join(row) + " |")
    seconds = {name: round(value, 3) for name, value in result.seconds_per_image.items()}
    table = "\n".join(lines) + "\n"
    args.out.write_text(table)
    args.out.with_suffix(".json").write_text(
        json.dumps(
            {
                "command": "python " + " ".join(sys.argv),
                "summary": summary,
                "seconds_per_image": seconds,
                "export_seconds": export_seconds,
                "images": result.images,
            },
            indent=2,
        )
    )
    print(table)
    print("seconds per image (all prompts):", seconds)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
