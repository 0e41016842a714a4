"""inhouse.torch_losses (inhouse.torch) against the oracle on structured batches, and its O(N^2) memory claim.

The generic conformance harness runs every claimed spec; these are focused checks of the cases the
implementation handles specially: ties and duplicates (zero distances), singletons and one class (the
fallbacks), far-from-origin batches (the re-centred Gram expansion), chunk boundaries.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import reference
from adapters.inhouse import ALL_SPECS
from reference import Spec

torch = pytest.importorskip("torch", reason="inhouse.torch needs torch")
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_leaves  # noqa: E402

from contract.batch import in_layout  # noqa: E402
from inhouse import chunks, distance_rows, distances  # noqa: E402
from inhouse.torch_losses import metric_loss  # noqa: E402

SPECS = [
    Spec(mining="batch_hard", margin=1.0),
    Spec(mining="batch_hard", distance="cosine", scaled=True, anchors="valid", reduction="mean_nonzero"),
    Spec(mining="batch_hard", distance="squared_euclidean", soft=True, reduction="sum"),
    Spec(mining="semi_hard", margin=1.0, empty="nan"),
    Spec(mining="semi_hard", distance="cosine", normalize=True, soft=True, reduction="mean_nonzero"),
    Spec(mining="batch_all", normalize=True, margin=0.2, reduction="mean_nonzero"),
    Spec(mining="batch_all", distance="squared_euclidean", soft=True, empty="nan"),
    Spec(mining="semi_hard_all", margin=0.5, reduction="sum"),
    Spec(mining="semi_hard_all", distance="cosine", margin=0.3, reduction="mean_nonzero", empty="nan"),
    Spec(mining="triplets", soft=True),
    Spec(mining="contrastive", margin=2.0, reduction="mean_nonzero"),
    Spec(mining="lifted", margin=1.0),
    Spec(mining="lifted", distance="cosine", normalize=True, margin=0.2, reduction="mean_nonzero", empty="nan"),
    Spec(mining="lifted", distance="squared_euclidean", margin=0.2, reduction="sum"),
    Spec(mining="npairs"),
    Spec(mining="npairs", distance="cosine", reduction="sum"),
    Spec(mining="npairs_multilabel", distance="squared_euclidean", normalize=True),
    Spec(mining="multi_similarity", distance="cosine"),  # PML's defaults
    Spec(mining="multi_similarity", distance="cosine", normalize=True, alpha=1.0, beta=10.0, base=0.0,
         reduction="mean_nonzero"),
    Spec(mining="multi_similarity_mined", distance="cosine", margin=0.1, beta=40.0),  # TF-Similarity's
    Spec(mining="multi_similarity_mined", distance="cosine", margin=0.3, reduction="sum", empty="nan"),
    Spec(mining="circle", distance="cosine", margin=0.4, reduction="mean_nonzero"),  # PML's
    Spec(mining="circle", distance="cosine", normalize=True, margin=0.25, gamma=256.0, reduction="sum"),
    Spec(mining="multiple_negatives", distance="cosine", temperature=0.05),  # sentence-transformers' MNRL
    Spec(mining="multiple_negatives", distance="euclidean", temperature=0.5, symmetric=True, reduction="sum"),
    Spec(mining="ntxent", distance="cosine", temperature=0.07),  # PML's
    Spec(mining="ntxent", distance="squared_euclidean", normalize=True, reduction="mean_nonzero", empty="nan"),
    Spec(mining="simclr", distance="cosine", temperature=0.5),
    Spec(mining="supcon", distance="cosine", temperature=0.1, reduction="mean_nonzero"),  # PML's
    Spec(mining="supcon", distance="euclidean", temperature=2.0, reduction="sum"),
]


def _batch(kind: str, rng: np.random.Generator, spec: Spec | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A batch of `kind`, in the layout of `spec`'s loss (contract/batch.py `in_layout`: pairs, class sets)."""
    x, y = _labelled_batch(kind, rng)
    return (x, y) if spec is None else in_layout(spec, x, y)


def _labelled_batch(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if kind == "clustered":  # tight classes: easy, semi-hard and hard triplets, refined near pairs
        centres = rng.normal(size=(4, 6)) * 3
        return np.repeat(centres, 5, axis=0) + 0.4 * rng.normal(size=(20, 6)), np.repeat(np.arange(4), 5)
    if kind == "duplicates":  # exact zero distances within and across classes
        return np.repeat(rng.normal(size=(6, 4)), 2, axis=0), rng.integers(0, 3, 12)
    if kind == "singletons":
        return rng.normal(size=(7, 3)), np.r_[np.arange(5), 0, 1]
    if kind == "one_class":
        return rng.normal(size=(6, 3)), np.zeros(6, dtype=int)
    if kind == "far":  # 1e6 from the origin: the Gram expansion without re-centring loses every digit
        return rng.normal(size=(16, 5)) + 1e6, rng.integers(0, 3, 16)
    return rng.normal(size=(15, 5)), rng.integers(0, 4, 15)


def _seed(*parts) -> int:
    """A seed per test case that, unlike hash(), is the same in every process."""
    return zlib.crc32(repr(parts).encode())


BATCHES = ("random", "clustered", "duplicates", "singletons", "one_class", "far")


def _run(x: np.ndarray, y: np.ndarray, spec: Spec, dtype: torch.dtype, triplets=None):
    embeddings = torch.tensor(x, dtype=torch.float64).to(dtype).requires_grad_()
    loss = metric_loss(embeddings, torch.as_tensor(y), spec, triplets)
    loss.backward()
    return loss.item(), embeddings.grad.to(torch.float64).numpy()


def _triplets(spec: Spec, n: int, rng: np.random.Generator):
    return rng.integers(0, n, size=(9, 3)) if spec.mining == "triplets" else None


def _assert_matches(oracle, loss, grad, rtol, atol, grad_rtol, grad_atol):
    if np.isnan(oracle.loss):
        assert np.isnan(loss) and np.isnan(grad).all()
        return
    np.testing.assert_allclose(loss, oracle.loss, rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad, oracle.grad, rtol=grad_rtol, atol=grad_atol)


@pytest.mark.parametrize("kind", BATCHES)
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_float64_matches_the_oracle(spec, kind):
    rng = np.random.default_rng(_seed(spec, kind))
    x, y = _batch(kind, rng, spec)
    triplets = _triplets(spec, len(x), rng)
    oracle = reference.evaluate(x, y, spec, triplets)
    loss, grad = _run(x, y, spec, torch.float64, triplets)
    far = kind == "far"  # re-centring rounds each coordinate by ~1e6 * 2^-52
    if far and spec.distance == "cosine":
        pytest.skip("cosine is not translation invariant: 1e6 from the origin every 1 - cos is ~1e-12, "
                    "ill-conditioned in the oracle's formula as in ours")
    if oracle.gap < 1e-9:  # a tie: the value is defined, the gradient may take either side
        np.testing.assert_allclose(loss, oracle.loss, rtol=1e-9, atol=1e-9)
        return
    _assert_matches(oracle, loss, grad, 1e-9 if far else 1e-10, 1e-9 if far else 1e-10, 1e-7 if far else 1e-9, 1e-9)


@pytest.mark.parametrize("kind", ("random", "clustered", "far"))
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_float32_within_torch_testing_tolerances(spec, kind):
    """Against the oracle on the float32-rounded input, with torch.testing's float32 tolerances for the loss
    and JAX's float32 gradient tolerance (2e-3)."""
    rng = np.random.default_rng(_seed(spec, kind, 32))
    x, y = _batch(kind, rng, spec)
    x = (x - x.mean(axis=0)) if kind == "far" else x  # float32 cannot hold 1e6 + noise: test the noise
    rounded = x.astype(np.float32).astype(np.float64)
    triplets = _triplets(spec, len(x), rng)
    oracle = reference.evaluate(rounded, y, spec, triplets)
    if oracle.gap < 1e-3:
        pytest.skip(f"ambiguous for float32: decision gap {oracle.gap:.2g}")
    loss, grad = _run(rounded, y, spec, torch.float32, triplets)
    _assert_matches(oracle, loss, grad, 1.3e-6, 1e-5, 2e-3, 2e-3)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.mining != "triplets"], ids=str)
def test_chunked_rows_give_the_same_loss(spec, monkeypatch):
    rng = np.random.default_rng(7)
    x, y = _batch("clustered", rng, spec)
    whole = _run(x, y, spec, torch.float64)
    monkeypatch.setattr(chunks, "CHUNK_ELEMENTS", 7)  # one or two anchors per chunk
    monkeypatch.setattr(distance_rows, "ROW_ELEMENTS", 7)  # the softmax and similarity families' rows, likewise
    chunked = _run(x, y, spec, torch.float64)
    np.testing.assert_allclose(chunked[0], whole[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(chunked[1], whole[1], rtol=1e-10, atol=1e-12)


def test_far_from_origin_keeps_float32_distances():
    """Re-centring: at an offset of 1e3 a float32 Gram expansion without it is off by ~0.1 in d."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 16)).astype(np.float32) + np.float32(1e3)
    y = np.arange(64) % 8
    spec = Spec(mining="batch_hard")
    oracle = reference.evaluate(x.astype(np.float64), y, spec)
    loss, _ = _run(x.astype(np.float64), y, spec, torch.float32)
    assert abs(loss - oracle.loss) < 1e-4


def test_a_lattice_keeps_exact_distances_and_ties():
    """Re-centring by the mean rounded to a coarse power of two keeps integer points integer, so the Gram expansion
    is exact on them and equal distances stay equal; the mean itself (here 6/17) rounds them apart. Regression
    (the conformance suite's 1-D lattice): semi_hard and semi_hard_all took d_an == d_ap for d_an > d_ap."""
    x = np.array([[-3.0], [2], [3], [3], [1], [3], [3], [-3], [-3], [3], [-3], [3], [2], [3], [-1], [-2], [0]])
    y = np.array([4, 3, 1, 2, 0, 0, 0, 1, 5, 4, 6, 3, 4, 6, 5, 4, 3])
    for mining in ("semi_hard", "semi_hard_all"):
        spec = Spec(mining=mining, distance="squared_euclidean", margin=1.0, reduction="sum")
        for dtype in (torch.float32, torch.float64):
            assert _run(x, y, spec, dtype)[0] == reference.evaluate(x, y, spec).loss
    points = torch.tensor(np.random.default_rng(2).integers(-3, 4, size=(50, 3)) + 1000.0, dtype=torch.float32)
    exact = ((points[:, None] - points[None]) ** 2).sum(dim=2)
    assert torch.equal(distances.pairwise_distances(points, "squared_euclidean"), exact)


def test_cosine_resolves_nearly_parallel_rows():
    """Rows a few float32 ulps apart: 1 - u.v cancels every bit, |u - v|^2 / 2 keeps the 2e-14 distances and gives
    identical rows exactly 0. Regression: semi_hard_all found no d_an > d_ap here and returned the empty batch's
    NaN, where the oracle gives 0.2."""
    x = np.array([[-0.512426495552063, 0.12530727684497833], [-0.5124263167381287, 0.1253071129322052],
                  [-0.5124263167381287, 0.1253071129322052], [-0.5124261975288391, 0.12530723214149475],
                  [-0.512426495552063, 0.12530727684497833]])
    y = np.array([1, 0, 1, 1, 1])
    spec = Spec(mining="semi_hard_all", distance="cosine", margin=0.2, reduction="mean_nonzero", empty="nan")
    loss, _ = _run(x, y, spec, torch.float32)
    assert loss == pytest.approx(reference.evaluate(x, y, spec).loss, rel=1e-6)
    dist = distances.pairwise_distances(distances.unit_rows(torch.tensor(x, dtype=torch.float32)), "cosine")
    assert dist[0, 4] == 0 and 1e-14 < dist[0, 1] < 4e-14


def test_cosine_distance_to_a_zero_row_is_one():
    """cos(0, v) = 0 (a zero row stays zero when normalised, as in the oracle), so d = 1, also between two zero rows."""
    points = distances.unit_rows(torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]], dtype=torch.float64))
    expected = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(distances.pairwise_distances(points, "cosine"), expected)
    pairs = torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2])
    torch.testing.assert_close(distances.pair_distances(points, *pairs, "cosine"), torch.ones(3, dtype=torch.float64))


def test_unit_rows_backward_is_the_derivative_and_zero_on_a_zero_row():
    """unit_rows' written-out backward (g - u (u.g)) / |x| against finite differences, and 0 on a zero row."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64) * torch.logspace(-3, 3, 6, dtype=torch.float64)[:, None]
    assert torch.autograd.gradcheck(distances.unit_rows, (x.requires_grad_(True),))
    zero = torch.zeros(2, 3, dtype=torch.float64)
    zero[1] = 2.0
    zero.requires_grad_(True)
    (distances.unit_rows(zero) * torch.arange(6.0, dtype=torch.float64).view(2, 3)).sum().backward()
    assert torch.equal(zero.grad[0], torch.zeros(3, dtype=torch.float64))


def test_unit_rows_plain_division_gives_the_guarded_bits():
    """A batch without a zero row takes a plain division, forward and backward: the same bits as the guarded road a
    zero row sends the batch down."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(7, 5, generator=g) * torch.logspace(-20, 20, 7)[:, None]
    grad = torch.randn(8, 5, generator=g)
    plain, guarded = x.clone().requires_grad_(True), torch.cat([x, torch.zeros(1, 5)]).requires_grad_(True)
    units, guarded_units = distances.unit_rows(plain), distances.unit_rows(guarded)
    (units * grad[:7]).sum().backward()
    (guarded_units * grad).sum().backward()
    assert torch.equal(units, guarded_units[:7]) and torch.equal(plain.grad, guarded.grad[:7])


def test_one_ulp_apart_keeps_its_distance_after_recentring():
    """Selected pairs are measured from the rows as given: the centred rows would round a 1-ulp difference away.
    Regression: scaled batch_hard divided by a mean hardest-negative distance of exactly 0 (NaN)."""
    x = np.zeros((4, 3), dtype=np.float32) + np.float32(0.2867026925086975)
    x[1, 0] = np.nextafter(x[1, 0], np.float32(1))
    x[2:] += np.float32(5.0)
    y = np.array([0, 1, 0, 1])
    spec = Spec(mining="batch_hard", distance="squared_euclidean", scaled=True, reduction="sum")
    loss, _ = _run(x.astype(np.float64), y, spec, torch.float32)
    assert loss == pytest.approx(reference.evaluate(x.astype(np.float64), y, spec).loss, rel=1e-5)


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any torch operation produced while active (autograd's included), and the largest
    in fresh memory (sharing none of the operation's inputs': not written in place, into `out`, or a view)."""

    def __init__(self):
        super().__init__()
        self.largest = self.largest_fresh = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        given = {leaf.untyped_storage().data_ptr() for leaf in tree_leaves((args, kwargs))
                 if isinstance(leaf, torch.Tensor)}
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor):
                self.largest = max(self.largest, value.numel())
                if value.untyped_storage().data_ptr() not in given:
                    self.largest_fresh = max(self.largest_fresh, value.numel())
        return out


MEMORY_SPECS = [Spec(mining=m) for m in ("batch_all", "batch_hard", "semi_hard", "semi_hard_all", "contrastive", "lifted")]
MEMORY_SPECS += [Spec(mining=m, soft=True) for m in ("batch_all", "batch_hard", "semi_hard")]


@pytest.mark.parametrize("spec", MEMORY_SPECS, ids=str)
def test_no_intermediate_beyond_n_squared(spec, monkeypatch):
    """Structural O(N^2): at N = 256 an N^3 intermediate would hold 16.8M elements; none exceeds N^2 + N
    once chunks are limited to a quarter of N^2 (the default bound is a constant, 4M elements)."""
    n = 256
    monkeypatch.setattr(chunks, "CHUNK_ELEMENTS", n * n // 4)
    x = torch.randn(n, 16, dtype=torch.float64, requires_grad=True)
    y = torch.arange(n) % 32
    with _LargestTensor() as probe:
        metric_loss(x, y, spec).backward()
    assert probe.largest <= n * n + n


ROW_READ = [("lifted", "euclidean"), ("lifted", "squared_euclidean"), ("lifted", "cosine"), ("supcon", "euclidean"),
            ("ntxent", "cosine"), ("multi_similarity", "cosine"), ("circle", "cosine")]


@pytest.mark.parametrize("mining, distance", ROW_READ)
def test_row_read_losses_hold_no_n_by_n_temporary(mining, distance, monkeypatch):
    """The losses read row by row (inhouse/distance_rows.py) hold a chunk of rows at a time: at N = 256, with chunks
    of 16 rows, no tensor reaches a quarter of N x N (the whole matrix, its mask or its autograd would) once the
    matrix is above the size kept whole for the gradient (SYMMETRIC_BYTES: a constant, 16 MiB)."""
    n = 256
    monkeypatch.setattr(distance_rows, "ROW_ELEMENTS", 16 * n)
    monkeypatch.setattr(distance_rows, "SYMMETRIC_BYTES", 0)
    x = torch.randn(n, 8, dtype=torch.float64, requires_grad=True)
    with _LargestTensor() as probe:
        metric_loss(x, torch.arange(n) % 32, Spec(mining=mining, distance=distance)).backward()
    assert probe.largest < n * n // 4


@pytest.mark.parametrize("mining, distance", ROW_READ + [("npairs", "cosine"), ("multiple_negatives", "cosine")])
def test_row_read_losses_take_no_fresh_chunk_on_a_second_call(mining, distance, monkeypatch):
    """On the CPU a row-read loss computes each chunk in scratch memory kept from call to call (inhouse/scratch.py):
    fresh memory costs page faults on every call (circle's weights, 8 MB a call at N = 1024, a sixth of its time).
    With chunks of 32 x N entries, the second call makes no tensor that large in fresh memory. lifted's pairs are
    measured from differences in pieces of PAIR_ELEMENTS, small enough for the allocator to reuse: here 16 x N.
    D = 8 puts near pairs (inhouse/distances.py REFINE_BELOW) in every chunk."""
    n = 256
    monkeypatch.setattr(distance_rows, "ROW_ELEMENTS", 32 * n)
    monkeypatch.setattr(distances, "PAIR_ELEMENTS", 16 * n)
    x = torch.randn(n, 8, dtype=torch.float64, requires_grad=True)
    spec = Spec(mining=mining, distance=distance)
    labels = torch.arange(n // 2).repeat(2) if reference.LOSSES[mining].layout == "pairs" else torch.arange(n) % 32
    metric_loss(x, labels, spec).backward()  # the first call sizes the scratch buffers
    with _LargestTensor() as probe:
        metric_loss(x, labels, spec).backward()
    assert probe.largest_fresh < 32 * n


# docs/upstream/next-losses.md, section 1.1: unit rows, two classes; every J = 2.049277, J^2 / 2 = 2.0997672
FIXTURE_A = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]]), np.array([0, 0, 1, 1])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lifted_on_fixture_a(dtype):
    x, y = FIXTURE_A
    spec = Spec(mining="lifted", margin=1.0)
    oracle = reference.evaluate(x, y, spec)
    loss, grad = _run(x, y, spec, dtype)
    assert oracle.loss == pytest.approx(2.0997672, abs=1e-7)
    rtol, atol = (1e-12, 1e-12) if dtype == torch.float64 else (1.3e-6, 2e-6)
    np.testing.assert_allclose(loss, oracle.loss, rtol=rtol)
    np.testing.assert_allclose(grad, oracle.grad, rtol=0, atol=atol)


@pytest.mark.parametrize("reduction", ["mean", "mean_nonzero", "sum"])
def test_lifted_one_class_is_zero_with_a_finite_zero_gradient(reduction):
    """No negative anywhere: every row's log-sum-exp is over nothing, J = -inf and the term 0; the masked rows must
    not leak 0 * inf = NaN into the gradient, and the pairs still count as units (not the empty batch's NaN)."""
    x, _ = FIXTURE_A
    spec = Spec(mining="lifted", margin=1.0, reduction=reduction, empty="nan")
    for dtype in (torch.float64, torch.float32, torch.float16):
        loss, grad = _run(x, np.zeros(4, dtype=int), spec, dtype)
        assert loss == 0.0 and np.isfinite(grad).all() and not grad.any(), dtype
    assert reference.evaluate(x, np.zeros(4, dtype=int), spec).loss == 0.0


def test_lifted_without_a_positive_pair_is_empty():
    x, _ = FIXTURE_A
    for empty in ("nan", "zero"):
        spec = Spec(mining="lifted", margin=1.0, empty=empty)
        loss, grad = _run(x, np.arange(4), spec, torch.float32)
        if empty == "nan":
            assert np.isnan(loss) and np.isnan(grad).all()
        else:
            assert loss == 0.0 and not grad.any()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_lifted_in_half_precision_is_finite(dtype):
    """Computed in float32 and cast back: the loss and gradient are finite and within the dtype's rounding."""
    x, y = FIXTURE_A
    spec = Spec(mining="lifted", margin=1.0)
    loss, grad = _run(x, y, spec, dtype)
    oracle = reference.evaluate(x, y, spec)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    tolerance = 1e-3 if dtype == torch.float16 else 1.6e-2
    assert loss == pytest.approx(oracle.loss, rel=tolerance)
    np.testing.assert_allclose(grad, oracle.grad, rtol=0, atol=10 * tolerance)


@pytest.mark.parametrize("near", [False, True], ids=["negatives far", "negatives near"])
def test_lifted_shifts_each_row_so_that_no_exponential_underflows(near):
    """Negatives 200 away: every e^(m - d) underflows float32 (e^-199) and the unshifted log is log 0 = -inf, a NaN
    gradient; each row shifted by its largest exponent keeps J = -199 + log 4 + 0.5 (term 0). Negatives near:
    every J above 0 (the terms' squares carry the gradient)."""
    x = np.array([[0.0, 0.0], [0.5, 0.0], [2.0 if near else 200.0, 0.0], [2.0 if near else 200.0, 0.7]])
    y = np.array([0, 0, 1, 1])
    spec = Spec(mining="lifted", margin=1.0, reduction="sum")
    oracle = reference.evaluate(x, y, spec)
    assert (oracle.loss > 1.0) if near else (oracle.loss == 0.0)
    for dtype in (torch.float32, torch.float64):
        loss, grad = _run(x, y, spec, dtype)
        np.testing.assert_allclose(loss, oracle.loss, rtol=2e-6)
        np.testing.assert_allclose(grad, oracle.grad, rtol=0, atol=1e-5)


def test_semi_hard_runs_where_n_cubed_would_not_fit():
    """N = 2048: TF-Addons' [N^2, N] tile would be 8.6e9 float32 elements (32 GiB)."""
    x = torch.randn(2048, 32, requires_grad=True)
    loss = metric_loss(x, torch.arange(2048) % 256, Spec(mining="semi_hard", empty="nan"))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_a_sample_of_the_full_product_matches_the_oracle():
    """The conformance harness runs the covering set; here a fixed sample of the rest (THOROUGH runs all)."""
    rng = np.random.default_rng(11)
    batch = _batch("clustered", rng)
    for index in rng.choice(len(ALL_SPECS), size=60, replace=False):
        spec = ALL_SPECS[index]
        x, y = in_layout(spec, *batch)
        triplets = _triplets(spec, len(x), rng)
        loss, _ = _run(x, y, spec, torch.float64, triplets)
        np.testing.assert_allclose(loss, reference.evaluate(x, y, spec, triplets).loss, rtol=1e-9, atol=1e-10)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_cuda_matches_the_oracle(spec):
    rng = np.random.default_rng(5)
    x, y = _batch("clustered", rng, spec)
    triplets = _triplets(spec, len(x), rng)
    oracle = reference.evaluate(x, y, spec, triplets)
    embeddings = torch.tensor(x, device="cuda", requires_grad=True)
    loss = metric_loss(embeddings, torch.as_tensor(y, device="cuda"), spec, triplets)
    loss.backward()
    _assert_matches(oracle, loss.item(), embeddings.grad.cpu().numpy(), 1e-10, 1e-10, 1e-9, 1e-9)


def test_the_in_house_claims_are_the_losses_it_implements():
    """adapters/inhouse.py names, without importing torch, the losses inhouse/strategies.py implements."""
    from adapters.inhouse import IMPLEMENTED
    from inhouse.strategies import STRATEGIES

    assert sorted(IMPLEMENTED) == sorted(STRATEGIES)


@pytest.mark.parametrize("labels, pattern", [
    ([0, 1, 0], r"N must be even, got N = 3"),
    ([0, 1, 1, 1], r"reads row 2 as the positive of anchor 0: both need the pair's label, got 0 and 1"),
])
def test_n_pairs_refuses_a_batch_that_is_not_pairs(labels, pattern):
    with pytest.raises(ValueError, match=pattern):
        metric_loss(torch.zeros(len(labels), 2), labels, Spec(mining="npairs"))


def test_multilabel_n_pairs_takes_a_class_matrix_as_its_bit_masks():
    x = torch.tensor(np.random.default_rng(2).normal(size=(6, 3)))
    matrix = np.tile([[1, 0], [0, 1], [1, 1]], (2, 1))
    spec = Spec(mining="npairs_multilabel")
    from_matrix = metric_loss(x, matrix, spec).item()
    assert from_matrix == pytest.approx(metric_loss(x, [1, 2, 3] * 2, spec).item(), abs=0)
    assert from_matrix == pytest.approx(reference.evaluate(x.numpy(), matrix, spec).loss, rel=1e-12)
