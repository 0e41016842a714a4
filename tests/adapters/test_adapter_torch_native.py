"""Plain-PyTorch adapters: the facts their claims rest on, and the registry entries against them."""
import numpy as np
import pytest

import reference
from adapters import torch_native
from reference import Spec
from reference.strategies import valid_triplets

torch = pytest.importorskip("torch")

ADAPTERS = {a.name: a for a in torch_native.ADAPTERS}
TRIPLET_MARGIN = ADAPTERS["torch.TripletMarginLoss"]
SEED001 = ADAPTERS["seed001.MarginRankingLoss-hard"]
CDIST = ADAPTERS["torch.cdist-batch-hard"]
EPS = 1e-6  # torch's pairwise_distance default, added to every coordinate of a - p
TRIPLETS_M1 = Spec(mining="triplets", margin=1.0, empty="nan")


def eps_distance(a, b):
    """What torch measures: ||a - b + eps||."""
    return np.linalg.norm(a - b + EPS, axis=-1)


def clustered_batch(seed=0, n=9, dim=6):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    return rng.normal(size=(n, dim)) * 0.7 + labels[:, None], labels


def test_triplet_margin_distance_of_a_point_to_itself_is_eps_sqrt_d():
    """The duplicate pair (0, 1): torch says d = 1e-6 * sqrt(4) = 2e-6, the oracle 0; d(a, n) != d(n, a)."""
    a = np.array([0.1, 0.2, 0.3, 0.4])
    x = np.stack([a, a, a + [0.5, 0, 0, 0]])
    pairwise = torch.nn.functional.pairwise_distance
    t = torch.tensor(x)
    assert pairwise(t[:1], t[1:2]).item() == pytest.approx(EPS * 2, rel=1e-9)
    assert pairwise(t[:1], t[2:]).item() == pytest.approx(0.5 - EPS, rel=1e-9)
    assert pairwise(t[2:], t[:1]).item() == pytest.approx(0.5 + EPS, rel=1e-9)

    triplet = np.array([[0, 1, 2]])
    out = TRIPLET_MARGIN.run(x, [0, 0, 1], TRIPLETS_M1, "float64", "cpu", triplet)
    oracle = reference.evaluate(x, [0, 0, 1], TRIPLETS_M1, triplets=triplet)
    assert oracle.loss == 0.5
    assert out.loss - oracle.loss == pytest.approx(3 * EPS, abs=1e-11)  # +2e-6 on d_ap, +1e-6 from d_an


def test_triplet_margin_eps_moves_the_float64_loss_beyond_tolerance():
    """Confirms torch-triplet-margin-eps-in-norm: on an ordinary batch the float64 loss is off by ~1e-6,
    exactly what ||a - p + eps|| predicts; in float32 the same offset stays inside the tolerance."""
    x, y = clustered_batch()
    triplets = valid_triplets(y)
    out = TRIPLET_MARGIN.run(x, y, TRIPLETS_M1, "float64", "cpu", triplets)
    oracle = reference.evaluate(x, y, TRIPLETS_M1, triplets=triplets)
    a, p, n = (x[triplets[:, k]] for k in range(3))
    predicted = np.mean(np.maximum(eps_distance(a, p) - eps_distance(a, n) + 1.0, 0.0))
    assert out.loss == pytest.approx(predicted, abs=1e-13)
    error = abs(out.loss - oracle.loss)
    assert error > 1e-7 + 1e-7 * abs(oracle.loss)  # torch.testing's float64 tolerance
    assert error < 2 * EPS * np.sqrt(x.shape[1])
    out32 = TRIPLET_MARGIN.run(x, y, TRIPLETS_M1, "float32", "cpu", triplets)
    assert abs(out32.loss - oracle.loss) < 1e-5 + 1.3e-6 * abs(oracle.loss)  # torch.testing's float32 tolerance



@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_triplet_margin_eps_gives_duplicates_a_gradient(dtype):
    """Confirms torch-triplet-margin-eps-at-duplicates: the positive duplicates the anchor; torch's gradient
    on it is -1/sqrt(D) per coordinate (D = 4), the oracle's 0, in every dtype."""
    a = np.array([0.25, -0.5, 0.5, 0.125])  # exact in every dtype
    x = np.stack([a, a, a + [0.5, 0.125, 0.0, 0.0]])
    triplet = np.array([[0, 1, 2]])
    out = TRIPLET_MARGIN.run(x, [0, 0, 1], TRIPLETS_M1, dtype, "cpu", triplet)
    oracle = reference.evaluate(x, [0, 0, 1], TRIPLETS_M1, triplets=triplet)
    assert np.array_equal(out.grad[1], [-0.5] * 4) and not oracle.grad[1].any()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_triplet_margin_eps_gives_a_flat_loss_a_gradient(dtype):
    """Confirms torch-triplet-margin-eps-at-duplicates' descent check: the duplicate pair is a positive of one triplet
    and a negative of the other, so the loss is m wherever the two rows are (the oracle's gradient is 0); torch's
    gradient has length sqrt(2), and a step of 1/16 against it lowers torch's loss by about eps, not by 1/16 sqrt(2)."""
    x = np.array([[0.5, 0.0], [0.5, 0.0], [0.0, 1.5]])
    triplets = np.array([[1, 1, 0], [0, 1, 0]])
    out = TRIPLET_MARGIN.run(x, [0, 0, 0], TRIPLETS_M1, dtype, "cpu", triplets)
    oracle = reference.evaluate(x, [0, 0, 0], TRIPLETS_M1, triplets=triplets)
    size = np.linalg.norm(out.grad)
    assert size == pytest.approx(np.sqrt(2), rel=1e-3) and not oracle.grad.any()
    stepped = TRIPLET_MARGIN.run(x - out.grad / size / 16, [0, 0, 0], TRIPLETS_M1, dtype, "cpu", triplets)
    assert abs(out.loss - stepped.loss) < 1e-4 < size / 16 / 4


def test_triplet_margin_eps_turns_the_float64_gradient_of_near_duplicates():
    """Near duplicates 1e-4 apart: off by ~1.5e-2 (about 1.5e-6 / r), far above float64's gradient tolerance
    1e-5, and on a gap float64 resolves. (In float32 the harness's rounding model calls such a gap ambiguous.)"""
    a = np.array([0.3, -0.2, 0.5, 0.1])
    x = np.stack([a, a + 1e-4 * np.array([1.0, -1.0, 1.0, 1.0]) / 2, a + [0.4, 0.1, 0.0, 0.0]])
    triplet = np.array([[0, 1, 2]])
    out = TRIPLET_MARGIN.run(x, [0, 0, 1], TRIPLETS_M1, "float64", "cpu", triplet)
    oracle = reference.evaluate(x, [0, 0, 1], TRIPLETS_M1, triplets=triplet)
    assert 1e-2 < np.abs(out.grad - oracle.grad).max() < 2e-2
    assert oracle.gaps["zero_distance"] == pytest.approx(1e-4)


def test_triplet_margin_loss_refuses_margin_zero_and_gives_nan_for_no_triplets():
    x, y = clustered_batch()
    with pytest.raises(ValueError, match="expected margin to be greater than 0"):
        torch.nn.TripletMarginLoss(margin=0.0)
    out = TRIPLET_MARGIN.run(x, y, TRIPLETS_M1, "float32", "cpu", np.zeros((0, 3), dtype=np.int64))
    assert np.isnan(out.loss)  # mean over no triplet: the claimed empty="nan"


def test_seed001_is_batch_hard_over_all_anchors_singletons_included():
    """The anchor itself is in its own class's max, so an anchor with no positive has hp = 0: anchors="all"."""
    x, _ = clustered_batch()
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3])  # label 3 is a singleton
    for spec in SEED001.specs:
        out = SEED001.run(x, y, spec, "float64", "cpu")
        oracle = reference.evaluate(x, y, spec)
        assert out.loss == pytest.approx(oracle.loss, abs=1e-12)
        assert np.allclose(out.grad, oracle.grad, atol=1e-12)


def test_seed001_raises_on_a_batch_of_one_class():
    """Confirms seed001-one-class-batch-raises: min over an empty set of negatives. The oracle's every term is the
    margin (hn falls back to the farthest point, which is hp: d - d = 0 on any CPU), so the loss, their mean, is the
    margin within the rounding of the weights 1/N."""
    x, _ = clustered_batch()
    y = np.zeros(len(x), dtype=int)
    spec = SEED001.specs[0]
    answer = reference.evaluate(x, y, spec)
    assert np.all(answer.values == spec.margin)
    assert answer.loss == pytest.approx(spec.margin, rel=len(y) * np.finfo(np.float64).eps)
    with pytest.raises(RuntimeError, match="numel\\(\\) == 0"):
        SEED001.run(x, y, spec, "float64", "cpu")


def test_cdist_batch_hard_falls_back_like_tf_addons():
    """One class: hn = the farthest point, hp = the farthest positive = the same, so the loss is the margin;
    all labels distinct: hp = 0."""
    x, _ = clustered_batch()
    for labels in (np.zeros(len(x), dtype=int), np.arange(len(x))):
        for spec in CDIST.specs:
            out = CDIST.run(x, labels, spec, "float64", "cpu")
            assert out.loss == pytest.approx(reference.evaluate(x, labels, spec).loss, abs=1e-12)


ROW_MAXIMUM_TIE = np.array([[1.0, 0.0], [0.0, 1.0], [0.96, 0.28], [0.0, -1.0]]), np.array([0, 0, 0, 1])


@pytest.mark.parametrize("adapter_name", ["torch.cdist-batch-hard", "seed003.quaterion-formula(hard)"])
def test_masked_minimum_gives_the_tied_negative_no_gradient(adapter_name):
    """Confirms masked-minimum-ties-at-the-row-maximum. From anchor (1, 0), the positive (0, 1) and the only
    negative (0, -1) are both at the row maximum; no decision of the oracle is near, the loss agrees, and
    the gradient does not (it follows the anchor's own column and the row maximum's argmax)."""
    from adapters import catalog

    adapter = next(a for a in catalog() if a.name == adapter_name)
    x, y = ROW_MAXIMUM_TIE
    for spec in adapter.specs:
        oracle = reference.evaluate(x, y, spec)
        out = adapter.run(x, y, spec, "float64", "cpu")
        assert oracle.gap >= 0.05 and out.loss == pytest.approx(oracle.loss, rel=1e-9), spec
        assert np.abs(out.grad - oracle.grad).max() > 0.05, spec  # float64's gradient tolerance is 1e-5
