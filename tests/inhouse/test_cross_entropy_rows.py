"""The short road of the softmax family's cross-entropies (inhouse/cross_entropy_rows.py) against the oracle and
against the general road (inhouse/distance_rows.py `row_losses`, which it must agree with bit for bit in meaning):
near-duplicates (near pairs refined from differences), far offsets, zero rows, batches the softmax has nearly
converged on (where the gradient is the difference softmax - targets and must keep its bits), low temperatures
(logits of 1e4) and huge logits (1e303), several chunks of rows and of the float64 passes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import reference
from reference import Spec

torch = pytest.importorskip("torch", reason="the in-house losses are torch")

from contract.batch import in_layout  # noqa: E402
from inhouse import distance_rows, linear_logits, softmax  # noqa: E402
from inhouse.torch_losses import metric_loss  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

SPECS = [
    Spec(mining="supcon", distance="cosine", temperature=0.1, reduction="mean_nonzero"),  # PML's
    Spec(mining="supcon", distance="squared_euclidean", temperature=1e-4),
    Spec(mining="npairs", distance="cosine"),
    Spec(mining="npairs_multilabel", distance="squared_euclidean", normalize=True),
    Spec(mining="multiple_negatives", distance="cosine", temperature=1e-4),
    Spec(mining="multiple_negatives", distance="squared_euclidean", temperature=0.5, symmetric=True, reduction="sum"),
]
KINDS = ["normal", "near_duplicates", "far", "zero_rows", "converged", "huge"]


def _batch(kind: str, spec: Spec, seed: int = 0):
    rng = np.random.default_rng(seed)
    n, d = 24, 5
    x, y = rng.normal(size=(n, d)), np.arange(n) % 6
    if kind == "near_duplicates":  # copies 1e-6 apart: the Gram expansion cancels every bit of their distance
        x = x[np.arange(n) % 7] + 1e-6 * rng.normal(size=(n, d))
    elif kind == "far":
        x = x + 1e3
    elif kind == "huge":  # logits of 1e303: the row's largest must read e = 1, not e^(the rounding of its logit)
        x = 1e150 * (10.0 * rng.normal(size=(6, d))[y] + x)
    elif kind == "zero_rows":
        x[[2, 9]] = 0.0
    elif kind == "converged":
        return _converged(spec, rng, n, d)
    return in_layout(spec, x, y)


def _converged(spec: Spec, rng: np.random.Generator, n: int, d: int):
    """Pairs of rows, the pairs moved apart until the loss is about 1e-5 (or as far as the spec's temperature lets
    it go): the softmax sits on the targets, and the gradient's share of a target entry is softmax - target, a small
    difference of terms near 1 that must be formed before it is rounded to the points' dtype (the pairs are no
    near-duplicates: a target's pull is as long as a negative's push)."""
    y = np.arange(n) % (n // 2)
    base, pairs = 2.0 * np.ones(d), rng.normal(size=(n // 2, d))[y] + 0.2 * rng.normal(size=(n, d))
    low, high = -4.0, 4.0
    for _ in range(30):
        spread = (low + high) / 2
        x, labels = in_layout(spec, base + np.exp(spread) * pairs, y)
        low, high = (spread, high) if reference.evaluate(x, labels, spec).loss > 1e-5 else (low, spread)
    return in_layout(spec, base + np.exp(high) * pairs, y)


def _run(x, y, spec, dtype):
    embeddings = torch.tensor(x, dtype=dtype, requires_grad=True)
    loss = metric_loss(embeddings, torch.as_tensor(y), spec)
    loss.backward()
    return loss.item(), embeddings.grad.double().numpy()


def _on_the_general_road(monkeypatch):
    monkeypatch.setattr(softmax, "cross_entropies", lambda *args: None)


def _short_roads_taken(monkeypatch) -> list:
    taken, road = [], softmax.cross_entropies

    def counting(*args):
        result = road(*args)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(softmax, "cross_entropies", counting)
    return taken


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_float64_matches_the_oracle(spec, kind, monkeypatch):
    x, y = _batch(kind, spec)
    if kind == "far" and spec.distance == "cosine":
        pytest.skip("cosine is not translation invariant: 1e3 from the origin the oracle's 1 - cos is ill-conditioned")
    if kind == "huge" and spec.distance == "cosine":
        pytest.skip("cosine reads unit rows: no huge logit below t = 1e-300")
    taken = _short_roads_taken(monkeypatch)
    oracle = reference.evaluate(x, y, spec)
    loss, grad = _run(x, y, spec, torch.float64)
    assert all(taken) == (kind != "zero_rows" or spec.distance != "cosine")  # a zero point's cosine: the general road
    far = kind == "far"
    np.testing.assert_allclose(loss, oracle.loss, rtol=1e-9 if far else 1e-11, atol=1e-12)
    scale = np.abs(oracle.grad).max()
    np.testing.assert_allclose(grad, oracle.grad, rtol=1e-7 if far else 1e-8, atol=1e-9 * scale)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_float32_agrees_with_the_general_road(spec, kind, monkeypatch):
    """Both roads round the same float32 Gram expansion: their gradients differ by a few roundings of the largest
    term, never by a share of a small one (a converged batch's gradient is softmax - targets, far below its terms)."""
    x, y = _batch(kind, spec, seed=1)
    short = _run(x, y, spec, torch.float32)
    _on_the_general_road(monkeypatch)
    general = _run(x, y, spec, torch.float32)
    np.testing.assert_allclose(short[0], general[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(short[1], general[1], rtol=1e-4, atol=1e-5 * np.abs(general[1]).max())


@pytest.mark.parametrize("spec", SPECS[:1] + SPECS[4:5], ids=str)
def test_chunks_of_rows_and_of_the_float64_passes(spec, monkeypatch):
    x, y = _batch("near_duplicates", spec, seed=2)
    whole = _run(x, y, spec, torch.float64)
    monkeypatch.setattr(distance_rows, "ROW_ELEMENTS", 3 * len(x))  # a few rows per chunk
    monkeypatch.setattr(linear_logits, "CACHED_ELEMENTS", len(x))  # one row per float64 pass
    chunked = _run(x, y, spec, torch.float64)
    np.testing.assert_allclose(chunked[0], whole[0], rtol=1e-13)
    np.testing.assert_allclose(chunked[1], whole[1], rtol=1e-10, atol=1e-13)


def test_the_exponentials_agree_with_torch_within_a_unit_in_the_last_place():
    """distance_rows.exp_ (NumPy's or torch's exp on the CPU, in place) against torch.exp: logits a softmax shifts to
    <= 0, the values past either end of float64's range, and the special values; no warning where e^t overflows."""
    rng = np.random.default_rng(0)
    logits = np.concatenate([-np.abs(rng.normal(scale=30.0, size=5000)), [710.0, -746.0, -745.0, 0.0, -0.0],
                             [np.inf, -np.inf, np.nan], rng.uniform(-700.0, 700.0, size=500)])
    expected = torch.exp(torch.tensor(logits))
    found = torch.tensor(logits)
    with np.errstate(all="raise"):
        assert distance_rows.exp_(found) is not None
    ulp = torch.tensor(np.spacing(np.abs(expected.numpy())))
    close = (found - expected).abs() <= ulp
    assert bool((close | (found == expected) | (found.isnan() & expected.isnan())).all())


def test_the_exponentials_are_torchs_where_numpy_calls_the_c_library_per_entry():
    """NumPy vectorises float64 exp for AVX-512 alone; on another CPU (AVX2, ARM; here NumPy's AVX-512 loops switched
    off) it calls the C library once per entry, 2.5 times slower than torch's vectorised exp, which exp_ then takes:
    bit for bit torch's."""
    from engine.machine import numpy_simd

    avx512 = [feature for feature in numpy_simd().__cpu_dispatch__ if feature.startswith("AVX512")]
    probe = ("import torch; from inhouse.distance_rows import exp_; "
             "t = torch.linspace(-745.0, 710.0, 200_003, dtype=torch.float64); "
             "print(torch.equal(exp_(t.clone()), t.exp()))")
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=" ".join(avx512))
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True"]
