"""The suite's own mutation zoo: implementations that are wrong on purpose, each in one way a real port goes
wrong, and implementations that are right but written differently. tests/mutants/test_mutation_score.py
runs them all through the public path, `pytest --adapter tests.mutants.zoo:WRONG --adapter
tests.mutants.zoo:RIGHT`: every wrong one must be flagged, every right one must conform. The share that is
flagged is the suite's mutation score, printed in the test summary.

Each is a few lines of torch on distances measured from differences, so that the one mistake named is the
only difference from the spec.
"""
from __future__ import annotations

import torch

import adapters
from reference import Spec

DTYPES = ("float32", "float64")
SEMI_HARD = Spec(mining="semi_hard", margin=1.0, empty="nan")
WINDOW = Spec(mining="semi_hard_all", margin=1.0, reduction="mean")
HARD = Spec(mining="batch_hard", margin=1.0)
COSINE_HARD = Spec(mining="batch_hard", distance="cosine", margin=0.5)
SOFT_HARD = Spec(mining="batch_hard", soft=True)
ALL_NONZERO = Spec(mining="batch_all", margin=1.0, reduction="mean_nonzero")
SOFT_ALL_NONZERO = Spec(mining="batch_all", soft=True, reduction="mean_nonzero")


def distances(x: torch.Tensor) -> torch.Tensor:
    """Euclidean distances from differences; 0 and gradient 0 at distance 0."""
    squared = ((x[:, None, :] - x[None, :, :]) ** 2).sum(dim=-1)
    apart = squared > 0
    return torch.where(apart, torch.where(apart, squared, torch.ones_like(squared)).sqrt(), torch.zeros_like(squared))


def gram_distances(x: torch.Tensor) -> torch.Tensor:
    """Euclidean distances by the Gram expansion |a|^2 + |b|^2 - 2 a.b, in the input's dtype; the NaN of an overflow
    (inf - inf) goes through, as in the libraries' expansions (a mask of d^2 > 0 would read it as a distance 0)."""
    norms = (x * x).sum(dim=1)
    squared = (norms[:, None] + norms[None, :] - 2.0 * x @ x.T).clamp_min(0.0)
    apart = squared != 0
    return torch.where(apart, torch.where(apart, squared, torch.ones_like(squared)).sqrt(), torch.zeros_like(squared))


def denormal_guarded_distances(x: torch.Tensor) -> torch.Tensor:
    """Euclidean distances as sqrt(d^2 + 1e-40), a guard against sqrt's infinite slope at 0 that works in float32
    only while denormals are kept: flushed to zero (FTZ/DAZ), duplicates get 0 * inf = NaN."""
    return (((x[:, None, :] - x[None, :, :]) ** 2).sum(dim=-1) + 1e-40).sqrt()


def tiled_distances(x: torch.Tensor) -> torch.Tensor:
    """From differences below 64 rows, by the Gram expansion from 64 on (a kernel that switches to one matmul at its
    tile size, as torch.cdist does above 25 rows): right on every batch below the switch."""
    return gram_distances(x) if len(x) >= 64 else distances(x)


def gram_in_float32(x: torch.Tensor) -> torch.Tensor:
    """The Gram expansion of half-precision rows computed in float32 (the fix for its overflow above |x| = 256)."""
    return gram_distances(x.float())


def cosine_distances(x: torch.Tensor, epsilon: float = 0.0) -> torch.Tensor:
    """1 - cos between the rows x / sqrt(|x|^2 + epsilon), clamped at 0 (epsilon 0: the unit rows)."""
    norms = ((x * x).sum(dim=1, keepdim=True) + epsilon).sqrt()
    unit = torch.where(norms > 0, x / torch.where(norms > 0, norms, torch.ones_like(norms)), torch.zeros_like(x))
    return (1.0 - unit @ unit.T).clamp_min(0.0)


def masks(labels: torch.Tensor):
    same = labels[:, None] == labels[None, :]
    return same & ~torch.eye(len(labels), dtype=torch.bool), ~same


def hardest(d: torch.Tensor, labels: torch.Tensor):
    """Per anchor: the farthest positive (0 without one), the nearest negative (the row's farthest point
    without one), and which anchors have a positive and a negative."""
    positive, negative = masks(labels)
    hp = torch.where(positive, d, torch.zeros_like(d)).amax(dim=1)
    nearest = torch.where(negative, d, torch.full_like(d, float("inf"))).amin(dim=1)
    hn = torch.where(negative.any(dim=1), nearest, d.amax(dim=1))
    return hp, hn, positive.any(dim=1) & negative.any(dim=1)


def semi_hard_loss(x, labels, spec, farther=torch.gt, fallback_nearest=False, empty_zero=False):
    d = distances(x)
    positive, negative = masks(labels)
    terms = []
    for a, p in positive.nonzero().tolist():
        row = d[a]
        candidates = negative[a] & farther(row, row[p])
        if candidates.any():
            chosen = torch.where(candidates, row, torch.full_like(row, float("inf"))).min()
        elif negative[a].any():
            pick = torch.where(negative[a], row, torch.full_like(row, float("inf" if fallback_nearest else "-inf")))
            chosen = pick.min() if fallback_nearest else pick.max()
        else:
            chosen = torch.zeros((), dtype=x.dtype)
        terms.append(torch.relu(row[p] - chosen + spec.margin))
    if not terms:
        return (x * 0).sum() if empty_zero else (x * 0).sum() / 0
    return torch.stack(terms).mean()


def window_loss(x, labels, spec, lower=torch.gt, upper=torch.le):
    d = distances(x)
    positive, negative = masks(labels)
    excess = d[:, None, :] - d[:, :, None]  # [a, p, n]: d_an - d_ap
    inside = positive[:, :, None] & negative[:, None, :] & lower(excess, 0) & upper(excess, spec.margin)
    terms = torch.relu(spec.margin - excess)[inside]
    return terms.mean() if len(terms) else (x * 0).sum()


def batch_all_loss(x, labels, spec, counted=torch.gt, include_self=False):
    d = distances(x)
    positive, negative = masks(labels)
    if include_self:
        positive = positive | torch.eye(len(labels), dtype=torch.bool)
    valid = positive[:, :, None] & negative[:, None, :]
    excess = d[:, :, None] - d[:, None, :]
    terms = torch.nn.functional.softplus(excess) if spec.soft else torch.relu(excess + spec.margin)
    count = (valid & counted(terms, 0)).sum()
    return torch.where(valid, terms, torch.zeros_like(terms)).sum() / count.clamp_min(1)


def batch_hard_loss(x, labels, spec, measure=distances, valid_only=False, detach_positive=False, naive_soft=False):
    hp, hn, valid = hardest(measure(x), labels)
    if detach_positive:
        hp = hp.detach()
    excess = hp - hn
    if spec.soft:
        terms = torch.log(1 + torch.exp(excess)) if naive_soft else torch.nn.functional.softplus(excess)
    else:
        terms = torch.relu(excess + spec.margin)
    return terms[valid].mean() if valid_only else terms.mean()


def contrastive_half(x, labels, spec):
    d = distances(x)
    same = labels[:, None] == labels[None, :]
    upper = torch.ones_like(same).triu(diagonal=1)
    terms = torch.where(same, d**2, torch.relu(spec.margin - d) ** 2) / 2
    return terms[upper].mean()


def semi_hard_masked(x, labels, spec):
    """semi_hard as TF-Addons writes it, masks and masked minima over [a, p, n], not a loop."""
    d = distances(x)
    positive, negative = masks(labels)
    farther = negative[:, None, :] & (d[:, None, :] > d[:, :, None])  # [a, p, n]
    inf = torch.full_like(farther, float("inf"), dtype=x.dtype)
    nearest_farther = torch.where(farther, d[:, None, :], inf).amin(dim=2)
    farthest = torch.where(negative, d, torch.full_like(d, float("-inf"))).amax(dim=1)
    fallback = torch.where(negative.any(dim=1), farthest, torch.zeros_like(farthest))[:, None].expand_as(d)
    chosen = torch.where(farther.any(dim=2), nearest_farther, fallback)
    terms = torch.relu(d - chosen + spec.margin)[positive]
    return terms.mean() if len(terms) else (x * 0).sum() / 0


def wrong(fn, name: str, spec: Spec, mistake: str, dtypes=DTYPES, **declared):
    return adapters.wrap_torch(lambda x, y: fn(x, y, spec), name=f"zoo.wrong.{name}", spec=spec, dtypes=dtypes,
                               notes=f"wrong on purpose: {mistake}", source="tests/mutants/zoo.py", **declared)


def right(fn, name: str, spec: Spec, how: str, dtypes=DTYPES, **declared):
    return adapters.wrap_torch(lambda x, y: fn(x, y, spec), name=f"zoo.right.{name}", spec=spec, dtypes=dtypes,
                               notes=f"right, written differently: {how}", source="tests/mutants/zoo.py", **declared)


WRONG = [
    wrong(lambda x, y, s: semi_hard_loss(x, y, s, farther=torch.ge), "semi-hard-ge", SEMI_HARD,
          "selects the semi-hard negative with d_an >= d_ap instead of >"),
    wrong(lambda x, y, s: semi_hard_loss(x, y, s, fallback_nearest=True), "semi-hard-fallback-nearest", SEMI_HARD,
          "without a farther negative takes the nearest negative, not the farthest"),
    wrong(lambda x, y, s: semi_hard_loss(x, y, s, empty_zero=True), "semi-hard-empty-zero", SEMI_HARD,
          "returns 0 for a batch without a positive pair, where the spec (empty=nan) says NaN"),
    wrong(lambda x, y, s: window_loss(x, y, s, lower=torch.ge), "window-lower-inclusive", WINDOW,
          "semi_hard_all window 0 <= d_an - d_ap instead of 0 <"),
    wrong(lambda x, y, s: window_loss(x, y, s, upper=torch.lt), "window-upper-exclusive", WINDOW,
          "semi_hard_all window d_an - d_ap < m instead of <= m"),
    wrong(lambda x, y, s: batch_all_loss(x, y, s, counted=torch.ge), "mean-nonzero-counts-zeros", ALL_NONZERO,
          "mean_nonzero counts the terms >= 0 instead of > 0"),
    wrong(lambda x, y, s: batch_all_loss(x, y, s, counted=lambda terms, _: terms > 1e-16), "soft-count-above-1e-16",
          SOFT_ALL_NONZERO, "counts the soft terms > 1e-16 (omoindrot's and Quaterion's count): drops terms the dtype "
          "holds as normal numbers"),
    wrong(lambda x, y, s: batch_all_loss(x, y, s, include_self=True), "batch-all-anchor-as-positive", ALL_NONZERO,
          "counts the anchor as its own positive (a == p)"),
    wrong(lambda x, y, s: batch_hard_loss(x, y, s, valid_only=True), "batch-hard-valid-anchors", HARD,
          "averages over the anchors with a positive and a negative, but claims anchors=all"),
    wrong(lambda x, y, s: batch_hard_loss(x, y, s, detach_positive=True), "batch-hard-detached-positive", HARD,
          "detaches the hardest positive: the loss is right, the gradient is not"),
    wrong(lambda x, y, s: batch_hard_loss(x, y, s, naive_soft=True), "soft-log1p-exp", SOFT_HARD,
          "soft margin as log(1 + exp(hp - hn)): inf in float32 once hp - hn > 88.7", dtypes=("float32",)),
    wrong(lambda x, y, s: batch_hard_loss(x, y, s, measure=gram_distances), "gram-float16-undeclared", HARD,
          "the Gram expansion in float16 without declaring it", dtypes=("float16",)),
    wrong(lambda x, y, s: batch_hard_loss(x, y, s, measure=gram_distances), "gram-float16-overflows", HARD,
          "the Gram expansion computed in float16, declared (precision='gram'): |x|^2 overflows above |x| = 256, where "
          "every distance may be small", dtypes=("float16",), precision="gram"),
    wrong(lambda x, y, s: batch_hard_loss(x, y, s, measure=tiled_distances), "gram-from-64-rows-undeclared", HARD,
          "switches to the Gram expansion at 64 rows without declaring it: right below, lost far from the origin "
          "above"),
    wrong(lambda x, y, s: batch_hard_loss(x, y, s, measure=lambda z: cosine_distances(z, 1e-10)), "normalise-epsilon",
          COSINE_HARD, "normalises by sqrt(|x|^2 + 1e-10): right for rows of norm 1e-2 and beyond, 0.5% short at 1e-4",
          dtypes=("float32",)),
    wrong(lambda x, y, s: batch_hard_loss(x, y, s, measure=denormal_guarded_distances), "denormal-guard", HARD,
          "guards sqrt at distance 0 with a float32 denormal: right on this machine, NaN where denormals are "
          "flushed"),
    wrong(contrastive_half, "contrastive-half", Spec(mining="contrastive", margin=1.0),
          "halves every term (the 1/2 of some papers), which the spec (TF-Addons) has not"),
]

RIGHT = [
    right(semi_hard_loss, "semi-hard-loop", SEMI_HARD, "a Python loop over the positive pairs"),
    right(semi_hard_masked, "semi-hard-masked", SEMI_HARD, "masked minima over an [a, p, n] tensor"),
    right(window_loss, "window-enumerated", WINDOW, "every valid triplet enumerated, the window as a mask"),
    right(batch_all_loss, "batch-all-masked", ALL_NONZERO, "an [a, p, n] mask and the count of terms > 0"),
    right(batch_all_loss, "soft-batch-all-masked", SOFT_ALL_NONZERO,
          "softplus over an [a, p, n] mask, the count of terms > 0 (a term float32 rounds to 0 drops out)"),
    right(batch_hard_loss, "batch-hard-masked", HARD, "masked max and min over differences"),
    right(batch_hard_loss, "soft-softplus", SOFT_HARD, "torch's softplus, stable for large arguments"),
    right(lambda x, y, s: batch_hard_loss(x, y, s, measure=gram_in_float32).to(x.dtype), "gram-float16-in-float32",
          HARD,
          "the Gram expansion of float16 rows computed in float32, declared (precision='gram', compute_dtype)",
          dtypes=("float16",), precision="gram", compute_dtype={"float16": "float32"}),
]
