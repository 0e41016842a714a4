"""Test-only losses for the distributed targets (tests/engine/test_distributed.py): module-level, so that the ranks,
spawned interpreters, can import them by name. Each misbehaves only when asked by the labels, so one adapter can
fail a call and answer the next."""
from __future__ import annotations

import os
import time

import torch.distributed as dist

import reference
from adapters import wrap_torch

HANG, CRASH = 99, 98  # a label that makes rank 1 hang or die
SPEC = reference.Spec(mining="batch_hard", margin=0.2)
TARGETS = ("dist-gloo-2", "dist-gloo-3")


def rank_weighted_squares(embeddings, labels):
    """L_r = (r + 1) * sum(X_r^2): no communication, so G = (1/W) concat_r 2 (r + 1) X_r shows the assembly."""
    return (dist.get_rank() + 1) * (embeddings * embeddings).sum()


def misbehaving_on_rank_one(embeddings, labels):
    if dist.get_rank() == 1 and HANG in labels.tolist():
        time.sleep(3600)
    if dist.get_rank() == 1 and CRASH in labels.tolist():
        os._exit(3)
    return (embeddings * embeddings).sum()


ASSEMBLY = wrap_torch(rank_weighted_squares, name="test.rank-weighted-squares", spec=SPEC, dtypes=("float64",),
                      targets=TARGETS)
MISBEHAVING = wrap_torch(misbehaving_on_rank_one, name="test.misbehaving-on-rank-one", spec=SPEC,
                         dtypes=("float64",), targets=TARGETS)


def with_triplets(embeddings, labels, triplets):
    return (embeddings * embeddings).sum()


NTXENT = reference.Spec(mining="ntxent", distance="cosine", temperature=0.5)


def ntxent_gathered_without_gradient(embeddings, labels):
    """The classic DDP fault: the other ranks' rows gathered with dist.all_gather, which carries no gradient, and the
    rank's own rows put back in their place; the whole-batch NT-Xent on that. Each rank's gradient then misses
    every term in which its rows are another rank's positive or negative."""
    import torch

    from inhouse.torch_losses import metric_loss

    parts = [torch.zeros_like(embeddings) for _ in range(dist.get_world_size())]
    label_parts = [torch.zeros_like(labels) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, embeddings.detach())
    dist.all_gather(label_parts, labels)
    parts[dist.get_rank()] = embeddings
    return metric_loss(torch.cat(parts), torch.cat(label_parts), NTXENT)


GATHERED_WITHOUT_GRADIENT = wrap_torch(ntxent_gathered_without_gradient, name="test.ntxent-gathered-without-gradient",
                                       spec=NTXENT, dtypes=("float64",), targets=TARGETS)
