"""N-pairs and multilabel N-pairs by hand: TF-Addons' own test values (tensorflow_addons/losses/tests/npairs_test.py),
the probes of docs/upstream/next-losses.md (sections 1.3 and 4.2), and the pairs layout's boundary."""
import math

import numpy as np
import pytest

import reference
from reference import OracleError, Spec

# TF-Addons' fixture: anchors f and positives fp, both [[1, 1], [1, -1], [-1, 1], [-1, -1]], logits f fp^T. Every row
# has |f|^2 = 2, so f.fp = 2 - |f - fp|^2 / 2: the rows divided by sqrt(2) give logits -|f - fp|^2 / 2 = f.fp - 2 under
# squared_euclidean, the same softmax.
ROWS = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
TFA_BATCH = np.concatenate([ROWS, ROWS]) / math.sqrt(2.0)
SQUARED = Spec(mining="npairs", distance="squared_euclidean")


def test_tf_addons_unweighted_value():
    """npairs_test.py test_unweighted: log(1 + 2 e^-2 + e^-4) = 0.253856 per anchor."""
    answer = reference.evaluate(TFA_BATCH, [0, 1, 2, 3] * 2, SQUARED)
    assert answer.loss == pytest.approx(math.log1p(2 * math.exp(-2) + math.exp(-4)), abs=1e-15)
    assert answer.loss == pytest.approx(0.253856, abs=1e-6)


def test_tf_addons_single_label_value_through_class_sets():
    """npairs_test.py test_single_label: one class per row, as a [B, C] 0/1 matrix, is npairs."""
    labels = np.tile(np.eye(4, dtype=int), (2, 1))
    answer = reference.evaluate(TFA_BATCH, labels, Spec(mining="npairs_multilabel", distance="squared_euclidean"))
    assert answer.loss == pytest.approx(0.253856, abs=1e-6)


def test_tf_addons_multilabel_value():
    """npairs_test.py test_multilabel: classes {0,1}, {1,2}, {2,3}, {3}; targets row-normalised shared counts."""
    classes = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [0, 0, 0, 1]])
    answer = reference.evaluate(TFA_BATCH, np.tile(classes, (2, 1)),
                                Spec(mining="npairs_multilabel", distance="squared_euclidean"))
    assert answer.loss == pytest.approx(1.420522, abs=1e-6)


def _from_logits(logits, labels, mining="npairs"):
    """The spec on a given anchors x positives logit matrix: D(a_i, p_j) = -logit_ij."""
    b = len(logits)
    dist = np.zeros((2 * b, 2 * b))
    dist[:b, b:], dist[b:, :b] = -logits, -logits.T
    return reference.evaluate_distances(dist, labels, Spec(mining=mining))


def test_two_pairs_and_the_gradient_in_the_logits():
    """next-losses.md 4.2: logits [[.6, -.8], [.8, .6]] give 0.5092782 = mean(log(1 + e^-1.4), log(1 + e^.2)), and
    dL/dlogit = (softmax - Y) / B = [[-0.09891, 0.09891], [0.27492, -0.27492]]."""
    logits = np.array([[0.6, -0.8], [0.8, 0.6]])
    terms = _from_logits(logits, [0, 1, 0, 1])
    assert terms.loss == pytest.approx((math.log1p(math.exp(-1.4)) + math.log1p(math.exp(0.2))) / 2, abs=1e-15)
    assert terms.loss == pytest.approx(0.5092782, abs=1e-7)
    np.testing.assert_allclose(-terms.grad_dist[:2, 2:], [[-0.09891, 0.09891], [0.27492, -0.27492]], atol=1e-5)


def test_one_class_spreads_the_target_evenly():
    """next-losses.md 4.2: the same logits in one class give 0.8092782, lse minus the row's mean logit."""
    logits = np.array([[0.6, -0.8], [0.8, 0.6]])
    expected = np.mean([np.logaddexp(*row) - row.mean() for row in logits])
    assert _from_logits(logits, [0, 0, 0, 0]).loss == pytest.approx(expected, abs=1e-15)
    assert expected == pytest.approx(0.8092782, abs=1e-7)


def test_multilabel_identity_logits():
    """next-losses.md 4.2: classes {0}, {1}, {0,1} with identity logits give 1.0514446 (TF-Addons in float32). Every
    row's targets put 1/2 on its own positive (Y = [1/2, 0, 1/2], [0, 1/2, 1/2], [1/4, 1/4, 1/2]), and each row's
    log-sum-exp is log(e + 2): log(e + 2) - 1/2 for each."""
    masks = [0b01, 0b10, 0b11] * 2
    loss = _from_logits(np.eye(3), masks, "npairs_multilabel").loss
    assert loss == pytest.approx(math.log(math.e + 2) - 0.5, abs=1e-15)
    assert loss == pytest.approx(1.0514446, abs=1e-6)


def test_a_pair_without_a_class_has_no_target():
    """next-losses.md 4.2: a row with no label is 0/0 in the targets, and the loss NaN (TF-Addons too)."""
    assert math.isnan(_from_logits(np.eye(3), [0b01, 0b10, 0] * 2, "npairs_multilabel").loss)


def test_one_pair_is_zero():
    """A 1 x 1 softmax is 1: cross-entropy 0 whatever the distance."""
    assert reference.evaluate([[0.0, 3.0], [4.0, -1.0]], [7, 7], Spec(mining="npairs")).loss == 0.0


@pytest.mark.parametrize("labels, pattern", [
    ([0, 1, 0], r"N must be even, got N = 3"),
    ([0, 1, 1, 1], r"reads row 2 as the positive of anchor 0: both need the pair's label, got 0 and 1"),
])
def test_the_pairs_layout_is_checked(labels, pattern):
    with pytest.raises(OracleError, match=pattern):
        reference.evaluate(np.zeros((len(labels), 2)), labels, Spec(mining="npairs"))


@pytest.mark.parametrize("labels, pattern", [
    ([-1, -1], r"reads each label as a set of classes, a bit mask"),
    ([[1, 2], [1, 2]], r"must hold 0 or 1"),
    (np.ones((2, 63), dtype=int), r"63 classes; at most 62 fit a bit mask"),
])
def test_class_sets_are_checked(labels, pattern):
    with pytest.raises(OracleError, match=pattern):
        reference.evaluate(np.zeros((2, 2)), labels, Spec(mining="npairs_multilabel"))


def test_n_pairs_takes_no_margin():
    assert Spec(mining="npairs", margin=0.7).margin == 0.0
    assert "m=" not in str(Spec(mining="npairs"))
