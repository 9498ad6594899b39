"""Copy a trained UltraSam folder into a shippable model repository, weights stored as fp16 safetensors.

    python scripts/ship_checkpoint.py runs/lite-us ultrasam_hf/assets/ultrasam-lite-us --card model_card.md \
        --results eval/results.json --model-name ultrasam-lite-us

The config keeps `dtype: float32`, so `from_pretrained` casts the fp16 tensors back to float32 (CPU inference in fp32;
the rounding changes logits by ~1e-3 at most); a `save_pretrained` of the loaded model writes fp16 again. Config,
processor config and the training record are copied; then the target becomes a self-contained Hub repository
(`ultrasam_hf.hub`): the package's model files as remote code, a complete `auto_map`, and a Hub-valid card written
from `--card` (its front matter and body; a generated one without it) with the model-index of `--results` (the
`results.json` of `ultrasam eval`, rows of `--model-name`) and the widget examples. Inside the package
(`ultrasam_hf/assets/`) the remote-code files and `examples/` are git-ignored: written here, never tracked.
"""

import argparse
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from ultrasam_hf.hub import prepare_model_repo, write_folder_card

SKIP = {"model.safetensors", "README.md", "training_args.json", "checkpoints", "embedding_cache", "logs"}


def ship(
    source: Path,
    target: Path,
    card: Path | None = None,
    results: Path | None = None,
    model_name: str | None = None,
    repo_id: str | None = None,
) -> Path:
    source, target = Path(source), Path(target)
    weights = source / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{source} has no model.safetensors (is it a save_pretrained folder?)")
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.is_file() and path.name not in SKIP and path.suffix != ".py":  # the code is written fresh below
            shutil.copy2(path, target / path.name)
    state = load_file(weights)
    half = {name: tensor.half() if tensor.is_floating_point() else tensor for name, tensor in state.items()}
    save_file(half, target / "model.safetensors", metadata={"format": "pt"})
    # the card: --card, else the target's own card (its metadata refreshed), else a generated one
    refresh(target, card, results, model_name, repo_id)
    return target / "model.safetensors"


def refresh(target: Path, card=None, results=None, model_name=None, repo_id=None, **card_overrides) -> Path:
    """Re-write a shipped folder's remote code, auto_map and card (weights untouched): what `ship` does after
    copying the weights. `card_overrides` are `ultrasam_hf.hub.write_model_card` arguments."""
    target = Path(target)
    prepare_model_repo(target)
    card_text = Path(card).read_text(encoding="utf-8") if card is not None else None
    if card_text is None and (target / "README.md").is_file():
        card_text = (target / "README.md").read_text(encoding="utf-8")
    return write_folder_card(
        target, card_text, repo_id=repo_id, results=results, model_name=model_name, **card_overrides
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, nargs="?", help="trained folder (omit with --refresh)")
    parser.add_argument("target", type=Path)
    parser.add_argument(
        "--refresh", action="store_true", help="only re-write TARGET's code, auto_map and card (no new weights)"
    )
    parser.add_argument("--card", type=Path, help="model card (README.md: front matter optional, then the body)")
    parser.add_argument("--results", type=Path, help="results.json of `ultrasam eval`: the card's model-index")
    parser.add_argument("--model-name", help="the model's name in --results (default: the target folder's name)")
    parser.add_argument("--repo-id", help="Hub repository id (default: ultrasam_hf.hub.repo_ids.MODEL_REPOS)")
    args = parser.parse_args(argv)
    if args.refresh:
        print(refresh(args.target, args.card, args.results, args.model_name, args.repo_id))
        return 0
    if args.source is None:
        parser.error("SOURCE is needed unless --refresh is given")
    weights = ship(args.source, args.target, args.card, args.results, args.model_name, args.repo_id)
    print(f"{weights}: {weights.stat().st_size / 2**20:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
