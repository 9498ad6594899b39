"""Mask propagation on the carotid sequences (CCAUI: `SCANID_slice_N.png` + `Expert mask images/`).

Per scan, frames sorted by slice number: propagation from the ground-truth box of the first frame (the mask of frame t
prompts frame t+1) against prompting every frame with its own ground-truth box. Each frame is encoded once; every
protocol reuses the embeddings. `--shifts` adds a simulated cine: the first frame of each scan translated by a fixed
number of pixels per frame (the motion of a live loop, which the release's sparse slices do not have).

    PYTHONPATH=. python scripts/propagation_carotid.py --scans SCAN ... --shifts 4 12 --json run.json
    PYTHONPATH=. python scripts/propagation_carotid.py --from-json run.json [more.json] --out docs/propagation.md
"""

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from ultrasam_hf.data.splits import hash_split
from ultrasam_hf.evaluation.metrics import dice
from ultrasam_hf.evaluation.prompts import box_from_mask
from ultrasam_hf.inference.default_model import default_model_dir
from ultrasam_hf.inference.predictor import UltraSamPredictor
from ultrasam_hf.inference.propagation import FrameEmbeddings, propagate

# the data build's split of CCAUI (dataset_cards/ccaui: group_hash by scan, seed 0, val 0.15, test 0.2)
SPLIT = {"seed": 0, "val": 0.15, "test": 0.2}
PROTOCOLS = {
    "own GT box every frame": None,
    "one step: previous frame's GT box": "previous",
    "propagated: box": {"use_mask_prompt": False},
    "propagated: box + mask logits": {"use_mask_prompt": True},
    "propagated: box + 10 % margin": {"use_mask_prompt": False, "box_margin": 0.1},
    "propagated: box, GT box again every 10th frame": {"use_mask_prompt": False, "reprompt_every": 10},
}
DISTANCES = ((1, 5), (6, 10), (11, 20), (21, 10**6))
GAPS = ((1, 10), (11, 30), (31, 100), (101, 10**6))


def scans(root: Path) -> dict:
    by_scan = defaultdict(list)
    for path in (root / "US images").glob("*.png"):
        match = re.match(r"^(.+)_slice_(\d+)\.png$", path.name)
        if match:
            by_scan[match.group(1)].append((int(match.group(2)), path))
    return {scan: [path for _, path in sorted(items)] for scan, items in sorted(by_scan.items())}


def ground_truth(root: Path, path: Path) -> np.ndarray:
    return np.array(Image.open(root / "Expert mask images" / path.name).convert("L")) > 127


def evaluate_sequence(predictor, frames, truths) -> dict:
    """Dice per frame of every protocol on one sequence."""
    embeddings = FrameEmbeddings(predictor, frames)  # keeps every frame: each protocol reuses them
    per_protocol = {}
    for name, options in PROTOCOLS.items():
        if options is None or options == "previous":
            scores = []
            for index, truth in enumerate(truths):
                embeddings.select(index)
                box = box_from_mask(truths[max(index - 1, 0)] if options == "previous" else truth)
                scores.append(dice(predictor.predict_mask(box=box)[0], truth))
        else:
            options = dict(options)
            every = options.pop("reprompt_every", None)
            reprompts = (
                {i: {"box": box_from_mask(truths[i])} for i in range(every, len(frames), every)} if every else {}
            )
            result = propagate(
                predictor,
                embeddings,
                start_frame=0,
                prompt={"box": box_from_mask(truths[0])},
                reprompts=reprompts,
                direction="forward",
                **options,
            )
            scores = [dice(mask, truth) for mask, truth in zip(result.masks, truths)]
        per_protocol[name] = scores
    return per_protocol


def shift_left(array: np.ndarray, pixels: int) -> np.ndarray:
    """The image content moved `pixels` to the left, the uncovered right edge black (a probe sliding along)."""
    shifted = np.zeros_like(array)
    shifted[:, : array.shape[1] - pixels] = array[:, pixels:]
    return shifted


def report(name: str, split: str, count: int, started: float, per_protocol: dict) -> None:
    means = ", ".join(f"{k} {np.mean(v[1:]):.3f}" for k, v in per_protocol.items())
    print(f"{name} ({split}, {count} frames, {time.time() - started:.0f} s): {means}", file=sys.stderr)


def run(root: Path, model: Path, only: list | None, shifts: list, shift_frames: int, simulated_only=False) -> dict:
    predictor = UltraSamPredictor.from_pretrained(model)
    results = {"scans": {}, "simulated": {}}
    for scan, paths in scans(root).items():
        if only and scan not in only:
            continue
        split = hash_split(SPLIT["seed"], "ccaui", scan, SPLIT["val"], SPLIT["test"])
        started = time.time()
        frames = [np.array(Image.open(path).convert("RGB")) for path in paths]
        truths = [ground_truth(root, path) for path in paths]
        if not simulated_only:
            per_protocol = evaluate_sequence(predictor, frames, truths)
            results["scans"][scan] = {
                "split": split,
                "slices": [int(re.search(r"_slice_(\d+)", path.name).group(1)) for path in paths],
                "dice": per_protocol,
                "seconds": round(time.time() - started, 1),
            }
            report(scan, split, len(paths), started, per_protocol)
        for shift in shifts:
            started = time.time()
            moving = [shift_left(frames[0], shift * t) for t in range(shift_frames)]
            moving_truths = [shift_left(truths[0], shift * t) for t in range(shift_frames)]
            per_protocol = evaluate_sequence(predictor, moving, moving_truths)
            results["simulated"][f"{scan}, {shift} px/frame"] = {"split": split, "shift": shift, "dice": per_protocol}
            report(f"{scan} shifted {shift} px/frame", split, shift_frames, started, per_protocol)
    return results


def mean(values) -> str:
    return f"{np.mean(values):.3f}" if len(values) else "–"


def header(names) -> list[str]:
    return ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]


def to_markdown(results: dict, commands: list[str], model_name: str) -> str:
    names = list(PROTOCOLS)
    rows = results["scans"]
    lines = [
        "# Mask propagation through carotid sequences",
        "",
        "Generated by `scripts/propagation_carotid.py`; reproduce with",
        "",
        "```bash",
        *commands,
        "```",
        "",
        *f"""Model: `{model_name}` (the default model), on the CPU. Data: the CCAUI copy in
`../shared/us/common-carotid-artery` (Momot, Mendeley Data d4xt63mgjm, 2022, CC BY 4.0): 6 scans, frames
`SCANID_slice_N.png` sorted by N. The frames are the release's annotated slices, not consecutive video frames: N jumps
by {min_gap(rows)} to {max_gap(rows)} between neighbours and the artery moves by up to a full diameter across the image
between two of them, a much harder step than in a live cine at 20-50 frames per second. The simulated cine (last
table) has that live motion: the first frame of a scan slid left by a fixed number of pixels per frame.

Protocols (Dice against the expert mask; frame 0, which every protocol prompts with its ground-truth box, is left out
of the means):
- **own GT box every frame**: the upper reference, each frame prompted with the tight box of its own expert mask
  (`predict_mask`).
- **one step: previous frame's GT box**: frame t prompted with the tight box of the expert mask of frame t-1: how far
  the object moves between two frames, without accumulated drift.
- **propagated: box**: only frame 0 gets its ground-truth box; frame t+1 is prompted with the tight box of the
  predicted mask of frame t (`propagate(..., use_mask_prompt=False)`, `ultrasam segment --propagate`).
- **box + mask logits**: the same plus frame t's low-res logits as mask prompt (`use_mask_prompt=True`,
  `--propagation-prompt box+mask`).
- **box + 10 % margin**: the propagated box grown by 10 % of its size on each side (`box_margin=0.1`).
- **GT box again every 10th frame**: frames 10, 20, ... re-prompted with their ground-truth box (`reprompts=`), as
  an annotator correcting drift would.

The default model was fine-tuned on the CCAUI train scans (4 of the 6; split by scan as the data build does): the
held-out scans (test, validation) are the honest numbers.
""".splitlines(),
        "## Mean Dice per scan (frames 1..end)",
        "",
        *header(["scan", "split", "frames", *names]),
    ]
    for scan, row in rows.items():
        cells = [mean(row["dice"][name][1:]) for name in names]
        lines.append(f"| {scan} | {row['split']} | {len(row['slices'])} | " + " | ".join(cells) + " |")
    if len(rows) > 1:
        cells = [mean([v for row in rows.values() for v in row["dice"][name][1:]]) for name in names]
        count = sum(len(row["slices"]) - 1 for row in rows.values())
        lines.append(f"| **all** (frame-weighted) | | {count} | " + " | ".join(cells) + " |")
    lines += ["", "## Mean Dice by distance from the prompted frame 0", "", *header(["frames after", "n", *names])]
    for low, high in DISTANCES:
        values = {name: [v for row in rows.values() for v in row["dice"][name][low : high + 1]] for name in names}
        label = f"{low}-{high}" if high < 10**6 else f"{low}+"
        lines.append(f"| {label} | {len(values[names[0]])} | " + " | ".join(mean(values[n]) for n in names) + " |")
    lines += ["", "## Mean Dice by slice gap to the previous frame", "", *header(["gap N(t) - N(t-1)", "n", *names])]
    for low, high in GAPS:
        values = defaultdict(list)
        for row in rows.values():
            for index in range(1, len(row["slices"])):
                if low <= row["slices"][index] - row["slices"][index - 1] <= high:
                    for name in names:
                        values[name].append(row["dice"][name][index])
        label = f"{low}-{high}" if high < 10**6 else f"{low}+"
        lines.append(f"| {label} | {len(values[names[0]])} | " + " | ".join(mean(values[n]) for n in names) + " |")
    simulated = results.get("simulated") or {}
    if simulated:
        lines += ["", "## Simulated cine: frame 0 slid left by a fixed step per frame", ""]
        lines += header(["sequence", "split", "frames", *names])
        for name_, row in simulated.items():
            cells = [mean(row["dice"][name][1:]) for name in names]
            count = len(row["dice"][names[0]])
            lines.append(f"| {name_} | {row['split']} | {count} | " + " | ".join(cells) + " |")
    lines += ["", "Per-frame Dice: `docs/propagation.json`.", ""]
    return "\n".join(lines)


def min_gap(rows) -> int:
    return min(b - a for row in rows.values() for a, b in zip(row["slices"], row["slices"][1:]))


def max_gap(rows) -> int:
    return max(b - a for row in rows.values() for a, b in zip(row["slices"], row["slices"][1:]))


def merge(paths) -> dict:
    merged = {"scans": {}, "simulated": {}}
    for path in paths:
        data = json.loads(Path(path).read_text())
        if "scans" not in data:  # a run of scans only
            data = {"scans": data}
        merged["scans"].update(data.get("scans", {}))
        merged["simulated"].update(data.get("simulated", {}))
    return merged


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="../shared/us/common-carotid-artery")
    parser.add_argument("--model", default=None, help="model folder (default: the package's default model)")
    parser.add_argument("--scans", nargs="+", help="only these scan ids (default: all)")
    parser.add_argument("--shifts", nargs="*", type=int, default=[], help="simulated cines: px per frame")
    parser.add_argument("--shift-frames", type=int, default=8, help="frames of each simulated cine")
    parser.add_argument("--simulated-only", action="store_true", help="run the simulated cines only")
    parser.add_argument("--json", help="write the per-frame Dice here (default: next to --out)")
    parser.add_argument("--from-json", nargs="+", help="render --out from these JSON files instead of running")
    parser.add_argument("--command", action="append", default=[], help="a command line to print in the report")
    parser.add_argument("--out", default="docs/propagation.md")
    args = parser.parse_args(argv)
    model = Path(args.model) if args.model else default_model_dir()
    if args.from_json:
        results = merge(args.from_json)
    else:
        root = Path(args.root)
        if not (root / "US images").is_dir():
            print(f"No carotid data at {root} (expected 'US images/' and 'Expert mask images/')", file=sys.stderr)
            return 1
        results = run(root, model, args.scans, args.shifts, args.shift_frames, args.simulated_only)
    commands = args.command or ["PYTHONPATH=. python scripts/propagation_carotid.py " + " ".join(sys.argv[1:])]
    Path(args.json or Path(args.out).with_suffix(".json")).write_text(json.dumps(results, indent=1))
    Path(args.out).write_text(to_markdown(results, commands, model.name))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
