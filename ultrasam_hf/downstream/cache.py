"""Per-image tensors of a frozen model, computed once and kept on disk: on a CPU the encoder pass is the expensive
part (seconds per 256 px image), the heads trained on top of it take seconds. The downstream scripts' `--cache-dir`."""

import hashlib
from pathlib import Path

import torch

from ..inference.model_loading import resolve_model_folder


class TensorCache(dict):
    """Tensors (or tuples of tensors) by image id, kept in `path` when given (in memory only without one).

    `save()` (the callers' after every batch) writes only the entries added since the last save, as a part file in
    `<path>.parts/`, so an interrupted run resumes where it stopped without rewriting everything it had so far;
    `consolidate()` (at the end of a pass) merges the parts into `path`. `cache_file` names the file."""

    def __init__(self, path=None):
        super().__init__()
        self.path = Path(path) if path else None
        if self.path is not None:
            if self.path.exists():
                self.update(torch.load(self.path, weights_only=True))
            for part in sorted(self._parts_dir.glob("part-*.pt")):  # left by an interrupted pass
                self.update(torch.load(part, weights_only=True))
        self._saved = set(self)

    @property
    def _parts_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".parts")

    def save(self) -> None:
        new = {key: value for key, value in self.items() if key not in self._saved}
        if self.path is None or not new:
            return
        self._parts_dir.mkdir(parents=True, exist_ok=True)
        part = self._parts_dir / f"part-{len(list(self._parts_dir.glob('part-*.pt'))):06d}.pt"
        partial = part.with_suffix(".partial")
        torch.save(new, partial)
        partial.replace(part)  # never a half-written part
        self._saved.update(new)

    def consolidate(self) -> None:
        self.save()
        parts = sorted(self._parts_dir.glob("part-*.pt")) if self.path is not None else []
        if not parts:
            return
        partial = self.path.with_suffix(".partial")
        torch.save(dict(self), partial)
        partial.replace(self.path)
        for part in parts:
            part.unlink()
        self._parts_dir.rmdir()


def cache_file(cache_dir, init: str, seed: int, *extra) -> Path:
    """`cache_dir/<init name>-<fingerprint>.pt`. The fingerprint hashes the initialisation (its weight files' names,
    sizes and modification times; a `preset:` init is random, so its seed) and `extra` (what else the tensors depend
    on, e.g. the kind of features and the input size): changed weights or settings never reuse a file."""
    parts = [init, str(seed)]
    folder = Path(init) if init.startswith("preset:") else resolve_model_folder(init)
    if folder.is_dir():
        for file in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")) + [folder / "config.json"]:
            if file.exists():
                stat = file.stat()
                parts.append(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}")
    parts += [str(value) for value in extra]
    digest = hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in (folder.name or init))
    return Path(cache_dir) / f"{name}-{digest}.pt"


__all__ = ["TensorCache", "cache_file"]
