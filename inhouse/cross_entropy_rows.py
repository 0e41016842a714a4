"""The softmax family's cross-entropies over a distance linear in d2, on the short road (inhouse/linear_logits.py):
per row i, log sum_j e^l_ij - sum_j Y_ij l_ij with l = -D / t in float64 and a target distribution Y (each row's
entries sum to 1). The N x N matrix's diagonal is never read.

- the value is log(sum_j e^(l - top)) - sum_j Y_ij (l_ij - top): the targets sum to 1, so top cancels in the
  algebra rather than in rounding (at t = 1e-4 the logits reach 2e4);
- dL/dd2 = -c (softmax - Y) = f_i (e_ij - Y_ij total_i), f_i = -c / total_i (c = unit / t): the target entries of e
  become e - Y total in float64 before the pull (where the softmax nears Y their difference is the gradient).
"""
from __future__ import annotations

import torch

from .distance_rows import Gram, GramGradients
from .linear_logits import UNITS, Entries, LinearLogits, linear_in_d2


class Targets(Entries):
    """A target distribution per row as entries (i, j, Y_ij), sorted by row i; `of(chunk)` gives the chunk's, i
    counted from the chunk's first row."""

    def __init__(self, i: torch.Tensor, j: torch.Tensor, weights: torch.Tensor, rows: int, counts=None):
        super().__init__(i, j, rows, counts)
        self.weights = weights

    def of(self, chunk: slice) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        part = self.part(chunk)
        return self.i[part] - chunk.start, self.j[part], self.weights[part]


def cross_entropies(points: torch.Tensor, split: int | None, distance: str, temperature: float, targets: Targets,
                    counted: torch.Tensor | None = None):
    """(total, values) as `row_losses(points, split, ...)` gives them (a row without targets has value NaN, one outside
    `counted` 0 and no gradient), or None where the road does not apply: another distance, a zero point (its cosine
    share 1/2 is not linear in d2), a row that reads nothing (a lone point of the N x N matrix)."""
    columns = len(points) - (split or 0)
    if not linear_in_d2(points, distance) or not temperature > 0 or columns < 1 + (split is None):
        return None
    counted = torch.ones_like(targets.has) if counted is None else counted
    return _CrossEntropies.apply(points, split, UNITS[distance] / temperature, (targets, counted))


class _CrossEntropyRows(LinearLogits):
    def __init__(self, gram: Gram, scale: float, targets: Targets, counted: torch.Tensor):
        super().__init__(gram, scale, targets)
        self.scaled = counted.to(torch.float64) * -scale  # f_i x total_i

    def entry_gradient(self, part: slice) -> torch.Tensor:
        """e - Y total at the targets (float64)."""
        targets = self.entries
        return torch.addcmul(self.shifted[part].exp(), targets.weights[part], self.totals[targets.i[part]], value=-1.0)

    def factor(self, rows: slice) -> torch.Tensor:
        return self.scaled[rows] / self.totals[rows]


class _CrossEntropies(GramGradients):
    @staticmethod
    def forward(ctx, points, split, scale, problem):
        targets, counted = problem
        road = _CrossEntropyRows(Gram(points, split), scale, targets, counted)
        gradient = road.read(ctx.needs_input_grad[0])
        values = torch.log(road.totals).index_add_(0, targets.i, targets.weights * road.shifted, alpha=-1.0)
        values = torch.where(targets.has, values, torch.full_like(values, float("nan")))
        values = torch.where(counted, values, torch.zeros_like(values))
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(gradient())
        ctx.mark_non_differentiable(values)
        return values.sum(), values
