"""One record per loss of the vocabulary, as PyTorch's OpInfo has one per operator: its name (the value of
`Spec.mining`), the oracle function, the Spec fields it takes, what its reduction averages over, what a term is,
the batch layout it needs, the decision kinds it can meet, one line of description and its source.

Every list of losses derives from `LOSSES`: the vocabulary's choices (reference/spec.py), the batch draws and
regimes (engine/), the robustness sweeps' order, the report's words, the in-house claims;
tests/oracle/test_loss_records.py fails when a table keyed by loss misses one. Adding a loss: README, "Add a loss".
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import similarity, softmax, strategies
from .gaps import COLLAPSE, HINGE, MINED_NEGATIVE, MINED_POSITIVE, SEMI_HARD_SELECTION, SOFT_UNDERFLOW, SOFTMAX_ROUNDING, TIE_NEGATIVE, TIE_POSITIVE, \
    WINDOW_LOWER, WINDOW_UPPER
from .terms import Terms

# The Spec fields every loss takes; `Loss.takes` names the others it takes (elsewhere they keep their defaults).
UNIVERSAL_FIELDS = ("mining", "distance", "normalize", "reduction", "empty")
OPTIONAL_FIELDS = ("margin", "soft", "scaled", "anchors", "temperature", "symmetric", "alpha", "beta", "base", "gamma")
DISTANCES = ("euclidean", "squared_euclidean", "cosine")  # Spec.distance's values; `Loss.distances` those it accepts
# what one term of the loss is made of: (a, p, n), (i, j), or one anchor's softmax over every positive
TERMS = ("triplet", "pair", "softmax row")
# what a batch carries besides the embeddings; "pairs": rows 0..B-1 the anchors, row B + i the positive of anchor i,
# both rows of a pair with its label (reference/softmax.py)
LAYOUTS = ("labels", "labels and triplets", "pairs")
LABEL_KINDS = ("classes", "class sets")  # a label is a class id, or a pair's set of classes as a bit mask


@dataclass(frozen=True)
class Loss:
    name: str  # Spec.mining
    oracle: Callable[..., Terms]  # oracle(distances, labels, spec, triplets) -> Terms
    takes: tuple[str, ...]  # the OPTIONAL_FIELDS it takes
    unit: str  # what reduction="mean" averages over, in words
    term: str  # one of TERMS
    layout: str  # one of LAYOUTS
    gaps: tuple[str, ...]  # the decision kinds (reference/gaps.py) its selection and its terms can meet
    selects: str  # what it is made of, in one line (the report's words)
    source: str
    growth: int = 1  # a term's value grows like the distance to this power (1: a hinge; 2: a squared distance)
    labels: str = "classes"  # one of LABEL_KINDS
    # the distances it is defined on (the similarity family reads s = 1 - D, the cosine similarity: cosine only)
    distances: tuple[str, ...] = DISTANCES
    # weights read from D but held constant for the gradient (circle's alpha): its gradient is not the derivative of
    # its value, and its oracle takes `weighted_at`, the distances the weights are read from (finite differences)
    detached: bool = False

    def __post_init__(self) -> None:
        if not set(self.takes) <= set(OPTIONAL_FIELDS):
            raise ValueError(f"loss {self.name}: takes {self.takes}, beyond {OPTIONAL_FIELDS}")
        if not self.distances or not set(self.distances) <= set(DISTANCES):
            raise ValueError(f"loss {self.name}: distances {self.distances}, not within {DISTANCES}")
        if self.term not in TERMS or self.layout not in LAYOUTS or self.labels not in LABEL_KINDS:
            raise ValueError(f"loss {self.name}: term {self.term!r} not in {TERMS}, layout {self.layout!r} not in "
                             f"{LAYOUTS} or labels {self.labels!r} not in {LABEL_KINDS}")


_TRIPLET_GAPS = (HINGE, SOFT_UNDERFLOW)
LOSSES: dict[str, Loss] = {loss.name: loss for loss in (
    Loss("batch_all", strategies.batch_all, ("margin", "soft"), "triplets", "triplet", "labels", _TRIPLET_GAPS,
         "every valid triplet (a, p, n) in the batch",
         "Hermans et al. 2017, arXiv 1703.07737, eq. 4; pytorch-metric-learning TripletMarginLoss"),
    Loss("batch_hard", strategies.batch_hard, ("margin", "soft", "scaled", "anchors"), "anchors", "triplet",
         "labels", (*_TRIPLET_GAPS, TIE_POSITIVE, TIE_NEGATIVE, COLLAPSE),
         "per anchor, its farthest positive and its nearest negative (batch-hard)",
         "Hermans et al. 2017, eq. 5; TF-Addons triplet_hard_loss"),
    Loss("semi_hard", strategies.semi_hard, ("margin", "soft"), "ordered positive pairs", "triplet", "labels",
         (*_TRIPLET_GAPS, SEMI_HARD_SELECTION, TIE_NEGATIVE),
         "per ordered positive pair, the nearest negative farther than the positive, else the anchor's farthest "
         "negative (TF-Addons semi-hard)",
         "TF-Addons triplet_semihard_loss (tensorflow_addons/losses/triplet.py)"),
    Loss("semi_hard_all", strategies.semi_hard_all, ("margin",), "triplets", "triplet", "labels",
         (*_TRIPLET_GAPS, WINDOW_LOWER, WINDOW_UPPER),
         "every triplet with 0 < d(a,n) - d(a,p) <= margin (FaceNet semi-hard window)",
         "Schroff et al. 2015, FaceNet, eq. 4; pytorch-metric-learning TripletMarginMiner(type_of_triplets='semihard')"),
    Loss("triplets", strategies.explicit_triplets, ("margin", "soft"), "triplets", "triplet", "labels and triplets",
         _TRIPLET_GAPS, "the explicit (a, p, n) index triples given with the input",
         "torch nn.TripletMarginLoss (aten/src/ATen/native/Loss.cpp triplet_margin_loss)"),
    Loss("contrastive", strategies.contrastive, ("margin",), "pairs", "pair", "labels", (HINGE,),
         "every unordered pair: y d^2 + (1 - y) [m - d]+^2 (contrastive)",
         "Hadsell, Chopra, LeCun 2006, eq. 4; TF-Addons contrastive_loss", growth=2),
    Loss("lifted", strategies.lifted, ("margin",), "positive pairs", "pair", "labels", (HINGE,),
         "per positive pair i < j, [log(sum of e^(m - d) over the negatives of i and of j) + d(i,j)]+^2 / 2 "
         "(lifted structured)",
         "Song et al. 2016, arXiv 1511.06452, eq. 4; TF-Addons lifted_struct_loss", growth=2),
    Loss("npairs", softmax.npairs, (), "pairs", "softmax row", "pairs", (SOFTMAX_ROUNDING,),
         "per anchor, softmax cross-entropy of -D(anchor, every positive) against the positives of its class (N-pairs)",
         "Sohn 2016, NeurIPS, eq. 6; TF-Addons npairs_loss (tensorflow_addons/losses/npairs.py)"),
    Loss("npairs_multilabel", softmax.npairs_multilabel, (), "pairs", "softmax row", "pairs", (SOFTMAX_ROUNDING,),
         "per anchor, softmax cross-entropy of -D(anchor, every positive) against the positives sharing its classes, "
         "weighted by how many (multilabel N-pairs)",
         "TF-Addons npairs_multilabel_loss (tensorflow_addons/losses/npairs.py)", labels="class sets"),
    Loss("multiple_negatives", softmax.multiple_negatives, ("temperature", "symmetric"), "anchors", "softmax row",
         "pairs", (SOFTMAX_ROUNDING,),
         "per anchor, softmax cross-entropy of -D(anchor, every positive) / t against its own positive, the other "
         "pairs' positives its in-batch negatives whatever their labels (InfoNCE; symmetric: and per positive, "
         "against every anchor)",
         "van den Oord et al. 2018, arXiv 1807.03748, eq. 4; sentence-transformers MultipleNegativesRankingLoss "
         "(scale = 1 / t) and MultipleNegativesSymmetricRankingLoss"),
    Loss("ntxent", softmax.ntxent, ("temperature",), "ordered positive pairs", "softmax row", "labels",
         (SOFTMAX_ROUNDING,),
         "per ordered positive pair (a, p), softmax cross-entropy of -D / t over p and the anchor's negatives (NT-Xent)",
         "Chen et al. 2020, SimCLR, arXiv 2002.05709, eq. 1; pytorch-metric-learning NTXentLoss"),
    Loss("simclr", softmax.simclr, ("temperature",), "rows of both views", "softmax row", "pairs",
         (SOFTMAX_ROUNDING,),
         "per row of either view, softmax cross-entropy of -D / t over its other view and every other row of both "
         "views, labels not read (SimCLR's NT-Xent)",
         "Chen et al. 2020, SimCLR, arXiv 2002.05709, eq. 1 and L = (1 / 2N) sum over both views; TF-Similarity "
         "SimCLRLoss (2x), pytorch-metric-learning NTXentLoss on labels [0..B-1, 0..B-1]"),
    Loss("supcon", softmax.supcon, ("temperature",), "anchors with a positive", "softmax row", "labels",
         (SOFTMAX_ROUNDING,),
         "per anchor, the mean over its positives of the cross-entropy of -D / t over every other row (supervised "
         "contrastive, L_out)",
         "Khosla et al. 2020, arXiv 2004.11362, eq. 2; pytorch-metric-learning SupConLoss"),
    Loss("multi_similarity", similarity.multi_similarity, ("alpha", "beta", "base"), "anchors", "softmax row",
         "labels", (SOFTMAX_ROUNDING,),
         "per anchor, (1/alpha) log(1 + sum over its positives of e^(-alpha (s - base))) + (1/beta) log(1 + sum over "
         "its negatives of e^(beta (s - base))), s the cosine similarity (multi-similarity)",
         "Wang et al. 2019, CVPR, eq. 10; pytorch-metric-learning MultiSimilarityLoss", distances=("cosine",)),
    Loss("multi_similarity_mined", similarity.multi_similarity_mined, ("margin", "alpha", "beta", "base"), "anchors",
         "softmax row", "labels", (SOFTMAX_ROUNDING, MINED_POSITIVE, MINED_NEGATIVE),
         "multi-similarity over the pairs the miner keeps: positives with s_ap - m < the anchor's largest negative s, "
         "negatives with s_an + m > its smallest positive s (margin = the miner's epsilon)",
         "Wang et al. 2019, CVPR, eq. 5, 6 and 10; pytorch-metric-learning MultiSimilarityLoss with MultiSimilarityMiner; "
         "TF-Similarity MultiSimilarityLoss", distances=("cosine",)),
    Loss("circle", similarity.circle, ("margin", "gamma"), "anchors", "softmax row", "labels", (SOFTMAX_ROUNDING,),
         "per anchor with a positive and a negative, softplus(lse over its positives of -gamma [1 + m - s]+ (s - 1 + m) "
         "+ lse over its negatives of gamma [s + m]+ (s - m)), the weights [.]+ held constant for the gradient (circle)",
         "Sun et al. 2020, CVPR, eq. 6; pytorch-metric-learning CircleLoss", distances=("cosine",), detached=True),
)}


def minings_taking(field: str) -> tuple[str, ...]:
    """The losses that take the optional Spec field `field`."""
    return tuple(name for name, loss in LOSSES.items() if field in loss.takes)


def minings_of(term: str) -> tuple[str, ...]:
    """The losses whose terms are `term`s (TERMS)."""
    return tuple(name for name, loss in LOSSES.items() if loss.term == term)
