"""The facts of docs/migration-from-tf-addons.md: per TF-Addons call, per library, the closest configuration as one
line of code, the verdict, what differs in words, and the evidence (the adapter whose claim the conformance run
confirms, or the test that shows the difference). reports/migration_doc.py renders them and checks every verdict
against the adapters' claims and the registry; the words come from the adapters' docstrings, docs/upstream/ and the
upstream sources they cite.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from reference import MARGIN_MININGS, Spec

# "same except": claimed up to what a batch without a unit gives, or with registered divergences;
# "no equivalent": the library has no such loss (a line, where given, builds it from its parts, unchecked).
VERDICTS = ("same", "same except", "differs", "no equivalent")
# Adapters announced and not in the catalogue yet (pml.NPairsLoss was, until it landed): a row naming one renders
# "not checked by the suite yet" instead of its verdict. The one tolerance of the evidence check, so that a row can be
# written before its adapter; tests/report fail once a name listed here is in the catalogue.
PENDING: tuple[str, ...] = ()


@dataclass(frozen=True)
class Call:
    """A TF-Addons loss as a porter calls it, and what it computes in the suite's vocabulary."""

    key: str  # the section's name, e.g. "TripletSemiHardLoss"
    adapter: str  # the TF-Addons adapter that checks it (adapters/tfa.py)
    code: str  # the Keras class as a porter writes it
    function: str  # the functional form, the same loss
    spec: Spec  # what `code` computes: one of the adapter's claims
    variants: tuple[str, ...]  # the Spec fields in which the adapter's other claims for this call differ
    inputs: str = ""  # what the call takes, where it is not (labels, embeddings)


@dataclass(frozen=True)
class Row:
    """The closest configuration of one library for one call."""

    call: str  # Call.key
    library: str  # the family's library (contract/family.py)
    verdict: str  # one of VERDICTS
    code: str | None  # one line; None only where there is no equivalent to write
    words: str  # what differs (for "same": how to call it)
    evidence: str | None = None  # the adapter whose nearest claim backs or shows the verdict
    shown_by: str | None = None  # a test that shows the difference: tests/<file>.py::<test>
    miner: str | None = None  # a PML miner the loss takes as loss(x, y, miner(x, y))

    def __post_init__(self) -> None:
        where = f"migration row {self.call} / {self.library}"
        if self.verdict not in VERDICTS:
            raise ValueError(f"{where}: verdict {self.verdict!r} not in {VERDICTS}")
        for line in (self.code, self.miner):
            if line is not None and (not line.strip() or "\n" in line):
                raise ValueError(f"{where}: a code line must be one non-empty line, got {line!r}")
        if self.code is None and self.verdict != "no equivalent":
            raise ValueError(f"{where}: only 'no equivalent' may leave the code out")
        if self.verdict in ("same", "same except") and self.evidence is None:
            raise ValueError(f"{where}: {self.verdict!r} must name the adapter whose claim backs it")
        if self.verdict != "same" and not self.words.strip():
            raise ValueError(f"{where}: say in words what differs")


def spec_code(spec: Spec) -> str:
    """`spec` as its constructor: mining, the margin where the loss takes one, and every field off its default."""
    default, takes_margin = Spec(), spec.mining in MARGIN_MININGS and not spec.soft
    shown = [f for f in fields(Spec) if (takes_margin if f.name == "margin" else
                                         f.name == "mining" or getattr(spec, f.name) != getattr(default, f.name))]
    return "Spec(" + ", ".join(f"{f.name}={getattr(spec, f.name)!r}" for f in shown).replace("'", '"') + ")"


# The imports the lines assume, per library (the families' `library`).
IMPORTS = {
    "TF-Similarity": "import tensorflow_similarity as tfsim",
    "sentence-transformers": "import sentence_transformers",
    "pytorch-metric-learning": "from pytorch_metric_learning import distances, losses, miners",
    "PyTorch": "import torch; import torch.nn.functional as F",
    "Quaterion": "from quaterion.distances import Distance; import quaterion.loss",
    "in-house (this suite)": "from inhouse.torch_losses import metric_loss; from reference import Spec",
}

SEMIHARD = Spec(mining="semi_hard", margin=1.0, empty="nan")
HARD = Spec(mining="batch_hard", margin=1.0)
SOFT = Spec(mining="batch_hard", soft=True)
LIFTED = Spec(mining="lifted", margin=1.0, empty="nan")
CONTRASTIVE = Spec(mining="contrastive", margin=1.0, empty="nan")
NPAIRS = Spec(mining="npairs", distance="cosine")
NPAIRS_MULTILABEL = Spec(mining="npairs_multilabel", distance="cosine")

LOGITS = ("y_pred: the [B, B] logits anchors @ positives.T of L2-normalised rows (tf.math.l2_normalize): the cosine "
          "similarity; the suite also passes -distance")
CALLS = (
    Call("TripletSemiHardLoss", "tfa.triplet_semihard_loss", 'tfa.losses.TripletSemiHardLoss(margin=1.0, '
         'distance_metric="L2")', 'tfa.losses.triplet_semihard_loss(y_true, y_pred, margin=1.0, distance_metric="L2")',
         SEMIHARD, ("distance",)),
    Call("TripletHardLoss", "tfa.triplet_hard_loss", 'tfa.losses.TripletHardLoss(margin=1.0, distance_metric="L2")',
         'tfa.losses.triplet_hard_loss(y_true, y_pred, margin=1.0, distance_metric="L2")', HARD, ("distance",)),
    Call("TripletHardLoss(soft=True)", "tfa.triplet_hard_loss", 'tfa.losses.TripletHardLoss(soft=True, '
         'distance_metric="L2")', 'tfa.losses.triplet_hard_loss(y_true, y_pred, soft=True, distance_metric="L2")',
         SOFT, ("distance",)),
    Call("LiftedStructLoss", "tfa.lifted_struct_loss", "tfa.losses.LiftedStructLoss(margin=1.0)",
         "tfa.losses.lifted_struct_loss(labels, embeddings, margin=1.0)", LIFTED, ("margin",)),
    Call("ContrastiveLoss", "tfa.contrastive_loss", "tfa.losses.ContrastiveLoss(margin=1.0)",
         "tfa.losses.contrastive_loss(y_true, y_pred, margin=1.0)", CONTRASTIVE, ("distance", "reduction", "empty"),
         "y_true: 1 for a similar pair; y_pred: the pairs' distances. The suite passes every pair i < j of the batch, "
         "y = same label, TF-Addons' own pairwise distances; the class averages (mean), the function gives the terms "
         "(the suite also sums them)"),
    Call("NpairsLoss", "tfa.npairs_loss", "tfa.losses.NpairsLoss()", "tfa.losses.npairs_loss(y_true, y_pred)",
         NPAIRS, ("distance",), "y_true: the B pairs' labels; " + LOGITS),
    Call("NpairsMultilabelLoss", "tfa.npairs_multilabel_loss", "tfa.losses.NpairsMultilabelLoss()",
         "tfa.losses.npairs_multilabel_loss(y_true, y_pred)", NPAIRS_MULTILABEL, ("distance",),
         "y_true: the B pairs' classes as a [B, C] 0/1 matrix; " + LOGITS),
)

TFSIM, ST, PML, TORCH, QUATERION = ("TF-Similarity", "sentence-transformers", "pytorch-metric-learning", "PyTorch",
                                    "Quaterion")
TFSIM_HARD = 'tfsim.TripletLoss(positive="hard", negative="hard")'
TFSIM_LINE = ('tfsim.losses.TripletLoss(distance="euclidean", positive_mining_strategy="hard", '
              'negative_mining_strategy="{negative}", margin={margin})')
TFSIM_SAME_EXCEPT = ("euclidean runs in float32 only; an anchor without a positive (negative) reads the row minimum "
                     "- 1e-6 (maximum + 1e-6), visible in float64")
ST_DISTANCE = "distance_metric=sentence_transformers.losses.BatchHardTripletLossDistanceFunction.euclidean_distance"
ST_CALL = ("model: your SentenceTransformer; on embeddings you have, loss.compute_loss_from_embeddings([embeddings], "
           "labels)")
ST_TIES = ("the gradient where a negative ties the row maximum (the masked minimum's fallback takes it) and, at such a "
           "tie, on the row order; Gram-expansion distances")
PML_L2 = "distances.LpDistance(normalize_embeddings=False)"
TORCH_MASKS = ("d = torch.cdist(x, x); same = y[:, None] == y[None, :]; hp = torch.where(same & ~torch.eye(len(y), "
               "dtype=torch.bool), d, 0).amax(1); hn = torch.where(same, d.amax(1, keepdim=True), d).amin(1); ")
TORCH_TIES = ("no loss class: the line is the suite's torch.cdist-batch-hard (adapters/torch_native.py); the gradient "
              "where a negative ties the row maximum; torch.cdist is the Gram expansion above 25 rows")
PAIRS = "x = torch.cat([anchors, positives]), y = torch.cat([labels, labels])"
HALF_THE_TERM = ("half of TF-Addons' term: 0.5 (y d^2 + (1 - y)[m - d]+^2) (x 2 gives it), d by {distance} (1e-6 added "
                 "to the difference: d(x, x) = 1e-6 sqrt(D)); mean over the pairs given")
ONE_PAIR_PER_CLASS = ("the same only when every pair has its own class: labels are not read, and another pair of the "
                      "same class counts as a negative (TF-Addons spreads the target over the class's positives)")

ROWS = (
    # TripletSemiHardLoss: the NOT_EQUIVALENT facts of the earlier document are its "differs" rows.
    Row("TripletSemiHardLoss", TFSIM, "differs", TFSIM_LINE.format(negative="semi-hard", margin=1.0),
        "one term per anchor, the threshold its hardest positive's distance, mean over anchors, finite without a "
        "positive pair: TF-Addons' semi_hard takes one term per ordered positive pair; they agree only when every "
        "class has two members",
        shown_by="tests/adapters/test_adapter_tf_similarity.py::test_semi_hard_is_not_tf_addons_semi_hard"),
    Row("TripletSemiHardLoss", ST, "same except",
        f"sentence_transformers.losses.BatchSemiHardTripletLoss(model, {ST_DISTANCE}, margin=1.0)",
        f"0 instead of NaN without a positive pair; distances by the Gram expansion; {ST_CALL}",
        evidence="st.BatchSemiHardTripletLoss"),
    Row("TripletSemiHardLoss", PML, "differs", f"losses.TripletMarginLoss(margin=1.0, distance={PML_L2})",
        "every triplet with 0 < d_an - d_ap <= m (semi_hard_all), mean over the non-zero terms: not one nearest "
        "farther negative per positive pair", evidence="pml.TripletMarginLoss+TripletMarginMiner(semihard)",
        shown_by="tests/adapters/test_adapter_pml.py::test_semihard_miner_window_is_inclusive_at_the_margin",
        miner=f'miners.TripletMarginMiner(margin=1.0, type_of_triplets="semihard", distance={PML_L2})'),
    Row("TripletSemiHardLoss", TORCH, "no equivalent", "torch.nn.TripletMarginLoss(margin=1.0)",
        "takes (anchor, positive, negative) rows you mine yourself, mean over them; its distance adds 1e-6 to the "
        "difference (d(x, x) = 1e-6 sqrt(D))", evidence="torch.TripletMarginLoss"),
    Row("TripletSemiHardLoss", QUATERION, "differs",
        'quaterion.loss.TripletLoss(margin=1.0, distance_metric_name=Distance.EUCLIDEAN, mining="semi_hard")',
        "every same-label pair (a == p included) against every different-label pair of any anchor, clamped at m",
        shown_by="tests/adapters/test_adapter_quaterion.py::test_semi_hard_is_no_vocabulary_mining"),
    # TripletHardLoss
    Row("TripletHardLoss", TFSIM, "same except", TFSIM_LINE.format(negative="hard", margin=1.0), TFSIM_SAME_EXCEPT,
        evidence=TFSIM_HARD),
    Row("TripletHardLoss", ST, "same except",
        f"sentence_transformers.losses.BatchHardTripletLoss(model, {ST_DISTANCE}, margin=1.0)", f"{ST_TIES}; {ST_CALL}",
        evidence="st.BatchHardTripletLoss"),
    Row("TripletHardLoss", PML, "differs", f"losses.TripletMarginLoss(margin=1.0, distance={PML_L2})",
        "anchors without a positive or a negative are left out (BatchHardMiner), and the mean is over the non-zero "
        "terms (AvgNonZeroReducer; reducer=reducers.MeanReducer() gives the mean over the mined anchors, unchecked)",
        evidence="pml.TripletMarginLoss+BatchHardMiner", miner=f"miners.BatchHardMiner(distance={PML_L2})"),
    Row("TripletHardLoss", TORCH, "same except", TORCH_MASKS + "loss = torch.relu(hp - hn + 1.0).mean()", TORCH_TIES,
        evidence="torch.cdist-batch-hard"),
    Row("TripletHardLoss", QUATERION, "differs",
        'quaterion.loss.TripletLoss(margin=1.0, distance_metric_name=Distance.EUCLIDEAN, mining="hard")',
        "[(hp - hn) / mean(hn) + m]+: the difference divided by the batch's mean hardest-negative distance (collapse "
        "prevention), NaN at exact collapse; no unscaled hinge", evidence='quaterion.TripletLoss(mining="hard")'),
    # TripletHardLoss(soft=True)
    Row("TripletHardLoss(soft=True)", TFSIM, "same except", TFSIM_LINE.format(negative="hard", margin=None),
        TFSIM_SAME_EXCEPT + "; log(exp(-x) + 1) + x overflows to inf for x = hp - hn < -88.7 in float32",
        evidence=TFSIM_HARD),
    Row("TripletHardLoss(soft=True)", ST, "same except",
        f"sentence_transformers.losses.BatchHardSoftMarginTripletLoss(model, {ST_DISTANCE})", f"{ST_TIES}; {ST_CALL}",
        evidence="st.BatchHardSoftMarginTripletLoss"),
    Row("TripletHardLoss(soft=True)", PML, "differs",
        f"losses.TripletMarginLoss(margin=0.0, smooth_loss=True, distance={PML_L2})",
        "softplus(d_ap - d_an) over the anchors with a positive and a negative only (BatchHardMiner); the suite checks "
        "smooth_loss=True without a miner (every triplet), not with it",
        miner=f"miners.BatchHardMiner(distance={PML_L2})",
        shown_by="tests/adapters/test_adapter_pml.py::test_batch_hard_miner_drops_anchors_without_a_positive"),
    Row("TripletHardLoss(soft=True)", TORCH, "same except",
        TORCH_MASKS + "loss = F.softplus(hp - hn).mean()", TORCH_TIES, evidence="torch.cdist-batch-hard"),
    Row("TripletHardLoss(soft=True)", QUATERION, "same except",
        'quaterion.loss.TripletLoss(distance_metric_name=Distance.EUCLIDEAN, mining="hard", soft=True)',
        "the gradient where a negative ties the row maximum and, at such a tie, on the row order; euclidean only "
        "(with Quaterion's cosine the argument is halved); call loss(embeddings, labels)",
        evidence='quaterion.TripletLoss(mining="hard", soft=True)'),
    # LiftedStructLoss
    Row("LiftedStructLoss", TFSIM, "no equivalent", None,
        "no lifted loss in 0.17.1, its last release (master, unreleased, has a LiftedStructLoss)"),
    Row("LiftedStructLoss", ST, "no equivalent", None, "no lifted structured loss"),
    Row("LiftedStructLoss", PML, "same except",
        f"losses.LiftedStructureLoss(neg_margin=1.0, pos_margin=0.0, distance={PML_L2})",
        "0 instead of NaN without a positive pair, and 0 (the spec) where TF-Addons gives NaN with one class; the "
        "margin is neg_margin - pos_margin; its default distance normalises the rows; a dense [positive pairs x "
        "negative pairs] mask: O(N^4) memory", evidence="pml.LiftedStructureLoss"),
    Row("LiftedStructLoss", TORCH, "no equivalent", None, "no lifted structured loss in torch"),
    Row("LiftedStructLoss", QUATERION, "no equivalent", None, "no lifted structured loss"),
    # ContrastiveLoss
    Row("ContrastiveLoss", TFSIM, "no equivalent", None, "no contrastive (Hadsell) loss in 0.17.1"),
    Row("ContrastiveLoss", ST, "differs",
        "sentence_transformers.losses.ContrastiveLoss(model, distance_metric=sentence_transformers.losses."
        "SiameseDistanceMetric.EUCLIDEAN, margin=1.0)",
        HALF_THE_TERM.format(distance="F.pairwise_distance") + "; labels 1 for a similar pair, as TF-Addons' y_true"),
    Row("ContrastiveLoss", PML, "differs", f"losses.ContrastiveLoss(pos_margin=0.0, neg_margin=1.0, distance={PML_L2})",
        "relu(d - pos_margin) over positive pairs and relu(neg_margin - d) over negative pairs, unsquared, over "
        "ordered pairs, each set averaged over its non-zero terms and the two means added",
        shown_by="tests/adapters/test_adapter_pml.py::test_contrastive_loss_maps_onto_no_spec"),
    Row("ContrastiveLoss", TORCH, "no equivalent",
        "d = torch.pdist(x); same = (torch.pdist(y[:, None].double()) == 0).double(); "
        "loss = (same * d**2 + (1 - same) * torch.relu(1.0 - d)**2).mean()",
        "no such loss class (HingeEmbeddingLoss leaves both terms unsquared); the line is TF-Addons' formula over "
        "every pair i < j, unchecked by the suite"),
    Row("ContrastiveLoss", QUATERION, "differs",
        "quaterion.loss.ContrastiveLoss(distance_metric_name=Distance.EUCLIDEAN, margin=1.0)",
        HALF_THE_TERM.format(distance="torch.pairwise_distance")
        + " (pairs by index); with more than one subgroup it adds a nearest-negative term"),
    # NpairsLoss: TF-Addons takes the logits; the libraries below build them from anchors and positives.
    Row("NpairsLoss", TFSIM, "differs", 'tfsim.losses.MultiNegativesRankLoss(distance="inner_product", scale=1.0)',
        ONE_PAIR_PER_CLASS + "; call loss(anchors, positives) on L2-normalised rows (its inner product is then the "
        "cosine); not checked by the suite"),
    Row("NpairsLoss", ST, "differs", "sentence_transformers.losses.MultipleNegativesRankingLoss(model, scale=1.0, "
        "similarity_fct=sentence_transformers.util.cos_sim)",
        ONE_PAIR_PER_CLASS + "; scale=1.0 (its default 20 multiplies the logits); the suite checks it as "
        "multiple_negatives, which is npairs where every pair has a class of its own",
        evidence="st.MultipleNegativesRankingLoss"),
    Row("NpairsLoss", PML, "same except", "losses.NPairsLoss()",
        "cosine (its DotProductSimilarity normalises the rows); only the first pair of each class: the same when every "
        f"pair has its own class; {PAIRS}, call loss(x, y)", evidence="pml.NPairsLoss"),
    Row("NpairsLoss", TORCH, "no equivalent", "logits = F.normalize(a) @ F.normalize(p).T; same = (y[:, None] == "
        "y[None, :]).float(); loss = F.cross_entropy(logits, same / same.sum(1, keepdim=True))",
        "no N-pairs loss class; the line is TF-Addons' formula (cross-entropy against class-probability targets), "
        "unchecked by the suite; with every pair its own class, F.cross_entropy(logits, torch.arange(len(a)))"),
    Row("NpairsLoss", QUATERION, "differs", "quaterion.loss.MultipleNegativesRankingLoss(scale=2.0, "
        "distance_metric_name=Distance.COSINE)",
        ONE_PAIR_PER_CLASS + "; scale=2.0: its cosine similarity is (1 + cos) / 2; not checked by the suite"),
    # NpairsMultilabelLoss
    Row("NpairsMultilabelLoss", TFSIM, "no equivalent", None, "no multilabel N-pairs loss"),
    Row("NpairsMultilabelLoss", ST, "no equivalent", None, "no multilabel N-pairs loss"),
    Row("NpairsMultilabelLoss", PML, "no equivalent", None, "no multilabel N-pairs loss (NPairsLoss takes one class "
        "per row)"),
    Row("NpairsMultilabelLoss", TORCH, "no equivalent", "logits = F.normalize(a) @ F.normalize(p).T; shared = "
        "(c @ c.T).float(); loss = F.cross_entropy(logits, shared / shared.sum(1, keepdim=True))",
        "no such loss class; the line is TF-Addons' formula (c: the [B, C] 0/1 classes), unchecked by the suite; a "
        "pair without a class gives NaN, as in TF-Addons"),
    Row("NpairsMultilabelLoss", QUATERION, "no equivalent", None, "no multilabel N-pairs loss"),
)

# The in-house rows: the suite's own implementation of each call's spec, by the entry point users call.
INHOUSE = "in-house (this suite)"
INHOUSE_HOW = {
    "ContrastiveLoss": "every pair i < j of the batch with y = same label, as the suite passes them to TF-Addons",
    "NpairsLoss": "embeddings = torch.cat([anchors, positives]), labels = torch.cat([y, y]): each pair's label on "
                  "both rows",
    "NpairsMultilabelLoss": "embeddings = torch.cat([anchors, positives]), labels = torch.cat([c, c]): each "
                            "pair's [B, C] 0/1 classes on both rows (or their bit masks)",
}
ROWS += tuple(
    Row(call.key, INHOUSE, "same", f"metric_loss(embeddings, labels, {spec_code(call.spec)})",
        INHOUSE_HOW.get(call.key, "any device; float16 and bfloat16 computed in float32"), evidence="inhouse.torch")
    for call in CALLS
)
