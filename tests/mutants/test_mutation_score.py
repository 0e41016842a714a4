"""The suite's power, measured as mutation testing measures it: the zoo (tests/mutants/zoo.py) goes through the
public path a user takes, `pytest --adapter MODULE:ATTR`, in one child run; every wrong implementation must be
flagged (a failed conformance cell, property or edge case) and every right one must conform. The score is
printed in the test summary (tests/conftest.py)."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

import pytest

pytest.importorskip("torch")
import zoo  # noqa: E402  (tests/mutants is on sys.path)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def score(pytestconfig) -> dict:
    """what -> (count, of), printed in the summary by tests/conftest.py."""
    if not hasattr(pytestconfig, "mutation_score"):
        pytestconfig.mutation_score = {}
    return pytestconfig.mutation_score


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    """Per adapter name: the ids of its failed items, and the comparison records of its cells."""
    folder = tmp_path_factory.mktemp("zoo")
    junit, results = folder / "junit.xml", folder / "results.jsonl"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--adapter", "tests.mutants.zoo:WRONG", "--adapter", "tests.mutants.zoo:RIGHT",
         "--hypothesis-profile", "ci", "-p", "no:cacheprovider", "-q", "--junitxml", str(junit), "--results", str(results)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert run.returncode in (0, 1) and junit.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    failed = defaultdict(list)
    for case in ElementTree.parse(junit).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            name = case.get("name", "")
            failed[name[name.index("[") + 1:].split("|")[0]].append(name)
    records = [json.loads(line) for line in results.read_text().splitlines()]
    return failed, [r for r in records if r["kind"] == "comparison"]


def test_every_wrong_implementation_is_flagged(zoo_run, score):
    failed, _ = zoo_run
    missed = [a.name for a in zoo.WRONG if not failed.get(a.name)]
    score["wrong implementations flagged"] = (len(zoo.WRONG) - len(missed), len(zoo.WRONG))
    assert not missed, f"the suite did not flag: {', '.join(missed)}"


def test_every_right_implementation_conforms(zoo_run, score):
    failed, _ = zoo_run
    flagged = {a.name: failed[a.name] for a in zoo.RIGHT if failed.get(a.name)}
    score["right implementations conforming"] = (len(zoo.RIGHT) - len(flagged), len(zoo.RIGHT))
    assert not flagged, f"the suite flagged correct implementations: {flagged}"


@pytest.mark.parametrize("name", ["zoo.wrong.semi-hard-ge", "zoo.wrong.window-lower-inclusive",
                                  "zoo.wrong.window-upper-exclusive", "zoo.wrong.mean-nonzero-counts-zeros"])
def test_a_wrong_tie_rule_fails_in_float32_and_float64_on_an_exact_lattice(zoo_run, name):
    """The spec's own rule decides an exact tie: the failing loss cell's counterexample sits on one."""
    _, comparisons = zoo_run
    for dtype in ("float32", "float64"):
        cell = next(r for r in comparisons if r["adapter"] == name and r["dtype"] == dtype and r["quantity"] == "loss")
        assert cell["verdict"] == "fail", (dtype, cell["verdict"], cell["reason"])
        assert cell["counterexample"]["exact_ties"], (dtype, cell["counterexample"]["layout"])
