"""`config_common_kwargs` stand-in: non-default values of `PreTrainedConfig`'s common fields, which `ConfigTester`
checks a configuration stores as given. It reads them only for configurations without sub-configurations (not
UltraSam's), so this is a short list rather than transformers' full one."""

config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "output_attentions": True,
    "dtype": "float16",
    "tie_word_embeddings": False,
    "chunk_size_feed_forward": 5,
    "id2label": {0: "label"},
    "label2id": {"label": "0"},
    "problem_type": "regression",
}
