"""The model-card writer: metadata that passes the Hub's rules (repository ids, licence fields, model-index from
`ultrasam eval`, widget, pipeline tag), and the cards of converted, trained and shipped folders."""

import json

import pytest
import torch
import yaml
from safetensors import safe_open

from ultrasam_hf.hub.model_card import (
    check_model_card,
    eval_results_from_eval_json,
    hub_dataset_ids,
    write_folder_card,
    write_model_card,
)
from ultrasam_hf.hub.repo_ids import DATASETS_REPO, MEDSAM_REPO, MODEL_REPOS
from ultrasam_hf.inference.default_model import PACKAGED_MODEL, packaged_model_dir


def card(**metadata) -> str:
    base = {"library_name": "transformers", "license": "apache-2.0", "pipeline_tag": "mask-generation"}
    return f"---\n{yaml.safe_dump({**base, **metadata})}---\n# body\n"


def front_matter(path) -> dict:
    return yaml.safe_load(path.read_text().split("---")[1])


def eval_json(model="m"):
    def stats(mean):
        return {"mean": mean, "std": 0.1, "n": 3, "n_nonfinite": 0}

    summary = [
        {
            "dataset": "bus-bra",
            "prompt": "box",
            "model": model,
            "count": 3,
            "metrics": {"dice": stats(0.91234), "hd95": stats(9.5)},
        },
        {
            "dataset": "hc18",
            "prompt": "clicks",
            "model": model,
            "count": 3,
            "metrics": {"dice": stats(0.95), "noc85_iou": stats(1.5)},
        },
        {"dataset": "hc18", "prompt": "box", "model": "other", "count": 3, "metrics": {"dice": stats(0.5)}},
    ]
    records = [
        {"dataset": "bus-bra", "model": model, "distance_unit": "px"},
        {"dataset": "hc18", "model": model, "distance_unit": "mm"},
    ]
    return {"settings": {"split": "test", "nsd_tolerance": 2.0}, "summary": summary, "records": records}


def test_check_model_card_names_each_problem():
    assert check_model_card(card(base_model=MEDSAM_REPO, datasets=[DATASETS_REPO])) == []
    problems = check_model_card(
        card(base_model="LiteMedSAM (bowang-lab/MedSAM, LiteMedSAM branch)", datasets=["bus bra"], license="other")
    )
    text = " | ".join(problems)
    assert "base_model 'LiteMedSAM" in text and "datasets 'bus bra'" in text
    assert "license_name" in text and "license_link" in text
    assert check_model_card(card(base_model_relation="finetune")) == ["base_model_relation without base_model"]
    assert "not one of" in check_model_card(card(base_model=MEDSAM_REPO, base_model_relation="distilled"))[0]
    assert check_model_card(card(license="Apache 2.0"))[0].startswith("license 'Apache 2.0'")
    assert check_model_card(card(widget=[{"example_title": "no src"}]))[0].startswith("widget entry")


def test_model_index_from_eval_results_json(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(eval_json()))
    results = eval_results_from_eval_json(path, "m")
    assert len(results) == 4  # the other model's row is not taken
    dice = next(r for r in results if r.dataset_config == "bus-bra" and r.metric_type == "dice")
    assert (dice.dataset_type, dice.dataset_split, dice.metric_value) == (DATASETS_REPO, "test", 0.9123)
    assert dice.task_name == "Box-prompted segmentation" and dice.metric_name == "Dice (box)"
    hd95 = next(r for r in results if r.metric_type == "hd95")
    assert hd95.metric_name == "HD95 (box, px)"
    assert {r.metric_type for r in results if r.dataset_config == "hc18"} == {"dice", "noc85_iou"}
    with pytest.raises(ValueError, match="models there"):
        eval_results_from_eval_json(path, "absent")
    with pytest.raises(ValueError, match="not an `ultrasam eval` results.json"):
        eval_results_from_eval_json({"records": []}, "m")


def test_write_model_card_licence_file_model_index_widget(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"mask_generation": {"points_per_crop": 8}}))
    path = write_model_card(
        tmp_path,
        "# model\n",
        repo_id="org/model",
        base_model=MEDSAM_REPO,
        base_model_relation="finetune",
        license="other",
        license_name="model-terms",
        license_text="# terms",
        datasets=hub_dataset_ids(["bus-bra", "hc18", "other-org/data"]),
        eval_results=eval_results_from_eval_json(eval_json(), "m"),
        model_name="m",
    )
    metadata = front_matter(path)
    assert metadata["license_link"] == "LICENSE.md" and (tmp_path / "LICENSE.md").read_text() == "# terms\n"
    assert metadata["datasets"] == [DATASETS_REPO, "other-org/data"]
    (index,) = metadata["model-index"]
    assert index["name"] == "m" and sum(len(result["metrics"]) for result in index["results"]) == 4
    assert metadata["inference"] == {"parameters": {"points_per_crop": 8}}
    for entry in metadata.get("widget", []):  # present when pydicom-data is installed
        assert entry["src"].startswith("https://huggingface.co/org/model/resolve/main/examples/")
        assert (tmp_path / entry["src"].split("/main/")[1]).is_file()
    with pytest.raises(ValueError, match="license_name"):
        write_model_card(tmp_path / "bad", "# x", license="other", license_link="https://example.org")


def test_trained_folder_card_takes_lineage_and_datasets_from_the_training_record(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"preset": "lite", "preprocessing": "litemedsam"}))
    record = {"init": str(PACKAGED_MODEL), "datasets": "bus-bra,usgra", "variant": "frozen-encoder"}
    metadata = front_matter(write_folder_card(tmp_path, training_record=record, repo_id="org/run"))
    assert metadata["base_model"] == "ultrasam/ultrasam-lite-us" and metadata["base_model_relation"] == "finetune"
    assert metadata["datasets"] == [DATASETS_REPO]
    assert "frozen-encoder" in (tmp_path / "README.md").read_text()
    record["init"] = "ultrasam-nano-us"  # a shipped model given by its name
    metadata = front_matter(write_folder_card(tmp_path, training_record=record, repo_id="org/run"))
    assert metadata["base_model"] == MODEL_REPOS["ultrasam-nano-us"]
    metadata = front_matter(write_folder_card(tmp_path, training_record={}, repo_id="org/run"))
    assert metadata["base_model"] == MEDSAM_REPO  # the lite preset's lineage


def test_shipped_asset_card_passes_the_hub_rules():
    text = (PACKAGED_MODEL / "README.md").read_text()
    assert check_model_card(text, PACKAGED_MODEL) == []
    metadata = front_matter(PACKAGED_MODEL / "README.md")
    assert metadata["base_model"] == MEDSAM_REPO and metadata["datasets"] == [DATASETS_REPO]
    assert metadata["license"] == "other" and (PACKAGED_MODEL / metadata["license_link"]).is_file()
    results = metadata["model-index"][0]["results"]
    configs = {entry["dataset"]["config"] for entry in results}
    training = json.loads((PACKAGED_MODEL / "training_data.json").read_text())["datasets"]
    assert configs == set(training)  # a test result for every dataset it was trained on
    assert metadata["pipeline_tag"] == "mask-generation" and metadata["widget"]


def test_shipped_nano_is_an_fp16_distilled_student_whose_card_states_its_gaps():
    nano = packaged_model_dir("ultrasam-nano-us")
    assert nano is not None, "ultrasam_hf/assets/ultrasam-nano-us is missing"
    text = (nano / "README.md").read_text()
    assert check_model_card(text, nano) == []
    metadata = front_matter(nano / "README.md")
    assert metadata["base_model"] == MODEL_REPOS["ultrasam-lite-us"]  # the teacher it was distilled from
    assert metadata["datasets"] == [DATASETS_REPO] and (nano / metadata["license_link"]).is_file()
    results = metadata["model-index"][0]["results"]
    training = json.loads((nano / "training_data.json").read_text())["datasets"]
    assert {entry["dataset"]["config"] for entry in results} == set(training)
    assert json.loads((nano / "config.json").read_text())["preset"] == "nano"
    assert "not the default" in text and "within 1 Dice point" in text  # opt-in, measured against the bars
    with safe_open(nano / "model.safetensors", "pt") as weights:
        dtypes = {weights.get_tensor(key).dtype for key in weights.keys()}
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    assert (nano / "model.safetensors").stat().st_size < 25 * 2**20
