"""Meta tests: the harness passes a correct implementation and fails each broken one for the right reason.

The adapters here are test-only (tests/fake_adapters.py): the oracle itself rounded to the
dtype, and variants with a flipped gradient, a wrong reduction, a margin 1% off, one that raises, one
that returns NaN, a gradient of the wrong shape, a loss that is not a float, a tuple instead of an
Output, and one that never returns. Each cell runs in-process through the same code as the real run.
"""
import contextlib
import io

import numpy as np
import pytest
from hypothesis import strategies as st

import reference
import registry
from engine.cells import Cell, Property, params, property_cells
from engine import cell_record
from engine.cell_run import Discrepancy
from engine.cell_run import for_each_batch
from engine.harness import AdapterFailure, AdapterUnavailable, call_adapter
from engine.regressions import regression_examples
from engine.session import ConformanceSession
from engine.draws import batches
from tests import fake_adapters as fake

SOURCE = "tests.fake_adapters:BROKEN"
BATCH_HARD, SEMI_HARD = reference.Spec(), reference.Spec(mining="semi_hard", empty="nan")


def run_cell(adapter, spec, dtype, quantity, examples=15, timeout=10.0, strategy=None, regressions=None):
    """(the cell's run, the exception Hypothesis re-raised or None), for one cell on the CPU."""
    session = ConformanceSession(writer=None, sources={adapter.name: SOURCE}, timeout=timeout)
    cell = Cell(adapter, spec, dtype, "cpu", quantity)
    run = session.start(cell, f"meta::{cell}")
    try:
        for_each_batch(
            cell, run.examine, batches(spec, dtype) if strategy is None else strategy,
            regression_examples(spec, dtype=dtype) if regressions is None else regressions, max_examples=examples,
        )
    except Exception as exc:  # the shrunk failure, or a group of distinct ones
        return run, exc
    return run, None


def messages(exc) -> str:
    """Every message and note of an exception (and of a group's members)."""
    parts = [str(exc), *getattr(exc, "__notes__", [])]
    for inner in getattr(exc, "exceptions", ()):
        parts.append(messages(inner))
    return "\n".join(parts)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
@pytest.mark.parametrize("spec", [SEMI_HARD, BATCH_HARD, fake.SPECS[6]], ids=str)
@pytest.mark.parametrize("quantity", ["loss", "grad"])
def test_the_oracle_rounded_to_the_dtype_conforms(spec, dtype, quantity):
    run, exc = run_cell(fake.ORACLE, spec, dtype, quantity)
    assert exc is None, messages(exc)
    assert run.examples >= 15 and run.failing is None
    assert run.compared + run.ambiguous_examples == run.examples


BROKEN_CASES = [
    (fake.FLIPPED_GRADIENT, BATCH_HARD, "grad", "grad differs from the oracle"),
    (fake.SUM_NOT_MEAN, SEMI_HARD, "loss", "loss differs from the oracle"),
    (fake.MARGIN_OFF, BATCH_HARD, "loss", "loss differs from the oracle"),
    (fake.RAISES, BATCH_HARD, "loss", "raised RuntimeError: kernel launch failed: out of shared memory"),
    (fake.NAN_LOSS, BATCH_HARD, "loss", "loss is nan where the oracle gives"),
    (fake.TRANSPOSED_GRADIENT, BATCH_HARD, "grad", "returned a gradient of shape"),
    (fake.LOSS_AS_LIST, BATCH_HARD, "loss", "returned a loss of type builtins.list"),
    (fake.NOT_AN_OUTPUT, BATCH_HARD, "loss", "returned a tuple"),
]


@pytest.mark.parametrize("adapter, spec, quantity, reason", BROKEN_CASES, ids=[c[0].name for c in BROKEN_CASES])
def test_a_broken_adapter_fails_with_the_reason(adapter, spec, quantity, reason):
    run, exc = run_cell(adapter, spec, "float32", quantity)
    found = getattr(exc, "exceptions", [exc])  # several regression batches may each fail: a group
    assert found and all(isinstance(e, Discrepancy) for e in found), f"expected Discrepancies, got {exc!r}"
    assert reason in messages(exc)
    assert run.failing is not None and reason in run.failing.failure
    assert "Reproduce with:" in messages(exc) and f"a.name == {adapter.name!r}" in messages(exc)


def test_the_other_quantity_of_a_broken_adapter_still_passes():
    run, exc = run_cell(fake.FLIPPED_GRADIENT, BATCH_HARD, "float32", "loss")
    assert exc is None, messages(exc)


def test_the_failure_is_shrunk_and_its_reproducer_reproduces_it():
    run, exc = run_cell(fake.SUM_NOT_MEAN, SEMI_HARD, "float64", "loss")
    counterexample = cell_record.counterexample(run)
    assert len(counterexample["labels"]) <= 4, "Hypothesis shrinks a wrong reduction to a few points"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(counterexample["reproducer"], "<reproducer>", "exec"), {"__name__": "reproducer"})
    oracle_loss, impl_loss = (float(v) for v in printed.getvalue().split("\n")[0].split()[2::2])
    assert oracle_loss == counterexample["oracle_loss"] and impl_loss == counterexample["impl_loss"] != oracle_loss


def test_a_hanging_adapter_fails_its_cell_at_the_timeout_and_is_not_called_again():
    run, exc = run_cell(fake.HANGS, BATCH_HARD, "float32", "loss", timeout=0.3)
    assert isinstance(exc, Discrepancy) and "no answer within the per-call timeout of 0.3 s" in str(exc)
    with pytest.raises(AdapterFailure, match="not called again"):
        call_adapter(fake.HANGS, np.eye(3), np.array([0, 0, 1]), BATCH_HARD, "float32", "cpu")


def test_an_adapter_that_lacks_its_framework_here_is_a_skip_not_a_failure():
    def unavailable(*args, **kwargs):
        from adapters import Unavailable

        raise Unavailable("no CUDA device")

    adapter = fake._broken("unavailable", "raises adapters.Unavailable", unavailable, (BATCH_HARD,))
    with pytest.raises(AdapterUnavailable, match="no CUDA device"):
        call_adapter(adapter, np.eye(3), np.array([0, 0, 1]), BATCH_HARD, "float32", "cpu")


TIES_THE_OTHER_WAY = fake._broken("ties_the_other_way", "semi-hard with >=", fake.semi_hard_ties_the_other_way,
                                  (SEMI_HARD, reference.Spec(mining="semi_hard", distance="cosine", empty="nan")))


def test_semi_hard_ties_taken_the_other_way_on_an_exact_lattice_are_a_discrepancy():
    """d_an >= d_ap where the spec says >: on small integers every implementation computes the tie exactly, so
    the spec's strict > decides it, and the counterexample says so."""
    run, exc = run_cell(TIES_THE_OTHER_WAY, SEMI_HARD, "float32", "loss", examples=5)
    assert isinstance(exc, Discrepancy), messages(exc)
    assert run.failing.decided.ties and "exact ties decided by the spec's rule" in messages(exc)


def test_semi_hard_ties_within_rounding_taken_the_other_way_are_admissible():
    """The same implementation where the tie is a rounding accident (cosine: never computed exactly): either side
    is admissible, and the example is not counted as compared."""
    spec = reference.Spec(mining="semi_hard", distance="cosine", empty="nan")
    cosine_ties = regression_examples(spec)[:1]  # cosine with D = 1: every distance 0 or 2
    run, exc = run_cell(TIES_THE_OTHER_WAY, spec, "float32", "loss", examples=1, strategy=st.just(cosine_ties[0]),
                        regressions=cosine_ties)
    assert exc is None, messages(exc)
    assert run.ambiguous_examples > 0


def test_every_example_ambiguous_makes_the_verdict_ambiguous_not_pass():
    tied = regression_examples(reference.Spec(mining="semi_hard", distance="cosine"))[0]
    spec = reference.Spec(mining="semi_hard", distance="cosine", empty="nan")
    run, exc = run_cell(fake.ORACLE, spec, "float32", "grad", examples=3, strategy=st.just(tied), regressions=())
    assert exc is None, messages(exc)
    assert run.compared == 0 and run.ambiguous_examples == run.examples > 0
    assert cell_record.verdict_if_passed(run)[0] == "ambiguous"


def test_a_registered_divergence_makes_its_cells_strict_xfails(monkeypatch):
    entry = registry.Divergence(id="meta-flipped", adapter="test.broken.flipped_gradient", kind="semantics",
                                   reason="sign", link="here", check="grad",
                                   confirmed_by="tests/engine/test_conformance_meta.py::test_flipped")
    monkeypatch.setattr(registry, "REGISTRY", (entry,))
    cells = [Cell(fake.FLIPPED_GRADIENT, BATCH_HARD, "float32", "cpu", q) for q in ("loss", "grad")]
    loss, grad = params(cells)
    assert not loss.marks
    xfail = next(m for m in grad.marks if m.name == "xfail")
    assert xfail.kwargs["strict"] is True and "meta-flipped" in xfail.kwargs["reason"]
    assert next(m for m in grad.marks if m.name == "divergence").args == ("meta-flipped",)
    assert grad.id == "test.broken.flipped_gradient|batch_hard euclidean m=1 mean anchors=all empty=zero|float32|cpu|grad"


def test_a_property_runs_in_the_most_precise_dtype_the_adapter_does_not_reject(monkeypatch):
    """A property checked in a dtype the registry lists as rejected never gets an answer to start from: it would be
    an xfail that checks nothing (TF-Addons' triplet losses, which reject float64, had no property checked)."""
    rejects_float64 = registry.Divergence(
        id="meta-no-float64", adapter=fake.ORACLE.name, kind="unsupported", reason="rejects float64", link="here",
        dtype="float64", confirmed_by="tests/engine/test_conformance_meta.py::test_no_float64")
    monkeypatch.setattr(registry, "REGISTRY", (rejects_float64,))
    cells = property_cells([fake.ORACLE], {"permutation": Property(verify=None, applies=lambda adapter, spec: True)})
    assert fake.ORACLE.dtypes[0] == "float64" and cells
    assert {cell.dtype for cell in cells} == {"float32"} and not any(cell.divergences() for cell in cells)


def test_a_regime_is_required_once_missing_it_would_be_improbable():
    session = ConformanceSession(writer=None, sources={}, timeout=1.0)
    session.regime_applicable["semi_hard fallback fired"] = {f"example {i}" for i in range(40)}  # p >= 0.5
    session.regime_applicable["one class"] = {f"example {i}" for i in range(40)}  # p >= 0.05: 40 is too few
    required, too_few = session.regime_coverage()
    assert len(required) == 1 and "semi_hard fallback fired" in required[0]
    assert too_few == ["one class (40 examples)"]
    session.regime_held["semi_hard fallback fired"].add("example 3")
    assert session.regime_coverage()[0] == []
