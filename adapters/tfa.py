"""TensorFlow-Addons 0.23.0 (end of life; TF 2.13-2.15): `triplet_semihard_loss`, `triplet_hard_loss`,
`lifted_struct_loss`, `contrastive_loss`, `npairs_loss` and `npairs_multilabel_loss` (tensorflow/addons
tensorflow_addons/losses/{triplet,lifted,contrastive,npairs,metric_learning}.py).

What the suite knows (docs/upstream/tf-addons.md, sections 1.1-1.8; docs/upstream/next-losses.md, section 4.1):
  * distance_metric "L2" = euclidean, "squared-L2" = squared_euclidean, "angular" = cosine (1 - cos,
    clamped at 0); L2 via the Gram expansion with a masked 1e-16 inside the sqrt, 0 and gradient 0 at
    zero distance. Declared (precision="gram", contract/precision.py): the Gram expansion's rounding,
    and "angular"'s l2_normalize by Eigen's fast rsqrt, whose accuracy depends on the CPU's vector instructions.
  * float16 and bfloat16 are upcast to float32 and the loss is cast back; float64 is rejected (the
    distance code hard-codes float32): claimed anyway, and registered as "unsupported", so the
    rejection is recorded on every run.
  * semi-hard: per ordered positive pair the nearest negative farther than the positive, else the
    farthest negative; mean over ordered positive pairs, 0/0 = NaN when there is none.
  * hard: per anchor farthest positive (0 when none) and nearest negative (farthest point when none),
    mean over every anchor; soft=True is log1p(exp(hp - hn)) and ignores the margin.
  * lifted: per positive pair i < j, J = log(sum of e^(m - D) over the negatives of i and of j) + D_ij (a shifted
    log-sum-exp), the term [J]+^2 / 2, mean over positive pairs; L2 only (pairwise_distance), no normalisation,
    0/0 = NaN without a positive pair. Registered: NaN with one class (log 0 = -inf times a 0 mask) and once a
    row's nearest negative is past 88.72 (exp overflows before the mask), and a gradient through the shift where
    the two rows of a pair tie (tf.maximum's tie rule).
  * `npairs_loss(y, s)` and `npairs_multilabel_loss(Y, s)` take a [B, B] logit matrix; here it is what a porter
    passes (`anchor_positive_logits`, measured in float32 for float16 and bfloat16 and cast back): the cosine
    similarity of the unit rows (a matmul), or the negated distance measured from differences, of anchors (rows 0..B-1) and positives (rows B..2B-1); y = the pairs' labels, Y their
    class sets as a [B, 62] 0/1 matrix. Both run in the logits' dtype, float64 included, no upcast. Registered:
    npairs_loss casts the labels to that dtype before comparing them (ids 2048 and 2049 are one class in float16).
  * `contrastive_loss(y, d)` takes precomputed distances; here they are TF-Addons' own pairwise distances
    of every unordered pair i < j, computed from the embeddings under the tape, and y = same label.

The losses are `tf.function`s. The adapters run them eagerly (run_functions_eagerly), as a user calling them
outside a tf.function does; the three "(graph)" adapters, on one spec in float32, run them traced into one graph
with their gradient, as Keras's fit does (adapters/_tf.py `_graph`: after the first batch the batch size is
unknown to the graph, and TF-Addons' code must work from the dynamic shape).
"""
from __future__ import annotations

import numpy as np

from reference import Spec
from reference.validation import MAX_CLASSES

from ._tf import load
from contract.adapter import HALF_IN_FLOAT32
from contract.family import Family
from .wrap import wrap_tensorflow

FAMILY = Family(module="tfa", library="TF-Addons", source="tensorflow/addons", prefix="tfa.",
                requires=("tensorflow", "tensorflow-addons"), benchmarks=("tf-addons",))

SOURCE = "tensorflow/addons tensorflow_addons/losses/"
METRICS = {"euclidean": "L2", "squared_euclidean": "squared-L2", "cosine": "angular"}
DTYPES = ("float32", "float16", "bfloat16", "float64")
REQUIRES = ("tensorflow_addons",)


def triplet_semihard_loss(embeddings, labels, spec):
    tfa = load("tensorflow_addons")
    return tfa.losses.triplet_semihard_loss(
        labels, embeddings, margin=spec.margin, distance_metric=METRICS[spec.distance]
    )


def triplet_hard_loss(embeddings, labels, spec):
    tfa = load("tensorflow_addons")
    return tfa.losses.triplet_hard_loss(
        labels, embeddings, margin=spec.margin, soft=spec.soft, distance_metric=METRICS[spec.distance]
    )


def lifted_struct_loss(embeddings, labels, spec):
    tfa = load("tensorflow_addons")
    return tfa.losses.lifted_struct_loss(labels, embeddings, margin=spec.margin)


def anchor_positive_logits(embeddings, spec):
    """The [B, B] logits a porter passes to npairs_loss: anchors x positives (the pairs layout, reference/softmax.py),
    cos(a_i, p_j) of the unit rows by one matmul for cosine (the spec's -D up to the constant 1, which a softmax
    ignores), else -D(a_i, p_j) from differences (0 and gradient 0 at distance 0); float16 and bfloat16 measured in
    float32, where |x - y|^2 of close rows does not underflow, and cast back: npairs runs in the dtype."""
    tf = load("tensorflow")
    low_precision = embeddings.dtype in (tf.float16, tf.bfloat16)  # upcast as TF-Addons' own distances do
    precise = tf.cast(embeddings, tf.float32) if low_precision else embeddings
    half = tf.shape(precise)[0] // 2
    anchors, positives = precise[:half], precise[half:]
    if spec.distance == "cosine":
        logits = tf.matmul(_unit_rows(anchors), _unit_rows(positives), transpose_b=True)
    else:
        difference = anchors[:, None, :] - positives[None, :, :]
        squared = tf.reduce_sum(difference * difference, axis=-1)
        apart = squared > 0
        logits = -squared if spec.distance == "squared_euclidean" else -tf.where(
            apart, tf.sqrt(tf.where(apart, squared, tf.ones_like(squared))), tf.zeros_like(squared))
    return tf.cast(logits, embeddings.dtype)


def _unit_rows(x):
    """l2_normalize of each row first scaled by a power of two to a largest |coordinate| in [1, 2): exact, and |x|^2
    cannot overflow float16 (at |x| > 256) nor underflow."""
    tf = load("tensorflow")
    largest = tf.reduce_max(tf.abs(x), axis=1, keepdims=True)
    exponent = tf.floor(tf.math.log(tf.where(largest > 0, largest, tf.ones_like(largest))) / tf.math.log(
        tf.constant(2.0, x.dtype)))
    return tf.math.l2_normalize(x * tf.pow(tf.constant(2.0, x.dtype), -exponent), axis=1)


def npairs_loss(embeddings, labels, spec):
    tf = load("tensorflow")
    tfa = load("tensorflow_addons")
    return tfa.losses.npairs_loss(labels[: tf.shape(labels)[0] // 2], anchor_positive_logits(embeddings, spec))


def npairs_multilabel_loss(embeddings, labels, spec):
    """Each pair's class set (a bit mask, reference/softmax.py) as the [B, 62] 0/1 matrix TF-Addons takes."""
    tf = load("tensorflow")
    tfa = load("tensorflow_addons")
    masks = labels[: tf.shape(labels)[0] // 2]
    classes = tf.bitwise.bitwise_and(tf.bitwise.right_shift(masks[:, None], tf.range(MAX_CLASSES, dtype=masks.dtype)),
                                     tf.ones_like(masks[:, None]))
    return tfa.losses.npairs_multilabel_loss(classes, anchor_positive_logits(embeddings, spec))


def contrastive_loss(embeddings, labels, spec):
    """contrastive_loss over every unordered pair i < j, reduced by mean or sum as `spec` says.

    The pair distances come from TF-Addons' metric_learning module, with the float16/bfloat16 -> float32
    upcast its triplet losses use (pairwise_distance is float32-only); contrastive_loss itself then runs
    in the embeddings' dtype.
    """
    tf = load("tensorflow")
    metric_learning = load("tensorflow_addons.losses.metric_learning")
    tfa = load("tensorflow_addons")
    low_precision = embeddings.dtype in (tf.float16, tf.bfloat16)
    precise = tf.cast(embeddings, tf.float32) if low_precision else embeddings
    if spec.distance == "cosine":
        dist = metric_learning.angular_distance(precise)
    else:
        dist = metric_learning.pairwise_distance(precise, squared=spec.distance == "squared_euclidean")
    pairs = np.stack(np.triu_indices(labels.shape[0], k=1), axis=1)
    same = tf.equal(tf.gather(labels, pairs[:, 0]), tf.gather(labels, pairs[:, 1]))
    per_pair = tfa.losses.contrastive_loss(same, tf.gather_nd(tf.cast(dist, embeddings.dtype), pairs), spec.margin)
    return tf.reduce_sum(per_pair) if spec.reduction == "sum" else tf.reduce_mean(per_pair)


def semihard_specs(distances):
    return [Spec(mining="semi_hard", distance=d, margin=1.0, empty="nan") for d in distances]


def hard_specs(distances):
    forms = ({"margin": 1.0}, {"soft": True})
    return [Spec(mining="batch_hard", distance=d, **form) for d in distances for form in forms]


def lifted_specs(margins):
    return [Spec(mining="lifted", distance="euclidean", margin=m, reduction="mean", empty="nan") for m in margins]


def npairs_specs(mining, distances):
    return [Spec(mining=mining, distance=d) for d in distances]


NPAIRS_DISTANCES = ("cosine", "euclidean", "squared_euclidean")
SEMIHARD_NOTES = "Ordered positive pairs, nearest farther negative else farthest; NaN without a positive pair."
NPAIRS_NOTES = ("Softmax cross-entropy of each anchor's logits (the porter's [B, B] anchors x positives matrix: "
                "cosine similarity, or -distance) against targets spread over the positives of its class{sets}; "
                "mean over anchors; in the logits' dtype.")
GRAPH_NOTES = " Run as a graph with its gradient, as Keras's fit does (reduce_retracing: the batch size unknown)."
HARD_NOTES = "Mean over every anchor (hp = 0 without a positive); soft = log1p(exp(hp - hn))."
LIFTED_NOTES = ("Per positive pair, [log(sum of e^(m - d) over both rows' negatives) + d]+^2 / 2, mean over positive "
                "pairs; L2 of the raw rows; NaN without a positive pair, with one class, and past a nearest negative "
                "of 88.7.")

ADAPTERS = [
    wrap_tensorflow(
        triplet_semihard_loss,
        name="tfa.triplet_semihard_loss",
        spec=semihard_specs(METRICS),
        dtypes=DTYPES,
        notes=SEMIHARD_NOTES + " Run eagerly.",
        source=SOURCE + "triplet.py",
        requires=REQUIRES,
        precision="gram",
        compute_dtype=HALF_IN_FLOAT32,
    ),
    wrap_tensorflow(
        triplet_hard_loss,
        name="tfa.triplet_hard_loss",
        spec=hard_specs(METRICS),
        dtypes=DTYPES,
        notes=HARD_NOTES + " Run eagerly.",
        source=SOURCE + "triplet.py",
        requires=REQUIRES,
        precision="gram",
        compute_dtype=HALF_IN_FLOAT32,
    ),
    wrap_tensorflow(
        lifted_struct_loss,
        name="tfa.lifted_struct_loss",
        spec=lifted_specs((1.0, 0.2)),
        dtypes=DTYPES,
        notes=LIFTED_NOTES + " Run eagerly.",
        source=SOURCE + "lifted.py",
        requires=REQUIRES,
        precision="gram",
        compute_dtype=HALF_IN_FLOAT32,
    ),
    wrap_tensorflow(
        npairs_loss,
        name="tfa.npairs_loss",
        spec=npairs_specs("npairs", NPAIRS_DISTANCES),
        dtypes=DTYPES,
        notes=NPAIRS_NOTES.format(sets="") + " Run eagerly.",
        source=SOURCE + "npairs.py",
        requires=REQUIRES,
    ),
    wrap_tensorflow(
        npairs_multilabel_loss,
        name="tfa.npairs_multilabel_loss",
        spec=npairs_specs("npairs_multilabel", NPAIRS_DISTANCES),
        dtypes=DTYPES,
        notes=NPAIRS_NOTES.format(sets=" (weighted by the classes shared)") + " Run eagerly.",
        source=SOURCE + "npairs.py",
        requires=REQUIRES,
    ),
    wrap_tensorflow(
        contrastive_loss,
        name="tfa.contrastive_loss",
        spec=[
            Spec(mining="contrastive", distance=d, margin=1.0, reduction=reduction, empty=empty)
            for d in ("euclidean", "cosine")
            for reduction, empty in (("mean", "nan"), ("sum", "zero"))
        ],
        dtypes=DTYPES,
        notes="contrastive_loss(y = same label, d = TF-Addons pair distance) over every pair i < j; mean over "
        "pairs (NaN with none) or sum.",
        source=SOURCE + "contrastive.py, metric_learning.py",
        requires=REQUIRES,
        precision="gram",
    ),
    wrap_tensorflow(
        triplet_semihard_loss,
        name="tfa.triplet_semihard_loss (graph)",
        spec=semihard_specs(["euclidean"]),
        notes=SEMIHARD_NOTES + GRAPH_NOTES,
        source=SOURCE + "triplet.py",
        requires=REQUIRES,
        precision="gram",
        graph=True,
    ),
    wrap_tensorflow(
        triplet_hard_loss,
        name="tfa.triplet_hard_loss (graph)",
        spec=Spec(mining="batch_hard", distance="euclidean", margin=1.0),
        notes=HARD_NOTES + GRAPH_NOTES,
        source=SOURCE + "triplet.py",
        requires=REQUIRES,
        precision="gram",
        graph=True,
    ),
    wrap_tensorflow(
        lifted_struct_loss,
        name="tfa.lifted_struct_loss (graph)",
        spec=lifted_specs((1.0,)),
        notes=LIFTED_NOTES + GRAPH_NOTES,
        source=SOURCE + "lifted.py",
        requires=REQUIRES,
        precision="gram",
        graph=True,
    ),
    wrap_tensorflow(
        npairs_loss,
        name="tfa.npairs_loss (graph)",
        spec=npairs_specs("npairs", ("cosine",)),
        notes=NPAIRS_NOTES.format(sets="") + GRAPH_NOTES,
        source=SOURCE + "npairs.py",
        requires=REQUIRES,
        graph=True,
    ),
    wrap_tensorflow(
        npairs_multilabel_loss,
        name="tfa.npairs_multilabel_loss (graph)",
        spec=npairs_specs("npairs_multilabel", ("cosine",)),
        notes=NPAIRS_NOTES.format(sets=" (weighted by the classes shared)") + GRAPH_NOTES,
        source=SOURCE + "npairs.py",
        requires=REQUIRES,
        graph=True,
    ),
]
