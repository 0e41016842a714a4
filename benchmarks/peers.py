"""How the benchmark runs each peer: the libraries the in-house losses are measured against, each configured to
compute a task's spec (benchmarks/tasks.py), and `torch_step`, one forward + backward of a torch loss.

Every `prepare_*` is an implementation's `prepare(task, x, labels, device)` (benchmarks/implementations.py): it
imports its library, builds the loss once, and returns the step the benchmark times.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from benchmarks.tasks import TASKS


def torch_step(loss_fn, x: np.ndarray, labels: np.ndarray, device: str) -> Callable[[], None]:
    """One forward + backward of loss_fn(embeddings, labels), synchronised."""
    import torch

    embeddings = torch.tensor(x, device=device, requires_grad=True)
    y = torch.tensor(labels, device=device)

    def step():
        embeddings.grad = None
        loss_fn(embeddings, y).backward()
        synchronize(device)

    return step


def synchronize(device: str) -> None:
    """Waits for the device's queued work: a step's time is its whole work."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def prepare_naive(task, x, labels, device):
    from adapters.torch_native import cdist_batch_hard
    from benchmarks.naive import tiled_semi_hard

    loss = {"batch_hard": cdist_batch_hard, "semi_hard": tiled_semi_hard}[task]
    return torch_step(lambda e, y: loss(e, y, TASKS[task]), x, labels, device)


def pml_loss(task: str) -> Callable:
    """(embeddings, labels) -> loss by pytorch-metric-learning configured for the task: its losses' defaults where
    the task is them (batch_all and the softmax and similarity families), else the task's margin and distance."""
    from pytorch_metric_learning import distances, losses, miners, reducers

    by_default = {"batch_all": losses.TripletMarginLoss, "npairs": losses.NPairsLoss, "ntxent": losses.NTXentLoss,
                  "supcon": losses.SupConLoss, "multi_similarity": losses.MultiSimilarityLoss,
                  "circle": losses.CircleLoss}
    if task in by_default:
        return by_default[task]()
    plain = distances.LpDistance(normalize_embeddings=False)  # the tasks' euclidean: the rows as given
    if task == "lifted":
        return losses.LiftedStructureLoss(neg_margin=1.0, pos_margin=0.0, distance=plain)
    loss = losses.TripletMarginLoss(margin=1.0, distance=plain, reducer=reducers.MeanReducer())
    miner = (miners.BatchHardMiner(distance=plain) if task == "batch_hard"
             else miners.TripletMarginMiner(margin=1.0, type_of_triplets="semihard", distance=plain))
    return lambda e, y: loss(e, y, miner(e, y))


def prepare_pml(task, x, labels, device):
    return torch_step(pml_loss(task), x, labels, device)


def prepare_tfa(task, x, labels, device):
    import tensorflow as tf
    import tensorflow_addons as tfa

    from adapters import tfa as tfa_adapter

    losses = {"batch_hard": lambda y, e: tfa.losses.triplet_hard_loss(y, e, margin=1.0),
              "semi_hard": lambda y, e: tfa.losses.triplet_semihard_loss(y, e, margin=1.0),
              "contrastive": lambda y, e: tfa_adapter.contrastive_loss(e, y, TASKS["contrastive"]),
              "lifted": lambda y, e: tfa.losses.lifted_struct_loss(y, e, margin=1.0),
              # the porter's [B, B] cosine logits of anchors x positives, and the pairs' labels
              "npairs": lambda y, e: tfa_adapter.npairs_loss(e, y, TASKS["npairs"])}
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
    """(embeddings, labels) -> loss by sentence-transformers, with no SentenceTransformer model (the constructors only
    store it), on the embeddings directly.

    semi_hard, batch_hard: BatchSemiHardTripletLoss / BatchHardTripletLoss (euclidean, the task's margin), by their
    batch functions `batch_semi_hard_triplet_loss(labels, embeddings)` / `batch_hard_triplet_loss(...)`; their
    semi-hard is a torch port of TF-Addons' that sorts every row of the N x N matrix and locates every entry of it by
    searchsorted. multiple_negatives: MultipleNegativesRankingLoss() (scale 20, cos_sim) on the two columns of the
    pairs layout, `compute_loss_from_embeddings([anchors, positives], labels)`, as its forward calls it."""
    losses = _sentence_transformers_losses()
    if task == "multiple_negatives":
        ranking = losses.MultipleNegativesRankingLoss(model=None)

        def columns(embeddings, labels):
            half = len(embeddings) // 2
            return ranking.compute_loss_from_embeddings([embeddings[:half], embeddings[half:]], labels)

        return columns
    margin = TASKS[task].margin
    if task == "semi_hard":
        loss = losses.BatchSemiHardTripletLoss(model=None, margin=margin).batch_semi_hard_triplet_loss
    else:
        loss = losses.BatchHardTripletLoss(model=None, margin=margin).batch_hard_triplet_loss
    return lambda embeddings, labels: loss(labels, embeddings)


def prepare_sentence_transformers(task, x, labels, device):
    return torch_step(sentence_transformers_loss(task), x, labels, device)
