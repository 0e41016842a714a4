"""sentence-transformers: `BatchHardTripletLoss`, `BatchHardSoftMarginTripletLoss`, `BatchAllTripletLoss` and
`BatchSemiHardTripletLoss`, with the distances of `BatchHardTripletLossDistanceFunction`.

Read from the installed 6.2.0 wheel, sentence_transformers/sentence_transformer/losses/
{batch_hard_triplet,batch_hard_soft_margin_triplet,batch_all_triplet,batch_semi_hard_triplet}.py (UKPLab/
sentence-transformers; on master 85ec645, 5.2.0.dev0, the same classes live in sentence_transformers/losses/
Batch*TripletLoss.py). Each loss is an nn.Module(model, distance_metric, margin=5); the adapters call its
`compute_loss_from_embeddings([embeddings], labels)`, the method `forward` calls once the model has embedded
the batch, with model=None. What each one is (tests/adapters/test_adapter_sentence_transformers.py):

  * distances: `euclidean_distance` by the Gram expansion |a|^2 - 2 a.b + |b|^2 (diagonal exactly 0), negatives
    set to 0, then sqrt(d + 1e-16 * [d == 0]) * [d != 0]: value 0 and gradient 0 at distance 0;
    `euclidean_distance(e, squared=True)` stops before the sqrt; `cosine_distance` = 1 - cos_sim (F.normalize,
    eps 1e-12), not clamped at 0. float16/bfloat16 embeddings are upcast to float32 for the euclidean distances
    (autocast disabled); the cosine distances stay in the input dtype. Every loss then multiplies by a float32
    mask, so for float16/bfloat16 the loss comes back as float32: the adapters cast it to the input dtype.
  * BatchHardTripletLoss = batch_hard, anchors all (hp = 0 without a positive; without a negative hn = the row
    maximum, from adding the row maximum to masked entries), relu(hp - hn + m), mean over every anchor.
  * BatchHardSoftMarginTripletLoss = the same with softplus(hp - hn) (F.softplus: no overflow).
  * BatchAllTripletLoss = batch_all, mean over the terms > 1e-16 (sum / (count + 1e-16)): mean_nonzero, 0 when
    there is none. A term in (0, 1e-16] is summed but not counted; only reachable in float64 with m < 1.
  * BatchSemiHardTripletLoss = semi_hard (TF-Addons semantics, via a stable sort of each row's negatives and
    searchsorted(right=True): the nearest negative strictly farther than d_ap, else the farthest negative by
    TF-Addons' masked maximum, else the row minimum), mean over ordered positive pairs with the count clamped at
    1e-16: 0 without a positive pair (empty = zero; 5.x divided by the bare count and gave NaN).

Known differences (registry entries proposed in the issue's report; each has a named test): the masked-minimum
tie at the row maximum (batch hard, hinge and soft: the loss is right, the gradient is not), and, on exact
ties only, the gradient at a term exactly at the hinge (batch all counts it in the gradient but not in the
mean; semi-hard gives it half the slope, torch.max(x, 0) splitting a tie).
"""
from __future__ import annotations

from reference import LOGIT_SCALES, Spec

from contract.family import Family
from .wrap import wrap_torch

FAMILY = Family(module="sentence_transformers", library="sentence-transformers", source="UKPLab/sentence-transformers",
                prefix="st.", requires=("sentence-transformers",), cuda=True, migration=2,
                benchmarks=("sentence-transformers",))

SOURCE = "UKPLab/sentence-transformers sentence_transformers/sentence_transformer/losses/"
REQUIRES = ("sentence_transformers",)
DTYPES = ("float64", "float32", "float16", "bfloat16")
# One margin per distance: sentence-transformers' default 5 for the euclidean distances; cosine distances lie
# in [0, 2], where 5 would keep every hinge open, so 0.5 there.
MARGINS = {"euclidean": 5.0, "squared_euclidean": 5.0, "cosine": 0.5}


def _losses():
    """The losses module: sentence_transformer.losses (6.x), else the older sentence_transformers.losses."""
    try:
        from sentence_transformers.sentence_transformer import losses
    except ImportError:
        from sentence_transformers import losses
    return losses


def distance_metric(spec):
    """The `BatchHardTripletLossDistanceFunction` function users pass as `distance_metric` for `spec.distance`."""
    functions = _losses().BatchHardTripletLossDistanceFunction
    if spec.distance == "cosine":
        return functions.cosine_distance
    if spec.distance == "squared_euclidean":
        return lambda embeddings: functions.euclidean_distance(embeddings, squared=True)
    return functions.euclidean_distance


def _in_input_dtype(loss, embeddings):
    """The losses return float32 for float16/bfloat16 embeddings (a float32 mask multiplies the distances)."""
    return loss.to(embeddings.dtype)


def batch_hard_triplet_loss(embeddings, labels, spec):
    loss = _losses().BatchHardTripletLoss(None, distance_metric=distance_metric(spec), margin=spec.margin)
    return _in_input_dtype(loss.compute_loss_from_embeddings([embeddings], labels), embeddings)


def batch_hard_soft_margin_triplet_loss(embeddings, labels, spec):
    loss = _losses().BatchHardSoftMarginTripletLoss(None, distance_metric=distance_metric(spec))
    return _in_input_dtype(loss.compute_loss_from_embeddings([embeddings], labels), embeddings)


def batch_all_triplet_loss(embeddings, labels, spec):
    loss = _losses().BatchAllTripletLoss(None, distance_metric=distance_metric(spec), margin=spec.margin)
    return _in_input_dtype(loss.compute_loss_from_embeddings([embeddings], labels), embeddings)


def batch_semi_hard_triplet_loss(embeddings, labels, spec):
    loss = _losses().BatchSemiHardTripletLoss(None, distance_metric=distance_metric(spec), margin=spec.margin)
    return _in_input_dtype(loss.compute_loss_from_embeddings([embeddings], labels), embeddings)


def _pairs(embeddings):
    """The pairs layout (reference/softmax.py): anchors, then their positives."""
    half = len(embeddings) // 2
    return embeddings[:half], embeddings[half:]


def multiple_negatives_ranking_loss(embeddings, labels, spec):
    """MultipleNegativesRankingLoss(scale = 1 / t), or MultipleNegativesSymmetricRankingLoss for symmetric, on the
    anchors and positives columns; labels are not read."""
    name = "MultipleNegativesSymmetricRankingLoss" if spec.symmetric else "MultipleNegativesRankingLoss"
    loss = getattr(_losses(), name)(None, scale=1.0 / spec.temperature)
    return _in_input_dtype(loss.compute_loss_from_embeddings(list(_pairs(embeddings)), labels), embeddings)


def _given_rows_model():
    """What CachedMultipleNegativesRankingLoss embeds with: a model whose 'sentence_embedding' is the rows it is
    given, so that its mini-batches re-embed our embeddings and its cached gradient flows back to them."""
    import torch

    class Rows(torch.nn.Module):
        def forward(self, features):
            return {**features, "sentence_embedding": features["rows"]}

    return torch.nn.Sequential(Rows())


def cached_multiple_negatives_ranking_loss(embeddings, labels, spec):
    """CachedMultipleNegativesRankingLoss(scale = 1 / t, mini_batch_size=2): GradCache, the gradient computed in
    mini-batches of two rows against the whole batch's similarities. Its gradient reaches the rows only through the
    hook loss.backward() runs (training's call), not through autograd.grad: it is taken by backward() on a copy of
    the rows and handed on as the gradient of a surrogate with the loss's value."""
    rows = embeddings.detach().requires_grad_(True)
    anchors, positives = _pairs(rows)
    loss = _losses().CachedMultipleNegativesRankingLoss(_given_rows_model(), scale=1.0 / spec.temperature,
                                                        mini_batch_size=2)([{"rows": anchors}, {"rows": positives}],
                                                                           labels)
    loss.backward()
    linear = (embeddings * rows.grad).sum()
    return _in_input_dtype(loss.detach() + linear - linear.detach(), embeddings)


def specs(**fields):
    return [Spec(distance=d, margin=m, **fields) for d, m in MARGINS.items()]


def soft_specs():
    return [Spec(mining="batch_hard", distance=d, soft=True) for d in MARGINS]


def st_adapter(fn, name, spec, notes, source, precision="gram"):
    """precision: "gram" where the loss measures by euclidean_distance (the Gram expansion), else "direct"."""
    return wrap_torch(
        fn,
        name=name,
        spec=spec,
        dtypes=DTYPES,
        targets=("cpu", "cuda"),
        notes=notes + " float16/bfloat16: the loss comes back as float32 and is cast to the input dtype.",
        source=SOURCE + source,
        requires=REQUIRES,
        precision=precision,
        free_fields=LOGIT_SCALES,  # the scale is 1 / spec.temperature
    )


def multiple_negatives_specs(symmetric=False):
    """scale 20 (its default) and 1, cos_sim (its default) on the unit rows: cosine."""
    return [Spec(mining="multiple_negatives", distance="cosine", temperature=t, symmetric=symmetric)
            for t in (0.05, 1.0)]


MNRL_NOTES = ("Per anchor, cross-entropy of scale x cos(anchor, every positive) against its own positive (in-batch "
              "negatives; labels not read); mean over anchors.")
ADAPTERS = [
    st_adapter(
        batch_hard_triplet_loss,
        "st.BatchHardTripletLoss",
        specs(mining="batch_hard"),
        "Hardest positive (0 without one) and nearest negative (row maximum without one) per anchor, relu, mean "
        "over every anchor; euclidean by the Gram expansion, cosine = 1 - cos unclamped.",
        "batch_hard_triplet.py",
    ),
    st_adapter(
        batch_hard_soft_margin_triplet_loss,
        "st.BatchHardSoftMarginTripletLoss",
        soft_specs(),
        "BatchHardTripletLoss's mining with softplus(hp - hn) (F.softplus), mean over every anchor.",
        "batch_hard_soft_margin_triplet.py",
    ),
    st_adapter(
        batch_all_triplet_loss,
        "st.BatchAllTripletLoss",
        specs(mining="batch_all", reduction="mean_nonzero"),
        "Every valid triplet, relu, sum / (number of terms > 1e-16 + 1e-16): mean over the non-zero terms, 0 "
        "when none.",
        "batch_all_triplet.py",
    ),
    st_adapter(
        batch_semi_hard_triplet_loss,
        "st.BatchSemiHardTripletLoss",
        specs(mining="semi_hard"),
        "TF-Addons' semi-hard by sort + searchsorted: per ordered positive pair the nearest negative strictly "
        "farther, else the farthest; mean over ordered positive pairs, 0 (not NaN) without one.",
        "batch_semi_hard_triplet.py",
    ),
    st_adapter(
        multiple_negatives_ranking_loss,
        "st.MultipleNegativesRankingLoss",
        multiple_negatives_specs(),
        MNRL_NOTES,
        "multiple_negatives_ranking.py",
        precision="direct",  # cos_sim: unit rows and one matmul
    ),
    st_adapter(
        multiple_negatives_ranking_loss,
        "st.MultipleNegativesSymmetricRankingLoss",
        multiple_negatives_specs(symmetric=True),
        MNRL_NOTES + " Symmetric (deprecated in 6.x: MNRL with directions query_to_doc and doc_to_query, "
        "per_direction): half of it per positive against every anchor.",
        "multiple_negatives_symmetric_ranking.py",
        precision="direct",  # cos_sim: unit rows and one matmul
    ),
    st_adapter(
        cached_multiple_negatives_ranking_loss,
        "st.CachedMultipleNegativesRankingLoss",
        multiple_negatives_specs(),
        MNRL_NOTES + " GradCache: mini-batches of two rows, each re-embedded (by a model that returns the given "
        "rows) with the cached gradient of the whole batch's loss.",
        "cached_multiple_negatives_ranking.py",
        precision="direct",  # cos_sim: unit rows and one matmul
    ),
]
