"""Per-image tensors of a frozen model, computed once and kept on disk: on a CPU the encoder pass is the expensive
part (seconds per 256 px image), the heads trained on top of it take seconds. The downstream scripts' `--cache-dir`."""

import hashlib
from pathlib import Path

import torch


class TensorCache(dict):
    """Tensors (or tuples of tensors) by image id, kept in `path` when given and saved with `save()` (the callers
    save after every batch, so an interrupted run resumes where it stopped). `cache_file` names the file."""

    def __init__(self, path=None):
        super().__init__()
        self.path = Path(path) if path else None
        if self.path is not None and self.path.exists():
            self.update(torch.load(self.path, weights_only=True))

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        torch.save(dict(self), partial)
        partial.replace(self.path)  # never a half-written cache


def cache_file(cache_dir, init: str, seed: int, *extra) -> Path:
    """`cache_dir/<init name>-<fingerprint>.pt`. The fingerprint hashes the initialisation (its weight files' names,
    sizes and modification times; a `preset:` init is random, so its seed) and `extra` (what else the tensors depend
    on, e.g. the kind of features and the input size): changed weights or settings never reuse a file."""
    parts = [init, str(seed)]
    folder = Path(init)
    if not init.startswith("preset:") and folder.is_dir():
        for file in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")) + [folder / "config.json"]:
            if file.exists():
                stat = file.stat()
                parts.append(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}")
    parts += [str(value) for value in extra]
    digest = hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in (folder.name or init))
    return Path(cache_dir) / f"{name}-{digest}.pt"


__all__ = ["TensorCache", "cache_file"]
