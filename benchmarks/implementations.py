"""Who the benchmark measures: the implementations that compute its tasks (benchmarks/tasks.py).

An implementation is data plus one function: `prepare(task, x, labels, device)` returns a callable that
runs the forward and the backward once (and waits for the device). Frameworks are imported inside
`prepare`, in the measuring child process only, so TensorFlow never shares a process with torch's peers.
Which implementations there are, in which order and on which devices, comes from the adapter families' records
(contract/family.py: `benchmarks`, and `cuda` for the CPU and CUDA); `RECIPES` holds how each is measured, beside
the references (the oracle, the matmul, and the least work of the softmax and similarity families' tasks); the
peers' code is benchmarks/peers.py. Each implementation states the exact spec it computes for a task, so like is
compared with like: pytorch-metric-learning's semi-hard miner is semi_hard_all, not TF-Addons' semi_hard, and is its
own task. A task no peer computes (or none finishes: PML's NTXentLoss asks for [positive pairs x negative pairs] of
memory) has only the references to be measured against.
An implementation whose library is not installed (`requires`) is recorded as skipped, with that reason.
On the CPU, inhouse.triton runs under Triton's interpreter: it shows that the kernels work, not how fast.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from adapters import families
from benchmarks.peers import (prepare_naive, prepare_pml, prepare_sentence_transformers, prepare_tfa, synchronize,
                             torch_step)
from benchmarks.tasks import LEAST_WORK_BLOCKS, TASKS
from reference import Spec
from reports.schema import LEAST_WORK, MATMUL, ORACLE

__all__ = ["IMPLEMENTATIONS", "RECIPES", "Implementation", "Recipe", "family_implementations"]


@dataclass(frozen=True)
class Implementation:
    name: str
    specs: dict  # task -> the Spec it computes for that task
    devices: tuple[str, ...]
    prepare: Callable  # (task, x float32 [N, D], labels int64 [N], device) -> fwd+bwd callable
    framework: str = "torch"
    requires: tuple[str, ...] = ()  # the modules it imports beyond numpy and torch

    def unavailable(self) -> str | None:
        """Why it cannot run here (a required module is not installed), or None; imports nothing."""
        missing = [name for name in self.requires if importlib.util.find_spec(name) is None]
        return f"{', '.join(missing)} not installed" if missing else None


def _prepare_oracle(task, x, labels, device):
    import reference

    x64, spec = x.astype(np.float64), TASKS[task]
    return lambda: reference.evaluate(x64, labels, spec)


def _prepare_inhouse_torch(task, x, labels, device):
    from inhouse.torch_losses import metric_loss

    return torch_step(lambda e, y: metric_loss(e, y, TASKS[task]), x, labels, device)


def _prepare_inhouse_triton(task, x, labels, device):
    if device == "cpu":  # Triton's interpreter (slow): it must be switched on before triton is first imported
        os.environ["TRITON_INTERPRET"] = "1"
    from inhouse.triton_kernels import metric_loss

    return torch_step(lambda e, y: metric_loss(e, y, TASKS[task]), x, labels, device)


def _prepare_matmul(task, x, labels, device):
    import torch

    rows = torch.tensor(x, device=device)

    def step():
        torch.mm(rows, rows.T)
        synchronize(device)

    return step


def _prepare_least_work(task, x, labels, device):
    """The task's least work (benchmarks/tasks.py LEAST_WORK_BLOCKS), in inhouse.torch's chunks of rows: per chunk the
    distances' product and a float64 exponential per entry (of a float64 copy, as inhouse.torch computes them); then
    the products that carry a gradient back to the rows and to the columns: two per chunk, or one over the symmetrised
    block where inhouse.torch pulls a square block whole (inhouse/distance_rows.py SYMMETRIC_BYTES). A square block
    that inhouse.torch can read by its upper triangle (inhouse/triangle.py) is read so: half of each product."""
    import torch

    from inhouse.distance_rows import exp_, pulled_whole, row_chunks, symmetrised
    from inhouse.triangle import read_by_triangle

    points = torch.tensor(x, device=device)
    square = LEAST_WORK_BLOCKS[task] == "square"
    if square and read_by_triangle(points):
        return _least_work_by_triangle(points, device)
    rows, columns = (points, points) if square else points.tensor_split(2)
    chunks = list(row_chunks(len(rows), len(columns)))
    work = rows.new_empty((chunks[0].stop, len(columns)), dtype=torch.float64)
    whole = rows.new_empty((len(rows), len(columns))) if pulled_whole(points, square) else None

    def step():
        pulled = columns.new_zeros(columns.shape[::-1])
        for chunk in chunks:
            products = rows[chunk] @ columns.T if whole is None else torch.mm(rows[chunk], columns.T, out=whole[chunk])
            exp_(work[: len(products)].copy_(products))
            if whole is None:
                products @ columns
                pulled.addmm_(rows[chunk].T, products)
        if whole is not None:
            symmetrised(whole) @ columns
        synchronize(device)

    return step


def _least_work_by_triangle(points, device):
    """Per strip of the upper triangle (inhouse/triangle.py) the distances' product, a float64 exponential per entry
    of the strip and per entry of its mirror (an entry right of the diagonal block read for the row it is the
    column of), and the strip's two products back, to its rows and to its columns."""
    import torch

    from inhouse.distance_rows import exp_
    from inhouse.triangle import STRIP_ROWS, strips_of

    strips = strips_of(len(points))
    work = points.new_empty(STRIP_ROWS * len(points), dtype=torch.float64)

    def step():
        pulled = torch.zeros_like(points)
        for rows in strips:
            products = points[rows] @ points[rows.start:].T
            for block in (products, products[:, len(products):]):
                exp_(work[: block.numel()].view(block.shape).copy_(block))
            pulled[rows].addmm_(products, points[rows.start:])
            pulled[rows.start:].addmm_(products.T, points[rows])
        synchronize(device)

    return step


def _for(*tasks: str, **changes) -> dict:
    return {task: Spec(**{**TASKS[task].to_dict(), **changes}) for task in tasks}


@dataclass(frozen=True)
class Recipe:
    """How the benchmark measures one implementation of a family: what it computes and the code that runs it."""

    specs: dict
    prepare: Callable
    framework: str = "torch"
    requires: tuple[str, ...] = ()


# The measuring code of each implementation a family's record names in `benchmarks` (contract/family.py): which
# implementations there are, in which order, and on which devices (cuda=True: the CPU and CUDA) come from the records.
RECIPES = {
    "torch.naive": Recipe(_for("batch_hard", "semi_hard"), prepare_naive),
    "pytorch-metric-learning": Recipe({**_for("batch_hard", anchors="valid"),
                                       **_for("semi_hard_all", "batch_all", "lifted", "npairs", "ntxent", "supcon",
                                              "multi_similarity", "circle")},
                                      prepare_pml, requires=("pytorch_metric_learning",)),
    "tf-addons": Recipe(_for("batch_hard", "semi_hard", "contrastive", "lifted", "npairs"), prepare_tfa,
                        framework="tensorflow", requires=("tensorflow", "tensorflow_addons")),
    # its semi-hard mean divides by max(positive pairs, 1e-16): 0, not NaN, for a batch without any
    "sentence-transformers": Recipe({**_for("batch_hard", "multiple_negatives"), **_for("semi_hard", empty="zero")},
                                    prepare_sentence_transformers, framework="sentence-transformers",
                                    requires=("sentence_transformers",)),
    "inhouse.torch": Recipe(_for(*TASKS), _prepare_inhouse_torch),
    "inhouse.triton": Recipe(_for("batch_hard", "batch_all"), _prepare_inhouse_triton, framework="triton",
                             requires=("triton",)),
}
BOTH = ("cpu", "cuda")


def family_implementations() -> list[Implementation]:
    """The implementations the family records name, in their order, each with its recipe."""
    named = [(family, name) for family in families() for name in family.benchmarks]
    unnamed = sorted(set(RECIPES) - {name for _, name in named})
    if unnamed:
        raise ValueError(f"benchmarks/implementations.py: no family's record names {', '.join(unnamed)} "
                         "(add it to that adapter module's FAMILY.benchmarks)")
    found = []
    for family, name in named:
        if name not in RECIPES:
            raise ValueError(f"adapters/{family.module}.py names the benchmark implementation {name!r}, which has no "
                             "recipe in benchmarks/implementations.py RECIPES")
        recipe = RECIPES[name]
        found.append(Implementation(name, recipe.specs, BOTH if family.cuda else ("cpu",), recipe.prepare,
                                    framework=recipe.framework, requires=recipe.requires))
    return found


IMPLEMENTATIONS = {
    impl.name: impl
    for impl in (
        Implementation(ORACLE, _for(*TASKS), ("cpu",), _prepare_oracle, framework="numpy"),  # the reference
        *family_implementations(),
        Implementation(MATMUL, {}, BOTH, _prepare_matmul),  # the physical reference
        Implementation(LEAST_WORK, {task: TASKS[task] for task in LEAST_WORK_BLOCKS}, BOTH, _prepare_least_work),
    )
}
