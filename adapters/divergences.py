"""The known-divergence registry: every accepted difference between an implementation and the oracle.

One declarative entry per divergence (jax2tf limitations, PyTorch OpInfo DecorateInfo): which cells it
covers (adapter name, dtype, device and check as fnmatch patterns; the spec by its fields), why, the
upstream link, the test that confirms it, and the regression batches that reach it in every covered cell.
Everything else is derived from the entry: the strict xfails of the cells it covers (a fixed upstream bug
shows up as an unexpected pass), the regression examples the cells run first, the stale-entry report,
and docs/known-divergences.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

import numpy as np

from engine.batch import Regression, found
from reference import Scope, Spec, check_scope, in_scope, scope_in_words

KINDS = ("semantics", "precision", "edge_case", "unsupported")


Patterns = str | tuple[str, ...]  # one fnmatch pattern, or several: any of them matches


@dataclass(frozen=True)
class Divergence:
    id: str
    adapter: Patterns  # on Adapter.name
    kind: str  # one of KINDS
    reason: str
    link: str
    confirmed_by: Patterns  # "tests/<path>.py::test_<name>", or several: the tests that show it on a small batch
    spec: Scope = None  # Spec field -> value or tuple of values; None: every spec
    dtype: Patterns = "*"
    device: Patterns = "*"
    check: Patterns = "*"  # the quantity "loss" or "grad", "edge:<case>", "property:<name>", "robustness:<sweep>"
    regressions: tuple[Regression, ...] = ()  # batches that reach it in every cell it covers

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"divergence {self.id}: kind {self.kind!r} not in {KINDS}")
        if not all("::" in test and test.startswith("tests/") for test in alternatives(self.confirmed_by)):
            raise ValueError(f"divergence {self.id}: confirmed_by must name tests as tests/<file>.py::<test>")
        object.__setattr__(self, "spec", dict(self.spec or {}))
        check_scope(self.spec, f"divergence {self.id}")

    def covers(self, adapter: str, spec: Spec, dtype: str, device: str, check: str) -> bool:
        return in_scope(spec, self.spec) and all(
            matches(value, patterns)
            for value, patterns in ((adapter, self.adapter), (dtype, self.dtype), (device, self.device),
                                    (check, self.check))
        )

    def scope_in_words(self) -> str:
        """adapter | spec | dtype | device | check, as a reader reads the scope."""
        return " | ".join([in_words(self.adapter), scope_in_words(self.spec),
                           *(in_words(p) for p in (self.dtype, self.device, self.check))])


def alternatives(patterns: Patterns) -> tuple[str, ...]:
    return (patterns,) if isinstance(patterns, str) else tuple(patterns)


def matches(value: str, patterns: Patterns) -> bool:
    return any(fnmatchcase(value, p) for p in alternatives(patterns))


def in_words(patterns: Patterns) -> str:
    return " or ".join(alternatives(patterns))


# The seed's re-derivation of Quaterion's formula (adapters/seeds.py) and the real library's hard mining, hinge and
# soft (adapters/quaterion.py, its own tox environment): one code path, the same divergences.
QUATERION_FORMULA = "seed003.quaterion-formula(hard)"
QUATERION_HARD = 'quaterion.TripletLoss(mining="hard"*'
SENTENCE_TRANSFORMERS_HARD = "st.BatchHard*TripletLoss"

# `check` of a divergence that shows in the conformance cells ("loss" and "grad") but not as every
# edge-case record ("edge:<case>").
CONFORMANCE = "[lg]*"


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

REGISTRY: tuple[Divergence, ...] = (
    Divergence(
        id="torch-triplet-margin-eps-in-norm",
        confirmed_by="tests/adapters/test_adapter_torch_native.py::test_triplet_margin_eps_moves_the_float64_loss_beyond_tolerance",
        adapter="torch.TripletMarginLoss",
        kind="semantics",
        reason="TripletMarginLoss measures ||a - p + eps|| with eps = 1e-6 added to every coordinate of the "
        "difference, so every distance is off by up to eps * sqrt(D) (d(x, x) = eps * sqrt(D), d(a, p) != d(p, a)): "
        "about 1e-6 on the loss, far above float64's tolerance, below float32's; and a near-duplicate pair r apart has "
        "its gradient turned by about eps sqrt(D) / r (2e-3 at r = 9e-4, the regression batch).",
        link="pytorch/pytorch#61538; aten/src/ATen/native/Distance.cpp pairwise_distance",
        dtype="float64",
        check=CONFORMANCE,
        regressions=(
            Regression(
                np.array([[0.3, 0.1, -0.2], [0.3 + 7e-4, 0.1 - 5e-4, -0.2 + 3e-4], [1.0, 0.5, 0.2]]), np.array([0, 0, 1]),
                "near-duplicate anchor and positive",
                "at d(a, p) = 9e-4 torch's eps = 1e-6 inside the norm turns the gradient's direction by 2e-3, beyond "
                "float64's tolerance (found by Hypothesis at d = 0.014)",
                reaches={"mining": "triplets", "distance": "euclidean"},
            ),
        ),
    ),
    Divergence(
        id="torch-triplet-margin-eps-at-duplicates",
        confirmed_by="tests/adapters/test_adapter_torch_native.py::test_triplet_margin_eps_gives_duplicates_a_gradient",
        adapter="torch.TripletMarginLoss",
        kind="semantics",
        reason="The same eps gives a zero-length difference a direction: at a duplicate (anchor, positive) pair "
        "the gradient follows the eps vector, 1 / sqrt(D) per coordinate (0.5 at D = 4, in every dtype), where the "
        "oracle's subgradient is 0. Conformance cells treat a zero distance that carries gradient as ambiguous, so "
        "this shows in the duplicates edge case, and in the conformance cells where a duplicate pair is a positive "
        "in one triplet and a negative in another: the oracle's two terms cancel, torch's eps directions add.",
        link="pytorch/pytorch#61538; aten/src/ATen/native/Distance.cpp pairwise_distance",
        check=("edge:duplicates", "grad"),
        regressions=(
            Regression(
                np.array([[0.0625, 0.0, 0.0], [0.0625, 0.0625, 0.0], [0.0625, 0.0, 0.0]]), np.array([0, 0, 0]),
                "a duplicate pair as positive and as negative",
                "rows 0 and 2 are one point; their pair is a positive in one triplet and a negative in the other, so the "
                "oracle's gradients cancel, while torch's eps directions add up (found by Hypothesis)",
                reaches={"mining": "triplets"}, triplets=np.array([[0, 2, 1], [2, 1, 0]]),
            ),
        ),
    ),
    Divergence(
        id="seed001-one-class-batch-raises",
        confirmed_by="tests/adapters/test_adapter_torch_native.py::test_seed001_raises_on_a_batch_of_one_class",
        adapter="seed001.MarginRankingLoss-hard",
        kind="edge_case",
        reason="Seed 001 takes min() over each anchor's other-class distances; in a batch of one class that set is "
        "empty and torch raises RuntimeError (min of an empty tensor) where batch_hard falls back to the farthest "
        "point and gives the margin.",
        link="WilliamYWY/TripletLoss-note README, 'Hard Triplet loss' (seed 001)",
        check="edge:no_negative",
    ),
    Divergence(
        id="seed001-one-class-batch-raises-in-conformance",
        confirmed_by="tests/adapters/test_adapter_torch_native.py::test_seed001_raises_on_a_batch_of_one_class",
        adapter="seed001.MarginRankingLoss-hard",
        kind="edge_case",
        reason="The same RuntimeError inside the conformance cells: about one drawn batch in five is a single class "
        "(6 of 30 in every cell, measured with the harness's strategy).",
        link="WilliamYWY/TripletLoss-note README, 'Hard Triplet loss' (seed 001)",
        check=CONFORMANCE,
        regressions=(
            Regression(
                np.array([[0.0, 1.0], [1.0, 0.5], [3.0, -1.0]]), np.array([7, 7, 7]), "one class",
                "min() over an empty set of negatives",
                reaches={"mining": ("batch_all", "batch_hard", "semi_hard", "semi_hard_all", "contrastive")},
            ),
        ),
    ),
    Divergence(
        id="quaterion-fallback-reads-the-cdist-diagonal-off-the-origin",
        confirmed_by="tests/adapters/test_adapter_seeds.py::test_quaterion_diagonal_breaks_translation_invariance_in_float64",
        adapter=(QUATERION_FORMULA, QUATERION_HARD),
        kind="precision",
        reason="Without a negative, Quaterion's hn is min over the row of d + rowmax * same_label = rowmax + "
        "d(a, a), and above 25 rows torch.cdist's Gram expansion leaves d(a, a) > 0. The conformance cells accept "
        "that (it is the Gram rounding the adapter declares: 0.49990 for the margin 0.5 on a one-class float32 "
        "batch of 40), but translating a tight one-class batch of 40 rows (spread 0.03) by 8 per coordinate moves "
        "d(a, a) to about 1e-6 and the float64 loss by 7e-7, beyond float64's tolerance: the loss is not "
        "translation invariant (the property check, run in float64, on the regression batch).",
        link="qdrant/quaterion quaterion/loss/triplet_loss.py (mining='hard'); pytorch/pytorch#57690, #123082",
        spec={"mining": "batch_hard", "distance": "euclidean", "scaled": True},
        dtype="float64",
        check="property:translation",
        regressions=(
            Regression(
                np.random.default_rng(0).normal(size=(40, 8)) * 0.03 + 3.0, np.zeros(40, dtype=np.int64),
                "one tight class of 40 rows off the origin",
                "above 25 rows torch.cdist's Gram expansion leaves d(a, a) > 0, and the masked-minimum fallback reads it; "
                "the translation property runs it",
                reaches={"mining": "batch_hard"}, properties=("translation",),
            ),
        ),
    ),
    Divergence(
        id="masked-minimum-ties-at-the-row-maximum",
        confirmed_by=(
            "tests/adapters/test_adapter_torch_native.py::test_masked_minimum_gives_the_tied_negative_no_gradient",
            "tests/adapters/test_adapter_sentence_transformers.py::"
            "test_hard_losses_route_the_gradient_through_the_row_maximum_at_a_tie",
            "tests/adapters/test_adapter_quaterion.py::test_hard_losses_route_the_gradient_through_the_row_maximum_at_a_tie",
        ),
        adapter=("torch.cdist-batch-hard", QUATERION_FORMULA, QUATERION_HARD, SENTENCE_TRANSFORMERS_HARD),
        kind="semantics",
        reason="hn = min over the row of d + rowmax * same_label, the anchor's own column included (TF-Addons' "
        "masked-minimum trick in torch). When the nearest negative is also the farthest point of the row, the "
        "anchor's own entry d(a, a) + rowmax = rowmax ties with it; torch's min() takes the first, the anchor's "
        "column, so dL/dhn reaches d(a, a) (zero gradient) and whichever point max() picked for rowmax, possibly a "
        "positive: the loss is right, the gradient is not (2-D anchor (1, 0), positives (0, 1) and (0.96, 0.28), "
        "negative (0, -1): the negative gets no gradient).",
        link="qdrant/quaterion quaterion/loss/triplet_loss.py (mining='hard'); "
        "tensorflow/addons tensorflow_addons/losses/triplet.py _masked_minimum",
        spec={"mining": "batch_hard"},
        check="grad",
        regressions=(
            Regression(
                np.array([[1.0, 0.0], [0.0, 1.0], [0.96, 0.28], [0.0, -1.0]]), np.array([0, 0, 0, 1]),
                "positive and negative at the row maximum, in 2-D",
                "the same tie as the 1-D batch of tfa-hard-loss-gradient-split-at-a-tied-row-maximum, exact for every "
                "distance (d = sqrt 2, 2 and 1 - cos = 1 from row 0 to rows 1 and 3)",
                reaches={"mining": "batch_hard"},
            ),
        ),
    ),
    Divergence(
        id="tfa-hard-loss-gradient-split-at-a-tied-row-maximum",
        confirmed_by="tests/adapters/test_adapter_tfa.py::test_hard_loss_splits_the_gradient_when_the_nearest_negative_ties_the_row_maximum",
        adapter="tfa.triplet_hard_loss*",
        kind="semantics",
        reason="triplet_hard_loss finds the nearest negative as min((d - rowmax) * mask) + rowmax. When that negative "
        "is the farthest point of its row, (d_an - rowmax) * 1 = 0 ties with every masked-out 0, and when another "
        "entry shares the row maximum (a positive at the same distance) reduce_max/reduce_min share the gradient "
        "among the ties: the loss is right, the gradient is not (1-D anchor 0 with points 1.5, 0.25 and negative "
        "-1.5: squared-L2 gradient [-0.9375, 0.46875, 0, 0.46875] against [-1.5, 0.75, 0, 0.75]). Drawn batches reach "
        "it through near-duplicate points of different classes (1-2 in 30 squared-L2 examples, float32); the "
        "regression batches on this entry reach it in every cell.",
        link="tensorflow/addons tensorflow_addons/losses/triplet.py _masked_minimum, triplet_hard_loss",
        spec={"mining": "batch_hard"},
        dtype=("float32", "float16"),
        check="grad",
        regressions=(
            Regression(
                np.array([[0.0], [1.5], [0.25], [-1.5]]), np.array([0, 0, 0, 1]),
                "positive and negative at the row maximum",
                "the nearest negative is the farthest point of its row and a positive shares that distance",
                reaches={"mining": "batch_hard"},
            ),
            Regression(
                np.array([[0.75, -2.125, -0.625], [-0.5625, 0.5, 2.25], [-0.5625, 0.5, 2.25]]), np.array([1, 1, 0]),
                "a positive and a negative copy of one point",
                "row 0's only positive and only negative are one point, at its row maximum; found by Hypothesis in "
                "float16 under cosine (the euclidean cells see a zero distance there and compare the loss only)",
                reaches={"mining": "batch_hard"},
            ),
        ),
    ),
    Divergence(
        id="tfa-hard-loss-gradient-split-at-a-tied-row-maximum-bfloat16",
        confirmed_by="tests/adapters/test_adapter_tfa.py::test_bfloat16_shows_the_split_with_the_hinge_only",
        adapter="tfa.triplet_hard_loss*",
        kind="semantics",
        reason="The same split in bfloat16 shows with the hinge only: under softplus the gradient moves by about "
        "0.09, inside bfloat16's gradient tolerance of 0.1.",
        link="tensorflow/addons tensorflow_addons/losses/triplet.py _masked_minimum, triplet_hard_loss",
        spec={"mining": "batch_hard", "distance": ("euclidean", "squared_euclidean"), "normalize": False, "soft": False},
        dtype="bfloat16",
        check="grad",
    ),
    Divergence(
        id="tfa-soft-hard-loss-overflows",
        confirmed_by="tests/adapters/test_adapter_tfa.py::test_soft_hard_loss_overflows_beyond_88",
        adapter="tfa.triplet_hard_loss",
        kind="precision",
        reason="soft=True computes log1p(exp(hp - hn)) in float32 (float16/bfloat16 are upcast): above hp - hn = 88.7 "
        "exp overflows, the loss is inf and the gradient NaN, where softplus is finite (the oracle: 28.06 on a "
        "4-point squared-L2 batch). Squared distances reach that on ordinary batches, euclidean ones on embeddings "
        "a hundred apart (unnormalised features); cosine distances stay below 2 and never do. The NaN gradient also "
        "fails the properties that use it: a step against it (descent), a finite gradient (duplicates_finite).",
        link="tensorflow/addons tensorflow_addons/losses/triplet.py triplet_hard_loss (soft branch)",
        spec={"mining": "batch_hard", "distance": ("euclidean", "squared_euclidean"), "normalize": False, "soft": True},
        check=(CONFORMANCE, "property:descent", "property:duplicates_finite"),
        regressions=(
            Regression(
                np.array([[0.0], [100.0], [1.0], [-2.0]]), np.array([0, 0, 1, 1]), "hardest positive 100 away",
                "anchor 0: hp - hn = 100 - 1 = 99 (euclidean; 9999 squared), past float32's exp range; softplus is 99",
                reaches={"mining": "batch_hard", "soft": True}, properties=("descent", "duplicates_finite"),
            ),
        ),
    ),
    Divergence(
        id="tfa-contrastive-float16-sum-overflows",
        confirmed_by="tests/adapters/test_adapter_tfa.py::test_contrastive_float16_sum_overflows_where_the_mean_fits",
        adapter="tfa.contrastive_loss",
        kind="precision",
        reason="contrastive_loss reduces in the input's dtype (no upcast, unlike the triplet losses): in float16 the "
        "sum of the pairs' terms overflows at 65504 even where their mean is well inside the range (20 points 5 "
        "apart in one class: mean 1750, loss inf). Hypothesis meets it on wide batches of 60 rows.",
        link="tensorflow/addons tensorflow_addons/losses/metric_learning.py contrastive_loss (reduce_mean in float16)",
        spec={"mining": "contrastive", "distance": "euclidean", "reduction": "mean"},
        dtype="float16",
        check="loss",
        regressions=(
            Regression(
                (np.arange(20.0) * 5.0)[:, None], np.zeros(20, dtype=np.int64),
                "190 positive pairs whose squares sum past float16's range",
                "the mean is 1750, the sum 332500; an implementation that sums in float16 returns inf",
                reaches={"mining": "contrastive", "distance": ("euclidean", "squared_euclidean"), "normalize": False},
            ),
        ),
    ),
    Divergence(
        id="tfa-triplet-float64-rejected",
        confirmed_by="tests/adapters/test_adapter_tfa.py::test_triplet_losses_reject_float64_for_every_metric",
        adapter="tfa.triplet_*",
        kind="unsupported",
        reason="TF-Addons' triplet losses hard-code float32 (tf.cast(..., tf.float32) masks, tf.ones in "
        "pairwise_distance and the loss): float64 embeddings raise InvalidArgumentError eagerly and TypeError in a "
        "graph. Only float16/bfloat16 are upcast (PR #1683).",
        link="tensorflow/addons tensorflow_addons/losses/triplet.py, metric_learning.py; PR #1683",
        dtype="float64",
    ),
    Divergence(
        id="tfa-pairwise-distance-float64-rejected",
        confirmed_by="tests/adapters/test_adapter_tfa.py::test_contrastive_rejects_float64_only_through_the_l2_distance",
        adapter="tfa.contrastive_loss",
        kind="unsupported",
        reason="contrastive_loss itself keeps float64, but TF-Addons' pairwise_distance (L2) multiplies by float32 "
        "masks and raises for float64; angular_distance has no such cast, so cosine works in float64.",
        link="tensorflow/addons tensorflow_addons/losses/metric_learning.py pairwise_distance",
        spec={"mining": "contrastive", "distance": "euclidean"},
        dtype="float64",
    ),
    Divergence(
        id="tfsim-euclidean-float32-only",
        confirmed_by="tests/adapters/test_adapter_tf_similarity.py::test_euclidean_rejects_every_dtype_but_float32",
        adapter="tfsim.TripletLoss*",
        kind="unsupported",
        reason="TF-Similarity's EuclideanDistance multiplies by tf.cast(mask, tf.float32), so float64, float16 and "
        "bfloat16 embeddings raise InvalidArgumentError; squared_euclidean and cosine take every dtype.",
        link="tensorflow/similarity tensorflow_similarity/distances.py EuclideanDistance.call (0.17.1)",
        spec={"distance": "euclidean"},
        dtype=("float64", "float16", "bfloat16"),
    ),
    Divergence(
        id="tfsim-masked-offsets-1e-6",
        confirmed_by="tests/adapters/test_adapter_tf_similarity.py::test_fallback_offsets_of_1e_6_show_in_float64",
        adapter="tfsim.TripletLoss*",
        kind="edge_case",
        reason="masked_max and masked_min shift by 1e-6 so that a masked-out 0 never wins: an anchor without a "
        "positive gets hp = (row minimum) - 1e-6, one without a negative hn = (row maximum) + 1e-6, where the spec "
        "takes 0 and the row maximum. Every such anchor's term moves by 1e-6, its gradient not at all: beyond "
        "float64's loss tolerance, inside float32's. The one-class regression batch (entry seed001-one-class-batch-raises-in-conformance) reaches it "
        "in every float64 cell.",
        link="tensorflow/similarity tensorflow_similarity/algebra.py masked_max, masked_min (0.17.1)",
        dtype="float64",
        check="loss",  # a constant offset: the gradient does not see it
    ),
    Divergence(
        id="tfsim-soft-margin-overflows",
        confirmed_by="tests/adapters/test_adapter_tf_similarity.py::test_soft_margin_overflows_for_easy_triplets",
        adapter="tfsim.TripletLoss*",
        kind="precision",
        reason="margin=None computes log(exp(-x) + 1) + x for x = hp - hn (a logsumexp whose shift is cut from the "
        "gradient): exp(-x) overflows when the negative is far farther than the positive, x < -88.7 in float32 and "
        "bfloat16, -11.1 in float16, -709.8 in float64, and the loss is inf where softplus is about 0 (the gradient "
        "stays finite). The opposite side from TF-Addons' log1p(exp(x)) (tfa-soft-hard-loss-overflows).",
        link="tensorflow/similarity tensorflow_similarity/losses/utils.py logsumexp (0.17.1)",
        spec={"mining": "batch_hard", "distance": ("euclidean", "squared_euclidean"), "soft": True},
        check="loss",
        regressions=(
            Regression(
                np.array([[0.0], [0.1], [30.0], [30.1]]), np.array([0, 0, 1, 1]), "two tight classes 30 apart",
                "hp - hn = 0.01 - 900 in squared distances (-29.9 in euclidean): past exp's range in every dtype "
                "(euclidean: float16); softplus is about 0",
                reaches={"mining": "batch_hard", "soft": True},
            ),
            Regression(
                np.array([[0.0], [0.1], [1000.0], [1000.1]]), np.array([0, 0, 1, 1]), "two tight classes 1000 apart",
                "hp - hn = -999.9 in euclidean distances: past exp's range in float64 too",
                reaches={"mining": "batch_hard", "soft": True},
            ),
        ),
    ),
    Divergence(
        id="tfsim-no-positive-reads-the-gram-diagonal",
        confirmed_by="tests/adapters/test_adapter_tf_similarity.py::test_an_anchor_without_a_positive_reads_the_gram_diagonal",
        adapter="tfsim.TripletLoss*",
        kind="precision",
        reason="An anchor without a positive takes hp = masked_max over its positives = (row minimum) - 1e-6, and the "
        "row minimum is its own diagonal entry, which the Gram expansion leaves above 0 in float32 (sqrt of a 1e-7 "
        "residual: 3.5e-4 for a unit row in D = 11), so hp is 3.5e-4 instead of 0 and the loss moves by that over "
        "the batch size (8.6e-5 on the regression batch, 8x float32's tolerance).",
        link="tensorflow/similarity tensorflow_similarity/losses/utils.py positive_distances, algebra.py masked_max; "
        "distances.py EuclideanDistance (no zeroed diagonal)",
        spec={"mining": "batch_hard", "distance": "euclidean"},
        dtype="float32",
        check="loss",
        regressions=(
            Regression(
                np.array([
                    [0.1361313909292221, -0.001556362141855061, -0.07829294353723526, -0.22255326807498932, -0.0694664940237999, 0.0038240174762904644, -0.07196082174777985, 0.3319176733493805, 0.27558979392051697, -0.6983753442764282, -0.49187424778938293],
                    [-0.4296607971191406, 0.12555737793445587, -0.11990033835172653, 0.4748615026473999, 0.48646190762519836, -0.10433503240346909, -0.1774509996175766, 0.37687447667121887, 0.1542947143316269, 0.3197060823440552, -0.112624891102314],
                    [-0.23054468631744385, -0.3063347041606903, 0.08356308192014694, -0.0476452074944973, 0.4831658899784088, -0.0787854865193367, -0.4043712317943573, 0.4714328646659851, 0.37583670020103455, 0.07774439454078674, -0.26652660965919495],
                    [0.544364333152771, 0.24657851457595825, -0.07357830554246902, 0.1956014782190323, -0.112300343811512, 0.11102500557899475, -0.07010777294635773, 0.3883601427078247, -0.29318296909332275, -0.37573426961898804, -0.43747419118881226],
                ]),
                np.array([1, 2, 2, 0]), "two anchors without a positive, unit rows in D = 11",
                "found by Hypothesis: row 3's Gram diagonal is 3.5e-4 in float32, read as its hardest positive",
                reaches={"mining": "batch_hard", "distance": "euclidean"},
            ),
        ),
    ),
    Divergence(
        id="masked-minimum-tie-follows-the-row-order",
        confirmed_by="tests/adapters/test_adapter_seeds.py::test_quaterion_masked_minimum_tie_follows_the_row_order",
        adapter=(QUATERION_FORMULA, QUATERION_HARD, SENTENCE_TRANSFORMERS_HARD),
        kind="semantics",
        reason="The tie of masked-minimum-ties-at-the-row-maximum is broken by torch's min(), which takes the first of "
        "the tied columns: permuting the rows moves the anchor's own column before or after the tied negative, and "
        "with it where dL/dhn goes, so the gradient is not permutation invariant (the property check, float64).",
        link="qdrant/quaterion quaterion/loss/triplet_loss.py (mining='hard'); UKPLab/sentence-transformers "
        "sentence_transformers/sentence_transformer/losses/batch_hard_triplet.py",
        spec={"mining": "batch_hard"},
        check="property:permutation",
        regressions=(
            Regression(
                np.array([[1.0, 0.0], [0.0, 1.0], [0.96, 0.28], [0.0, -1.0]]), np.array([0, 0, 0, 1]),
                "the row-maximum tie, permuted",
                "the batch of masked-minimum-ties-at-the-row-maximum, no tie in the spec's sense; the property's "
                "permutation [1, 2, 3, 0] moves anchor 0's own column after its tied negative",
                reaches={"mining": "batch_hard"}, properties=("permutation",),
            ),
        ),
    ),
    Divergence(
        id="tfa-semihard-angular-gradient-zero-where-the-loss-is-nan",
        confirmed_by="tests/adapters/test_adapter_tfa.py::"
        "test_semihard_gives_a_zero_gradient_to_a_nan_loss_at_the_distance_clamp",
        adapter="tfa.triplet_semihard_loss*",
        kind="edge_case",
        reason="Without a positive pair the loss is 0/0 = NaN (empty=nan), and the oracle's gradient is NaN too (what "
        "autograd gives for 0/0). Under \"angular\", when every distance the numerator reads sits at "
        "angular_distance's clamp at 0 (rows that are one direction), TF's gradient of the clamped distances is 0 and "
        "0 * inf stays 0: a zero gradient for a NaN loss (bfloat16's upcast path gives NaN). Found by the thorough "
        "hunt on two identical rows of different labels.",
        link="tensorflow/addons tensorflow_addons/losses/triplet.py triplet_semihard_loss; metric_learning.py "
        "angular_distance (clip_by_value at 0)",
        spec={"mining": "semi_hard", "distance": "cosine", "empty": "nan"},
        dtype=("float32", "float16"),  # bfloat16's upcast path gives NaN
        check="grad",
        regressions=(
            Regression(
                np.array([[-0.4324342906475067, 2.976555585861206, -1.9780031442642212, -2.020050048828125],
                          [-0.4324342906475067, 2.976555585861206, -1.9780031442642212, -2.020050048828125]]),
                np.array([0, 1]), "one row twice, two labels",
                "no positive pair, and the one distance at the angular clamp: TF-Addons' gradient is 0, not NaN",
                reaches={"mining": "semi_hard", "empty": "nan"},
            ),
        ),
    ),
    Divergence(
        id="tfa-semihard-l2-gradient-zero-where-the-loss-is-nan",
        confirmed_by="tests/adapters/test_adapter_tfa.py::"
        "test_semihard_gives_a_zero_gradient_to_a_nan_loss_at_the_distance_clamp",
        adapter="tfa.triplet_semihard_loss*",
        kind="edge_case",
        reason="The same zero gradient for a NaN loss under L2 and squared-L2: pairwise_distance clamps the Gram "
        "expansion with maximum(d2, 0) and masks what is left at 0, so when the expansion of two identical rows "
        "rounds to 0 or below, the gradient through it is 0 (a positive residue gives NaN, as the spec does). On "
        "the hunt's row in float32; its float16 rounding leaves a residue. Found by the thorough hunt.",
        link="tensorflow/addons tensorflow_addons/losses/metric_learning.py pairwise_distance (maximum at 0, error "
        "mask); triplet.py triplet_semihard_loss",
        spec={"mining": "semi_hard", "distance": ("euclidean", "squared_euclidean"), "empty": "nan"},
        dtype="float32",
        check="grad",
        regressions=(
            Regression(
                *found("one_row_twice_at_the_l2_clamp"), "another row twice, two labels",
                "no positive pair, and the Gram expansion of the two rows at or below 0: TF-Addons' L2 gradient is 0",
                reaches={"mining": "semi_hard", "empty": "nan"},
            ),
        ),
    ),
    Divergence(
        id="tfa-angular-gradient-near-the-origin",
        confirmed_by="tests/adapters/test_adapter_tfa.py::test_angular_gradient_of_a_row_near_the_origin_in_one_dimension",
        adapter="tfa.contrastive_loss",
        kind="precision",
        reason="angular_distance normalises with l2_normalize, x * rsqrt(sum x^2), and the gradient of that "
        "projection, 1/|x| - x x^T/|x|^3, cancels to what the rounding leaves, amplified by 1/|x|. In one "
        "dimension every cosine distance is 0 or 2 and the spec's gradient is exactly 0; for a row of norm 7.3e-4 "
        "TF-Addons' float32 gradient is -2^-7 (16 ulps of 1/|x| times dL/du = 4), beyond float32's gradient "
        "tolerance, where the implementations that normalise in torch stay within it (the mean over the pairs divides it "
        "back within). Found by the thorough hunt.",
        link="tensorflow/addons tensorflow_addons/losses/metric_learning.py angular_distance (tf.math.l2_normalize)",
        spec={"mining": "contrastive", "distance": "cosine", "reduction": "sum"},
        dtype="float32",
        check="grad",
        regressions=(
            Regression(
                *found("cosine_d1_row_near_the_origin"), "one dimension, a row 7.3e-4 from the origin",
                "every cosine distance 0 or 2, the spec's gradient 0; TF-Addons' is -2^-7 at the row near the origin",
                reaches={"mining": "contrastive", "distance": "cosine"},
            ),
        ),
    ),
    Divergence(
        id="st-semi-hard-gram-far-from-the-origin",
        confirmed_by="tests/adapters/test_adapter_sentence_transformers.py::"
        "test_semi_hard_gradient_of_one_class_far_from_the_origin",
        adapter="st.BatchSemiHardTripletLoss*",
        kind="precision",
        reason="BatchSemiHardTripletLoss measures squared distances by the Gram expansion of the batch as given (no "
        "re-centring): 59 rows of one class in one dimension, 1666 from the origin and 3 apart, carry a rounding of "
        "about 0.5 on squared distances of at most 8, and its float32 gradient lies 0.17 from the oracle's where "
        "the Gram precision it declares allows 0.15 (the loss stays within). Found by the thorough hunt.",
        link="UKPLab/sentence-transformers sentence_transformers/sentence_transformer/losses/batch_hard_triplet.py "
        "_pairwise_distances; losses/batch_semi_hard_triplet.py",
        spec={"mining": "semi_hard", "distance": "squared_euclidean"},
        dtype="float32",
        check="grad",
        regressions=(
            Regression(
                *found("one_class_far_from_the_origin_d1"), "one class of 59 rows, 1666 from the origin, D = 1",
                "squared distances up to 8 under a Gram rounding of about 0.5: the semi-hard gradient of a Gram "
                "implementation that does not re-centre moves past the Gram allowance",
                reaches={"mining": "semi_hard", "distance": "squared_euclidean"},
            ),
        ),
    ),
    Divergence(
        id="quaterion-fallback-reads-the-cdist-diagonal",
        confirmed_by="tests/adapters/test_adapter_seeds.py::test_quaterion_one_class_batch_reads_the_cdist_diagonal",
        adapter=(QUATERION_FORMULA, QUATERION_HARD),
        kind="precision",
        reason="Without a negative, Quaterion's hn is min over the row of d + rowmax * same_label = rowmax + d(a, a): "
        "it reads the diagonal, which the spec never reads, and above 25 rows torch.cdist's Gram expansion leaves "
        "d(a, a) > 0. The Gram precision the adapter declares bounds the distances the spec reads, not that one: on "
        "a one-class float32 batch of 26 rows with copies the loss is 0.49981 for the margin 0.5, three times the "
        "allowance (a tight class of 40 stays within it). Found by the thorough hunt.",
        link="qdrant/quaterion quaterion/loss/triplet_loss.py (mining='hard'); pytorch/pytorch#57690, #123082",
        spec={"mining": "batch_hard", "distance": "euclidean", "scaled": True},
        dtype="float32",
        check="loss",
        regressions=(
            Regression(
                *found("one_class_of_26_with_copies"), "one class of 26 rows with copies",
                "no negative at all: the masked-minimum fallback reads d(a, a), which cdist's Gram expansion (26 "
                "rows) leaves above 0",
                reaches={"mining": "batch_hard", "distance": "euclidean"},
            ),
        ),
    ),
    # --- distributed (adapters/distributed.py, docs/distributed.md) ------------------------------------------
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
        device="dist-gloo-*",
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
        device="dist-gloo-*",
        check=("loss", "grad"),
        regressions=(PML_DISTRIBUTED_BATCH,),
    ),
)


def matching(adapter: str, spec: Spec, dtype: str, device: str, check: str) -> list[Divergence]:
    return [d for d in REGISTRY if d.covers(adapter, spec, dtype, device, check)]
