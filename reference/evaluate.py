"""The entry point: validate, measure distances, run the strategy, carry dL/dD back to embeddings."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .distances import normalize_backward, normalize_rows, pairwise, pairwise_backward
from .gaps import ZERO_DISTANCE, ZERO_NORM, in_distance_units
from .spec import Spec
from .losses import LOSSES
from .terms import Terms, smallest
from .validation import as_class_sets, as_embeddings, as_labels, as_layout, as_spec, as_triplets


@dataclass(frozen=True)
class Answer:
    """What the oracle says about one batch (the one name of its reply; a strategy's part of it is `Terms`).

    spec, labels, triplets   what it was asked about (labels as int64, triplets [T, 3] or None)
    loss       the reduced loss (float64; NaN where the spec says NaN)
    grad       dL/d embeddings, [N, D]; all NaN where the loss is NaN (what autograd gives for 0/0)
    distances  the N x N distance matrix the strategy saw
    grad_dist  dL/dD[i, j], the loss's slope in each distance (how a distance's rounding moves the loss)
    measured   the rows the distances are measured between: unit rows for normalize or cosine, else the input
    norms      the input rows' norms (normalisation divides by them)
    selection  one row per term: (a, p, n) or, for contrastive, (i, j); -1 marks a constant-0 distance
    values     each term's loss;  weights: each term's coefficient in `loss`
    operands   each term's operands' magnitude where its arithmetic rounds at more than its reads (Terms), or None
    shares     the log-sum-exp terms' (term, i, j, share, logit rate, slope rate) rows (Terms), or None
    loss_slopes  dL/dD of the loss's value where the gradient holds weights constant (circle), or None: grad_dist
    gaps       decision kind -> the smallest margin of this input from that kind of decision point
    gap        min(gaps) over the kinds measured in the embedding space (distances, norms): how far the rows may
               move before a decision flips; a soft term's value (soft_underflow) is no such distance
    """

    spec: Spec
    labels: np.ndarray
    triplets: np.ndarray | None
    loss: float
    grad: np.ndarray
    distances: np.ndarray
    grad_dist: np.ndarray
    measured: np.ndarray
    norms: np.ndarray
    selection: np.ndarray
    values: np.ndarray
    weights: np.ndarray
    operands: np.ndarray | None
    shares: np.ndarray | None
    loss_slopes: np.ndarray | None
    gaps: dict
    gap: float

    def at_distances(self, dist: np.ndarray) -> Terms:
        """The strategy's terms had the distances been `dist` (what-if questions: admissible outcomes)."""
        return evaluate_distances(dist, self.labels, self.spec, self.triplets)


def evaluate(embeddings, labels, spec: Spec = Spec(), triplets=None) -> Answer:
    """The loss `spec` describes, its analytic gradient, and how far the input is from a decision point
    (the decision-gap kinds and what each means are declared in reference/gaps.py)."""
    spec = as_spec(spec)
    x = as_embeddings(embeddings)
    triplets = as_triplets(triplets, spec, len(x))
    y = read_labels(labels, len(x), spec)

    unit, norms = normalize_rows(x)
    rows = unit if spec.normalize else x
    dist = pairwise(rows, spec.distance)
    outcome = LOSSES[spec.mining].oracle(dist, y, spec, triplets)
    grad = pairwise_backward(rows, dist, outcome.grad_dist, spec.distance)
    if spec.normalize:
        grad = normalize_backward(unit, norms, grad)
    if not np.isfinite(outcome.loss):
        grad = np.full_like(x, np.nan)

    gaps = {kind: value for kind, value in outcome.gaps.items()}
    if spec.distance == "euclidean":
        carries = (outcome.grad_dist + outcome.grad_dist.T != 0) & ~np.eye(len(x), dtype=bool)
        gaps[ZERO_DISTANCE] = smallest(dist[carries])
    if spec.normalize or spec.distance == "cosine":
        gaps[ZERO_NORM] = smallest(np.linalg.norm(x, axis=1))
    return Answer(
        spec=spec,
        labels=y,
        triplets=triplets,
        loss=outcome.loss,
        grad=grad,
        distances=dist,
        grad_dist=outcome.grad_dist,
        measured=unit if spec.normalize or spec.distance == "cosine" else x,
        norms=norms,
        selection=outcome.selection,
        values=outcome.values,
        weights=outcome.weights,
        operands=outcome.operands,
        shares=outcome.shares,
        loss_slopes=outcome.loss_slopes,
        gaps=gaps,
        gap=smallest([value for kind, value in gaps.items() if in_distance_units(kind)]),
    )


def read_labels(labels, n: int, spec: Spec) -> np.ndarray:
    """The labels as int64 [N], in the layout the spec's loss reads (reference/validation.py)."""
    loss = LOSSES[spec.mining]
    return as_layout(as_labels(as_class_sets(labels) if loss.labels == "class sets" else labels, n), loss)


def evaluate_distances(distances, labels, spec: Spec, triplets=None) -> Terms:
    """The strategy of `spec` on a given distance matrix (no embeddings): its loss, dL/dD, selection and gaps.

    What-if questions ask this: the loss had two tied distances come out the other way round."""
    spec = as_spec(spec)
    distances = np.asarray(distances, dtype=np.float64)
    labels = read_labels(labels, len(distances), spec)
    return LOSSES[spec.mining].oracle(distances, labels, spec, as_triplets(triplets, spec, len(distances)))
