"""Implementations found in the wild (the project's seeds), written again here from their published
algorithm or formula, not copied:

  * seed 002: a plain-Python semi-hard loop posted to reproduce TF-Addons' `triplet_semihard_loss`
    (loss only, float32 distances, O(N^3) Python loops);
  * seed 003 / docs/upstream/pytorch.md, section 2: Quaterion's collapse-prevention batch-hard loss,
    relu((hp - hn) / mean(hn) + m) (qdrant/quaterion quaterion/loss/triplet_loss.py, TripletLoss(mining="hard")).

Seed 001 (batch hard on nn.MarginRankingLoss) is a torch idiom and lives in `torch_native`.
"""
from __future__ import annotations

import numpy as np

from reference import Spec

from contract.family import Family
from .wrap import wrap_numpy, wrap_torch

FAMILY = Family(module="seeds", library="seeds (implementations found in the wild)",
                source="the project's seeds, written again here from their published algorithm", cuda=True)


def semihard_loop(embeddings, labels, spec):
    """Seed 002's loop. For every ordered positive pair (a, p): among the negatives inside the margin
    window d_ap < d_an < d_ap + m take the nearest; if there is none, take the farthest negative of the
    anchor, starting that running maximum from 1e-10 as the seed does. Term [d_ap - d_an + m]+; divided by
    the number of pairs ("normalized") for reduction mean, and 0 when there is no pair at all.

    Why this is TF-Addons' semi_hard: a negative farther than d_ap + m gives a zero term, and so does the
    farthest negative whenever some negative lies beyond d_ap + m, so restricting the nearest-farther
    negative to the window changes no term. Where they differ: no positive pair gives 0 here and NaN in
    TF-Addons (empty="zero" against "nan"), and an anchor without negatives gives d_ap + m - 1e-10
    against d_ap + m, below any tolerance.
    """
    x = np.asarray(embeddings)
    n = len(x)
    dist = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        for j in range(i + 1, n):
            diff = x[i] - x[j]
            dist[i, j] = dist[j, i] = np.sum(diff * diff)
    if spec.distance == "euclidean":
        dist = np.sqrt(dist)
    margin = spec.margin
    total, pairs = 0.0, 0
    for a in range(n):
        for p in range(n):
            if a == p or labels[a] != labels[p]:
                continue
            nearest_in_window, farthest = None, 1e-10
            for neg in range(n):
                if labels[neg] == labels[a]:
                    continue
                farthest = max(farthest, dist[a, neg])
                in_window = dist[a, p] < dist[a, neg] < dist[a, p] + margin
                if in_window and (nearest_in_window is None or dist[a, neg] < nearest_in_window):
                    nearest_in_window = dist[a, neg]
            chosen = farthest if nearest_in_window is None else nearest_in_window
            total += max(dist[a, p] - chosen + margin, 0.0)
            pairs += 1
    return total / pairs if spec.reduction == "mean" and pairs else total


def quaterion_hard(embeddings, labels, spec):
    """Quaterion TripletLoss(mining="hard") from its published formula: hp = the farthest positive (0 for
    an anchor without one), hn = the nearest negative (the row's farthest point when there is none, from
    adding the row maximum to masked entries), loss = mean over every anchor of relu((hp - hn) / mean(hn) + m).

    Quaterion's cosine distance is (1 - cos) / 2; the suite's is 1 - cos. The factor 1/2 scales hp, hn and
    mean(hn) alike, so the scaled loss (and its gradient) does not see it (tests/adapters/test_adapter_seeds.py).
    At exact collapse mean(hn) = 0 and the loss is 0/0 = NaN, as in Quaterion (no epsilon since #91).
    """
    import torch

    if spec.distance == "cosine":
        unit = torch.nn.functional.normalize(embeddings, dim=1)
        dist = 1 - (unit @ unit.T + 1) / 2
    else:
        dist = torch.cdist(embeddings, embeddings)
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    hardest_positive = (positive * dist).max(dim=1).values
    row_max = dist.max(dim=1, keepdim=True).values
    hardest_negative = (dist + row_max * same).min(dim=1).values
    scaled = (hardest_positive - hardest_negative) / hardest_negative.mean()
    return torch.relu(scaled + spec.margin).mean()


ADAPTERS = [
    wrap_numpy(
        semihard_loop,
        name="seed002.semihard-loop",
        spec=[
            Spec(mining="semi_hard", distance=d, margin=1.0, reduction=reduction)
            for d in ("squared_euclidean", "euclidean")
            for reduction in ("mean", "sum")
        ],
        dtypes=("float32",),
        notes="TF-Addons semi-hard re-derived in Python loops over float32 distances; loss only. Returns 0, "
        "not NaN, for a batch without a positive pair.",
        source="seed 002 (a Stack Overflow answer re-implementing tfa.losses.triplet_semihard_loss)",
    ),
    wrap_torch(
        quaterion_hard,
        name="seed003.quaterion-formula(hard)",
        spec=[Spec(mining="batch_hard", distance=d, margin=0.5, scaled=True) for d in ("euclidean", "cosine")],
        dtypes=("float64", "float32"),
        targets=("cpu", "cuda"),
        notes="Seed 003's system, re-derived from Quaterion's published formula (the real library: adapters/quaterion.py, "
        "tox -e quaterion). Collapse prevention: [(hp - hn) / mean(hn) + m]+ over every anchor, Quaterion's default "
        "margin 0.5; NaN at exact collapse. Cosine is Quaterion's (1 - cos) / 2, which the scaling cancels.",
        source="qdrant/quaterion quaterion/loss/triplet_loss.py (mining='hard'); docs triplet_loss_trick.rst",
        precision="gram",  # torch.cdist: the Gram expansion above 25 rows
    ),
]
