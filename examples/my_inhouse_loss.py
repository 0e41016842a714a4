"""Check your own loss against the oracle: a complete example to copy.

1. Write the loss as a plain function of torch tensors: embeddings [N, D] and labels [N] in, a 0-d
   tensor out. A parameter named `spec` receives the `reference.Spec` being checked, so one function
   can claim several margins or distances.
2. Say what it implements, in the suite's vocabulary (reference.Spec; README "semantics catalogue"),
   and wrap it with adapters.wrap_torch (adapters.wrap_tensorflow and adapters.wrap_numpy exist too).
3. Run the conformance checks for exactly these adapters, from the repository root:

       pytest --adapter examples.my_inhouse_loss:ADAPTERS

   add `--results my-results.jsonl` for the machine-readable records, and build the HTML report with
   `python -m reports my-results.jsonl -o report.html`. The exit status is 0 when the loss conforms,
   non-zero when a discrepancy was found; each failure prints a reproducer to paste into a script.

This one is a correct batch-hard triplet loss (Hermans et al. 2017) with TF-Addons' conventions: every
anchor counts, an anchor without a positive uses 0, one without a negative the farthest point of its row.
"""
import torch

import adapters
import reference


def pairwise_euclidean(embeddings: torch.Tensor) -> torch.Tensor:
    """||x_i - x_j|| from differences (no Gram expansion, so no cancellation far from the origin).

    sqrt's derivative is infinite at 0, so a pair at distance 0 (a duplicate point, the diagonal)
    gets distance 0 and gradient 0, the convention the oracle uses too.
    """
    difference = embeddings[:, None, :] - embeddings[None, :, :]
    squared = (difference * difference).sum(dim=-1)
    apart = squared > 0
    return torch.where(apart, torch.sqrt(torch.where(apart, squared, torch.ones_like(squared))), torch.zeros_like(squared))


def batch_hard_loss(embeddings: torch.Tensor, labels: torch.Tensor, spec: reference.Spec) -> torch.Tensor:
    distances = pairwise_euclidean(embeddings)
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    negative = ~same
    hardest_positive = torch.where(positive, distances, torch.zeros_like(distances)).amax(dim=1)
    nearest_negative = torch.where(negative, distances, torch.full_like(distances, float("inf"))).amin(dim=1)
    farthest = distances.amax(dim=1)  # the fallback for an anchor without a negative
    hardest_negative = torch.where(negative.any(dim=1), nearest_negative, farthest)
    return torch.relu(hardest_positive - hardest_negative + spec.margin).mean()


ADAPTERS = [
    adapters.wrap_torch(
        batch_hard_loss,
        name="my-batch-hard",
        spec=[reference.Spec(mining="batch_hard", margin=margin) for margin in (0.2, 1.0)],
        dtypes=("float32", "float64"),
        notes="batch-hard, every anchor, distances from differences",
        source="examples/my_inhouse_loss.py",
    )
]
