"""UltraSam's ViT attention: the relative-position bias folded into queries and keys gives SAM's attention."""

import pytest
import torch
from transformers import SamConfig, SamModel
from transformers.models.sam.modeling_sam import SamVisionAttention, SamVisionSdpaAttention

from ultrasam_hf import UltraSamConfig, UltraSamModel
from ultrasam_hf.models.modeling_vit import UltraSamVisionSdpaAttention


def vit_model(**vision_overrides) -> UltraSamModel:
    """The `tiny` ViT with random relative-position tables (SAM initializes them at zero, which would hide them)."""
    config = UltraSamConfig.from_preset("tiny")
    for name, value in vision_overrides.items():
        setattr(config.vision_config, name, value)
    model = UltraSamModel(config).eval()
    generator = torch.Generator().manual_seed(0)
    for layer in model.vision_encoder.layers:
        for table in (layer.attn.rel_pos_h, layer.attn.rel_pos_w):
            table.data = torch.randn(table.shape, generator=generator) * 0.5
    return model


@pytest.fixture
def restore_fold(monkeypatch):
    monkeypatch.setattr(UltraSamVisionSdpaAttention, "fold", UltraSamVisionSdpaAttention.fold)


@pytest.fixture
def fold_calls(monkeypatch) -> list:
    """One entry per call of the folded product."""
    calls = []
    fold = UltraSamVisionSdpaAttention.fold_relative_positions
    monkeypatch.setattr(UltraSamVisionSdpaAttention, "fold_relative_positions", lambda *a: calls.append(1) or fold(*a))
    return calls


def embeddings(model, pixels, fold: bool, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(UltraSamVisionSdpaAttention, "fold", fold)
        return model.vision_encoder(pixels).last_hidden_state


@pytest.mark.parametrize("window_size", [4, 3])  # 3: 16x16 tokens padded to 18x18 windows
def test_folded_attention_gives_sams_embeddings(window_size, monkeypatch):
    model = vit_model(window_size=window_size)
    assert all(type(layer.attn) is UltraSamVisionSdpaAttention for layer in model.vision_encoder.layers)
    pixels = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        masked = embeddings(model, pixels, fold=False, monkeypatch=monkeypatch)
        folded = embeddings(model, pixels, fold=True, monkeypatch=monkeypatch)
    torch.testing.assert_close(folded, masked, rtol=0, atol=1e-5)


def test_folded_attention_gives_sams_gradients(monkeypatch):
    model = vit_model().train()
    pixels = torch.rand(2, 3, 64, 64)
    gradients = []
    for fold in (False, True):
        model.zero_grad()
        embeddings(model, pixels, fold, monkeypatch).square().mean().backward()
        gradients.append({name: p.grad.clone() for name, p in model.vision_encoder.named_parameters()})
    masked, folded = gradients
    assert any("rel_pos_h" in name for name in masked)
    for name in masked:
        torch.testing.assert_close(folded[name], masked[name], rtol=1e-4, atol=1e-6, msg=name)


def test_folded_attention_in_bfloat16_stays_within_bfloat16_rounding(monkeypatch):
    model = vit_model()
    pixels = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        reference = embeddings(model, pixels, fold=False, monkeypatch=monkeypatch)
        model.to(torch.bfloat16)
        masked = embeddings(model, pixels.bfloat16(), fold=False, monkeypatch=monkeypatch).float()
        folded = embeddings(model, pixels.bfloat16(), fold=True, monkeypatch=monkeypatch).float()
    # the folded bfloat16 run is as close to float32 as transformers' own bfloat16 run
    assert (folded - reference).abs().max() <= 2 * (masked - reference).abs().max()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_every_layer_folds_by_default(dtype, fold_calls):
    model = vit_model().to(dtype)
    with torch.no_grad():
        model.get_image_embeddings(torch.rand(1, 3, 64, 64, dtype=dtype))
    assert len(fold_calls) == len(model.vision_encoder.layers)


def test_eager_attention_is_left_as_sam_builds_it():
    config = UltraSamConfig.from_preset("tiny")
    config._attn_implementation = "eager"
    model = UltraSamModel(config)
    assert all(type(layer.attn) is SamVisionAttention for layer in model.vision_encoder.layers)


def test_vit_weights_keep_sams_names_and_load_from_sam():
    """The encoder's parameters are SamModel's, name for name: SAM checkpoints load into it unchanged."""
    config = UltraSamConfig.from_preset("tiny")
    sam = SamModel(SamConfig(vision_config=config.vision_config.to_dict())).eval()
    assert all(type(layer.attn) is SamVisionSdpaAttention for layer in sam.vision_encoder.layers)
    ours = UltraSamModel(config).eval()
    for layer in sam.vision_encoder.layers:
        torch.nn.init.normal_(layer.attn.rel_pos_h, std=0.5)
        torch.nn.init.normal_(layer.attn.rel_pos_w, std=0.5)
    assert ours.vision_encoder.load_state_dict(sam.vision_encoder.state_dict()).missing_keys == []
    pixels = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            ours.get_image_embeddings(pixels), sam.get_image_embeddings(pixels), rtol=0, atol=1e-5
        )


def test_encoder_benchmark_reports_parity_of_the_folded_encoder(tmp_path, load_script):
    """`scripts/benchmark_encoders.py` on a small ViT: every row, and the folded float32 encoder's parity columns."""
    import json

    benchmark = load_script("benchmark_encoders")
    out = tmp_path / "encoders.md"
    argv = ["--device", "cpu", "--encoders", "vit-b", "--image-size", "128", "--batch", "2", "--repeats", "1"]
    assert benchmark.main([*argv, "--threads", "1", "--out", str(out)]) == 0
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    settings = {(r["runtime"], r["precision"], r["batch"]) for r in rows}
    assert len(rows) == len(settings) == 8  # SamModel and UltraSam x float32, bfloat16 x batch 1, 2
    for row in rows:
        if row["precision"] == "float32":
            assert row["embedding_error"] < 1e-5 and row["mask_iou"] == 1.0, row
    assert out.read_text().count("| vit-b |") == 8


def test_backbone_vit_folds_too(restore_fold):
    """The detection backbone's ViT is UltraSam's: the same features folded or not."""
    from ultrasam_hf import UltraSamBackbone, UltraSamBackboneConfig

    backbone = UltraSamBackbone(UltraSamBackboneConfig.from_ultrasam_config(UltraSamConfig.from_preset("tiny"))).eval()
    assert all(type(layer.attn) is UltraSamVisionSdpaAttention for layer in backbone.encoder.layers)
    for layer in backbone.encoder.layers:
        torch.nn.init.normal_(layer.attn.rel_pos_h, std=0.5)
    pixels = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        folded = backbone(pixels).feature_maps
        UltraSamVisionSdpaAttention.fold = False  # restored by the fixture
        masked = backbone(pixels).feature_maps
    for a, b in zip(folded, masked):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("folded_in_graph", [False, True])
def test_onnx_export_of_the_vit_matches_pytorch(folded_in_graph, tmp_path, monkeypatch, fold_calls):
    """Exports keep the masked product (faster in ONNX Runtime); traced, the folded one is right too, also where its
    head dimension is padded (window 3: head dimension + 6)."""
    ort = pytest.importorskip("onnxruntime")
    from ultrasam_hf.export.graphs import ImageEncoderGraph
    from ultrasam_hf.export.onnx_export import _export_graph

    model = vit_model(window_size=3)
    assert (model.config.vision_config.hidden_size // model.config.vision_config.num_attention_heads + 6) % 8
    if folded_in_graph:
        monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: False)
    pixels = torch.rand(2, 3, 64, 64)
    path = tmp_path / "encoder.onnx"
    _export_graph(
        ImageEncoderGraph(model).eval(), (pixels,), path, ["pixels"], ["embeddings"], {"pixels": {0: "b"}}, 17
    )
    assert bool(fold_calls) == folded_in_graph
    monkeypatch.undo()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model.get_image_embeddings(pixels).numpy()
    torch.testing.assert_close(session.run(None, {"pixels": pixels.numpy()})[0], expected, rtol=0, atol=1e-4)
