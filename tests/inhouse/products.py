"""A probe of the matrix products torch makes: tests of how much work a loss or a benchmark reference does."""
from __future__ import annotations

import torch


class MultiplyAdds(torch.overrides.TorchFunctionMode):
    """Counts the multiply-adds of the matrix products made while active (`count`)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", None) in ("mm", "matmul", "__matmul__", "addmm", "addmm_"):
            left, right = args[-2:]
            self.count += left.shape[0] * left.shape[1] * right.shape[1]
        return func(*args, **(kwargs or {}))
