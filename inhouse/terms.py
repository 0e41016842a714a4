"""From terms to the loss (reference/terms.py): each term and its slope, the reduction over the strategy's
units, and the loss in the input's dtype with the oracle's NaN-gradient convention.

float16 / bfloat16 inputs are computed in float32 (`in_working_precision`) and the loss is cast back
(`finish`), as TF-Addons does: the Gram expansion in half precision would cancel every bit of a typical
distance.
"""
from __future__ import annotations

import torch

from reference import Spec

LOW_PRECISION = (torch.float16, torch.bfloat16)


def in_working_precision(embeddings: torch.Tensor) -> torch.Tensor:
    """The embeddings in the dtype the losses compute in: float32 for half-precision inputs, else as given."""
    return embeddings.float() if embeddings.dtype in LOW_PRECISION else embeddings


def term_and_slope(excess: torch.Tensor, spec: Spec) -> tuple[torch.Tensor, torch.Tensor]:
    """[excess + m]+ or softplus(excess) (Spec.soft), and its derivative; excess = d_ap - d_an."""
    if spec.soft:
        return torch.logaddexp(excess, torch.zeros_like(excess)), torch.sigmoid(excess)
    shifted = excess + spec.margin
    return shifted.clamp_min(0.0), (shifted > 0).to(excess.dtype)


def aggregate(values: torch.Tensor, included: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sum, units, active) of the terms `values` where `included`."""
    values = torch.where(included, values, torch.zeros_like(values))
    return values.sum(), included.sum(), (values > 0).sum()


def reduce(total: torch.Tensor, units: torch.Tensor, active: torch.Tensor, spec: Spec) -> torch.Tensor:
    """Spec.reduction and Spec.empty (reference/terms.py `reduce`) from the sum of the terms, the number of
    units and the number of terms > 0; no host synchronisation."""
    if spec.reduction == "sum":
        loss = total
    else:
        # softplus is positive everywhere: every soft term counts as non-zero, even one that underflowed to 0
        count = units if spec.reduction == "mean" or spec.soft else active
        loss = total / count.clamp_min(1).to(total.dtype)
    if spec.empty == "nan":
        loss = torch.where(units > 0, loss, torch.full_like(loss, float("nan")))
    return loss


class _NanGradientWhereNotFinite(torch.autograd.Function):
    """Identity on the loss; where the loss is not finite, the gradient is NaN whatever path autograd took
    (the oracle's convention: what 0/0 gives)."""

    @staticmethod
    def forward(ctx, loss: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(loss)
        ctx.shape = x.shape
        ctx.through_loss = loss.requires_grad  # x gets its gradient through the loss: nothing to add where finite
        return loss.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (loss,) = ctx.saved_tensors
        if ctx.through_loss and loss.device.type == "cpu" and bool(torch.isfinite(loss)):  # (a GPU would wait)
            return grad, None
        poison = torch.where(torch.isfinite(loss), 0.0, float("nan")).to(grad.dtype)
        return grad, poison.expand(ctx.shape)


def finish(loss: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """The loss in the input's dtype, with a NaN gradient wherever the loss is not finite."""
    return _NanGradientWhereNotFinite.apply(loss, embeddings).to(embeddings.dtype)
