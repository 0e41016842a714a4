"""The oracle's answer for one batch, as the comparisons read it (reference.evaluate's public result)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import reference


@dataclass(frozen=True)
class Answer:
    """What the oracle says about one batch, with the inputs it was asked about."""

    spec: reference.Spec
    labels: np.ndarray
    triplets: np.ndarray | None
    result: reference.Result

    @property
    def loss(self) -> float:
        return self.result.loss

    @property
    def grad(self) -> np.ndarray:
        return self.result.grad

    @property
    def grad_dist(self) -> np.ndarray:
        """dL/dD[i, j]: how much each distance's rounding moves the loss."""
        return self.result.grad_dist

    @property
    def points(self) -> np.ndarray:
        """The rows distances are measured between: unit rows for normalize or cosine."""
        return self.result.measured

    @property
    def norms(self) -> np.ndarray:
        return self.result.norms

    def at_distances(self, dist: np.ndarray) -> reference.Outcome:
        """The strategy's outcome had the distances been `dist` (for admissible outcomes)."""
        return reference.evaluate_distances(dist, self.labels, self.spec, self.triplets)


def answer(embeddings: np.ndarray, labels: np.ndarray, spec: reference.Spec, triplets=None) -> Answer:
    labels = np.asarray(labels, dtype=np.int64)
    triplets = None if triplets is None else np.asarray(triplets, dtype=np.int64).reshape(-1, 3)
    return Answer(spec, labels, triplets, reference.evaluate(embeddings, labels, spec, triplets))
