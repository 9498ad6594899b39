"""The split decoder (`ImageSideGraph` once per image, `PromptSideGraph` per prompt) against the full decoder graph,
in PyTorch and through the ONNX Runtime backend."""

import json

import numpy as np
import pytest
import torch

from ultrasam_hf import UltraSamPredictor
from ultrasam_hf.export.cached_decoder import ImageSideGraph, PromptSideGraph, TokenSideDecoderGraph
from ultrasam_hf.export.eager_layout import EagerImageSide, EagerPromptSide
from ultrasam_hf.export.graphs import PromptDecoderGraph
from ultrasam_hf.export.onnx_backend import OnnxBackend
from ultrasam_hf.export.onnx_export import MANIFEST, parity_image
from ultrasam_hf.training.decoder_depth import with_decoder_layers

PROMPTS = {
    "box": ([[[30.0, 40.0], [150.0, 170.0]]], [[2, 3]]),
    "click and padding point": ([[[90.0, 100.0], [0.0, 0.0]]], [[1, -1]]),
    "clicks, a negative one, a box": ([[[50.0, 60.0], [120.0, 30.0], [10.0, 20.0], [200.0, 210.0]]], [[1, 0, 2, 3]]),
    "three objects, a no-point slot": (
        [
            [[10.0, 10.0], [60.0, 70.0], [0.0, 0.0]],
            [[200.0, 40.0], [5.0, 250.0], [0.0, 0.0]],
            [[128, 128], [1, 1], [2, 2]],
        ],
        [[1, 1, -1], [0, 1, -10], [1, 0, 1]],
    ),
}


LAYOUTS = {"onnx": (ImageSideGraph, PromptSideGraph), "eager": (EagerImageSide, EagerPromptSide)}
ONE_BLOCK = "tiny-lite, one decoder block"


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("preset", ["tiny-lite", "tiny", ONE_BLOCK])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_split_decoder_equals_the_full_decoder(tiny_model, preset, prompt, layout):
    """Also for a decoder cut to one block (`with_decoder_layers`, `docs/decoder_benchmark.md`'s last section): its
    only block is the cached first one, and the final attention reads the image tokens that block updated."""
    model = with_decoder_layers(tiny_model("tiny-lite"), 1).eval() if preset == ONE_BLOCK else tiny_model(preset)
    size = model.config.prompt_encoder_config.image_embedding_size
    channels = model.config.mask_decoder_config.hidden_size
    full, (image_side, prompt_side) = PromptDecoderGraph(model), (graph(model) for graph in LAYOUTS[layout])
    embeddings = torch.randn(1, channels, size, size, generator=torch.Generator().manual_seed(1))
    coords = torch.tensor(PROMPTS[prompt][0]) * model.config.prompt_encoder_config.image_size / 256
    labels = torch.tensor(PROMPTS[prompt][1])
    with torch.no_grad():
        mask_size = 4 * size
        iou, logits = full(embeddings, coords, labels, torch.zeros(1, 1, mask_size, mask_size), torch.zeros(1))
        split_iou, split_logits = prompt_side(*image_side(embeddings), coords, labels)
    assert (
        split_logits.shape
        == logits.shape
        == (len(coords), model.config.mask_decoder_config.num_multimask_outputs + 1, mask_size, mask_size)
    )
    scale = max(float(logits.abs().max()), 1.0)
    assert torch.allclose(split_logits, logits, atol=1e-5 * scale, rtol=0)
    assert torch.allclose(split_iou, iou, atol=1e-5, rtol=0)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("selected", [slice(0, 1), slice(1, None)])
def test_the_prompt_side_computes_only_the_selected_masks(tiny_model, layout, selected):
    """`selected` (the PyTorch backends' single- or multi-mask output) skips the other masks' products: the same
    scores and logits as slicing all of them."""
    model = tiny_model("tiny-lite")
    size = model.config.prompt_encoder_config.image_embedding_size
    embeddings = torch.randn(1, model.config.mask_decoder_config.hidden_size, size, size)
    coords, labels = PROMPTS["three objects, a no-point slot"]
    coords = torch.tensor(coords) * model.config.prompt_encoder_config.image_size / 256
    image_side, prompt_side = (graph(model) for graph in LAYOUTS[layout])
    with torch.no_grad():
        cached = image_side(embeddings)
        iou, logits = prompt_side(*cached, coords, torch.tensor(labels))
        some_iou, some_logits = prompt_side(*cached, coords, torch.tensor(labels), selected)
    assert some_logits.shape[1] == len(range(logits.shape[1])[selected]) == some_iou.shape[1]
    assert torch.allclose(some_logits, logits[:, selected], atol=1e-5, rtol=0)
    assert torch.equal(some_iou, iou[:, selected])


@pytest.mark.parametrize("preset", ["tiny-lite", "tiny"])
@pytest.mark.parametrize("mask", ["none", "one for all objects", "one per object"])
def test_token_side_decoder_equals_the_full_decoder(tiny_model, preset, mask):
    model = tiny_model(preset)
    size = model.config.prompt_encoder_config.image_embedding_size
    generator = torch.Generator().manual_seed(2)
    embeddings = torch.randn(1, model.config.mask_decoder_config.hidden_size, size, size, generator=generator)
    coords, labels = PROMPTS["three objects, a no-point slot"]
    coords = torch.tensor(coords) * model.config.prompt_encoder_config.image_size / 256
    labels = torch.tensor(labels)
    masks = {"none": 1, "one for all objects": 1, "one per object": len(coords)}[mask]
    mask_input = 3 * torch.randn(masks, 1, 4 * size, 4 * size, generator=generator)
    has_mask = torch.tensor([float(mask != "none")])
    with torch.no_grad():
        iou, logits = PromptDecoderGraph(model)(embeddings, coords, labels, mask_input, has_mask)
        token_iou, token_logits = TokenSideDecoderGraph(model)(embeddings, coords, labels, mask_input, has_mask)
    scale = max(float(logits.abs().max()), 1.0)
    assert torch.allclose(token_logits, logits, atol=1e-5 * scale, rtol=0)
    assert torch.allclose(token_iou, iou, atol=1e-5, rtol=0)


class CountingSession:
    """An ONNX Runtime session that counts its runs."""

    def __init__(self, session):
        self.session, self.calls = session, 0

    def run(self, *args, **kwargs):
        self.calls += 1
        return self.session.run(*args, **kwargs)

    def get_outputs(self):
        return self.session.get_outputs()


def test_backend_runs_the_image_side_once_per_image_and_mask_prompts_in_the_full_decoder(exported):
    model, processor, folder = exported
    backend = OnnxBackend(model, folder)
    backend.image_side, backend.prompt_side, backend.decoder = (
        CountingSession(backend.image_side),
        CountingSession(backend.prompt_side),
        CountingSession(backend.decoder),
    )
    predictor = UltraSamPredictor(model, processor, backend=backend)
    predictor.set_image(parity_image(180))
    predictor.predict(boxes=[20, 30, 120, 150])
    predictor.predict(points=[[60, 80]], labels=[1], multimask_output=True)
    refinements = model.config.num_mask_refinements  # each refinement pass has a mask prompt
    assert (backend.image_side.calls, backend.prompt_side.calls, backend.decoder.calls) == (1, 2, 2 * refinements)
    _, _, logits = predictor.predict(boxes=[20, 30, 120, 150])
    assert backend.decoder.calls == 3 * refinements
    predictor.predict(mask_input=logits[:, 0])
    assert backend.decoder.calls == 3 * refinements + 1 + refinements
    predictor.set_image(parity_image(150))  # a new embedding: the image side again
    predictor.predict(boxes=[10, 10, 90, 90])
    assert backend.image_side.calls == 2


def test_exports_without_the_split_decoder_still_run(exported, tmp_path):
    """An export made before the split decoder (manifest without it) runs every prompt in the full decoder."""
    model, processor, folder = exported
    old = tmp_path / "old"
    old.mkdir()
    manifest = json.loads((folder / MANIFEST).read_text())
    for name in ("decoder_image", "decoder_prompt"):
        del manifest["graphs"]["fp32"][name]
    for name in manifest["graphs"]["fp32"].values():
        (old / name).write_bytes((folder / name).read_bytes())
    (old / MANIFEST).write_text(json.dumps(manifest))
    backend = OnnxBackend(model, old)
    assert backend.prompt_side is None
    new = UltraSamPredictor(model, processor, backend=OnnxBackend(model, folder))
    before = UltraSamPredictor(model, processor, backend=backend)
    image = parity_image(160)
    new.set_image(image)
    before.set_image(image)
    _, _, logits = new.predict(boxes=[20, 30, 120, 150])
    _, _, old_logits = before.predict(boxes=[20, 30, 120, 150])
    assert np.allclose(logits, old_logits, atol=1e-4 * max(float(np.abs(logits).max()), 1.0))


def test_decoder_benchmark_script_runs_on_a_tiny_model(tmp_path, tiny_model, load_script):
    """`scripts/benchmark_decoder.py` end to end on a tiny model: every graph, both runtimes, one table row each, and
    with `--profile` the prompt side's kernel time by operator kind."""
    module = load_script("benchmark_decoder")
    tiny_model("tiny-lite").save_pretrained(tmp_path / "model")
    out = tmp_path / "decoder_benchmark.md"
    argv = ["--model", str(tmp_path / "model"), "--rounds", "1", "--calls", "2", "--out", str(out), "--profile"]
    assert module.main(argv) == 0
    lines = out.read_text().splitlines()
    rows = [line for line in lines if line.startswith("| onnxruntime") or line.startswith("| pytorch")]
    assert len(rows) == 12 and all(row.endswith("x |") for row in rows)
    first = lines.index("| kernels | ms per call | share |") + 2
    cells = [line.strip("| ").split(" | ") for line in lines[first : first + len(module.KERNEL_KINDS) + 2]]
    assert [kind for kind, _, _ in cells] == [*module.KERNEL_KINDS, "other", "all"]
    assert float(cells[0][1]) > 0  # the matrix products


def test_kernel_profile_finds_the_prompt_sides_operator_kinds(tmp_path, tiny_model, load_script):
    """The profile has a time for every kind, and the prompt side's products, layer norms and softmaxes in theirs."""
    benchmark = load_script("benchmark_decoder")
    graph, inputs = benchmark.graphs_and_inputs(tiny_model("tiny-lite"))["split decoder: prompt side, box"]
    profile = benchmark.kernel_profile(graph, inputs, tmp_path, threads=1, runs=2)
    assert set(profile) == {*benchmark.KERNEL_KINDS, "other"} and all(ms >= 0 for ms in profile.values())
    assert profile["matrix products"] > 0 and profile["layer norms"] > 0 and profile["softmaxes"] > 0


def test_decoder_benchmark_exports_the_graphs_as_shipped(tmp_path, tiny_model, load_script):
    """The benchmark's graphs take the shipped graphs' input names and dynamic prompt axes: with fixed shapes ONNX
    Runtime optimises them differently (`shipped_layout`)."""
    import onnx

    benchmark = load_script("benchmark_decoder")
    graphs = benchmark.graphs_and_inputs(tiny_model("tiny-lite"))
    for index, (name, (graph, inputs)) in enumerate(graphs.items()):
        benchmark.onnx_runner(graph, inputs, tmp_path, f"graph{index}", 1)()
        shapes = {
            tensor.name: [dim.dim_param or dim.dim_value for dim in tensor.type.tensor_type.shape.dim]
            for tensor in onnx.load(tmp_path / f"graph{index}.onnx").graph.input
        }
        if "image side" in name:
            assert list(shapes) == ["image_embeddings"], name
        else:
            assert shapes["point_coords"] == ["objects", "points", 2], name
            assert shapes["point_labels"] == ["objects", "points"], name
