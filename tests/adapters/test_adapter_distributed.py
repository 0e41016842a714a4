"""adapters/distributed.py, shown directly on small batches: what pytorch-metric-learning's distributed wrappers
report (the registry entries pml-distributed-*), that they take equal shards only, and that our in-house losses on
the gathered batch conform on any layout (docs/distributed.md)."""
from __future__ import annotations

import functools
import pickle

import numpy as np
import pytest

import reference
from adapters import distributed as dist_adapters
from registry.known_distributed import PML_DISTRIBUTED_BATCH
from adapters.wrap import wrap_torch
from engine import distributed
from engine.harness import AdapterFailure, call_adapter
from engine.workers import PROCESS_GROUPS

pytest.importorskip("pytorch_metric_learning")
pytestmark = pytest.mark.xdist_group(PROCESS_GROUPS)  # the worker that starts the cells' groups too

BY_NAME = {a.name: a for a in dist_adapters.ADAPTERS}
TARGETS = {"dist-gloo-2": 2, "dist-gloo-3": 3}
X, Y = PML_DISTRIBUTED_BATCH.embeddings, PML_DISTRIBUTED_BATCH.labels  # 6 rows: equal shards at W = 2 and 3


def pml(miner: str, efficient: bool):
    return BY_NAME[dist_adapters.pml_name(miner, efficient)]


def relative(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("miner", dist_adapters.MINERS)
def test_efficient_false_reports_world_size_times_the_loss_with_the_whole_batch_gradient(miner):
    adapter = pml(miner, efficient=False)
    for spec in adapter.specs:
        oracle = reference.evaluate(X, Y, spec)
        assert oracle.loss > 0.01
        for device, world_size in TARGETS.items():
            out = call_adapter(adapter, X, Y, spec, "float64", device)
            assert out.loss == pytest.approx(world_size * oracle.loss, rel=1e-12)  # the registered divergence
            assert relative(out.grad, oracle.grad) < 1e-12  # G: DDP's average of W * dL/dX_r is the gradient
            ranks = distributed.last_call().rank_losses
            assert max(ranks) - min(ranks) < 1e-12  # every rank reports W times the whole-batch loss


@pytest.mark.parametrize("miner", dist_adapters.MINERS)
def test_efficient_true_takes_local_anchors_and_changes_loss_and_gradient(miner):
    adapter = pml(miner, efficient=True)
    for spec in adapter.specs:
        oracle = reference.evaluate(X, Y, spec)
        for device, world_size in TARGETS.items():
            out = call_adapter(adapter, X, Y, spec, "float64", device)
            assert abs(out.loss - oracle.loss) > 0.2 * oracle.loss
            assert relative(out.grad, oracle.grad) > 0.2
            ranks = distributed.last_call().rank_losses
            assert max(ranks) - min(ranks) > 1e-3  # each rank reports W times the mean over its own anchors


def test_efficient_true_gradient_is_no_rescaling_of_the_whole_batch_gradient():
    """Not a constant factor (W, 1/W) either: the direction differs, from the cross-rank terms it drops."""
    adapter = pml("BatchHardMiner", efficient=True)
    spec = adapter.specs[0]
    oracle = reference.evaluate(X, Y, spec)
    out = call_adapter(adapter, X, Y, spec, "float64", "dist-gloo-2")
    cosine = np.vdot(out.grad, oracle.grad) / (np.linalg.norm(out.grad) * np.linalg.norm(oracle.grad))
    assert cosine < 0.99


def test_pml_takes_equal_shards_only():
    """PML's all_gather allocates each peer's buffer like the rank's own shard: with uneven shards gloo aborts a rank
    (or a rank reads rows into the wrong shape), so the adapters declare equal_shards and refuse other layouts."""
    adapter = pml("no miner", efficient=False)
    assert adapter.extra["equal_shards"]
    with pytest.raises(AdapterFailure, match="declares equal_shards"):
        call_adapter(adapter, X, Y, adapter.specs[0], "float64", "dist-gloo-2", shards=(2, 4))
    undeclared = wrap_torch(functools.partial(dist_adapters.pml_distributed_loss, miner="no miner", efficient=False),
                            name="pml without the declaration", spec=adapter.specs, dtypes=("float64",),
                            targets=("dist-gloo-2",))
    with pytest.raises(AdapterFailure, match=r"rank [01] of 2 died with signal 6 \(SIGABRT\)"):
        call_adapter(undeclared, X, Y, adapter.specs[0], "float64", "dist-gloo-2", shards=(2, 4), timeout=30)


@pytest.mark.parametrize("shards", [(2, 4), (1, 5), (1, 1, 4), (2, 3, 1)], ids=str)
def test_inhouse_on_the_gathered_batch_conforms_on_any_layout(shards):
    adapter = BY_NAME["inhouse.torch.distributed"]
    device = f"dist-gloo-{len(shards)}"
    for spec in adapter.specs:
        oracle = reference.evaluate(X, Y, spec)
        out = call_adapter(adapter, X, Y, spec, "float64", device, shards=shards)
        assert out.loss == pytest.approx(oracle.loss, rel=1e-12)
        assert relative(out.grad, oracle.grad) < 1e-12
        assert len(set(distributed.last_call().rank_losses)) == 1  # bit for bit: one gathered batch, one order


def test_each_adapter_gives_its_ranks_a_call_that_travels_by_pickle():
    """The engine shards the batch; an adapter gives only what a rank runs, its call checked here as run checks it."""
    for adapter in dist_adapters.ADAPTERS:
        for device in TARGETS:
            pickle.dumps(adapter.rank_call(adapter.specs[0], "float64", device))
    with pytest.raises(ValueError, match="does not claim"):
        BY_NAME["inhouse.torch.distributed"].rank_call(reference.Spec(mining="triplets"), "float64", "dist-gloo-2")
