"""Execution targets, declared once: where an adapter's call runs, and what that changes.

An adapter claims targets by name (`Adapter.targets`); a conformance cell runs on one. A new target is one
entry here plus, in the framework plumbing (adapters/_torch.py, adapters/_tf.py), what it takes to run there.
"""
from __future__ import annotations

from dataclasses import dataclass

from .dtypes import dtype as dtype_facts


@dataclass(frozen=True)
class Target:
    name: str
    device: str  # where the tensors live: "cpu" or "cuda"
    meaning: str
    frameworks: tuple[str, ...]  # the frameworks that can run there
    # Matmul precision: the explicit mantissa bits a matmul's inputs keep on this target (TF32: 10), the products
    # accumulated in the dtype; None: matmuls run in the dtype itself. The rounding model reads it
    # (engine/tolerances.py `unit_roundoff`), and adapters/_torch.py switches the framework's matmul mode by it.
    matmul_mantissa_bits: int | None = None
    dtypes: tuple[str, ...] | None = None  # the dtypes it applies to (TF32 is float32's mode); None: every dtype
    # How many processes share one batch (torch.distributed): each rank runs the loss on its shard of the rows, and
    # the call is judged as DDP trains, G = (1/W) concat_r dL_r/dX_r against the oracle's gradient on the whole
    # batch, the loss as rank 0 reports it (docs/distributed.md; engine/distributed.py runs the ranks).
    processes: int = 1


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("cpu", "cpu", "the CPU, one process", ("torch", "tensorflow", "numpy")),
        Target("cuda", "cuda", "one CUDA device, one process; float32 matmuls in float32 (TF32 off)",
               ("torch", "tensorflow")),
        Target("cuda-tf32", "cuda", "one CUDA device, one process, TF32 matmuls on (torch.backends.cuda.matmul and "
               "cudnn allow_tf32): float32 matmul inputs rounded to 10 mantissa bits, a documented precision change",
               ("torch",), matmul_mantissa_bits=10, dtypes=("float32",)),
        *(Target(f"dist-gloo-{w}", "cpu", f"{w} CPU processes, torch.distributed with the gloo backend, the batch "
                 "sharded across them (docs/distributed.md)", ("torch",), processes=w) for w in (2, 3)),
    )
}
NAMES: tuple[str, ...] = tuple(TARGETS)


def target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown execution target {name!r}; the suite knows {', '.join(NAMES)}") from None


def processes(name: str) -> int:
    """How many processes a call on the target runs in: 1, or the world size of a distributed target."""
    return target(name).processes


def is_distributed(name: str) -> bool:
    """Whether `name` is a known multi-process target (an unknown name is for its adapter or caller to reject)."""
    return name in TARGETS and TARGETS[name].processes > 1


def applies(name: str, dtype: str) -> bool:
    """Whether the target runs `dtype` at all (cuda-tf32 is float32's matmul mode): cells exist only where it does."""
    dtypes = target(name).dtypes
    return dtypes is None or dtype in dtypes


def matmul_eps(name: str | None, dtype: str) -> float | None:
    """2^-bits when the target rounds matmul inputs below `dtype`'s own precision (TF32 and float32: 2^-10),
    else None: the target changes nothing the rounding model needs to know."""
    bits = None if name is None else target(name).matmul_mantissa_bits
    if bits is None or bits >= dtype_facts(dtype).mantissa_bits:
        return None
    return 2.0**-bits
