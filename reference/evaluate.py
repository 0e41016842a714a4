"""The entry point: validate, measure distances, run the strategy, carry dL/dD back to embeddings."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .distances import normalize_backward, normalize_rows, pairwise, pairwise_backward
from .spec import Spec
from .strategies import STRATEGIES
from .terms import smallest
from .validation import as_embeddings, as_labels, as_spec, as_triplets


@dataclass(frozen=True)
class Result:
    """What the oracle says about one batch.

    loss       the reduced loss (float64; NaN where the spec says NaN)
    grad       dL/d embeddings, [N, D]; all NaN where the loss is NaN (what autograd gives for 0/0)
    distances  the N x N distance matrix the strategy saw
    selection  one row per term: (a, p, n) or, for contrastive, (i, j); -1 marks a constant-0 distance
    values     each term's loss;  weights: each term's coefficient in `loss`
    gaps       decision kind -> the smallest margin of this input from that kind of decision point
    gap        min(gaps): below what a dtype resolves, the input is ambiguous for that dtype
    """

    spec: Spec
    loss: float
    grad: np.ndarray
    distances: np.ndarray
    selection: np.ndarray
    values: np.ndarray
    weights: np.ndarray
    gaps: dict
    gap: float


def evaluate(embeddings, labels, spec: Spec = Spec(), triplets=None) -> Result:
    """The loss `spec` describes, its analytic gradient, and how far the input is from a decision point.

    Decision-gap kinds, all in distance units except zero_norm (embedding units):
      hinge                a term's hinge argument at 0 (also where mean_nonzero's count changes)
      tie_positive         batch_hard: farthest vs second-farthest positive of an anchor
      tie_negative         batch_hard / semi_hard: nearest vs runner-up negative (fallbacks: farthest)
      semi_hard_selection  semi_hard: some d_an equal to d_ap (the strict > flips the selection)
      window_lower/upper   semi_hard_all: d_an - d_ap at 0 or at m
      zero_distance        euclidean: a pair that carries gradient at distance 0 (sqrt's kink)
      zero_norm            normalize or cosine: the smallest embedding norm (x / ||x|| undefined at 0)
      collapse             scaled batch_hard: mean(hn), the divisor (0 at full collapse: 0/0 or +-inf)
    """
    spec = as_spec(spec)
    x = as_embeddings(embeddings)
    y = as_labels(labels, len(x))
    triplets = as_triplets(triplets, spec, len(x))

    unit, norms = normalize_rows(x) if spec.normalize else (x, None)
    dist = pairwise(unit, spec.distance)
    outcome = STRATEGIES[spec.mining](dist, y, spec, triplets)
    grad = pairwise_backward(unit, dist, outcome.grad_dist, spec.distance)
    if spec.normalize:
        grad = normalize_backward(unit, norms, grad)
    if not np.isfinite(outcome.loss):
        grad = np.full_like(x, np.nan)

    gaps = {kind: value for kind, value in outcome.gaps.items()}
    if spec.distance == "euclidean":
        carries = (outcome.grad_dist + outcome.grad_dist.T != 0) & ~np.eye(len(x), dtype=bool)
        gaps["zero_distance"] = smallest(dist[carries])
    if spec.normalize or spec.distance == "cosine":
        gaps["zero_norm"] = smallest(np.linalg.norm(x, axis=1))
    return Result(
        spec=spec,
        loss=outcome.loss,
        grad=grad,
        distances=dist,
        selection=outcome.selection,
        values=outcome.values,
        weights=outcome.weights,
        gaps=gaps,
        gap=smallest(list(gaps.values())),
    )
