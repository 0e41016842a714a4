"""Check your own distributed loss: a loss that all-gathers the batch itself, as it does under DDP.

Under torch.distributed each rank holds a shard of the batch. A loss that means "the loss of the whole batch"
gathers every rank's rows *with their gradient* (torch.distributed.nn.functional.all_gather: its backward sums
each rank's gradient back to the rank that owns the rows), computes the whole-batch loss, and returns it on
every rank. The suite runs it on W ranks (targets dist-gloo-2 and dist-gloo-3: gloo on the CPU), averages the
ranks' gradients as DDP does, and judges rank 0's loss and that gradient against the oracle on the whole batch
(docs/distributed.md). Run, from the repository root:

    pytest --adapter examples.my_distributed_loss:ADAPTER

The loss function must be a module-level function of an importable module: each rank is a process of its own that
imports it by name. Shards may be uneven (the suite draws them so), and all_gather needs equal sizes: pad to the
largest shard, gather, and cut the padding off again.
"""
import warnings

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as differentiable

import adapters
import reference
from examples.my_inhouse_loss import batch_hard_loss


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's rows, in rank order, with the gradient flowing back to the rank that owns them."""
    sizes = [torch.zeros((), dtype=torch.int64) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor(len(tensor)))
    longest = int(max(sizes))
    padding = tensor.new_zeros((longest - len(tensor), *tensor.shape[1:]))
    with warnings.catch_warnings():  # deprecated in favour of a private API; it is the one that carries gradients
        warnings.simplefilter("ignore", FutureWarning)
        parts = differentiable.all_gather(torch.cat([tensor, padding]))
    return torch.cat([part[: int(size)] for part, size in zip(parts, sizes)])


def distributed_batch_hard_loss(embeddings: torch.Tensor, labels: torch.Tensor, spec: reference.Spec) -> torch.Tensor:
    return batch_hard_loss(gather_rows(embeddings), gather_rows(labels), spec)


ADAPTER = adapters.wrap_torch(
    distributed_batch_hard_loss,
    name="my-distributed-batch-hard",
    spec=reference.Spec(mining="batch_hard", distance="euclidean", margin=0.2),
    dtypes=("float64", "float32"),
    targets=("dist-gloo-2", "dist-gloo-3"),
)
