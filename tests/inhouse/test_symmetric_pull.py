"""The row readers' gradient through a small square distance matrix (inhouse/distance_rows.py `Gram`,
SYMMETRIC_BYTES): kept whole and pulled in one product over K + K^T, the same gradient as the two products per chunk
of a larger matrix."""
from __future__ import annotations

import numpy as np
import pytest

from reference import Spec

torch = pytest.importorskip("torch", reason="inhouse.torch needs torch")
from inhouse import distance_rows  # noqa: E402
from inhouse.torch_losses import metric_loss  # noqa: E402
from tests.inhouse.products import MultiplyAdds  # noqa: E402

SQUARE = [Spec(mining="lifted", margin=1.0), Spec(mining="lifted", distance="cosine", margin=0.2),
          Spec(mining="lifted", distance="squared_euclidean", margin=0.2),
          Spec(mining="supcon", distance="cosine", temperature=0.1),  # the cross-entropies' short road
          Spec(mining="supcon", distance="euclidean", temperature=2.0),
          Spec(mining="ntxent", distance="cosine", temperature=0.07), Spec(mining="multi_similarity", distance="cosine"),
          Spec(mining="circle", distance="cosine", margin=0.4)]


def _batch(n: int = 96, d: int = 8, zero_row: bool = False):
    """Eight classes; rows 1e-7 from a copy of another (near pairs, measured from their differences), a zero row
    (cosine's share) where asked."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(n, d))
    x[1::9] = x[::9][: len(x[1::9])] + 1e-7 * rng.normal(size=(len(x[1::9]), d))
    if zero_row:
        x[5] = 0.0
    return x, np.arange(n) % 8


def _loss_and_gradient(x, labels, spec, dtype=torch.float64):
    points = torch.tensor(x, dtype=dtype, requires_grad=True)
    loss = metric_loss(points, torch.tensor(labels), spec)
    loss.backward()
    return loss.item(), points.grad.double().numpy()


@pytest.mark.parametrize("zero_row", [False, True], ids=["", "zero row"])
@pytest.mark.parametrize("spec", SQUARE, ids=str)
def test_the_whole_matrix_and_its_chunks_give_one_gradient(spec, zero_row, monkeypatch):
    """float64, chunks of 10 rows: pulled whole (the default at N = 96) and pulled per chunk (SYMMETRIC_BYTES 0)
    agree to float64's rounding, near pairs and cosine's zero point included."""
    x, labels = _batch(zero_row=zero_row)
    monkeypatch.setattr(distance_rows, "ROW_ELEMENTS", 10 * len(x))
    whole = _loss_and_gradient(x, labels, spec)
    monkeypatch.setattr(distance_rows, "SYMMETRIC_BYTES", 0)
    chunked = _loss_and_gradient(x, labels, spec)
    assert whole[0] == pytest.approx(chunked[0], rel=1e-12)
    np.testing.assert_allclose(whole[1], chunked[1], rtol=1e-10, atol=1e-12 * np.abs(chunked[1]).max())


@pytest.mark.parametrize("spec", SQUARE, ids=str)
def test_a_small_square_matrix_takes_one_product_for_its_gradient(spec, monkeypatch):
    """At N = 96 and D = 8, in chunks of 10 rows: N x N x D multiply-adds to measure the distances and as many again
    for the gradient (lifted measures them once more without it: its first read), where two products per chunk
    took twice that."""
    x, labels = _batch(zero_row=False)  # its near pairs are measured again from differences: no product
    monkeypatch.setattr(distance_rows, "ROW_ELEMENTS", 10 * len(x))
    n, d = x.shape
    with MultiplyAdds() as products:
        _loss_and_gradient(x, labels, spec, torch.float32)
    reads = 2 if spec.mining == "lifted" else 1
    assert products.count == (reads + 1) * n * n * d
