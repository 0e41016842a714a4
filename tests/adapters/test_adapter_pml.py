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


def labelled(specs):
    """The specs of labelled batches (NPairsLoss reads pairs, and so does NTXentLoss's simclr: their own tests below)."""
    return [spec for spec in specs if reference.LOSSES[spec.mining].layout == "labels"]


LABELLED = [name for name, adapter in ADAPTERS.items() if labelled(adapter.specs)]


@pytest.mark.parametrize("name", LABELLED)
def test_every_claimed_spec_matches_the_oracle_in_float64(name):
    adapter = ADAPTERS[name]
    for spec in labelled(adapter.specs):
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


# MultiSimilarityLoss keeps its negative terms without a positive pair (all-unique: 0.200068 on fixture A)
@pytest.mark.parametrize("name", [name for name in LABELLED
                                  if reference.evaluate(X, np.arange(len(X)), ADAPTERS[name].specs[0]).loss == 0.0])
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


LIFTED = ADAPTERS["pml.LiftedStructureLoss"]
# docs/upstream/next-losses.md, section 1.1: unit rows, two classes; every J = 2.049277, J^2 / 2 = 2.0997672
A = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]])
A_LABELS = np.array([0, 0, 1, 1])


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_lifted_structure_loss_is_lifted_of_normalised_rows(scale):
    """PML's LpDistance normalises: A and 3 A give 2.0997672, the oracle's with normalize=True (the raw rows of
    3 A give 1.9600879)."""
    spec = Spec(mining="lifted", normalize=True, margin=1.0, reduction="mean", empty="zero")
    assert spec in LIFTED.specs
    x = scale * A
    oracle = reference.evaluate(x, A_LABELS, spec)
    assert oracle.loss == pytest.approx(2.0997672, abs=1e-7)
    for dtype in ("float64", "float32"):
        out = LIFTED.run(x, A_LABELS, spec, dtype, "cpu")
        assert out.loss == pytest.approx(2.0997672, abs=2e-6 if dtype == "float32" else 1e-7), dtype
        assert np.allclose(out.grad, oracle.grad, atol=1e-6 if dtype == "float32" else 1e-12), dtype
    raw = reference.evaluate(x, A_LABELS, dataclasses.replace(spec, normalize=False)).loss
    assert raw == pytest.approx(2.0997672 if scale == 1.0 else 1.9600879, abs=1e-7)


def test_lifted_structure_loss_one_class_and_no_positive_pair_are_zero():
    spec = Spec(mining="lifted", normalize=True, margin=1.0, reduction="mean", empty="zero")
    for labels in (np.zeros(4, dtype=int), np.arange(4)):
        out = LIFTED.run(A, labels, spec, "float32", "cpu")
        assert out.loss == 0.0 and np.isfinite(out.grad).all() and not out.grad.any()
        assert reference.evaluate(A, labels, spec).loss == 0.0


def test_lifted_margins_enter_only_through_their_difference():
    """lse(nm - d) + d - pm = lse((nm - pm) - d) + d: LiftedStructureLoss(neg_margin=nm, pos_margin=pm) is lifted
    with margin nm - pm (pos_margin=0.5 with neg_margin=1: margin 0.5, not 1)."""
    x = torch.tensor(X)
    value = losses.LiftedStructureLoss(neg_margin=1.0, pos_margin=0.5)(x, torch.tensor(Y)).item()
    assert value == pytest.approx(reference.evaluate(X, Y, Spec(mining="lifted", normalize=True, margin=0.5)).loss,
                                  abs=1e-12)
    assert abs(value - reference.evaluate(X, Y, Spec(mining="lifted", normalize=True, margin=1.0)).loss) > 0.1


def test_lifted_cosine_similarity_inverts_both_margins():
    """With CosineSimilarity PML computes lse(s_an - neg_margin) + pos_margin - s_ap, which is the cosine spec
    (d = 1 - s) with margin pos_margin - neg_margin: the adapter passes (1, 0) for m = 1; the defaults (0, 1) are
    margin -1, no Spec."""
    spec = Spec(mining="lifted", distance="cosine", normalize=True, margin=1.0, reduction="mean", empty="zero")
    oracle = reference.evaluate(X, Y, spec)
    assert LIFTED.run(X, Y, spec, "float64", "cpu").loss == pytest.approx(oracle.loss, abs=1e-12)
    default = losses.LiftedStructureLoss(distance=distances.CosineSimilarity())(torch.tensor(X), torch.tensor(Y))
    assert abs(default.item() - oracle.loss) > 0.1
    with pytest.raises(reference.SpecError):
        Spec(mining="lifted", distance="cosine", margin=-1.0)


def test_generalized_lifted_structure_loss_maps_onto_no_spec():
    """GeneralizedLiftedStructureLoss: per anchor [lse_P(d_ap) + lse_N(1 - d_an)]+, unsquared, mean over all N
    anchors, an empty set's lse 0: 1.2997239 on A, and a one-class batch is not 0 (no lifted spec gives either)."""
    loss = losses.GeneralizedLiftedStructureLoss()
    assert loss(torch.tensor(A), torch.tensor(A_LABELS)).item() == pytest.approx(1.2997239, abs=1e-7)
    assert loss(torch.tensor(A), torch.zeros(4, dtype=torch.long)).item() > 0.1
    unit = A  # unit rows: normalisation changes nothing
    d = np.linalg.norm(unit[:, None] - unit[None], axis=-1)
    same, off_diagonal = A_LABELS[:, None] == A_LABELS[None], ~np.eye(4, dtype=bool)
    per_anchor = [max(np.logaddexp.reduce(d[a, same[a] & off_diagonal[a]]) + np.logaddexp.reduce(1 - d[a, ~same[a]]),
                      0.0) for a in range(4)]
    assert np.mean(per_anchor) == pytest.approx(1.2997239, abs=1e-7)
    for normalize in (False, True):
        for margin in (0.2, 1.0):
            for reduction in ("mean", "mean_nonzero", "sum"):
                spec = Spec(mining="lifted", normalize=normalize, margin=margin, reduction=reduction)
                assert reference.evaluate(A, np.zeros(4, dtype=int), spec).loss == 0.0
                assert abs(reference.evaluate(A, A_LABELS, spec).loss - 1.2997239) > 0.05, spec


# --- NPairsLoss ------------------------------------------------------------------------------------------

def _npairs():
    return next(a for a in pml.ADAPTERS if a.name == "pml.NPairsLoss")


def test_npairs_is_tf_addons_npairs_with_one_pair_per_class():
    """next-losses.md 1.3: on distinct pair labels NPairsLoss is npairs, on any distance it takes."""
    adapter = _npairs()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 4))
    labels = np.tile(np.arange(5), 2)
    for spec in adapter.specs:
        out = adapter.run(x, labels, spec, "float64", "cpu")
        answer = reference.evaluate(x, labels, spec)
        assert out.loss == pytest.approx(answer.loss, rel=1e-10)
        np.testing.assert_allclose(out.grad, answer.grad, rtol=1e-8, atol=1e-12)


def test_npairs_keeps_the_first_pair_of_each_class():
    """Confirms pml-npairs-first-pair-per-class: anchors 0 and 1 share class 0, so PML keeps rows (0, 1), both anchors,
    as that class's one pair and drops the pairs (0, 3), (1, 4); with one pair per class left (two classes) its loss
    is the cross-entropy of those two pairs alone, and the spec's (targets spread over both positives of class 0)
    differs."""
    adapter = _npairs()
    spec = next(s for s in adapter.specs if s.distance == "euclidean")
    x = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 5.0], [0.5, 0.0], [3.0, 0.5], [0.0, 4.0]])
    labels = np.array([0, 0, 1, 0, 0, 1])
    kept = np.array([[0, 1], [2, 5]])  # (anchor, positive) per class, in label order
    logits = -np.linalg.norm(x[kept[:, 0]][:, None] - x[kept[:, 1]][None], axis=-1)
    first_pairs = np.mean([np.logaddexp.reduce(row) - row[i] for i, row in enumerate(logits)])
    assert adapter.run(x, labels, spec, "float64", "cpu").loss == pytest.approx(first_pairs, rel=1e-12)
    assert abs(reference.evaluate(x, labels, spec).loss - first_pairs) > 0.1


# --- NTXentLoss and SupConLoss ----------------------------------------------------------------------------

BATCH_A = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]])  # next-losses.md's fixture A


@pytest.mark.parametrize("name, spec, expected", [
    ("pml.NTXentLoss", Spec(mining="ntxent", distance="cosine", temperature=0.07), 1.4565929),
    ("pml.SupConLoss", Spec(mining="supcon", distance="cosine", temperature=0.1, reduction="mean_nonzero"), 1.0648501),
])
def test_ntxent_and_supcon_give_the_probed_fixture_values(name, spec, expected):
    adapter = next(a for a in pml.ADAPTERS if a.name == name)
    out = adapter.run(BATCH_A, np.array([0, 0, 1, 1]), spec, "float64", "cpu")
    assert out.loss == pytest.approx(expected, abs=1e-6)
    assert out.loss == pytest.approx(reference.evaluate(BATCH_A, [0, 0, 1, 1], spec).loss, rel=1e-12)


@pytest.mark.parametrize("temperature, expected", [(1.0, 0.8020786), (0.05, 2.0090783)])
def test_ntxent_on_two_views_is_simclr(temperature, expected):
    """NTXentLoss on labels [0..B-1, 0..B-1] is Chen et al.'s NT-Xent, whatever class the pairs share: za = (x0, x2),
    zb = (x1, x3) give next-losses.md 1.4's probes, the oracle's loss and gradient."""
    spec = Spec(mining="simclr", distance="cosine", temperature=0.07).at_temperature(temperature)
    x = BATCH_A[[0, 2, 1, 3]]
    oracle = reference.evaluate(x, [0, 1, 0, 1], spec)
    for labels in ([0, 1, 0, 1], [0, 0, 0, 0]):
        out = ADAPTERS["pml.NTXentLoss"].run(x, np.array(labels), spec, "float64", "cpu")
        assert out.loss == pytest.approx(oracle.loss, rel=1e-12)
        np.testing.assert_allclose(out.grad, oracle.grad, atol=1e-12)
    assert oracle.loss == pytest.approx(expected, abs=1e-6)


def test_supcon_is_zero_without_a_negative_pair():
    """Confirms pml-supcon-zero-without-a-negative-pair: one class, where L_out is log 3 - (mean positive logit) per
    anchor on these four unit rows, PML returns 0 with gradient 0."""
    adapter = next(a for a in pml.ADAPTERS if a.name == "pml.SupConLoss")
    spec = adapter.specs[0]
    out = adapter.run(BATCH_A, np.zeros(4, dtype=np.int64), spec, "float64", "cpu")
    assert out.loss == 0.0 and not out.grad.any()
    assert reference.evaluate(BATCH_A, np.zeros(4), spec).loss > 1.0


MS, MINED, CIRCLE = "pml.MultiSimilarityLoss", "pml.MultiSimilarityLoss+MultiSimilarityMiner", "pml.CircleLoss"


@pytest.mark.parametrize("name, spec, labels, expected", [
    (MS, Spec(mining="multi_similarity", distance="cosine"), [0, 0, 1, 1], 0.4490694),
    (MS, Spec(mining="multi_similarity", distance="cosine"), [0, 0, 1, 2], 0.324569),
    (MS, Spec(mining="multi_similarity", distance="cosine"), [0, 0, 0, 0], 1.12922),
    (MS, Spec(mining="multi_similarity", distance="cosine"), [0, 1, 2, 3], 0.200068),
    (MINED, Spec(mining="multi_similarity_mined", distance="cosine", margin=0.1), [0, 0, 1, 1], 0.2995347),
    (CIRCLE, Spec(mining="circle", distance="cosine", margin=0.4, reduction="mean_nonzero"), [0, 0, 1, 1], 19.546574),
    (CIRCLE, Spec(mining="circle", distance="cosine", margin=0.4, reduction="mean_nonzero"), [0, 0, 1, 2], 19.546574),
])
def test_multi_similarity_and_circle_give_the_probed_fixture_values(name, spec, labels, expected):
    """docs/upstream/next-losses.md sections 1.6-1.8, on fixture batches A, B, one-class and all-unique (the probes'
    printed digits), float64, and the oracle's gradient."""
    adapter = ADAPTERS[name]
    assert spec in adapter.specs
    out = adapter.run(BATCH_A, np.array(labels), spec, "float64", "cpu")
    digits = len(repr(expected).split(".")[1])
    assert out.loss == pytest.approx(expected, abs=0.5 * 10.0**-digits)
    oracle = reference.evaluate(BATCH_A, labels, spec)
    assert out.loss == pytest.approx(oracle.loss, abs=1e-12)
    np.testing.assert_allclose(out.grad, oracle.grad, atol=1e-10)


def test_circle_detaches_its_weights():
    """CircleLoss's gradient holds alpha_p, alpha_n constant, as the spec's does (Sun et al. 2020): it is the oracle's
    gradient, and not the derivative of the loss's value, which differs by more than a tenth on fixture A."""
    spec = Spec(mining="circle", distance="cosine", margin=0.4, reduction="mean_nonzero")
    labels = np.array([0, 0, 1, 1])
    out = ADAPTERS[CIRCLE].run(BATCH_A, labels, spec, "float64", "cpu")
    np.testing.assert_allclose(out.grad, reference.evaluate(BATCH_A, labels, spec).grad, atol=1e-10)
    h, derivative = 1e-6, np.zeros_like(BATCH_A)
    for index in np.ndindex(*BATCH_A.shape):
        step = np.zeros_like(BATCH_A)
        step[index] = h
        derivative[index] = (reference.evaluate(BATCH_A + step, labels, spec).loss
                             - reference.evaluate(BATCH_A - step, labels, spec).loss) / (2 * h)
    assert np.max(np.abs(out.grad - derivative)) > 0.1


def test_multi_similarity_is_zero_when_one_pair_of_each_is_mined():
    """Confirms pml-one-mined-pair-each-zero: anchor 2 keeps one positive and one negative pair, no other anchor any;
    PML's GenericPairLoss returns 0 with gradient 0 for index tensors of one element, the spec 0.599069 / 3."""
    x, y = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]), np.array([0, 1, 0])
    for spec in ADAPTERS[MINED].specs:
        mined = miners.MultiSimilarityMiner(epsilon=spec.margin)(torch.tensor(x), torch.tensor(y))
        assert [t.tolist() for t in mined] == [[2], [0], [2], [1]]
        out = ADAPTERS[MINED].run(x, y, spec, "float64", "cpu")
        assert out.loss == 0.0 and not out.grad.any()
        assert reference.evaluate(x, y, spec).loss == pytest.approx(0.599069 / 3, abs=1e-6)


def test_ntxent_caps_a_pair_at_minus_log_tiny():
    """Confirms pml-ntxent-pair-capped-at-minus-log-tiny: on fixture A at t = 1e-4 two of the four ordered positive
    pairs have a negative 0.2 more similar than their positive, a term of 2000 in the spec; PML's stops at -log(tiny)
    in each dtype, with a zero gradient, so its mean is half of -log(tiny)."""
    spec = Spec(mining="ntxent", distance="cosine", temperature=0.07).at_temperature(1e-4)
    labels = np.array([0, 0, 1, 1])
    oracle = reference.evaluate(BATCH_A, labels, spec)
    assert oracle.loss == pytest.approx(1000.0, rel=1e-6) and np.abs(oracle.grad).max() > 1e3
    for dtype in ("float64", "float32"):
        out = ADAPTERS["pml.NTXentLoss"].run(BATCH_A, labels, spec, dtype, "cpu")
        cap = -math.log(float(torch.finfo(getattr(torch, dtype)).tiny))
        assert out.loss == pytest.approx(cap / 2, rel=1e-6), dtype
        assert np.abs(out.grad).max() < 1e-6, dtype


def test_circle_softplus_is_linear_above_20():
    """Confirms pml-circle-softplus-linear-above-20: at gamma 50 two anchors of fixture A have a term softplus(x) with x
    in (20, 30), where softplus(x) - x = log(1 + e^-x) is 1e-13 to 2e-9, far above float64's rounding of x (7e-15);
    PML's float64 loss falls short of the spec's by exactly their share of the mean."""
    spec = Spec(mining="circle", distance="cosine", margin=0.4, reduction="mean_nonzero").at_temperature(0.02)
    labels = np.array([0, 0, 1, 1])
    oracle = reference.evaluate(BATCH_A, labels, spec)
    above = oracle.values > 20
    arguments = np.log(np.expm1(oracle.values[above]))  # the x whose softplus each of these terms is
    assert above.any() and np.all(arguments < 30)
    dropped = float(np.sum(oracle.values[above] - arguments)) / np.count_nonzero(oracle.values)
    out = ADAPTERS[CIRCLE].run(BATCH_A, labels, spec, "float64", "cpu")
    assert oracle.loss - out.loss == pytest.approx(dropped, rel=0.01)
    assert dropped > 1e-13
