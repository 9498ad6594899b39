"""`ultrasam convert` given files that are not the checkpoint it expects: one line naming the file and what to do,
exit status 1, no output folder."""

import pytest
import torch
from bad_input_helpers import assert_one_line_error, run
from safetensors.torch import save_file


class Payload:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory):
    """name -> (path, --from, what the error says, what it says to do)."""
    root = tmp_path_factory.mktemp("checkpoints")
    cases = {}
    (root / "notes.pth").write_text("model weights: see the shared drive\n")
    cases["text-file"] = (root / "notes.pth", "sam", "is not a PyTorch checkpoint", "torch.save")
    (root / "empty.pth").write_bytes(b"")
    cases["empty-file"] = (root / "empty.pth", "sam", "is empty (0 bytes)", "download or copy it again")
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 16, 16)}, root / "full.pth")
    data = (root / "full.pth").read_bytes()
    (root / "cut.pth").write_bytes(data[: len(data) // 2])
    cases["truncated-zip"] = (root / "cut.pth", "sam", "truncated or corrupt", "download or copy it again")
    (root / "legacy_cut.pth").write_bytes(b"\x80\x02" + b"\x8a\x0a" + bytes(40))
    cases["broken-pickle"] = (root / "legacy_cut.pth", "sam", "truncated or corrupt", "download or copy it again")
    torch.save({"model": {"w": torch.zeros(1)}, "extra": Payload()}, root / "evil.pth")
    cases["unsafe-pickle"] = (root / "evil.pth", "sam", "needs full unpickling", "re-save the weights")
    torch.save([torch.zeros(2)], root / "list.pth")
    cases["a-list"] = (root / "list.pth", "sam", "holds a list", "state_dict()")
    torch.save({"w": torch.zeros(1), "note": "hello"}, root / "mixed.pth")
    cases["non-tensor-entries"] = (root / "mixed.pth", "sam", "these entries are not tensors: ['note']", "")
    torch.save({}, root / "nothing.pth")
    cases["empty-state-dict"] = (root / "nothing.pth", "litemedsam", "the state dict is empty", "")
    torch.save({"image_encoder.patch_embed.seq.0.c.weight": torch.zeros(1)}, root / "lite_keys.pth")
    cases["litemedsam-given-as-sam"] = (root / "lite_keys.pth", "sam", "Not a segment_anything-layout", "--from")
    cases["sam-given-as-litemedsam"] = (root / "full.pth", "litemedsam", "Not a LiteMedSAM checkpoint", "--from")
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(5)}, root / "odd_shape.pth")
    cases["sam-key-odd-shape"] = (root / "odd_shape.pth", "sam", "Unknown SAM encoder", "known:")
    torch.save({"backbone.patch_embed.projection.weight": torch.zeros(3)}, root / "mmdet_odd.pth")
    cases["ultrasam-foreign"] = (root / "mmdet_odd.pth", "ultrasam", "Not an UltraSam (mmdet-layout)", "--from")
    save_file({"w": torch.zeros(2)}, str(root / "w.safetensors"))
    cases["safetensors-wrong-layout"] = (root / "w.safetensors", "litemedsam", "Not a LiteMedSAM checkpoint", "--from")
    save_file({"w": torch.zeros(2000)}, str(root / "big.safetensors"))
    (root / "cut.safetensors").write_bytes((root / "big.safetensors").read_bytes()[:300])
    cases["truncated-safetensors"] = (root / "cut.safetensors", "sam", "not a readable .safetensors", "again")
    (root / "folder.pth").mkdir()
    cases["a-folder"] = (root / "folder.pth", "sam", "is a folder", "give the checkpoint file")
    cases["missing"] = (root / "absent.pth", "sam", "Checkpoint not found", "check the path")
    return cases


@pytest.mark.parametrize(
    "case",
    [
        "text-file",
        "empty-file",
        "truncated-zip",
        "broken-pickle",
        "unsafe-pickle",
        "a-list",
        "non-tensor-entries",
        "empty-state-dict",
        "litemedsam-given-as-sam",
        "sam-given-as-litemedsam",
        "sam-key-odd-shape",
        "ultrasam-foreign",
        "safetensors-wrong-layout",
        "truncated-safetensors",
        "a-folder",
        "missing",
    ],
)
def test_a_file_that_is_not_the_expected_checkpoint_is_refused(case, bad_checkpoints, tmp_path, capsys):
    path, source, what, hint = bad_checkpoints[case]
    code, out, err = run(["convert", "--from", source, path, "--out", tmp_path / "out"], capsys)
    assert code == 1
    assert_one_line_error(err, "ultrasam convert", str(path), what, hint)
    assert "pwned" not in out and not (tmp_path / "out").exists()


def test_out_naming_a_file_is_refused_before_reading(bad_checkpoints, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("x")
    code, _, err = run(["convert", "--from", "sam", bad_checkpoints["truncated-zip"][0], "--out", taken], capsys)
    assert code == 1
    assert_one_line_error(err, "ultrasam convert", str(taken), "is an existing file")
    assert taken.read_text() == "x"


def test_options_that_do_not_apply_are_refused(bad_checkpoints, tmp_path, capsys):
    path = bad_checkpoints["truncated-zip"][0]
    code, _, err = run(["convert", "--from", "sam", path, "--out", tmp_path / "o", "--ffn-identity", "add"], capsys)
    assert code == 1
    assert_one_line_error(err, "ultrasam convert", "--ffn-identity only applies to --from ultrasam")
