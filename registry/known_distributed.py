"""Known divergences of losses over a batch sharded across processes: pytorch-metric-learning's DistributedLossWrapper."""
from __future__ import annotations

import numpy as np

from contract.batch import Regression

from .entry import Divergence

# Six rows, one of three classes on each rank at W = 2 and 3 (equal shards, as PML needs): every PML distributed
# spec has a loss above 0.01 and a decision gap above 1e-3 on it, and efficient=True misses the oracle's loss and
# gradient by over 27% at both world sizes (found by a search over random seeds).
PML_DISTRIBUTED_BATCH = Regression(
    np.array([[-0.65, -0.17, 1.66], [0.66, -1.64, -0.01], [-0.62, 0.15, -1.61], [0.24, 0.24, 1.58],
              [0.32, 0.51, -1.49], [2.25, -1.92, 1.1]]),
    np.array([0, 0, 2, 1, 2, 1]), "six rows, three classes, shared by two or three ranks",
    "a non-zero loss for every PML distributed spec, far from every decision",
    reaches={"mining": ("batch_all", "batch_hard", "semi_hard_all"), "normalize": True, "margin": (0.05, 0.2),
             "reduction": "mean_nonzero"},
)

ENTRIES: tuple[Divergence, ...] = (
    Divergence(
        id="pml-distributed-reports-world-size-times-the-loss",
        confirmed_by="tests/adapters/test_adapter_distributed.py::test_efficient_false_reports_world_size_times_the_loss_with_the_whole_batch_gradient",
        adapter="pml.DistributedLossWrapper(*, efficient=False)",
        kind="semantics",
        reason="Every rank computes the loss of the whole gathered batch (its own rows carrying the gradient) and "
        "returns loss * world_size, so that DDP's gradient averaging gives the whole-batch gradient: G conforms "
        "(measured: 7e-16 relative in float64 at W = 2 and 3), and the value every rank reports is W times the loss "
        "(exactly 2.000 and 3.000 times the oracle's). Logging that value logs W times the loss.",
        link="KevinMusgrave/pytorch-metric-learning src/pytorch_metric_learning/utils/distributed.py "
        "DistributedLossWrapper.forward_regular_loss (return loss * world_size); docs/distributed.md",
        target="dist-gloo-*",
        check="loss",
        regressions=(PML_DISTRIBUTED_BATCH,),
    ),
    Divergence(
        id="pml-distributed-efficient-local-anchors",
        confirmed_by="tests/adapters/test_adapter_distributed.py::test_efficient_true_takes_local_anchors_and_changes_loss_and_gradient",
        adapter="pml.DistributedLossWrapper(*, efficient=True)",
        kind="semantics",
        reason="efficient=True: rank r's anchors are its own rows, its positives and negatives the gathered batch "
        "(gradient through its own rows only), reduced over rank r's own terms, times W. A term whose positive or "
        "negative lies on another rank gives that row no gradient, and each rank averages over its own non-zero "
        "terms: G is not the gradient of the whole-batch loss (relative error median 0.75 to 1.5, up to 4 over random "
        "batches at W = 2 and 3), nor of any spec; the reported loss is W times rank 0's local mean, and the ranks "
        "report different values.",
        link="KevinMusgrave/pytorch-metric-learning src/pytorch_metric_learning/utils/distributed.py "
        "(efficient=True: get_indices_tuple, remove_self_comparisons; its docs: gradients will not be equal); "
        "docs/distributed.md",
        target="dist-gloo-*",
        check=("loss", "grad"),
        regressions=(PML_DISTRIBUTED_BATCH,),
    ),
)
