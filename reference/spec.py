"""The vocabulary: one frozen, validated record that says exactly which loss is meant.

Every field is defined in ``docs/design.md`` ("The vocabulary"); the function that
implements a field documents it again next to the code, with its source.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from .losses import DISTANCES, LOSSES, minings_taking

MININGS = tuple(LOSSES)  # one record each: reference/losses.py
REDUCTIONS = ("mean", "mean_nonzero", "sum")
ANCHORS = ("all", "valid")
EMPTIES = ("nan", "zero")

# Which minings a field that is not universal applies to (the records' `takes`); elsewhere it keeps its default.
MARGIN_MININGS = minings_taking("margin")
SOFT_MININGS = minings_taking("soft")
TEMPERATURE_MININGS = minings_taking("temperature")
SYMMETRIC_MININGS = minings_taking("symmetric")
SCALED_MININGS = minings_taking("scaled")
ANCHORS_MININGS = minings_taking("anchors")
# The similarity family's scales (reference/similarity.py): each a finite number (> 0 but base), default PML's
SIMILARITY_SCALES = {"alpha": 2.0, "beta": 50.0, "base": 0.5, "gamma": 80.0}
# The fields that scale a loss's logits: the softmax family's temperature divides its logits -d, the similarity
# family's alpha, beta and gamma multiply its similarities. `Spec.at_temperature` moves them together.
LOGIT_SCALES = ("temperature", "alpha", "beta", "gamma")


class OracleError(ValueError):
    """Bad input to the oracle: the message names the argument and what was expected."""


class SpecError(OracleError):
    """A `Spec` field has a value outside the vocabulary, or fields that do not combine."""


def _choice(field: str, value, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SpecError(f"Spec.{field}={value!r} is not allowed; choose one of {', '.join(allowed)}")


def _only_for(field: str, minings: tuple[str, ...], mining: str) -> None:
    if mining not in minings:
        raise SpecError(
            f"Spec.{field} applies only to mining in ({', '.join(minings)}), not mining={mining!r}"
        )


def _number(field: str, value, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (positive and value <= 0):
        raise SpecError(f"Spec.{field} must be a finite number{' > 0' if positive else ''}, got {value!r}")
    return float(value)


def _short(value: float) -> str:
    """The shortest spelling that still tells this margin from every other one (`:g` keeps 6 digits)."""
    return f"{value:g}" if float(f"{value:g}") == value else repr(value)


@dataclass(frozen=True)
class Spec:
    """A loss in the suite's vocabulary. The defaults are TF-Addons' ``triplet_hard_loss``.

    mining     which terms the loss is made of (``MININGS``)
    distance   euclidean, squared_euclidean, or cosine = 1 - cos clamped at 0 (TF-Addons "angular")
    normalize  L2-normalise every embedding before the distance (pytorch-metric-learning's default)
    margin     m >= 0; ignored, and stored as 0, when ``soft`` is set or the loss takes no margin (N-pairs)
    soft       softplus(d_ap - d_an) instead of the hinge [d_ap - d_an + m]+ (Hermans et al. 2017)
    scaled     batch_hard only: [(hp - hn) / mean(hn) + m]+ (Quaterion's collapse prevention)
    reduction  mean over the strategy's units, mean over non-zero terms only, or sum. mean_nonzero counts the
               terms > 0 in exact arithmetic: a hinge term at exactly 0 is left out, a soft term (softplus > 0
               everywhere) always counts, though a dtype may drop one below its smallest normal number
               (reference/terms.py `reduce`)
    anchors    batch_hard only: average over every anchor, or only anchors with a positive and a negative
    empty      what a batch with no unit at all returns: NaN (TF-Addons semi-hard) or 0
    temperature  tau > 0, the softmax family's (ntxent, simclr, supcon, multiple_negatives): the logits are -d / tau (cosine:
               (cos - 1) / tau, the cosine similarity's softmax at temperature tau; sentence-transformers' scale = 1 / tau)
    symmetric  multiple_negatives only: the mean of the anchors-to-positives and positives-to-anchors cross-entropies
               (sentence-transformers' MultipleNegativesSymmetricRankingLoss)
    alpha, beta, base  multi_similarity(_mined) only: the positive and negative scales and the similarity threshold
               lambda of Wang et al. 2019 eq. 10 (pytorch-metric-learning's defaults 2, 50, 0.5; the authors' and
               TF-Similarity's beta is 40); multi_similarity_mined's margin is the miner's epsilon
    gamma      circle only: the scale of Sun et al. 2020 eq. 6 (80); circle's margin is its relaxation m
    The similarity family (multi_similarity, multi_similarity_mined, circle) reads s = 1 - D, the cosine similarity:
    its records accept the cosine distance only.

    The labels are class ids, one per row; for a loss whose record reads class sets (npairs_multilabel) each is
    a pair's set of classes as a bit mask, bit c set for class c (a [N, C] 0/1 matrix is read as those masks).
    A loss of the pairs layout reads rows 0..B-1 as anchors and row B + i as the positive of anchor i.
    """

    mining: str = "batch_hard"
    distance: str = "euclidean"
    normalize: bool = False
    margin: float = 1.0
    soft: bool = False
    scaled: bool = False
    reduction: str = "mean"
    anchors: str = "all"
    empty: str = "zero"
    temperature: float = 1.0
    symmetric: bool = False
    alpha: float = SIMILARITY_SCALES["alpha"]
    beta: float = SIMILARITY_SCALES["beta"]
    base: float = SIMILARITY_SCALES["base"]
    gamma: float = SIMILARITY_SCALES["gamma"]

    def __post_init__(self) -> None:
        _choice("mining", self.mining, MININGS)
        _choice("distance", self.distance, DISTANCES)
        _choice("reduction", self.reduction, REDUCTIONS)
        _choice("anchors", self.anchors, ANCHORS)
        _choice("empty", self.empty, EMPTIES)
        for flag in ("normalize", "soft", "scaled", "symmetric"):
            if not isinstance(getattr(self, flag), bool):
                raise SpecError(f"Spec.{flag} must be True or False, got {getattr(self, flag)!r}")
        margin = self.margin
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin):
            raise SpecError(f"Spec.margin must be a finite number >= 0, got {margin!r}")
        if margin < 0:
            raise SpecError(f"Spec.margin must be >= 0, got {margin!r}")
        if self.soft:
            _only_for("soft", SOFT_MININGS, self.mining)
        if self.scaled:
            _only_for("scaled", SCALED_MININGS, self.mining)
            if self.soft:
                raise SpecError("Spec.scaled and Spec.soft do not combine: the soft form has no division")
        if self.anchors != "all":
            _only_for("anchors", ANCHORS_MININGS, self.mining)
        temperature = self.temperature
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
                or temperature <= 0:
            raise SpecError(f"Spec.temperature must be a finite number > 0, got {temperature!r}")
        if temperature != 1.0:
            _only_for("temperature", TEMPERATURE_MININGS, self.mining)
        object.__setattr__(self, "temperature", float(temperature))
        if self.symmetric:
            _only_for("symmetric", SYMMETRIC_MININGS, self.mining)
        for name, default in SIMILARITY_SCALES.items():
            value = _number(name, getattr(self, name), positive=name != "base")
            if value != default:
                _only_for(name, minings_taking(name), self.mining)
            object.__setattr__(self, name, value)
        accepted = LOSSES[self.mining].distances
        if self.distance not in accepted:
            raise SpecError(f"mining={self.mining!r} is defined on distance in ({', '.join(accepted)}) only (it reads "
                            f"the cosine similarity s = 1 - D), not distance={self.distance!r}")
        # One spelling per meaning: the margin plays no part in the soft form.
        object.__setattr__(self, "margin", 0.0 if self.soft or self.mining not in MARGIN_MININGS else float(margin))

    def __str__(self) -> str:
        parts = [self.mining, self.distance]
        if self.normalize:
            parts.append("normalized")
        if self.soft:
            parts.append("soft")
        elif self.mining in MARGIN_MININGS:
            parts.append(f"m={_short(self.margin)}")
        if self.scaled:
            parts.append("scaled")
        if self.mining in TEMPERATURE_MININGS:
            parts.append(f"t={_short(self.temperature)}")
        if self.symmetric:
            parts.append("symmetric")
        parts.extend(f"{name}={_short(getattr(self, name))}" for name in SIMILARITY_SCALES
                     if name in LOSSES[self.mining].takes)
        parts.append(self.reduction)
        if self.mining in ANCHORS_MININGS:
            parts.append(f"anchors={self.anchors}")
        parts.append(f"empty={self.empty}")
        return " ".join(parts)

    def to_dict(self) -> dict:
        return asdict(self)

    def at_temperature(self, temperature: float) -> "Spec":
        """The same loss with its logits at `temperature`: the softmax family's temperature, or 1 / temperature for
        each of alpha, beta and gamma the loss takes (the similarity family's scales)."""
        taken = [name for name in LOGIT_SCALES if name in LOSSES[self.mining].takes]
        if not taken:
            raise SpecError(f"mining={self.mining!r} has no logit scale ({', '.join(LOGIT_SCALES)}) to set")
        return Spec(**{**self.to_dict(), **{name: temperature if name == "temperature" else 1.0 / temperature
                                            for name in taken}})

    @classmethod
    def from_dict(cls, data: dict) -> "Spec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown Spec field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)



# A scope: Spec field -> one value or a tuple of values (any of them matches); fields left out match anything.
Scope = dict
_CHOICES = {"mining": MININGS, "distance": DISTANCES, "reduction": REDUCTIONS, "anchors": ANCHORS, "empty": EMPTIES,
            "normalize": (False, True), "soft": (False, True), "scaled": (False, True), "symmetric": (False, True)}


def _values(values) -> tuple:
    return values if isinstance(values, tuple) else (values,)


def check_scope(scope: Scope, where: str) -> None:
    """A scope names Spec fields with values of the vocabulary: a typo would otherwise match nothing, silently."""
    for name, values in scope.items():
        if name in ("margin", "temperature", *SIMILARITY_SCALES):
            bad = [v for v in _values(values) if isinstance(v, bool) or not isinstance(v, (int, float))
                   or (v < 0 and name != "base")]
        elif name in _CHOICES:
            bad = [v for v in _values(values) if v not in _CHOICES[name] or type(v) is not type(_CHOICES[name][0])]
        else:
            raise SpecError(f"{where}: {name!r} is not a Spec field; known: margin, temperature, "
                            f"{', '.join(SIMILARITY_SCALES)}, {', '.join(_CHOICES)}")
        if bad:
            raise SpecError(f"{where}: Spec.{name} has no value {', '.join(map(repr, bad))}")


def in_scope(spec: Spec, scope: Scope) -> bool:
    return all(getattr(spec, name) in _values(values) for name, values in scope.items())


def scope_in_words(scope: Scope) -> str:
    if not scope:
        return "every spec"
    return ", ".join(f"{name}={'|'.join(map(str, _values(values)))}" for name, values in scope.items())
