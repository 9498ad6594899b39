import numpy as np
import pytest

from ultrasam_hf.evaluation.bootstrap import grouped_bootstrap


def test_whole_groups_are_resampled():
    groups = ["a", "a", "b", "b", "b", "c"]
    seen = []

    def statistic(index):
        seen.append(sorted(index.tolist()))
        return {"n": float(len(index))}

    result = grouped_bootstrap(statistic, groups, resamples=50, seed=1)
    assert seen[0] == list(range(6)) and result["n"]["value"] == 6
    members = {"a": {0, 1}, "b": {2, 3, 4}, "c": {5}}
    for draw in seen[1:]:
        # every draw is a union of whole groups (with repeats): a group is either absent or complete
        for items in members.values():
            counts = {draw.count(i) for i in items}
            assert len(counts) == 1
        assert sum(draw.count(min(items)) for items in members.values()) == 3  # three groups drawn


def test_interval_brackets_the_mean_and_is_reproducible():
    values = np.random.default_rng(0).normal(5.0, 1.0, size=200)

    def mean(index):
        return {"mean": float(values[index].mean())}

    first = grouped_bootstrap(mean, range(200), resamples=300, seed=3)["mean"]
    again = grouped_bootstrap(mean, range(200), resamples=300, seed=3)["mean"]
    assert first == again
    assert first["low"] < first["value"] < first["high"]
    # ordinary bootstrap with one item per group: half-width close to 1.96 standard errors
    assert first["high"] - first["low"] == pytest.approx(2 * 1.96 * values.std() / np.sqrt(200), rel=0.25)
    assert first["resamples"] == 300


def test_non_finite_draws_are_left_out_and_counted():
    labels = np.array([0, 1])

    def auc_like(index):
        return {"x": float("nan") if len(set(labels[index])) < 2 else 1.0}

    result = grouped_bootstrap(auc_like, ["p", "q"], resamples=200, seed=0)["x"]
    assert result["value"] == 1.0 and 0 < result["resamples"] < 200 and result["low"] == result["high"] == 1.0


def test_empty_input_is_refused():
    with pytest.raises(ValueError, match="at least one item"):
        grouped_bootstrap(lambda index: {"x": 0.0}, [])
