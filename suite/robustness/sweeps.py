"""The sweeps: which batch, transformed how, at which levels, and one "robustness" record per level.

offset          the batch translated by `level` along every coordinate (10^0 .. 10^6). Euclidean losses
                are translation invariant; the reference is the oracle on the untranslated batch.
near_duplicate  half of the classes collapse to a pair at distance `level` (10^-1 .. 10^-8), along a
                random direction; the reference is the oracle on the batch as the dtype holds it
                (`realized_level` records the pairs' smallest distance after rounding).
scale           the batch multiplied by `level` (10^-8 .. 10^8), up to where the dtype's range ends.
temperature     the batch as it is, the loss's logits at temperature `level` (10^0 .. 10^-4): the softmax family's
                temperature, the similarity family's alpha, beta and gamma at 1 / level (`Spec.at_temperature`);
                logits of size 1 / level overflow an exponential taken without its shift from 10^-2 in float32.
                Swept for the adapters whose run reads these fields from the spec (Adapter.free_fields); the
                reference is the oracle at that temperature on the batch as the dtype holds it.
tf32            the offset sweep on a CUDA device with TF32 matmuls switched on (skipped without CUDA).

The batch: 16 classes of 2 rows in D = 8, coordinates on a grid of 1/16 within [-4, 4]. N = 32 is above
25, where torch.cdist switches to the Gram expansion. On the grid the offset sweep's translation is
exact in float32 up to 10^6 (the float32 spacing at 10^6 is 1/16), so every change of the loss is the
implementation's; float16 and bfloat16 hold the translated batch exactly only up to 10^2 and 10^1, and
their offset sweeps stop there. Each seed in BATCH_SEEDS is vetted (tests/robustness/test_robustness_
baselines.py): on the offset and scale sweeps no selection or hinge decision of any catalogued adapter's
sweep spec lies within the float32 resolution at any level, so float32 and float64 gradients are judged
there everywhere (but for a soft mean_nonzero spec scaled by 10^2 and more, whose smallest terms fall below
float32's smallest normal in any batch: its count is then the dtype's, reference/gaps.py soft_underflow). The near-duplicate sweep makes ties on purpose (a third anchor's nearest negative is
either point of a collapsing pair): its loss is judged against every admissible outcome, and its
gradient, where a tie lies within the resolution, is recorded but not judged.

Each level is judged against `bounds.expectation`; a level outside the dtype's range (the batch or the
exact answer not finite in it, or a translation the dtype cannot hold exactly) is not measured.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np

from adapters import Adapter
from contract.dtypes import dtype as dtype_facts
from contract.batch import in_layout
from contract.dtypes import round_to_dtype
from engine.cells import runnable_dtypes
from engine.compare import admissible_losses
from engine.harness import AdapterFailure, AdapterUnavailable, call_adapter
from engine.tolerances import VALUES
from reference import LOGIT_SCALES, LOSSES, Answer, Spec, evaluate, valid_triplets

from .bounds import TF32_EPS, expectation

SWEEPS = ("offset", "near_duplicate", "scale", "temperature", "tf32")
# Which distances each sweep applies to: cosine is not translation invariant.
SWEEP_DISTANCES = {
    "offset": ("euclidean",),
    "near_duplicate": ("euclidean", "cosine"),
    "scale": ("euclidean", "cosine"),
    "temperature": ("euclidean", "cosine"),
    "tf32": ("euclidean",),
}
FULL_LEVELS = {
    "offset": tuple(10.0**k for k in range(0, 7)),
    "near_duplicate": tuple(10.0**-k for k in range(1, 9)),
    "scale": tuple(10.0**k for k in range(-8, 9)),
    "temperature": tuple(10.0**-k for k in range(0, 5)),
    "tf32": tuple(10.0**k for k in range(0, 7)),
}
QUICK_LEVELS = {
    "offset": (1.0, 1e2, 1e4, 1e6),
    "near_duplicate": (1e-2, 1e-5, 1e-8),
    "scale": (1e-8, 1e-4, 1.0, 1e4, 1e8),
    "temperature": (1.0, 1e-2, 1e-4),
    "tf32": (1.0, 1e3, 1e6),
}
# Setting this to "full" (or the thorough Hypothesis profile) runs every level on every vetted batch.
FULL_SWEEP_VARIABLE = "ROBUSTNESS_SWEEP"

CLASSES, PER_CLASS, DIM = 16, 2, 8
GRID = 2.0**-4
HALF_WIDTH = 4.0  # coordinates in [-4, 4]
NEAR_DUPLICATE_CLASSES = CLASSES // 2
BATCH_SEEDS = (3, 4, 5)

# The order in which a spec is preferred for an adapter's sweep: the plainest form of each mining; the other losses of
# reference/losses.py follow in the records' order.
PLAINEST_FIRST = ("batch_hard", "semi_hard", "batch_all", "triplets", "semi_hard_all")
MINING_PREFERENCE = PLAINEST_FIRST + tuple(name for name in LOSSES if name not in PLAINEST_FIRST)


def full_sweep_requested(profile: str) -> bool:
    return os.environ.get(FULL_SWEEP_VARIABLE, "").lower() == "full" or profile == "thorough"


def plan(full: bool) -> tuple[dict[str, tuple[float, ...]], tuple[int, ...]]:
    """The levels of each sweep and the batch seeds: all of them, or a few levels on one batch."""
    return (FULL_LEVELS, BATCH_SEEDS) if full else (QUICK_LEVELS, BATCH_SEEDS[:1])


# --- the batch ------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SweepBatch:
    """The untransformed batch: grid coordinates, pair classes, and the near-duplicate directions."""

    embeddings: np.ndarray
    labels: np.ndarray
    directions: np.ndarray  # a unit vector per collapsing class
    partners: np.ndarray  # per collapsing class, its two rows (the second moves onto the first)


def base_batch(seed: int, spec: Spec | None = None) -> SweepBatch:
    """16 classes of 2 rows: class centres spread over the cube, each pair 0.5 to 2 apart, on the grid. A class's two
    rows are next to each other; in the pairs layout (N-pairs) they are anchor c and its positive 16 + c."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-0.25, 0.25, size=(CLASSES, DIM)) * HALF_WIDTH
    halves = rng.normal(size=(CLASSES, DIM))
    halves *= (rng.uniform(0.25, 1.0, size=CLASSES) / np.linalg.norm(halves, axis=1))[:, None]
    rows = np.stack([centres + halves, centres - halves], axis=1).reshape(-1, DIM)
    embeddings = np.clip(np.round(rows / GRID) * GRID, -HALF_WIDTH, HALF_WIDTH)
    directions = rng.normal(size=(NEAR_DUPLICATE_CLASSES, DIM))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    labels = np.repeat(np.arange(CLASSES, dtype=np.int64), PER_CLASS)
    partners = np.arange(NEAR_DUPLICATE_CLASSES)[:, None] * PER_CLASS + np.arange(2)
    if spec is not None and LOSSES[spec.mining].layout == "pairs":
        order = np.concatenate([np.arange(CLASSES) * PER_CLASS, np.arange(CLASSES) * PER_CLASS + 1])
        embeddings, labels = embeddings[order], labels[order]
        partners = np.arange(NEAR_DUPLICATE_CLASSES)[:, None] + np.array([0, CLASSES])
    embeddings, labels = in_layout(spec, embeddings, labels) if spec is not None else (embeddings, labels)
    return SweepBatch(embeddings, labels, directions, partners)


def transformed(batch: SweepBatch, sweep: str, level: float) -> np.ndarray:
    """The batch at `level` of `sweep`, in float64 (before the dtype rounds it)."""
    x = batch.embeddings
    if sweep in ("offset", "tf32"):
        return x + level
    if sweep == "scale":
        return x * level
    if sweep == "temperature":  # the spec moves, not the batch (`spec_at`)
        return x
    if sweep == "near_duplicate":
        moved = x.copy()
        first, second = batch.partners.T
        moved[second] = x[first] + level * batch.directions
        return moved
    raise ValueError(f"unknown sweep {sweep!r}; known: {', '.join(SWEEPS)}")


def spec_at(spec: Spec, sweep: str, level: float) -> Spec:
    """The spec measured at `level`: the temperature sweep's moves its logit scales, the others keep it."""
    return spec.at_temperature(level) if sweep == "temperature" else spec


def realized_level(batch: SweepBatch, received: np.ndarray) -> float:
    """The smallest distance of the collapsing pairs as the dtype holds them."""
    first, second = batch.partners.T
    return float(np.linalg.norm(received[second] - received[first], axis=1).min())


def triplets_for(spec: Spec, labels: np.ndarray) -> np.ndarray | None:
    """mining="triplets" takes every valid triplet of the batch."""
    return valid_triplets(labels) if spec.mining == "triplets" else None


# --- which adapter, spec, dtype ------------------------------------------------------------------------


def _preference(spec: Spec) -> tuple:
    """The plainest form first: hinge before soft and scaled, the preferred mining, margin 1, a mean."""
    return (spec.scaled, spec.soft, MINING_PREFERENCE.index(spec.mining), abs(spec.margin - 1.0),
            spec.reduction != "mean")


def sweep_specs(adapter: Adapter, sweep: str) -> list[Spec]:
    """The specs an adapter is swept with: per distance the sweep applies to, its plainest unnormalised spec; for the
    temperature sweep, per loss with logit scales that the adapter reads from the spec (free_fields)."""
    swept = [s for s in adapter.specs if not s.normalize and (sweep != "temperature" or _free_scales(adapter, s))]
    groups = [(distance, mining) for distance in SWEEP_DISTANCES[sweep]
              for mining in (LOSSES if sweep == "temperature" else (None,))]
    chosen = []
    for distance, mining in groups:
        candidates = [s for s in swept if s.distance == distance and mining in (None, s.mining)]
        if candidates:
            chosen.append(min(candidates, key=_preference))
    return chosen


def _free_scales(adapter: Adapter, spec: Spec) -> bool:
    """The spec's loss has logit scales, and the adapter reads every one of them from the spec it is given."""
    scales = set(LOGIT_SCALES) & set(LOSSES[spec.mining].takes)
    return bool(scales) and scales <= set(adapter.free_fields)


def sweep_dtypes(adapter: Adapter, spec: Spec, device: str, sweep: str) -> list[str]:
    """The dtypes the adapter claims, less those the registry records as unsupported; TF32 is float32's."""
    runnable = runnable_dtypes(adapter, spec, device)
    return [dtype for dtype in runnable if sweep != "tf32" or dtype == "float32"]


# --- reduced-precision matmul -------------------------------------------------------------------------------


@contextlib.contextmanager
def tf32_matmul(framework: str):
    """TF32 matmuls on for the duration, in the adapter's framework; the previous setting restored."""
    if framework == "torch":
        import torch

        before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    elif framework == "tensorflow":
        import tensorflow as tf

        before = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(True)
        try:
            yield
        finally:
            tf.config.experimental.enable_tensor_float_32_execution(before)
    else:
        raise ValueError(f"no TF32 switch known for framework {framework!r}")


# --- one measurement ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One batch at one level: the record's fields, and how far beyond its bounds it went (<= 1: within)."""

    fields: dict
    excess: float


def _representable(exact: Answer, dtype: str) -> bool:
    largest = dtype_facts(dtype).largest
    values = (abs(exact.loss), float(np.abs(exact.grad).max()), float(exact.distances.max()))
    return all(np.isfinite(v) and v <= largest for v in values)


def _hull_distance(loss: float, outcomes: list[tuple[float, float]]) -> float:
    """How far `loss` lies outside the admissible losses (each end widened by its nudge allowance)."""
    low, high = min(outcomes), max(outcomes)
    if low[0] <= loss <= high[0]:
        return 0.0
    end, allowance = low if loss < low[0] else high
    return max(abs(loss - end) - allowance, 0.0)


def _excess(error: float, bound: float) -> float:
    """error / bound; a zero bound (no active term: the exact answer is 0 and a careful one is too) allows none."""
    if bound > 0:
        return error / bound
    return 0.0 if error == 0 else float("inf")


def _collapsed(exact: Answer, loss: float, grad: np.ndarray | None, bound: float) -> bool:
    """The implementation answered as if every distance were 0 (underflow), where the exact answer is not."""
    if exact.spec.distance != "euclidean" or not np.isfinite(loss):
        return False
    zero = np.zeros_like(exact.distances)
    at_zero = exact.at_distances(zero).loss
    flat = grad is None or not np.any(grad)
    return flat and abs(loss - at_zero) <= bound < abs(exact.loss - at_zero)


def measure_batch(adapter: Adapter, spec: Spec, dtype: str, device: str, sweep: str, level: float, seed: int,
                  timeout: float) -> Measurement | None:
    """The adapter on one batch at one level, judged against its bounds; None where the level lies outside
    the dtype's range. AdapterUnavailable propagates (the caller skips); any other failure is recorded."""
    batch = base_batch(seed, spec)
    x = transformed(batch, sweep, level)
    spec = spec_at(spec, sweep, level)
    with np.errstate(over="ignore"):  # a level beyond the dtype's range rounds to inf: not measured, below
        received = round_to_dtype(x, dtype)
    translation = sweep in ("offset", "tf32")
    if not np.all(np.isfinite(received)) or (translation and not np.array_equal(received, x)):
        return None
    triplets = triplets_for(spec, batch.labels)
    reference_input = round_to_dtype(batch.embeddings, dtype) if translation else received
    exact = evaluate(reference_input, batch.labels, spec, triplets)
    if not _representable(exact, dtype):
        return None
    expected = expectation(exact, received, dtype, TF32_EPS if sweep == "tf32" else None)
    tolerance = VALUES[dtype]
    fields = dict(
        eps=expected.eps, bound=expected.loss, grad_bound=expected.grad, oracle_loss=exact.loss,
        tolerance=float(tolerance.allowed(np.float64(exact.loss))), ambiguous=sorted(expected.ambiguous),
    )
    if sweep == "near_duplicate":
        fields["realized_level"] = realized_level(batch, received)
    try:
        with tf32_matmul(adapter.framework) if sweep == "tf32" else contextlib.nullcontext():
            out = call_adapter(adapter, received, batch.labels, spec, dtype, device, triplets, timeout)
    except AdapterUnavailable:  # this machine lacks something: the caller skips
        raise
    except AdapterFailure as failure:
        fields.update(error=failure.reason, nonfinite=None, within_bound=False, within_tolerance=False,
                      loss_error=None, grad_error=None, impl_loss=None, collapsed=None)
        return Measurement(fields, float("inf"))

    finite_loss = bool(np.isfinite(out.loss))
    finite_grad = out.grad is None or bool(np.all(np.isfinite(out.grad)))
    raw_loss_error = abs(out.loss - exact.loss) if finite_loss else None
    loss_error = raw_loss_error
    if finite_loss and expected.ambiguous:
        outcomes = admissible_losses(exact, expected.ambiguous)
        loss_error = None if outcomes is None else _hull_distance(out.loss, outcomes)
    grad_error = float(np.abs(out.grad - exact.grad).max()) if out.grad is not None and finite_grad else None
    grad_judged = grad_error is not None and not expected.ambiguous
    ratios = [0.0 if loss_error is None else _excess(loss_error, expected.loss)]
    if grad_judged:
        ratios.append(_excess(grad_error, expected.grad))
    excess = max(ratios) if finite_loss and finite_grad else float("inf")
    fields.update(
        error=None, version=out.version, target=out.target, impl_loss=out.loss if finite_loss else None,
        loss_error=loss_error if loss_error is not None else raw_loss_error, grad_error=grad_error,
        nonfinite=not (finite_loss and finite_grad), within_bound=excess <= 1.0,
        within_tolerance=raw_loss_error is not None and raw_loss_error <= fields["tolerance"],
        collapsed=_collapsed(exact, out.loss, out.grad, expected.loss),
    )
    return Measurement(fields, excess)


def measure_level(adapter: Adapter, spec: Spec, dtype: str, device: str, sweep: str, level: float,
                  seeds: tuple[int, ...], timeout: float) -> dict | None:
    """The record of one level over the batches: the batch that went furthest beyond its bounds speaks for
    the level. None where the level lies outside the dtype's range."""
    measured = []
    for seed in seeds:
        one = measure_batch(adapter, spec, dtype, device, sweep, level, seed, timeout)
        if one is None:
            return None
        measured.append(one)
    worst = max(measured, key=lambda m: m.excess)
    return dict(
        adapter=adapter.name, framework=adapter.framework, spec=spec.to_dict(), spec_label=str(spec), dtype=dtype,
        device=device, sweep=sweep, level=level, batches=len(seeds), **worst.fields,
    )


def skipped_record(adapter: Adapter, spec: Spec, dtype: str, device: str, sweep: str, level: float,
                   reason: str) -> dict:
    """A sweep that cannot run here (no CUDA for TF32): the reason, and no numbers."""
    return dict(
        adapter=adapter.name, framework=adapter.framework, spec=spec.to_dict(), spec_label=str(spec), dtype=dtype,
        device=device, sweep=sweep, level=level, skipped=reason, loss_error=None, grad_error=None, nonfinite=None,
        bound=None, grad_bound=None, within_bound=None,
    )
