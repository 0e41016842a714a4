"""Conformance: each adapter's loss and gradient against the oracle, one item per cell.

A cell is adapter x claimed spec x dtype x target, checked for one quantity per item (engine/cells.py), with an id
like `test_conformance[tfa.triplet_semihard_loss|semi_hard euclidean m=1 mean empty=nan|float32|cpu|loss]`.
Each cell runs the regression batches (engine/regressions.py) and every geometry of the batch draws at its extreme,
then draws batches with Hypothesis (engine/draws.py `for_cell`), rounds them to the dtype, and judges the adapter
against the oracle (engine/judge.py) within the tolerance table (engine/tolerances.py), accepting any admissible
outcome where the input is ambiguous for the dtype. What happens to one cell is engine/cell_run.py; every cell
leaves one "comparison" record in --results, whatever happens (engine/cell_record.py).

Run a subset with -k, e.g. `pytest suite/test_conformance.py -k "tfa and float32"`, or check your own
implementation with `pytest --adapter my_module:ADAPTERS` (see examples/my_inhouse_loss.py).
"""
from engine import draws
from engine.cell_run import for_each_batch
from engine.cells import conformance_cells, params


def pytest_generate_tests(metafunc):
    if "cell" in metafunc.fixturenames:
        metafunc.parametrize("cell", params(conformance_cells(metafunc.config.conformance_adapters)))


def test_conformance(cell, conformance, request):
    run = conformance.start(cell, request.node.nodeid)
    run.skip_unless_runnable()
    for_each_batch(cell, run.examine, *draws.for_cell(cell))
