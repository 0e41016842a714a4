"""Pairwise distances and their hand-derived backward, in float64.

Zero-distance convention (TF-Addons ``pairwise_distance``, torch ``cdist``): a pair at exactly zero
euclidean distance has distance 0 and contributes gradient 0.
"""
from __future__ import annotations

import numpy as np


def normalize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x / ||x|| row by row; a zero row stays zero (torch ``F.normalize``, TF ``l2_normalize``).

    Each row is first divided by its largest |coordinate|: squaring a row of 1e-160 would fall into
    subnormals and the unit row would miss unit length by 1e-11."""
    largest = np.max(np.abs(x), axis=1, initial=0.0)
    scaled = x / np.where(largest > 0, largest, 1.0)[:, None]
    scaled_norms = np.linalg.norm(scaled, axis=1)
    unit = scaled / np.where(scaled_norms > 0, scaled_norms, 1.0)[:, None]
    return unit, scaled_norms * largest


def normalize_backward(unit: np.ndarray, norms: np.ndarray, grad_unit: np.ndarray) -> np.ndarray:
    """d(x/||x||) is (I - u u^T) / ||x||; a zero row gets gradient 0."""
    radial = np.sum(unit * grad_unit, axis=1, keepdims=True)
    safe = np.where(norms > 0, norms, np.inf)
    return (grad_unit - unit * radial) / safe[:, None]


def pairwise(x: np.ndarray, distance: str) -> np.ndarray:
    """The N x N distance matrix, from differences (no Gram expansion, so no cancellation).

    euclidean          ||x_i - x_j||
    squared_euclidean  ||x_i - x_j||^2
    cosine             max(1 - cos(x_i, x_j), 0)  (TF-Addons ``angular_distance``: 1 - cos, not arccos)
    """
    if distance == "cosine":
        return _cosine(x)
    diff = x[:, None, :] - x[None, :, :]
    squared = np.einsum("ijk,ijk->ij", diff, diff)
    return squared if distance == "squared_euclidean" else np.sqrt(squared)


def pairwise_backward(x: np.ndarray, dist: np.ndarray, grad_dist: np.ndarray, distance: str) -> np.ndarray:
    """dL/dx from dL/dD, where D = pairwise(x, distance) and grad_dist[i, j] = dL/dD[i, j]."""
    sym = grad_dist + grad_dist.T  # D[i, j] and D[j, i] are the same function of x
    if distance == "cosine":  # D = |u_i - u_j|^2 / 2 + a constant: dD/du_i = u_i - u_j, projected by normalizing
        unit, norms = normalize_rows(x)
        return normalize_backward(unit, norms, _pull(sym, unit))
    if distance == "squared_euclidean":
        coeff = 2.0 * sym
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            coeff = np.where(dist > 0, sym / dist, 0.0)
    return _pull(coeff, x)


def sine_of_cosine_distance(dist: np.ndarray) -> np.ndarray:
    """sin(angle) = sqrt(D (2 - D)) for D = 1 - cos, the size of dD/du_i on the sphere; 1 - (1 - D)^2 would lose an
    angle of 1e-8 whole."""
    return np.sqrt(np.clip(dist * (2.0 - dist), 0.0, None))


def _pull(coeff: np.ndarray, x: np.ndarray) -> np.ndarray:
    """sum_j coeff_ij (x_i - x_j), from the differences: the expanded form coeff.sum(1) x_i - coeff @ x cancels the
    batch's offset away, and with it every bit of a gradient far from the origin (or, on unit rows, between
    near-parallel ones)."""
    return np.einsum("ij,ijk->ik", coeff, x[:, None, :] - x[None, :, :])


def _cosine(x: np.ndarray) -> np.ndarray:
    """1 - cos = |u_i - u_j|^2 / 2 on unit rows, a zero row's cosine 0: from the differences, so never below 0 (the
    spec's clamp never binds) and precise for near-parallel rows, where 1 - u_i.u_j rounds to 0 at angles below
    1.5e-8 and a clamp of it would cut their gradient."""
    unit, norms = normalize_rows(x)
    nonzero = (norms > 0).astype(np.float64)
    zero_row_offset = 1.0 - 0.5 * (nonzero[:, None] + nonzero[None, :])  # 0 between two rows that have a direction
    return 0.5 * pairwise(unit, "squared_euclidean") + zero_row_offset
