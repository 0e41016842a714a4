"""pytorch-metric-learning adapters: the mapping onto the vocabulary, and why ContrastiveLoss has none."""
import dataclasses

import numpy as np
import pytest

import reference
from adapters import pml
from reference import Spec

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_metric_learning")
distances, losses, miners = (pytest.importorskip(f"pytorch_metric_learning.{name}") for name in ("distances", "losses", "miners"))

ADAPTERS = {a.name: a for a in pml.ADAPTERS}
# 1-D points a long way apart along each axis: no ties, some active and some inactive hinges
X = np.array([[0.0, 1.0], [0.3, 0.9], [1.0, 0.1], [0.8, -0.2], [-0.6, 0.7], [2.0, 1.5], [-1.0, -1.0]])
Y = np.array([0, 0, 1, 1, 0, 2, 2])


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_every_claimed_spec_matches_the_oracle_in_float64(name):
    adapter = ADAPTERS[name]
    for spec in adapter.specs:
        out = adapter.run(X, Y, spec, "float64", "cpu")
        oracle = reference.evaluate(X, Y, spec)
        assert out.loss == pytest.approx(oracle.loss, abs=1e-12), spec
        assert np.allclose(out.grad, oracle.grad, atol=1e-12), spec


def test_cosine_similarity_is_the_cosine_distance_rearranged():
    """relu(s_an - s_ap + m) with s = cos is relu(d_ap - d_an + m) with d = 1 - cos."""
    spec = Spec(mining="batch_all", distance="cosine", margin=0.05, reduction="mean_nonzero")
    x = torch.tensor(X, requires_grad=True)
    loss = losses.TripletMarginLoss(margin=0.05, distance=distances.CosineSimilarity())(x, torch.tensor(Y))
    oracle = reference.evaluate(X, Y, spec)
    assert loss.item() == pytest.approx(oracle.loss, abs=1e-12) and oracle.loss > 0


def test_batch_hard_miner_drops_anchors_without_a_positive():
    """A singleton 0.01 from another point: under anchors="all" its term [0 - 0.01 + m]+ would count."""
    adapter = ADAPTERS["pml.TripletMarginLoss+BatchHardMiner"]
    x, y = X.copy(), np.array([0, 0, 1, 1, 3, 2, 2])
    x[4] = x[0] + [0.01, 0.0]
    spec = adapter.specs[1]  # euclidean, not normalised
    out = adapter.run(x, y, spec, "float64", "cpu")
    assert out.loss == pytest.approx(reference.evaluate(x, y, spec).loss, abs=1e-12)
    assert out.loss != pytest.approx(reference.evaluate(x, y, dataclasses.replace(spec, anchors="all")).loss)


def test_semihard_miner_window_is_inclusive_at_the_margin():
    """d_an - d_ap == m exactly (1.25 - 1 with m = 0.25): mined, with a zero term that mean_nonzero skips."""
    x = torch.tensor([[0.0], [1.0], [1.25]])
    mined = miners.TripletMarginMiner(
        margin=0.25, type_of_triplets="semihard", distance=distances.LpDistance(normalize_embeddings=False)
    )(x, torch.tensor([0, 0, 1]))
    assert [t.tolist() for t in mined] == [[0], [1], [2]]


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_no_valid_triplet_gives_zero_with_zero_gradient(name):
    adapter = ADAPTERS[name]
    out = adapter.run(X, np.arange(len(X)), adapter.specs[0], "float32", "cpu")
    assert out.loss == 0.0 and not out.grad.any()


def test_contrastive_loss_maps_onto_no_spec():
    """PML ContrastiveLoss = AvgNonZero(relu(d_pos - 0)) + AvgNonZero(relu(1 - d_neg)) over ordered pairs,
    unsquared, two means added; `contrastive` is one mean of y d^2 + (1 - y)[m - d]+^2."""
    x = torch.tensor(X, requires_grad=True)
    value = losses.ContrastiveLoss(pos_margin=0, neg_margin=1)(x, torch.tensor(Y)).item()
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)  # LpDistance normalises by default
    d = np.linalg.norm(unit[:, None] - unit[None], axis=-1)
    same, off_diagonal = Y[:, None] == Y[None], ~np.eye(len(Y), dtype=bool)
    positive, negative = d[same & off_diagonal], np.maximum(1 - d[~same], 0)
    assert value == pytest.approx(positive[positive > 0].mean() + negative[negative > 0].mean(), abs=1e-12)
    for normalize in (False, True):
        for reduction in ("mean", "mean_nonzero", "sum"):
            spec = Spec(mining="contrastive", normalize=normalize, margin=1.0, reduction=reduction)
            assert abs(reference.evaluate(X, Y, spec).loss - value) > 0.05, spec
