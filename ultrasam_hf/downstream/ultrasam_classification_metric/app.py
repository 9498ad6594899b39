"""The Space of this evaluate module: evaluate's standard widget, on the module script next to this file."""

from pathlib import Path

import evaluate
from evaluate.utils import launch_gradio_widget

module = evaluate.load(str(Path(__file__).resolve().parent / "ultrasam_classification_metric.py"))
launch_gradio_widget(module)
