"""TF-Addons' npairs_loss and npairs_multilabel_loss: its own test values, graph and eager, the label cast and the
float16 mean the registry holds (tfa-npairs-labels-cast-to-the-logits-dtype, tfa-npairs-float16-mean-overflows), and
the pairs layout refused at the adapter's boundary."""
import numpy as np
import pytest

import reference
from contract.batch import in_layout

pytest.importorskip("torch")  # imported before TensorFlow when both are installed (adapters._tf.load)
tf = pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_addons")

from adapters import tfa  # noqa: E402

ADAPTERS = {a.name: a for a in tfa.ADAPTERS}
RNG = np.random.default_rng(7)
X = RNG.normal(size=(10, 6))

# TF-Addons' own fixture (tensorflow_addons/losses/tests/npairs_test.py) divided by sqrt(2): under squared_euclidean the
# logits -|f - fp|^2 / 2 are its f fp^T - 2, the same softmax (tests/oracle/test_oracle_hand_computed_npairs.py)
NPAIRS_ROWS = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
NPAIRS_BATCH = np.concatenate([NPAIRS_ROWS, NPAIRS_ROWS]) / np.sqrt(2.0)


@pytest.mark.parametrize("name", ["tfa.npairs_loss", "tfa.npairs_multilabel_loss"])
def test_npairs_gives_tf_addons_own_test_values(name):
    adapter = ADAPTERS[name]
    spec = next(s for s in adapter.specs if s.distance == "squared_euclidean")
    labels = np.tile([0, 1, 2, 3], 2) if name == "tfa.npairs_loss" else np.tile([0b11, 0b110, 0b1100, 0b1000], 2)
    expected = 0.253856 if name == "tfa.npairs_loss" else 1.420522
    assert adapter.run(NPAIRS_BATCH, labels, spec, "float32", "cpu").loss == pytest.approx(expected, abs=1e-6)


def test_npairs_graph_and_eager_agree():
    eager, graph = ADAPTERS["tfa.npairs_loss"], ADAPTERS["tfa.npairs_loss (graph)"]
    spec = graph.specs[0]
    x = RNG.normal(size=(8, 3))
    labels = np.tile([0, 1, 1, 2], 2)
    first, second = eager.run(x, labels, spec, "float32", "cpu"), graph.run(x, labels, spec, "float32", "cpu")
    assert second.loss == pytest.approx(first.loss, rel=1e-6)
    np.testing.assert_allclose(second.grad, first.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_npairs_casts_the_labels_to_the_logits_dtype(dtype):
    """Confirms tfa-npairs-labels-cast-to-the-logits-dtype: ids 2048 and 2049 are one float16 (and bfloat16) number, so
    the two pairs count as one class; the spec's loss is log(1 + e^-1) = 0.3133 on these unit rows (cosine logits
    cos - 1 in {0, -1}), TF-Addons' the one-class 0.3133 + 1/2."""
    adapter = ADAPTERS["tfa.npairs_loss"]
    spec = next(s for s in adapter.specs if s.distance == "cosine")
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    spec_loss = reference.evaluate(x, [2048, 2049, 2048, 2049], spec).loss
    assert spec_loss == pytest.approx(np.log1p(np.exp(-1.0)), abs=1e-12)
    collided = adapter.run(x, np.array([2048, 2049, 2048, 2049]), spec, dtype, "cpu").loss
    assert collided == pytest.approx(spec_loss + 0.5, abs=0.02)
    small_ids = adapter.run(x, np.array([0, 1, 0, 1]), spec, dtype, "cpu").loss
    assert small_ids == pytest.approx(spec_loss, abs=0.02)


@pytest.mark.parametrize("name", ["tfa.npairs_loss", "tfa.npairs_multilabel_loss"])
@pytest.mark.parametrize("distance, far", [("squared_euclidean", 200.0), ("euclidean", 40000.0)])
def test_npairs_float16_mean_overflows_where_it_fits(name, distance, far):
    """Confirms tfa-npairs-float16-mean-overflows: two pairs, each anchor on the other's positive and `far` from its
    own, rows of 40000 and a mean of 40000 (inside float16's 65504); float16 returns inf, float32 the mean, and the
    float16 gradient is the spec's."""
    adapter = ADAPTERS[name]
    spec = next(s for s in adapter.specs if s.distance == distance)
    x, labels = in_layout(spec, np.array([[0.0], [far], [far], [0.0]]), np.array([1, 2, 1, 2]))
    oracle = reference.evaluate(x, labels, spec)
    assert oracle.loss == 40000.0
    half = adapter.run(x, labels, spec, "float16", "cpu")
    assert half.loss == np.inf and np.array_equal(half.grad, oracle.grad)
    assert adapter.run(x, labels, spec, "float32", "cpu").loss == 40000.0


def test_npairs_refuses_a_batch_that_is_not_pairs_at_the_boundary():
    adapter = ADAPTERS["tfa.npairs_loss"]
    with pytest.raises(reference.OracleError, match="N must be even, got N = 3"):
        adapter.run(X[:3], np.array([0, 1, 0]), adapter.specs[0], "float32", "cpu")
    with pytest.raises(reference.OracleError, match="reads row 2 as the positive of anchor 0"):
        adapter.run(X[:4], np.array([0, 1, 1, 1]), adapter.specs[0], "float32", "cpu")
