"""A user's `pytest --adapter MODULE:ATTR` collects exactly the checks that judge the named adapters: the
conformance cells, properties and edge cases in suite/, never the suite's own tests (tests/) nor the
robustness sweeps, unless a path is named; a plain `pytest` collects both."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "examples.my_inhouse_loss:ADAPTERS"


def collected(*args: str) -> list[str]:
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                         cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return [line for line in run.stdout.splitlines() if "::" in line]


def test_a_users_run_collects_only_the_checks_of_the_named_adapters():
    pytest.importorskip("torch")
    items = collected("--adapter", EXAMPLE)
    assert items and all(item.startswith("suite/") and not item.startswith("suite/robustness") for item in items)
    assert all("my-batch-hard|" in item for item in items)
    files = {item.split("::")[0] for item in items}
    assert files == {"suite/test_conformance.py", "suite/test_properties.py", "suite/test_edge_cases.py"}
    # 2 specs x 2 dtypes x (loss, grad); 2 specs x 6 edge cases; 2 specs x the 7 properties that apply (a torch
    # adapter's euclidean hinge: permutation, relabelling, translation, descent, margins_hold, duplicates_finite,
    # machine_settings)
    assert len(items) == 8 + 12 + 14


def test_a_named_path_is_collected_for_the_user_too():
    pytest.importorskip("torch")
    items = collected("--adapter", EXAMPLE, "suite/robustness")
    assert items and all(item.startswith("suite/robustness/") for item in items)


def test_a_plain_run_collects_the_suite_and_its_own_tests():
    files = {item.split("::")[0].split("/")[0] for item in collected("--co", "tests/engine", "suite/test_edge_cases.py")}
    assert files == {"tests", "suite"}


ORDER_PROBE = """
import sys
import engine.pytest_plugin
before = "torch" in sys.modules
import tensorflow
order = list(sys.modules)
print(before, order.index("torch") < order.index("tensorflow"))
"""


def test_the_plugin_imports_torch_only_when_tensorflow_comes_and_then_first(tmp_path):
    """Torch before TensorFlow in one process (the other order can crash at import), and no torch import in a run
    that never imports TensorFlow (engine/pytest_plugin.py TorchBeforeTensorFlow). TRITON_INTERPRET is set, as in
    a child of a run: the plugin then has no GPU to ask torch about. The tensorflow imported is an empty stand-in:
    the order is the hook's business, and the real one takes seconds to import."""
    pytest.importorskip("torch")
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("")
    run = subprocess.run([sys.executable, "-c", ORDER_PROBE], cwd=ROOT, capture_output=True, text=True, check=False,
                         env={**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["False", "True"]
