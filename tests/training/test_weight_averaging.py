"""`scripts/average_weights.py` / `average_models`: the uniform weight average of runs of one architecture."""

import json

import pytest
import torch
from script_runs import run_python
from tiny_models import seeded_model

from ultrasam_hf import UltraSamModel
from ultrasam_hf.training.weight_averaging import average_models


def _other(seed):
    torch.manual_seed(seed)
    return UltraSamModel(seeded_model("tiny").config)


def test_the_average_is_the_mean_of_every_float_tensor():
    first, second, third = _other(1), _other(2), _other(3)
    soup = average_models([first, second, third])
    states = [model.state_dict() for model in (first, second, third)]
    for name, tensor in soup.state_dict().items():
        expected = sum(state[name].float() for state in states) / 3 if tensor.is_floating_point() else states[0][name]
        torch.testing.assert_close(tensor.float(), expected.float(), msg=name)
    assert not soup.training and soup is not first


def test_models_that_cannot_be_averaged_are_refused():
    with pytest.raises(ValueError, match="at least two models"):
        average_models([_other(1)])
    config = seeded_model("tiny").config
    config.mask_decoder_config.iou_head_depth = 2
    with pytest.raises(ValueError, match="model 1 has another architecture .*mask_decoder_config"):
        average_models([_other(1), UltraSamModel(config)])
    index_a, index_b = _other(1), _other(2)
    index_a.register_buffer("index_table", torch.arange(4))
    index_b.register_buffer("index_table", torch.arange(4).flip(0))
    with pytest.raises(ValueError, match="index_table is an integer tensor that differs"):
        average_models([index_a, index_b])


def test_batch_norm_counters_take_the_largest():
    runs = [seeded_model("nano") for _ in range(2)]
    counter = next(name for name in runs[0].state_dict() if name.endswith("num_batches_tracked"))
    runs[0].state_dict()[counter].fill_(7)
    runs[1].state_dict()[counter].fill_(11)
    assert int(average_models(runs).state_dict()[counter]) == 11


def test_script_writes_a_loadable_averaged_model(tmp_path):
    folders = []
    for seed in (1, 2):
        folder = tmp_path / f"run{seed}"
        _other(seed).save_pretrained(folder)
        folders.append(folder)
    out = tmp_path / "soup"
    result = run_python(["scripts/average_weights.py", *folders, "--out", out], script=True)
    assert "wrote the mean of 2 models" in result.stdout
    loaded = UltraSamModel.from_pretrained(out)
    expected = average_models([UltraSamModel.from_pretrained(folder) for folder in folders])
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, expected.state_dict()[name]), name
    assert (out / "README.md").is_file()
    assert json.loads((out / "config.json").read_text())["model_type"] == "ultrasam"
