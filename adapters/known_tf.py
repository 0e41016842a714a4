"""Known divergences of the TensorFlow-based implementations: TF-Addons and TF-Similarity."""
from __future__ import annotations

import numpy as np

from engine.batch import Regression, found

from .divergence import CONFORMANCE, Divergence

ENTRIES: tuple[Divergence, ...] = (
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
)
