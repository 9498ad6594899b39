"""`ultrasam segment` on many inputs or with per-file prompts: folders and globs, prompts from a CSV / JSON file, the
same `--box` / `--point` prompt on every file, or automatic masks (`--auto`); cine and volume propagation
(`--propagate`). Writes one COCO-RLE JSON for the run (`segment_coco.json`), a mask PNG per segmented frame and, for
NIfTI / NRRD / MHA inputs, a mask volume with the input's geometry.

Prompt files name each input by its path relative to the folder (or the glob's common folder), or by its file name:

- JSON: `{"scan.png": {"box": [x0, y0, x1, y1]}, "cine.dcm": [{"frame": 0, "points": [[x, y]], "labels": [1]}]}`
  or a list of `{"file": ..., "object": ..., "frame": ..., "box": ..., "points": ..., "labels": ...}`.
- CSV with a header: `file` and any of `object`, `frame`, `x0, y0, x1, y1` (a box), `x, y, label` (one click).

Entries of one file with the same `object` (default `1`) and `frame` form one prompt (a box plus clicks); objects
need distinct `object` ids. Without `frame` a prompt applies to every frame (or, with `--propagate`, to the first).
"""

import csv
import glob
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from ..models.errors import ImageNotFoundError
from ..models.image_loading import load_frames
from .overlay import draw_overlay
from .propagation import FrameEmbeddings, ObjectPrompt, propagate
from .volumes import is_volume_path, read_volume, volume_suffix, write_mask_volume

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom")
PROMPT_KEYS = ("file", "object", "frame", "box", "points", "labels")
CSV_NUMBER_COLUMNS = ("x0", "y0", "x1", "y1", "x", "y", "label")
# a header + raw pair is written back as one file of the same format
SINGLE_FILE_SUFFIX = {".nhdr": ".nrrd", ".mhd": ".mha"}
COCO_FILE = "segment_coco.json"


# ------------------------------------------------------------------------------------------------------------- inputs


def _looks_like_input(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    if path.suffix.lower() in IMAGE_SUFFIXES or is_volume_path(path):
        return True
    if path.suffix == "":  # DICOM files often have no suffix: look for the DICM preamble
        with path.open("rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    return False


def expand_inputs(specs) -> list[tuple[Path, str]]:
    """Files, folders (searched recursively for images, DICOMs and volumes) and globs -> sorted `(path, key)` pairs,
    `key` the path relative to the inputs' common folder (what prompt files name)."""
    files = []
    for spec in [specs] if isinstance(specs, (str, os.PathLike)) else specs:
        path = Path(spec)
        if path.is_dir():
            files += [p for p in sorted(path.rglob("*")) if p.is_file() and _looks_like_input(p)]
        elif path.is_file():
            files.append(path)
        elif any(char in str(spec) for char in "*?["):
            files += [Path(p) for p in sorted(glob.glob(str(spec), recursive=True)) if Path(p).is_file()]
        else:
            raise ImageNotFoundError(f"No such file, folder or matching glob: '{spec}' (check the path).")
    files = sorted(set(files))
    if not files:
        raise ImageNotFoundError(
            f"No image, DICOM or volume file found in {', '.join(map(str, specs))}: give a PNG, JPEG, BMP, TIFF, "
            "DICOM, NIfTI, NRRD or MHA file, a folder or a glob of them."
        )
    root = Path(os.path.commonpath([str(p.resolve().parent) for p in files]))
    return [(path, path.resolve().relative_to(root).as_posix()) for path in files]


def load_input(path: Path, axis: str = "z", max_pixels: int | None = None):
    """-> `(frames, volume or None, pixel spacing or None)`: volumes through SimpleITK, the rest through
    `load_frames` (with its decoding pixel limit, `--max-pixels`)."""
    if is_volume_path(path):
        volume = read_volume(path, axis)
        return volume.frames, volume, None
    frames, spacing = load_frames(path, return_spacing=True, max_pixels=max_pixels)
    return frames, None, spacing


# ------------------------------------------------------------------------------------------------------------ prompts


def _json_entries(data, source: str) -> list[dict]:
    if isinstance(data, dict):
        entries = []
        for key, value in data.items():
            for entry in value if isinstance(value, list) else [value]:
                if not isinstance(entry, dict):
                    raise ValueError(f"{source}: the prompt of '{key}' is not an object: {entry!r}")  # noqa: TRY004 (bad file content)
                entries.append({**entry, "file": key})
        return entries
    if isinstance(data, list) and all(isinstance(entry, dict) for entry in data):
        return data
    raise ValueError(f"{source}: expected an object {{file: prompt(s)}} or a list of prompts with a 'file' key.")


def _csv_entries(path: Path) -> list[dict]:
    entries = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "file" not in reader.fieldnames:
            raise ValueError(f"{path}: a prompt CSV needs a header with a 'file' column.")
        for line, row in enumerate(reader, start=2):
            values = {}
            for column in CSV_NUMBER_COLUMNS:
                text = (row.get(column) or "").strip()
                try:
                    values[column] = float(text) if text else None
                except ValueError:
                    raise ValueError(f"{path}, line {line}: {column}={text!r} is not a number.") from None
            entry = {"file": (row.get("file") or "").strip(), "_where": f"{path}, line {line}"}
            for column in ("object", "frame"):
                if (row.get(column) or "").strip():
                    entry[column] = row[column].strip()
            box = [values[c] for c in ("x0", "y0", "x1", "y1")]
            if any(v is not None for v in box):
                if any(v is None for v in box):
                    raise ValueError(f"{path}, line {line}: a box needs all of x0, y0, x1, y1.")
                entry["box"] = box
            if values["x"] is not None or values["y"] is not None:
                if values["x"] is None or values["y"] is None:
                    raise ValueError(f"{path}, line {line}: a click needs both x and y.")
                entry["points"] = [[values["x"], values["y"]]]
                entry["labels"] = [1 if values["label"] is None else int(values["label"])]
            if "box" not in entry and "points" not in entry:
                raise ValueError(f"{path}, line {line}: no prompt (give x0, y0, x1, y1 and/or x, y).")
            entries.append(entry)
    return entries


def read_prompts(path) -> dict:
    """A prompt file -> `{file key: {object id: {frame or None: ObjectPrompt}}}`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such prompt file: '{path}'.")
    if path.suffix.lower() == ".csv":
        entries = _csv_entries(path)
    elif path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error
        entries = _json_entries(data, str(path))
    else:
        raise ValueError(f"Prompt file '{path}' must be .csv or .json.")
    merged = defaultdict(lambda: defaultdict(dict))
    for number, entry in enumerate(entries, start=1):
        where = entry.pop("_where", f"{path}, entry {number}")
        unknown = set(entry) - set(PROMPT_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)} (expected {', '.join(PROMPT_KEYS)}).")
        if not entry.get("file"):
            raise ValueError(f"{where}: no 'file'.")
        frame = entry.get("frame")
        try:
            frame = None if frame is None else int(frame)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: frame={frame!r} is not an integer.") from None
        target = merged[str(entry["file"])][str(entry.get("object", "1"))]
        prompt = target.setdefault(frame, {"box": None, "points": [], "labels": []})
        if entry.get("box") is not None:
            if prompt["box"] is not None:
                raise ValueError(
                    f"{where}: a second box for object {entry.get('object', '1')!r} on the same frame of "
                    f"'{entry['file']}': give each object its own 'object' id."
                )
            prompt["box"] = entry["box"]
        points = entry.get("points") or []
        prompt["points"] += [list(p) for p in np.asarray(points, dtype=np.float64).reshape(-1, 2)]
        labels = entry.get("labels")
        prompt["labels"] += (
            list(labels) if labels is not None else [1] * (len(prompt["points"]) - len(prompt["labels"]))
        )
    table = {}
    for key, objects in merged.items():
        table[key] = {}
        for object_id, frames in objects.items():
            try:
                table[key][object_id] = {frame: ObjectPrompt.coerce(prompt) for frame, prompt in frames.items()}
            except ValueError as error:
                raise ValueError(f"{path}: '{key}', object {object_id!r}: {error}") from None
    return table


def match_prompts(inputs: list[tuple[Path, str]], table: dict) -> tuple[dict, list[str]]:
    """-> `({input key: objects}, prompt keys that name no input)`. A prompt key matches an input's relative path
    or, when unambiguous, its file name."""
    by_key = {key: key for _, key in inputs}
    by_name = defaultdict(list)
    for path, key in inputs:
        by_name[path.name].append(key)
    matched, unmatched = {}, []
    for prompt_key, objects in table.items():
        key = by_key.get(prompt_key.replace("\\", "/"))
        if key is None:
            candidates = by_name.get(Path(prompt_key).name if "/" not in prompt_key else "", [])
            if len(candidates) > 1:
                raise ValueError(
                    f"Prompt key '{prompt_key}' matches several inputs {candidates}: use the relative path."
                )
            key = candidates[0] if candidates else None
        if key is None:
            unmatched.append(prompt_key)
        elif key in matched:
            raise ValueError(f"Two prompt keys name the same input '{key}'.")
        else:
            matched[key] = objects
    return matched, unmatched


# ----------------------------------------------------------------------------------------------------- segmentation


def _frames_to_run(count: int, only_frame: int | None) -> list[int]:
    if only_frame is None:
        return list(range(count))
    if not 0 <= only_frame < count:
        raise ValueError(f"--frame {only_frame} is out of range: the input has {count} frame(s)")
    return [only_frame]


def segment_prompted(predictor, frames, objects: dict, only_frame=None, propagate_objects=False, **options) -> dict:
    """-> `{frame: [detection]}` for prompts `{object id: {frame or None: ObjectPrompt}}`; a detection is a dict with
    `object`, `mask`, `score`, `prompt`, `source`."""
    count = len(frames)
    for object_id, prompts in objects.items():
        for frame in prompts:
            if frame is not None and not 0 <= frame < count:
                raise ValueError(f"object {object_id!r}: prompt frame {frame} is out of range ({count} frame(s))")
    results = defaultdict(list)
    if propagate_objects and count > 1:
        embeddings = FrameEmbeddings(predictor, frames, capacity=None if len(objects) > 1 else 2)
        for object_id, prompts in objects.items():
            own = {frame: prompt for frame, prompt in prompts.items() if frame is not None}
            if None in prompts:  # a frame-less prompt starts the object on --frame (or the first frame)
                own.setdefault(only_frame or 0, prompts[None])
            start = only_frame if only_frame in own else min(own)
            reprompts = {frame: prompt for frame, prompt in own.items() if frame != start}
            result = propagate(predictor, embeddings, start, own[start], reprompts=reprompts, **options)
            for frame in range(count):
                prompt = own.get(frame)
                results[frame].append(
                    {
                        "object": object_id,
                        "mask": result.masks[frame],
                        "score": float(result.scores[frame]),
                        "prompt": prompt.to_dict() if prompt else None,
                        "source": result.sources[frame],
                        "propagated_box": None if prompt else _box_or_none(result.boxes[frame]),
                    }
                )
        return dict(results)
    for frame in _frames_to_run(count, only_frame):
        wanted = [(o, p.get(frame, p.get(None))) for o, p in objects.items() if p.get(frame, p.get(None)) is not None]
        if not wanted:
            continue
        predictor.set_image(frames[frame])
        for object_id, prompt in wanted:
            mask, score, _ = predictor.predict_object(**prompt.as_kwargs())
            results[frame].append(
                {"object": object_id, "mask": mask, "score": score, "prompt": prompt.to_dict(), "source": "prompt"}
            )
    return dict(results)


def segment_automatic(predictor, frames, only_frame=None, **options) -> dict:
    from .automatic import generate_masks

    results = {}
    for frame in _frames_to_run(len(frames), only_frame):
        predictor.set_image(frames[frame])
        found = generate_masks(predictor, **options)
        results[frame] = [
            {
                "object": str(number),
                "mask": found_mask.mask,
                "score": found_mask.score,
                "prompt": {"box": None, "points": [list(found_mask.point)], "labels": [1]},
                "source": "auto",
                "stability": found_mask.stability,
            }
            for number, found_mask in enumerate(found, start=1)
        ]
    return results


def _box_or_none(box) -> list | None:
    return None if np.isnan(box).any() else [float(v) for v in box]


# ------------------------------------------------------------------------------------------------------------ outputs


def label_map(detections: list, shape, single_value: int = 255) -> np.ndarray:
    """One object: 0 / `single_value` (255 in PNGs, as `ultrasam segment` on one file; 1 in mask volumes); several:
    0 background, k for the k-th detection (later ones on top where they overlap; the COCO JSON keeps every mask
    whole)."""
    if len(detections) == 1:
        return detections[0]["mask"].astype(np.uint8) * single_value
    labels = np.zeros(shape, dtype=np.uint8 if len(detections) < 256 else np.uint16)
    for value, detection in enumerate(detections, start=1):
        labels[detection["mask"]] = value
    return labels


class CocoWriter:
    """Collects images and RLE annotations into one COCO JSON."""

    def __init__(self, info: dict):
        self.info, self.images, self.annotations, self.skipped = info, [], [], []

    def add(self, key: str, frame: int, frame_count: int, shape, detections: list, mask_file: str, single_value=255):
        from ..data.instances import encode_mask

        image_id = len(self.images) + 1
        self.images.append(
            {
                "id": image_id,
                "file_name": key,
                "frame": frame,
                "frames": frame_count,
                "height": int(shape[0]),
                "width": int(shape[1]),
                "mask_file": mask_file,
            }
        )
        for value, detection in enumerate(detections, start=1):
            mask = detection["mask"]
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            bbox = (
                [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]
                if len(rows)
                else [0, 0, 0, 0]
            )
            annotation = {
                "id": len(self.annotations) + 1,
                "image_id": image_id,
                "category_id": 1,
                "segmentation": encode_mask(mask),
                "area": int(mask.sum()),
                "bbox": bbox,
                "iscrowd": 0,
                "score": None if np.isnan(detection["score"]) else round(float(detection["score"]), 4),
                "object": detection["object"],
                "label_value": single_value if len(detections) == 1 else value,
                "source": detection["source"],
                "prompt": detection["prompt"],
            }
            for extra in ("propagated_box", "stability"):
                if detection.get(extra) is not None:
                    annotation[extra] = detection[extra]
            self.annotations.append(annotation)

    def write(self, path: Path) -> None:
        data = {
            "info": self.info,
            "images": self.images,
            "annotations": self.annotations,
            "categories": [{"id": 1, "name": "object"}],
            "skipped": self.skipped,
        }
        path.write_text(json.dumps(data, indent=1))


def _output_stem(out: Path, key: str) -> Path:
    suffix = volume_suffix(key) or Path(key).suffix
    return out / (key[: -len(suffix)] if suffix else key)


# ------------------------------------------------------------------------------------------------------------ command


def cli_prompt(args) -> ObjectPrompt | None:
    """The `--box` / `--point` / `--negative` prompt, `None` when none was given."""
    clicks = [(p, 1) for p in args.point or []] + [(p, 0) for p in args.negative or []]
    if args.box is None and not clicks:
        return None
    if args.box is None and not args.point:
        raise ValueError("--negative clicks need a positive --point or a --box")
    return ObjectPrompt(box=args.box, points=[p for p, _ in clicks], labels=[label for _, label in clicks])


def run_batch(args) -> int:
    from tqdm.auto import tqdm

    from .default_model import default_model_dir
    from .predictor import UltraSamPredictor

    inputs = expand_inputs(args.image)
    fixed_prompt = cli_prompt(args)
    modes = [
        name
        for name, given in (("--prompts", args.prompts), ("--box/--point", fixed_prompt), ("--auto", args.auto))
        if given
    ]
    if len(modes) != 1:
        raise ValueError(
            "give one source of prompts: --prompts FILE (CSV or JSON), --box / --point for every file, or --auto"
            + (f" (got {' and '.join(modes)})" if modes else "")
        )
    if args.auto and args.propagate:
        raise ValueError("--auto finds masks on each frame independently: it cannot be combined with --propagate")
    writer = CocoWriter({"description": "ultrasam segment", "inputs": [str(s) for s in args.image]})
    per_file = {}
    if args.prompts:
        per_file, unmatched = match_prompts(inputs, read_prompts(args.prompts))
        writer.skipped += [
            {"file": key, "reason": f"named in {args.prompts} but not among the inputs"} for key in unmatched
        ]
    model = args.model or default_model_dir()
    predictor = UltraSamPredictor.from_pretrained(model, device=args.device, backend=args.backend)
    print(f"backend: {predictor.backend.description}")
    writer.info["model"] = str(model)
    options = {"use_mask_prompt": args.propagation_prompt == "box+mask", "box_margin": args.box_margin}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    progress = tqdm(inputs, unit="file", desc="segment", disable=None)
    for path, key in progress:
        progress.set_postfix_str(key, refresh=False)
        if args.prompts and key not in per_file:
            writer.skipped.append({"file": key, "reason": f"no prompt for it in {args.prompts}"})
            continue
        try:
            frames, volume, _ = load_input(path, args.axis, getattr(args, "max_pixels", None))
            if args.auto:
                results = segment_automatic(
                    predictor,
                    frames,
                    args.frame,
                    points_per_side=args.points_per_side,
                    min_area=args.min_area,
                    pred_iou_thresh=args.pred_iou_thresh,
                    stability_score_thresh=args.stability_thresh,
                )
            else:
                objects = per_file.get(key) or {"1": {None: fixed_prompt}}
                results = segment_prompted(
                    predictor, frames, objects, args.frame, propagate_objects=args.propagate, **options
                )
            _write_file_outputs(writer, out, key, frames, volume, results, args.overlay)
        except (ValueError, FileNotFoundError, OSError, RuntimeError) as error:
            failures += 1
            writer.skipped.append({"file": key, "reason": f"error: {error}"})
            tqdm.write(f"ultrasam segment: {key}: {error}", file=sys.stderr)
    writer.write(out / COCO_FILE)
    done = len({image["file_name"] for image in writer.images})
    print(
        f"{done} file(s) segmented, {len(writer.images)} frame(s), {len(writer.annotations)} mask(s); "
        f"{len(writer.skipped)} skipped ({failures} error(s)) -> {out / COCO_FILE}"
    )
    for skip in writer.skipped:
        print(f"  skipped {skip['file']}: {skip['reason']}")
    return 1 if failures else 0


def _write_file_outputs(writer: CocoWriter, out: Path, key: str, frames, volume, results: dict, overlay: bool):
    stem = _output_stem(out, key)
    stem.parent.mkdir(parents=True, exist_ok=True)
    shape = frames[0].shape[:2]
    if volume is not None:
        labels = np.zeros((len(frames), *shape), dtype=np.uint16)
        for frame, detections in results.items():
            labels[frame] = label_map(detections, shape, single_value=1)
        suffix = volume_suffix(key)
        mask_path = write_mask_volume(labels, f"{stem}_mask{SINGLE_FILE_SUFFIX.get(suffix, suffix)}", volume)
        for frame in sorted(results):
            relative = mask_path.relative_to(out).as_posix()
            writer.add(key, frame, len(frames), shape, results[frame], relative, single_value=1)
        return
    for frame in sorted(results):
        name = stem if len(frames) == 1 else stem.with_name(f"{stem.name}_frame{frame:03d}")
        mask_path = name.with_name(name.name + "_mask.png")
        Image.fromarray(label_map(results[frame], shape)).save(mask_path)
        if overlay:
            union = np.zeros(shape, dtype=bool)
            for detection in results[frame]:
                union |= detection["mask"]
            prompts = [d["prompt"] for d in results[frame] if d["prompt"]]
            box = next((p["box"] for p in prompts if p["box"] is not None), None)
            points = [pt for p in prompts for pt in p["points"]]
            labels = [lb for p in prompts for lb in p["labels"]]
            draw_overlay(frames[frame], union, box=box, points=points or None, labels=labels or None).save(
                name.with_name(name.name + "_overlay.png")
            )
        writer.add(key, frame, len(frames), shape, results[frame], mask_path.relative_to(out).as_posix())


__all__ = ["CocoWriter", "expand_inputs", "label_map", "load_input", "match_prompts", "read_prompts", "run_batch"]
