"""TF-Similarity's MultiSimilarityLoss, CircleLoss and SimCLRLoss (tox environment `tfsim`; docs/upstream/next-losses.md,
sections 3.1 to 3.3): the probed values and what the registry holds of them."""
import math

import numpy as np
import pytest

import reference

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_similarity", reason="tensorflow-similarity is not installed (tox -e tfsim)")

from adapters import tf_similarity  # noqa: E402
from claims import assert_conforms  # noqa: E402

MS = next(a for a in tf_similarity.ADAPTERS if a.name == "tfsim.MultiSimilarityLoss")
CIRCLE = next(a for a in tf_similarity.ADAPTERS if a.name == "tfsim.CircleLoss")
SIMCLR = next(a for a in tf_similarity.ADAPTERS if a.name == "tfsim.SimCLRLoss")
BATCH_A = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]])  # next-losses.md's fixture A
RNG = np.random.default_rng(11)
X = RNG.normal(size=(5, 6))[np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])] * 1.5 + RNG.normal(size=(10, 6)) * 0.6


@pytest.mark.parametrize("labels, expected", [([0, 0, 1, 1], 0.2995348), ([0, 0, 1, 2], 0.1497674),
                                              ([0, 0, 0, 0], 0.0), ([0, 1, 2, 3], 0.0)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_multi_similarity_is_pml_s_with_beta_40_and_the_miner(labels, expected, dtype):
    """The probes (TF-Sim from source) on fixture A, B, one-class and all-unique: multi_similarity_mined, beta 40,
    epsilon 0.1 = margin, loss and gradient the oracle's."""
    (spec,) = MS.specs
    out = MS.run(BATCH_A, np.array(labels), spec, dtype, "cpu")
    oracle = reference.evaluate(BATCH_A, labels, spec)
    assert out.loss == pytest.approx(expected, abs=1e-7)
    assert out.loss == pytest.approx(oracle.loss, abs=1e-12 if dtype == "float64" else 1e-6)
    np.testing.assert_allclose(out.grad, oracle.grad, atol=1e-12 if dtype == "float64" else 1e-5)


def test_multi_similarity_conforms_on_a_drawn_batch():
    (spec,) = MS.specs
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
    for dtype in ("float64", "float32"):
        assert_conforms(MS, spec, X, y, dtype)


def test_multi_similarity_is_nan_in_float16():
    """Confirms tfsim-multisim-float16-nan: on fixture A anchors 0 and 3 keep no pair, and in float16 their negative
    part log(e^-20 + 0) + 20 is -inf, times their validity 0: NaN, where the spec's loss is 0.2995348."""
    (spec,) = MS.specs
    out = MS.run(BATCH_A, np.array([0, 0, 1, 1]), spec, "float16", "cpu")
    assert np.isnan(out.loss) and np.isnan(out.grad).any()
    assert reference.evaluate(BATCH_A, [0, 0, 1, 1], spec).loss == pytest.approx(0.2995348, abs=1e-7)
    assert MS.run(BATCH_A, np.array([0, 0, 1, 1]), spec, "bfloat16", "cpu").loss == pytest.approx(0.2995348, abs=2e-3)


def test_circle_adds_two_softpluses_and_keeps_the_weights():
    """Confirms tfsim-circle-sum-of-two-softpluses: on fixture A log(1 + A) + log(1 + B) per anchor, 20.239719 (anchor 0:
    log 2 + log(2 + e^-12.8) = 1.386295), where the spec (eq. 6, mean over the anchors) gives 19.546574; and its
    gradient is the derivative of that value, weights included, not the spec's."""
    (spec,) = CIRCLE.specs
    out = CIRCLE.run(BATCH_A, np.array([0, 0, 1, 1]), spec, "float64", "cpu")
    probe = CIRCLE.run(BATCH_A, np.array([0, 0, 1, 1]), spec, "float32", "cpu").loss  # the probe ran in float32
    assert probe == pytest.approx(20.239719, abs=1e-6) and out.loss == pytest.approx(20.239719, abs=5e-6)
    oracle = reference.evaluate(BATCH_A, [0, 0, 1, 1], spec)
    assert oracle.loss == pytest.approx(19.546574, abs=1e-6)
    assert out.loss - oracle.loss == pytest.approx(math.log(2), abs=1e-5)  # (1 + A)(1 + B) - (1 + A B) = A + B
    assert np.max(np.abs(out.grad - oracle.grad)) > 1.0
    assert CIRCLE.run(BATCH_A, np.array([0, 0, 1, 2]), spec, "float64", "cpu").loss == pytest.approx(10.119861, abs=1e-6)
    for labels in ([0, 0, 0, 0], [0, 1, 2, 3]):  # no anchor with a pair of each: both 0
        assert CIRCLE.run(BATCH_A, np.array(labels), spec, "float64", "cpu").loss == 0.0


VIEWS = BATCH_A[[0, 2, 1, 3]]  # next-losses.md 3.3's probe: za = (x0, x2), zb = (x1, x3) in the pairs layout


@pytest.mark.parametrize("temperature, probe", [(1.0, 1.6041572), (0.05, 4.018156)])
def test_simclr_gives_the_probed_values(temperature, probe):
    """next-losses.md 3.3: twice the paper's 0.8020786 and 2.009078 (test_oracle_hand_computed_softmax.py)."""
    spec = SIMCLR.specs[0].at_temperature(temperature)
    assert float(tf_similarity.simclr_loss(tf.constant(VIEWS, tf.float32), None, spec)) == pytest.approx(probe, abs=1e-6)


@pytest.mark.parametrize("spec", SIMCLR.specs, ids=str)
def test_simclr_is_twice_the_paper_s_nt_xent(spec):
    """Confirms tfsim-simclr-twice-nt-xent: on random batches of views (pairs sharing classes among them: SimCLR reads
    no label) the loss and the gradient are twice the spec's, the paper's mean over the 2B rows. float32's rounding of
    these sums stays far inside the relative bound 1e-4 on any machine, where a factor other than 2 misses it."""
    rng = np.random.default_rng(3)
    for pairs in (2, 5, 16):
        x, labels = rng.normal(size=(2 * pairs, 8)), np.tile(rng.integers(0, 3, size=pairs), 2)
        out, oracle = SIMCLR.run(x, labels, spec, "float32", "cpu"), reference.evaluate(x, labels, spec)
        assert out.loss == pytest.approx(2 * oracle.loss, rel=1e-4)
        assert np.max(np.abs(out.grad - 2 * oracle.grad)) <= 1e-4 * np.max(np.abs(2 * oracle.grad))


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_simclr_rejects_every_dtype_but_float32(dtype):
    """Confirms tfsim-simclr-float32-only: tf.one_hot's float32 mask meets the logits in a Sub."""
    with pytest.raises(tf.errors.InvalidArgumentError, match="Sub"):
        SIMCLR.run(VIEWS, np.array([0, 1, 0, 1]), SIMCLR.specs[0], dtype, "cpu")
