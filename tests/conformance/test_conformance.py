"""Conformance: each adapter's loss and gradient against the oracle, one item per cell.

A cell is adapter x claimed spec x dtype x device x quantity (tests/support/cells.py), with an id
like `test_conformance[tfa.triplet_semihard_loss|semi_hard euclidean m=1 mean empty=nan|float32|cpu|loss]`.
Each cell draws batches with Hypothesis (tests/support/batches.py), rounds them to the dtype, and
compares the adapter with the oracle within the tolerance table (tests/support/tolerances.py),
accepting any admissible outcome where the input is ambiguous for the dtype. Every cell leaves one
"comparison" record in --results, whatever happens (tests/support/plugin.py).

Run a subset with -k, e.g. `pytest tests/conformance -k "tfa and float32"`, or check your own
implementation with `pytest --adapter my_module:ADAPTERS` (see examples/my_inhouse_loss.py).
"""
from support.batches import batches, regression_examples
from support.cells import conformance_cells, params
from support.checks import for_each_batch


def pytest_generate_tests(metafunc):
    if "cell" in metafunc.fixturenames:
        metafunc.parametrize("cell", params(conformance_cells(metafunc.config.conformance_adapters)))


def test_conformance(cell, conformance, request):
    run = conformance.start(cell, request.node.nodeid)
    conformance.skip_unless_runnable(cell)
    for_each_batch(cell, run.check, batches(cell.spec, cell.dtype), regression_examples(cell.spec))
