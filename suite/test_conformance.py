"""Conformance: each adapter's loss and gradient against the oracle, one item per cell.

A cell is adapter x claimed spec x dtype x device x quantity (engine/cells.py), with an id
like `test_conformance[tfa.triplet_semihard_loss|semi_hard euclidean m=1 mean empty=nan|float32|cpu|loss]`.
Each cell runs the regression batches (engine/regressions.py) and every geometry of the batch strategy
at its extreme (engine/strategies.py `extremes`), then draws batches with Hypothesis (engine/strategies.py),
rounds them to the dtype, and judges the adapter against the oracle (engine/judge.py) within the tolerance
table (engine/tolerances.py), accepting any admissible outcome where the input is ambiguous for the dtype.
Every cell leaves one "comparison" record in --results, whatever happens (engine/session.py).

Run a subset with -k, e.g. `pytest suite/test_conformance.py -k "tfa and float32"`, or check your own
implementation with `pytest --adapter my_module:ADAPTERS` (see examples/my_inhouse_loss.py).
"""
from engine.cells import conformance_cells, params
from engine.checks import for_each_batch
from engine.distributed import shard_options, with_shards
from engine.regressions import regression_examples
from engine.strategies import batches, with_extremes


def pytest_generate_tests(metafunc):
    if "cell" in metafunc.fixturenames:
        metafunc.parametrize("cell", params(conformance_cells(metafunc.config.conformance_adapters)))


def test_conformance(cell, conformance, request):
    run = conformance.start(cell, request.node.nodeid)
    conformance.skip_unless_runnable(cell)
    sharding = shard_options(cell.adapter, cell.device)  # none on a single-process target; else W, equal shards
    fixed = with_extremes(regression_examples(cell.spec, dtype=cell.dtype), cell.spec, cell.dtype, cell.precision,
                          **sharding)  # the regression batches, then each geometry at its extreme
    for_each_batch(cell, run.check, batches(cell.spec, cell.dtype, cell.precision, **sharding),
                   with_shards(fixed, **sharding))
