"""multi_similarity on the short road (inhouse/linear_logits.py, inhouse/similarity.py): its negatives' exponentials
shifted by the least d2 a row reads once its positives are left out, its positives' gradient added to the matrix once
scaled (`Gram.add_pairs`), whether the rows are read whole or by the upper triangle (forced at small N, strips of a
few rows): against the oracle in float64, against the general road in float32."""
from __future__ import annotations

import numpy as np
import pytest

import reference
from reference import Spec

torch = pytest.importorskip("torch", reason="the in-house losses are torch")

from inhouse import distance_rows, linear_logits, similarity  # noqa: E402
from tests.inhouse.test_cross_entropy_rows import _run  # noqa: E402
from tests.inhouse.test_triangle import _by_triangle  # noqa: E402

SPECS = [Spec(mining="multi_similarity", distance="cosine"),  # PML's defaults
         Spec(mining="multi_similarity", distance="cosine", alpha=1.0, beta=10.0, base=0.0, reduction="sum")]
KINDS = ["normal", "near_duplicates", "clustered", "zero_rows"]
ROADS = ["rows", "triangle"]


def _batch(kind: str, seed: int = 0):
    """24 points of 6 classes: at random, copies 1e-6 apart (near pairs, positives among them), each point near its
    class's centre (every row's least d2 a positive's), or with two zero points (the general road)."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(24, 5)), np.arange(24) % 6
    if kind == "near_duplicates":
        x = x[np.arange(24) % 7] + 1e-6 * rng.normal(size=x.shape)
    elif kind == "clustered":
        x = rng.normal(size=(6, 5))[y] + 0.05 * x
    elif kind == "zero_rows":
        x[[2, 9]] = 0.0
    return x, y


def _short_roads_taken(monkeypatch) -> list:
    taken, test = [], similarity._on_the_short_road

    def counting(*args):
        taken.append(test(*args))
        return taken[-1]

    monkeypatch.setattr(similarity, "_on_the_short_road", counting)
    return taken


def _on_the_road(road: str, monkeypatch) -> None:
    if road == "triangle":
        _by_triangle(monkeypatch, 5)


@pytest.mark.parametrize("road", ROADS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_float64_matches_the_oracle(spec, kind, road, monkeypatch):
    x, y = _batch(kind)
    _on_the_road(road, monkeypatch)
    taken = _short_roads_taken(monkeypatch)
    oracle = reference.evaluate(x, y, spec)
    loss, grad = _run(x, y, spec, torch.float64)
    assert taken == [kind != "zero_rows"]  # a zero point's cosine share is not linear in d2: the general road
    np.testing.assert_allclose(loss, oracle.loss, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(grad, oracle.grad, rtol=1e-8, atol=1e-9 * np.abs(oracle.grad).max())


@pytest.mark.parametrize("road", ROADS)
@pytest.mark.parametrize("kind", KINDS[:3])
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_float32_agrees_with_the_general_road(spec, kind, road, monkeypatch):
    """Both round the same float32 Gram expansion: within a few roundings of the largest term."""
    x, y = _batch(kind, seed=1)
    _on_the_road(road, monkeypatch)
    short = _run(x, y, spec, torch.float32)
    monkeypatch.setattr(similarity, "_on_the_short_road", lambda *args: False)
    general = _run(x, y, spec, torch.float32)
    np.testing.assert_allclose(short[0], general[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(short[1], general[1], rtol=1e-4, atol=1e-5 * np.abs(general[1]).max())


@pytest.mark.parametrize("road", ROADS)
def test_a_row_shifts_by_its_largest_negative_logit_where_a_positive_is_nearer(road, monkeypatch):
    """Each point 1e-3 from its class's centre, beta = 2000: the nearest row is a positive (cosine d2 about 1e-6), the
    negatives' d2 about 1 or more. Shifted by the positive's logit, every negative's e would be e^-1000 = 0 and the
    negatives' term log(1 + 0) = 0 where the oracle's is about log 2 per row."""
    spec = Spec(mining="multi_similarity", distance="cosine", beta=2000.0)
    rng = np.random.default_rng(4)
    y = np.arange(24) % 6
    x = 3.0 * np.eye(6, 5, dtype=float)[y] + np.eye(6, 5, k=-1)[y] + 1e-3 * rng.normal(size=(24, 5))
    _on_the_road(road, monkeypatch)
    taken = _short_roads_taken(monkeypatch)
    oracle = reference.evaluate(x, y, spec)
    loss, grad = _run(x, y, spec, torch.float64)
    assert taken == [True]
    np.testing.assert_allclose(loss, oracle.loss, rtol=1e-9)
    np.testing.assert_allclose(grad, oracle.grad, rtol=1e-6, atol=1e-9 * np.abs(oracle.grad).max())


def test_chunks_of_rows_and_of_the_float64_passes(monkeypatch):
    x, y = _batch("near_duplicates", seed=2)
    whole = _run(x, y, SPECS[0], torch.float64)
    monkeypatch.setattr(distance_rows, "ROW_ELEMENTS", 3 * len(x))  # a few rows per chunk of the matrix kept whole
    monkeypatch.setattr(linear_logits, "CACHED_ELEMENTS", len(x))  # one row per float64 pass
    chunked = _run(x, y, SPECS[0], torch.float64)
    np.testing.assert_allclose(chunked[0], whole[0], rtol=1e-13)
    np.testing.assert_allclose(chunked[1], whole[1], rtol=1e-10, atol=1e-13)


def test_a_matrix_pulled_a_chunk_at_a_time_takes_the_general_road(monkeypatch):
    """`Gram.add_pairs` adds to a matrix kept whole or read by its triangle only: beyond both, the general road."""
    monkeypatch.setattr(distance_rows, "SYMMETRIC_BYTES", 0)
    x, y = _batch("normal")
    taken = _short_roads_taken(monkeypatch)
    loss, grad = _run(x, y, SPECS[0], torch.float64)
    oracle = reference.evaluate(x, y, SPECS[0])
    assert taken == [False]
    np.testing.assert_allclose(loss, oracle.loss, rtol=1e-11)

