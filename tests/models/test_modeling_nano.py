"""The `nano` preset: the student encoder gives SAM's embedding and runs in the full model."""

import pytest
import torch
import torch.nn.functional as F
from nano_models import small_nano_config

from ultrasam_hf import UltraSamConfig, UltraSamModel
from ultrasam_hf.models.configuration_ultrasam_backbone import UltraSamBackboneConfig
from ultrasam_hf.models.modeling_tinyvit import UltraSamTinyVitBlock


def test_nano_preset_gives_the_lite_embedding_shape_with_a_smaller_encoder():
    nano, lite = UltraSamConfig.from_preset("nano"), UltraSamConfig.from_preset("lite")
    model = UltraSamModel(nano).eval()
    with torch.no_grad():
        embedding = model.get_image_embeddings(torch.rand(1, 3, 256, 256))
    assert embedding.shape == (1, 256, 64, 64)
    assert nano.preprocessing == lite.preprocessing and nano.prompt_encoder_config == lite.prompt_encoder_config
    encoder_parameters = sum(p.numel() for p in model.vision_encoder.parameters())
    assert encoder_parameters < 0.3 * sum(p.numel() for p in UltraSamModel(lite).vision_encoder.parameters())


def test_nano_model_segments_saves_and_reloads(tmp_path):
    model = UltraSamModel(small_nano_config()).eval()
    pixels = torch.rand(2, 3, 64, 64)
    boxes = torch.tensor([[[8.0, 8.0, 40.0, 40.0]], [[4.0, 10.0, 30.0, 50.0]]])
    with torch.no_grad():
        out = model(pixel_values=pixels, input_boxes=boxes, output_hidden_states=True)
    assert out.pred_masks.shape == (2, 1, 3, 16 * 4, 16 * 4)
    assert [h.shape[-1] for h in out.vision_hidden_states] == [16, 8, 4]  # strides 4, 8, 16 at 64 px
    model.save_pretrained(tmp_path)
    reloaded = UltraSamModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(reloaded(pixel_values=pixels, input_boxes=boxes).pred_masks, out.pred_masks)


def test_nano_config_checks_its_geometry():
    with pytest.raises(ValueError, match="nano_depths"):
        small_nano_config().vision_config.__class__(encoder_type="nano", nano_depths=[1, 1])
    with pytest.raises(ValueError, match="nano_num_heads"):
        small_nano_config().vision_config.__class__(encoder_type="nano", nano_num_heads=7)
    with pytest.raises(ValueError, match="no backbone"):
        UltraSamBackboneConfig(vision_config={"encoder_type": "nano"})


@pytest.mark.parametrize("height, width, window", [(16, 16, 32), (5, 3, 8)])
def test_a_grid_smaller_than_its_window_attends_as_if_zero_padded(height, width, window):
    """The nano attention stage's window is twice its grid (16x16 tokens in a 32x32 window at 256 px, as trained):
    the block attends on the grid's tokens only, and must give what attention over the zero-padded window gives."""
    torch.manual_seed(0)
    config = small_nano_config().vision_config
    block = UltraSamTinyVitBlock(config, 32, 2, window).eval()
    with torch.no_grad():
        block.attn.attention_biases.normal_()
        block.attn.layer_norm.weight.normal_()
        block.attn.layer_norm.bias.normal_()  # the zero token's key and value come from these
        tokens = torch.randn(2, height * width, 32)
        grid = F.pad(tokens.view(2, height, width, 32), (0, 0, 0, window - width, 0, window - height))
        padded = block.attn(grid.reshape(2, window * window, 32))[0].view(2, window, window, 32)
        expected = padded[:, :height, :width].reshape(2, height * width, 32)
        seen = []  # tokens per sequence the attention projects: the grid's, not the window's
        hook = block.attn.qkv.register_forward_hook(lambda module, args, output: seen.append(args[0].shape[1]))
        output = block._window_attention(tokens, height, width)
        hook.remove()
    assert torch.allclose(output, expected, atol=1e-5)
    assert max(seen) == height * width
