"""TensorFlow Similarity 0.17.1 (its last release; tensorflow/similarity): `TripletLoss`, where TF-Addons users
were told to migrate; `MultiSimilarityLoss` (multi_similarity_mined: PML's loss with beta 40 and the miner, which it
builds in), `CircleLoss` (registered: another combination of the same logits) and `SimCLRLoss` (simclr on the pairs
layout's two halves, twice the paper's mean: registered), docs/upstream/next-losses.md 3.1-3.3.

Source: tensorflow_similarity/losses/triplet_loss.py (triplet_loss, TripletLoss), losses/utils.py
(positive_distances, negative_distances, semi_hard_easy_mask, compute_loss, logsumexp), algebra.py
(masked_max, masked_min, build_masks), distances.py in 0.17.1 (distances/{cosine,euclidean}.py on master
dc506d6, same code), losses/metric_loss.py (MetricLoss: a Keras Loss, reduction AUTO = SUM_OVER_BATCH_SIZE).
TripletLoss(distance="cosine", positive_mining_strategy="hard", negative_mining_strategy="semi-hard",
margin=None) gives one term per anchor, averaged over every anchor by Keras. What each part is
(tests/adapters/test_adapter_tf_similarity.py):

  * distances: "euclidean" = sqrt(max(d2, 1e-18)) * [d2 >= 1e-18] with d2 by the Gram expansion (value 0 and
    gradient 0 at zero distance); the mask is cast to float32, so float64, float16 and bfloat16 embeddings are
    rejected (InvalidArgumentError). "squared_euclidean" = max(d2, 0), any float dtype. "cosine" = max(1 - x.y, 0)
    with no normalisation: 1 - cos only on unit rows (its docstring's "from 0 to 1" holds for neither). The
    cosine adapter specs therefore L2-normalise first (tf.math.l2_normalize, as TF-Similarity's MetricEmbedding
    layer does): Spec(normalize=True). No upcast: float16/bfloat16 are computed in their own dtype.
  * masked_max / masked_min work in float64 with an offset of 1e-6: an anchor without a positive gets
    hp = (row minimum) - 1e-6, one without a negative hn = (row maximum) + 1e-6 (float64: visible in the loss).
  * positive "hard" + negative "hard", margin m = batch_hard, anchors all, mean: [hp - hn + m]+ per anchor.
    margin=None = soft: log(exp(-x) + 1) + x with x = hp - hn (its logsumexp with a stop-gradient shift): the
    softplus value and gradient, but exp(-x) overflows for x < -88.7 in float32 (-11.1 in float16, -709 in
    float64): inf where softplus is about 0 (the gradient stays 0).
  * Not claimed, no vocabulary value today (formulas and proposed values in the tests and the issue's report):
    positive "easy" (hp = min_p d_ap; without a positive: row maximum + 1e-6), negative "easy" (hn = max_n d_an),
    and negative "semi-hard": per anchor, the nearest negative with d_an > max_p d_ap (the *hardest* positive's
    distance, whatever the positive strategy), else the farthest negative; an anchor without a negative falls
    back to column 0 of its row. It is not TF-Addons' semi_hard (per ordered positive pair, threshold d_ap,
    mean over pairs, NaN without a pair): they agree only when every class has exactly two members.
"""
from __future__ import annotations

from reference import Spec

from ._tf import load
from contract.family import Family
from .wrap import wrap_tensorflow

FAMILY = Family(module="tf_similarity", library="TF-Similarity", source="tensorflow/similarity", prefix="tfsim.",
                requires=("tensorflow", "tensorflow-similarity"), migration=1)

SOURCE = "tensorflow/similarity tensorflow_similarity/losses/triplet_loss.py, losses/utils.py, algebra.py (0.17.1)"
REQUIRES = ("tensorflow_similarity",)
DTYPES = ("float32", "float64", "float16", "bfloat16")
DISTANCES = {"euclidean": "euclidean", "squared_euclidean": "squared_euclidean", "cosine": "cosine"}


def triplet_loss(positive: str, negative: str):
    """fn(embeddings, labels, spec) running TripletLoss(distance, positive, negative, margin) on the batch; margin
    None (TF-Similarity's soft margin) for a soft spec; rows L2-normalised first for spec.normalize."""

    def loss(embeddings, labels, spec):
        tf = load("tensorflow")
        losses = load("tensorflow_similarity.losses")
        criterion = losses.TripletLoss(
            distance=DISTANCES[spec.distance],
            positive_mining_strategy=positive,
            negative_mining_strategy=negative,
            margin=None if spec.soft else spec.margin,
        )
        rows = tf.math.l2_normalize(embeddings, axis=1) if spec.normalize else embeddings
        return criterion(labels, rows)

    return loss


def hard_specs():
    return [
        Spec(mining="batch_hard", distance=d, normalize=d == "cosine", **form)
        for d in DISTANCES
        for form in ({"margin": 1.0}, {"soft": True})
    ]


def multi_similarity_loss(embeddings, labels, spec):
    """MultiSimilarityLoss(distance="cosine", alpha, beta, epsilon = margin, lmda = base, center=1) on L2-normalised
    rows (its cosine is 1 - x.y): the miner is inside the loss."""
    tf = load("tensorflow")
    losses = load("tensorflow_similarity.losses")
    criterion = losses.MultiSimilarityLoss(distance="cosine", alpha=spec.alpha, beta=spec.beta, epsilon=spec.margin,
                                           lmda=spec.base, center=1.0)
    return criterion(labels, tf.math.l2_normalize(embeddings, axis=1))


def circle_loss(embeddings, labels, spec):
    """CircleLoss(distance="cosine", gamma, margin) on L2-normalised rows."""
    tf = load("tensorflow")
    losses = load("tensorflow_similarity.losses")
    criterion = losses.CircleLoss(distance="cosine", gamma=spec.gamma, margin=spec.margin)
    return criterion(labels, tf.math.l2_normalize(embeddings, axis=1))


def simclr_loss(embeddings, labels, spec):
    """SimCLRLoss(temperature)(za, zb), the views the pairs layout's halves (rows 0..B-1 and B..2B-1); it reads no
    label and L2-normalises both views itself."""
    losses = load("tensorflow_similarity.losses")
    views = embeddings.shape[0] // 2
    return losses.SimCLRLoss(temperature=spec.temperature)(embeddings[:views], embeddings[views:])


ADAPTERS = [
    wrap_tensorflow(
        triplet_loss("hard", "hard"),
        name='tfsim.TripletLoss(positive="hard", negative="hard")',
        spec=hard_specs(),
        dtypes=DTYPES,
        notes="Hardest positive and nearest negative per anchor (fallbacks -1e-6 below the row minimum and 1e-6 above "
        "the row maximum), hinge or soft margin (margin=None), Keras mean over every anchor. euclidean is float32 "
        "only; cosine on L2-normalised rows (TF-Similarity's cosine is 1 - x.y). Run eagerly.",
        source=SOURCE,
        precision="gram",  # pairwise distances by the Gram expansion
        requires=REQUIRES,
    ),
    wrap_tensorflow(
        multi_similarity_loss,
        name="tfsim.MultiSimilarityLoss",
        spec=[Spec(mining="multi_similarity_mined", distance="cosine", normalize=True, margin=0.1, beta=40.0)],
        dtypes=DTYPES,
        notes="The miner inside the loss (epsilon 0.1: positives with D_ap > min D_an - eps, negatives with D_an < max "
        "D_ap + eps, both strict), then (1/alpha) log(1 + sum e^(alpha (D + lmda - 1))) + (1/beta) log(1 + sum "
        "e^(-beta (D + lmda - 1))) over what it kept, an anchor that kept nothing 0, Keras mean over every anchor; the "
        "authors' defaults alpha 2, beta 40, lmda 0.5 (= base). Rows L2-normalised first (its cosine is 1 - x.y). Run "
        "eagerly.",
        source="tensorflow/similarity tensorflow_similarity/losses/multisim_loss.py, losses/utils.py (0.17.1)",
        precision="gram",
        requires=REQUIRES,
    ),
    wrap_tensorflow(
        circle_loss,
        name="tfsim.CircleLoss",
        spec=[Spec(mining="circle", distance="cosine", normalize=True, margin=0.4, gamma=80.0)],
        # another function than the spec's in every dtype (registered): half precision, whose gradient rounding at
        # gamma = 80 spans the slopes themselves, would pass or fail by the draw
        dtypes=("float32", "float64"),
        notes="Sun et al.'s weights and logits on 1 - D, but log(1 + sum_p e^l_p) + log(1 + sum_n e^l_n), the weights "
        "not detached, Keras mean over every anchor (invalid ones 0): claimed as circle with reduction mean, the "
        "nearest spec, and registered (tfsim-circle-sum-of-two-softpluses); float32 and float64 only. Rows L2-normalised "
        "first. Run eagerly.",
        source="tensorflow/similarity tensorflow_similarity/losses/circle_loss.py (0.17.1)",
        precision="gram",
        requires=REQUIRES,
    ),
    wrap_tensorflow(
        simclr_loss,
        name="tfsim.SimCLRLoss",
        spec=[Spec(mining="simclr", distance="cosine", temperature=t) for t in (0.05, 0.5)],
        # float64, float16 and bfloat16 raise (its one-hot masks are float32): registered
        dtypes=DTYPES,
        notes="loss(za, zb) with za, zb the pairs layout's halves, both L2-normalised; per example the cross-entropy of "
        "za_i against [zb, za] / t (its own logit less 1e9) plus the same for zb_i, Keras mean over B: the sum of both "
        "views' means, twice Chen et al.'s NT-Xent (registered, tfsim-simclr-twice-nt-xent); its default temperature "
        "0.05. float32 only. Run eagerly.",
        source="tensorflow/similarity tensorflow_similarity/losses/simclr.py (0.17.1)",
        requires=REQUIRES,
    ),
]
