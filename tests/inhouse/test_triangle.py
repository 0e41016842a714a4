"""The square matrix read by its upper triangle (inhouse/triangle.py), on the softmax family's short road
(inhouse/cross_entropy_rows.py): forced at small N, in strips of a few rows (the last one shorter), so that a row's
entries left of its strip, its targets among them, lie in the mirrors of the strips above it."""
from __future__ import annotations

import numpy as np
import pytest

import reference
from reference import Spec

torch = pytest.importorskip("torch", reason="the in-house losses are torch")

from inhouse import linear_logits, triangle  # noqa: E402
from tests.inhouse.products import MultiplyAdds  # noqa: E402
from tests.inhouse.test_cross_entropy_rows import KINDS, _batch, _run, _short_roads_taken  # noqa: E402

SPECS = [Spec(mining="supcon", distance="cosine", temperature=0.1, reduction="mean_nonzero"),
         Spec(mining="supcon", distance="squared_euclidean", temperature=1e-4)]


def _by_triangle(monkeypatch, strip_rows: int) -> None:
    monkeypatch.setattr(triangle, "TRIANGLE_FROM", 0)
    monkeypatch.setattr(triangle, "STRIP_ROWS", strip_rows)


def _triangles_read(monkeypatch) -> list:
    read, test = [], triangle.read_by_triangle

    def counting(points):
        read.append(test(points))
        return read[-1]

    monkeypatch.setattr(linear_logits, "read_by_triangle", counting)
    return read


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind != "zero_rows"])  # a zero point: the general road
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_float64_matches_the_oracle(spec, kind, monkeypatch):
    """Near-duplicates across strips, far offsets, logits of 1e4 and of 1e303, a converged batch (softmax - targets at
    target entries that lie in mirrors): as close to the oracle as the rows read whole."""
    x, y = _batch(kind, spec)
    if spec.distance == "cosine" and kind in ("far", "huge"):
        pytest.skip("cosine: see tests/inhouse/test_cross_entropy_rows.py")
    _by_triangle(monkeypatch, 5)
    taken, read = _short_roads_taken(monkeypatch), _triangles_read(monkeypatch)
    oracle = reference.evaluate(x, y, spec)
    loss, grad = _run(x, y, spec, torch.float64)
    assert taken == [True] and read == [True]
    far = kind == "far"
    np.testing.assert_allclose(loss, oracle.loss, rtol=1e-9 if far else 1e-11, atol=1e-12)
    scale = np.abs(oracle.grad).max()
    np.testing.assert_allclose(grad, oracle.grad, rtol=1e-7 if far else 1e-8, atol=1e-9 * scale)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("kind", ["normal", "near_duplicates", "converged"])
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_the_triangle_and_the_rows_agree(spec, kind, dtype, monkeypatch):
    """float64 to its rounding (totals summed in another order); float32 within a few roundings of the largest term
    (both round the same float32 Gram expansion, summed in another order)."""
    x, y = _batch(kind, spec, seed=3)
    rows = _run(x, y, spec, dtype)
    _by_triangle(monkeypatch, 7)
    read = _triangles_read(monkeypatch)
    by_triangle = _run(x, y, spec, dtype)
    assert read == [True]
    if dtype == torch.float64:
        # a converged loss (1e-5) is log(total) less the targets' logits, each about 1: its rounding is a few eps
        np.testing.assert_allclose(by_triangle[0], rows[0], rtol=1e-13, atol=1e-15)
        atol = 1e-13 * np.abs(rows[1]).max() + _target_rounding(x, spec)
        np.testing.assert_allclose(by_triangle[1], rows[1], rtol=1e-10, atol=atol)
    else:
        np.testing.assert_allclose(by_triangle[0], rows[0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(by_triangle[1], rows[1], rtol=1e-4, atol=1e-5 * np.abs(rows[1]).max())


def test_each_row_shifts_by_the_largest_logit_it_reads(monkeypatch):
    """Logits of 1e211 (points of 1e104, t = 0.05): one unit in the last place of d2 moves a logit by 1e195, so a
    row whose largest logit were taken from the transposed entry of its diagonal block (the other row's rounding of
    the same distance) would read e = 0 for all of its entries, its loss -inf. 20 batches (3 of them did so)."""
    spec = Spec(mining="supcon", distance="squared_euclidean", temperature=0.05, reduction="sum")
    _by_triangle(monkeypatch, 4)
    for seed in range(20):
        x, y = 1e104 * np.random.default_rng(seed).normal(size=(17, 5)), np.zeros(17, dtype=int)
        loss, _ = _run(x, y, spec, torch.float64)
        assert loss == pytest.approx(reference.evaluate(x, y, spec).loss, rel=1e-9), seed


def _target_rounding(x: np.ndarray, spec: Spec) -> float:
    """What a few roundings of the target entries' e - Y total (terms about 1, summed in another order) move a
    gradient entry by: x dL/dd2 = c / N (c = 1 / t, a half for cosine's unit rows) x the widest pair's difference.
    A converged batch's gradient entries fall to 1e-11 and below it (squared euclidean, t = 1e-4: 6e-11 the median,
    the bound 1.7e-13)."""
    unit = 0.5 if spec.distance == "cosine" else 1.0
    rows = x / np.linalg.norm(x, axis=1, keepdims=True) if spec.distance == "cosine" else x
    spread = np.abs(rows[:, None] - rows[None]).max()
    return 16 * np.finfo(np.float64).eps * unit / spec.temperature * spread / len(x)


def test_each_pair_is_measured_once_and_pulled_once(monkeypatch):
    """N = 96, D = 8, strips of 8 rows: (N^2 + N x 8) / 2 pairs (the diagonal blocks whole) measured in one product
    and pulled in two, where the rows read whole take N^2 for each."""
    rng = np.random.default_rng(5)
    n, d, strip_rows = 96, 8, 8
    x, y = rng.normal(size=(n, d)), np.arange(n) % 8
    _by_triangle(monkeypatch, strip_rows)
    with MultiplyAdds() as products:
        _run(x, y, SPECS[0], torch.float32)
    assert products.count == 3 * (n * n + n * strip_rows) // 2 * d


def test_where_a_matrix_is_read_by_its_triangle():
    """From N = 2048 (TRIANGLE_FROM) to the memory both buffers may take (TRIANGLE_BYTES: N = 8192 in float32)."""
    sizes = {n: triangle.read_by_triangle(torch.empty(n, 1)) for n in (1024, 2047, 2048, 8192, 8193)}
    assert sizes == {1024: False, 2047: False, 2048: True, 8192: True, 8193: False}
    assert not triangle.read_by_triangle(torch.empty(8192, 1, dtype=torch.float64))
