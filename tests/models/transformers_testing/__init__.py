"""transformers' common model and configuration tests, vendored so that UltraSam runs the suite transformers runs on
its own models (`tests/models/sam/test_modeling_sam.py` there).

Source: the PyPI source distribution of transformers 5.24.0 (the version this package pins),
`transformers-5.24.0.tar.gz` (sha256 906cb8c3cb2123575e263962586a4d21a979ce97feeb95fe6aaf66fe6ae88bf3), built
from the v5.24.0 release tag (the archive records no commit); licence Apache-2.0, see each file's header. The wheel
does not ship `tests/`.

Copied unchanged from its `tests/` folder (sha256 of each file):
- `test_modeling_common.py`       d73163a672c297372aa0c7d69ab7909a703627fa32483c62d563e59927d721d3
- `test_configuration_common.py`  a8ac6455ff1bc085c147de71930a3bf57eb4e1ff880102ccaa627477b1f111e4

The source distribution lacks three modules those files import; they are written here, not copied:
- `exporters/test_export.py`: `ExportTesterMixin` without tests (transformers' `torch.export` tests are not run);
- `generation/test_utils.py`: `GenerationTesterMixin` as an empty marker class (UltraSam does not generate);
- `utils/test_configuration_utils.py`: `config_common_kwargs`, read only for configurations without sub-configurations.

This file must stay free of side effects: `test_configuration_common.py` executes it once under the name
`transformers` (`direct_transformers_import(Path(__file__).parent)`, as upstream does with `tests/__init__.py`).
"""
