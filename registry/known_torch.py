"""Known divergences of the torch-based implementations: PyTorch's own losses, seed 001, Quaterion (the library and
seed 003's re-derivation of its formula) and sentence-transformers."""
from __future__ import annotations

import numpy as np

from contract.batch import Regression, found

from .entry import CONFORMANCE, QUATERION_FORMULA, QUATERION_HARD, SENTENCE_TRANSFORMERS_HARD, Divergence

ENTRIES: tuple[Divergence, ...] = (
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
        "in one triplet and a negative in another: the oracle's two terms cancel, torch's eps directions add. "
        "There the loss is flat (the two terms' distances grow together), so a step against torch's gradient "
        "lowers it by no more than eps does: the descent property fails.",
        link="pytorch/pytorch#61538; aten/src/ATen/native/Distance.cpp pairwise_distance",
        check=("edge:duplicates", "grad", "property:descent"),
        regressions=(
            Regression(
                np.array([[0.0625, 0.0, 0.0], [0.0625, 0.0625, 0.0], [0.0625, 0.0, 0.0]]), np.array([0, 0, 0]),
                "a duplicate pair as positive and as negative",
                "rows 0 and 2 are one point; their pair is a positive in one triplet and a negative in the other, so the "
                "oracle's gradients cancel, while torch's eps directions add up (found by Hypothesis)",
                reaches={"mining": "triplets"}, triplets=np.array([[0, 2, 1], [2, 1, 0]]),
            ),
            Regression(
                np.array([[0.5, 0.0], [0.5, 0.0], [0.0, 1.5]]), np.array([0, 0, 0]),
                "a duplicate pair as positive and as negative, nothing else",
                "rows 0 and 1 are one point, a positive of (1, 1, 0) and a negative of (0, 1, 0): the loss is m "
                "wherever the two rows are, torch's gradient has length sqrt(2) (found by Hypothesis, descent)",
                reaches={"mining": "triplets"}, triplets=np.array([[1, 1, 0], [0, 1, 0]]), properties=("descent",),
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
        dtype=("float64", "float32", "float16"),  # bfloat16: below
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
        id="masked-minimum-ties-at-the-row-maximum-bfloat16",
        confirmed_by="tests/adapters/test_adapter_sentence_transformers.py::"
        "test_the_row_maximum_tie_in_bfloat16_is_resolved_except_for_soft_cosine",
        adapter=("torch.cdist-batch-hard", QUATERION_FORMULA, QUATERION_HARD, SENTENCE_TRANSFORMERS_HARD),
        kind="semantics",
        reason="masked-minimum-ties-at-the-row-maximum in bfloat16, where it is as large as the dtype's rounding: the "
        "negative's missing gradient is 1/N of the term's slope, and a soft term's slope at the tie is at most 1/2, "
        "so for the soft cosine specs it stays within bfloat16's gradient rounding on every batch (the unit rows' "
        "rounding, engine/tolerances.py `projection_rounding`) and is not claimed there; the hinge's slope of 1, and "
        "euclidean distances, keep it beyond. Soft squared distances are within the Gram expansion's backward rounding "
        "on the three-row regression batch (`gram_backward_rounding`) and beyond it on the drawn batches of the cells.",
        link="qdrant/quaterion quaterion/loss/triplet_loss.py (mining='hard'); "
        "tensorflow/addons tensorflow_addons/losses/triplet.py _masked_minimum",
        spec={"mining": "batch_hard", "distance": ("euclidean", "squared_euclidean")},
        dtype="bfloat16",
        check="grad",
        regressions=(
            Regression(
                np.array([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]), np.array([0, 0, 1]),
                "positive and negative at the row maximum, three rows",
                "the tie with no other decision near in bfloat16 (the four-row batch's hinge is within its rounding)",
                reaches={"mining": "batch_hard"},
            ),
        ),
    ),
    Divergence(
        id="masked-minimum-ties-at-the-row-maximum-bfloat16-cosine-hinge",
        confirmed_by="tests/adapters/test_adapter_sentence_transformers.py::"
        "test_the_row_maximum_tie_in_bfloat16_is_resolved_except_for_soft_cosine",
        adapter=("torch.cdist-batch-hard", QUATERION_FORMULA, QUATERION_HARD, SENTENCE_TRANSFORMERS_HARD),
        kind="semantics",
        reason="masked-minimum-ties-at-the-row-maximum-bfloat16 for the hinge's cosine specs (the soft ones stay "
        "within bfloat16's rounding).",
        link="qdrant/quaterion quaterion/loss/triplet_loss.py (mining='hard')",
        spec={"mining": "batch_hard", "distance": "cosine", "soft": False},
        dtype="bfloat16",
        check="grad",
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
        id="st-batch-all-float32-sum-overflows",
        confirmed_by="tests/adapters/test_adapter_sentence_transformers.py::"
        "test_batch_all_float32_sum_overflows_where_the_mean_fits",
        adapter="st.BatchAllTripletLoss",
        kind="precision",
        reason="BatchAllTripletLoss takes its mean over the positive terms as triplet_loss.sum() / count, the sum in "
        "float32 (float16 and bfloat16 embeddings come back as float32): past float32's 3.4e38 the sum is inf where "
        "the mean fits. Two rows 2^62 apart with 16 copies of the other class between them: 32 terms of 1.6e37, the "
        "spec's mean 1.6e37, the library's inf. Found by a random example of the dev profile (bfloat16, a wide-scale "
        "batch of 51 rows: the spec's 2.4e35, inf).",
        link="UKPLab/sentence-transformers sentence_transformers/sentence_transformer/losses/batch_all_triplet.py "
        "batch_all_triplet_loss (triplet_loss.sum() / (num_positive_triplets + 1e-16))",
        spec={"mining": "batch_all", "distance": "squared_euclidean"},
        dtype=("float32", "bfloat16"),
        check="loss",
        regressions=(
            Regression(
                np.array([[2.0**61], [-(2.0**61)]] + [[0.0]] * 16), np.array([0, 0] + [1] * 16),
                "two rows 2^62 apart, 16 copies of the other class between them",
                "32 hinge terms of 1.6e37 each (squared distances 2^124 and 2^122): a float32 sum of them overflows, "
                "their mean does not",
                reaches={"mining": "batch_all", "distance": "squared_euclidean", "normalize": False, "soft": False},
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
        "a one-class float32 batch of 64 rows in D = 16 (the regression batch) a third of the rows keep d(a, a) up "
        "to 2e-3, and the loss is 1.2e-4 to 1.3e-4 under the margin 0.5, 9 to 10 times the allowance, under each "
        "kernel set tried (MKL's AVX-512, AVX2 and SSE4.2 kernels, MKL_CBWR=COMPATIBLE, ATen's DEFAULT: "
        "engine/machine.py narrowest_kernels); soft=True's mean of softplus(-d(a, a)) is 2.5e-4 under log 2. The "
        "batches first found, 26 rows in D = 2 (the thorough hunt; soft: the real library's environment), go "
        "exact without FMA: a GEMM that sums each dot product in the order the norms were summed leaves d(a, a) = "
        "0 in so few dimensions, so they confirmed the divergence on some CPUs only.",
        link="qdrant/quaterion quaterion/loss/triplet_loss.py (mining='hard'); pytorch/pytorch#57690, #123082",
        spec={"mining": "batch_hard", "distance": "euclidean"},  # Quaterion's claims there: scaled, and soft
        dtype="float32",
        check="loss",
        regressions=(
            Regression(
                np.random.default_rng(2).normal(size=(64, 16)) * 0.5 + 0.5, np.zeros(64, dtype=np.int64),
                "one class of 64 rows in D = 16",
                "no negative at all: the masked-minimum fallback reads d(a, a), which cdist's Gram expansion (64 "
                "rows) leaves above 0 whatever order its kernel sums in",
                reaches={"mining": "batch_hard", "distance": "euclidean"},
            ),
        ),
    ),
    Divergence(
        id="quaterion-fallback-reads-the-cdist-diagonal-far-from-the-origin",
        confirmed_by="tests/adapters/test_adapter_seeds.py::"
        "test_quaterion_one_class_batch_far_from_the_origin_reads_the_cdist_diagonal_in_float64",
        adapter=(QUATERION_FORMULA, QUATERION_HARD),
        kind="precision",
        reason="quaterion-fallback-reads-the-cdist-diagonal in float64: far from the origin the Gram expansion's "
        "d(a, a) reaches float64's tolerance too; the scaled loss divides the diagonal's error by mean(hn), where "
        "the spec reads no diagonal at all. A one-class batch of 26 rows in D = 32, 5.7e3 from the origin (the "
        "regression batch), gives 1.2e-5 under the margin 0.5, 72 to 82 times the allowance under each kernel set "
        "tried (as in quaterion-fallback-reads-the-cdist-diagonal). The batch first found (a random example of the "
        "dev profile: 34 rows in D = 3, coordinates of 8e4, 5.4 times the allowance) goes exact without FMA.",
        link="qdrant/quaterion quaterion/loss/triplet_loss.py (mining='hard'); pytorch/pytorch#57690, #123082",
        spec={"mining": "batch_hard", "distance": "euclidean", "scaled": True},
        dtype="float64",
        check="loss",
        regressions=(
            Regression(
                np.random.default_rng(0).normal(size=(26, 32)) * 0.5 + 1000.0, np.zeros(26, dtype=np.int64),
                "one class of 26 rows in D = 32, 5.7e3 from the origin",
                "no negative at all, and coordinates of 1e3: the masked-minimum fallback reads d(a, a), which "
                "cdist's Gram expansion leaves at up to 1.7e-4 even in float64",
                reaches={"mining": "batch_hard", "distance": "euclidean", "scaled": True},
            ),
        ),
    ),
    Divergence(
        id="pml-npairs-first-pair-per-class",
        confirmed_by="tests/adapters/test_adapter_pml.py::test_npairs_keeps_the_first_pair_of_each_class",
        adapter="pml.NPairsLoss",
        kind="semantics",
        reason="NPairsLoss builds its pairs from the labels and keeps one per class: the first ordered positive pair "
        "in row-major order (losses/n_pairs_loss.py, utils/loss_and_miner_utils.py "
        "convert_to_pos_pairs_with_unique_labels). Where pairs share a class that is two anchors, and the class's "
        "other pairs are dropped; TF-Addons' npairs (the spec) keeps every pair and spreads an anchor's target over "
        "every positive of its class. The two agree only when every pair has a class of its own. It also makes the "
        "loss depend on the order of the pairs (property:permutation), and a batch of one class is one pair, "
        "loss 0 (edge cases no_negative, full_collapse, duplicates and singletons, in the pairs layout).",
        link="KevinMusgrave/pytorch-metric-learning src/pytorch_metric_learning/losses/n_pairs_loss.py",
        spec={"mining": "npairs"},
        check=(CONFORMANCE, "property:permutation", "edge:no_negative", "edge:singletons", "edge:full_collapse",
               "edge:duplicates"),
        regressions=(
            Regression(
                np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 5.0], [0.5, 0.0], [3.0, 0.5], [0.0, 4.0]]),
                np.array([0, 0, 1, 0, 0, 1]), "two pairs of class 0 and a pair of class 1",
                "PML keeps rows 0 and 1 (both anchors) as class 0's pair and drops the positives 3 and 4",
                reaches={"mining": "npairs"}, properties=("permutation",),
            ),
        ),
    ),
    Divergence(
        id="pml-supcon-zero-without-a-negative-pair",
        confirmed_by="tests/adapters/test_adapter_pml.py::test_supcon_is_zero_without_a_negative_pair",
        adapter="pml.SupConLoss",
        kind="edge_case",
        reason="SupConLoss is one of PML's pair losses: a batch without a negative pair (one class) returns the zero "
        "loss before any term is computed (losses/generic_pair_loss.py, docs/upstream/next-losses.md section 1.5). "
        "Khosla et al.'s L_out, the spec, has a term there: each anchor's softmax runs over every other row, all of "
        "them positives, and its term is their log-sum-exp minus their mean logit, > 0 with three rows or more "
        "(fixture A in one class at t = 0.1: 2.88 against PML's 0). The one-class batch is among every cell's "
        "extremes.",
        link="KevinMusgrave/pytorch-metric-learning src/pytorch_metric_learning/losses/generic_pair_loss.py",
        spec={"mining": "supcon"},
        check=(CONFORMANCE, "edge:no_negative"),
    ),
    Divergence(
        id="pml-one-mined-pair-each-zero",
        confirmed_by="tests/adapters/test_adapter_pml.py::test_multi_similarity_is_zero_when_one_pair_of_each_is_mined",
        adapter="pml.MultiSimilarityLoss+MultiSimilarityMiner",
        kind="edge_case",
        reason="PML's pair losses return the zero loss, with gradient 0, when every index tensor they are given holds at "
        "most one element (losses/generic_pair_loss.py compute_loss: `if all(len(x) <= 1 for x in indices_tuple)`). "
        "Without a miner the pairs come in both orders, so it never fires; with MultiSimilarityMiner a batch where one "
        "anchor keeps one positive and one negative pair (and no other anchor keeps any) gives 0, where the spec gives "
        "that anchor's term over N: 0.599069 / 3 = 0.199690 on the regression batch, with beta 50 or 40.",
        link="KevinMusgrave/pytorch-metric-learning src/pytorch_metric_learning/losses/generic_pair_loss.py",
        spec={"mining": "multi_similarity_mined"},
        check=CONFORMANCE,
        regressions=(
            Regression(
                np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]), np.array([0, 1, 0]),
                "one anchor mines one positive and one negative pair",
                "anchor 2 keeps its positive (s = 0.6 - 0.1 < 0.8) and its negative (0.8 + 0.1 > 0.6); anchor 0 keeps "
                "nothing (0.5 > 0), anchor 1 has no positive: PML's miner returns one pair of each, and its loss 0 "
                "(found by Hypothesis on a 3-row clustered batch)",
                reaches={"mining": "multi_similarity_mined"},
            ),
        ),
    ),
    Divergence(
        id="pml-ntxent-pair-capped-at-minus-log-tiny",
        confirmed_by="tests/adapters/test_adapter_pml.py::test_ntxent_caps_a_pair_at_minus_log_tiny",
        adapter="pml.NTXentLoss",
        kind="precision",
        reason="NTXentLoss takes -log(p + tiny) of each positive pair's softmax probability p (losses/ntxent_loss.py, "
        "tiny = torch.finfo(dtype).tiny), so a pair's term stops at -log(tiny), 87.3 in float32 and 708.4 in float64, "
        "and its gradient vanishes there. A cosine logit gap of 1 reaches it at temperature 1/87 (float32): the "
        "temperature sweep's 1e-4 gives gaps of up to 2e4. Fixture A at t = 1e-4: 354.2 in float64 (two pairs capped), "
        "against the spec's 1000.",
        link="KevinMusgrave/pytorch-metric-learning src/pytorch_metric_learning/losses/ntxent_loss.py",
        spec={"mining": ("ntxent", "simclr")},  # simclr: NTXentLoss on labels [0..B-1, 0..B-1]
        check="robustness:temperature",
    ),
    Divergence(
        id="pml-circle-softplus-linear-above-20",
        confirmed_by="tests/adapters/test_adapter_pml.py::test_circle_softplus_is_linear_above_20",
        adapter="pml.CircleLoss",
        kind="precision",
        reason="CircleLoss applies torch.nn.Softplus(beta=1), whose threshold 20 returns x itself for x > 20: each "
        "anchor's term loses log(1 + e^-x), up to 2.1e-9, and its slope 1 - sigmoid(x). That is below float32's "
        "resolution at 20 and far above float64's (4e-15): float64 terms above 20 (gamma 80 on the sweeps' batch, "
        "gamma 100 at the temperature sweep's 1e-2) leave the robustness bound: every level of the scale sweep, and "
        "the near-duplicate sweep's on the batches of its full run (its quick run's batch has no term between 20 and 26, "
        "where the dropped e^-x, shared by 32 anchors, exceeds that bound). "
        "The conformance cells' float64 tolerance (its table's atol) is wider than 2e-9.",
        link="KevinMusgrave/pytorch-metric-learning src/pytorch_metric_learning/losses/circle_loss.py",
        spec={"mining": "circle"},
        dtype="float64",
        check=("robustness:scale", "robustness:temperature"),
    ),
)
