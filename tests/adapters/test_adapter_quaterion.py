"""Quaterion adapters (the real quaterion 0.1.35, tox environment `quaterion`): each claim on a batch that
exercises it, what the unclaimed configurations compute, and each difference from the oracle on a small explicit
batch (the registry entries proposed for them cite these tests by name)."""
import numpy as np
import pytest

import reference
from reference import Spec

torch = pytest.importorskip("torch")

from adapters import quaterion  # noqa: E402
from claims import assert_conforms  # noqa: E402

if quaterion.missing():
    pytest.skip(quaterion.missing(), allow_module_level=True)

ADAPTERS = {a.name: a for a in quaterion.ADAPTERS}
HARD = ADAPTERS['quaterion.TripletLoss(mining="hard")']
SOFT = ADAPTERS['quaterion.TripletLoss(mining="hard", soft=True)']
ALL = ADAPTERS['quaterion.TripletLoss(mining="all")']
RNG = np.random.default_rng(11)
CENTRES = RNG.normal(size=(5, 6)) * 1.5
Y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 4])  # two singletons: anchors without a positive
X = CENTRES[Y] + RNG.normal(size=(10, 6)) * 0.6


def claims(*adapters):
    return [pytest.param(a, s, id=f"{a.name} {s}") for a in adapters for s in a.specs]


def upstream(x, y, **kwargs):
    """Quaterion's TripletLoss called directly, float64: (loss, gradient)."""
    e = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    loss = quaterion.triplet_loss_module().TripletLoss(**kwargs)(e, torch.tensor(y))
    grad = torch.autograd.grad(loss, e)[0] if loss.requires_grad else torch.zeros_like(e)
    return float(loss.detach()), grad.numpy()



@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("adapter, spec", claims(HARD, SOFT, ALL))
def test_each_claim_matches_the_oracle(adapter, spec, dtype):
    """hard = batch_hard scaled (hinge) or soft, anchors all (the singletons count with hp = 0); all = batch_all
    mean_nonzero. X is far from every decision of the oracle."""
    x = X * 0.3 if spec.mining == "batch_all" else X  # tight enough for batch_all to mix zero and non-zero terms
    oracle = assert_conforms(adapter, spec, x, Y, dtype)
    assert oracle.gap > 1e-3
    if spec.mining == "batch_all":
        assert (oracle.values == 0).any() and (oracle.values > 0).any()
    else:
        assert len(oracle.values) == len(Y) and (oracle.selection[:, 1] < 0).sum() == 2


def test_hard_cosine_is_half_the_suites_cosine_which_the_ratio_cancels():
    """Quaterion's cosine distance matrix is 1 - (cos + 1) / 2 = (1 - cos) / 2; the scaled loss divides hp - hn by
    mean(hn), so the factor goes and the claim is the suite's cosine."""
    e = torch.tensor(X)
    unit = e / e.norm(dim=1, keepdim=True)
    cosine = quaterion.triplet_loss_module().Distance.get_by_name("cosine")
    assert torch.allclose(cosine.distance_matrix(e), (1 - unit @ unit.T) / 2)
    spec = next(s for s in HARD.specs if s.distance == "cosine")
    assert_conforms(HARD, spec, X, Y, "float64")


def test_hard_without_a_negative_gives_the_margin_and_nan_at_collapse():
    """One class of 10 rows (cdist's direct kernel, d(a, a) = 0): hn = the row maximum, the ratio is 0, the loss
    the margin. All rows equal: mean(hn) = 0 and the loss is 0/0 = NaN, as the oracle says."""
    one_class = np.zeros(len(X), dtype=int)
    for spec in HARD.specs:
        assert HARD.run(X, one_class, spec, "float32", "cpu").loss == pytest.approx(0.5, abs=1e-7)
        collapsed = np.ones((4, 3))
        out = HARD.run(collapsed, np.array([0, 0, 1, 1]), spec, "float64", "cpu")
        assert np.isnan(out.loss) and np.isnan(reference.evaluate(collapsed, np.array([0, 0, 1, 1]), spec).loss)


def test_all_ignores_soft_and_gives_zero_without_a_triplet():
    spec = ALL.specs[0]
    assert upstream(X, Y, mining="all", soft=True, distance_metric_name="euclidean")[0] == pytest.approx(
        ALL.run(X, Y, spec, "float64", "cpu").loss, rel=1e-15
    )
    out = ALL.run(X, np.arange(len(X)), spec, "float64", "cpu")
    assert out.loss == 0.0 and not out.grad.any()


def test_unclaimed_cosine_forms_scale_the_suites_cosine_by_one_half():
    """Not claimed: with Quaterion's cosine, soft = softplus((hp - hn) / 2) in the suite's cosine units, and all =
    one half of batch_all at margin 2m (the proposed distance value "half_cosine" would claim both)."""
    unit_cosine = reference.evaluate(X, Y, Spec(mining="batch_hard", distance="cosine", soft=True))
    a, p, n = unit_cosine.selection.T
    d = unit_cosine.distances
    hp = np.where(p >= 0, d[a, np.maximum(p, 0)], 0.0)
    expected_soft = np.mean(np.logaddexp(0.0, (hp - d[a, n]) / 2))
    soft, _ = upstream(X, Y, mining="hard", soft=True, distance_metric_name="cosine")
    assert soft == pytest.approx(expected_soft, rel=1e-12) and soft != pytest.approx(unit_cosine.loss, rel=1e-3)
    all_, _ = upstream(X, Y, mining="all", margin=0.5, distance_metric_name="cosine")
    doubled = reference.evaluate(X, Y, Spec(mining="batch_all", distance="cosine", margin=1.0, reduction="mean_nonzero"))
    assert all_ == pytest.approx(doubled.loss / 2, rel=1e-12)


def semi_hard_pairs(x, y, margin):
    """What mining="semi_hard" computes (quaterion/loss/triplet_loss.py _semi_hard_triplet_loss), euclidean: every
    same-label pair (i, j), i == j included, against every different-label pair (k, l) of any anchor,
    min(max(d_ij - d_kl + m, 0), m), mean over all of them (NaN when there is no different-label pair)."""
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    same = y[:, None] == y[None]
    terms = np.clip(d[same][:, None] - d[~same][None, :] + margin, 0.0, margin)
    return terms.mean() if terms.size else np.nan


def test_semi_hard_is_no_vocabulary_mining():
    """mining="semi_hard" (not claimed; proposed value "pairs_clamped") mixes anchors, counts the self-pairs
    d(i, i) = 0 as positives and caps each term at m: neither semi_hard nor semi_hard_all. Without any positive
    pair it still pushes negative pairs apart (the self-pairs), and a batch of one class gives NaN (a mean over no
    term) with a zero gradient."""
    x = X * 0.3  # every kind of term occurs at margin 0.5
    loss, _ = upstream(x, Y, mining="semi_hard", margin=0.5, distance_metric_name="euclidean")
    assert loss == pytest.approx(semi_hard_pairs(x, Y, 0.5), rel=1e-12)
    for mining in ("semi_hard", "semi_hard_all"):
        assert loss != pytest.approx(reference.evaluate(x, Y, Spec(mining=mining, margin=0.5)).loss, rel=1e-2)
    close = X * 0.1
    distinct, _ = upstream(close, np.arange(len(X)), mining="semi_hard", margin=0.5, distance_metric_name="euclidean")
    assert distinct > 0 and distinct == pytest.approx(semi_hard_pairs(close, np.arange(len(X)), 0.5), rel=1e-12)
    one_class, grad = upstream(X, np.zeros(len(X), dtype=int), mining="semi_hard", distance_metric_name="euclidean")
    assert np.isnan(one_class) and not grad.any()


def test_half_precision_is_not_claimed():
    """float16/bfloat16 on the CPU: torch.cdist has no kernel for them (euclidean raises); the cosine form runs and
    returns a float32 loss (the masks are float32)."""
    TripletLoss = quaterion.triplet_loss_module().TripletLoss
    for dtype in (torch.float16, torch.bfloat16):
        e = torch.tensor(X, dtype=dtype)
        with pytest.raises(NotImplementedError, match="cdist"):
            TripletLoss(distance_metric_name="euclidean")(e, torch.tensor(Y))
        assert TripletLoss(distance_metric_name="cosine")(e, torch.tensor(Y)).dtype == torch.float32


# --- differences from the oracle ----------------------------------------------------------------------------


def test_hard_losses_route_the_gradient_through_the_row_maximum_at_a_tie():
    """Confirms masked-minimum-ties-at-the-row-maximum for the real library (hinge and soft). hn = min over the row
    of d + rowmax * [same label]: when the nearest negative is the row maximum, the anchor's own entry ties with it
    and min() takes the anchor's column, so dL/dhn reaches d(a, a) and the column max() picked (anchor (1, 0),
    positives (0, 1) and (0.96, 0.28), negative (0, -1)). The loss is right, the gradient is not."""
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.96, 0.28], [0.0, -1.0]])
    y = np.array([0, 0, 0, 1])
    for adapter in (HARD, SOFT):
        for spec in adapter.specs:
            oracle = reference.evaluate(x, y, spec)
            out = adapter.run(x, y, spec, "float64", "cpu")
            assert oracle.gap > 0.05 and out.loss == pytest.approx(oracle.loss, rel=1e-12)
            assert np.abs(out.grad - oracle.grad).max() > 0.1, (adapter.name, spec)


def test_fallback_reads_the_cdist_diagonal_in_float32():
    """The real library reads the cdist diagonal (why it declares precision "gram"): one class of 40 rows (more than
    25: cdist's Gram expansion), spread 0.03 around 0.5: hn = rowmax + d(a, a) and d(a, a) is not 0 in float32:
    0.49973 for the margin 0.5, 0.693123 for log 2 (soft). float64 stays within its tolerance here."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(40, 8)) * 0.03 + 0.5).astype(np.float32).astype(np.float64)
    y = np.zeros(40, dtype=int)
    for adapter, expected in ((HARD, 0.5), (SOFT, np.log(2.0))):
        spec = adapter.specs[0]
        assert reference.evaluate(x, y, spec).loss == pytest.approx(expected, rel=1e-12)
        assert abs(adapter.run(x, y, spec, "float32", "cpu").loss - expected) > 2e-5
        assert adapter.run(x, y, spec, "float64", "cpu").loss == pytest.approx(expected, abs=1e-7)


def test_fallback_reads_the_cosine_diagonal_in_float64():
    """The real library reads the cosine diagonal (within the Gram precision it declares): two nearly parallel rows of one
    class, (1 - cos) / 2 = 5e-14 and d(a, a) of the order of 1e-16: 0.49779 for the margin 0.5, although mean(hn)
    = 1e-13 is well above float64's resolution of the collapse."""
    x = np.array([[1.143, -1.969], [1.143, -1.969]])
    x[1] += np.array([1.437, -0.445]) * 1e-6
    y = np.array([0, 0])
    spec = next(s for s in HARD.specs if s.distance == "cosine")
    oracle = reference.evaluate(x, y, spec)
    assert oracle.loss == pytest.approx(0.5) and oracle.gaps["collapse"] > 1e-13
    assert HARD.run(x, y, spec, "float64", "cpu").loss == pytest.approx(0.4977925, abs=1e-6)
