"""`with_decoder_layers` / `scripts/shrink_decoder.py`: a model cut to the first blocks of its mask decoder."""

import json

import pytest
import torch
from script_runs import run_python
from tiny_models import seeded_model

from ultrasam_hf import UltraSamModel
from ultrasam_hf.training.decoder_depth import with_decoder_layers


def _outputs(model):
    generator = torch.Generator().manual_seed(3)
    size = model.config.vision_config.image_size
    pixel_values = torch.rand(1, 3, size, size, generator=generator)
    boxes = torch.tensor([[[0.2, 0.3, 0.7, 0.8]]]) * size
    with torch.no_grad():
        return model(pixel_values=pixel_values, input_boxes=boxes, multimask_output=False)


def test_the_cut_model_runs_the_first_blocks_of_the_deep_one():
    deep = seeded_model("tiny-lite").eval()
    shallow = with_decoder_layers(deep, 1).eval()
    assert shallow.config.mask_decoder_config.num_hidden_layers == 1
    assert deep.config.mask_decoder_config.num_hidden_layers == 2  # the source is left as it was
    state = deep.state_dict()
    assert all(torch.equal(tensor, state[name]) for name, tensor in shallow.state_dict().items())
    assert not any(".transformer.layers.1." in name for name in shallow.state_dict())
    # the same as the deep model with its later block removed
    deep.mask_decoder.transformer.layers = deep.mask_decoder.transformer.layers[:1]
    expected, got = _outputs(deep), _outputs(shallow)
    assert torch.equal(got.pred_masks, expected.pred_masks) and torch.equal(got.iou_scores, expected.iou_scores)


def test_keeping_every_layer_is_a_copy_and_other_depths_are_refused():
    model = seeded_model("tiny-lite").eval()
    same = with_decoder_layers(model, 2)
    assert same is not model and torch.equal(_outputs(same).pred_masks, _outputs(model).pred_masks)
    for layers in (0, 3, "1", 1.0):
        with pytest.raises(ValueError, match="layers must be an integer from 1 to the decoder's 2"):
            with_decoder_layers(model, layers)


def test_script_writes_a_loadable_cut_model(tmp_path):
    seeded_model("tiny-lite").save_pretrained(tmp_path / "deep")
    out = tmp_path / "shallow"
    result = run_python(["scripts/shrink_decoder.py", tmp_path / "deep", "--layers", "1", "--out", out], script=True)
    assert "with 1 of its 2 decoder layers" in result.stdout
    loaded = UltraSamModel.from_pretrained(out)
    assert json.loads((out / "config.json").read_text())["mask_decoder_config"]["num_hidden_layers"] == 1
    expected = with_decoder_layers(UltraSamModel.from_pretrained(tmp_path / "deep"), 1)
    assert all(torch.equal(tensor, expected.state_dict()[name]) for name, tensor in loaded.state_dict().items())
    assert (out / "README.md").is_file()
