"""TF-Similarity adapters (tensorflow-similarity 0.17.1 on TensorFlow 2.11, tox environment `tfsim`): the claim
of positive="hard" + negative="hard" on batches that exercise it, what the unclaimed strategies compute (the
formulas proposed for the vocabulary), whether its "semi-hard" is TF-Addons' semi_hard, and each difference from
the oracle on a small explicit batch (the registry entries proposed for them cite these tests by name)."""

import numpy as np
import pytest

import reference
from reference import Spec

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_similarity", reason="tensorflow-similarity is not installed (tox -e tfsim)")

from adapters import tf_similarity  # noqa: E402
from adapters._tf import load  # noqa: E402
from claims import assert_conforms  # noqa: E402
from engine.ambiguity import decisions  # noqa: E402
from engine.judge import judge  # noqa: E402
from reference import evaluate  # noqa: E402
from engine.regressions import OWN  # noqa: E402
from engine.tolerances import SAFETY, distance_rounding, tolerance  # noqa: E402

HARD = tf_similarity.ADAPTERS[0]
RNG = np.random.default_rng(11)
CENTRES = RNG.normal(size=(5, 6)) * 1.5
FULL = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])  # every anchor has a positive and a negative
SINGLETONS = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 4])  # anchors 8 and 9 have no positive
X = CENTRES[FULL] + RNG.normal(size=(10, 6)) * 0.6
UNIT = X / np.linalg.norm(X, axis=1, keepdims=True)
STRATEGIES = [(p, n) for p in ("hard", "easy") for n in ("hard", "semi-hard", "easy")]


def dtypes_of(spec):
    """euclidean runs in float32 only (see test_euclidean_rejects_every_dtype_but_float32)."""
    return ("float32",) if spec.distance == "euclidean" else ("float64", "float32")


def claims():
    return [pytest.param(spec, dtype, id=f"{spec} {dtype}") for spec in HARD.specs for dtype in dtypes_of(spec)]


def upstream(x, y, positive="hard", negative="hard", margin=1.0, distance="squared_euclidean", dtype="float64"):
    """TF-Similarity's TripletLoss called directly, eagerly: (loss, gradient, loss dtype)."""
    losses = load("tensorflow_similarity.losses")
    tf.config.run_functions_eagerly(True)
    try:
        e = tf.cast(tf.constant(x, tf.float64), dtype)
        with tf.GradientTape() as tape:
            tape.watch(e)
            loss = losses.TripletLoss(
                distance=distance, positive_mining_strategy=positive, negative_mining_strategy=negative, margin=margin
            )(tf.constant(y), e)
        grad = tape.gradient(loss, e)
    finally:
        tf.config.run_functions_eagerly(False)
    return float(tf.cast(loss, tf.float64)), tf.cast(grad, tf.float64).numpy(), loss.dtype.name


def proposed(dist, y, positive, negative, margin):
    """The per-anchor strategies as proposed for the vocabulary (no 1e-6 offsets), for anchors that have both a
    positive and a negative: hp = max_p d_ap ("hard") or min_p d_ap ("easy"); hn = min_n d_an ("hard"), max_n d_an
    ("easy"), or ("semi-hard") min {d_an : d_an > max_p d_ap} -- the *hardest* positive's distance, whatever the
    positive strategy -- else max_n d_an; term [hp - hn + m]+, or softplus(hp - hn) for margin None; mean over
    every anchor (tensorflow_similarity/losses/utils.py positive_distances, negative_distances)."""
    same = y[:, None] == y[None, :]
    terms = []
    for a in range(len(y)):
        pos = dist[a][same[a] & (np.arange(len(y)) != a)]
        neg = dist[a][~same[a]]
        hp = pos.max() if positive == "hard" else pos.min()
        if negative == "hard":
            hn = neg.min()
        elif negative == "easy":
            hn = neg.max()
        else:
            farther = neg[neg > pos.max()]
            hn = farther.min() if farther.size else neg.max()
        terms.append(np.logaddexp(0.0, hp - hn) if margin is None else max(hp - hn + margin, 0.0))
    return float(np.mean(terms))



@pytest.mark.parametrize("spec, dtype", claims())
def test_hard_hard_is_batch_hard(spec, dtype):
    """Hardest positive and nearest negative per anchor, hinge or soft margin, mean over the anchors."""
    oracle = assert_conforms(HARD, spec, X, FULL, dtype)
    assert oracle.gap > 1e-3 and len(oracle.values) == len(FULL)


def judged(quantity: str, value, expected, dtype: str = "float32"):
    """`value` judged as the adapter's `dtype` cell judges it: the engine's tolerance for this batch under the
    adapter's declared precision (engine/tolerances.py, engine/judge.py)."""
    allowed = tolerance(quantity, dtype, expected, precision=HARD.precision)
    errors = judge(quantity, value, expected, decisions(expected, dtype, HARD.precision), allowed, dtype)
    assert errors is not None, "compared with the oracle: no decision of the batch is within rounding"
    return errors, allowed


@pytest.mark.parametrize("spec", HARD.specs, ids=str)
def test_hard_hard_averages_over_every_anchor(spec):
    """anchors=all: the singletons count in Keras's mean with hp = (row minimum) - 1e-6, which is 0 up to the offset
    (float64 sees it: test_fallback_offsets_of_1e_6_show_in_float64) and, under euclidean, up to the Gram
    diagonal's residue (test_an_anchor_without_a_positive_reads_the_gram_diagonal): held to the cell's own
    allowance, which that residue is part of. anchors=valid (the singletons left out) lies outside it. X * 0.2: close
    enough that the singletons' hinges are open (on X the squared hinge terms are all 0, either reading alike)."""
    x = (X * 0.2).astype(np.float32).astype(np.float64)
    expected = evaluate(x, SINGLETONS, spec)
    out = HARD.run(x, SINGLETONS, spec, "float32", "cpu")
    for quantity, value in (("loss", out.loss), ("grad", out.grad)):
        errors, _ = judged(quantity, value, expected)
        assert errors.ok, (quantity, errors.mismatch)
    valid = reference.evaluate(x, SINGLETONS, Spec(**{**vars(spec), "anchors": "valid"})).loss
    errors, allowed = judged("loss", valid, expected)
    assert not errors.ok and abs(valid - expected.loss) > 10 * allowed.allowed(expected.loss)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_runs_in_the_input_dtype(dtype):
    """No upcast: squared distances, masks and the loss stay in float16/bfloat16 (masked_max/min alone go through
    float64 and back), and the loss comes back in the input dtype. A tight batch keeps the soft form finite."""
    x = tf.cast(tf.cast(X * 0.3, dtype), tf.float64).numpy()
    for spec in (s for s in HARD.specs if s.distance != "euclidean"):
        out = HARD.run(x, FULL, spec, dtype, "cpu")
        assert out.loss == pytest.approx(reference.evaluate(x, FULL, spec).loss, rel=3e-2), spec
    assert upstream(x, FULL, dtype=dtype)[2] == dtype


def test_cosine_is_one_minus_the_dot_product_of_the_rows_as_given():
    """TF-Similarity's "cosine" is max(1 - x.y, 0) without normalising: the suite's cosine on unit rows only, hence
    the adapter's L2 normalisation (Spec(normalize=True)), as TF-Similarity's MetricEmbedding layer does. On raw
    rows it is another distance (proposed value "one_minus_dot")."""
    cosine = Spec(mining="batch_hard", distance="cosine", margin=1.0)
    on_unit_rows, _, _ = upstream(UNIT, FULL, distance="cosine")
    assert on_unit_rows == pytest.approx(reference.evaluate(UNIT, FULL, cosine).loss, rel=1e-12)
    raw, _, _ = upstream(X, FULL, distance="cosine")
    assert raw != pytest.approx(reference.evaluate(X, FULL, cosine).loss, rel=1e-2)
    dot = np.maximum(1.0 - X @ X.T, 0.0)
    same = FULL[:, None] == FULL[None, :]
    hp = np.where(same & ~np.eye(10, dtype=bool), dot, -np.inf).max(axis=1)
    hn = np.where(~same, dot, np.inf).min(axis=1)
    assert raw == pytest.approx(np.mean(np.maximum(hp - hn + 1.0, 0.0)), rel=1e-12)


@pytest.mark.parametrize("positive, negative", STRATEGIES)
@pytest.mark.parametrize("margin", [1.0, None], ids=["hinge", "soft"])
def test_every_strategy_matches_its_proposed_formula(positive, negative, margin):
    """All six (positive, negative) strategies, hinge and soft, on a batch where every anchor has a positive and a
    negative: TF-Similarity equals `proposed` (float64, squared euclidean and cosine on unit rows)."""
    for distance, x in (("squared_euclidean", X * 0.5), ("cosine", UNIT)):
        dist = reference.evaluate(x, FULL, Spec(distance=distance)).distances
        loss, _, _ = upstream(x, FULL, positive, negative, margin, distance)
        assert loss == pytest.approx(proposed(dist, FULL, positive, negative, margin), rel=1e-12), distance


def test_semi_hard_is_not_tf_addons_semi_hard():
    """The migrating user's question. TF-Addons' semi_hard (the oracle's) takes every ordered positive pair with its
    own threshold d_ap and averages over the pairs; TF-Similarity's takes one triplet per anchor, thresholded at the
    anchor's *hardest* positive, averaged over the anchors. 1-D, margin 1, euclidean: class 0 at 0, 1, 3 and class
    1 at 2, 4: TF-Addons 6/8 = 0.75, TF-Similarity 4/5 = 0.8."""
    x = np.array([[0.0], [1.0], [3.0], [2.0], [4.0]])
    y = np.array([0, 0, 0, 1, 1])
    tfa_semi_hard = reference.evaluate(x, y, Spec(mining="semi_hard", margin=1.0, empty="nan"))
    assert tfa_semi_hard.loss == pytest.approx(0.75)
    tfsim, _, _ = upstream(x, y, "hard", "semi-hard", 1.0, "euclidean", "float32")
    assert tfsim == pytest.approx(0.8, rel=1e-6)
    assert proposed(np.abs(x - x.T), y, "hard", "semi-hard", 1.0) == pytest.approx(0.8)


def test_semi_hard_agrees_with_tf_addons_when_every_class_is_a_pair():
    """With exactly two members per class each anchor has one positive, so one triplet per anchor is one per
    ordered pair and the thresholds coincide: the losses are equal (and so are the gradients)."""
    spec = Spec(mining="semi_hard", distance="squared_euclidean", margin=1.0, empty="nan")
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    x = X * 0.5
    loss, grad, _ = upstream(x, y, "hard", "semi-hard", 1.0)
    oracle = reference.evaluate(x, y, spec)
    assert loss == pytest.approx(oracle.loss, rel=1e-12) and np.allclose(grad, oracle.grad, atol=1e-12)


def test_semi_hard_without_a_positive_pair_is_finite():
    """TF-Addons' semi_hard is 0/0 = NaN without a positive pair; TF-Similarity's threshold is then -1e-6, every
    negative passes it, and each anchor gets [m - 1e-6 - min_n d_an]+: finite."""
    y = np.arange(10)
    loss, grad, _ = upstream(X * 0.2, y, "hard", "semi-hard", 1.0)
    assert np.isfinite(loss) and np.isfinite(grad).all() and loss > 0
    assert np.isnan(reference.evaluate(X * 0.2, y, Spec(mining="semi_hard", distance="squared_euclidean", empty="nan")).loss)


# --- differences from the oracle ----------------------------------------------------------------------------


def test_euclidean_rejects_every_dtype_but_float32():
    """Confirms tfsim-euclidean-float32-only: EuclideanDistance multiplies by tf.cast(mask, tf.float32), so float64,
    float16 and bfloat16 embeddings raise InvalidArgumentError; squared_euclidean and cosine take every dtype."""
    for spec in (s for s in HARD.specs if s.distance == "euclidean"):
        for dtype in ("float64", "float16", "bfloat16"):
            with pytest.raises(tf.errors.InvalidArgumentError, match="cannot compute Mul"):
                HARD.run(X, FULL, spec, dtype, "cpu")


def test_fallback_offsets_of_1e_6_show_in_float64():
    """Confirms tfsim-masked-offsets-1e-6. masked_max / masked_min shift by 1e-6 so that a masked-out 0 never wins:
    an anchor without a positive gets hp = (row minimum) - 1e-6 = -1e-6, one without a negative hn = (row maximum)
    + 1e-6. Every anchor's term moves by 1e-6 (hinge) or about 5e-7 (soft): one row gives 0.999999, not the margin 1;
    two singletons in ten anchors (open hinges) move the mean by 2e-7, beyond float64's tolerance (1e-7 + 1e-7 |loss|), inside
    float32's."""
    for spec in (s for s in HARD.specs if s.distance != "euclidean"):
        one_row = HARD.run(X[:1], np.array([0]), spec, "float64", "cpu")
        expected = np.log1p(np.exp(-1e-6 - 1e-6)) if spec.soft else 1.0 - 2e-6
        assert one_row.loss == pytest.approx(expected, abs=1e-12), spec
        if not spec.soft:
            x = X * 0.2  # close enough that the singletons' hinges are open
            oracle = reference.evaluate(x, SINGLETONS, spec)
            out = HARD.run(x, SINGLETONS, spec, "float64", "cpu")
            active = (oracle.values[8:] > 0).sum()
            assert active == 2
            assert out.loss - oracle.loss == pytest.approx(-1e-6 * active / 10, abs=1e-12), spec
            assert abs(out.loss - oracle.loss) > 1e-7 + 1e-7 * abs(oracle.loss)


def test_soft_margin_overflows_for_easy_triplets():
    """Confirms tfsim-soft-margin-overflows. margin=None computes log(exp(-x) + 1) + x for x = hp - hn (its
    logsumexp with the shift stop-gradiented): exp(-x) overflows when the negative is far farther than the positive,
    x < -88.7 in float32 and bfloat16, -11.1 in float16, -709.8 in float64; the loss is inf where softplus is about 0
    (the gradient stays finite). Squared distances, each class a pair 0.1 apart, the classes 10 apart (x = -99.99;
    float16: 0.5 and 4 apart, x = -15.75; float64: 0.1 and 30 apart, x = -899.99)."""
    spec = next(s for s in HARD.specs if s.distance == "squared_euclidean" and s.soft)
    for dtype, near, far in (("float32", 0.1, 10.0), ("bfloat16", 0.1, 10.0), ("float16", 0.5, 4.0), ("float64", 0.1, 30.0)):
        x = np.array([[0.0], [near], [far], [far + near]])
        y = np.array([0, 0, 1, 1])
        oracle = reference.evaluate(x, y, spec)
        out = HARD.run(x, y, spec, dtype, "cpu")
        assert np.isinf(out.loss) and np.isfinite(out.grad).all() and oracle.loss < 1e-5, dtype


def test_semi_hard_without_a_negative_falls_back_to_column_0():
    """For the proposed per-anchor semi-hard (not claimed yet; entry tfsim-semi-hard-fallback-column-0 when it is):
    an anchor without a negative has masked_max's argmax at column 0 (all masked values are 0), so the fallback
    "easy" mask marks column 0 and hn = d(a, 0), where batch_hard's fallback is the row maximum. One class on a line
    at 0, 1, 3, 4.5 (squared, margin 1): 8.875, against 1 (the margin) for hard negatives."""
    x = np.array([[0.0], [1.0], [3.0], [4.5]])
    y = np.zeros(4, dtype=int)
    loss, _, _ = upstream(x, y, "hard", "semi-hard", 1.0)
    d = (x - x.T) ** 2
    assert loss == pytest.approx(np.mean(d.max(axis=1) - d[:, 0] + 1.0), rel=1e-12) and loss == pytest.approx(8.875)
    assert upstream(x, y, "hard", "hard", 1.0)[0] == pytest.approx(1.0, abs=2e-6)


def test_easy_positive_without_a_positive_takes_the_row_maximum():
    """For the proposed easy positive (not claimed): masked_min over an empty mask is (row maximum) + 1e-6, so an
    anchor without a positive treats its farthest point as its positive (hard positive: -1e-6, about 0). Points 0, 1,
    3 of three classes, squared, margin 1: 19/3 + 1e-6, where hard positives give 0."""
    x = np.array([[0.0], [1.0], [3.0]])
    y = np.arange(3)
    assert upstream(x, y, "easy", "hard", 1.0)[0] == pytest.approx(19.0 / 3.0 + 1e-6, rel=1e-12)
    assert upstream(x, y, "hard", "hard", 1.0)[0] == pytest.approx(0.0, abs=1e-12)


UNIT_ROWS = next(r for r in OWN if r.layout == "two anchors without a positive, unit rows in D = 11")
EPS32 = float(np.finfo(np.float32).eps)


def tfsim_distances(x: np.ndarray) -> np.ndarray:
    """TF-Similarity's own EuclideanDistance on the float32 rows: the matrix its loss reads, as float64."""
    distances = load("tensorflow_similarity.distances")
    rows = tf.constant(x, tf.float32)
    return tf.cast(distances.EuclideanDistance()(rows, rows), tf.float64).numpy()


def with_the_diagonal_at(squared: np.ndarray):
    """EuclideanDistance.call with its diagonal replaced by sqrt(`squared`): the residue another machine leaves."""
    original = vars(load("tensorflow_similarity.distances").EuclideanDistance)["call"]  # the tf.function, unbound

    def call(self, query, key):
        computed = original.__get__(self, type(self))(query, key)
        return tf.linalg.set_diag(computed, tf.sqrt(tf.constant(squared, tf.float32)))

    return call


@pytest.mark.parametrize("spec", [s for s in HARD.specs if s.distance == "euclidean"], ids=str)
@pytest.mark.parametrize("residue", ["this machine's", "0", "the worst"])
def test_an_anchor_without_a_positive_reads_the_gram_diagonal(residue, spec, monkeypatch):
    """Rows 0 and 3 of the regression batch have no positive: masked_max gives them hp = (row minimum) - 1e-6, and the
    row minimum is their own entry d(a, a), which EuclideanDistance takes from the Gram expansion
    (|a|^2 - 2 a.a) + |a|^2 without zeroing the diagonal: sqrt(r), r a rounding residue whose size is the machine's
    (on one x86 CPU, 0 for row 3 with TF's oneDNN kernels and 3.5e-4 without; another CPU sums in another order). The
    loss is the spec's formula on TF-Similarity's own distance matrix with that hp; the diagonal stays within the Gram
    precision's rounding of d(a, a) and the loss within the float32 cell's tolerance, for the residue this machine
    leaves and for r forced to 0 and to the largest any summation order leaves, (4 D + 2) eps |a|^2
    (tests/engine/test_gram_diagonal.py): the same verdict on every machine, no registry entry."""
    x, y = UNIT_ROWS.embeddings.astype(np.float32).astype(np.float64), UNIT_ROWS.labels
    no_positive = np.flatnonzero(np.bincount(y)[y] == 1)
    assert no_positive.tolist() == [0, 3]
    if residue != "this machine's":
        squared = (4 * x.shape[1] + 2) * EPS32 * np.einsum("ij,ij->i", x, x) if residue == "the worst" else np.zeros(4)
        monkeypatch.setattr(load("tensorflow_similarity.distances").EuclideanDistance, "call",
                            with_the_diagonal_at(squared))
    dist = tfsim_distances(x)
    own = np.diagonal(dist)
    assert (dist.min(axis=1)[no_positive] == own[no_positive]).all()  # the row minimum is the diagonal
    same = y[:, None] == y[None, :]
    positive = same & ~np.eye(len(y), dtype=bool)
    hp = np.where(positive.any(axis=1), np.where(positive, dist, -np.inf).max(axis=1), own - 1e-6)
    hn = np.where(~same, dist, np.inf).min(axis=1)
    terms = np.logaddexp(0.0, hp - hn) if spec.soft else np.maximum(hp - hn + spec.margin, 0.0)
    out = HARD.run(x, y, spec, "float32", "cpu")
    arithmetic = 4 * EPS32 * np.mean(np.abs(hp) + hn + spec.margin + terms)  # float32 terms and their mean
    assert out.loss == pytest.approx(terms.mean(), rel=0, abs=arithmetic)  # the mechanism, whatever r is here

    expected = evaluate(x, y, spec)
    assert (own <= SAFETY * np.diagonal(distance_rounding(expected, "float32", HARD.precision))).all()
    errors, _ = judged("loss", out.loss, expected)
    assert errors.ok, errors.mismatch


def test_float16_gram_expansion_overflows_past_a_norm_of_256():
    """Confirms tfsim-float16-squared-norms-overflow. squared_euclidean is the Gram expansion in the embeddings' dtype:
    rows 300 from the origin have |x|^2 = 9e4, past float16's 65504, and inf - inf gives a NaN loss and gradient
    (hinge and soft) where the oracle's are finite and every squared distance is at most 23409; float32 holds it."""
    x = np.array([[300.0, 0.0], [301.0, 1.0], [300.0, 2.0], [303.0, 0.0], [150.0, 0.0], [151.0, 1.0]])
    y = np.array([0, 0, 1, 1, 2, 2])
    assert np.max(np.sum((x[:, None] - x[None]) ** 2, axis=-1)) < 65504 < np.max(np.sum(x * x, axis=1))
    for spec in (s for s in HARD.specs if s.distance == "squared_euclidean"):
        oracle = reference.evaluate(x, y, spec)
        half, single = HARD.run(x, y, spec, "float16", "cpu"), HARD.run(x, y, spec, "float32", "cpu")
        assert np.isnan(half.loss) and np.isnan(half.grad).any() and np.isfinite(oracle.loss), spec
        assert not np.isnan(single.loss) and not np.isnan(single.grad).any(), spec


def test_float16_cosine_normalisation_overflows_past_a_norm_of_256():
    """Confirms tfsim-float16-cosine-normalisation-overflows. Rows 256 to 336 from the origin have |x|^2 past float16's
    65504: normalised in float16 they are 0, every cosine distance is 1, and the loss is what equal distances give (the
    margin; softplus(0) = log 2) with a zero gradient, where the oracle's loss is smaller and its gradient is not 0;
    float32 holds it."""
    x = np.array([[300.0, 60.0], [270.0, 90.0], [-60.0, 300.0], [-90.0, 240.0], [150.0, -300.0], [180.0, -270.0]])
    y = np.array([0, 0, 1, 1, 2, 2])
    assert np.min(np.sum(x * x, axis=1)) > 65504
    for spec in (s for s in HARD.specs if s.distance == "cosine"):
        oracle = reference.evaluate(x, y, spec)
        half, single = HARD.run(x, y, spec, "float16", "cpu"), HARD.run(x, y, spec, "float32", "cpu")
        equal_distances = np.log(2.0) if spec.soft else spec.margin
        assert half.loss == pytest.approx(equal_distances, rel=1e-3) and not half.grad.any(), spec
        assert oracle.loss < equal_distances - 0.25 and np.abs(oracle.grad).max() > 1e-4, spec
        assert single.loss == pytest.approx(oracle.loss, rel=1e-3), spec


def test_soft_margin_overflow_leaves_no_step_to_descend():
    """Confirms tfsim-soft-margin-overflow-stops-descent: anchors 0 to 3 have x = hp - hn near -1000 (exp(-x)
    overflows in float32 and float64), anchor 5 has x = 800 and a gradient: the loss is inf before and after a step
    against that gradient, where the oracle's finite loss falls."""
    x = np.array([[0.0], [0.1], [1000.0], [1000.1], [2000.0], [1100.0]])
    y = np.array([0, 0, 1, 1, 2, 2])
    for spec, dtype in ((s, "float32" if s.distance == "euclidean" else "float64") for s in HARD.specs
                        if s.soft and s.distance in ("euclidean", "squared_euclidean")):
        out = HARD.run(x, y, spec, dtype, "cpu")
        step = x - 1e-3 * out.grad / np.linalg.norm(out.grad)
        assert np.isinf(out.loss) and np.isinf(HARD.run(step, y, spec, dtype, "cpu").loss), spec
        assert 0 < np.linalg.norm(out.grad) < np.inf, spec
        assert reference.evaluate(step, y, spec).loss < reference.evaluate(x, y, spec).loss < np.inf, spec
