"""Known divergences of TF-Similarity (its own tox environment: tox -e tfsim)."""
from __future__ import annotations

import numpy as np

from contract.batch import Regression

from .entry import CONFORMANCE, Divergence

ENTRIES: tuple[Divergence, ...] = (
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
        "stays finite). The opposite side from TF-Addons' log1p(exp(x)) (tfa-soft-hard-loss-overflows). The properties "
        "that hold one answer to another fail there too: inf before and after is no agreement where the oracle's "
        "loss is finite.",
        link="tensorflow/similarity tensorflow_similarity/losses/utils.py logsumexp (0.17.1)",
        spec={"mining": "batch_hard", "distance": ("euclidean", "squared_euclidean"), "soft": True},
        check=("loss", "property:permutation", "property:relabelling", "property:translation"),
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
                properties=("permutation", "relabelling", "translation"),
            ),
        ),
    ),
    Divergence(
        id="tfsim-float16-squared-norms-overflow",
        confirmed_by="tests/adapters/test_adapter_tf_similarity.py::test_float16_gram_expansion_overflows_past_a_norm_of_256",
        adapter="tfsim.TripletLoss*",
        kind="precision",
        reason="squared_euclidean is the Gram expansion max(|a|^2 + |b|^2 - 2 a.b, 0) computed in the embeddings' dtype "
        "(no upcast): in float16 |x|^2 overflows to inf past a row norm of 256, inf - inf is NaN, and the loss and the "
        "gradient are NaN where every squared distance the spec computes is finite (rows 300 and 150 from the origin, "
        "at most 153 apart). The Gram precision it declares covers the expansion's rounding, not its overflow; TF-Addons and "
        "sentence-transformers upcast float16 to float32 first. Found by the float16 batches of norms past 256 "
        "(engine/draws.py magnitude_limit).",
        link="tensorflow/similarity tensorflow_similarity/distances.py SquaredEuclideanDistance.call (0.17.1)",
        spec={"distance": "squared_euclidean"},
        dtype="float16",
        check=("loss", "grad"),
        regressions=(
            Regression(
                np.array([[300.0, 0.0], [301.0, 1.0], [300.0, 2.0], [303.0, 0.0], [150.0, 0.0], [151.0, 1.0]]),
                np.array([0, 0, 1, 1, 2, 2]), "four rows 300 from the origin, two 150 from it",
                "|x|^2 = 9e4 overflows float16, so a Gram expansion computed in float16 gives NaN (loss and gradient), "
                "though every squared distance is at most 23409",
                reaches={"distance": "squared_euclidean"},
            ),
        ),
    ),
    Divergence(
        id="tfsim-float16-cosine-normalisation-overflows",
        confirmed_by="tests/adapters/test_adapter_tf_similarity.py::test_float16_cosine_normalisation_overflows_past_a_norm_of_256",
        adapter="tfsim.TripletLoss*",
        kind="precision",
        reason="cosine normalises each row in the embeddings' dtype (no upcast): in float16 |x|^2 overflows to inf past "
        "a row norm of 256, the row times rsqrt(inf) is 0, every cosine distance is 1 and the gradient 0: the hinge "
        "loss is the margin and the soft loss log 2 where the spec's are finite and smaller (rows 256 to 336 from the "
        "origin in three directions: 1.0 against 0.243, 0.693 against 0.385). The gradient, 0 where the oracle's is "
        "at most 1.6e-3 at these norms (it falls as 1 / |x|), stays within float16's gradient tolerance. The sibling of "
        "tfsim-float16-squared-norms-overflow; TF-Addons and sentence-transformers upcast float16 to float32 first. "
        "Found by a dev-profile run of tox -e tfsim (the float16 batches of norms past 256, engine/draws.py "
        "magnitude_limit).",
        link="tensorflow/similarity tensorflow_similarity/distances.py CosineDistance.call (0.17.1)",
        spec={"distance": "cosine"},
        dtype="float16",
        check="loss",
        regressions=(
            Regression(
                np.array([[300.0, 60.0], [270.0, 90.0], [-60.0, 300.0], [-90.0, 240.0], [150.0, -300.0],
                          [180.0, -270.0]]),
                np.array([0, 0, 1, 1, 2, 2]), "three directions, rows 256 to 336 from the origin",
                "|x|^2 past 65504 overflows float16, so a normalisation computed in float16 makes every row 0",
                reaches={"distance": "cosine"},
            ),
        ),
    ),
    Divergence(
        id="tfsim-soft-margin-overflow-stops-descent",
        confirmed_by="tests/adapters/test_adapter_tf_similarity.py::test_soft_margin_overflow_leaves_no_step_to_descend",
        adapter="tfsim.TripletLoss*",
        kind="precision",
        reason="The overflow of tfsim-soft-margin-overflows seen by the descent property: once one anchor's exp(-x) "
        "overflows the loss is inf, and a step against the (finite, nonzero) gradient of the other anchors cannot "
        "lower it, where the spec's loss falls (133.35 euclidean on the regression batch). Found at the largest "
        "magnitudes (engine/draws.py, the wide scale geometry at its extreme).",
        link="tensorflow/similarity tensorflow_similarity/losses/utils.py logsumexp (0.17.1)",
        spec={"mining": "batch_hard", "distance": ("euclidean", "squared_euclidean"), "soft": True},
        check="property:descent",
        regressions=(
            Regression(
                np.array([[0.0], [0.1], [1000.0], [1000.1], [2000.0], [1100.0]]), np.array([0, 0, 1, 1, 2, 2]),
                "two tight classes 1000 apart and a wide one",
                "anchors 0 to 3: x = hp - hn near -1000, past exp's range in float64; anchor 5: x = 800, gradient 1",
                reaches={"mining": "batch_hard", "soft": True}, properties=("descent",),
            ),
        ),
    ),
    Divergence(
        id="tfsim-multisim-float16-nan",
        confirmed_by="tests/adapters/test_adapter_tf_similarity_softmax.py::test_multi_similarity_is_nan_in_float16",
        adapter="tfsim.MultiSimilarityLoss",
        kind="precision",
        reason="MultiSimilarityLoss computes its log(1 + sum) as M + log(e^-M + sum over the kept pairs), M the row's "
        "largest exponent over every entry, masked ones included (losses/utils.py logsumexp): the diagonal's D = 0 "
        "gives M = beta (1 - lmda) = 20 in the negative part, and e^-20 underflows float16 to 0, so an anchor that kept "
        "no negative has log 0 = -inf, times its validity 0: NaN, the loss and the gradient NaN (fixture A: per anchor "
        "[NaN, 0.5986, 0.5986, NaN], the spec 0.2995348). Since PR #310 (0.17.0) its masks follow the input dtype, so "
        "float16 runs in float16; float32, float64 and bfloat16 (float32's range) are fine.",
        link="tensorflow/similarity tensorflow_similarity/losses/utils.py logsumexp, losses/multisim_loss.py (0.17.1)",
        spec={"mining": "multi_similarity_mined"},
        dtype="float16",
        check=CONFORMANCE,
        regressions=(
            Regression(
                np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]]), np.array([0, 0, 1, 1]),
                "fixture A (docs/upstream/next-losses.md)",
                "anchors 0 and 3 keep no pair: their negative part is log(e^-20 + 0) + 20 = -inf in float16, times 0",
                reaches={"mining": "multi_similarity_mined"},
            ),
        ),
    ),
    Divergence(
        id="tfsim-circle-sum-of-two-softpluses",
        confirmed_by="tests/adapters/test_adapter_tf_similarity_softmax.py::test_circle_adds_two_softpluses_and_keeps_the_weights",
        adapter="tfsim.CircleLoss",
        kind="semantics",
        reason="TF-Similarity's CircleLoss has Sun et al.'s weights and logits, but combines them as log(1 + sum_p "
        "e^l_p) + log(1 + sum_n e^l_n) = log((1 + A)(1 + B)) where eq. 6 (and PML) has log(1 + A B), about log 2 more "
        "on an easy anchor (fixture A: 20.239719 against the spec's 19.546574 with reduction mean, per anchor 1.386 "
        "against 0.693); and its weights are not stop-gradient'ed, so the gradient is the value's derivative, not the "
        "spec's (6.4 apart on A). No Spec expresses it; the claim is the nearest spec (mean over every anchor, an "
        "anchor without a pair 0, as its Keras mean). The adapter claims float32 and float64 only.",
        link="tensorflow/similarity tensorflow_similarity/losses/circle_loss.py (0.17.1)",
        spec={"mining": "circle"},
        # the fixed edge batches with an anchor that has a pair of each (one class and all-unique have none: 0 in both)
        check=(CONFORMANCE, "edge:singletons", "edge:full_collapse", "edge:duplicates"),
        regressions=(
            Regression(
                np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]]), np.array([0, 0, 1, 1]),
                "fixture A (docs/upstream/next-losses.md)",
                "every anchor has a positive and a negative: log((1 + A)(1 + B)) against log(1 + A B)",
                reaches={"mining": "circle"},
            ),
        ),
    ),
    Divergence(
        id="tfsim-simclr-twice-nt-xent",
        confirmed_by="tests/adapters/test_adapter_tf_similarity_softmax.py::test_simclr_is_twice_the_paper_s_nt_xent",
        adapter="tfsim.SimCLRLoss",
        kind="semantics",
        reason="SimCLRLoss returns per example contrast(za, zb)_i + contrast(zb, za)_i, the sum of both views' "
        "cross-entropies with no 1/2, and Keras averages over the B examples: the loss and its gradient are exactly "
        "twice Chen et al.'s NT-Xent, whose mean runs over the 2B rows of both views (eq. 1 and L = 1/(2N) sum). "
        "za = (x0, x2), zb = (x1, x3) of fixture A: 1.6041572 at t = 1, the paper's 0.8020786. Since PR #262 (0.17.0, "
        "the symmetric sum; 0.16 took half of one direction plus a margin of 0.001). No Spec expresses it: the claim is "
        "the paper's loss. Every edge batch shows it (SimCLR reads no label: each has terms above 0); float32, the one "
        "dtype SimCLRLoss runs in (tfsim-simclr-float32-only).",
        link="tensorflow/similarity tensorflow_similarity/losses/simclr.py SimCLRLoss.call (0.17.1); PR #262",
        spec={"mining": "simclr"},
        dtype="float32",
        check=(CONFORMANCE, "edge:no_negative", "edge:singletons", "edge:full_collapse", "edge:duplicates"),
        regressions=(
            Regression(
                np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [-0.8, 0.6]]), np.array([0, 1, 0, 1]),
                "za = (x0, x2), zb = (x1, x3) of fixture A (docs/upstream/next-losses.md 3.3)",
                "the paper's loss is 2.009078 at t = 0.05 and 0.668040 at t = 0.5; SimCLRLoss gives twice that",
                reaches={"mining": "simclr"},
            ),
        ),
    ),
    Divergence(
        id="tfsim-simclr-float32-only",
        confirmed_by="tests/adapters/test_adapter_tf_similarity_softmax.py::test_simclr_rejects_every_dtype_but_float32",
        adapter="tfsim.SimCLRLoss",
        kind="unsupported",
        reason="SimCLRLoss suppresses each row's own logit by subtracting tf.one_hot(...) * 1e9, and tf.one_hot is "
        "float32: float64, float16 and bfloat16 embeddings raise InvalidArgumentError in that Sub.",
        link="tensorflow/similarity tensorflow_similarity/losses/simclr.py SimCLRLoss.contrast (0.17.1)",
        spec={"mining": "simclr"},
        dtype=("float64", "float16", "bfloat16"),
    ),
)
