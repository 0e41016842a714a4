"""The oracle's answer for one batch, with what the comparisons derive from it.

`reference.evaluate` gives the loss, gradient, distances, selection and decision gaps. The rounding
model in `tolerances` also needs dL/dD (how much each distance's rounding moves the loss), which the
strategy that `evaluate` runs computes on the way; it is read from the same strategy function here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import reference
from reference.distances import normalize_rows
from reference.strategies import STRATEGIES


@dataclass(frozen=True)
class Answer:
    """What the oracle says about one batch, plus dL/dD and the points the distances are taken between."""

    spec: reference.Spec
    labels: np.ndarray
    triplets: np.ndarray | None
    result: reference.Result
    grad_dist: np.ndarray  # dL/dD[i, j]
    points: np.ndarray  # the rows distances are measured between: unit rows for normalize or cosine
    norms: np.ndarray  # the input rows' norms (normalisation divides by them)

    @property
    def loss(self) -> float:
        return self.result.loss

    @property
    def grad(self) -> np.ndarray:
        return self.result.grad

    def strategy_loss(self, dist: np.ndarray) -> float:
        """The loss the strategy gives for another distance matrix (for admissible outcomes)."""
        return STRATEGIES[self.spec.mining](dist, self.labels, self.spec, self.triplets).loss


def answer(embeddings: np.ndarray, labels: np.ndarray, spec: reference.Spec, triplets=None) -> Answer:
    result = reference.evaluate(embeddings, labels, spec, triplets)
    labels = np.asarray(labels, dtype=np.int64)
    triplets = None if triplets is None else np.asarray(triplets, dtype=np.int64).reshape(-1, 3)
    outcome = STRATEGIES[spec.mining](result.distances, labels, spec, triplets)
    unit, norms = normalize_rows(embeddings)
    points = unit if spec.normalize or spec.distance == "cosine" else np.asarray(embeddings, dtype=np.float64)
    return Answer(spec, labels, triplets, result, outcome.grad_dist, points, norms)
