"""What the benchmark measures: tasks (a loss in the vocabulary) and the implementations that compute them.

An implementation is data plus one function: `prepare(task, x, labels, device)` returns a callable that
runs the forward and the backward once (and waits for the device). Frameworks are imported inside
`prepare`, in the measuring child process only, so TensorFlow never shares a process with torch's peers.
Which implementations there are, in which order and on which devices, comes from the adapter families' records
(contract/family.py: `benchmarks`, and `cuda` for the CPU and CUDA); `RECIPES` holds how each is measured, beside
the two references (the oracle, and the matmul). Each implementation states the exact spec it computes for a task,
so like is compared with like: pytorch-metric-learning's semi-hard miner is semi_hard_all, not TF-Addons'
semi_hard, and is its own task.
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
from reference import Spec

TASKS = {
    # TF-Addons triplet_hard_loss(margin=1.0)
    "batch_hard": Spec(mining="batch_hard", distance="euclidean", margin=1.0),
    # TF-Addons triplet_semihard_loss(margin=1.0)
    "semi_hard": Spec(mining="semi_hard", distance="euclidean", margin=1.0, empty="nan"),
    # pytorch-metric-learning TripletMarginMiner("semihard", margin=1) + TripletMarginLoss(margin=1), mean
    "semi_hard_all": Spec(mining="semi_hard_all", distance="euclidean", margin=1.0),
    # pytorch-metric-learning TripletMarginLoss() defaults: normalized, margin 0.05, AvgNonZeroReducer
    "batch_all": Spec(mining="batch_all", distance="euclidean", normalize=True, margin=0.05, reduction="mean_nonzero"),
    # TF-Addons contrastive_loss(margin=1.0) over every pair i < j (no sentence-transformers or PML loss computes it:
    # adapters/pml.py says why), mean
    "contrastive": Spec(mining="contrastive", distance="euclidean", margin=1.0),
    # TF-Addons lifted_struct_loss(margin=1.0); pytorch-metric-learning LiftedStructureLoss(neg_margin=1, pos_margin=0)
    "lifted": Spec(mining="lifted", distance="euclidean", margin=1.0),
}
MATMUL = "matmul"  # the physical reference: one N x N x D matmul on the same device


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


def _torch_inputs(x: np.ndarray, labels: np.ndarray, device: str):
    import torch

    return torch.tensor(x, device=device, requires_grad=True), torch.tensor(labels, device=device)


def _torch_step(loss_fn, x: np.ndarray, labels: np.ndarray, device: str) -> Callable[[], None]:
    """One forward + backward of loss_fn(embeddings, labels), synchronised."""
    import torch

    embeddings, y = _torch_inputs(x, labels, device)

    def step():
        embeddings.grad = None
        loss_fn(embeddings, y).backward()
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def _prepare_oracle(task, x, labels, device):
    import reference

    x64, spec = x.astype(np.float64), TASKS[task]
    return lambda: reference.evaluate(x64, labels, spec)


def _prepare_naive(task, x, labels, device):
    from adapters.torch_native import cdist_batch_hard
    from benchmarks.naive import tiled_semi_hard

    loss = {"batch_hard": cdist_batch_hard, "semi_hard": tiled_semi_hard}[task]
    return _torch_step(lambda e, y: loss(e, y, TASKS[task]), x, labels, device)


def _prepare_pml(task, x, labels, device):
    from pytorch_metric_learning import distances, losses, miners, reducers

    if task == "batch_all":  # the library's defaults
        loss, miner = losses.TripletMarginLoss(), None
    elif task == "lifted":
        loss, miner = losses.LiftedStructureLoss(neg_margin=1.0, pos_margin=0.0), None
    else:
        plain = distances.LpDistance(normalize_embeddings=False)
        loss = losses.TripletMarginLoss(margin=1.0, distance=plain, reducer=reducers.MeanReducer())
        miner = (
            miners.BatchHardMiner(distance=plain)
            if task == "batch_hard"
            else miners.TripletMarginMiner(margin=1.0, type_of_triplets="semihard", distance=plain)
        )
    return _torch_step(lambda e, y: loss(e, y, miner(e, y) if miner else None), x, labels, device)


def _prepare_tfa(task, x, labels, device):
    import tensorflow as tf
    import tensorflow_addons as tfa

    from adapters import tfa as tfa_adapter

    losses = {"batch_hard": lambda y, e: tfa.losses.triplet_hard_loss(y, e, margin=1.0),
              "semi_hard": lambda y, e: tfa.losses.triplet_semihard_loss(y, e, margin=1.0),
              "contrastive": lambda y, e: tfa_adapter.contrastive_loss(e, y, TASKS["contrastive"]),
              "lifted": lambda y, e: tfa.losses.lifted_struct_loss(y, e, margin=1.0)}
    loss = losses[task]
    embeddings, y = tf.Variable(x), tf.constant(labels)

    def step():
        with tf.GradientTape() as tape:
            value = loss(y, embeddings)
        tape.gradient(value, embeddings).numpy()

    return step


def _sentence_transformers_losses():
    try:  # 6.x; `sentence_transformers.losses` still works there, with a DeprecationWarning
        from sentence_transformers.sentence_transformer import losses
    except ImportError:  # before 6
        from sentence_transformers import losses
    return losses


def sentence_transformers_loss(task: str) -> Callable:
    """(embeddings, labels) -> loss by sentence-transformers' BatchSemiHardTripletLoss / BatchHardTripletLoss
    (euclidean, the task's margin) on the embeddings directly: their batch functions
    `batch_semi_hard_triplet_loss(labels, embeddings)` / `batch_hard_triplet_loss(...)`, with no
    SentenceTransformer model (the constructor only stores it). Their semi-hard is a torch port of TF-Addons'
    that sorts every row of the N x N matrix and locates every entry of it by searchsorted."""
    losses = _sentence_transformers_losses()
    margin = TASKS[task].margin
    if task == "semi_hard":
        loss = losses.BatchSemiHardTripletLoss(model=None, margin=margin).batch_semi_hard_triplet_loss
    else:
        loss = losses.BatchHardTripletLoss(model=None, margin=margin).batch_hard_triplet_loss
    return lambda embeddings, labels: loss(labels, embeddings)


def _prepare_sentence_transformers(task, x, labels, device):
    return _torch_step(sentence_transformers_loss(task), x, labels, device)


def _prepare_inhouse_torch(task, x, labels, device):
    from inhouse.torch_losses import metric_loss

    return _torch_step(lambda e, y: metric_loss(e, y, TASKS[task]), x, labels, device)


def _prepare_inhouse_triton(task, x, labels, device):
    if device == "cpu":  # Triton's interpreter (slow): it must be switched on before triton is first imported
        os.environ["TRITON_INTERPRET"] = "1"
    from inhouse.triton_kernels import metric_loss

    return _torch_step(lambda e, y: metric_loss(e, y, TASKS[task]), x, labels, device)


def _prepare_matmul(task, x, labels, device):
    import torch

    rows = torch.tensor(x, device=device)

    def step():
        torch.mm(rows, rows.T)
        if device == "cuda":
            torch.cuda.synchronize()

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
    "torch.naive": Recipe(_for("batch_hard", "semi_hard"), _prepare_naive),
    "pytorch-metric-learning": Recipe({**_for("batch_hard", anchors="valid"), **_for("semi_hard_all", "batch_all", "lifted")},
                                      _prepare_pml, requires=("pytorch_metric_learning",)),
    "tf-addons": Recipe(_for("batch_hard", "semi_hard", "contrastive", "lifted"), _prepare_tfa, framework="tensorflow",
                        requires=("tensorflow", "tensorflow_addons")),
    # its semi-hard mean divides by max(positive pairs, 1e-16): 0, not NaN, for a batch without any
    "sentence-transformers": Recipe({**_for("batch_hard"), **_for("semi_hard", empty="zero")},
                                    _prepare_sentence_transformers, framework="sentence-transformers",
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
        Implementation("oracle", _for(*TASKS), ("cpu",), _prepare_oracle, framework="numpy"),  # the reference
        *family_implementations(),
        Implementation(MATMUL, {}, BOTH, _prepare_matmul),  # the physical reference
    )
}
