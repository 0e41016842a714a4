"""The straightforward torch baselines the in-house implementation is measured against ("torch.naive").

batch_hard         as most code writes it: one torch.cdist matrix, masks, a masked max and min; that is the
                   `torch.cdist-batch-hard` adapter's function, adapters.torch_native.cdist_batch_hard
tiled_semi_hard    TF-Addons' triplet_semihard_loss transcribed to torch: it tiles the N x N distance
                   matrix into an [N^2, N] tensor, hence O(N^3) time and memory
"""
from __future__ import annotations

import torch


def tiled_semi_hard(x: torch.Tensor, labels: torch.Tensor, spec) -> torch.Tensor:
    """Spec(mining="semi_hard", distance="euclidean", margin=spec.margin, empty="nan"), TF-Addons' way."""
    margin = spec.margin
    n = len(labels)
    dist = torch.cdist(x, x)
    same = labels[:, None] == labels[None, :]
    tiled = dist.repeat(n, 1)  # row p * n + a holds d(a, .)
    farther = (~same).repeat(n, 1) & (tiled > dist.T.reshape(-1, 1))  # d(a, n) > d(a, p)
    row_max = tiled.max(dim=1, keepdim=True).values
    nearest_farther = torch.where(farther, tiled - row_max, torch.zeros_like(tiled)).min(dim=1).values + row_max[:, 0]
    has_farther = farther.any(dim=1).reshape(n, n).T
    row_min = dist.min(dim=1, keepdim=True).values
    farthest = (torch.where(~same, dist - row_min, torch.zeros_like(dist)).max(dim=1).values + row_min[:, 0])
    chosen = torch.where(has_farther, nearest_farther.reshape(n, n).T, farthest[:, None])
    positive = (same & ~torch.eye(n, dtype=torch.bool, device=x.device)).to(x.dtype)
    return torch.relu(margin + dist - chosen).mul(positive).sum() / positive.sum()
