"""The fast paths of contrastive (inhouse/near_pairs.py) and of batch_all / semi_hard_all (inhouse/windows.py) give the
matrix and sorting paths' answers: the screen keeps every pair below its bound, contrastive's loss, gradient and
counts match the matrix path's, and the bins count every window exactly as sorting does (ties included). The
batches exercise their fallbacks: near-duplicates, large offsets, integer lattices (exact ties), tight clusters."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the in-house losses are torch")

from inhouse import near_pairs, strategies, windows  # noqa: E402
from inhouse.distances import pair_distances, pairwise_distances, unit_rows  # noqa: E402
from inhouse.mining import ClassSlots  # noqa: E402
from inhouse.torch_losses import metric_loss  # noqa: E402
from reference import Spec  # noqa: E402

KINDS = ["normal", "lattice", "far", "clustered", "duplicates", "tiny"]


def _batch(kind: str, n: int, d: int, seed: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    labels = torch.randint(0, max(1, n // 8), (n,), generator=g)
    if kind == "lattice":
        x = torch.randint(-2, 3, (n, d), generator=g).double()
    elif kind == "far":
        x = x + 1e3
    elif kind == "clustered":
        x = 10 * torch.randn(6, d, generator=g, dtype=torch.float64)[torch.arange(n) % 6] + 0.05 * x
    elif kind == "duplicates":
        x = x[torch.arange(n) % (n // 3)] + 1e-6 * (torch.arange(n) % 2)[:, None]
    elif kind == "tiny":
        x = 1e-15 * x
    return x.to(dtype), labels


def _all_pairs(n: int):
    first, second = torch.triu_indices(n, n, offset=1)
    return first, second


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_the_screen_keeps_every_pair_below_the_bound(kind, dtype):
    x, _ = _batch(kind, 300, 24, seed=1, dtype=dtype)
    first, second = _all_pairs(len(x))
    exact = pair_distances(x, first, second, "squared_euclidean")
    positive = exact[exact > 0].sort().values
    # bounds at pairs' own distances and one float above them: the pairs right at the bound are the hard ones
    chosen = positive[torch.linspace(0, len(positive) - 1, 7).long()]
    for bound in [*chosen.tolist(), *torch.nextafter(chosen, torch.tensor(float("inf"), dtype=dtype)).tolist()]:
        kept = near_pairs.pairs_within(x, bound)
        assert kept is not None
        assert bool((kept[0] < kept[1]).all())
        screened = set(zip(kept[0].tolist(), kept[1].tolist()))
        below = exact < bound
        needed = set(zip(first[below].tolist(), second[below].tolist()))
        assert needed <= screened, f"bound {bound}: {len(needed - screened)} pairs below it were dropped"
        assert len(screened) <= len(needed) + len(x) * len(x) // 4 or kind in ("lattice", "duplicates", "tiny")


def test_the_screen_declines_norms_it_cannot_bound():
    x, _ = _batch("normal", 100, 8, seed=2)
    assert near_pairs.pairs_within(x * 1e19, 1.0) is None  # |z|^2 overflows float32
    x[3, 2] = float("nan")
    assert near_pairs.pairs_within(x, 1.0) is None
    empty = near_pairs.pairs_within(x[:1], 1.0)
    assert empty is not None and len(empty[0]) == 0


def _contrastive_both_ways(x, labels, spec, monkeypatch):
    """(loss, gradient) by the screened path and by the matrix path."""
    found = []
    for screened in (True, False):
        if not screened:
            monkeypatch.setattr(strategies, "pairs_within", lambda points, bound: None)
        leaf = x.clone().requires_grad_(True)
        loss = metric_loss(leaf, labels, spec)
        loss.backward()
        found.append((loss.detach(), leaf.grad))
    return found


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("distance, margin", [("euclidean", 1.0), ("euclidean", 3.0), ("squared_euclidean", 2.0),
                                              ("cosine", 0.3)])
def test_contrastive_matches_the_matrix_path(kind, dtype, distance, margin, monkeypatch):
    x, labels = _batch(kind, 150, 12, seed=3, dtype=dtype)
    spec = Spec(mining="contrastive", distance=distance, margin=margin)
    (screened, screened_grad), (matrix, matrix_grad) = _contrastive_both_ways(x, labels, spec, monkeypatch)
    exact = dtype == torch.float64
    torch.testing.assert_close(screened, matrix, rtol=1e-12 if exact else None, atol=0.0 if exact else None)
    scale = matrix_grad.abs().max().item() or 1.0
    tolerance = {torch.float64: 1e-9, torch.float32: 1e-4}.get(dtype, 1e-2)
    torch.testing.assert_close(screened_grad, matrix_grad, rtol=tolerance, atol=tolerance * scale)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("margin", [1.0, 2.0, 0.0])
def test_contrastive_counts_as_the_matrix_path_does(kind, margin):
    x, labels = _batch(kind, 150, 12, seed=4)
    spec = Spec(mining="contrastive", distance="euclidean", margin=margin)
    _, units, active = strategies.contrastive(x, labels, spec)
    _, matrix_units, matrix_active = strategies._contrastive_on_the_matrix(x, labels, spec)
    assert int(units) == int(matrix_units)
    assert int(active) == int(matrix_active)  # lattice distances of exactly the margin: no term, on both paths


def test_contrastive_takes_the_matrix_path_for_few_classes():
    x, _ = _batch("normal", 120, 8, seed=8)
    labels = torch.arange(120) % 2  # N^2 / 4 positive pairs: more than the matrix costs
    spec = Spec(mining="contrastive", distance="euclidean", margin=1.0)
    found, matrix = strategies.contrastive(x, labels, spec), strategies._contrastive_on_the_matrix(x, labels, spec)
    assert all(torch.equal(a, b) for a, b in zip(found, matrix))


@pytest.mark.parametrize("classes, scale", [(1, 3e17), (4, 6e17)])
def test_contrastive_sums_beyond_float32_where_its_mean_is_within(classes, scale):
    """The thorough hunt's find: 36 float32 rows of norm about 1e18, one class; their 630 terms d^2 sum past float32's
    largest number while their mean is finite. Both paths (one class takes the matrix, four classes the screened
    pairs) keep the sum in float64 and give a finite loss and gradient."""
    x, _ = _batch("normal", 36, 8, seed=9)
    labels = torch.arange(36) % classes
    x = (x * scale).float().requires_grad_(True)
    same = torch.triu(labels[:, None] == labels[None, :], diagonal=1)
    assert (torch.cdist(x.double(), x.double()) ** 2)[same].sum() > torch.finfo(torch.float32).max
    loss = metric_loss(x, labels, Spec(mining="contrastive", distance="euclidean", margin=0.2))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def _window_counts(x, labels, margin, semi, count):
    d = pairwise_distances(x, "euclidean").detach()
    slots = ClassSlots(labels)
    negative = labels[:, None] != labels[None, :]
    d_ap = d.gather(1, slots.members)
    return count(d, negative, d_ap if semi else None, d_ap + margin, slots.positive), slots.positive


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", [*KINDS, "one class", "equidistant"])
@pytest.mark.parametrize("semi", [False, True])
def test_bins_count_every_window_as_sorting_does(kind, dtype, semi):
    if kind == "one class":  # rows without a negative
        x, labels = _batch("normal", 200, 6, seed=5, dtype=dtype)
        labels[:60] = -1
    elif kind == "equidistant":  # a row whose negatives are all at one distance: one bin, every negative exact
        labels = torch.arange(8).repeat_interleave(3)
        x = torch.eye(24, dtype=dtype)
    else:
        x, labels = _batch(kind, 200, 6, seed=5, dtype=dtype)
    for margin in (0.0, 0.2, 1.0, 3.0):
        (by_bins, positive) = _window_counts(x, labels, margin, semi, windows._by_bins)
        (by_sorting, _) = _window_counts(x, labels, margin, semi, windows._by_sorting)
        assert torch.equal(by_bins[0], by_sorting[0]), "cover"
        assert torch.equal(by_bins[1] * positive, by_sorting[1] * positive), "counts"
        if semi:
            assert torch.equal(by_bins[2] * positive, by_sorting[2] * positive), "units"


def test_bins_decline_distances_that_are_not_finite():
    x, labels = _batch("normal", 50, 4, seed=6)
    d = pairwise_distances(x, "euclidean").detach()
    d[3, 7] = float("nan")
    slots = ClassSlots(labels)
    d_ap = d.gather(1, slots.members)
    assert windows._by_bins(d, labels[:, None] != labels[None, :], None, d_ap + 1.0, slots.positive) is None


@pytest.mark.parametrize("mining", ["batch_all", "semi_hard_all"])
def test_windowed_losses_by_bins_match_sorting(mining, monkeypatch):
    x, labels = _batch("normal", 300, 16, seed=7)
    spec = Spec(mining=mining, distance="euclidean", margin=0.2)
    points = unit_rows(x).requires_grad_(True)
    found = []
    for binned in (True, False):
        if not binned:
            monkeypatch.setattr(windows, "LARGEST_BINNED_CLASS", 0)
        points.grad = None
        loss = metric_loss(points, labels, spec)
        loss.backward()
        found.append((loss.detach(), points.grad.clone()))
    assert torch.equal(found[0][0], found[1][0])
    assert torch.equal(found[0][1], found[1][1])


def test_the_screen_keeps_copies_at_the_centre_under_a_bound_below_the_dtype_range():
    x = torch.cat([torch.zeros(20, 3), torch.ones(10, 3), -torch.ones(10, 3)])  # the centre is 0: z = 0, |z|^2 = 0
    kept = near_pairs.pairs_within(x, 1e-50)  # 0 in float32
    assert kept is not None and (0, 1) in set(zip(*(t.tolist() for t in kept)))
