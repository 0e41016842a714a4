"""Losses over a batch sharded across processes: pytorch-metric-learning's distributed wrappers and our in-house
losses on the all-gathered batch, on the targets dist-gloo-2 and dist-gloo-3 (contract/targets.py).

What a call means (docs/distributed.md): rank r runs the loss on its shard X_r and returns L_r and dL_r/dX_r; the
call reports rank 0's loss and G = (1/W) concat_r dL_r/dX_r, what DDP's gradient averaging trains on, and both are
judged against the oracle on the whole batch.

* pytorch-metric-learning (utils/distributed.py; docs/upstream/pytorch.md, section 1.6): `DistributedLossWrapper` around
  `TripletMarginLoss(margin, distance)` with no miner, with `BatchHardMiner` and with
  `TripletMarginMiner("semihard")` (each through `DistributedMinerWrapper`), each with efficient=False and
  efficient=True. The spec mapping is adapters/pml.py's (the same distance objects, margins and miners).
  efficient=False: every rank computes the loss of the gathered batch, only its own rows carrying the gradient,
  and returns loss * world_size (to undo DDP's averaging): G is the whole-batch gradient, the reported loss W
  times the loss (registered). efficient=True: a rank's anchors are its own rows, its candidates the gathered
  batch, and it returns W times the mean over its own anchors (registered: both loss and gradient differ).
  PML's all_gather allocates each peer's buffer like the rank's own shard, so uneven shards are not an input it
  takes (gloo aborts, or reads another rank's rows into the wrong shape): these adapters declare equal_shards,
  and the strategies draw even layouts for them.
  `DistributedLossWrapper(NTXentLoss)` too, the softmax family's all-gather (the same two registered differences).
* `inhouse.torch.distributed`: inhouse/torch_losses.py metric_loss on the gathered batch (the triplet losses,
  contrastive, and the softmax family's ntxent and supcon, whose all-gather must carry the gradient), gathered with
  torch.distributed.nn.functional.all_gather, whose backward sums every rank's gradient back to the rank that
  owns the rows: every rank's loss is the whole-batch loss, and G its gradient. Conforms with no registry entry.

Every loss function here is module-level (or a partial of one): the ranks import it by name.
"""
from __future__ import annotations

import functools
import warnings

from reference import Spec

from . import pml
from contract.family import Family
from .wrap import wrap_torch

FAMILY = Family(module="distributed", library="torch.distributed (pytorch-metric-learning's wrappers, inhouse.torch)",
                source="KevinMusgrave/pytorch-metric-learning utils/distributed.py; inhouse/ in this repository",
                requires=("pytorch-metric-learning",))

TARGETS = ("dist-gloo-2", "dist-gloo-3")
DTYPES = ("float64", "float32")
# Each distributed example is a round trip through W processes (about 15 ms at W = 2, 30 ms at W = 3 on 2 cores):
# PML's default distance (L2-normalised euclidean) and cosine, not all four of adapters/pml.py's forms.
PML_DISTANCES = (("euclidean", True), ("cosine", True))
MINERS = {"no miner": pml.no_miner, "BatchHardMiner": pml.batch_hard_miner,
          "TripletMarginMiner(semihard)": pml.semihard_miner}


def gather_rows(tensor):
    """Every rank's rows in rank order, the gradient flowing back to the rank that owns them; shards may be uneven
    (all_gather needs one size: pad to the largest shard, gather, cut the padding off)."""
    import torch
    import torch.distributed as dist
    import torch.distributed.nn.functional as differentiable

    sizes = [torch.zeros((), dtype=torch.int64) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor(len(tensor)))
    padding = tensor.new_zeros((int(max(sizes)) - len(tensor), *tensor.shape[1:]))
    with warnings.catch_warnings():  # deprecated for a private API; it is the public one that carries gradients
        warnings.simplefilter("ignore", FutureWarning)
        parts = differentiable.all_gather(torch.cat([tensor, padding]))
    return torch.cat([part[: int(size)] for part, size in zip(parts, sizes)])


def inhouse_distributed_loss(embeddings, labels, spec):
    from inhouse.torch_losses import metric_loss

    return metric_loss(gather_rows(embeddings), gather_rows(labels), spec)


def pml_distributed_loss(embeddings, labels, spec, miner: str, efficient: bool):
    """DistributedLossWrapper(TripletMarginLoss(margin, distance), efficient) on the triplets that
    DistributedMinerWrapper(miner, efficient) selects (every valid triplet without a miner)."""
    from pytorch_metric_learning import losses
    from pytorch_metric_learning.utils.distributed import DistributedLossWrapper, DistributedMinerWrapper

    distance = pml.distance_for(spec)
    chosen = MINERS[miner](distance, spec)
    mined = None if chosen is None else DistributedMinerWrapper(chosen, efficient=efficient)(embeddings, labels)
    loss = DistributedLossWrapper(losses.TripletMarginLoss(margin=spec.margin, distance=distance), efficient=efficient)
    return loss(embeddings, labels, mined)


def pml_distributed_ntxent(embeddings, labels, spec, efficient: bool):
    """DistributedLossWrapper(NTXentLoss(temperature), efficient): the softmax family's all-gather, PML's way."""
    from pytorch_metric_learning import losses
    from pytorch_metric_learning.utils.distributed import DistributedLossWrapper

    return DistributedLossWrapper(losses.NTXentLoss(temperature=spec.temperature), efficient=efficient)(embeddings,
                                                                                                          labels)


def _pml_ntxent_adapter(efficient: bool):
    return wrap_torch(
        functools.partial(pml_distributed_ntxent, efficient=efficient),
        name=f"pml.DistributedLossWrapper(NTXentLoss, efficient={efficient})",
        spec=[Spec(mining="ntxent", distance="cosine", temperature=0.07)],
        dtypes=DTYPES,
        targets=TARGETS,
        notes=f"pytorch-metric-learning's DistributedLossWrapper(NTXentLoss(temperature=0.07), efficient={efficient}) "
        "on W gloo ranks: " + ("the whole gathered batch on every rank, returned times W." if not efficient else
                               "a rank's anchors are its own rows, its candidates the gathered batch; returned times "
                               "W.") + " Equal shards only (PML's all_gather assumes them).",
        source=pml.SOURCE + "utils/distributed.py",
        requires=("pytorch_metric_learning",),
        extra={"equal_shards": True},
    )


def _pml_specs(miner: str) -> list[Spec]:
    margin, fields = {"no miner": (0.05, {"mining": "batch_all"}),
                      "BatchHardMiner": (0.05, {"mining": "batch_hard", "anchors": "valid"}),
                      "TripletMarginMiner(semihard)": (0.2, {"mining": "semi_hard_all"})}[miner]
    return [s for s in pml.specs(margin, **fields) if (s.distance, s.normalize) in PML_DISTANCES]


def pml_name(miner: str, efficient: bool) -> str:
    with_miner = "" if miner == "no miner" else f"+{miner}"
    return f"pml.DistributedLossWrapper(TripletMarginLoss{with_miner}, efficient={efficient})"


def _pml_adapter(miner: str, efficient: bool):
    return wrap_torch(
        functools.partial(pml_distributed_loss, miner=miner, efficient=efficient),
        name=pml_name(miner, efficient),
        spec=_pml_specs(miner),
        dtypes=DTYPES,
        targets=TARGETS,
        notes=f"pytorch-metric-learning's distributed wrappers (efficient={efficient}), {miner}, on W gloo ranks; "
        + ("the whole gathered batch on every rank, returned times W." if not efficient else
           "a rank's anchors are its own rows, its candidates the gathered batch; returned times W.")
        + " Equal shards only (PML's all_gather assumes them).",
        source=pml.SOURCE + "utils/distributed.py",
        requires=("pytorch_metric_learning",),
        precision="gram",  # LpDistance is torch.cdist, as in adapters/pml.py
        extra={"equal_shards": True},
    )


INHOUSE_MININGS = ("batch_all", "batch_hard", "semi_hard", "semi_hard_all", "contrastive", "ntxent", "supcon")


def _inhouse_specs() -> list[Spec]:
    """The first of inhouse.torch's covering specs for each mining a shard can run (not triplets: index triples
    name rows of the whole batch; not the pairs layout: its rows pair up across the whole batch, not a shard)."""
    from .inhouse import COVERING_SPECS

    return [next(s for s in COVERING_SPECS if s.mining == mining) for mining in INHOUSE_MININGS]


def _inhouse_adapter():
    return wrap_torch(
        inhouse_distributed_loss,
        name="inhouse.torch.distributed",
        spec=_inhouse_specs(),
        dtypes=DTYPES,
        targets=TARGETS,
        notes="inhouse.torch's metric_loss on the batch gathered with torch.distributed.nn.functional.all_gather "
        "(padded for uneven shards): every rank's loss is the whole-batch loss, and its backward sums each rank's "
        "gradient back to the rows' owner.",
        source="adapters/distributed.py",
    )


ADAPTERS = [
    *(_pml_adapter(miner, efficient) for miner in MINERS for efficient in (False, True)),
    *(_pml_ntxent_adapter(efficient) for efficient in (False, True)),
    _inhouse_adapter(),
]
