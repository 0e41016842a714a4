"""PyTorch plumbing shared by every torch-based adapter: imports, dtype and device mapping, the version
and execution-target strings, and running a loss function under autograd.

Nothing here imports torch at module import time: a machine without torch lists the adapters and
skips them with the reason `missing()` gives.
"""
from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable

import numpy as np

from contract.dtypes import dtype as dtype_facts
from contract.targets import target as target_facts

FRAMEWORK = "torch"


def missing(modules: tuple[str, ...] = ()) -> str | None:
    """Why torch (or one of the extra `modules` an adapter needs) cannot be imported here, else None."""
    for module in ("torch", *modules):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return f"{module} is not installed ({type(exc).__name__}: {exc})"
    return None


def device_problem(device: str) -> str | None:
    """Why the execution target `device` cannot be used here, else None."""
    import torch

    if target_facts(device).device == "cuda" and not torch.cuda.is_available():
        return f"no CUDA device visible to torch {torch.__version__}"
    if target_facts(device).processes > 1 and not (torch.distributed.is_available()
                                                    and torch.distributed.is_gloo_available()):
        return f"torch {torch.__version__} was built without torch.distributed's gloo backend"
    return None


def version(modules: tuple[str, ...] = ()) -> str:
    """e.g. "torch 2.13.0+cpu + pytorch_metric_learning 2.9.0"."""
    return " + ".join(f"{m} {importlib.import_module(m).__version__}" for m in ("torch", *modules))


def target(device: str) -> str:
    """The execution target as the results record it: "cpu" or e.g. "cuda:0 NVIDIA H200"."""
    import torch

    facts = target_facts(device)
    if facts.processes > 1:
        return f"cpu, {facts.processes} processes (torch.distributed gloo)"
    if facts.device == "cpu":
        return "cpu"
    index = torch.cuda.current_device()
    tf32 = " (TF32 matmuls)" if target_facts(device).matmul_mantissa_bits == TF32_BITS else ""
    return f"cuda:{index} {torch.cuda.get_device_name(index)}{tf32}"


TF32_BITS = 10  # the only reduced matmul precision torch switches for float32 (contract/targets.py cuda-tf32)


@contextlib.contextmanager
def matmul_precision(device: str):
    """For the call on a CUDA target, float32 matmuls (cuBLAS and cuDNN) as the target declares: TF32 where its
    matmul_mantissa_bits is 10, full float32 (TF32 off, explicitly) where it declares none; restored after.

    The legacy switches (allow_tf32) unless this process already used the newer fp32_precision API, which torch
    refuses to mix with them on reading."""
    facts = target_facts(device)
    if facts.device != "cuda":
        yield
        return
    if facts.matmul_mantissa_bits not in (None, TF32_BITS):
        raise ValueError(f"target {device!r}: torch has no switch for {facts.matmul_mantissa_bits}-bit matmul inputs")
    import torch

    tf32 = facts.matmul_mantissa_bits == TF32_BITS
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    try:
        before = ("allow_tf32", matmul.allow_tf32, cudnn.allow_tf32)
        matmul.allow_tf32 = cudnn.allow_tf32 = tf32
    except RuntimeError:  # "mix of the legacy and new APIs": this process set fp32_precision
        before = ("fp32_precision", matmul.fp32_precision, cudnn.conv.fp32_precision)
        matmul.fp32_precision = cudnn.conv.fp32_precision = "tf32" if tf32 else "ieee"
    try:
        yield
    finally:
        if before[0] == "allow_tf32":
            matmul.allow_tf32, cudnn.allow_tf32 = before[1:]
        else:
            matmul.fp32_precision, cudnn.conv.fp32_precision = before[1:]


def check_loss(loss, dtype, who: str) -> None:
    """The wrapped function must return a 0-d floating tensor in the embeddings' dtype."""
    import torch

    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"{who}: the loss function returned a {type(loss).__name__}, expected a scalar torch.Tensor")
    if loss.dim() != 0:
        raise TypeError(
            f"{who}: the loss function returned a tensor of shape {tuple(loss.shape)}, expected a scalar "
            "(reduce it, e.g. .mean())"
        )
    if loss.dtype != dtype:
        raise TypeError(
            f"{who}: the loss function returned a {loss.dtype} tensor for {dtype} embeddings; return the loss "
            "in the embeddings' dtype (cast it back if you compute in another)"
        )


def execute(call: Callable, who: str, embeddings: np.ndarray, labels: np.ndarray, triplets, dtype: str, device: str):
    """Cast the float64 inputs to `dtype` on `device`, call `call(x, labels, triplets)`, and return
    (loss, dL/dx) as float64 NumPy. A loss that does not depend on x (a constant 0, say) has gradient 0."""
    import torch

    torch_dtype = getattr(torch, dtype_facts(dtype).torch)
    where = target_facts(device).device
    x = torch.tensor(embeddings, dtype=torch.float64, device=where).to(torch_dtype).requires_grad_()
    y = torch.as_tensor(labels, dtype=torch.int64, device=where)
    t = None if triplets is None else torch.as_tensor(triplets, dtype=torch.int64, device=where)
    with matmul_precision(device):
        loss = call(x, y, t)
        check_loss(loss, torch_dtype, who)
        grad = torch.autograd.grad(loss, x, allow_unused=True)[0] if loss.requires_grad else None
    if grad is None:
        grad = torch.zeros_like(x)
    as_numpy = grad.detach().to("cpu", torch.float64).numpy()
    return float(loss.detach().to("cpu", torch.float64)), as_numpy
