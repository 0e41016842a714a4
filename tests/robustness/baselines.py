"""Reference lines for the sweeps: batch hard (TF-Addons' triplet_hard_loss semantics) on distances
measured in NumPy float32 three ways, everything after the distances exact (the oracle's strategy).

numpy.gram-float32            |x_i|^2 + |x_j|^2 - 2 x_i.x_j as is (TF-Addons, torch.cdist above 25 rows)
numpy.gram-recentred-float32  the same after subtracting the float32 centroid
numpy.difference-float32      |x_i - x_j| from the difference of every pair

The gradient is the Gram form's backward, sum_j c_ij (x_i - x_j) computed as x_i sum_j c_ij - sum_j c_ij x_j
(torch.cdist's `_euclidean_dist_backward`, autograd through the expansion), for the two Gram lines, and
from the differences for the third; c_ij = (dL/dd_ij + dL/dd_ji) / d_ij, 0 at d = 0.

They show the sweeps measure what they claim: the raw expansion leaves its bound as the offset grows,
the re-centred one stays within it at every offset but not at near-duplicates, the difference form
stays within every bound (the bound is achievable).

For the temperature sweep, two torch float32 lines of multiple negatives (InfoNCE) on the cosine similarity:

torch.softmax-unshifted-float32  log(sum_j e^(s_ij / t)) - s_ii / t as written: e^(s / t) overflows once s / t > 88.7
torch.softmax-shifted-float32    torch's cross_entropy (log_softmax subtracts each row's largest logit first)
"""
from __future__ import annotations

import numpy as np

from adapters import wrap_numpy, wrap_torch
from reference import LOGIT_SCALES, Spec, evaluate_distances

SPEC = Spec(mining="batch_hard", distance="euclidean", margin=1.0)
METHODS = ("gram", "gram-recentred", "difference")


def _rows(x: np.ndarray, method: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x - x.mean(axis=0, dtype=np.float32) if method == "gram-recentred" else x


def _distances(x: np.ndarray, method: str) -> np.ndarray:
    """float32 distances of rows `x` (already re-centred where the method says so)."""
    if method == "difference":
        diff = x[:, None, :] - x[None, :, :]
        return np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    squares = np.einsum("ij,ij->i", x, x)
    d2 = np.maximum(squares[:, None] + squares[None, :] - np.float32(2) * (x @ x.T), np.float32(0))
    np.fill_diagonal(d2, 0)
    return np.sqrt(d2)


def _outcome(embeddings, labels, method: str, spec: Spec):
    x = _rows(embeddings, method)
    dist = _distances(x, method)
    return x, dist, evaluate_distances(dist.astype(np.float64), labels, spec)


def baseline(method: str):
    """An adapter measuring distances by `method` in float32."""

    def loss(embeddings, labels, spec):
        return float(np.float32(_outcome(embeddings, labels, method, spec)[2].loss))

    def grad(embeddings, labels, spec):
        x, dist, outcome = _outcome(embeddings, labels, method, spec)
        sym = (outcome.grad_dist + outcome.grad_dist.T).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            coeff = np.where(dist > 0, sym / dist, np.float32(0))
        if method == "difference":
            return np.einsum("ij,ijk->ik", coeff, x[:, None, :] - x[None, :, :])
        return coeff.sum(axis=1, keepdims=True) * x - coeff @ x

    return wrap_numpy(
        loss, grad, name=f"numpy.{method}-float32", spec=SPEC, dtypes=("float32",),
        notes=f"Reference line: batch hard on float32 distances measured by the {method} form.",
        source="tests/robustness/baselines.py",
    )


GRAM, RECENTRED, DIFFERENCE = (baseline(method) for method in METHODS)


SOFTMAX_SPEC = Spec(mining="multiple_negatives", distance="cosine")


def softmax_baseline(shifted: bool):
    """Multiple negatives on the unit rows' similarities s / t, its log-sum-exp shifted or not."""

    def loss(embeddings, labels, spec):
        import torch

        half = len(embeddings) // 2
        unit = torch.nn.functional.normalize(embeddings, dim=1)
        logits = unit[:half] @ unit[half:].T / spec.temperature
        if shifted:
            return torch.nn.functional.cross_entropy(logits, torch.arange(half))
        return (torch.log(torch.exp(logits).sum(dim=1)) - logits.diagonal()).mean()

    form = "shifted" if shifted else "unshifted"
    return wrap_torch(loss, name=f"torch.softmax-{form}-float32", spec=SOFTMAX_SPEC, free_fields=LOGIT_SCALES,
                      notes=f"Reference line: multiple negatives with its log-sum-exp {form}.",
                      source="tests/robustness/baselines.py")


UNSHIFTED, SHIFTED = softmax_baseline(shifted=False), softmax_baseline(shifted=True)
