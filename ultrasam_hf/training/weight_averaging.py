"""Uniform weight averaging ("model soup", Wortsman et al. 2022) of runs fine-tuned from one starting point.

Successive stages of one chain (e.g. the task stages of a distilled student, `docs/nano_distillation.md`) sit in one
basin: the mean of their weights is a model of its own, often better than each, at no training cost. Floating-point
tensors are averaged in float32; batch-norm batch counters (`num_batches_tracked`, unused with a momentum) take the
largest; any other integer buffer (an index table) must agree across the runs.
"""

from __future__ import annotations

import torch

from ..models.modeling_ultrasam import UltraSamModel

# config entries that name where a model came from, not what it computes
_PROVENANCE = ("_name_or_path", "transformers_version", "_commit_hash")


def _architecture(config) -> dict:
    return {key: value for key, value in config.to_dict().items() if key not in _PROVENANCE}


def average_models(models: list[UltraSamModel]) -> UltraSamModel:
    """A new model (the first's config) whose weights are the mean of `models`' weights."""
    if len(models) < 2:
        raise ValueError(f"weight averaging needs at least two models, got {len(models)}")
    reference = _architecture(models[0].config)
    for index, model in enumerate(models[1:], start=1):
        other = _architecture(model.config)
        changed = sorted(key for key in reference.keys() | other.keys() if reference.get(key) != other.get(key))
        if changed:
            raise ValueError(f"model {index} has another architecture than model 0 (config differs in {changed})")
    states = [model.state_dict() for model in models]
    averaged = {}
    for name, tensor in states[0].items():
        if tensor.is_floating_point():
            mean = torch.stack([state[name].float() for state in states]).mean(0)
            averaged[name] = mean.to(tensor.dtype)
        elif name.endswith("num_batches_tracked"):
            averaged[name] = torch.stack([state[name] for state in states]).max(0).values
        elif all(torch.equal(state[name], tensor) for state in states[1:]):
            averaged[name] = tensor
        else:
            raise ValueError(f"{name} is an integer tensor that differs between the models: it cannot be averaged")
    soup = UltraSamModel(models[0].config)
    soup.load_state_dict(averaged)
    return soup.eval()


__all__ = ["average_models"]
