"""Publishing to the Hugging Face Hub: self-contained model repositories (`model_repo`), the one model-card writer
(`model_card`) and the repository ids the package publishes under (`repo_ids`). Dataset repositories are written by
`ultrasam_hf.data.hub`; `docs/hub.md` gives the push commands."""

from .model_card import check_model_card, eval_results_from_eval_json, write_folder_card, write_model_card
from .model_repo import check_model_repo, prepare_model_repo, push_model_repo, write_remote_code

__all__ = [
    "check_model_card",
    "check_model_repo",
    "eval_results_from_eval_json",
    "prepare_model_repo",
    "push_model_repo",
    "write_folder_card",
    "write_model_card",
    "write_remote_code",
]
