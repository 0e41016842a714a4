"""Regression batches: every behaviour a search once found becomes an explicit example that every cell it
reaches runs first, so that the derandomised profile meets it on every run.

A batch that pins a known divergence lives on its registry entry (registry/known_*.py, `regressions=`);
the ones here pin behaviour that is not a divergence (a correct implementation must pass them).
"""
from __future__ import annotations

import numpy as np

from contract.batch import Batch, Regression, found
from reference import Spec, minings_of
from registry import REGISTRY

OWN: tuple[Regression, ...] = (
    Regression(
        np.array([[1.0], [2.0], [-1.0], [3.0], [-2.0]]), np.array([0, 0, 1, 1, 0]), "cosine D=1",
        "docs/upstream/measured.md: cosine with D=1 gives distances of exactly 0 or 2, every selection a tie; "
        "TF-Addons float32 turns some zeros into ~1e-7 and its semi-hard choice moves the loss by up to 0.8: "
        "ambiguous, not a divergence",
        reaches={"distance": "cosine"},
    ),
    # Exact ties on small integers, which every implementation computes exactly in every dtype: the spec's own
    # rule decides them (engine/exactness.py), so a `>=` for semi-hard's strict `>`, a flipped window edge or a
    # `>= 0` count of mean_nonzero changes the loss here on every run.
    Regression(
        np.array([[0.0], [2.0], [-2.0], [3.0]]), np.array([0, 0, 1, 1]), "semi-hard negative tied with the positive",
        "anchor 0's positive and its negative -2 are both 2 away: the strict d_an > d_ap of semi_hard skips -2 and "
        "takes 3; `>=` takes -2",
        reaches={"mining": "semi_hard"},
    ),
    Regression(
        np.array([[0.0], [1.0], [-1.0], [2.0], [-1.5]]), np.array([0, 0, 1, 1, 1]), "semi-hard window edges, exactly",
        "d_an - d_ap is exactly 0 (-1 from anchor 0; 2 from anchor 1: excluded) and exactly m = 1 (2 from anchor 0, -1 "
        "from anchor 1: included, with term 0) for euclidean distances",
        reaches={"mining": "semi_hard_all"},
    ),
    Regression(
        np.array([[0.0, 0.0], [2.0, 0.0], [-2.0, 0.0], [2.0, 1.0], [0.5, 2.0]]), np.array([0, 0, 1, 1, 1]),
        "semi-hard window edges in squared distances",
        "from anchor 0 (d_ap = 4): -2 at 4 (lower edge, excluded), (2, 1) at 5 (upper edge m = 1, included), "
        "(0.5, 2) at 4.25 (inside)",
        reaches={"mining": "semi_hard_all", "distance": "squared_euclidean"},
    ),
    Regression(
        np.array([[0.0], [1.0], [2.0], [0.5]]), np.array([0, 0, 1, 1]), "a hinge exactly at zero",
        "the triplet (0, 1, 2) has d_ap - d_an + m = 1 - 2 + 1 = 0 exactly: mean_nonzero does not count it",
        reaches={"reduction": "mean_nonzero"},
    ),
    # The same count over soft terms: every softplus is > 0 and counts, unless the dtype cannot hold it (below its
    # smallest normal number, reference/gaps.py soft_underflow): then either count is admissible, else it must count.
    Regression(
        np.array([[-82.749], [54.932], [-82.749], [-82.749]]), np.array([2, 2, 1, 1]), "soft terms float32 rounds to 0",
        "from anchors 2 and 3 the negative 54.932 gives softplus(-137.681) = 1.6e-60, below float32's smallest normal "
        "number: pytorch-metric-learning 2.9's smooth_loss (AvgNonZeroReducer) leaves both out of its count, 46.36 "
        "where the spec's 8 terms give 34.77 (gradient 4/3 of the spec's): admissible in float32, not in float64",
        reaches={"soft": True, "reduction": "mean_nonzero"},
    ),
    Regression(
        np.array([[0.0], [80.0], [0.0], [0.0]]), np.array([2, 2, 1, 1]), "a soft term float32 holds as a normal number",
        "softplus(-80) = 1.8e-35, 1500 times float32's smallest normal number: it counts, in every dtype that holds "
        "it; omoindrot's and Quaterion's count of terms > 1e-16 leaves it out and divides by 6 for the spec's 8",
        reaches={"soft": True, "reduction": "mean_nonzero"},
    ),
    Regression(
        np.array([[160.0], [60.0], [120.0], [0.0]]), np.array([1, 0, 1, 0]), "a softmax that is a hard maximum",
        "logits 60 / t and more apart: a step the decision gaps allow moves them by tens of units, past the "
        "curvature of the log-sum-exp (a kink, at this scale), and the oracle's own loss fell by less than a quarter "
        "of its first-order drop; the descent property halves its step until the oracle's loss is near linear over it "
        "(suite/test_properties.py `_linear_step`)",
        reaches={"mining": minings_of("softmax row"), "distance": ("euclidean", "squared_euclidean")},
        properties=("descent",),
    ),
    Regression(
        *found("semi_hard_wide_spread"), "15 near semi-hard decisions, wide spread",
        "the thorough hunt: 15 rows of two classes, |x| up to 111 in D = 11, where 15 distances sit within the Gram "
        "expansion's rounding of a semi-hard decision; TF-Addons' loss lay 0.04 below both extreme nudges, so the "
        "extremes do not bound semi-hard's admissible losses (engine/compare.py `_monotone`)",
        reaches={"mining": "semi_hard"},
    ),
    Regression(
        *found("semi_hard_all_triplet_within_rounding"), "29 clustered rows with near duplicates, D = 13",
        "the dev profile's random search: the triplet (8, 7, 4) has d_an - d_ap = -9.1e-8, within float32's "
        "rounding of that decision, and pytorch-metric-learning's semihard miner (float32 cdist) takes it: 0.13291, "
        "above every admissible outcome but within the nudge allowance of one 8e-6 below the largest "
        "(engine/compare.py `measure_loss_against` measures from the outcome that reaches farthest)",
        reaches={"mining": "semi_hard_all"},
    ),
    Regression(
        np.array([[2614155.75], [26069902.0], [2614156.0], [6061968.5], [-1880966.5]]), np.array([0, 3, 1, 2, 1]),
        "softplus slopes at squared distances of 1e14",
        "the thorough hunt: float32 rounds d_ap - d_an by 1e7, past the sigmoid's width, so a correct float32 "
        "gradient's slopes may be 0, 1/2 or 1 where the spec's are 1 (engine/tolerances.py `slope_rounding`)",
        reaches={"soft": True},
    ),
    Regression(
        np.array([[183.19223022460938, 32.11342239379883], [183.19149780273438, 32.11335754394531]]),
        np.array([1, 1]), "a near-duplicate positive pair 186 from the origin",
        "the thorough hunt: the Gram expansion leaves the pair at sqrt(err), whose square (contrastive's term) is err, "
        "though the first-order slope 2 d is 0 there (engine/tolerances.py `curvature_rounding`)",
        reaches={"mining": "contrastive"},
    ),
    Regression(
        *found("soft_sum_past_float32"), "a soft batch_all sum past float32's range",
        "the thorough hunt: coordinates of 1e17, squared distances of 1e35, and a sum of terms of 4.3e38: the float32 "
        "loss is inf by the spec, its gradient finite (5.7e18); inhouse.torch cast the float64 sum to float32 before "
        "the reduction and returned NaN (inhouse/strategies.py `_WithGradient`)",
        reaches={"mining": "batch_all", "soft": True},
    ),
    Regression(
        *found("copies_tie_in_the_window"), "a positive and a negative that are one point",
        "the thorough hunt: rows 0, 2 and 4 are one point (two labels), so from anchor 1 d_an - d_ap = 0 exactly, "
        "outside semi_hard_all's window (0, m]; a matmul rounded the two columns of that point 1 ulp apart and "
        "inhouse.torch counted the triplet (0.2, where the spec gives NaN) (inhouse/distances.py "
        "`_the_same_for_copies`)",
        reaches={"mining": ("semi_hard_all", "semi_hard", "batch_all")},
    ),
    Regression(
        *found("window_edge_empties_the_batch"), "the only triplet 9e-9 inside the window's lower edge",
        "the thorough hunt: under empty=nan the loss is m (the triplet inside (0, m]) or NaN (outside, no triplet "
        "left), and the edge is within float32's rounding: either is admissible (engine/compare.py "
        "`measure_loss_against` accepts a NaN that a nudge of the decision gives)",
        reaches={"mining": "semi_hard_all"},
    ),
    Regression(
        *found("one_row_twice_at_the_l2_clamp"), "one row twice, two labels",
        "the thorough hunt: no positive pair, so the loss is NaN (empty=nan) and the spec defines no gradient; "
        "TF-Addons' gradient is 0 where its Gram expansion of the two rows rounds to 0 or below and NaN where it "
        "leaves a residue, which depends on the CPU's matmul: the gradient is not compared (engine/judge.py), the "
        "translation property included",
        reaches={"mining": "semi_hard", "empty": "nan"}, properties=("translation",),
    ),
    Regression(
        np.array([
            [0.1361313909292221, -0.001556362141855061, -0.07829294353723526, -0.22255326807498932, -0.0694664940237999, 0.0038240174762904644, -0.07196082174777985, 0.3319176733493805, 0.27558979392051697, -0.6983753442764282, -0.49187424778938293],
            [-0.4296607971191406, 0.12555737793445587, -0.11990033835172653, 0.4748615026473999, 0.48646190762519836, -0.10433503240346909, -0.1774509996175766, 0.37687447667121887, 0.1542947143316269, 0.3197060823440552, -0.112624891102314],
            [-0.23054468631744385, -0.3063347041606903, 0.08356308192014694, -0.0476452074944973, 0.4831658899784088, -0.0787854865193367, -0.4043712317943573, 0.4714328646659851, 0.37583670020103455, 0.07774439454078674, -0.26652660965919495],
            [0.544364333152771, 0.24657851457595825, -0.07357830554246902, 0.1956014782190323, -0.112300343811512, 0.11102500557899475, -0.07010777294635773, 0.3883601427078247, -0.29318296909332275, -0.37573426961898804, -0.43747419118881226],
        ]),
        np.array([1, 2, 2, 0]), "two anchors without a positive, unit rows in D = 11",
        "found by Hypothesis on TF-Similarity: rows 0 and 3 have no positive and an open hinge, and an implementation "
        "that reads their hp = 0 as its Gram diagonal gets sqrt of the residue of |a|^2 + |a|^2 - 2 a.a, which "
        "depends on the CPU's summation order (3.5e-4 on one float32 machine, 0 on another): within the Gram "
        "precision's rounding of d(a, a) (engine/tolerances.py `own_distance_rounding`; tests/engine/test_gram_diagonal.py)",
        reaches={"mining": "batch_hard", "distance": "euclidean"},
    ),
    Regression(
        np.array([
            [-5066631579.689697, 2083814401.0868502, 4706256773.879719, 1851976471.8220203, -3997411440.642073,
             -8005052712.462829, -22718108336.582455, 8381790418.460549],
            [-5066631579.39879, 2083814401.1852212, 4706256774.163181, 1851976471.536411, -3997411441.030835,
             -8005052712.503384, -22718108337.085133, 8381790418.837325],
            [-5066631579.39879, 2083814401.1852212, 4706256774.163181, 1851976471.5364113, -3997411441.030835,
             -8005052712.503385, -22718108337.085133, 8381790418.837325],
        ]), np.array([275449, 870769, 275449]), "near-duplicate directions 2.7e10 from the origin",
        "found by Hypothesis (dev profile) on inhouse.torch, scaled batch_hard: rows 1 and 2 differ by 1e-20 of their "
        "length, so their unit rows are one point or 1.4e-17 apart by the order of a sum of squares; the oracle "
        "says 0, inhouse.torch 1.4e-17, and the kink of sqrt between them turned its gradient by 3 "
        "(contract/precision.py: unit rows carry 2 u at distance 0 too; tests/engine/test_unit_row_rounding.py)",
        reaches={"normalize": True, "distance": "euclidean"},
    ),
    Regression(
        *found("cosine_d1_row_near_the_origin"), "one dimension, a row 7.3e-4 from the origin",
        "the thorough hunt: every cosine distance is 0 or 2 and the spec's gradient 0, but normalising the row near "
        "the origin leaves its unit row's rounding times 1 / |x| in the gradient (engine/tolerances.py "
        "`projection_rounding`): TF-Addons' fast rsqrt gave -2^-7 on an AVX2 CPU and 2^-11 on an AVX-512 one, "
        "both within its declared precision gram-fast-rsqrt",
        reaches={"distance": "cosine"},
    ),
    Regression(
        *found("cosine_near_parallel_rows"), "near-parallel rows, 8e-9 apart in angle, one 4.7e-4 from the origin",
        "the dev profile's random search: 1 - u_4.u_5 rounds to 0 (cos = 1 - 3.3e-17), and an oracle that clamped it "
        "cut the pair's gradient, circle's largest negative term (2e-5 on row 4, 1.2e-3 on row 5): inhouse.torch, "
        "right, failed. The oracle now measures 1 - cos from the unit rows' differences (reference/distances.py); "
        "an implementation that clamps 1 - u.u keeps the pair within rounding of 0 (engine/tolerances.py "
        "`grad_rounding`)",
        reaches={"distance": "cosine"},
    ),
)


def all_regressions() -> tuple[Regression, ...]:
    return OWN + tuple(regression for entry in REGISTRY for regression in entry.regressions)


def regression_examples(spec: Spec, prop: str | None = None, dtype: str | None = None) -> list[Batch]:
    """The regression batches for `spec`: every one that reaches it for a conformance cell, those meant for the
    property check `prop` too for that property; with `dtype`, those whose coordinates the dtype holds."""
    return [regression.batch(spec) for regression in all_regressions() if regression.applies(spec, prop, dtype)]
