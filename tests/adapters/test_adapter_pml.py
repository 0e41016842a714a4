"""pytorch-metric-learning adapters: the mapping onto the vocabulary, and why ContrastiveLoss has none."""
import dataclasses
import math

import numpy as np
import pytest

import reference
from adapters import pml
from hypothesis import strategies as st

from engine.cells import Cell
from engine import cell_record
from engine.cell_run import for_each_batch
from engine.regressions import OWN
from engine.session import ConformanceSession
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


SMOOTH = ADAPTERS["pml.TripletMarginLoss(smooth_loss=True)"]


def test_smooth_loss_with_margin_0_is_the_soft_term_and_its_default_margin_is_not():
    """smooth_loss: softplus(d_ap - d_an + m); the soft spec drops m, so only margin=0 maps onto it."""
    spec = next(s for s in SMOOTH.specs if s.distance == "euclidean" and not s.normalize)
    x = torch.tensor(X, requires_grad=True)
    lp = distances.LpDistance(normalize_embeddings=False)
    default = losses.TripletMarginLoss(smooth_loss=True, distance=lp)(x, torch.tensor(Y)).item()
    oracle = reference.evaluate(X, Y, spec)
    assert SMOOTH.run(X, Y, spec, "float64", "cpu").loss == pytest.approx(oracle.loss, abs=1e-12)
    assert abs(default - oracle.loss) > 1e-3


@pytest.mark.parametrize("dtype, ambiguous", [("float32", 1), ("float64", 0)])
def test_a_smooth_loss_cell_on_terms_float32_rounds_to_0_conforms(dtype, ambiguous):
    """The issue's batch: softplus(-137.7) = 1.6e-60. PML's float32 leaves the two terms out of AvgNonZero's count
    (the mean over 6, 4/3 of the spec's over 8); below float32's smallest normal that is admissible, and the cell
    says which decision it accepted; float64 holds them, counts them, and is compared with the oracle's own value."""
    spec = next(s for s in SMOOTH.specs if s.distance == "euclidean" and not s.normalize)
    batch = next(r for r in OWN if r.layout == "soft terms float32 rounds to 0").batch(spec)
    held = batch.rounded(dtype).embeddings
    s = float(held[1, 0] - held[0, 0])
    assert SMOOTH.run(held, batch.labels, spec, dtype, "cpu").loss == pytest.approx(
        (2 * s + 4 * math.log(2)) / (6 if ambiguous else 8), rel=1e-6)  # the count PML makes, by hand
    session = ConformanceSession(writer=None, sources={SMOOTH.name: "adapters.pml"}, timeout=60.0)
    for quantity in ("loss", "grad"):
        cell = Cell(SMOOTH, spec, dtype, "cpu", quantity)
        run = session.start(cell, f"pml::{cell}")
        for_each_batch(cell, run.examine, st.just(batch), max_examples=1)  # a Discrepancy where it does not conform
        assert run.examples == 1 and cell_record.summary(run)["ambiguous_kinds"].get("soft_underflow", 0) == ambiguous
        if quantity == "loss":  # among the admissible counts in float32, against the oracle's own value in float64
            assert run.compared == 1 - ambiguous
