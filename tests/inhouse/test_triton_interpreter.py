"""Without a GPU the in-house Triton kernels run under Triton's interpreter, which Triton fixes when it is first
imported. Other libraries import triton early (sentence-transformers does), so the suite switches the interpreter
on before any adapter loads (adapters/inhouse.py `interpret_triton_without_a_gpu`); otherwise every inhouse.triton
cell of a run with sentence-transformers in it would skip."""
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

pytest.importorskip("triton", reason="the kernels need triton")
torch = pytest.importorskip("torch", reason="the kernels need torch")

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU the kernels run on it, not interpreted")
def test_the_kernels_run_where_an_adapter_module_imported_triton_first(tmp_path):
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET" and not k.startswith("PYTEST_XDIST")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suite/test_conformance.py", "--adapter", "tests.inhouse.early_triton:ADAPTERS",
         "-k", "batch_hard and euclidean and float32 and cpu", "-p", "no:cacheprovider", "-q", "--junitxml", str(junit)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env={**env, "CI": "true"},
    )
    cases = list(ElementTree.parse(junit).iter("testcase"))
    skipped = [case.get("name") for case in cases if case.find("skipped") is not None]
    assert done.returncode == 0 and cases and not skipped, (done.stdout + done.stderr)[-3000:]
