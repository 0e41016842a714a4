"""pytorch-metric-learning (PML): `TripletMarginLoss` alone, with `BatchHardMiner`, and with
`TripletMarginMiner("semihard")`; `LiftedStructureLoss`; `NPairsLoss`; `NTXentLoss` (ntxent, and simclr on labels
[0..B-1, 0..B-1]); `SupConLoss`; `MultiSimilarityLoss` alone and with `MultiSimilarityMiner`; `CircleLoss`
(docs/upstream/next-losses.md, sections 1.6-1.8: multi_similarity, multi_similarity_mined with margin = the miner's
epsilon, circle with margin = m; all on CosineSimilarity, the records' cosine distance).

How PML maps onto the vocabulary (docs/upstream/pytorch.md, section 1; src/pytorch_metric_learning/...):
  * the loss is relu(d_ap - d_an + margin) per mined triplet, reduced by `AvgNonZeroReducer` (mean over
    the terms > 0, a graph-connected 0 when there are none): reduction mean_nonzero, empty zero;
  * `smooth_loss=True` takes softplus(d_ap - d_an + margin) instead: with margin=0 that is soft (the soft
    margin drops m), still reduced by AvgNonZeroReducer, so mean_nonzero over soft terms: every term counts
    in exact arithmetic, and a term the dtype rounds to 0 (float32: x < -87.3, where softplus falls below
    the smallest normal number; torch keeps subnormals, TF flushes them) drops out of PML's count. Both are
    admissible (reference/gaps.py soft_underflow, engine/ambiguity.py `underflow_resolution`); a term the
    dtype holds as a normal number must count;
  * its distance `LpDistance(normalize_embeddings=True)` L2-normalises first (normalize=True); with
    normalize_embeddings=False it does not; `power=2` squares the distance (squared_euclidean);
    `CosineSimilarity` is a similarity (PML inverts the margin: relu(s_an - s_ap + m)), which is exactly
    our cosine distance 1 - s rearranged, for the loss and for both miners;
  * no miner: every valid triplet (batch_all); `BatchHardMiner`: per anchor with a positive and a
    negative, the farthest positive and nearest negative (batch_hard, anchors valid);
    `TripletMarginMiner("semihard", margin=m)`: every triplet with 0 < d_an - d_ap <= m (semi_hard_all).
    The miner and the loss get the SAME margin and the same distance object: semi_hard_all's window and
    its hinge share one m.

`LiftedStructureLoss(neg_margin=m, pos_margin=0)` (losses/lifted_structure_loss.py; docs/upstream/next-losses.md,
section 1.1) is lifted: per ordered positive pair (a, p), J = log of the sum of e^(neg_margin - d) over the negative
pairs of a and of p, plus d_ap - pos_margin, the term [J]+^2 / 2, mean over ordered positive pairs, which is the
spec's mean over unordered pairs i < j (each J is symmetric in a and p); a batch without a positive pair or without a
negative pair gives 0 (empty zero; one class: every J = -inf in the spec, term 0). The margins enter J only through
their difference, lse(nm - d) + d - pm = lse((nm - pm) - d) + d: the spec's margin is neg_margin - pos_margin. With
`CosineSimilarity` PML inverts both, J = lse(s_an - neg_margin) + pos_margin - s_ap, which is the cosine spec's
lse(m - d_an) + d_ap (d = 1 - s) with m = pos_margin - neg_margin: the defaults (0, 1) are m = -1, no Spec; the
adapter passes pos_margin 1, neg_margin 1 - m (and pos_margin 0, neg_margin m for the distances).
`GeneralizedLiftedStructureLoss` (Hermans et al. 2017, p. 4) is not here because it maps onto no Spec: per anchor
[lse over its positives of (d_ap - pos_margin) + lse over its negatives of (neg_margin - d_an)]+, unsquared, mean
over all N anchors, where an empty set's lse is 0 (so a one-class batch is not 0: 2.35772 on next-losses.md's
fixture; lifted's terms are squared, per positive pair, and pool both rows' negatives).

`NPairsLoss()` (losses/n_pairs_loss.py; docs/upstream/next-losses.md, section 1.3) builds its pairs from the labels:
of every class with two rows or more it keeps the first ordered positive pair (row-major), scores anchors x those
positives with its distance (negated unless a similarity: `DotProductSimilarity` of normalised rows by default, the
cosine, whose softmax is the spec's -D; `LpDistance` gives -D), and takes the cross-entropy against each anchor's own
positive, mean over the pairs. In the pairs layout with one pair per class that is npairs; where pairs share a class
it keeps one of them (the first two rows of the class, both anchors), where TF-Addons spreads the target over every
positive of the class: registered.

`ContrastiveLoss` is not here because it maps onto no Spec: it takes relu(d - pos_margin) over positive
pairs and relu(neg_margin - d) over negative pairs, both unsquared, over ordered pairs (i, j) and (j, i),
reduces the two sets separately with AvgNonZero and adds the two means, where `contrastive` is one
mean of y d^2 + (1 - y)[m - d]+^2 over unordered pairs (tests/adapters/test_adapter_pml.py shows it).

dtypes: float32 and float64. On the CPU, LpDistance sends float16 through F.pairwise_distance
(eps = 1e-6 inside the norm) and bfloat16 through torch.cdist, whose direct kernel rejects bfloat16 for
batches of 25 rows or fewer.
"""
from __future__ import annotations

from reference import LOGIT_SCALES, Spec

from contract.family import Family
from .wrap import wrap_torch

FAMILY = Family(module="pml", library="pytorch-metric-learning", source="KevinMusgrave/pytorch-metric-learning",
                prefix="pml.", requires=("pytorch-metric-learning",), cuda=True, gpu=True, migration=3,
                benchmarks=("pytorch-metric-learning",))

SOURCE = "KevinMusgrave/pytorch-metric-learning src/pytorch_metric_learning/"
DISTANCES = (
    ("euclidean", True),
    ("euclidean", False),
    ("squared_euclidean", True),
    ("cosine", True),
)


def distance_for(spec):
    """The PML distance object that measures `spec.distance` (with or without normalisation)."""
    from pytorch_metric_learning import distances

    if spec.distance == "cosine":
        return distances.CosineSimilarity()
    power = 2 if spec.distance == "squared_euclidean" else 1
    return distances.LpDistance(normalize_embeddings=spec.normalize, power=power)


def no_miner(distance, spec):
    return None


def batch_hard_miner(distance, spec):
    from pytorch_metric_learning import miners

    return miners.BatchHardMiner(distance=distance)


def semihard_miner(distance, spec):
    from pytorch_metric_learning import miners

    return miners.TripletMarginMiner(margin=spec.margin, type_of_triplets="semihard", distance=distance)


def triplet_margin_loss(make_miner):
    """fn(embeddings, labels, spec) running TripletMarginLoss(margin=m, distance) on the triplets `make_miner`
    selects (all valid triplets when it gives no miner); smooth_loss=True for a soft spec, whose margin is 0."""

    def loss(embeddings, labels, spec):
        from pytorch_metric_learning import losses

        distance = distance_for(spec)
        miner = make_miner(distance, spec)
        mined = None if miner is None else miner(embeddings, labels)
        triplet_loss = losses.TripletMarginLoss(margin=spec.margin, smooth_loss=spec.soft, distance=distance)
        return triplet_loss(embeddings, labels, mined)

    return loss


def specs(margin, **fields):
    return [
        Spec(distance=distance, normalize=normalize, margin=margin, reduction="mean_nonzero", **fields)
        for distance, normalize in DISTANCES
    ]


def pml_loss(fn, name, spec, notes, source, **declared):
    """The adapter of one PML loss configuration: float64 and float32 (module docstring), every torch target."""
    return wrap_torch(
        fn,
        name=name,
        spec=spec,
        dtypes=("float64", "float32"),
        targets=("cpu", "cuda", "cuda-tf32"),  # cuda-tf32: float32 cells only (contract/targets.py)
        notes=notes,
        source=SOURCE + source,
        requires=("pytorch_metric_learning",),
        free_fields=LOGIT_SCALES,  # every loss reads its scales from the spec
        **declared,
    )


def pml_adapter(name, make_miner, spec, notes, source):
    # LpDistance is torch.cdist: the Gram expansion above 25 rows
    return pml_loss(triplet_margin_loss(make_miner), name, spec, notes, source, precision="gram")


def npairs_loss(embeddings, labels, spec):
    """NPairsLoss() with the distance `spec.distance` measures: its default DotProductSimilarity() (normalised rows:
    the cosine) for cosine, LpDistance for the others."""
    from pytorch_metric_learning import distances, losses

    distance = distances.DotProductSimilarity() if spec.distance == "cosine" else distance_for(spec)
    return losses.NPairsLoss(distance=distance)(embeddings, labels)


def ntxent_loss(embeddings, labels, spec):
    """NTXentLoss(temperature); simclr on labels [0..B-1, 0..B-1] (each pair of views its own class, as SimCLR users
    call it), whatever the batch's labels: then every other row is a negative, Chen et al.'s NT-Xent."""
    import torch
    from pytorch_metric_learning import losses

    if spec.mining == "simclr":
        labels = torch.arange(len(labels) // 2, device=labels.device).repeat(2)
    return losses.NTXentLoss(temperature=spec.temperature)(embeddings, labels)


def supcon_loss(embeddings, labels, spec):
    from pytorch_metric_learning import losses

    return losses.SupConLoss(temperature=spec.temperature)(embeddings, labels)


def multi_similarity_loss(embeddings, labels, spec):
    """MultiSimilarityLoss(alpha, beta, base) on CosineSimilarity (its default), every pair."""
    from pytorch_metric_learning import losses

    return losses.MultiSimilarityLoss(alpha=spec.alpha, beta=spec.beta, base=spec.base)(embeddings, labels)


def mined_multi_similarity_loss(embeddings, labels, spec):
    """MultiSimilarityLoss over the pairs MultiSimilarityMiner(epsilon = spec.margin) keeps (both on CosineSimilarity)."""
    from pytorch_metric_learning import losses, miners

    pairs = miners.MultiSimilarityMiner(epsilon=spec.margin)(embeddings, labels)
    return losses.MultiSimilarityLoss(alpha=spec.alpha, beta=spec.beta, base=spec.base)(embeddings, labels, pairs)


def circle_loss(embeddings, labels, spec):
    """CircleLoss(m, gamma): CosineSimilarity only (it asserts so), weights detached, AvgNonZeroReducer."""
    from pytorch_metric_learning import losses

    return losses.CircleLoss(m=spec.margin, gamma=spec.gamma)(embeddings, labels)


def lifted_structure_loss(embeddings, labels, spec):
    """LiftedStructureLoss(neg_margin=m, pos_margin=0) with the distance `spec.distance` measures; cosine through
    CosineSimilarity with pos_margin=1, neg_margin=1 - m (its margins are inverted: module docstring)."""
    from pytorch_metric_learning import losses

    distance = distance_for(spec)
    if spec.distance == "cosine":
        return losses.LiftedStructureLoss(neg_margin=1.0 - spec.margin, pos_margin=1.0, distance=distance)(
            embeddings, labels)
    return losses.LiftedStructureLoss(neg_margin=spec.margin, pos_margin=0.0, distance=distance)(embeddings, labels)


ADAPTERS = [
    pml_adapter(
        "pml.TripletMarginLoss",
        no_miner,
        specs(0.05, mining="batch_all"),
        "Every valid triplet, mean over the non-zero terms (AvgNonZeroReducer), 0 when none; PML's default "
        "margin 0.05 and L2-normalised embeddings.",
        "losses/triplet_margin_loss.py",
    ),
    pml_adapter(
        "pml.TripletMarginLoss+BatchHardMiner",
        batch_hard_miner,
        specs(0.05, mining="batch_hard", anchors="valid"),
        "BatchHardMiner keeps anchors with a positive and a negative; mean over the non-zero anchor terms.",
        "miners/batch_hard_miner.py",
    ),
    pml_adapter(
        "pml.TripletMarginLoss+TripletMarginMiner(semihard)",
        semihard_miner,
        specs(0.2, mining="semi_hard_all"),
        "Miner and loss share one margin (0.2, the miner's default): triplets with 0 < d_an - d_ap <= m, "
        "mean over the non-zero terms.",
        "miners/triplet_margin_miner.py",
    ),
    pml_adapter(
        "pml.TripletMarginLoss(smooth_loss=True)",
        no_miner,
        specs(0.0, mining="batch_all", soft=True),
        "smooth_loss=True with margin=0: softplus(d_ap - d_an) over every valid triplet, AvgNonZeroReducer's mean "
        "over the terms > 0 (every softplus is, until the dtype rounds it to 0: the soft count, reference/gaps.py "
        "soft_underflow). PML's default margin 0.05 would give softplus(d_ap - d_an + 0.05), which no Spec is.",
        "losses/triplet_margin_loss.py",
    ),
    pml_loss(
        lifted_structure_loss,
        "pml.LiftedStructureLoss",
        [Spec(mining="lifted", distance=distance, normalize=normalize, margin=1.0, reduction="mean", empty="zero")
         for distance, normalize in DISTANCES],
        "Per ordered positive pair [lse(neg_margin - d over the negatives of both rows) + d_ap]+^2 / 2, mean "
        "over ordered positive pairs (= over unordered ones), 0 without a positive or a negative pair; PML's default "
        "neg_margin 1 and pos_margin 0 (cosine: CosineSimilarity with pos_margin 1, neg_margin 0). A dense "
        "[positive pairs x negative pairs] mask: O(N^4) memory.",
        "losses/lifted_structure_loss.py",
        precision="gram",  # LpDistance is torch.cdist: the Gram expansion above 25 rows
    ),
    pml_loss(
        npairs_loss,
        "pml.NPairsLoss",
        [Spec(mining="npairs", distance=distance) for distance in ("cosine", "euclidean", "squared_euclidean")],
        "The first positive pair of each class (row-major), cross-entropy of anchors x those positives "
        "(DotProductSimilarity of normalised rows by default: cosine; LpDistance negated) against the anchor's own "
        "positive, mean over the pairs; 0 with fewer than two pairs. Pairs sharing a class: one of them is kept.",
        "losses/n_pairs_loss.py",
        precision="gram",  # LpDistance is torch.cdist: the Gram expansion above 25 rows
    ),
    pml_loss(
        ntxent_loss,
        "pml.NTXentLoss",
        [Spec(mining=mining, distance="cosine", temperature=t) for mining in ("ntxent", "simclr") for t in (0.07, 0.5)],
        "Per ordered positive pair, -log(e^(s_ap / t) / (e^(s_ap / t) + sum over the anchor's negatives)) of "
        "cosine similarities, mean over ordered positive pairs, 0 without a positive or a negative pair; its "
        "default temperature 0.07. A + finfo.tiny inside the log caps a pair at 87.3 (float32), past the logit gaps "
        "cosine reaches at these temperatures. simclr: on labels [0..B-1, 0..B-1], SimCLR's two views.",
        "losses/ntxent_loss.py"
    ),
    pml_loss(
        supcon_loss,
        "pml.SupConLoss",
        [Spec(mining="supcon", distance="cosine", temperature=t, reduction="mean_nonzero") for t in (0.1, 0.5)],
        "Per anchor with a positive, the mean over its positives of -log softmax over every other row of "
        "cosine similarity / t (Khosla et al.'s L_out, no t / base_t factor), AvgNonZeroReducer (mean over the anchors "
        "whose term is > 0); its default temperature 0.1.",
        "losses/supcon_loss.py"
    ),
    pml_loss(
        multi_similarity_loss,
        "pml.MultiSimilarityLoss",
        [Spec(mining="multi_similarity", distance="cosine"),
              Spec(mining="multi_similarity", distance="cosine", beta=40.0)],
        "Per anchor (1/alpha) log(1 + sum_p e^(-alpha (s_ap - base))) + (1/beta) log(1 + sum_n e^(beta (s_an - "
        "base))) of cosine similarities over every pair (an empty set adds 0), mean over all anchors; its defaults "
        "alpha 2, beta 50, base 0.5, and the authors' beta 40. No mining inside: the paper's selection is the miner.",
        "losses/multi_similarity_loss.py"
    ),
    pml_loss(
        mined_multi_similarity_loss,
        "pml.MultiSimilarityLoss+MultiSimilarityMiner",
        [Spec(mining="multi_similarity_mined", distance="cosine", margin=0.1),
              Spec(mining="multi_similarity_mined", distance="cosine", margin=0.1, beta=40.0)],
        "MultiSimilarityMiner(epsilon=0.1) keeps positives with s_ap - eps < the anchor's largest negative s and "
        "negatives with s_an + eps > its smallest positive s (both strict, without gradient); the loss over those "
        "pairs, mean over all anchors (one with nothing mined counts 0). beta 40 = TF-Similarity's MultiSimilarityLoss.",
        "miners/multi_similarity_miner.py"
    ),
    pml_loss(
        circle_loss,
        "pml.CircleLoss",
        [Spec(mining="circle", distance="cosine", margin=0.4, gamma=80.0, reduction="mean_nonzero"),
              Spec(mining="circle", distance="cosine", margin=0.25, gamma=256.0, reduction="mean_nonzero")],
        "Per anchor with a positive and a negative, softplus(lse_p -gamma [1 + m - s]+ (s - 1 + m) + lse_n gamma "
        "[s + m]+ (s - m)) of cosine similarities, the weights [.]+ detached (Sun et al. eq. 6), AvgNonZeroReducer; "
        "its defaults m 0.4, gamma 80, and the paper's face-recognition m 0.25, gamma 256. CosineSimilarity only.",
        "losses/circle_loss.py"
    ),
]
