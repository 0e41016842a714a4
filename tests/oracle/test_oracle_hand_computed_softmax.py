"""The softmax family by hand (reference/softmax.py): N-pairs with TF-Addons' own test values
(tensorflow_addons/losses/tests/npairs_test.py), NT-Xent, SupCon and multiple negatives with the probes of
docs/upstream/next-losses.md (sections 1.3-1.5, 2.1, 4.2) on its fixture batches, and the layouts' boundaries."""
import math

import numpy as np
import pytest

import reference
from reference import OracleError, Spec, SpecError

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


# next-losses.md's batch A: unit rows x0..x3 with cosines [1, .6, 0, -.8], [.6, 1, .8, 0], [0, .8, 1, .6], [-.8, 0, .6, 1]
A = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-0.8, 0.6]])


def test_ntxent_on_batch_a():
    """1.4565929 at t = 0.07: pairs (1, 0), (2, 3) give log(1 + e^(.2 / t) + e^(-.6 / t)), pairs (0, 1), (3, 2)
    log(1 + e^(-.6 / t) + e^(-1.4 / t)) (the anchor's negatives against its positive)."""
    t = 0.07
    far = math.log(1 + math.exp(0.2 / t) + math.exp(-0.6 / t))
    near = math.log(1 + math.exp(-0.6 / t) + math.exp(-1.4 / t))
    loss = reference.evaluate(A, [0, 0, 1, 1], Spec(mining="ntxent", distance="cosine", temperature=t)).loss
    assert loss == pytest.approx((far + near) / 2, abs=1e-14)
    assert loss == pytest.approx(1.4565929, abs=1e-6)


@pytest.mark.parametrize("temperature, expected", [(1.0, 0.8020786), (0.05, 2.0090783)])
def test_ntxent_in_simclr_layout(temperature, expected):
    """SimCLR's two views as labels [0, 1, 0, 1] on E = (x0, x2, x1, x3): next-losses.md 1.4's values."""
    spec = Spec(mining="ntxent", distance="cosine", temperature=temperature)
    assert reference.evaluate(A[[0, 2, 1, 3]], [0, 1, 0, 1], spec).loss == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("temperature, paper, tf_similarity", [(1.0, 0.8020786, 1.6041572), (0.05, 2.009078, 4.018156)])
def test_simclr_on_two_views(temperature, paper, tf_similarity):
    """next-losses.md 3.3's probe, za = (x0, x2), zb = (x1, x3) in the pairs layout: rows x0 and x3 give
    log(e^(.6 / t) + 1 + e^(-.8 / t)) - .6 / t, rows x2 and x1 log(e^(.6 / t) + 1 + e^(.8 / t)) - .6 / t (0.585233 and
    1.018925 at t = 1); the paper's mean over the four rows, where TF-Similarity's SimCLRLoss sums the two views (2x)."""
    t = temperature
    near = math.log(math.exp(0.6 / t) + 1 + math.exp(-0.8 / t)) - 0.6 / t
    far = math.log(math.exp(0.6 / t) + 1 + math.exp(0.8 / t)) - 0.6 / t
    answer = reference.evaluate(A[[0, 2, 1, 3]], [0, 1, 0, 1], Spec(mining="simclr", distance="cosine", temperature=t))
    np.testing.assert_allclose(answer.values, [near, far, far, near], rtol=1e-12, atol=1e-14)
    assert answer.loss == pytest.approx(paper, abs=1e-6) and 2 * answer.loss == pytest.approx(tf_similarity, abs=1e-6)


def test_supcon_on_batch_a():
    """1.0648501 at t = 0.1: the mean of log(1 + e^2 + e^-6) twice and log(1 + e^-6 + e^-14) twice; batch B (labels
    [0, 0, 1, 2]) the same, its anchors without a positive having no term."""
    expected = (math.log(1 + math.exp(2) + math.exp(-6)) + math.log(1 + math.exp(-6) + math.exp(-14))) / 2
    spec = Spec(mining="supcon", distance="cosine", temperature=0.1, reduction="mean_nonzero")
    assert reference.evaluate(A, [0, 0, 1, 1], spec).loss == pytest.approx(expected, abs=1e-14)
    assert expected == pytest.approx(1.0648501, abs=1e-6)
    assert reference.evaluate(A, [0, 0, 1, 2], spec).loss == pytest.approx(expected, abs=1e-14)


def test_supcon_of_one_pair_is_a_zero_term():
    """A softmax over one other row: exactly 0, which mean_nonzero leaves out (and then has no term: 0)."""
    answer = reference.evaluate(A[:2], [0, 0], Spec(mining="supcon", reduction="mean_nonzero"))
    assert answer.loss == 0.0 and answer.values.tolist() == [0.0, 0.0] and not answer.weights.any()


# next-losses.md's batch Q: queries (x0, x1, x2), documents (x1, x2, x3), the pairs layout
Q = np.concatenate([A[[0, 1, 2]], A[[1, 2, 3]]])


@pytest.mark.parametrize("temperature, expected", [(0.05, 4.0122113), (1.0, 0.9598289)])
def test_multiple_negatives_on_batch_q(temperature, expected):
    """scale 20 (t = 0.05): rows log(1 + e^-12 + e^-28), log(e^20 + e^16 + 1) - 16, log(e^16 + e^20 + e^12) - 12."""
    spec = Spec(mining="multiple_negatives", distance="cosine", temperature=temperature)
    answer = reference.evaluate(Q, [0, 1, 2] * 2, spec)
    assert answer.loss == pytest.approx(expected, abs=1e-6)
    if temperature == 0.05:
        rows = [math.log(1 + math.exp(-12) + math.exp(-28)), math.log(math.exp(20) + math.exp(16) + 1) - 16,
                math.log(math.exp(16) + math.exp(20) + math.exp(12)) - 12]
        np.testing.assert_allclose(answer.values, rows, rtol=1e-12, atol=1e-14)


def test_multiple_negatives_reads_no_label():
    """Another pair of the anchor's class is a negative all the same: the labels change nothing."""
    spec = Spec(mining="multiple_negatives", distance="cosine")
    assert reference.evaluate(Q, [0, 0, 0] * 2, spec).loss == reference.evaluate(Q, [0, 1, 2] * 2, spec).loss


def test_simclr_reads_no_label():
    """Another pair of the row's class is a negative all the same: SimCLR has no labels."""
    spec = Spec(mining="simclr", distance="cosine", temperature=0.5)
    assert reference.evaluate(Q, [0, 0, 0] * 2, spec).loss == reference.evaluate(Q, [0, 1, 2] * 2, spec).loss


def test_symmetric_multiple_negatives_averages_both_directions():
    """Half the anchors-to-positives mean plus half the positives-to-anchors mean: on anchors (x0, x1), positives
    (x1, x3) the
    backward rows differ from the forward ones."""
    x = np.concatenate([A[[0, 1]], A[[1, 3]]])
    logits = (x[:2] @ x[2:].T - 1) / 0.5
    forward = np.mean([np.logaddexp.reduce(logits[i]) - logits[i, i] for i in range(2)])
    backward = np.mean([np.logaddexp.reduce(logits[:, j]) - logits[j, j] for j in range(2)])
    spec = Spec(mining="multiple_negatives", distance="cosine", temperature=0.5, symmetric=True)
    assert reference.evaluate(x, [0, 1, 0, 1], spec).loss == pytest.approx((forward + backward) / 2, abs=1e-14)
    assert abs(forward - backward) > 0.01


@pytest.mark.parametrize("fields, pattern", [
    ({"mining": "ntxent", "temperature": 0.0}, r"Spec.temperature must be a finite number > 0"),
    ({"mining": "supcon", "temperature": float("inf")}, r"Spec.temperature must be a finite number > 0"),
    ({"mining": "batch_hard", "temperature": 0.5}, r"Spec.temperature applies only to mining in"),
    ({"mining": "ntxent", "symmetric": True}, r"Spec.symmetric applies only to mining in \(multiple_negatives\)"),
])
def test_the_family_fields_are_checked(fields, pattern):
    with pytest.raises(SpecError, match=pattern):
        Spec(**fields)
