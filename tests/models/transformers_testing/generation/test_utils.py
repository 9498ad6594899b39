"""`GenerationTesterMixin` stand-in: `test_modeling_common` only checks whether a test class inherits it."""


class GenerationTesterMixin:
    pass
