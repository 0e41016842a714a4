"""inhouse.triton_kernels (inhouse.triton) on the batches where a Gram expansion cannot decide: near-duplicates in a
wide spread, exact ties, magnitudes up to what the dtype holds. Without a GPU the kernels run under Triton's
interpreter on CPU tensors; with one, on it. The generic conformance harness runs every claimed spec; these pin
the kernels' own mechanisms (refinement from differences, the direct pass for undecided anchors, float64 sums).
"""
from __future__ import annotations

import numpy as np
import pytest

import reference
from adapters.inhouse import _interpreted, _kernels
from reference import Spec

torch = pytest.importorskip("torch", reason="the Triton kernels need torch")
_INTERPRETED = _interpreted()
if isinstance(_INTERPRETED, str):  # not installed, or triton imported before the interpreter could be switched on
    pytest.skip(_INTERPRETED, allow_module_level=True)
triton_kernels = _kernels()  # without a GPU: with Triton's interpreter switched on first

from inhouse import distances, mining, triton_hardest, triton_tiles  # noqa: E402

DEVICE = "cpu" if _INTERPRETED else "cuda"


def _run(x: np.ndarray, y: np.ndarray, spec: Spec, dtype: torch.dtype):
    embeddings = torch.tensor(x, dtype=torch.float64).to(dtype).to(DEVICE).requires_grad_()
    loss = triton_kernels.metric_loss(embeddings, torch.as_tensor(y, device=DEVICE), spec)
    loss.backward()
    return loss.item(), embeddings.grad.to(torch.float64).cpu().numpy()


def _rounded(x: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    return torch.tensor(x, dtype=torch.float64).to(dtype).to(torch.float64).numpy()


def _exact_partners(x: np.ndarray, y: np.ndarray, distance: str):
    """batch_hard's selection on the exact distances of x (float64 from differences; the rows' values are exact)."""
    points = torch.tensor(x, dtype=torch.float64)
    if distance == "cosine":
        points = distances.unit_rows(points)
    diff = points[:, None, :] - points[None, :, :]
    d2 = (diff * diff).sum(dim=2)
    mined = 0.5 * d2 if distance == "cosine" else d2
    return [t.numpy() for t in mining.hardest_partners(mined, torch.as_tensor(y))[:2]]


def _near_duplicate_clusters(rng, spread: float, offset: float, dtype: torch.dtype, d: int = 3):
    """Three clusters `spread` apart; in each, six points `offset` apart of two classes of its own: every decision
    of batch_hard (farthest positive, nearest negative) is taken among near-duplicates, and every term of batch_all
    that is not 0 reads near-duplicates only."""
    centres = rng.normal(size=(3, d)) * spread
    x = np.repeat(centres, 6, axis=0) + offset * rng.normal(size=(18, d))
    return _rounded(x, dtype), 2 * np.repeat(np.arange(3), 6) + rng.integers(0, 2, size=18)


@pytest.mark.parametrize(
    "case, spread, offset, dtype",
    [("float32, wide spread", 1e4, 1.0, torch.float32), ("float16 clusters, in float32", 3e3, 1.5, torch.float16)],
)
def test_hardest_partners_decide_among_near_duplicates(case, spread, offset, dtype):
    """Issue 1: the Gram expansion of a tile errs by ~(D + 2) eps (|z_i|^2 + |z_j|^2), far more than the
    near-duplicates' distances apart. Regression: the kernel took the wrong farthest positive and nearest negative,
    so the pairs measured from differences belonged to other partners (loss off by 2% on the suite's batch)."""
    x, y = _near_duplicate_clusters(np.random.default_rng(4), spread, offset, dtype)
    points = torch.tensor(x, dtype=torch.float32, device=DEVICE)
    positive_at, negative_at, _, _ = triton_hardest.hardest_partners(points, torch.as_tensor(y, device=DEVICE),
                                                                     "euclidean")
    expected_positive, expected_negative = _exact_partners(x, y, "euclidean")
    np.testing.assert_array_equal(positive_at.cpu().numpy(), expected_positive)
    np.testing.assert_array_equal(negative_at.cpu().numpy(), expected_negative)
    spec = Spec(mining="batch_hard", margin=1.0)
    oracle = reference.evaluate(x, y, spec)
    loss, grad = _run(x, y, spec, dtype)
    rtol = 1e-3 if dtype == torch.float16 else 1e-5
    np.testing.assert_allclose(loss, oracle.loss, rtol=rtol)
    np.testing.assert_allclose(grad, oracle.grad, rtol=1e-2, atol=1e-2 * np.abs(oracle.grad).max())


def test_the_suites_wide_spread_batch():
    """Issue 1 as the suite found it (float32, D = 1): loss 1.0124 where the oracle gives 1.0326."""
    x = np.array([[-4165.6591796875], [-391.88800048828125], [-391.88800048828125], [-391.88800048828125],
                  [-4165.6591796875], [-4165.7138671875], [-4165.572265625]])
    y = np.array([813266, 649413, 503625, 606635, 175266, 175266, 175266])
    spec = Spec(mining="batch_hard", margin=1.0)
    loss, _ = _run(x, y, spec, torch.float32)
    assert loss == pytest.approx(reference.evaluate(x, y, spec).loss, rel=1e-6)


def test_ties_go_to_the_first_column_as_in_the_oracle():
    """Issue 4: on a lattice every distance is exact and ties are decided by the spec's rule (the first column),
    which must not depend on where a candidate sits among the tiles. Anchors whose decision the Gram pass cannot
    take are measured again from differences; on such a batch that is most of them."""
    rng = np.random.default_rng(8)
    x = rng.integers(-2, 3, size=(150, 2)).astype(np.float64) + 1000.0  # far from the origin: ties everywhere
    y = rng.integers(0, 5, size=150)
    points = torch.tensor(x, dtype=torch.float32, device=DEVICE)
    labels = torch.as_tensor(y, device=DEVICE)
    positive_at, negative_at, _, _ = triton_hardest.hardest_partners(points, labels, "euclidean")
    expected_positive, expected_negative = _exact_partners(x, y, "euclidean")
    np.testing.assert_array_equal(positive_at.cpu().numpy(), expected_positive)
    np.testing.assert_array_equal(negative_at.cpu().numpy(), expected_negative)
    assert len(triton_hardest._mine(points, labels, "euclidean")[2]) > 0  # decided by the direct pass


def test_permuting_a_batch_of_near_duplicates_permutes_the_gradient():
    """Issue 4 as the suite found it (float64, D = 1, 5.9e11 from the origin, near-duplicates 0.0002 apart): the
    gradient of the permuted batch was not the permuted gradient (0 where the oracle gives -0.25)."""
    x = np.array([[588041575549.6185], [588041575549.0856], [1561951641777.9573], [588041575549.6185],
                  [588041575549.0854]])
    y = np.array([2, 2, 0, 0, 1])
    spec = Spec(mining="batch_hard", margin=0.2, anchors="valid", reduction="mean_nonzero")
    for order in (np.arange(5), np.array([4, 2, 0, 3, 1]), np.array([3, 1, 4, 0, 2])):
        oracle = reference.evaluate(x[order], y[order], spec)
        loss, grad = _run(x[order], y[order], spec, torch.float64)
        np.testing.assert_allclose(loss, oracle.loss, rtol=1e-9)
        np.testing.assert_allclose(grad, oracle.grad, rtol=1e-9, atol=1e-12)


def test_scaled_batch_hard_of_nearly_parallel_unit_rows():
    """Issue 5 as the suite found it (scaled, squared euclidean of unit rows, float64, 1e12 from the origin): the
    unit rows of each cluster are ~1e-13 apart, their Gram distance 2 - 2 u.v cancels every bit, and scaled divides
    by mean(hn): loss 8.2e25 where the oracle gives 3.58e26."""
    x = np.array([
        [-644857810075.5775, -354325001977.9943, -51596221363.597],
        [-644857810075.5938, -354325001977.9601, -51596221363.592476],
        [-1022666118812.2375, -118595276281.60027, -240860089315.81964],
        [-644857810075.595, -354325001977.98193, -51596221363.5859],
        [881090798545.6217, 351413172173.31964, 469779839850.5235],
        [-644857810075.5775, -354325001977.9943, -51596221363.597],
        [-644857810075.622, -354325001977.77966, -51596221363.62791],
        [-1022666118812.2375, -118595276281.60027, -240860089315.81964],
        [881090798545.6217, 351413172173.31964, 469779839850.5235],
        [-644857810075.622, -354325001977.77966, -51596221363.62791],
        [-1022666118812.2645, -118595276281.80753, -240860089315.93726],
        [-644857810075.622, -354325001977.77966, -51596221363.62791],
        [-644857810075.5968, -354325001977.95386, -51596221363.60049],
        [-1022666118812.2646, -118595276281.80759, -240860089315.93713],
        [-644857810075.622, -354325001977.77966, -51596221363.62791],
    ])
    y = np.array([48684, 180291, 48684, 180291, 48684, 180291, 168571, 180291, 168571, 180291, 48684, 48684, 180291,
                  48684, 48684])
    spec = Spec(mining="batch_hard", distance="squared_euclidean", normalize=True, scaled=True, margin=0.2,
                anchors="valid", reduction="mean_nonzero", empty="nan")
    loss, _ = _run(x, y, spec, torch.float64)
    assert loss == pytest.approx(reference.evaluate(x, y, spec).loss, rel=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_batch_all_sum_beyond_float32(dtype):
    """Issue 2: coordinates of 1e18 in float32 give squared distances of ~1e37; their sum over N^2 K terms overflows
    float32 where the mean does not. Regression: the loss was inf where the oracle gives ~1e37."""
    rng = np.random.default_rng(5)
    x = _rounded(rng.normal(size=(16, 13)) * 1e18, dtype)
    y = np.arange(16) % 3
    spec = Spec(mining="batch_all", distance="squared_euclidean", soft=True, empty="nan")
    oracle = reference.evaluate(x, y, spec)
    loss, grad = _run(x, y, spec, dtype)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert loss == pytest.approx(oracle.loss, rel=1e-5 if dtype == torch.float32 else 1e-2)
    np.testing.assert_allclose(grad, oracle.grad, rtol=1e-2, atol=1e-3 * np.abs(oracle.grad).max())


@pytest.mark.parametrize("d", [1, 3])
def test_soft_batch_all_slope_at_an_exact_tie_far_from_the_origin(d):
    """Issue 3: rows 1 and 3 are identical but of different classes, so for anchor 2 the negative 1 is exactly as far
    as the positive 3 and softplus' slope is exactly 1/2. At 1e104 a Gram d_an is off by ~1e192 and gave slope 0 or 1
    (a gradient entry 0 where the oracle gives -2.4e104, or twice it). Now d_an is measured from differences like the
    d_ap table, bitwise (d = 3: the coordinates are summed in the same order)."""
    rng = np.random.default_rng(1)
    base = rng.normal(size=(3, d)) * 1e104
    x = base[[0, 1, 2, 1, 0]]
    y = np.array([3, 2, 1, 1, 0])
    spec = Spec(mining="batch_all", distance="squared_euclidean", soft=True, margin=0.0, empty="nan")
    oracle = reference.evaluate(x, y, spec)
    loss, grad = _run(x, y, spec, torch.float64)
    assert loss == pytest.approx(oracle.loss, rel=1e-12)
    np.testing.assert_allclose(grad, oracle.grad, rtol=1e-9, atol=1e-9 * np.abs(oracle.grad).max())


@pytest.mark.parametrize("dtype, spread", [(torch.float32, 1e4), (torch.float64, 1e12)], ids=["float32", "float64"])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean"])
def test_batch_all_near_duplicate_negatives_in_a_wide_spread(distance, soft, dtype, spread):
    """batch_all reads every d_an of the tile: a near-duplicate negative's Gram distance is noise in a wide batch, and
    its gradient through the matmul of the centred points cancels as badly. Both are taken from differences."""
    x, y = _near_duplicate_clusters(np.random.default_rng(6), spread, 1.0, dtype)
    spec = Spec(mining="batch_all", distance=distance, soft=soft, margin=1.0)
    oracle = reference.evaluate(x, y, spec)
    loss, grad = _run(x, y, spec, dtype)
    assert loss == pytest.approx(oracle.loss, rel=1e-5 if dtype == torch.float32 else 1e-12)
    np.testing.assert_allclose(grad, oracle.grad, rtol=1e-3, atol=1e-4 * np.abs(oracle.grad).max())


@pytest.mark.parametrize("tiles", ["gpu", "interpreter"])
@pytest.mark.parametrize("distance, soft", [("euclidean", False), ("squared_euclidean", True)])
def test_batch_all_spans_several_tiles(distance, soft, tiles, monkeypatch):
    """The kernels' sums carry across row, column and slot tiles with either tile set (the conformance cells run
    the interpreter's, where one tile holds a batch): 48 rows in classes of 12, exact duplicates across classes."""
    rows, cols, slots = triton_kernels.GPU_TILES
    n, width = 48, 12
    assert n > rows and n > cols and width > slots  # a batch that spans every kind of GPU tile
    monkeypatch.setattr(triton_kernels, "BATCH_ALL_TILES", getattr(triton_kernels, f"{tiles.upper()}_TILES"))
    rng = np.random.default_rng(12)
    x = rng.normal(size=(n, 5))
    x[-4:] = x[:4]
    y = np.repeat(np.arange(n // width), width)
    x = _rounded(x, torch.float32)
    spec = Spec(mining="batch_all", distance=distance, soft=soft, margin=1.0)
    oracle = reference.evaluate(x, y, spec)
    loss, grad = _run(x, y, spec, torch.float32)
    assert loss == pytest.approx(oracle.loss, rel=1e-5)
    np.testing.assert_allclose(grad, oracle.grad, rtol=1e-3, atol=1e-4 * np.abs(oracle.grad).max())


def test_a_typical_batch_needs_no_direct_pass():
    """The cost stays the Gram pass's where the expansion can decide: on random float32 rows no (or hardly any)
    anchor is measured again, and the selection is inhouse.torch's."""
    rng = np.random.default_rng(9)
    n = 256
    points = torch.tensor(rng.normal(size=(n, 16)), dtype=torch.float32, device=DEVICE)
    labels = torch.as_tensor(rng.integers(0, 16, size=n), device=DEVICE)
    positive_at, negative_at, redo = triton_hardest._mine(points, labels, "euclidean")
    assert len(redo) <= n // 50
    expected = mining.hardest_partners(distances.pairwise_distances(points, "squared_euclidean"), labels)
    torch.testing.assert_close(positive_at.long(), expected[0])
    torch.testing.assert_close(negative_at.long(), expected[1])


def test_the_d_ap_table_is_measured_from_differences():
    """`_pair_kernel` (the d_ap table) measures each pair from its difference, as a refined tile does: symmetric, and
    accurate relative to the distance itself (a Gram entry of rows 1e3 from the origin would not be)."""
    rng = np.random.default_rng(3)
    points = torch.tensor(rng.normal(size=(40, 7)) + 1e3, dtype=torch.float32, device=DEVICE)
    _, sq = triton_tiles._kernel_points(points, "euclidean")
    a = torch.arange(40, device=DEVICE).repeat_interleave(40)
    b = torch.arange(40, device=DEVICE).repeat(40)
    listed = triton_tiles._direct_pairs(points, sq, a, b, "squared_euclidean").reshape(40, 40)
    assert torch.equal(listed, listed.T)
    exact = ((points[:, None, :].double() - points[None, :, :].double()) ** 2).sum(dim=2)
    torch.testing.assert_close(listed.double(), exact, rtol=1e-6, atol=0)
