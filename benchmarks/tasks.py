"""What the benchmark measures: the tasks, each a loss of the vocabulary in the configuration its peers compute, and
the batch each task is measured on.

A task's batch follows its loss's record (reference/losses.py `layout`): standard normal float32 embeddings with
N // 8 classes of 8 rows, or, for a loss that reads the pairs layout (npairs, multiple_negatives), N // 2 pairs:
rows 0..B-1 the anchors, row B + i the positive of anchor i, both rows carrying the pair's label, every pair its own
class (pytorch-metric-learning's NPairsLoss keeps one pair per class where TF-Addons' npairs_loss spreads the
target over all of them: they compute the same loss only there).
"""
from __future__ import annotations

import numpy as np

from reference import LOSSES, Spec

TASKS = {
    # TF-Addons triplet_hard_loss(margin=1.0)
    "batch_hard": Spec(mining="batch_hard", distance="euclidean", margin=1.0),
    # TF-Addons triplet_semihard_loss(margin=1.0)
    "semi_hard": Spec(mining="semi_hard", distance="euclidean", margin=1.0, empty="nan"),
    # pytorch-metric-learning TripletMarginMiner("semihard", margin=1) + TripletMarginLoss(margin=1), mean
    "semi_hard_all": Spec(mining="semi_hard_all", distance="euclidean", margin=1.0),
    # pytorch-metric-learning TripletMarginLoss() defaults: normalized, margin 0.05, AvgNonZeroReducer
    "batch_all": Spec(mining="batch_all", distance="euclidean", normalize=True, margin=0.05, reduction="mean_nonzero"),
    # TF-Addons contrastive_loss(margin=1.0) over every pair i < j (no sentence-transformers or PML loss computes it:
    # adapters/pml.py says why), mean
    "contrastive": Spec(mining="contrastive", distance="euclidean", margin=1.0),
    # TF-Addons lifted_struct_loss(margin=1.0); pytorch-metric-learning LiftedStructureLoss(neg_margin=1, pos_margin=0)
    "lifted": Spec(mining="lifted", distance="euclidean", margin=1.0),
    # TF-Addons npairs_loss on the cosine logits a porter passes (adapters/tfa.py); pytorch-metric-learning
    # NPairsLoss() (DotProductSimilarity of unit rows); one pair per class, where the two agree
    "npairs": Spec(mining="npairs", distance="cosine"),
    # sentence-transformers MultipleNegativesRankingLoss() defaults: scale 20 (t = 0.05), cos_sim
    "multiple_negatives": Spec(mining="multiple_negatives", distance="cosine", temperature=0.05),
    # pytorch-metric-learning NTXentLoss() defaults: temperature 0.07, cosine
    "ntxent": Spec(mining="ntxent", distance="cosine", temperature=0.07),
    # pytorch-metric-learning SupConLoss() defaults: temperature 0.1, AvgNonZeroReducer
    "supcon": Spec(mining="supcon", distance="cosine", temperature=0.1, reduction="mean_nonzero"),
    # pytorch-metric-learning MultiSimilarityLoss() defaults: alpha 2, beta 50, base 0.5, every pair
    "multi_similarity": Spec(mining="multi_similarity", distance="cosine"),
    # pytorch-metric-learning CircleLoss() defaults: m 0.4, gamma 80, AvgNonZeroReducer
    "circle": Spec(mining="circle", distance="cosine", margin=0.4, gamma=80.0, reduction="mean_nonzero"),
}
# The softmax and similarity families' reference beside the matmul (reports/schema.py REFERENCES): the least work
# their loss takes at the in-house precision, the products of a dense gradient over the block of the distance matrix
# it reads (the distances; dL/dd2 back to the rows and to the columns: two more, or one over K + K^T where a square
# block is small enough to keep whole, inhouse/distance_rows.py SYMMETRIC_BYTES; a square block from N = 2048 read by
# its upper triangle, inhouse/triangle.py: half of each), and a float64 exponential per entry of that block (the
# logits keep their low bits in float64). No implementation doing that work is ahead of the
# fastest peer by more than the peer's time over its.
LEAST_WORK_BLOCKS = {"npairs": "pairs", "multiple_negatives": "pairs",  # anchors x positives: a quarter of N x N
                     "ntxent": "square", "supcon": "square", "multi_similarity": "square", "circle": "square"}


def reads_pairs(task: str) -> bool:
    """Whether the task's loss reads the pairs layout (the matmul, not a task, reads no labels)."""
    return task in TASKS and LOSSES[TASKS[task].mining].layout == "pairs"


def batch(task: str, n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The task's batch (module docstring): float32 embeddings [N, D] and int64 labels [N]."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    if not reads_pairs(task):
        return x, rng.permutation(np.arange(n) % max(1, n // 8))
    if n % 2:
        raise ValueError(f"task {task} reads the batch as pairs: N must be even, got N = {n}")
    return x, np.tile(rng.permutation(n // 2), 2)
