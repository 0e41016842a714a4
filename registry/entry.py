"""One known divergence, as the registry (registry/__init__.py) declares it: which cells it covers (adapter name,
dtype, target and check as fnmatch patterns; the spec by its fields), why, the upstream link, the test that confirms
it, and the regression batches that reach it in every covered cell. The entries live by family in
registry/known_torch.py, known_tf.py, known_tfsim.py and known_distributed.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from contract.batch import Regression
from reference import Scope, Spec, check_scope, in_scope, scope_in_words

KINDS = ("semantics", "precision", "edge_case", "unsupported")


Patterns = str | tuple[str, ...]  # one fnmatch pattern, or several: any of them matches


@dataclass(frozen=True)
class Divergence:
    id: str
    adapter: Patterns  # on Adapter.name
    kind: str  # one of KINDS
    reason: str
    link: str
    confirmed_by: Patterns  # "tests/<path>.py::test_<name>", or several: the tests that show it on a small batch
    spec: Scope = None  # Spec field -> value or tuple of values; None: every spec
    dtype: Patterns = "*"
    target: Patterns = "*"
    check: Patterns = "*"  # the quantity "loss" or "grad", "edge:<case>", "property:<name>", "robustness:<sweep>"
    regressions: tuple[Regression, ...] = ()  # batches that reach it in every cell it covers

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"divergence {self.id}: kind {self.kind!r} not in {KINDS}")
        if not all("::" in test and test.startswith("tests/") for test in alternatives(self.confirmed_by)):
            raise ValueError(f"divergence {self.id}: confirmed_by must name tests as tests/<file>.py::<test>")
        object.__setattr__(self, "spec", dict(self.spec or {}))
        check_scope(self.spec, f"divergence {self.id}")

    def covers(self, adapter: str, spec: Spec, dtype: str, target: str, check: str) -> bool:
        return in_scope(spec, self.spec) and all(
            matches(value, patterns)
            for value, patterns in ((adapter, self.adapter), (dtype, self.dtype), (target, self.target),
                                    (check, self.check))
        )

    def scope_in_words(self) -> str:
        """adapter | spec | dtype | target | check, as a reader reads the scope."""
        return " | ".join([in_words(self.adapter), scope_in_words(self.spec),
                           *(in_words(p) for p in (self.dtype, self.target, self.check))])


def alternatives(patterns: Patterns) -> tuple[str, ...]:
    return (patterns,) if isinstance(patterns, str) else tuple(patterns)


def matches(value: str, patterns: Patterns) -> bool:
    return any(fnmatchcase(value, p) for p in alternatives(patterns))


def in_words(patterns: Patterns) -> str:
    return " or ".join(alternatives(patterns))


# The seed's re-derivation of Quaterion's formula (adapters/seeds.py) and the real library's hard mining, hinge and
# soft (adapters/quaterion.py, its own tox environment): one code path, the same divergences.
QUATERION_FORMULA = "seed003.quaterion-formula(hard)"
QUATERION_HARD = 'quaterion.TripletLoss(mining="hard"*'
SENTENCE_TRANSFORMERS_HARD = "st.BatchHard*TripletLoss"

# `check` of a divergence that shows in the conformance cells ("loss" and "grad") but not as every
# edge-case record ("edge:<case>").
CONFORMANCE = "[lg]*"
