"""Every known divergence names the test that confirms it, and points at a cell some adapter claims."""
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from adapters import distributed, pml, quaterion, seeds, sentence_transformers, tf_similarity, tfa, torch_native
from registry import CONFORMANCE, REGISTRY, alternatives, matches
from reference import in_scope

ROOT = Path(__file__).resolve().parents[2]
BUILT_IN = [a for family in (torch_native, pml, tfa, seeds, sentence_transformers, tf_similarity, quaterion, distributed)
            for a in family.ADAPTERS]


def test_conformance_pattern_covers_loss_and_grad_only():
    assert [fnmatchcase(q, CONFORMANCE) for q in ("loss", "grad", "edge:no_negative")] == [True, True, False]


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda d: d.id)
def test_every_entry_names_a_confirming_test_that_exists(entry):
    for test in alternatives(entry.confirmed_by):
        path, function = test.split("::")
        assert f"def {function}(" in (ROOT / path).read_text(), test


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda d: d.id)
def test_every_entry_matches_a_claimed_cell(entry):
    """A scope that matches no claimed adapter x spec x dtype x device would never fire: a typo."""
    assert any(
        matches(a.name, entry.adapter) and in_scope(spec, entry.spec) and matches(dtype, entry.dtype)
        and matches(device, entry.device)
        for a in BUILT_IN for spec in a.specs for dtype in a.dtypes for device in a.targets
    )
    assert entry.reason and entry.link and len({d.id for d in REGISTRY}) == len(REGISTRY)


@pytest.mark.parametrize("entry", [e for e in REGISTRY if e.regressions], ids=lambda d: d.id)
def test_every_regression_batch_reaches_a_spec_the_entry_covers(entry):
    assert all(any(regression.applies(spec) and in_scope(spec, entry.spec)
                   for a in BUILT_IN if matches(a.name, entry.adapter) for spec in a.specs)
               for regression in entry.regressions)
