"""Copy a trained UltraSam folder into the package with its weights stored as fp16 safetensors.

    python scripts/ship_checkpoint.py runs/lite-us ultrasam_hf/assets/ultrasam-lite-us --card model_card.md

The config keeps `dtype: float32`, so `from_pretrained` casts the fp16 tensors back to float32 (CPU inference in fp32;
the rounding changes logits by ~1e-3 at most). Config, processor config and the training record are copied; the
remote-code `.py` files are not, since inside the package the installed code is the one to run (a
`save_pretrained` of the loaded model writes them again, e.g. before a Hub upload).
"""

import argparse
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

SKIP = {"model.safetensors", "README.md", "training_args.json", "checkpoints", "embedding_cache", "logs"}


def ship(source: Path, target: Path, card: Path | None = None) -> Path:
    weights = source / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{source} has no model.safetensors (is it a save_pretrained folder?)")
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.is_file() and path.name not in SKIP and path.suffix != ".py":
            shutil.copy2(path, target / path.name)
    state = load_file(weights)
    half = {name: tensor.half() if tensor.is_floating_point() else tensor for name, tensor in state.items()}
    save_file(half, target / "model.safetensors", metadata={"format": "pt"})
    if card is not None:
        shutil.copy2(card, target / "README.md")
    return target / "model.safetensors"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--card", type=Path, help="model card (README.md) to ship with the weights")
    args = parser.parse_args(argv)
    weights = ship(args.source, args.target, args.card)
    print(f"{weights}: {weights.stat().st_size / 2**20:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
