"""Test-only adapters that claim the cuda-tf32 target but run on the CPU, so that the cells of that target are
judged without a GPU (the dry mode of the GPU command, tests/gpu/test_gpu_command.py; the TF32 rounding model,
tests/gpu/test_tf32_model.py). Their framework name is one the contract does not check, hence no CUDA needed.

    tf32-emulated.gram   batch hard on the Gram expansion as torch.cdist computes it with TF32 on: the matmul's
                         inputs (the rows and their squared norms) rounded to TF32's 10 explicit mantissa bits (to
                         nearest, ties to even), products accumulated in float32. Beyond float32's model, within
                         TF32's.
    tf32-emulated.direct the same loss from differences of the rows in float32 (no matmul): TF32 changes nothing,
                         so it stays within the plain float32 model.
"""
from __future__ import annotations

import numpy as np

from adapters import Adapter, Output
from reference import Spec

SPEC = Spec(mining="batch_hard", distance="euclidean", margin=1.0)  # TF-Addons triplet_hard_loss
TF32_BITS = 10


def tf32(x):
    """float32 tensor -> the nearest value with 10 explicit mantissa bits (ties to even); the gradient passes
    straight through, as autograd sees the rounding a TF32 matmul does inside cuBLAS."""
    import torch

    bits = x.detach().contiguous().view(torch.int32)
    drop = 23 - TF32_BITS
    half = (1 << (drop - 1)) - 1
    rounded = ((bits + half + ((bits >> drop) & 1)) & ~((1 << drop) - 1)).view(torch.float32)
    return x + (rounded - x).detach()


def squared_distances(x, emulate_tf32: bool):
    """From the differences of the rows; or as torch.cdist's matmul path computes them (aten/src/ATen/native/
    Distance.cpp _euclidean_dist): [-2x, |x|^2, 1] @ [x, 1, |x|^2]^T, every column a matmul input, so with TF32
    on the squared norms are rounded to 10 bits as well."""
    import torch

    if not emulate_tf32:
        return ((x[:, None, :] - x[None, :, :]) ** 2).sum(dim=2)
    norms = (x * x).sum(dim=1, keepdim=True)
    ones = torch.ones_like(norms)
    left, right = tf32(torch.cat([-2.0 * x, norms, ones], dim=1)), tf32(torch.cat([x, ones, norms], dim=1))
    return torch.clamp(left @ right.T, min=0.0)


def batch_hard(x, labels, emulate_tf32: bool):
    """TF-Addons' batch hard (anchors all, mean): hp = 0 without a positive, hn = the row's farthest point without a
    negative; the nearest negative by a masked minimum over the negatives alone (not TF-Addons' row-maximum trick,
    whose gradient at a tie is a registered divergence of its own)."""
    import torch

    squared = squared_distances(x, emulate_tf32)
    positive_distance = squared > 0
    dist = torch.where(positive_distance, squared, torch.ones_like(squared)).sqrt() * positive_distance
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool)
    hardest_positive = torch.where(positive, dist, torch.zeros_like(dist)).max(dim=1).values
    nearest_negative = torch.where(same, torch.full_like(dist, float("inf")), dist).min(dim=1).values
    hardest_negative = torch.where((~same).any(dim=1), nearest_negative, dist.max(dim=1).values)
    return torch.relu(hardest_positive - hardest_negative + SPEC.margin).mean()


def _run(emulate_tf32: bool):
    def run(embeddings, labels, spec, dtype, device, triplets=None) -> Output:
        import torch

        x = torch.tensor(np.asarray(embeddings), dtype=torch.float32, requires_grad=True)
        loss = batch_hard(x, torch.as_tensor(np.asarray(labels)), emulate_tf32)
        (grad,) = torch.autograd.grad(loss, x)
        where = "cpu (TF32 emulated)" if emulate_tf32 else "cpu"
        return Output(float(loss.detach()), grad.double().numpy(), f"torch {torch.__version__}", where)

    return run


ADAPTERS = [
    Adapter(name="tf32-emulated.gram", framework="emulated", specs=(SPEC,), run=_run(True), dtypes=("float32",),
            targets=("cuda-tf32",), precision="gram",
            notes="batch hard on a TF32 Gram expansion, emulated on the CPU (tests/gpu/tf32_adapters.py)"),
    Adapter(name="tf32-emulated.direct", framework="emulated", specs=(SPEC,), run=_run(False), dtypes=("float32",),
            targets=("cuda-tf32",),
            notes="batch hard from float32 differences, no matmul (tests/gpu/tf32_adapters.py)"),
]
