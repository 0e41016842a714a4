"""Known divergences of TF-Addons (TF-Similarity's are registry/known_tfsim.py)."""
from __future__ import annotations

import numpy as np

from contract.batch import Regression

from .entry import CONFORMANCE, Divergence

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
        "fails the properties that use it: a step against it (descent), a finite gradient (duplicates_finite), and "
        "the finite answer the others require where a tie or the dtype's rounding leaves the gradient uncompared "
        "(permutation, relabelling, translation; every run meets it at the largest offset and the widest spread).",
        link="tensorflow/addons tensorflow_addons/losses/triplet.py triplet_hard_loss (soft branch)",
        spec={"mining": "batch_hard", "distance": ("euclidean", "squared_euclidean"), "normalize": False, "soft": True},
        check=(CONFORMANCE, "property:descent", "property:duplicates_finite", "property:permutation",
               "property:relabelling", "property:translation"),
        regressions=(
            Regression(
                np.array([[0.0], [100.0], [1.0], [-2.0]]), np.array([0, 0, 1, 1]), "hardest positive 100 away",
                "anchor 0: hp - hn = 100 - 1 = 99 (euclidean; 9999 squared), past float32's exp range; softplus is 99",
                reaches={"mining": "batch_hard", "soft": True}, properties=("descent", "duplicates_finite"),
            ),
            Regression(
                np.array([[0.0], [100.0], [1.0], [-1.0]]), np.array([0, 0, 1, 1]),
                "hardest positive 100 away, tied negatives",
                "the same overflow where anchor 0's two negatives tie exactly: the gradient is not compared, and a NaN "
                "there is a mismatch, since softplus is finite (found at the extremes of engine/draws.py)",
                reaches={"mining": "batch_hard", "soft": True},
                properties=("permutation", "relabelling", "translation"),
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
        id="tfa-lifted-one-class-nan",
        confirmed_by="tests/adapters/test_adapter_tfa.py::test_lifted_one_class_is_nan_with_nan_gradients",
        adapter="tfa.lifted_struct_loss*",
        kind="edge_case",
        reason="With one class no row has a negative: the spec's J is log(0) + D = -inf for every positive pair and "
        "each term [J]+^2 / 2 is 0, so the loss is 0. lifted_struct_loss computes J for every (i, j) of the batch, "
        "the diagonal included: the negative mask empties every sum, log 0 = -inf, the positive mask multiplies the "
        "diagonal's -inf by 0, NaN, and tf.maximum(NaN, 0) stays NaN. Loss and every gradient entry are NaN "
        "(fixture A with labels [0, 0, 0, 0]: NaN against 0). The loss is finite only with a positive pair and two "
        "classes (docs/upstream/next-losses.md, section 4.1). Every cell meets it: the one-class batch is among the "
        "extremes of engine/draws.py, and the regression batch below. The properties that hold one answer to another "
        "fail there too: NaN before and after is no agreement where the oracle answers 0.",
        link="tensorflow/addons tensorflow_addons/losses/lifted.py lifted_struct_loss (log of the masked sum)",
        spec={"mining": "lifted"},
        dtype=("float32", "float16", "bfloat16"),
        check=(CONFORMANCE, "edge:no_negative", "property:descent", "property:duplicates_finite", "property:permutation",
               "property:relabelling", "property:translation"),
        regressions=(
            Regression(
                np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]]), np.zeros(4, dtype=np.int64),
                "fixture A in one class",
                "no row has a negative: the spec's terms are all 0 (J = -inf), TF-Addons' loss and gradient NaN",
                reaches={"mining": "lifted"}, properties=("descent", "duplicates_finite"),
            ),
        ),
    ),
    Divergence(
        id="tfa-lifted-far-negatives-overflow",
        confirmed_by="tests/adapters/test_adapter_tfa.py::test_lifted_is_nan_once_a_nearest_negative_is_past_88_7",
        adapter="tfa.lifted_struct_loss*",
        kind="precision",
        reason="lifted_struct_loss exponentiates every entry of its [B^2, B] tiles, exp(m - D_ik - M_ij) with M_ij = "
        "max(m_i, m_j) and m_i = m - (row i's nearest negative distance), and only then multiplies by the negative "
        "mask. The masked-out diagonal entry is exp(m - M_ii) = e^(nearest negative of i): once a row's nearest "
        "negative is farther than 88.72 (log of float32's largest value; float16/bfloat16 are upcast) it is inf, inf x 0 "
        "is NaN, and the loss and every gradient entry are NaN, whatever the margin. The spec's terms there are finite "
        "(classes 99 apart in 1-D: loss 0 and gradient 0; TF-Addons' NaN from a nearest negative of 88.72 on: 88.5 is "
        "finite, 89 NaN). Hit by any row far from every other class (unnormalised features, which the docstring asks "
        "for: not l2-normalised), and far from the origin by near-duplicate rows of two classes: the Gram expansion "
        "puts rows 2.5e5 from the origin and 0 to 25 apart 90 to 181 apart (found by the thorough hunt). "
        "The NaN also fails the properties that use an answer: descent, duplicates_finite, and permutation, "
        "relabelling and translation where the gradient is not compared with the oracle's (a row at distance 0 from a "
        "negative).",
        link="tensorflow/addons tensorflow_addons/losses/lifted.py lifted_struct_loss (exp of the tiles before the mask)",
        spec={"mining": "lifted"},
        dtype=("float32", "float16", "bfloat16"),
        check=(CONFORMANCE, "property:permutation", "property:relabelling", "property:translation",
               "property:descent", "property:duplicates_finite"),
        regressions=(
            Regression(
                np.array([[0.0], [1.0], [100.0], [101.0]]), np.array([0, 0, 1, 1]), "two classes 99 apart",
                "every row's nearest negative is 99 or 100 away, past float32's exp range: the spec's loss and "
                "gradient are 0 (J = -96.4 for both pairs), TF-Addons' NaN",
                reaches={"mining": "lifted"}, properties=("descent", "duplicates_finite"),
            ),
            Regression(
                np.array([[0.1], [0.7], [200.3], [201.1], [200.3]]), np.array([0, 0, 1, 1, 2]),
                "a class 200 from the others, one row of it copied into a third class",
                "rows 0 and 1 have their nearest negative 199.6 away: TF-Addons' loss and gradient are NaN where the "
                "spec's are finite (1.1784 at m = 1); the copy puts a negative at distance 0 where the pair (2, 3) "
                "reads it, so the gradient is not compared with the oracle's and a property holding one answer to "
                "another requires it finite",
                reaches={"mining": "lifted"}, properties=("permutation", "relabelling", "translation"),
            ),
        ),
    ),
    Divergence(
        id="tfa-lifted-gradient-through-a-tied-shift",
        confirmed_by="tests/adapters/test_adapter_tfa.py::test_lifted_gradient_leaks_through_the_shift_at_a_tie",
        adapter="tfa.lifted_struct_loss*",
        kind="semantics",
        reason="lifted_struct_loss shifts each pair's log-sum-exp by M_ij = tf.maximum(m_i, m_j), m_i = m - (row i's "
        "nearest negative distance), without stop_gradient. J does not depend on the shift, and away from a tie the "
        "shift's gradient cancels (docs/upstream/next-losses.md, section 4.1). Where m_i = m_j exactly (the two rows "
        "of a positive pair at the same distance from their nearest negatives: duplicate rows, lattices, symmetric "
        "layouts), tf.maximum sends all of M_ij's gradient to m_i and all of M_ji's to m_j: m_i gets 1 - 2 t_i and m_j "
        "1 - 2 t_j (t: a row's share of the pair's sum of exponentials), which sum to 0 but reach different distances "
        "(each row's nearest negative), so unless the shares are equal the loss is right and the gradient gains a "
        "spurious term (an even split at the tie, as |.|'s sign(0) = 0 gives, would cancel it). 1-D rows -4, 2, 4, 2, -2 with labels "
        "1, 0, 1, 0, 0 (pair (0, 2): nearest negatives both 2 away, the others 6, 6 against 2, 6), m = 1: gradient "
        "[-0.087, 1.864, 0.087, 1.864, -3.728] against [-0.413, 2.027, -0.239, 2.027, -3.402]; the same code with the "
        "shift stop-gradient'ed gives the spec's. A gradient at a tie may be one-sided only where the loss has a kink; "
        "J has none there. Found by the thorough hunt on lattice batches with duplicates.",
        link="tensorflow/addons tensorflow_addons/losses/lifted.py lifted_struct_loss (max_elements, no stop_gradient)",
        spec={"mining": "lifted"},
        dtype=("float32", "float16", "bfloat16"),
        check="grad",
        regressions=(
            Regression(
                np.array([[-4.0], [2.0], [4.0], [2.0], [-2.0]]), np.array([1, 0, 1, 0, 0]),
                "a positive pair whose nearest negatives tie, its other negatives not",
                "rows 0 and 2 (class 1) each have a negative 2 away and a row maximum of 8, so m_0 = m_2 in any "
                "rounding; row 0's other negatives are 6 away, row 2's 2 and 6: TF-Addons' gradient moves by 0.29 to "
                "0.33 (m = 0.2 and 1), beyond bfloat16's gradient tolerance",
                reaches={"mining": "lifted"},
            ),
        ),
    ),
    Divergence(
        id="tfa-lifted-float64-rejected",
        confirmed_by="tests/adapters/test_adapter_tfa.py::test_lifted_rejects_float64_eagerly_and_as_a_graph",
        adapter="tfa.lifted_struct_loss*",
        kind="unsupported",
        reason="lifted_struct_loss measures with TF-Addons' pairwise_distance, which multiplies by float32 masks, and "
        "casts its own masks to float32: float64 embeddings raise InvalidArgumentError eagerly and TypeError in a "
        "graph (docs/upstream/next-losses.md, section 4.1). Only float16/bfloat16 are upcast (PR #1683).",
        link="tensorflow/addons tensorflow_addons/losses/lifted.py, metric_learning.py pairwise_distance; PR #1683",
        spec={"mining": "lifted"},
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
        id="tfa-npairs-float16-mean-overflows",
        confirmed_by="tests/adapters/test_adapter_tfa_npairs.py::test_npairs_float16_mean_overflows_where_it_fits",
        adapter="tfa.npairs*",
        kind="precision",
        reason="npairs_loss and npairs_multilabel_loss run in the logits' dtype, the mean over anchors included "
        "(tf.reduce_mean of the rows' cross-entropies): in float16 the rows' sum overflows at 65504 even where the "
        "mean, and every logit, is well inside the range (two pairs whose own positives are 200 apart in squared "
        "distance, 40000 in euclidean, each anchor's other positive on it: rows of 40000, mean 40000, loss inf). "
        "The gradient, (softmax - Y) / B per entry, stays finite and right. Cosine logits are at most 2 apart, and "
        "a row's cross-entropy at most 2 + log B: their sum never gets there. Hypothesis meets it on wide batches "
        "of 50 rows (squared distances of 9000, the mean 2771).",
        link="tensorflow/addons tensorflow_addons/losses/npairs.py npairs_loss, npairs_multilabel_loss "
        "(tf.reduce_mean in the logits' dtype)",
        spec={"mining": ("npairs", "npairs_multilabel"), "distance": ("euclidean", "squared_euclidean")},
        dtype="float16",
        check="loss",
        regressions=(
            Regression(
                np.array([[0.0], [200.0], [200.0], [0.0]]), np.array([1, 2, 1, 2]),
                "two pairs, each anchor on the other's positive, 200 from its own",
                "rows of 40000 (-log of a softmax of e^-40000 against 1), summing past float16's range",
                reaches={"mining": ("npairs", "npairs_multilabel"), "distance": "squared_euclidean"},
            ),
            Regression(
                np.array([[0.0], [40000.0], [40000.0], [0.0]]), np.array([1, 2, 1, 2]),
                "two pairs, each anchor on the other's positive, 40000 from its own",
                "rows of 40000 in euclidean distance, summing past float16's range",
                reaches={"mining": ("npairs", "npairs_multilabel"), "distance": "euclidean"},
            ),
        ),
    ),
    Divergence(
        id="tfa-npairs-labels-cast-to-the-logits-dtype",
        confirmed_by="tests/adapters/test_adapter_tfa_npairs.py::test_npairs_casts_the_labels_to_the_logits_dtype",
        adapter="tfa.npairs_loss*",
        kind="semantics",
        reason="npairs_loss casts y_true to y_pred's dtype before it compares labels: integer ids that round to one "
        "number of that dtype are one class. In float16 every id past 2048 shares its number with a neighbour (2048 "
        "and 2049), in bfloat16 past 256; two pairs of distinct classes then spread their targets over each other's "
        "positives (labels [2048, 2049] on the unit rows of the regression batch: 0.813 against the spec's 0.313). "
        "float32 merges ids past 2^24, which the suite's label draws (up to 10^6) do not reach. A porter maps labels "
        "to small contiguous ids before the call (docs/upstream/next-losses.md, section 4.2).",
        link="tensorflow/addons tensorflow_addons/losses/npairs.py npairs_loss (tf.cast(y_true, y_pred.dtype))",
        spec={"mining": "npairs"},
        dtype=("float16", "bfloat16"),
        check=CONFORMANCE,
        regressions=(
            Regression(
                np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]), np.array([2048, 2049, 2048, 2049]),
                "two pairs labelled 2048 and 2049",
                "one class once the labels are float16 or bfloat16: TF-Addons' targets spread over both positives",
                reaches={"mining": "npairs"},
            ),
        ),
    ),
)
