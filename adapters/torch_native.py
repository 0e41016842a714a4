"""Plain PyTorch: `nn.TripletMarginLoss`, the hard-triplet loss built on `nn.MarginRankingLoss` (seed 001),
and a vectorised batch-hard loss on `torch.cdist`.

Facts these adapters rest on (docs/upstream/pytorch.md, section 3):
  * `TripletMarginLoss` measures ||a - p + eps||, eps = 1e-6 added to every coordinate of the difference
    (aten/src/ATen/native/Distance.cpp `pairwise_distance`; pytorch/pytorch#61538, open): d(x, x) =
    eps * sqrt(D), not 0, and d(a, p) != d(p, a). It refuses margin <= 0. Registered in `divergences`.
  * `torch.cdist` uses the Gram expansion when either side has more than 25 rows (compute_mode
    'use_mm_for_euclid_dist_if_necessary'), the direct difference kernel otherwise; its backward gives
    0 at zero distance. On the CPU the direct kernel has no float16/bfloat16 implementation, so the
    cdist-based adapters claim float32 and float64 only.
"""
from __future__ import annotations

from reference import Spec

from contract.family import Family
from .wrap import wrap_torch

FAMILY = Family(module="torch_native", library="PyTorch", source="pytorch/pytorch", prefix="torch.", cuda=True,
                gpu=True, migration=4, benchmarks=("torch.naive",))

TARGETS = ("cpu", "cuda", "cuda-tf32")  # cuda-tf32: float32 cells only (contract/targets.py)


def triplet_margin_loss(embeddings, labels, triplets, spec):
    """torch.nn.TripletMarginLoss over the given (anchor, positive, negative) index triples."""
    import torch

    anchor, positive, negative = embeddings[triplets].unbind(dim=1)
    return torch.nn.TripletMarginLoss(margin=spec.margin)(anchor, positive, negative)


def margin_ranking_hard(embeddings, labels, spec):
    """Seed 001 (WilliamYWY/TripletLoss-note): per anchor the largest distance to its own class, the
    anchor itself included, and the smallest to any other class, then
    MarginRankingLoss(margin)(d_an, d_ap, ones) = mean_a [d_ap - d_an + m]+.

    The seed measured distances with scipy's pdist (exact, no Gram expansion); torch.cdist's direct kernel
    is the autograd-capable equivalent, and cosine is 1 - the dot product of the normalised rows, not
    clamped, as pdist(..., "cosine") gives it. The per-anchor selection keeps the seed's boolean indexing,
    so an anchor without any other-class point meets the seed's own failure (min of an empty tensor).
    """
    import torch

    if spec.distance == "cosine":
        unit = torch.nn.functional.normalize(embeddings, dim=1)
        dist = 1 - unit @ unit.T
    else:
        dist = torch.cdist(embeddings, embeddings, compute_mode="donot_use_mm_for_euclid_dist")
    same = labels[:, None] == labels[None, :]
    hardest_positive = torch.stack([row[mask].max() for row, mask in zip(dist, same)])
    hardest_negative = torch.stack([row[~mask].min() for row, mask in zip(dist, same)])
    ranking = torch.nn.MarginRankingLoss(margin=spec.margin)
    return ranking(hardest_negative, hardest_positive, torch.ones_like(hardest_positive))


def cdist_batch_hard(embeddings, labels, spec):
    """Batch hard over masks on one torch.cdist matrix (default compute mode), mean over every anchor.

    An anchor without a positive takes hp = 0 (the masked row is all zeros); one without a negative takes
    the farthest point of its row, as TF-Addons' masked minimum does.
    """
    import torch

    dist = torch.cdist(embeddings, embeddings)
    if spec.distance == "squared_euclidean":
        dist = dist**2
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    hardest_positive = torch.where(positive, dist, torch.zeros_like(dist)).max(dim=1).values
    row_max = dist.max(dim=1, keepdim=True).values
    hardest_negative = torch.where(same, row_max, dist).min(dim=1).values
    excess = hardest_positive - hardest_negative
    terms = torch.nn.functional.softplus(excess) if spec.soft else torch.relu(excess + spec.margin)
    return terms.mean()


ADAPTERS = [
    wrap_torch(
        triplet_margin_loss,
        name="torch.TripletMarginLoss",
        spec=[Spec(mining="triplets", margin=m, reduction="mean", empty="nan") for m in (1.0, 0.2)],
        dtypes=("float64", "float32", "float16", "bfloat16"),
        targets=TARGETS,
        notes="Explicit triples, mean over them (NaN for none). Distances carry eps = 1e-6 inside the norm: "
        "d(x, x) = 1e-6 * sqrt(D). Margin must be > 0.",
        source="pytorch/pytorch aten/src/ATen/native/Loss.cpp triplet_margin_loss; Distance.cpp pairwise_distance",
    ),
    wrap_torch(
        margin_ranking_hard,
        name="seed001.MarginRankingLoss-hard",
        spec=[Spec(mining="batch_hard", distance=d, margin=0.3) for d in ("euclidean", "cosine")],
        dtypes=("float64", "float32"),
        targets=TARGETS,
        notes="Seed 001's hard-triplet loss: max over the anchor's class (itself included, so no positive "
        "gives hp = 0), min over other classes, nn.MarginRankingLoss(0.3). A batch of one class raises "
        "(min of an empty tensor).",
        source="WilliamYWY/TripletLoss-note README (seed 001); torch.nn.MarginRankingLoss",
    ),
    wrap_torch(
        cdist_batch_hard,
        name="torch.cdist-batch-hard",
        spec=[
            Spec(mining="batch_hard", distance="euclidean", margin=1.0),
            Spec(mining="batch_hard", distance="euclidean", soft=True),
            Spec(mining="batch_hard", distance="squared_euclidean", margin=1.0),
        ],
        dtypes=("float64", "float32"),
        targets=TARGETS,
        notes="Vectorised batch hard on torch.cdist (Gram expansion above 25 rows), mean over all anchors.",
        precision="gram",
        source="torch.cdist (aten/src/ATen/native/Distance.cpp); masks as in TF-Addons triplet_hard_loss",
    ),
]
