"""Edge-case behaviour, recorded per adapter x claimed spec x case (first claimed dtype, CPU).

    no_positive    every label distinct: no anchor has a positive
    no_negative    one class: no anchor has a negative
    singletons     classes of one next to classes of two
    full_collapse  every embedding the same point
    duplicates     exact copies of points, within and across classes (zero distances, ties)
    nan_input      a NaN coordinate (the oracle rejects it: OracleError)

In the pairs layout (N-pairs: rows 0..B-1 the anchors, row B + i the positive of anchor i) a case's batch becomes
pairs (contract/batch.py `in_layout`: its first half's labels on both halves, an odd last row dropped); every anchor
then has its positive, so no_positive is no batch of that layout and is not run.

Every item writes one "edge_case" record (what the adapter returned: a value, NaN, inf, or an error
with its message; whether its gradient is finite; what the oracle says), whether or not it matches.
It then asserts what is a conformance question: where the oracle gives an answer, the adapter's loss
must match it (ambiguity-aware, as in the conformance cells) and so must its gradient, the zero-distance
convention included (a pair at distance 0 carries gradient 0, reference/distances.py); NaN input is
recorded only. Known differences are registry entries (registry/known_*.py) with check "edge:<case>".
"""
import numpy as np

from contract.batch import Batch, in_layout
from engine.cells import edge_case_cells, params
from engine.harness import AdapterFailure
from engine.judge import judge_example
from reference import LOSSES, OracleError, Spec, evaluate, valid_triplets
from reference.gaps import ZERO_DISTANCE
from reports.schema import EDGE_CASES

# Small batches, every coordinate a multiple of 1/8: exact in every dtype.
POINTS = np.array([[0.0, 1.0, 0.5], [0.25, 0.75, 0.5], [1.5, -0.5, 0.0], [1.25, -0.25, 0.25], [-1.0, 0.0, 1.0],
                   [-0.75, 0.25, 1.25]])
CASES = {
    "no_positive": (POINTS[:4], [0, 1, 2, 3]),
    "no_negative": (POINTS[:4], [5, 5, 5, 5]),
    "singletons": (POINTS, [0, 0, 1, 1, 2, 3]),
    "full_collapse": (np.tile([[0.5, -0.25, 1.0]], (4, 1)), [0, 0, 1, 1]),
    "duplicates": (POINTS[[0, 0, 2, 3, 0]], [0, 0, 1, 1, 2]),  # a positive and a negative copy of point 0
    "nan_input": (np.where(np.arange(18).reshape(6, 3) == 4, np.nan, POINTS), [0, 0, 1, 1, 2, 2]),
}
assert set(CASES) == set(EDGE_CASES), "every case of the results schema has a batch"
# The zero-distance kinks are what "duplicates" and "full_collapse" are about: their gradient is compared.
CONVENTIONS = (ZERO_DISTANCE,)


def edge_batch(case: str, spec: Spec) -> Batch:
    embeddings, labels = in_layout(spec, np.array(CASES[case][0], dtype=np.float64), CASES[case][1])
    triplets = None
    if spec.mining == "triplets":  # the triples a labelled batch would give, or the first rows when none
        valid = valid_triplets(labels)
        triplets = valid if len(valid) else np.array([[0, 1, 2], [1, 2, 3]])
    return Batch(embeddings, labels, triplets, f"edge case {case}")


def expressible(spec: Spec, case: str) -> bool:
    return not (LOSSES[spec.mining].layout == "pairs" and case == "no_positive")


def pytest_generate_tests(metafunc):
    if "cell" in metafunc.fixturenames:
        metafunc.parametrize("cell", params(edge_case_cells(metafunc.config.conformance_adapters, EDGE_CASES,
                                                                       expressible)))


def outcome_of(loss) -> str:
    return "nan" if np.isnan(loss) else "inf" if np.isinf(loss) else "value"


def problems_with(cell, found, expected) -> list[str]:
    """What does not conform: [] when the adapter's loss (and gradient) match the oracle's."""
    problems = []
    for quantity, value in (("loss", found.loss), ("grad", found.grad)):
        if value is None:
            continue
        errors = judge_example(cell, quantity, value, expected, conventions=CONVENTIONS)
        if errors is not None and not errors.ok:
            problems.append(errors.mismatch)
    return problems


def test_edge_case(cell, conformance, results, request):
    case = cell.check.removeprefix("edge:")
    run = conformance.start(cell, request.node.nodeid)
    run.skip_unless_runnable()
    batch = edge_batch(case, cell.spec).rounded(cell.dtype)
    try:
        expected, oracle_error = evaluate(batch.embeddings, batch.labels, cell.spec, batch.triplets), ""
    except OracleError as exc:
        expected, oracle_error = None, f"{type(exc).__name__}: {exc}"
    try:
        found, error = run.call(batch), ""
    except AdapterFailure as exc:
        found, error = None, exc.reason

    problems = []
    if expected is not None:
        problems = [f"the adapter gave no answer: {error}"] if found is None else problems_with(cell, found, expected)
    results.write(
        "edge_case",
        adapter=cell.adapter.name,
        spec=cell.spec.to_dict(),
        spec_label=str(cell.spec),
        dtype=cell.dtype,
        device=cell.target,
        case=case,
        outcome="error" if found is None else outcome_of(found.loss),
        loss=None if found is None else found.loss,
        grad_finite=None if found is None or found.grad is None else bool(np.all(np.isfinite(found.grad))),
        error=error,
        oracle_outcome="error" if expected is None else outcome_of(expected.loss),
        oracle_loss=None if expected is None else expected.loss,
        oracle_error=oracle_error,
        matches_oracle=None if expected is None else not problems,
        problems=problems,
        divergence=", ".join(d.id for d in cell.divergences()) or None,
    )
    assert not problems, f"{cell}: " + "; ".join(problems) + "\nReproduce with:\n" + run.reproducer_for(batch)
