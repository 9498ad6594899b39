import pytest
import torch
from transformers import AutoBackbone, Mask2FormerForUniversalSegmentation

from ultrasam_hf import UltraSamBackbone, UltraSamBackboneConfig, UltraSamConfig, UltraSamModel
from ultrasam_hf.models.configuration_ultrasam_backbone import PYRAMID_STRIDES
from ultrasam_hf.downstream.instance import mask2former_config


@pytest.mark.parametrize("preset, size, taps", [("tiny", 64, [0, 0, 1, 1]), ("tiny-lite", 64, [0, 1, 2, 3]), ("tiny-lite", 96, [0, 1, 2, 3])])
def test_feature_maps_shapes_and_strides(preset, size, taps):
    config = UltraSamBackboneConfig.from_ultrasam_config(UltraSamConfig.from_preset(preset), image_size=size, fpn_channels=24)
    assert config.feature_indices == taps and config.out_features == ["stage1", "stage2", "stage3", "stage4"]
    backbone = UltraSamBackbone(config).eval()
    assert backbone.channels == [24] * 4
    with torch.no_grad():
        maps = backbone(torch.rand(2, 3, size, size)).feature_maps
    assert [tuple(m.shape) for m in maps] == [(2, 24, size // s, size // s) for s in PYRAMID_STRIDES]


def test_paper_taps_for_vit_b_and_out_features():
    config = UltraSamBackboneConfig(vision_config=UltraSamConfig.from_preset("vit-b").vision_config.to_dict(), out_features=["stage2", "stage4"])
    assert config.feature_indices == [2, 5, 8, 11] and config.out_indices == [1, 3]
    small = UltraSamBackboneConfig.from_ultrasam_config(UltraSamConfig.from_preset("tiny"), out_indices=[0, 2])
    with torch.no_grad():
        maps = UltraSamBackbone(small).eval()(torch.rand(1, 3, 64, 64)).feature_maps
    assert [m.shape[-1] for m in maps] == [16, 4]


def test_auto_backbone_and_encoder_weights():
    model = UltraSamModel(UltraSamConfig.from_preset("tiny"))
    backbone = UltraSamBackbone.from_ultrasam(model, image_size=128, fpn_channels=16)  # ViT position embeddings resized
    assert torch.equal(backbone.encoder.layers[0].attn.qkv.weight, model.vision_encoder.layers[0].attn.qkv.weight)
    assert backbone.encoder.pos_embed.shape[1:3] == (16, 16)
    assert isinstance(AutoBackbone.from_config(backbone.config), UltraSamBackbone)


@pytest.mark.parametrize("preset", ["tiny", "tiny-lite"])
def test_inside_mask2former_save_load(preset, tmp_path):
    backbone = UltraSamBackboneConfig.from_ultrasam_config(UltraSamConfig.from_preset(preset), fpn_channels=32)
    model = Mask2FormerForUniversalSegmentation(mask2former_config(backbone, num_labels=2, hidden_dim=32, num_queries=8)).eval()
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
