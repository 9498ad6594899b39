"""The per-dataset release table of a model card from `ultrasam eval` results: box, 1-click, 3-click Dice and NoC@90
of each model, next to the baselines (inscribed ellipse, filled box) and box-only models of other runs.

    python scripts/release_table.py eval/test/results.json --models v3b ultrasam-lite-us \
        --box-only eval/litemedsam/results.json:litemedsam --out docs/table.md
    python scripts/release_table.py eval/test/results.json --models ultrasam-lite-us v2 litemedsam \
        --targets litemedsam --ellipse-datasets hc18

`--targets BASELINE` appends the model issue's check of the release (the first model): one click >= 0.85, box >= the
better of BASELINE's box and the ellipse + 0.02 (not counted on `--ellipse-datasets`, whose masks are ellipses by
construction), NoC@90 <= 3.

`--student-of RESULTS:TEACHER` appends the distilled-encoder check of every model (the speed issue's accuracy bar):
box Dice within 1 point and one-click Dice within 2 points of TEACHER, whose figures come from RESULTS (a run on the
same images and prompts), on every dataset of the run.

    python scripts/release_table.py eval/nano/results.json --models nano-us \
        --student-of eval/test/results.json:ultrasam-lite-us

Dice@1 is the `point` protocol (one click at the snapped centroid), Dice@3 the third click of the `clicks` protocol,
NoC@90 the clicks to IoU 0.90 (capped at the click budget). Means over instances.
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path


def read(path) -> dict:
    return json.loads(Path(path).read_text())


def per_dataset(results: dict) -> dict:
    """{(dataset, model): {"box", "point", "noc90", "dice3", "n"}} from a results.json."""
    table = defaultdict(dict)
    for row in results["summary"]:
        key = (row["dataset"], row["model"])
        metrics = row["metrics"]
        if row["prompt"] in ("box", "point"):
            table[key][row["prompt"]] = metrics["dice"]["mean"]
            table[key]["n"] = row["count"]
        elif row["prompt"] == "clicks":
            table[key]["noc90"] = metrics["noc90_iou"]["mean"]
    third = defaultdict(list)
    for record in results["records"]:
        if record["prompt"] == "clicks":
            curve = record["curves"]["dice"]
            third[(record["dataset"], record["model"])].append(curve[min(2, len(curve) - 1)])
    for key, values in third.items():
        table[key]["dice3"] = sum(values) / len(values)
    return table


def fmt(value, digits=3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def render(results: dict, models: list, box_only: list) -> str:
    table = per_dataset(results)
    extra = [(name, per_dataset(read(path))) for path, name in box_only]
    datasets = sorted({dataset for dataset, _ in table})
    header = ["dataset", "n"]
    for model in models:
        header += [f"{model} box", f"{model} 1 click", f"{model} 3 clicks", f"{model} NoC@90"]
    header += ["ellipse", "filled box"] + [f"{name} box" for name, _ in extra]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for dataset in datasets:
        first = table.get((dataset, models[0]), {})
        cells = [dataset, str(first.get("n", ""))]
        for model in models:
            row = table.get((dataset, model), {})
            cells += [fmt(row.get("box")), fmt(row.get("point")), fmt(row.get("dice3")), fmt(row.get("noc90"), 2)]
        cells += [fmt(table.get((dataset, "baseline-ellipse"), {}).get("box"))]
        cells += [fmt(table.get((dataset, "baseline-box"), {}).get("box"))]
        cells += [fmt(other.get((dataset, name), {}).get("box")) for name, other in extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


ONE_CLICK, BOX_MARGIN, NOC90 = 0.85, 0.02, 3.0


def targets(results: dict, release: str, baseline: str, ellipse_datasets=()) -> str:
    """The release's per-dataset check against the model issue's targets, every figure from `results`."""
    table = per_dataset(results)
    lines = [
        f"| dataset | 1 click >= {ONE_CLICK} | box >= max({baseline}, ellipse) + {BOX_MARGIN} | NoC@90 <= {NOC90:g} |",
        "|---|---|---|---|",
    ]
    misses = []

    def check(value, ok, dataset, what):
        if not ok:
            misses.append(f"{dataset} {what}")
        return f"{value} {'yes' if ok else '**no**'}"

    for dataset in sorted({dataset for dataset, _ in table}):
        row = table.get((dataset, release), {})
        if "box" not in row:
            continue
        click = check(fmt(row.get("point")), row.get("point", 0) >= ONE_CLICK, dataset, "1 click")
        noc = check(fmt(row.get("noc90"), 2), row.get("noc90", float("inf")) <= NOC90, dataset, "NoC@90")
        if dataset in ellipse_datasets:
            box = f"{fmt(row['box'])} (ellipses by construction: not counted)"
        else:
            bars = {
                name: table.get((dataset, model), {}).get("box")
                for name, model in ((baseline, baseline), ("ellipse", "baseline-ellipse"))
            }
            measured = [(name, value) for name, value in bars.items() if value is not None]
            if measured:
                name, best = max(measured, key=lambda item: item[1])
                bar = best + BOX_MARGIN
                box = check(f"{fmt(row['box'])} vs {fmt(bar)} ({name})", row["box"] >= bar, dataset, "box")
            else:
                box = check(f"{fmt(row['box'])} (no baseline in this run)", False, dataset, "box")
        lines.append(f"| {dataset} | {click} | {box} | {noc} |")
    lines += ["", "misses: " + (", ".join(misses) if misses else "none")]
    return "\n".join(lines) + "\n"


BOX_POINTS, ONE_CLICK_POINTS = 1.0, 2.0


def student_check(results: dict, students: list, teacher_results: dict, teacher: str) -> str:
    """Each student's box and one-click Dice against the teacher's, in Dice points, dataset by dataset."""
    table, reference = per_dataset(results), per_dataset(teacher_results)
    datasets = sorted({dataset for dataset, model in table if model in students})
    header = ["dataset", f"{teacher} box", f"{teacher} 1 click"]
    for student in students:
        header += [f"{student} box", "Δ box", f"{student} 1 click", "Δ 1 click"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    met = {student: {"box": 0, "point": 0} for student in students}
    missing = []
    for dataset in datasets:
        bar = reference.get((dataset, teacher), {})
        cells = [dataset, fmt(bar.get("box")), fmt(bar.get("point"))]
        for student in students:
            row = table.get((dataset, student), {})
            for prompt, allowed in (("box", BOX_POINTS), ("point", ONE_CLICK_POINTS)):
                if prompt not in row or prompt not in bar:
                    cells += [fmt(row.get(prompt)), "–"]
                    missing.append(f"{dataset} {student} {prompt}")
                    continue
                delta = 100 * (row[prompt] - bar[prompt])
                ok = delta >= -allowed - 1e-9  # exactly on the bar passes, whatever the float rounding
                met[student][prompt] += ok
                # two decimals: -1.02 is a miss and must not print as -1.0
                cells += [fmt(row[prompt]), f"{delta:+.2f}" + ("" if ok else " **no**")]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for student in students:
        lines.append(
            f"{student}: box within {BOX_POINTS:g} point of {teacher} on {met[student]['box']} of {len(datasets)}"
            f" datasets, one click within {ONE_CLICK_POINTS:g} points on {met[student]['point']} of {len(datasets)}"
        )
    if missing:
        lines.append("not in both runs (counted as misses): " + ", ".join(missing))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="results.json of `ultrasam eval` with the models and baselines")
    parser.add_argument("--models", nargs="+", required=True, help="model names in that run, first = the release")
    parser.add_argument(
        "--box-only",
        nargs="*",
        default=[],
        metavar="RESULTS:MODEL",
        help="box Dice of MODEL from another results.json (or the same: a box-only column)",
    )
    parser.add_argument(
        "--targets", metavar="BASELINE", help="append the target check of the release against BASELINE (a model)"
    )
    parser.add_argument(
        "--ellipse-datasets", nargs="*", default=[], metavar="SLUG", help="masks are ellipses: no box target"
    )
    parser.add_argument(
        "--student-of",
        metavar="RESULTS:TEACHER",
        help="append every model's check against TEACHER of RESULTS: box within 1 Dice point, one click within 2",
    )
    parser.add_argument("--out", help="write the table here (default: print it)")
    args = parser.parse_args(argv)
    box_only = [tuple(item.rsplit(":", 1)) for item in args.box_only]
    results = read(args.results)
    text = render(results, args.models, box_only)
    if args.targets:
        text += "\n" + targets(results, args.models[0], args.targets, set(args.ellipse_datasets))
    if args.student_of:
        teacher_path, teacher = args.student_of.rsplit(":", 1)
        text += "\n" + student_check(results, args.models, read(teacher_path), teacher)
    if args.out:
        Path(args.out).write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
