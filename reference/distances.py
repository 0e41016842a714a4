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
        unit, _ = normalize_rows(x)
        return np.maximum(1.0 - unit @ unit.T, 0.0)
    diff = x[:, None, :] - x[None, :, :]
    squared = np.einsum("ijk,ijk->ij", diff, diff)
    return squared if distance == "squared_euclidean" else np.sqrt(squared)


def pairwise_backward(x: np.ndarray, dist: np.ndarray, grad_dist: np.ndarray, distance: str) -> np.ndarray:
    """dL/dx from dL/dD, where D = pairwise(x, distance) and grad_dist[i, j] = dL/dD[i, j]."""
    sym = grad_dist + grad_dist.T  # D[i, j] and D[j, i] are the same function of x
    if distance == "cosine":
        unit, norms = normalize_rows(x)
        sym = np.where(1.0 - unit @ unit.T > 0, sym, 0.0)  # the clamp at 0 passes no gradient
        return normalize_backward(unit, norms, -sym @ unit)
    if distance == "squared_euclidean":
        coeff = 2.0 * sym
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            coeff = np.where(dist > 0, sym / dist, 0.0)
    # sum_j coeff_ij (x_i - x_j), from the differences: the expanded form coeff.sum(1) x_i - coeff @ x cancels
    # the batch's offset away, and with it every bit of a gradient far from the origin.
    return np.einsum("ij,ijk->ik", coeff, x[:, None, :] - x[None, :, :])
