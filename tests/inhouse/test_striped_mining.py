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


@pytest.mark.parametrize("most_rows", [64, 192, hardest_stripes.MOST_ROWS])
@pytest.mark.parametrize("n, d", [(1100, 64), (700, 3), (1300, 128), (2100, 48)])
@pytest.mark.parametrize("kind", ["normal", "lattice", "far", "clustered", "one class", "singletons"])
def test_striped_batch_hard_mining_chooses_what_the_matrix_path_chooses(kind, n, d, most_rows, monkeypatch):
    monkeypatch.setattr(hardest_stripes, "MOST_ROWS", most_rows)
    x, labels = _batch(kind, n, d, seed=n + d)
    expected = hardest_partners(distances.pairwise_distances(x, "squared_euclidean"), labels)
    found = hardest_stripes.striped_hardest_partners(x, labels, "squared_euclidean")
    if found is None:  # it declined (in few dimensions many pairs are near: refined), and the matrix path runs
        assert d < 8 or kind in ("lattice", "clustered"), "declined a batch it should take"
        return
    assert len(hardest_stripes.stripes(n, hardest_stripes.STRIPE_ENTRIES, most_rows)) > 1
    for name, a, b in zip(("positive", "negative", "has positive", "has negative"), expected, found):
        _assert_same_choice(x, a, b, name)


def _assert_same_choice(x, expected, found, name: str):
    """The same columns; where a BLAS rounds d2_ij and d2_ji apart (none measured does), a row's choice may differ
    from the symmetrised matrix's only between two columns within one rounding of each other."""
    if torch.equal(expected, found) or expected.dtype == torch.bool:
        assert torch.equal(expected, found), name
        return
    rows = torch.arange(len(x))
    differ = expected != found
    ours = distances.pair_distances(x, rows[differ], found[differ], "squared_euclidean")
    theirs = distances.pair_distances(x, rows[differ], expected[differ], "squared_euclidean")
    rounding = 4 * (x.shape[1] + 4) * torch.finfo(x.dtype).eps
    assert torch.allclose(ours, theirs, rtol=rounding, atol=0), f"{name}: {int(differ.sum())} rows chose otherwise"


def test_striped_mining_declines_where_it_cannot_give_the_same_bits():
    x, labels = _batch("normal", 300, 8, seed=0)
    assert hardest_stripes.striped_hardest_partners(x.double(), labels, "squared_euclidean") is None
    assert hardest_stripes.striped_hardest_partners(x, labels, "cosine") is None
    copies = torch.cat([x[:150], x[:150]])
    assert hardest_stripes.striped_hardest_partners(copies, labels, "squared_euclidean") is None


def test_a_tie_for_the_nearest_negative_goes_to_the_first_column_across_blocks():
    """Row 0 at the origin, every other row at distance L from it (the points +-L e_k): each is a nearest negative
    of row 0, and the first of another class is column 70, in the second block of BLOCK columns."""
    width, length = 128, 4.0
    axes = length * torch.eye(width)
    x = torch.cat([torch.zeros(1, width), axes, -axes])
    labels = torch.arange(len(x)) // 3 + 100
    labels[:70] = 0
    _, negative_at, _, has_negative = hardest_stripes.striped_hardest_partners(x, labels, "squared_euclidean")
    assert hardest_stripes.BLOCK < 70 < 2 * hardest_stripes.BLOCK
    assert bool(has_negative[0]) and int(negative_at[0]) == 70
    expected = hardest_partners(distances.pairwise_distances(x, "squared_euclidean"), labels)
    assert torch.equal(expected[1], negative_at)


def test_a_tie_for_the_nearest_negative_goes_to_the_first_column_read_down_an_earlier_stripe(monkeypatch):
    """The origin as the last row, in the last stripe, every other row at distance L from it: the first of another
    class, column 70, lies in the second stripe of 64 rows, seventh row of its group; later ties, in the origin's own
    stripe among them, lose to it."""
    monkeypatch.setattr(hardest_stripes, "MOST_ROWS", 64)
    width, length = 128, 4.0
    axes = length * torch.eye(width)
    x = torch.cat([axes, -axes, torch.zeros(1, width)])
    labels = torch.arange(len(x)) // 3 + 100
    labels[:70] = labels[-1] = 0
    edges = hardest_stripes.stripes(len(x), hardest_stripes.STRIPE_ENTRIES, 64)
    assert [stop for _, stop in edges] == [64, 128, 192, len(x)]
    _, negative_at, _, has_negative = hardest_stripes.striped_hardest_partners(x, labels, "squared_euclidean")
    assert bool(has_negative[-1]) and int(negative_at[-1]) == 70
    expected = hardest_partners(distances.pairwise_distances(x, "squared_euclidean"), labels)
    assert torch.equal(expected[1], negative_at)


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
