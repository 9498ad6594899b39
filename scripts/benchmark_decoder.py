"""The decoder graphs of one model in one process, interleaved: SAM's decoder as written (`PromptDecoderGraph`), the
token-side decoder (`TokenSideDecoderGraph`, what `decoder.onnx` is exported from) and the split decoder (its image
side once per image, its prompt side per prompt), on one box prompt, with ONNX Runtime and PyTorch at a fixed thread
count. Rounds alternate the graphs, so that a slower stretch of a shared machine hits all of them alike. Written to
docs/decoder_benchmark.md.

    python scripts/benchmark_decoder.py                     # the shipped lite model, 2 threads
    python scripts/benchmark_decoder.py --profile           # + where ONNX Runtime's prompt side spends its time
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def graphs_and_inputs(model, eager: bool = False):
    """{name: (torch module, inputs)} for one box prompt on a random embedding, with and without a mask prompt; the
    split decoder in the layout ONNX graphs are exported in, or with `eager` in the PyTorch backends' layout
    (`ultrasam_hf/export/eager_layout.py`)."""
    import torch

    from ultrasam_hf.export.cached_decoder import ImageSideGraph, PromptSideGraph, TokenSideDecoderGraph
    from ultrasam_hf.export.eager_layout import EagerImageSide, EagerPromptSide
    from ultrasam_hf.export.graphs import PromptDecoderGraph

    generator = torch.Generator().manual_seed(0)
    size = model.config.prompt_encoder_config.image_embedding_size
    embeddings = 0.1 * torch.randn(1, model.config.mask_decoder_config.hidden_size, size, size, generator=generator)
    scale = model.config.prompt_encoder_config.image_size / 256
    box = torch.tensor([[[60.0, 70.0], [180.0, 200.0]]]) * scale, torch.tensor([[2, 3]])
    mask = torch.randn(1, 1, 4 * size, 4 * size, generator=generator)
    image_side = (EagerImageSide if eager else ImageSideGraph)(model).eval()
    with torch.no_grad():
        cached = image_side(embeddings)
    sam, token_side = PromptDecoderGraph(model).eval(), TokenSideDecoderGraph(model).eval()
    return {
        "SAM's decoder as written, box": (sam, (embeddings, *box, mask, torch.zeros(1))),
        "SAM's decoder as written, box + mask prompt": (sam, (embeddings, *box, mask, torch.ones(1))),
        "token-side decoder, box": (token_side, (embeddings, *box, mask, torch.zeros(1))),
        "token-side decoder, box + mask prompt": (token_side, (embeddings, *box, mask, torch.ones(1))),
        "split decoder: prompt side, box": (
            (EagerPromptSide if eager else PromptSideGraph)(model).eval(),
            (*cached, *box),
        ),
        "split decoder: image side (once per image)": (image_side, (embeddings,)),
    }


def gflops(module, inputs) -> float:
    """GFLOP of one call (`torch.utils.flop_counter`: the matrix products)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops() / 1e9


def shipped_layout(module):
    """(input names, output names, dynamic axes) with which `ultrasam export onnx` writes `module`'s graph. ONNX
    Runtime optimises for the shapes it knows: with the prompt count fixed it fuses each residual addition and layer
    norm into a SkipLayerNormalization, which on 2 cores took 2.65 ms against 0.66 ms unfused on 4,096 x 256."""
    from ultrasam_hf.export.cached_decoder import ImageSideGraph, TokenSideDecoderGraph
    from ultrasam_hf.export.graphs import PromptDecoderGraph
    from ultrasam_hf.export.onnx_export import DECODER_LAYOUT, IMAGE_SIDE_LAYOUT, PROMPT_SIDE_LAYOUT

    if isinstance(module, ImageSideGraph):
        return IMAGE_SIDE_LAYOUT
    if isinstance(module, (PromptDecoderGraph, TokenSideDecoderGraph)):
        return DECODER_LAYOUT
    return PROMPT_SIDE_LAYOUT


def shipped_session(module, inputs, path: Path, options):
    """Export `module` to `path` as `ultrasam export onnx` does (`shipped_layout`): an ONNX Runtime session of it with
    `options`, and its feeds for `inputs`."""
    import numpy as np
    import onnxruntime

    from ultrasam_hf.export.onnx_export import OPSET, _export_graph

    names, outputs, axes = shipped_layout(module)
    _export_graph(module, inputs, path, names, outputs, axes, OPSET)
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session, {key: np.ascontiguousarray(value.numpy()) for key, value in zip(names, inputs)}


def onnx_runner(module, inputs, folder: Path, name: str, threads: int):
    """A function that runs `module`'s graph as shipped once with ONNX Runtime on `inputs`."""
    from ultrasam_hf.export.onnx_backend import session_options

    session, feeds = shipped_session(module, inputs, folder / f"{name}.onnx", session_options(threads))
    return lambda: session.run(None, feeds)


def torch_runner(module, inputs):
    import torch

    def run():
        with torch.no_grad():
            module(*inputs)

    return run


# ONNX Runtime operator kinds, grouped as the prompt side's time splits: arithmetic in matrix products, passes over
# 4,096 x 256 (or 8,192 x 64) tensors, and the rest (shape arithmetic, gathers, the small token-side operators)
KERNEL_KINDS = {
    "matrix products": {"Gemm", "MatMul", "FusedMatMul", "FusedGemm", "Einsum"},
    "layer norms": {"LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization"},
    "additions and products by scalars": {"Add", "Mul", "Sub", "Div"},
    "GELUs": {"Gelu", "FastGelu", "BiasGelu"},
    "softmaxes": {"Softmax"},
    "transposes": {"Transpose"},
}


def kernel_profile(module, inputs, folder: Path, threads: int, runs: int, warm_up: int = 5) -> dict:
    """ONNX Runtime's kernel time per call of `module`'s graph as shipped, in ms, by `KERNEL_KINDS` (everything else
    under "other"), from its profiler over `runs` calls after `warm_up` (profiling adds a few microseconds per
    operator)."""
    import json

    from ultrasam_hf.export.onnx_backend import session_options

    options = session_options(threads)
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / "profile")
    session, feeds = shipped_session(module, inputs, folder / "profiled.onnx", options)
    for _ in range(warm_up + runs):
        session.run(None, feeds)
    events = json.loads(Path(session.end_profiling()).read_text())
    timed = [event for event in events if event["name"] == "model_run"][warm_up:]
    start = timed[0]["ts"]
    totals = dict.fromkeys([*KERNEL_KINDS, "other"], 0.0)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= start:
            op = event["args"]["op_name"]
            kind = next((kind for kind, ops in KERNEL_KINDS.items() if op in ops), "other")
            totals[kind] += event["dur"] / 1000 / len(timed)
    return totals


def sgemm_rate(size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a large float32 matrix product in PyTorch on its current threads: what these cores reach."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def profile_lines(profile: dict, gflop: float, rate: float, median_ms: float) -> list:
    """The `--profile` section of the report: kernel time by kind, and what the prompt side would take with its matrix
    products at `rate` GFLOP/s and everything else as fast as ONNX Runtime ran it (`median_ms` unprofiled)."""
    total = sum(profile.values())
    products = profile["matrix products"]
    rest = (total - products) * median_ms / total  # profiling slows every operator: scaled to the unprofiled median
    lines = [
        "",
        "## Where ONNX Runtime's prompt side spends its time (`--profile`)",
        "",
        "Kernel time per call of the split decoder's prompt side (one box), from ONNX Runtime's profiler:",
        "",
        "| kernels | ms per call | share |",
        "|---|---|---|",
    ]
    lines += [f"| {kind} | {ms:.2f} | {ms / total:.0%} |" for kind, ms in profile.items()]
    lines += [
        f"| all | {total:.2f} | 100% |",
        "",
        f"Profiled, the kernels took {total:.1f} ms per call against the {median_ms:.1f} ms median above. The matrix "
        f"products ran their {gflop:.2f} GFLOP at {gflop / products * 1000:.0f} GFLOP/s (profiled). A 2,048-square "
        f"float32 product in PyTorch ran at {rate:.0f} GFLOP/s on the same threads. The other kernels, scaled to "
        f"the median, take {rest:.1f} ms. So with every product at {rate:.0f} GFLOP/s, the prompt side would take "
        f"{rest + gflop / rate * 1000:.1f} ms.",
    ]
    return lines


def interleaved(runners: dict, rounds: int, calls: int) -> dict:
    """Seconds per call of each runner: `rounds` rounds, each running every runner `calls` times in turn."""
    times = {name: [] for name in runners}
    for run in runners.values():
        for _ in range(3):
            run()
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(calls):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder (default: the shipped ultrasam-lite-us)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "decoder_benchmark.md")
    parser.add_argument(
        "--profile", action="store_true", help="add ONNX Runtime's kernel time of the prompt side, by operator kind"
    )
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from ultrasam_hf import UltraSamModel
    from ultrasam_hf.inference.default_model import PACKAGED_MODEL

    torch.set_num_threads(args.threads)
    model = UltraSamModel.from_pretrained(args.model or PACKAGED_MODEL).eval()
    graphs = graphs_and_inputs(model)
    flops = {name: gflops(module, inputs) for name, (module, inputs) in graphs.items()}
    with tempfile.TemporaryDirectory() as folder:
        runners = {
            ("onnxruntime", name): onnx_runner(module, inputs, Path(folder), f"graph{i}", args.threads)
            for i, (name, (module, inputs)) in enumerate(graphs.items())
        }
        eager = graphs_and_inputs(model, eager=True)
        runners.update({("pytorch", name): torch_runner(module, inputs) for name, (module, inputs) in eager.items()})
        times = interleaved(runners, args.rounds, args.calls)
        split = "split decoder: prompt side, box"
        if args.profile:
            profile = kernel_profile(*graphs[split], Path(folder), args.threads, runs=args.rounds * args.calls)
    lines = [
        "# Decoder graphs, interleaved\n",
        f"Measured with `{' '.join(['python scripts/benchmark_decoder.py', *sys.argv[1:]])}`: model "
        f"`{args.model or 'ultrasam-lite-us (shipped)'}`, one box prompt on a random 64x64 embedding, "
        f"{args.threads} threads, torch {torch.__version__}. Each runtime has its own exported or eager graph. "
        f"Rounds alternate the graphs ({args.rounds} rounds x {args.calls} calls each). Times are in ms: the median, "
        "then the 10th percentile. Ratios are against SAM's decoder as written, same runtime, same run.\n",
        "| runtime | graph | GFLOP | median (ms) | p10 (ms) | vs SAM's decoder |",
        "|---|---|---|---|---|---|",
    ]
    for runtime in ("onnxruntime", "pytorch"):
        base = np.median(times[(runtime, "SAM's decoder as written, box")])
        for name in graphs:
            t = times[(runtime, name)]
            lines.append(
                f"| {runtime} | {name} | {flops[name]:.2f} | {1000 * np.median(t):.1f} | "
                f"{1000 * np.percentile(t, 10):.1f} | {np.median(t) / base:.2f}x |"
            )
    split_ms = 1000 * np.median(times[("onnxruntime", split)])
    lines += [
        "",
        "What the rows are (`ultrasam_hf/export/cached_decoder.py`, `docs/onnx_export.md`): all of them compute the "
        "same masks and scores (`tests/export/test_cached_decoder.py`); PyTorch runs the split decoder in the layout of "
        "its eager kernels (`ultrasam_hf/export/eager_layout.py`). SAM's decoder as written "
        "(`PromptDecoderGraph`) was `decoder.onnx` until the token-side decoder replaced it. The token-side decoder "
        "is `decoder.onnx` now: ONNX Runtime and the PyTorch backend run it for mask prompts (the refinement pass of "
        "`vit-b`, a previous frame's mask in `propagate`). The split decoder's prompt side takes every prompt "
        "without a mask prompt, once the image side has run for that image.",
        "",
        f"The prompt side ran its {flops[split]:.2f} GFLOP at {flops[split] / split_ms * 1000:.0f} GFLOP/s with ONNX "
        f"Runtime here ({split_ms:.1f} ms); a 10 ms prompt needs {flops[split] / 0.01:.0f} GFLOP/s.",
    ]
    if args.profile:
        lines += profile_lines(profile, flops[split], sgemm_rate(), split_ms)
    markdown = "\n".join(lines) + "\n"
    args.out.write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
