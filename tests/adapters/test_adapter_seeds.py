"""Seed adapters: the semi-hard loop is TF-Addons' semi_hard with empty="zero"; Quaterion's scaled
batch hard does not see its cosine's factor 1/2."""
import dataclasses

import numpy as np
import pytest

import reference
from adapters import seeds
from reference import Spec

ADAPTERS = {a.name: a for a in seeds.ADAPTERS}
LOOP = ADAPTERS["seed002.semihard-loop"]


def batch(seed, n=9, dim=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)), rng.integers(0, 3, n)


@pytest.mark.parametrize("margin", [0.0, 0.3, 1.0, 5.0])
def test_margin_window_selects_the_same_terms_as_tf_addons(margin):
    """Restricting the nearest-farther negative to d_an < d_ap + m changes no term, whatever the margin."""
    for seed in range(6):
        x, y = batch(seed)
        for distance in ("euclidean", "squared_euclidean"):
            spec = Spec(mining="semi_hard", distance=distance, margin=margin)
            loss = seeds.semihard_loop(x.astype(np.float32), y, spec)
            assert loss == pytest.approx(reference.evaluate(x, y, spec).loss, rel=2e-6, abs=1e-6), (seed, spec)


def test_a_negative_beyond_the_window_gives_a_zero_term_either_way():
    """(a, p) at 1, the only farther negative at 2.5 > 1 + m: TF-Addons takes it, the loop falls back to the
    farthest negative (the same point); the term is 0 both ways. (p, a) has the same geometry."""
    x = np.array([[0.0], [1.0], [2.5], [-3.0]])
    y = np.array([0, 0, 1, 1])
    spec = LOOP.specs[2]  # euclidean, mean
    out = LOOP.run(x, y, spec, "float32", "cpu")
    assert out.loss == reference.evaluate(x, y, spec).loss


def test_no_positive_pair_gives_zero_not_nan():
    x, _ = batch(0)
    spec = LOOP.specs[0]
    assert LOOP.run(x, np.arange(len(x)), spec, "float32", "cpu").loss == 0.0
    assert np.isnan(reference.evaluate(x, np.arange(len(x)), dataclasses.replace(spec, empty="nan")).loss)


def test_an_anchor_without_negatives_matches_within_float32():
    """No negative at all: TF-Addons uses 0 for d_an, the loop its running maximum's start, 1e-10; each term
    is d_ap + m against d_ap + m - 1e-10, a difference float32 distances cannot show."""
    x, _ = batch(1)
    y = np.zeros(len(x), dtype=int)
    for spec in LOOP.specs:
        oracle = reference.evaluate(x, y, spec).loss
        assert LOOP.run(x, y, spec, "float32", "cpu").loss == pytest.approx(oracle, rel=2e-7)


QUATERION = ADAPTERS["seed003.quaterion-formula(hard)"]


def test_quaterion_cosine_half_factor_cancels():
    """Quaterion measures (1 - cos) / 2; loss and gradient equal the oracle's on 1 - cos to rounding."""
    pytest.importorskip("torch")
    x, y = batch(2)
    spec = next(s for s in QUATERION.specs if s.distance == "cosine")
    out = QUATERION.run(x, y, spec, "float64", "cpu")
    oracle = reference.evaluate(x, y, spec)
    assert out.loss == pytest.approx(oracle.loss, abs=1e-12) and oracle.loss > 0
    assert np.allclose(out.grad, oracle.grad, atol=1e-12)


def test_quaterion_is_scale_invariant_and_nan_at_exact_collapse():
    pytest.importorskip("torch")
    x, y = batch(3)
    spec = next(s for s in QUATERION.specs if s.distance == "euclidean")
    assert QUATERION.run(10 * x, y, spec, "float64", "cpu").loss == pytest.approx(
        QUATERION.run(x, y, spec, "float64", "cpu").loss, rel=1e-12
    )
    collapsed = QUATERION.run(np.ones_like(x), y, spec, "float64", "cpu")
    # 0 / 0: the loss is NaN like the oracle's, but relu's backward passes 0 for NaN: a finite, zero gradient
    assert np.isnan(collapsed.loss) and not collapsed.grad.any()
    assert np.isnan(reference.evaluate(np.ones_like(x), y, spec).loss)


def test_quaterion_one_class_batch_reads_the_cdist_diagonal():
    """Confirms quaterion-fallback-reads-the-cdist-diagonal: one class, float32, more than 25 rows; cdist's Gram
    expansion leaves the diagonal non-zero and the fallback hn = rowmax + d(a, a) moves the loss off m: by 1e-4 on a
    class of 40 (within the Gram allowance the adapter declares), by 1.9e-4 on the hunt's 26 rows with copies."""
    torch = pytest.importorskip("torch")
    spec = next(s for s in QUATERION.specs if s.distance == "euclidean")
    x = np.random.default_rng(0).normal(size=(40, 8)) + 3.0
    y = np.zeros(40, dtype=int)
    assert reference.evaluate(x, y, spec).loss == pytest.approx(spec.margin, abs=1e-15)
    error = spec.margin - QUATERION.run(x, y, spec, "float32", "cpu").loss
    assert 1e-5 + 1.3e-6 * spec.margin < error < 1e-3  # torch.testing's float32 tolerance, exceeded
    x32 = torch.tensor(x, dtype=torch.float32)
    assert torch.cdist(x32, x32).diagonal().max() > 1e-3
    assert QUATERION.run(x[:25], y[:25], spec, "float32", "cpu").loss == spec.margin  # direct kernel: exact
    from contract.batch import found

    copies, one_class = found("one_class_of_26_with_copies")
    assert spec.margin - QUATERION.run(copies, one_class, spec, "float32", "cpu").loss > 1.5e-4


def test_quaterion_one_class_batch_far_from_the_origin_reads_the_cdist_diagonal_in_float64():
    """Confirms quaterion-fallback-reads-the-cdist-diagonal in float64: the dev run's one class of 34 rows with
    coordinates of 8e4; the oracle's loss is the margin, Quaterion's formula gives 2.2e-5 less, past the 4e-6 the
    conformance cell allows it (torch.testing's float64 table scaled to the batch, and the Gram allowance)."""
    pytest.importorskip("torch")
    spec = next(s for s in QUATERION.specs if s.distance == "euclidean")
    from contract.batch import found

    x, y = found("one_class_of_34_far_from_the_origin")
    assert len(set(y)) == 1 and np.abs(x).max() > 8e4
    assert reference.evaluate(x, y, spec).loss == pytest.approx(spec.margin, abs=1e-15)
    assert spec.margin - QUATERION.run(x, y, spec, "float64", "cpu").loss > 1e-5


def test_quaterion_diagonal_breaks_translation_invariance_in_float64():
    """Confirms quaterion-fallback-reads-the-cdist-diagonal-off-the-origin: the one-class batch of 40 rows,
    spread 0.03 around (3, ..., 3) (the regression batch on the registry entry), shifted by 8 per
    coordinate, moves the float64 loss by more than float64's tolerance (1e-7)."""
    pytest.importorskip("torch")
    spec = next(s for s in QUATERION.specs if s.distance == "euclidean")
    x = np.random.default_rng(0).normal(size=(40, 8)) * 0.03 + 3.0
    y = np.zeros(40, dtype=int)
    near, far = (QUATERION.run(x + shift, y, spec, "float64", "cpu").loss for shift in (0.0, 8.0))
    assert abs(far - near) > 1e-7


def test_quaterion_cosine_diagonal_over_a_tiny_mean():
    """Two nearly parallel rows of one class: the cosine diagonal's rounding over a tiny mean(hn) moves the float64
    loss by 1e-4, which the conformance cells accept as the conditioning of the scaled loss under the Gram
    precision the adapter declares (no registry entry)."""
    pytest.importorskip("torch")
    spec = next(s for s in QUATERION.specs if s.distance == "cosine")
    x, y = np.array([[3.0, 1.0], [3.0, 1.0 + 2e-6]]), np.array([0, 0])
    assert reference.evaluate(x, y, spec).loss == spec.margin
    assert abs(QUATERION.run(x, y, spec, "float64", "cpu").loss - spec.margin) > 1e-4


def test_quaterion_masked_minimum_tie_follows_the_row_order():
    """Confirms masked-minimum-tie-follows-the-row-order: on the entry's batch (no tie in the spec's sense: the oracle's
    gradient is one and the same), permuting the rows moves the gradient of Quaterion's formula by 0.19."""
    pytest.importorskip("torch")
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.96, 0.28], [0.0, -1.0]])
    y = np.array([0, 0, 0, 1])
    order = np.array([1, 2, 3, 0])
    spec = QUATERION.specs[0]
    before = QUATERION.run(x, y, spec, "float64", "cpu").grad
    after = QUATERION.run(x[order], y[order], spec, "float64", "cpu").grad[np.argsort(order)]
    oracle = reference.evaluate(x, y, spec).grad
    assert np.abs(after - before).max() > 0.1
    assert np.allclose(reference.evaluate(x[order], y[order], spec).grad[np.argsort(order)], oracle)
