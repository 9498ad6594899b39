"""Benchmarks: speed and memory measured as ratios against a baseline in the same run, written as tables in docs/.

    python scripts/benchmark.py                 # inference suite -> docs/inference_benchmark.md
    python scripts/benchmark.py --suite all     # + data build, training, runtimes, decoder, encoders (own scripts)

The inference suite compares, on this machine's CPU:
- UltraSamModel with refinement off vs transformers' SamModel, same weights (the overhead of the subclass);
- the cascaded refinement pass vs a single decoder pass, on cached embeddings (the model's forward), and the
  predictor's PyTorch backend with the refinement pass (split decoder) vs one `SamModel` decoder pass;
- UltraSamPredictor's cached-embedding prompt vs a full forward per prompt (why `set_image` once pays);
- the `lite` encoder vs the `vit-b` encoder (time and peak memory, each in a fresh process).
"""

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITE_SCRIPTS = {
    "data": "scripts/benchmark_data.py",
    "training": "scripts/benchmark_training.py",
    "runtimes": "scripts/benchmark_runtimes.py",  # PyTorch / ONNX Runtime / SamModel / LiteMedSAM -> docs/benchmarks.md
    "decoder": "scripts/benchmark_decoder.py",  # the decoder graphs, interleaved -> docs/decoder_benchmark.md
    "encoders": "scripts/benchmark_encoders.py",  # ViT-B vs SamModel, lite; GPU where present -> docs/encoder_benchmark.md
}


def cpu_name() -> str:
    """The CPU's model name (`/proc/cpuinfo`), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def best_time(function, repeats: int) -> float:
    """Best of `repeats` wall-clock seconds after one warm-up call (least disturbed by other load)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_encoder(preset: str, repeats: int) -> dict:
    """Run in a child process so that its peak RSS is this encoder's alone."""
    code = f"""
import json, time, torch
from ultrasam_hf import UltraSamConfig, UltraSamModel
torch.manual_seed(0)
model = UltraSamModel(UltraSamConfig.from_preset({preset!r})).eval()
size = model.config.vision_config.image_size
pixels = torch.rand(1, 3, size, size)
with torch.no_grad():
    model.get_image_embeddings(pixels)
    times = []
    for _ in range({repeats}):
        start = time.perf_counter(); model.get_image_embeddings(pixels); times.append(time.perf_counter() - start)
# VmHWM belongs to this process image (ru_maxrss would carry the parent's peak across fork/exec)
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({{"seconds": min(times), "peak_rss_mb": peak_kb / 1024,
                  "parameters": sum(p.numel() for p in model.parameters())}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def inference_suite(repeats: int) -> list[tuple[str, str, str, str]]:
    import numpy as np
    import torch
    from transformers import SamConfig, SamModel

    from ultrasam_hf import UltraSamConfig, UltraSamModel, UltraSamPredictor
    from ultrasam_hf.inference.backends import TorchBackend

    torch.manual_seed(0)
    rows = []
    box = torch.tensor([[[40.0, 40.0, 180.0, 200.0]]])

    # 1. subclass overhead: lite geometry is TinyViT (no SamModel twin), so use vit-b with refinement off
    ultra = UltraSamModel(UltraSamConfig.from_preset("vit-b", num_mask_refinements=0)).eval()
    sam = SamModel(SamConfig(**{k: v for k, v in ultra.config.to_dict().items() if k.endswith("_config")})).eval()
    sam.load_state_dict(ultra.state_dict())
    pixels = torch.rand(1, 3, 1024, 1024)
    with torch.no_grad():
        t_sam = best_time(lambda: sam(pixel_values=pixels, input_boxes=box), repeats)
        t_ultra = best_time(lambda: ultra(pixel_values=pixels, input_boxes=box), repeats)
        embeddings = ultra.get_image_embeddings(pixels)
        t_sam_decoder = best_time(lambda: sam(image_embeddings=embeddings, input_boxes=box), repeats * 5)
    rows.append(
        (
            "UltraSamModel vs SamModel, vit-b, refinement off, full forward",
            f"{t_sam:.3f} s",
            f"{t_ultra:.3f} s",
            f"{t_ultra / t_sam:.2f}x",
        )
    )
    sam = None  # free it (not `del`: the timing lambdas above name it)

    # 2. refinement pass cost on cached embeddings (decoder only)
    refined = UltraSamModel(UltraSamConfig.from_preset("vit-b")).eval()
    refined.load_state_dict(ultra.state_dict())
    with torch.no_grad():
        t_single = best_time(lambda: ultra(image_embeddings=embeddings, input_boxes=box), repeats * 5)
        t_refined = best_time(lambda: refined(image_embeddings=embeddings, input_boxes=box), repeats * 5)
        # the predictor's PyTorch backend: the split decoder for the first pass, the token-side one for the
        # refinement pass (docs/onnx_export.md)
        backend = TorchBackend(refined)
        t_backend = best_time(lambda: backend.decode(embeddings, None, None, box, None, False), repeats * 5)
    rows.append(
        (
            "1 refinement pass vs none, decoder on cached embeddings",
            f"{t_single * 1000:.1f} ms",
            f"{t_refined * 1000:.1f} ms",
            f"{t_refined / t_single:.2f}x",
        )
    )
    rows.append(
        (
            "vit-b box on cached embeddings: SamModel's decoder pass vs UltraSam's backend, 1 refinement pass",
            f"{t_sam_decoder * 1000:.1f} ms",
            f"{t_backend * 1000:.1f} ms",
            f"{t_backend / t_sam_decoder:.2f}x",
        )
    )
    ultra = refined = None  # free them

    # 3. predictor: embed once, prompt many times vs a full forward per prompt (lite)
    lite = UltraSamModel(UltraSamConfig.from_preset("lite")).eval()
    predictor = UltraSamPredictor(lite)
    image = np.random.default_rng(0).integers(0, 255, (480, 640), dtype=np.uint8)
    predictor.set_image(image)
    t_prompt = best_time(lambda: predictor.predict(boxes=[100, 80, 300, 260], multimask_output=False), repeats * 5)
    t_full = best_time(
        lambda: (predictor.set_image(image), predictor.predict(boxes=[100, 80, 300, 260], multimask_output=False)),
        repeats,
    )
    rows.append(
        (
            "predictor prompt on cached embedding vs set_image + prompt, lite",
            f"{t_full * 1000:.1f} ms",
            f"{t_prompt * 1000:.1f} ms",
            f"{t_full / t_prompt:.1f}x faster",
        )
    )

    # 4. encoders, each in a fresh process
    vit_b, lite_stats = measure_encoder("vit-b", repeats), measure_encoder("lite", repeats)
    rows.append(
        (
            "image encoder time, lite (256 px) vs vit-b (1024 px)",
            f"{vit_b['seconds']:.3f} s",
            f"{lite_stats['seconds']:.3f} s",
            f"{vit_b['seconds'] / lite_stats['seconds']:.1f}x faster",
        )
    )
    rows.append(
        (
            "peak RSS of encoder process, lite vs vit-b",
            f"{vit_b['peak_rss_mb']:.0f} MB",
            f"{lite_stats['peak_rss_mb']:.0f} MB",
            f"{vit_b['peak_rss_mb'] / lite_stats['peak_rss_mb']:.1f}x less",
        )
    )
    return rows


def write_table(rows, path: Path, command: str) -> str:
    import torch

    header = (
        "# Inference benchmark\n\n"
        f"Measured with `{command}` on {cpu_name()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, random weights (speed does not depend "
        "on them). Times are the best of several runs after a warm-up; ratios compare the two columns of the same "
        "run.\n\n"
        "| comparison | baseline | measured | ratio |\n|---|---|---|---|\n"
    )
    table = header + "".join(f"| {a} | {b} | {c} | {d} |\n" for a, b, c, d in rows)
    path.write_text(table)
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=["inference", *SUITE_SCRIPTS, "all"], default="inference")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "inference_benchmark.md")
    args = parser.parse_args(argv)
    if args.suite in ("inference", "all"):
        print(write_table(inference_suite(args.repeats), args.out, "python scripts/benchmark.py --suite inference"))
    for suite, script in SUITE_SCRIPTS.items():
        if args.suite in (suite, "all"):
            subprocess.run([sys.executable, str(REPO / script)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
