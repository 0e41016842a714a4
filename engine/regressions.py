"""Regression batches: every behaviour a search once found becomes an explicit example that every cell it
reaches runs first, so that the derandomised profile meets it on every run.

A batch that pins a known divergence lives on its registry entry (adapters/known_*.py, `regressions=`);
the ones here pin behaviour that is not a divergence (a correct implementation must pass them).
"""
from __future__ import annotations

import numpy as np

from adapters.divergences import REGISTRY
from reference import Spec

from .batch import Batch, Regression, found

OWN: tuple[Regression, ...] = (
    Regression(
        np.array([[1.0], [2.0], [-1.0], [3.0], [-2.0]]), np.array([0, 0, 1, 1, 0]), "cosine D=1",
        "notes/measured.md: cosine with D=1 gives distances of exactly 0 or 2, every selection a tie; TF-Addons "
        "float32 turns some zeros into ~1e-7 and its semi-hard choice moves the loss by up to 0.8: ambiguous, not a "
        "divergence",
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
    Regression(
        *found("semi_hard_wide_spread"), "15 near semi-hard decisions, wide spread",
        "the thorough hunt: 15 rows of two classes, |x| up to 111 in D = 11, where 15 distances sit within the Gram "
        "expansion's rounding of a semi-hard decision; TF-Addons' loss lay 0.04 below both extreme nudges, so the "
        "extremes do not bound semi-hard's admissible losses (engine/compare.py `_monotone`)",
        reaches={"mining": "semi_hard"},
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
)


def all_regressions() -> tuple[Regression, ...]:
    return OWN + tuple(regression for entry in REGISTRY for regression in entry.regressions)


def regression_examples(spec: Spec, prop: str | None = None, dtype: str | None = None) -> list[Batch]:
    """The regression batches for `spec`: every one that reaches it for a conformance cell, those meant for the
    property check `prop` too for that property; with `dtype`, those whose coordinates the dtype holds."""
    return [regression.batch(spec) for regression in all_regressions() if regression.applies(spec, prop, dtype)]
