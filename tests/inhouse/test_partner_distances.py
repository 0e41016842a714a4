"""batch_hard's distances to its chosen partners (inhouse/distances.py `PartnerDistances`, `_HardestTerms` in
inhouse/strategies.py) and the CPU scratch memory they compute in (inhouse/scratch.py): the same distances and
gradient as the general pair path, zero distances and cosine's zero rows included, and no loss in flight disturbed
by another computed meanwhile."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the in-house losses are torch")

from inhouse import scratch  # noqa: E402
from inhouse.distances import PairDistances, PartnerDistances  # noqa: E402
from inhouse.torch_losses import metric_loss  # noqa: E402
from reference import Spec  # noqa: E402


def _points(seed: int, n: int = 40, d: int = 6, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    x[3] = 0.0  # cosine's zero row
    x[7] = x[8]  # a pair at distance 0
    partners = torch.stack([torch.randint(0, n, (n,), generator=g), torch.randint(0, n, (n,), generator=g)])
    partners[0, 7], partners[1, 5] = 8, 5  # a copy, and the point itself
    return x, partners


@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean", "cosine"])
def test_partner_distances_and_gradient_are_the_pair_paths(distance):
    x, partners = _points(seed=len(distance))
    weights = torch.randn(partners.shape, generator=torch.Generator().manual_seed(5), dtype=x.dtype)
    ours = x.clone().requires_grad_(True)
    dists = PartnerDistances.apply(ours, partners, distance)
    (dists * weights).sum().backward()
    theirs = x.clone().requires_grad_(True)
    anchors = torch.arange(len(x))
    expected = torch.stack([PairDistances.apply(theirs, anchors, p, distance) for p in partners])
    (expected * weights).sum().backward()
    torch.testing.assert_close(dists, expected, rtol=0, atol=0)
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-14, atol=1e-14)


def test_a_loss_in_flight_keeps_its_gradient_while_another_is_computed():
    spec = Spec(mining="batch_hard", margin=1.0)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(96, 8, generator=g) for _ in range(2)]
    labels = torch.arange(96) % 12
    alone = []
    for x in batches:
        leaf = x.clone().requires_grad_(True)
        metric_loss(leaf, labels, spec).backward()
        alone.append(leaf.grad)
    leaves = [x.clone().requires_grad_(True) for x in batches]
    losses = [metric_loss(leaf, labels, spec) for leaf in leaves]  # both forwards before either backward
    for loss in losses:
        loss.backward()
    for leaf, expected in zip(leaves, alone):
        torch.testing.assert_close(leaf.grad, expected, rtol=0, atol=0)


def test_scratch_memory_is_reused_and_grown():
    like = torch.zeros(1)
    first = scratch.scratch("test", (4, 8), like)
    again = scratch.scratch("test", (2, 8), like)
    assert again.data_ptr() == first.data_ptr() and again.shape == (2, 8)
    grown = scratch.scratch("test", (64, 64), like)
    assert grown.shape == (64, 64) and grown.numel() == 64 * 64
    assert scratch.scratch("other", (4, 8), like).data_ptr() != grown.data_ptr()


@pytest.mark.parametrize("spec", [Spec(mining="batch_hard", distance=distance, margin=1.0, reduction="sum", scaled=scaled)
                                  for distance in ("euclidean", "squared_euclidean", "cosine") for scaled in (False, True)],
                         ids=str)
@pytest.mark.parametrize("n", [30, 600])
def test_one_class_has_a_gradient_of_exactly_zero(spec, n):
    """With one class each anchor's hardest negative stands in as its farthest member, the very pair of its hardest
    positive: hp - hn is 0 whatever the points, and so is the gradient, exactly (the oracle's), however the two
    partners' shares are summed into a row that several anchors chose."""
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(n, 16, generator=g) * torch.logspace(-3, 3, n)[:, None]).requires_grad_(True)
    metric_loss(x, torch.zeros(n, dtype=torch.int64), spec).backward()
    assert torch.count_nonzero(x.grad) == 0
