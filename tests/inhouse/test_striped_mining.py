"""The fast paths of inhouse/ give the matrix path's bits: batch_hard's striped mining (inhouse/hardest_stripes.py),
the tiled symmetrisation and the hashed copy check (inhouse/distances.py). The conformance cells reach N = 64, one
stripe; these batches have several."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the in-house losses are torch")

from inhouse import distances, hardest_stripes  # noqa: E402
from inhouse.mining import hardest_partners  # noqa: E402


def _batch(kind: str, n: int, d: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    labels = torch.randint(0, max(1, n // 8), (n,), generator=g)
    if kind == "lattice":
        x = torch.randint(-3, 4, (n, d), generator=g).float()
    elif kind == "far":
        x = x + 1e3
    elif kind == "clustered":
        x = 10 * torch.randn(4, d, generator=g)[torch.arange(n) % 4] + 0.3 * x
    elif kind == "one class":
        labels = torch.zeros(n, dtype=torch.long)
    elif kind == "singletons":
        labels = torch.arange(n)
    return x, labels


@pytest.mark.parametrize("n, d", [(300, 64), (700, 3), (1100, 128), (2100, 48)])
@pytest.mark.parametrize("kind", ["normal", "lattice", "far", "clustered", "one class", "singletons"])
def test_striped_batch_hard_mining_chooses_what_the_matrix_path_chooses(kind, n, d):
    x, labels = _batch(kind, n, d, seed=n + d)
    expected = hardest_partners(distances.pairwise_distances(x, "squared_euclidean"), labels)
    found = hardest_stripes.striped_hardest_partners(x, labels, "squared_euclidean")
    if found is None:  # it declined (in few dimensions many pairs are near: refined), and the matrix path runs
        assert d < 8 or kind in ("lattice", "clustered"), "declined a batch it should take"
        return
    assert len(hardest_stripes.stripes(n)) > 1
    for name, a, b in zip(("positive", "negative", "has positive", "has negative"), expected, found):
        assert torch.equal(a, b), name


def test_striped_mining_declines_where_it_cannot_give_the_same_bits():
    x, labels = _batch("normal", 300, 8, seed=0)
    assert hardest_stripes.striped_hardest_partners(x.double(), labels, "squared_euclidean") is None
    assert hardest_stripes.striped_hardest_partners(x, labels, "cosine") is None
    copies = torch.cat([x[:150], x[:150]])
    assert hardest_stripes.striped_hardest_partners(copies, labels, "squared_euclidean") is None


def test_first_minimum_is_argmin_with_ties_to_the_first_column():
    g = torch.Generator().manual_seed(3)
    d2 = torch.randint(0, 5, (40, 201), generator=g).float()  # many ties, a partial last block
    d2[7] = float("inf")
    assert torch.equal(hardest_stripes._first_minimum(d2), d2.argmin(dim=1))


@pytest.mark.parametrize("n", [5, 128, 300])
def test_tiled_symmetrisation_is_minimum_and_sum_with_the_transpose(n):
    g = torch.Generator().manual_seed(n)
    m = torch.randn(n, n, generator=g)
    assert torch.equal(distances.symmetrised_(m.clone()), torch.minimum(m, m.T))
    assert torch.equal(distances.symmetrised_(m.clone(), torch.add), m + m.T)


def test_has_copies_sees_equal_rows_and_negative_zero():
    x = torch.randn(50, 4)
    assert not distances.has_copies(x)
    assert distances.has_copies(torch.cat([x, x[3:4]]))
    signed = torch.zeros(2, 4)
    signed[1, 2] = -0.0
    assert distances.has_copies(signed)
