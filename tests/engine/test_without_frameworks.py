"""A test that needs a framework skips, with the reason, where the framework is missing (tox's oracle env has none,
tfa-tf21x no torch); it never fails there. CI runs with every framework installed, where a test that forgets its
framework passes: so here, inside CI's run, the suite and its own tests run again in child pytests in which the
frameworks cannot be imported (tests/without_frameworks/sitecustomize.py on PYTHONPATH, which reaches the child's own
children too), and a test that raises instead of skipping fails its child. At run time, not --collect-only: an
adapter's run raises Unavailable only when called.

The suite's own tests run apart from the suite: a test may leave work to the items of its session
(test_thorough_agreement.py leaves the hunt's cells this run holds as strict xfails to it, under ci), and with the
suite's cells beside it would never start the child run that a run of tests/ alone starts. Each run leaves out what
only costs time: without a framework, tests/oracle (the NumPy oracle against hand computations), tests/faults and
tests/engine/test_parallel.py (child runs over tests/fake_adapters.py's NumPy adapters) reach no framework by
construction and hold a minute of child runs; without torch, TensorFlow is there and the suite's TF-Addons cells
would run for real, so only the suite's own tests that tox's tfa envs run (tox.ini framework_tests)."""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.child_pytest import environment
from tests.without_frameworks.sitecustomize import FRAMEWORKS

ROOT = Path(__file__).resolve().parents[2]
BLOCKER = ROOT / "tests" / "without_frameworks"
TORCH_STACK = ("torch", "pytorch_metric_learning", "sentence_transformers", "triton", "quaterion")

# each child run, named by the tox env it stands in for: the frameworks it blocks, its paths
RUNS = {
    "oracle-tests": (FRAMEWORKS, ("tests", "--ignore=tests/oracle", "--ignore=tests/faults",
                                  "--ignore=tests/engine/test_parallel.py")),
    "oracle-suite": (FRAMEWORKS, ("suite",)),
    "tfa-tests": (TORCH_STACK, ("tests/adapters", "tests/inhouse")),  # TensorFlow without torch
}


@pytest.mark.parametrize("run", RUNS)
def test_what_needs_a_framework_skips_where_it_is_missing(run):
    blocked, paths = RUNS[run]
    present = [name for name in blocked if importlib.util.find_spec(name) is not None]
    if not present:  # tox's oracle env, and this very test inside the child run
        pytest.skip(f"none of {', '.join(blocked)} is installed here: this run is itself the run without them")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *paths, "-p", "no:xdist", "-p", "no:cacheprovider", "-q", "-rfEs"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=environment(PYTHONPATH=str(BLOCKER), WITHOUT_FRAMEWORKS=",".join(blocked)),
    )
    output = done.stdout + done.stderr
    failures = [line for line in output.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert done.returncode == 0, f"without {', '.join(present)}, these fail (what needs a framework skips without it: " \
        f"pytest.importorskip, or pytest.skip on adapters.unavailable's reason):\n" + "\n".join(failures or [output[-3000:]])
    # the premise: the blocker took effect (a framework test skipped for it) and tests ran, not only skips
    assert "None in sys.modules" in output, output[-3000:]
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) > 0, output[-3000:]
