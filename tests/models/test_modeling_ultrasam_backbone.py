import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoBackbone, Mask2FormerForUniversalSegmentation
from transformers.models.sam.modeling_sam import SamLayerNorm

from ultrasam_hf import UltraSamBackbone, UltraSamBackboneConfig, UltraSamConfig, UltraSamModel
from ultrasam_hf.downstream.instance import mask2former_config
from ultrasam_hf.models.configuration_ultrasam_backbone import PYRAMID_STRIDES


@pytest.mark.parametrize(
    "preset, size, taps",
    [("tiny", 64, [0, 0, 1, 1]), ("tiny-lite", 64, [0, 1, 2, 3]), ("tiny-lite", 96, [0, 1, 2, 3])],
)
def test_feature_maps_shapes_and_strides(preset, size, taps):
    config = UltraSamBackboneConfig.from_ultrasam_config(
        UltraSamConfig.from_preset(preset), image_size=size, fpn_channels=24
    )
    assert config.feature_indices == taps and config.out_features == ["stage1", "stage2", "stage3", "stage4"]
    backbone = UltraSamBackbone(config).eval()
    assert backbone.channels == [24] * 4
    with torch.no_grad():
        maps = backbone(torch.rand(2, 3, size, size)).feature_maps
    assert [tuple(m.shape) for m in maps] == [(2, 24, size // s, size // s) for s in PYRAMID_STRIDES]


def test_coarse_levels_convolve_at_the_pyramid_width():
    """Levels 4x or more coarser than their tap project to `fpn_channels` before their strided convolutions."""
    from ultrasam_hf.models.modeling_ultrasam_backbone import UltraSamPyramidLevel

    level = UltraSamPyramidLevel(in_channels=320, in_stride=4, out_stride=32, out_channels=64)
    strided = [m for m in level.resample if isinstance(m, torch.nn.Conv2d)]
    assert level.project_first and len(strided) == 2 and all(c.in_channels == c.out_channels == 64 for c in strided)
    assert level(torch.rand(1, 320, 32, 32)).shape == (1, 64, 4, 4)
    halving = UltraSamPyramidLevel(in_channels=160, in_stride=4, out_stride=8, out_channels=64)
    assert not halving.project_first and halving(torch.rand(1, 160, 32, 32)).shape == (1, 64, 16, 16)


def test_paper_taps_for_vit_b_and_out_features():
    config = UltraSamBackboneConfig(
        vision_config=UltraSamConfig.from_preset("vit-b").vision_config.to_dict(), out_features=["stage2", "stage4"]
    )
    assert config.feature_indices == [2, 5, 8, 11] and config.out_indices == [1, 3]
    small = UltraSamBackboneConfig.from_ultrasam_config(UltraSamConfig.from_preset("tiny"), out_indices=[0, 2])
    with torch.no_grad():
        maps = UltraSamBackbone(small).eval()(torch.rand(1, 3, 64, 64)).feature_maps
    assert [m.shape[-1] for m in maps] == [16, 4]


def test_auto_backbone_and_encoder_weights():
    model = UltraSamModel(UltraSamConfig.from_preset("tiny"))
    backbone = UltraSamBackbone.from_ultrasam(
        model, image_size=128, fpn_channels=16
    )  # ViT position embeddings resized
    assert torch.equal(backbone.encoder.layers[0].attn.qkv.weight, model.vision_encoder.layers[0].attn.qkv.weight)
    assert backbone.encoder.pos_embed.shape[1:3] == (16, 16)
    assert isinstance(AutoBackbone.from_config(backbone.config), UltraSamBackbone)


@pytest.mark.parametrize("preset", ["tiny", "tiny-lite"])
def test_inside_mask2former_save_load(preset, tmp_path):
    backbone = UltraSamBackboneConfig.from_ultrasam_config(UltraSamConfig.from_preset(preset), fpn_channels=32)
    model = Mask2FormerForUniversalSegmentation(
        mask2former_config(backbone, num_labels=2, hidden_dim=32, num_queries=8)
    ).eval()
    assert isinstance(model.model.pixel_level_module.encoder, UltraSamBackbone)
    pixels = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(pixel_values=pixels).masks_queries_logits
    model.save_pretrained(tmp_path)
    reloaded = Mask2FormerForUniversalSegmentation.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        after = reloaded(pixel_values=pixels).masks_queries_logits
    assert before.shape == (1, 8, 16, 16)
    torch.testing.assert_close(before, after)


def test_pyramid_norms_are_channel_layer_norms():
    """ViTDet's LayerNorm2d: each pixel's channels normalised (SAM's channels-first LayerNorm), not GroupNorm(1, C)."""
    config = UltraSamBackboneConfig.from_ultrasam_config(UltraSamConfig.from_preset("tiny"), fpn_channels=8)
    level = UltraSamBackbone(config).levels[0]
    norms = [module for module in level.modules() if isinstance(module, (SamLayerNorm, torch.nn.GroupNorm))]
    assert norms and all(isinstance(norm, SamLayerNorm) and norm.data_format == "channels_first" for norm in norms)
    features = torch.randn(2, 8, 5, 5) * 3 + 1
    expected = torch.nn.functional.layer_norm(features.permute(0, 2, 3, 1), (8,), eps=1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(level.layer_norm1(features), expected)


LOAD_BACKBONE = """
import sys
sys.modules["ultrasam_hf"] = None  # the package must not be importable here
import json
import torch
from transformers.dynamic_module_utils import get_class_from_dynamic_module
# What AutoBackbone.from_pretrained(folder, trust_remote_code=True) resolves; AutoBackbone itself (transformers 5.25)
# takes a local folder for a Hub repository id (`repo_exists` rejects the path), so it can load no folder offline.
auto_map = json.load(open(sys.argv[1] + "/config.json"))["auto_map"]
backbone_class = get_class_from_dynamic_module(auto_map["AutoBackbone"], sys.argv[1])
backbone = backbone_class.from_pretrained(sys.argv[1]).eval()
assert "transformers_modules" in type(backbone).__module__, type(backbone).__module__
with torch.no_grad():
    maps = backbone(torch.load(sys.argv[2])).feature_maps
torch.save(maps, sys.argv[3])
"""


def test_saved_backbone_loads_as_remote_code(tmp_path):
    config = UltraSamBackboneConfig.from_ultrasam_config(UltraSamConfig.from_preset("tiny-lite"), fpn_channels=16)
    torch.manual_seed(0)
    backbone = UltraSamBackbone(config).eval()
    backbone.save_pretrained(tmp_path / "backbone")
    auto_map = json.loads((tmp_path / "backbone" / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_ultrasam_backbone.UltraSamBackboneConfig",
        "AutoBackbone": "modeling_ultrasam_backbone.UltraSamBackbone",
    }
    pixels = torch.rand(1, 3, 64, 64)
    torch.save(pixels, tmp_path / "pixels.pt")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    command = [
        sys.executable,
        "-c",
        LOAD_BACKBONE,
        str(tmp_path / "backbone"),
        str(tmp_path / "pixels.pt"),
        str(tmp_path / "maps.pt"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    with torch.no_grad():
        expected = backbone(pixels).feature_maps
    for remote, local in zip(torch.load(tmp_path / "maps.pt"), expected, strict=True):
        torch.testing.assert_close(remote, local, rtol=0, atol=1e-5)
