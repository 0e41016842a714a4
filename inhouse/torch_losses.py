"""Every loss of the suite's vocabulary in vectorised torch, on any device, in at most O(N^2) memory.

    loss = metric_loss(embeddings, labels, reference.Spec(mining="semi_hard"))
    loss.backward()

The meaning of each `Spec` field is the oracle's (reference/strategies.py, reference/terms.py); this
package only computes it faster. Where each part lives:

    distances.py    the points distances are measured between, the N x N matrix (Gram expansion of the
                    re-centred batch, near pairs refined from differences) and `PairDistances` (selected
                    pairs from differences, backward through those pairs only)
    mining.py       which pairs batch_hard and semi_hard use (class slots, hardest partners, semi-hard
                    negatives by a masked minimum or by sorting)
    hardest_stripes.py  batch_hard's hardest partners stripe by stripe of rows, without the N x N matrix
    near_pairs.py   the pairs that may lie closer than a bound (contrastive's), screened without the matrix
    windows.py      batch_all's and semi_hard_all's windows of negatives, counted by bins or by sorting
    softmax.py, similarity.py, distance_rows.py  the softmax and similarity families, row by row
    lifted.py       lifted structured, row by row (twice: a pair reads its partner's log-sum-exp)
    linear_logits.py  row losses whose logits are linear in d2 (cosine, squared euclidean), in fewer passes
    cross_entropy_rows.py  the softmax family's plain cross-entropies on that road
    strategies.py   one function per `Spec.mining`: (sum of terms, units, active)
    terms.py        hinge / softplus terms, the reduction, the loss in the input's dtype
    chunks.py       the bound on temporaries beyond O(N^2) (`CHUNK_ELEMENTS`) and the chunks that keep it
    scratch.py      CPU scratch buffers kept from call to call (a fresh megabyte costs page faults)

float16 / bfloat16 inputs are computed in float32 and the loss cast back (as TF-Addons does).
"""
from __future__ import annotations

import torch

from reference import LOSSES, Spec

from .distances import measured_points, unit_rows
from .softmax import class_set_masks
from .strategies import STRATEGIES
from .terms import finish, in_working_precision, reduce


def metric_loss(embeddings: torch.Tensor, labels, spec: Spec, triplets=None) -> torch.Tensor:
    """The loss `spec` describes, as a differentiable scalar on the embeddings' device and dtype.

    embeddings  [N, D] floating tensor (float16/bfloat16 are computed in float32)
    labels      [N] integer labels (tensor or array-like); class sets (npairs_multilabel): [N] bit masks or a [N, C]
                0/1 matrix
    triplets    [T, 3] (anchor, positive, negative) indices, for mining="triplets" only
    """
    work = in_working_precision(embeddings)
    labels = torch.as_tensor(labels, device=work.device).long()
    if labels.ndim == 2 and labels.shape[1] > 1 and LOSSES[spec.mining].labels == "class sets":
        labels = class_set_masks(labels)  # a [N, C] 0/1 matrix: each row's bit mask
    labels = labels.reshape(-1)
    points = measured_points(unit_rows(work) if spec.normalize else work, spec.distance)
    if spec.mining == "triplets":
        triplets = torch.as_tensor(triplets, device=work.device)
    total, units, active = STRATEGIES[spec.mining](points, labels, spec, triplets)
    return finish(reduce(total, units, active, spec), embeddings)
