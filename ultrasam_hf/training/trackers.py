"""Experiment trackers: Accelerate's own (tensorboard, wandb, ...) when installed, else `CSVTracker`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from accelerate.tracking import GeneralTracker, on_main_process


class CSVTracker(GeneralTracker):
    """An Accelerate tracker writing `<logging_dir>/<run_name>/metrics.csv` in long format (`step,name,value`) and
    the run configuration to `config.json`. Dependency-free, append-only, safe to resume."""

    name = "csv"
    requires_logging_directory = True

    @on_main_process
    def __init__(self, run_name: str, logging_dir):
        super().__init__()
        self.run_name = run_name
        self.directory = Path(logging_dir) / run_name
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "metrics.csv"
        if not self.path.exists():
            with open(self.path, "w", newline="") as handle:
                csv.writer(handle).writerow(["step", "name", "value"])

    @property
    def tracker(self):
        return self.path

    @on_main_process
    def store_init_configuration(self, values: dict):
        (self.directory / "config.json").write_text(json.dumps(values, indent=1, default=str))

    @on_main_process
    def log(self, values: dict, step: int | None = None, **kwargs):
        with open(self.path, "a", newline="") as handle:
            writer = csv.writer(handle)
            for name, value in values.items():
                writer.writerow([step, name, value])

    @on_main_process
    def finish(self):
        pass


def read_csv_metrics(path) -> list[dict]:
    with open(path, newline="") as handle:
        return [
            {
                "step": int(r["step"]) if r["step"] not in ("", "None") else None,
                "name": r["name"],
                "value": float(r["value"]),
            }
            for r in csv.DictReader(handle)
        ]


def resolve_trackers(log_with: str, logging_dir, run_name: str = "ultrasam"):
    """`auto`: tensorboard if importable, else the CSV tracker; `csv`; `none`; or any name Accelerate knows."""
    if log_with in (None, "none", ""):
        return None
    if log_with == "auto":
        try:
            import tensorboard  # noqa: F401

            return ["tensorboard"]
        except ImportError:
            log_with = "csv"
    if log_with == "csv":
        return [CSVTracker(run_name, logging_dir)]
    return [name.strip() for name in str(log_with).split(",")]


__all__ = ["CSVTracker", "read_csv_metrics", "resolve_trackers"]
