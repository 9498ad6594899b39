"""UltraSam model files. Everything in this folder imports only torch, transformers and its siblings, so that
`save_pretrained` can ship it as remote code (`trust_remote_code=True`) to machines without `ultrasam_hf`."""
