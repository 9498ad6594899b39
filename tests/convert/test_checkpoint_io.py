"""Safe reading and strict loading: bad inputs give a clear error that names the problem."""

import pytest
import torch
from safetensors.torch import save_file

from ultrasam_hf import UltraSamConfig, UltraSamModel
from ultrasam_hf.convert.checkpoint_io import load_state_dict, load_strictly, read_checkpoint
from ultrasam_hf.convert.litemedsam import convert_litemedsam_state_dict


class Payload:
    """Unpickling this object would call print("pwned")."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_payload_is_refused_without_running_it(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": Payload()}, path)
    with pytest.raises(ValueError, match="full unpickling") as error:
        read_checkpoint(path)
    assert str(path) in str(error.value)
    assert "pwned" not in capsys.readouterr().out


def test_truncated_file_is_reported(tmp_path):
    path = tmp_path / "cut.pth"
    torch.save({"w": torch.randn(1000)}, path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_checkpoint(path)
    cut = tmp_path / "cut.safetensors"
    save_file({"w": torch.randn(1000)}, str(cut))
    cut.write_bytes(cut.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_checkpoint(cut)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "absent.pth")


@pytest.mark.parametrize("wrap", [None, "model", "state_dict"])
def test_wrappers_and_safetensors_are_accepted(tmp_path, wrap):
    state = {"a.weight": torch.randn(2, 3), "b": torch.arange(3)}
    torch.save(state if wrap is None else {wrap: state, "epoch": 3}, tmp_path / "x.pth")
    loaded = load_state_dict(tmp_path / "x.pth")
    assert set(loaded) == set(state) and torch.equal(loaded["a.weight"], state["a.weight"])
    save_file(state, str(tmp_path / "x.safetensors"))
    assert set(load_state_dict(tmp_path / "x.safetensors")) == set(state)


def test_non_tensor_entries_are_named(tmp_path):
    torch.save({"w": torch.zeros(1), "note": "hello"}, tmp_path / "x.pth")
    with pytest.raises(ValueError, match="note"):
        load_state_dict(tmp_path / "x.pth")


def test_wrong_missing_and_unexpected_keys_are_named():
    model = UltraSamModel(UltraSamConfig.from_preset("tiny"))
    state = dict(model.state_dict())
    state["mask_decoder.iou_token.weight"] = torch.zeros(1, 7)  # wrong shape
    del state["vision_encoder.pos_embed"]  # missing
    state["vision_encoder.extra.weight"] = torch.zeros(1)  # unexpected
    with pytest.raises(ValueError) as error:
        load_strictly(model, state)
    message = str(error.value)
    assert "mask_decoder.iou_token.weight: checkpoint (1, 7) vs model (1, 32)" in message
    assert "missing keys (1): ['vision_encoder.pos_embed']" in message
    assert "unexpected keys (1): ['vision_encoder.extra.weight']" in message


def test_wrong_shape_in_a_source_checkpoint_is_named_after_conversion():
    model = UltraSamModel(UltraSamConfig.from_preset("tiny-lite"))
    with pytest.raises(ValueError, match="Not a LiteMedSAM checkpoint"):
        convert_litemedsam_state_dict({"w": torch.zeros(1)}, config=model.config)
