"""inhouse.triton behind a module that imports triton first, as sentence-transformers does (tests/inhouse/
test_triton_interpreter.py runs it with `pytest --adapter`): the kernels must still run here, under Triton's
interpreter where no GPU is visible."""
import triton  # noqa: F401  (the early import under test)

from adapters.inhouse import ADAPTERS as _INHOUSE

ADAPTERS = [adapter for adapter in _INHOUSE if adapter.name == "inhouse.triton"]
