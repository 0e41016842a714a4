"""Properties every adapter must have, checked on the adapter against itself (not only on the oracle).

    permutation        shuffling the batch (and re-indexing explicit triplets; the pairs layout: shuffling the pairs)
                       permutes the gradient rows and leaves the loss alone
    relabelling        renaming the classes changes nothing (class sets: moving each class to another bit)
    translation        euclidean and squared distances: shifting every point by one vector changes nothing
    scale_invariance   cosine and normalized distances: multiplying every row by a power of two changes nothing
                       (the gradient scales by its inverse), down to the smallest rows the dtype tells from zero
    descent            a small step against the returned gradient lowers the loss (a step inside every decision gap,
                       over which the oracle's own loss is near linear)
    margins_hold       when every triplet already satisfies its margin, loss and gradient are zero
    duplicates_finite  batches with exact duplicate points give a finite gradient (unless the spec says NaN)
    machine_settings   torch adapters, in float32: denormals flushed, deterministic algorithms, another thread
                       count give the same answer (engine/machine.py)

One item per adapter x claimed spec x property that applies, in the most precise dtype the adapter runs on
the CPU, not one the registry lists as rejected (an id like
`test_property[pml.TripletMarginLoss|batch_all ...|float64|cpu|property:permutation]`).
The oracle decides what is comparable: examples ambiguous for the dtype are not compared where the
ambiguity could legitimately change the answer, steps stay inside the decision gap, and tolerances
are the conformance ones (two results of one dtype may each be off by atol: the sum is allowed).
Known violations are registry entries (registry/known_*.py) with check "property:<name>".
"""
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import event, reject
from hypothesis import strategies as st

from contract.batch import Batch
from contract.dtypes import round_to_dtype, ulp
from engine import machine
from engine.ambiguity import decisions
from engine.cell_run import add_note, for_each_batch
from engine.cells import Property, params, property_cells
from engine.draws import batches, extremes, magnitude_limit, small_row_floor
from engine.harness import AdapterFailure
from engine.judge import judge_example
from engine.profiles import examples_per_property
from engine.regressions import regression_examples
from engine.tolerances import tolerance
from reference import LOSSES, evaluate, valid_triplets
from reference.validation import MAX_CLASSES
from reference.gaps import COLLAPSE


def _translatable(spec):
    return spec.distance in ("euclidean", "squared_euclidean") and not spec.normalize


def _margins_can_hold(spec):
    """Every triplet can clear the margin: hinged triplet losses, with room for the margin on the
    unit sphere (normalize, cosine: distances <= 2) and under Quaterion's scaling (m < 1)."""
    if spec.mining == "contrastive" or spec.soft or LOSSES[spec.mining].term == "softmax row":
        return False  # a squared distance, a softplus, a cross-entropy: > 0 wherever there is a term
    if spec.mining == "lifted" and (spec.normalize or spec.distance == "cosine"):
        return False  # a smooth maximum over every negative: 0 only past m + log(count), beyond distances of 2
    if (spec.normalize or spec.distance == "cosine") and spec.margin >= 1.5:
        return False
    if spec.scaled and spec.margin >= 1.0:
        return False
    return not (spec.mining == "semi_hard_all" and spec.empty == "nan")  # its empty window is NaN


def pytest_generate_tests(metafunc):
    if "cell" in metafunc.fixturenames:
        cells = property_cells(metafunc.config.conformance_adapters, PROPERTIES)
        metafunc.parametrize("cell", params(cells))


# --- helpers ------------------------------------------------------------------------------------------

def assert_same_answer(cell, before, after, reference_answer, what, undo_rows=None):
    """The adapter's answers on two inputs that must give the same loss and (rows undone) gradient: the second held to
    the first where the judging rule compares with the oracle's value (engine/judge.py `judge_example`)."""
    __tracebackhide__ = True
    decided = decisions(reference_answer, cell.compute_dtype, cell.precision)
    for quantity in ("loss", "grad"):
        if quantity == "grad" and before.grad is None:
            continue
        first = before.loss if quantity == "loss" else before.grad
        second = after.loss if quantity == "loss" else after.grad[undo_rows] if undo_rows is not None else after.grad
        errors = judge_example(cell, quantity, second, reference_answer, decided=decided, held_to=first)
        assert errors is None or errors.ok, f"{cell}: {what}: the {quantity} changed: {errors.mismatch}"


def _rng(batch: Batch):
    return np.random.default_rng(int(batch.digest(), 16) % 2**32)


# --- the properties -----------------------------------------------------------------------------------

def _order(batch: Batch, spec) -> np.ndarray:
    """A shuffle of the rows; in the pairs layout a shuffle of the pairs, the same for anchors and positives, so that
    row B + i stays the positive of anchor i."""
    rng = _rng(batch)
    if LOSSES[spec.mining].layout != "pairs":
        return rng.permutation(len(batch.labels))
    half = len(batch.labels) // 2
    pairs = rng.permutation(half)
    return np.concatenate([pairs, half + pairs])


def _renamed(batch: Batch, spec) -> np.ndarray:
    """Other names for the classes: other ids, or (class sets, bit masks) the classes' bits moved to other bits."""
    rng = _rng(batch)
    if LOSSES[spec.mining].labels == "class sets":
        bits = rng.permutation(MAX_CLASSES)
        return np.array([sum(1 << int(bits[b]) for b in range(MAX_CLASSES) if mask >> b & 1) for mask in batch.labels],
                        dtype=np.int64)
    classes, codes = np.unique(batch.labels, return_inverse=True)
    return rng.choice(10**6, size=len(classes), replace=False)[codes].astype(np.int64)


def permutation(run, cell, batch):
    order = _order(batch, cell.spec)
    where = np.argsort(order)  # where[i]: the new position of old row i
    shuffled = Batch(
        batch.embeddings[order], batch.labels[order], None if batch.triplets is None else where[batch.triplets],
        batch.layout + ", permuted",
    )
    before, after = run.call(batch), run.call(shuffled)
    assert_same_answer(cell, before, after, run.oracle(batch), "permuting the rows", undo_rows=where)


def relabelling(run, cell, batch):
    renamed = Batch(batch.embeddings, _renamed(batch, cell.spec), batch.triplets, batch.layout + ", relabelled")
    before, after = run.call(batch), run.call(renamed)
    assert_same_answer(cell, before, after, run.oracle(batch), "renaming the classes")


def translation(run, cell, batch):
    """Shift by a vector of powers of two, on a grid where both batches are exact in the dtype."""
    rng = _rng(batch)
    reach = float(np.max(np.abs(batch.embeddings))) or 1.0
    step = 2.0 ** np.ceil(np.log2(4 * reach))
    shift = step * rng.integers(-2, 3, size=batch.embeddings.shape[1])
    if 3 * step > magnitude_limit(cell.dtype, batch.embeddings.shape[1]):  # the strategy's own bound on coordinates
        event("translation: no room to shift within the dtype's range")
        return
    grid = float(ulp(np.array(3 * step), cell.dtype))  # spacing of the dtype at the shifted magnitude
    base = np.round(batch.embeddings / grid) * grid
    original = Batch(base, batch.labels, batch.triplets, batch.layout + ", on the shift grid")
    shifted = Batch(base + shift, batch.labels, batch.triplets, batch.layout + ", shifted")
    assert np.array_equal(round_to_dtype(shifted.embeddings, cell.dtype), shifted.embeddings)
    before, after = run.call(original), run.call(shifted)
    assert_same_answer(cell, before, after, run.oracle(shifted), f"shifting by {shift.tolist()}")


def scale_invariance(run, cell, batch):
    """Multiply every row by 2^k, exact in the dtype: cosine and normalized distances read directions only, so a
    correct implementation's loss is the same and its gradient 2^-k times it, beyond rounding. k takes the smallest
    row down to the small-row floor (engine/draws.py), where a normalisation that adds an epsilon or clamps
    stops being one, or the largest up to the floor's reciprocal (1e4 in float32). Not up to the largest magnitudes
    (the conformance cells' wide scale): there the chain rule through |x|^2 passes |dL/du| / |x|^2, subnormal at
    |x| = 1e18 in float32, and differentiating x / |x| so is not wrong."""
    x = batch.embeddings
    norms = np.linalg.norm(x, axis=1)
    floor = small_row_floor(cell.dtype)
    if not (norms > 0).any():
        event("scale_invariance: every row is zero")
        return
    lowest = int(np.ceil(np.log2(floor / norms[norms > 0].min())))
    highest = int(np.floor(np.log2(min(1 / floor, magnitude_limit(cell.dtype, x.shape[1]) / 2) / norms.max())))
    ends = [k for k in (lowest, highest) if k != 0]
    exponent = int(_rng(batch).choice(ends)) if ends else 0
    scaled = Batch(x * 2.0**exponent, batch.labels, batch.triplets, batch.layout + f", scaled by 2^{exponent}")
    if lowest > highest or not ends or not np.array_equal(round_to_dtype(scaled.embeddings, cell.dtype),
                                                          scaled.embeddings):
        event("scale_invariance: no power of two keeps the rows exact and between the floor and its reciprocal")
        return
    before, after = run.call(batch), run.call(scaled)
    if after.grad is not None:  # in the base batch's units: d/dx f(2^k x) = 2^k f'(2^k x)
        after = replace(after, grad=after.grad * 2.0**exponent)
    assert_same_answer(cell, before, after, run.oracle(batch), f"scaling every row by 2^{exponent}")


def _safe_step(cell, reference_answer) -> float:
    """A step length (in embedding units) that moves no distance across a decision or a kink."""
    dist = reference_answer.distances
    off_diagonal = dist[~np.eye(len(dist), dtype=bool)]
    nearest = float(off_diagonal[off_diagonal > 0].min()) if (off_diagonal > 0).any() else 1.0
    gap = min(reference_answer.gap, nearest)
    spec = cell.spec
    if spec.distance == "squared_euclidean":  # d^2 moves by up to 2 h (|x_i - x_j| + h)
        gap = gap / (4 * np.sqrt(float(dist.max())) + 1)
    if spec.normalize or spec.distance == "cosine":  # x / |x| turns by up to h / |x|
        gap = gap * float(reference_answer.norms.min()) / 2
    return gap / 16


def _linear_step(batch, reference_answer, step: float, shortest: float) -> float:
    """`step`, halved until the oracle's loss, stepped against its own gradient, falls by at least 3/4 of its
    first-order drop, or below `shortest`: no decision gap bounds the curvature of a log-sum-exp, which at logits of
    1e284 is a hard maximum whose kink a step of distance units crosses. Where the oracle's loss is that near linear
    over the step, a conforming adapter's is."""
    gradient = reference_answer.grad
    size = _norm(gradient)
    while 0 < size < np.inf and step >= shortest:
        moved = evaluate(batch.embeddings - step * gradient / size, batch.labels, reference_answer.spec,
                         batch.triplets)
        if moved.loss <= reference_answer.loss - 0.75 * step * size:
            return step
        step /= 2
    return step


def _norm(vector) -> float:
    """|vector|, without squaring past float64's range (a gradient of 1e154, the largest magnitudes' in float64)."""
    largest = float(np.max(np.abs(vector), initial=0.0))
    return largest * float(np.linalg.norm(vector / largest)) if 0 < largest < np.inf else largest


def descent(run, cell, batch):
    if not cell.adapter.gradient:
        pytest.skip("loss only")
    reference_answer = run.oracle(batch)
    if decisions(reference_answer, cell.compute_dtype, cell.precision) or not np.isfinite(reference_answer.loss):
        event("descent: ambiguous or NaN, not stepped")
        return
    before = run.call(batch)
    size = _norm(before.grad)
    assert np.isfinite(size), f"{cell}: no step to take: the gradient is not finite where the oracle's loss " \
        f"{reference_answer.loss!r} is (the adapter's loss: {before.loss!r})"
    if size == 0:
        event("descent: zero gradient")
        return
    noise = 2 * tolerance("loss", cell.dtype, reference_answer, cell.compute_dtype, cell.precision).allowed(
        reference_answer.loss)
    rounding = float(np.linalg.norm(ulp(batch.embeddings, cell.dtype)))
    resolved = 4 * (noise / size + rounding)  # the shortest step whose drop stands out of the noise and the rounding
    step = _linear_step(batch, reference_answer, _safe_step(cell, reference_answer), resolved)
    if step < resolved:
        event("descent: step below what the dtype resolves")
        return
    moved = round_to_dtype(batch.embeddings - step * before.grad / size, cell.dtype)
    expected_drop = step * size
    after = run.call(Batch(moved, batch.labels, batch.triplets, batch.layout + ", stepped"))
    event("descent: stepped")
    assert after.loss < before.loss - expected_drop / 4, (
        f"{cell}: a step of {step:.3g} against the returned gradient (|g| = {size:.3g}) took the loss from "
        f"{before.loss!r} to {after.loss!r}; it should fall by about {expected_drop:.3g}"
    )


def margins_hold(run, cell, batch):
    reference_answer = run.oracle(batch)
    assert reference_answer.loss == 0.0, f"strategy error: the separated batch has oracle loss {reference_answer.loss}"
    out = run.call(batch)
    table = tolerance("loss", cell.dtype, reference_answer, cell.compute_dtype, cell.precision)
    assert abs(out.loss) <= table.atol, f"{cell}: every triplet satisfies its margin, yet the loss is {out.loss!r}"
    if out.grad is not None:
        allowed = tolerance("grad", cell.dtype, reference_answer, cell.compute_dtype, cell.precision).atol
        worst = float(np.max(np.abs(out.grad)))
        assert worst <= allowed, f"{cell}: every triplet satisfies its margin, yet |gradient| reaches {worst:.3g}"


def duplicates_finite(run, cell, batch):
    if not cell.adapter.gradient:
        pytest.skip("loss only")
    reference_answer = run.oracle(batch)
    ambiguous = decisions(reference_answer, cell.compute_dtype, cell.precision).ambiguous
    if not np.isfinite(reference_answer.loss) or COLLAPSE in ambiguous:
        event("duplicates: the spec says NaN, or does within the dtype's rounding (scaled, mean(hn) ~ 0)")
        return
    out = run.call(batch)
    bad = np.argwhere(~np.isfinite(out.grad))
    # the spec's NaN for a batch without units (empty="nan") is an answer where a decision within the dtype's rounding
    # may leave none: cosine rows 1e-9 apart 3e8 from the origin, whose one semi-hard triplet stands on a distance of
    # 2e-16 that the oracle's rounding makes and exact arithmetic does not
    if len(bad) and np.isnan(out.loss) and cell.spec.empty == "nan" and ambiguous:
        event("duplicates: no unit left by a decision within the dtype's rounding: the spec's NaN")
        return
    assert not len(bad), (
        f"{cell}: gradient {out.grad[tuple(bad[0])]!r} at {tuple(int(i) for i in bad[0])} on a batch with duplicate "
        f"points ({batch.layout}); the oracle's loss {reference_answer.loss!r} is finite"
    )


def machine_settings(run, cell, batch):
    """Asked again with the settings a user's CPU may bring (engine/machine.py `variations`: all at once, one call
    more per example), the adapter gives its default answer: a verdict made on one machine holds on the others."""
    settings = machine.variations()
    with machine.varied(*settings):
        after = run.call_afresh(batch)
    if isinstance(after, AdapterFailure):
        raise after
    assert_same_answer(cell, run.call(batch), after, run.oracle(batch),
                       f"running with {', '.join(settings)}")


def _every_spec(adapter, spec):
    return True


PROPERTIES = {  # name -> what verifies it on one base batch, whether it applies to (adapter, spec), its dtype
    "permutation": Property(permutation, _every_spec),
    "relabelling": Property(relabelling, lambda adapter, spec: spec.mining != "triplets"),
    "translation": Property(translation, lambda adapter, spec: _translatable(spec)),
    "scale_invariance": Property(scale_invariance, lambda adapter, spec: spec.distance == "cosine" or spec.normalize),
    # a record whose gradient holds weights constant (circle's) promises no descent of its value
    "descent": Property(descent, lambda adapter, spec: not LOSSES[spec.mining].detached),
    "margins_hold": Property(margins_hold, lambda adapter, spec: _margins_can_hold(spec)),
    "duplicates_finite": Property(duplicates_finite, _every_spec),
    # the settings engine/machine.py varies are torch's (TensorFlow's oneDNN needs a new process: tox); float32,
    # where most training runs and where denormals start at 1.2e-38, not float64's 2.2e-308
    "machine_settings": Property(machine_settings, lambda adapter, spec: adapter.framework == "torch", "float32"),
}


# --- strategies for the properties that need a particular kind of batch ------------------------------

@st.composite
def separated_batches(draw, spec, dtype):
    """2-4 tight classes far apart (one per direction on the sphere for normalize/cosine), so every
    valid triplet clears the margin by a wide gap."""
    n = draw(st.integers(3, 24), label="N")
    d = draw(st.integers(2, 8), label="D")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    k = int(rng.integers(2, min(n - 1, 4) + 1))  # k classes and at least one positive pair
    labels = np.concatenate([np.arange(k), rng.integers(0, k, size=n - k)]).astype(np.int64)
    if spec.normalize or spec.distance == "cosine":
        k = min(k, 2)  # two antipodal directions: the only way to clear a margin near 1 on the sphere
        labels = labels % 2
        centres = np.zeros((2, d))
        centres[0, 0], centres[1, 0] = 1.0, -1.0
        spread = 0.01
    else:
        separation = 8.0 * (spec.margin + 1.0)
        centres = np.zeros((k, d))
        centres[:, 0] = separation * np.arange(k)
        spread = 0.02 * separation / np.sqrt(d)
    x = centres[labels] + rng.normal(size=(n, d)) * spread
    triplets = None
    if spec.mining == "triplets":
        valid = valid_triplets(labels)
        triplets = valid[rng.integers(0, len(valid), size=int(rng.integers(1, 2 * n + 1)))] if len(valid) else valid
    return Batch(x, labels, triplets, "separated classes")


def strategy_for(name, cell):
    """The property's batches, and each of their geometries at its extreme (engine/draws.py `extremes`), which
    it runs beside its regression batches."""
    if name == "margins_hold":
        return separated_batches(cell.spec, cell.dtype), []
    options = {"duplicates": True if name == "duplicates_finite" else None}
    return (batches(cell.spec, cell.dtype, cell.precision, **options),
            extremes(cell.spec, cell.dtype, cell.precision, **options))


def test_property(cell, conformance, request):
    name = cell.check.removeprefix("property:")
    run = conformance.start(cell, request.node.nodeid)
    run.skip_unless_runnable()

    def check(batch):
        __tracebackhide__ = True
        batch = batch.rounded(cell.dtype)
        try:
            run.call(batch)
        except AdapterFailure:  # the conformance cells record that; a property needs an answer to start from
            event("adapter gave no answer on the base batch: not a property example")
            reject()
        try:
            PROPERTIES[name].verify(run, cell, batch)
        except Exception as exc:  # a violation, or the adapter failing: either way, say how to rerun it
            add_note(exc, f"Reproduce the base batch of property {name!r} (see {PROPERTIES[name].verify.__name__} for the "
                         f"transformation) with:\n" + run.reproducer_for(batch))
            raise

    strategy, extreme = strategy_for(name, cell)
    for_each_batch(cell, check, strategy, regression_examples(cell.spec, name, cell.dtype) + extreme,
                   examples_per_property())
