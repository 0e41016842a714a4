"""The similarity family (reference/similarity.py) in torch: per anchor, log-sum-exps over logits of the cosine
similarity s = 1 - D, each shifted by its row's largest logit (a no-grad constant), in float64 as the softmax family
(inhouse/softmax.py): beta = 50 and gamma = 80 make logits of 75 and 300, whose low bits float32 would lose.

    multi_similarity        Wang et al. 2019 eq. 10: (1/alpha) log(1 + sum_p e^(-alpha (s - base))) + (1/beta) log(1 +
                            sum_n e^(beta (s - base))), every pair
    multi_similarity_mined  the same over the pairs MultiSimilarityMiner(epsilon = margin) keeps, mined without gradient
    circle                  Sun et al. 2020 eq. 6: softplus(lse_p l_p + lse_n l_n), the weights alpha detached
"""
from __future__ import annotations

import torch

from .distances import pairwise_distances
from .terms import masked_log_sum_exp


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    return same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device), ~same


def _log1p_sum_exp(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per row, log(1 + sum over the mask of e^l): 0 for an empty mask; log1p where the "1 +" is the largest term,
    so that a sum of 1e-33 stays > 0 (mean_nonzero counts it, as the oracle does)."""
    masked = torch.where(mask, logits, torch.full_like(logits, float("-inf")))
    with torch.no_grad():
        top = masked.amax(dim=1).clamp_min(0.0) if logits.shape[1] else torch.zeros_like(logits[:, 0])
    total = torch.exp(masked - top[:, None]).sum(dim=1)
    return torch.where(top > 0, torch.log(torch.exp(-top) + total) + top, torch.log1p(total))


def _similarities(points, spec) -> torch.Tensor:
    return 1.0 - pairwise_distances(points, spec.distance).double()


def _multi_similarity(s, positive, negative, spec):
    values = _log1p_sum_exp(-spec.alpha * (s - spec.base), positive) / spec.alpha + \
        _log1p_sum_exp(spec.beta * (s - spec.base), negative) / spec.beta
    counted = positive.any(dim=1) | negative.any(dim=1)  # log(1 + a sum > 0) > 0
    return values.sum(), torch.tensor(len(values), device=values.device), counted.sum()


def multi_similarity(points, labels, spec, triplets=None):
    positive, negative = _masks(labels)
    return _multi_similarity(_similarities(points, spec), positive, negative, spec)


def multi_similarity_mined(points, labels, spec, triplets=None):
    """MultiSimilarityMiner's strict rules on the similarities the loss reads: keep (a, p) where s_ap - eps < the
    anchor's largest negative s, keep (a, n) where s_an + eps > its smallest positive s."""
    s = _similarities(points, spec)
    positive, negative = _masks(labels)
    with torch.no_grad():
        inf = torch.full_like(s, float("inf"))
        largest_negative = torch.where(negative, s, -inf).amax(dim=1, keepdim=True)
        smallest_positive = torch.where(positive, s, inf).amin(dim=1, keepdim=True)
        keep_positive = positive & (s - spec.margin < largest_negative)
        keep_negative = negative & (s + spec.margin > smallest_positive)
    return _multi_similarity(s, keep_positive, keep_negative, spec)


def circle(points, labels, spec, triplets=None):
    s = _similarities(points, spec)
    positive, negative = _masks(labels)
    m, gamma = spec.margin, spec.gamma
    with torch.no_grad():  # the weights are constants for the gradient (Sun et al. 2020; PML detaches them)
        alpha_p, alpha_n = (1.0 + m - s).clamp_min(0.0), (s + m).clamp_min(0.0)
    live = positive.any(dim=1) & negative.any(dim=1)
    x = masked_log_sum_exp(-gamma * alpha_p * (s - (1.0 - m)), positive) + \
        masked_log_sum_exp(gamma * alpha_n * (s - m), negative)  # -inf where the anchor lacks either
    x = torch.where(live, x, torch.zeros_like(x))
    values = torch.where(live, torch.logaddexp(x, torch.zeros_like(x)), torch.zeros_like(x))
    return values.sum(), torch.tensor(len(values), device=values.device), live.sum()
