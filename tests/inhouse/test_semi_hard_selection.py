"""inhouse.mining.semi_hard_negatives: both ways of finding the nearest farther negative (the masked minimum
over class slots and the sort + searchsorted) choose exactly the column the oracle's rule chooses on the same
distance matrix, ties included, across chunk and block boundaries; and the loss does not depend on the way.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from reference import Spec

torch = pytest.importorskip("torch", reason="inhouse.torch needs torch")

from inhouse import chunks, mining  # noqa: E402
from inhouse.distances import pairwise_distances  # noqa: E402
from inhouse.torch_losses import metric_loss  # noqa: E402

WAYS = {"masked minimum": 10**9, "sorting": 0}  # MASKED_MINIMUM_PASSES_PER_LOG2_N that forces each way


def _batch(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if kind == "lattice":  # small integers: exact ties d_an == d_ap and between negatives
        return rng.integers(-2, 3, size=(37, 3)).astype(float), rng.integers(0, 5, 37)
    if kind == "duplicates":  # exact zero distances within and across classes
        return np.repeat(rng.normal(size=(19, 4)), 2, axis=0)[:37], rng.integers(0, 4, 37)
    if kind == "uneven":  # one class of 20 beside singletons and pairs
        return rng.normal(size=(37, 4)), np.r_[np.zeros(20, int), np.arange(1, 18) // 2 + 1]
    if kind == "one_class":
        return rng.normal(size=(9, 3)), np.zeros(9, int)
    return rng.normal(size=(37, 5)), rng.integers(0, 6, 37)


def _oracle_rule(dist: np.ndarray, labels: np.ndarray) -> dict[tuple[int, int], int]:
    """reference.strategies.semi_hard's choice on this matrix: for every (a, p) of an anchor with negatives, the
    first nearest negative with d_an > d_ap (np.argmin), else the first farthest negative (np.argmax)."""
    chosen = {}
    for a in range(len(labels)):
        negative = labels != labels[a]
        if not negative.any():
            continue
        for p in np.flatnonzero((labels == labels[a]) & (np.arange(len(labels)) != a)):
            farther = negative & (dist[a] > dist[a, p])
            if farther.any():
                chosen[a, p] = int(np.argmin(np.where(farther, dist[a], np.inf)))
            else:
                chosen[a, p] = int(np.argmax(np.where(negative, dist[a], -np.inf)))
    return chosen


def _chosen(dist: torch.Tensor, labels: torch.Tensor) -> dict[tuple[int, int], int]:
    slots = mining.ClassSlots(labels)
    columns = mining.semi_hard_negatives(dist, labels, slots)
    has_negative = (slots.size < len(labels)).tolist()
    return {(a, int(slots.members[a, k])): int(columns[a, k])
            for a, k in zip(*(t.tolist() for t in slots.positive.nonzero(as_tuple=True))) if has_negative[a]}


@pytest.mark.parametrize("small", [False, True], ids=["default chunks", "small blocks and chunks"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("kind", ["random", "lattice", "duplicates", "uneven", "one_class"])
def test_the_oracles_choice_on_the_same_matrix(kind, way, dtype, small, monkeypatch):
    monkeypatch.setattr(mining, "MASKED_MINIMUM_PASSES_PER_LOG2_N", WAYS[way])
    if small:  # blocks of 4 columns with padding after the last, one to a few anchors per chunk
        monkeypatch.setattr(mining, "KEY_BLOCK", 4)
        monkeypatch.setattr(mining, "SELECTION_ELEMENTS", 200)
        monkeypatch.setattr(chunks, "CHUNK_ELEMENTS", 100)
    x, y = _batch(kind, np.random.default_rng(zlib.crc32(kind.encode())))
    dist = pairwise_distances(torch.tensor(x, dtype=dtype), "euclidean")
    labels = torch.as_tensor(y)
    assert _chosen(dist, labels) == _oracle_rule(dist.double().numpy(), y)


@pytest.mark.parametrize("way", WAYS)
def test_negative_zero_is_no_distance_above_zero(way, monkeypatch):
    """-0.0 == 0.0: its bits read as the most negative integer, and the masked minimum clears the sign bit."""
    monkeypatch.setattr(mining, "MASKED_MINIMUM_PASSES_PER_LOG2_N", WAYS[way])
    dist = torch.tensor([[0.0, -0.0, -0.0, -0.0, 9.0],
                         [-0.0, 0.0, 1.0, 1.0, 3.0],
                         [-0.0, 1.0, 0.0, 5.0, 5.0],
                         [-0.0, 1.0, 5.0, 0.0, 4.0],
                         [9.0, 3.0, 5.0, 4.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    assert _chosen(dist, labels) == _oracle_rule(dist.numpy(), labels.numpy()) == {
        (0, 1): 4, (1, 0): 2, (2, 3): 4, (3, 2): 4}


@pytest.mark.parametrize("spec", [Spec(mining="semi_hard", margin=1.0, empty="nan"),
                                  Spec(mining="semi_hard", distance="cosine", soft=True, reduction="sum")], ids=str)
def test_the_loss_and_gradient_do_not_depend_on_the_way(spec, monkeypatch):
    rng = np.random.default_rng(5)
    x = np.repeat(rng.normal(size=(6, 8)) * 2, 10, axis=0) + rng.normal(size=(60, 8))
    y = np.repeat(np.arange(6), 10)
    found = []
    for passes in WAYS.values():
        monkeypatch.setattr(mining, "MASKED_MINIMUM_PASSES_PER_LOG2_N", passes)
        embeddings = torch.tensor(x, dtype=torch.float32, requires_grad=True)
        loss = metric_loss(embeddings, y, spec)
        loss.backward()
        found.append((loss.item(), embeddings.grad))
    assert found[0][0] == found[1][0]
    torch.testing.assert_close(found[0][1], found[1][1], rtol=0, atol=0)


def test_the_way_follows_the_largest_class(monkeypatch):
    """K classes of 8 in 1024 points: the masked minimum (O(N^2 K)); one class of 512: sorting (O(N^2 log N))."""
    used = []
    for name in ("_nearest_farther_by_masked_minimum", "_nearest_farther_by_sorting"):
        real = getattr(mining, name)
        monkeypatch.setattr(mining, name, lambda *args, _real=real, _name=name: used.append(_name) or _real(*args))
    x = torch.randn(1024, 4)
    for labels in (torch.arange(1024) % 128, (torch.arange(1024) >= 512).long() * torch.arange(1024)):
        mining.semi_hard_negatives(pairwise_distances(x, "euclidean"), labels, mining.ClassSlots(labels))
    assert used == ["_nearest_farther_by_masked_minimum", "_nearest_farther_by_sorting"]
