"""Shared by tests/hub and tests/inference: stand-ins for the Hub (a folder per repository) and a runner for code in a process without ultrasam_hf."""

import fnmatch
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

COMMIT = "0123456789abcdef0123456789abcdef01234567"

# Prepended to every script run by `run_without_package`: the package must not be importable there.
BLOCK_PACKAGE = """
import sys
sys.modules["ultrasam_hf"] = None
import torch
torch.set_num_threads(1)
"""


class FolderHub:
    """Stands in for `HfApi`: every upload writes its files under `root/<repo_id>/` (the Hub is unreachable here)."""

    def __init__(self, root):
        self.root = Path(root)

    def create_repo(self, repo_id, **kwargs):
        (self.root / repo_id).mkdir(parents=True, exist_ok=True)
        return SimpleNamespace(repo_id=repo_id)

    def _write(self, repo_id, path_in_repo, source):
        target = self.root / repo_id / path_in_repo
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, (bytes, bytearray)):
            target.write_bytes(source)
        else:
            shutil.copyfile(source, target)

    def create_commit(self, repo_id, operations, **kwargs):
        for operation in operations:
            self._write(repo_id, operation.path_in_repo, operation.path_or_fileobj)
        return SimpleNamespace(commit_url=f"local://{repo_id}", oid=COMMIT)

    def upload_folder(
        self, repo_id, folder_path, path_in_repo="", allow_patterns=None, ignore_patterns=None, **kwargs
    ):
        folder = Path(folder_path)
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            if not path.is_file():
                continue
            if allow_patterns and not any(fnmatch.fnmatch(relative, p) for p in allow_patterns):
                continue
            if ignore_patterns and any(fnmatch.fnmatch(relative, p) for p in ignore_patterns):
                continue
            self._write(repo_id, f"{path_in_repo}/{relative}".lstrip("/"), path)
        return SimpleNamespace(commit_url=f"local://{repo_id}", oid=COMMIT)

    def upload_file(self, repo_id, path_or_fileobj, path_in_repo, **kwargs):
        self._write(repo_id, path_in_repo, path_or_fileobj)
        return SimpleNamespace(commit_url=f"local://{repo_id}", oid=COMMIT)

    def __getattr__(self, name):  # anything else a push path asks for is a no-op here
        return lambda *args, **kwargs: None


def as_hub_cache(repo_folder, cache_dir, repo_id, kind="models"):
    """Lay `repo_folder` out as huggingface_hub's cache does after a download of `repo_id`."""
    repo_cache = Path(cache_dir) / f"{kind}--{repo_id.replace('/', '--')}"
    (repo_cache / "refs").mkdir(parents=True)
    (repo_cache / "refs" / "main").write_text(COMMIT)
    shutil.copytree(repo_folder, repo_cache / "snapshots" / COMMIT)


def run_without_package(script: str, *args, cwd) -> subprocess.CompletedProcess:
    """Run `script` (after `BLOCK_PACKAGE`) in a fresh interpreter where `import ultrasam_hf` fails; asserts success."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(Path(cwd) / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_PACKAGE + script, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def assert_adapter_outputs(remote_outputs, peft_model, base_model, inputs) -> None:
    """The masks a process without the package wrote to `remote_outputs` are the local adapted model's, and the
    adapter visibly changed them from the base model's."""
    import torch

    torch.set_num_threads(1)
    with torch.no_grad():
        expected = peft_model(**inputs, multimask_output=False).pred_masks
        unchanged = base_model(**inputs, multimask_output=False).pred_masks
    remote = torch.load(remote_outputs)
    torch.testing.assert_close(remote, expected, rtol=1e-4, atol=1e-6)
    assert (expected - unchanged).abs().max() > 100 * (remote - expected).abs().max()  # the adapter changed them


def perturbed_lora(base_folder):
    """A LoRA model (the package's LoRA path) on the UltraSam model of `base_folder`, its trainable weights moved off
    their initial values (LoRA's B starts at zero) so that the adapter and the trained decoder copy have an effect."""
    import torch

    from ultrasam_hf import UltraSamModel
    from ultrasam_hf.training.variants import apply_variant

    peft_model = apply_variant(UltraSamModel.from_pretrained(base_folder), "lora").eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in peft_model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    return peft_model
