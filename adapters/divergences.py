"""The known-divergence registry: every accepted difference between an implementation and the oracle.

One declarative entry per divergence (jax2tf limitations, PyTorch OpInfo DecorateInfo): which adapter,
spec, dtype, device and quantity it covers (fnmatch patterns), why, and the upstream link. Tests turn a
matching check into a strict xfail, so a fixed upstream bug shows up as an unexpected pass; an entry
that matched nothing in a run is reported as stale.
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

KINDS = ("semantics", "precision", "edge_case", "unsupported")


Patterns = str | tuple[str, ...]  # one fnmatch pattern, or several: any of them matches


@dataclass(frozen=True)
class Divergence:
    id: str
    adapter: Patterns  # on Adapter.name
    kind: str  # one of KINDS
    reason: str
    link: str
    spec: Patterns = "*"  # on str(Spec)
    dtype: Patterns = "*"
    device: Patterns = "*"
    quantity: Patterns = "*"  # "loss", "grad", "edge:<case>" (edge-case record), "property:<name>"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"divergence {self.id}: kind {self.kind!r} not in {KINDS}")

    def covers(self, adapter: str, spec: str, dtype: str, device: str, quantity: str) -> bool:
        return all(
            matches(value, patterns)
            for value, patterns in (
                (adapter, self.adapter),
                (spec, self.spec),
                (dtype, self.dtype),
                (device, self.device),
                (quantity, self.quantity),
            )
        )


def alternatives(patterns: Patterns) -> tuple[str, ...]:
    return (patterns,) if isinstance(patterns, str) else tuple(patterns)


def matches(value: str, patterns: Patterns) -> bool:
    return any(fnmatchcase(value, p) for p in alternatives(patterns))


def in_words(patterns: Patterns) -> str:
    return " or ".join(alternatives(patterns))


# `quantity` of a divergence that shows in the conformance cells ("loss" and "grad") but not as every
# edge-case record ("edge:<case>").
CONFORMANCE = "[lg]*"

# Each entry is confirmed by the test named in tests/adapters/test_adapter_registry.py::CONFIRMED_BY.
REGISTRY: tuple[Divergence, ...] = (
    Divergence(
        id="torch-triplet-margin-eps-in-norm",
        adapter="torch.TripletMarginLoss",
        kind="semantics",
        reason="TripletMarginLoss measures ||a - p + eps|| with eps = 1e-6 added to every coordinate of the "
        "difference, so every distance is off by up to eps * sqrt(D) (d(x, x) = eps * sqrt(D), d(a, p) != d(p, a)): "
        "about 1e-6 on the loss, far above float64's tolerance, below float32's; and a near-duplicate pair r apart has "
        "its gradient turned by about eps sqrt(D) / r (2e-3 at r = 9e-4, the regression batch).",
        link="pytorch/pytorch#61538; aten/src/ATen/native/Distance.cpp pairwise_distance",
        dtype="float64",
        quantity=CONFORMANCE,
    ),
    Divergence(
        id="torch-triplet-margin-eps-at-duplicates",
        adapter="torch.TripletMarginLoss",
        kind="semantics",
        reason="The same eps gives a zero-length difference a direction: at a duplicate (anchor, positive) pair "
        "the gradient follows the eps vector, 1 / sqrt(D) per coordinate (0.5 at D = 4, in every dtype), where the "
        "oracle's subgradient is 0. Conformance cells treat a zero distance that carries gradient as ambiguous, so "
        "this shows in the duplicates edge case, and in the conformance cells where a duplicate pair is a positive "
        "in one triplet and a negative in another: the oracle's two terms cancel, torch's eps directions add.",
        link="pytorch/pytorch#61538; aten/src/ATen/native/Distance.cpp pairwise_distance",
        quantity=("edge:duplicates", "grad"),
    ),
    Divergence(
        id="seed001-one-class-batch-raises",
        adapter="seed001.MarginRankingLoss-hard",
        kind="edge_case",
        reason="Seed 001 takes min() over each anchor's other-class distances; in a batch of one class that set is "
        "empty and torch raises RuntimeError (min of an empty tensor) where batch_hard falls back to the farthest "
        "point and gives the margin.",
        link="WilliamYWY/TripletLoss-note README, 'Hard Triplet loss' (seed 001)",
        quantity="edge:no_negative",
    ),
    Divergence(
        id="seed001-one-class-batch-raises-in-conformance",
        adapter="seed001.MarginRankingLoss-hard",
        kind="edge_case",
        reason="The same RuntimeError inside the conformance cells: about one drawn batch in five is a single class "
        "(6 of 30 in every cell, measured with the harness's strategy).",
        link="WilliamYWY/TripletLoss-note README, 'Hard Triplet loss' (seed 001)",
        quantity=CONFORMANCE,
    ),
    Divergence(
        id="quaterion-fallback-reads-the-cdist-diagonal",
        adapter="quaterion.TripletLoss(hard)",
        kind="precision",
        reason="Without a negative, Quaterion's hn is min over the row of d + rowmax * same_label = rowmax + d(a, a). "
        "torch.cdist's Gram expansion (more than 25 rows) leaves d(a, a) up to 3.9e-3 in float32, so a one-class "
        "batch of 40 gives 0.49990 instead of the margin 0.5 (float64 shows it only far from the origin: 2.2e-7 at "
        "offset 100). Exact in the direct kernel (25 rows or fewer). The conformance cells meet it on the one-class "
        "regression batch of 40 rows (tests/support/batches.py).",
        link="qdrant/quaterion quaterion/loss/triplet_loss.py (mining='hard'); pytorch/pytorch#57690, #123082",
        dtype="float32",
        quantity=("edge:no_negative", "loss"),
    ),
    Divergence(
        id="quaterion-fallback-reads-the-cdist-diagonal-off-the-origin",
        adapter="quaterion.TripletLoss(hard)",
        kind="precision",
        reason="The same diagonal in float64: translating a tight one-class batch of 40 rows (spread 0.03) by 8 per "
        "coordinate moves d(a, a) to about 1e-6 and the loss by 7e-7, beyond float64's tolerance, so the loss is "
        "not translation invariant (the property check, run in float64, on the regression batch).",
        link="qdrant/quaterion quaterion/loss/triplet_loss.py (mining='hard'); pytorch/pytorch#57690, #123082",
        spec="batch_hard euclidean *",
        dtype="float64",
        quantity="property:translation",
    ),
    Divergence(
        id="quaterion-fallback-reads-the-cosine-diagonal",
        adapter="quaterion.TripletLoss(hard)",
        kind="precision",
        reason="The same fallback under cosine in float64: 1 - cos of a row with itself rounds to about 1e-16, and "
        "when mean(hn) is itself tiny (two nearly parallel rows of one class, 1 - cos = 1.8e-13) the scaled loss "
        "divides that rounding by it: 0.49938 instead of the margin 0.5.",
        link="qdrant/quaterion quaterion/loss/triplet_loss.py (mining='hard'); Quaterion's cosine distance",
        spec="batch_hard cosine *",
        dtype="float64",
        quantity="loss",
    ),
    Divergence(
        id="masked-minimum-ties-at-the-row-maximum",
        adapter=("torch.cdist-batch-hard", "quaterion.TripletLoss(hard)"),
        kind="semantics",
        reason="hn = min over the row of d + rowmax * same_label, the anchor's own column included (TF-Addons' "
        "masked-minimum trick in torch). When the nearest negative is also the farthest point of the row, the "
        "anchor's own entry d(a, a) + rowmax = rowmax ties with it; torch's min() takes the first, the anchor's "
        "column, so dL/dhn reaches d(a, a) (zero gradient) and whichever point max() picked for rowmax, possibly a "
        "positive: the loss is right, the gradient is not (2-D anchor (1, 0), positives (0, 1) and (0.96, 0.28), "
        "negative (0, -1): the negative gets no gradient).",
        link="qdrant/quaterion quaterion/loss/triplet_loss.py (mining='hard'); "
        "tensorflow/addons tensorflow_addons/losses/triplet.py _masked_minimum",
        spec="batch_hard *",
        quantity="grad",
    ),
    Divergence(
        id="tfa-hard-loss-gradient-split-at-a-tied-row-maximum",
        adapter="tfa.triplet_hard_loss*",
        kind="semantics",
        reason="triplet_hard_loss finds the nearest negative as min((d - rowmax) * mask) + rowmax. When that negative "
        "is the farthest point of its row, (d_an - rowmax) * 1 = 0 ties with every masked-out 0, and when another "
        "entry shares the row maximum (a positive at the same distance) reduce_max/reduce_min share the gradient "
        "among the ties: the loss is right, the gradient is not (1-D anchor 0 with points 1.5, 0.25 and negative "
        "-1.5: squared-L2 gradient [-0.9375, 0.46875, 0, 0.46875] against [-1.5, 0.75, 0, 0.75]). Drawn batches reach "
        "it through near-duplicate points of different classes (1-2 in 30 squared-L2 examples, float32); the "
        "regression batches of tests/support/batches.py reach it in every cell.",
        link="tensorflow/addons tensorflow_addons/losses/triplet.py _masked_minimum, triplet_hard_loss",
        spec="batch_hard *",
        dtype=("float32", "float16"),
        quantity="grad",
    ),
    Divergence(
        id="tfa-hard-loss-gradient-split-at-a-tied-row-maximum-bfloat16",
        adapter="tfa.triplet_hard_loss*",
        kind="semantics",
        reason="The same split in bfloat16 shows with the hinge only: under softplus the gradient moves by about "
        "0.09, inside bfloat16's gradient tolerance of 0.1.",
        link="tensorflow/addons tensorflow_addons/losses/triplet.py _masked_minimum, triplet_hard_loss",
        spec="batch_hard *euclidean m=*",
        dtype="bfloat16",
        quantity="grad",
    ),
    Divergence(
        id="tfa-soft-hard-loss-overflows",
        adapter="tfa.triplet_hard_loss",
        kind="precision",
        reason="soft=True computes log1p(exp(hp - hn)) in float32 (float16/bfloat16 are upcast): above hp - hn = 88.7 "
        "exp overflows, the loss is inf and the gradient NaN, where softplus is finite (the oracle: 28.06 on a "
        "4-point squared-L2 batch). Squared distances reach that on ordinary batches (1 in 30 drawn examples).",
        link="tensorflow/addons tensorflow_addons/losses/triplet.py triplet_hard_loss (soft branch)",
        spec="batch_hard squared_euclidean soft *",
        quantity=CONFORMANCE,
    ),
    Divergence(
        id="tfa-contrastive-float16-sum-overflows",
        adapter="tfa.contrastive_loss",
        kind="precision",
        reason="contrastive_loss reduces in the input's dtype (no upcast, unlike the triplet losses): in float16 the "
        "sum of the pairs' terms overflows at 65504 even where their mean is well inside the range (20 points 5 "
        "apart in one class: mean 1750, loss inf). Hypothesis meets it on wide batches of 60 rows.",
        link="tensorflow/addons tensorflow_addons/losses/metric_learning.py contrastive_loss (reduce_mean in float16)",
        spec="contrastive euclidean * mean *",
        dtype="float16",
        quantity="loss",
    ),
    Divergence(
        id="tfa-triplet-float64-rejected",
        adapter="tfa.triplet_*",
        kind="unsupported",
        reason="TF-Addons' triplet losses hard-code float32 (tf.cast(..., tf.float32) masks, tf.ones in "
        "pairwise_distance and the loss): float64 embeddings raise InvalidArgumentError eagerly and TypeError in a "
        "graph. Only float16/bfloat16 are upcast (PR #1683).",
        link="tensorflow/addons tensorflow_addons/losses/triplet.py, metric_learning.py; PR #1683",
        dtype="float64",
    ),
    Divergence(
        id="tfa-pairwise-distance-float64-rejected",
        adapter="tfa.contrastive_loss",
        kind="unsupported",
        reason="contrastive_loss itself keeps float64, but TF-Addons' pairwise_distance (L2) multiplies by float32 "
        "masks and raises for float64; angular_distance has no such cast, so cosine works in float64.",
        link="tensorflow/addons tensorflow_addons/losses/metric_learning.py pairwise_distance",
        spec="contrastive euclidean *",
        dtype="float64",
    ),
)


def matching(adapter: str, spec: str, dtype: str, device: str, quantity: str) -> list[Divergence]:
    return [d for d in REGISTRY if d.covers(adapter, spec, dtype, device, quantity)]
