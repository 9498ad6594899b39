"""transformers' common model and configuration tests, vendored so that UltraSam runs the suite transformers runs on
its own models (`tests/models/sam/test_modeling_sam.py` there).

Source: the PyPI source distribution of transformers 5.25.0 (the version `make install` pins in
`.ci/constraints.txt`), `transformers-5.25.0.tar.gz` (sha256
9120226c6bf170d69abc3029036799bb5d48e552f7127646a529a5c9309812e2), built from the v5.25.0 release tag (the archive
records no commit); licence Apache-2.0, see each file's header. The wheel does not ship `tests/`. The files import
helpers of that version's `transformers.testing_utils`, so `test_modeling_ultrasam_common.py` skips them under any
other installed version (`VENDORED_FROM`).

Copied unchanged from its `tests/` folder (sha256 of each file):
- `test_modeling_common.py`       b76190b86d67b334d474eb2d043dfa695caf45a3ceab68bc08ebf4280784abb4
- `test_configuration_common.py`  a8ac6455ff1bc085c147de71930a3bf57eb4e1ff880102ccaa627477b1f111e4

The source distribution lacks three modules those files import; they are written here, not copied:
- `exporters/test_export.py`: `ExportTesterMixin` without tests (transformers' `torch.export` tests are not run);
- `generation/test_utils.py`: `GenerationTesterMixin` as an empty marker class (UltraSam does not generate);
- `utils/test_configuration_utils.py`: `config_common_kwargs`, read only for configurations without sub-configurations.

This file must stay free of side effects: `test_configuration_common.py` executes it once under the name
`transformers` (`direct_transformers_import(Path(__file__).parent)`, as upstream does with `tests/__init__.py`).
"""

VENDORED_FROM = "5.25.0"
