"""Our own implementations (inhouse/): the vectorised torch losses and the fused Triton kernels.

* `inhouse.torch` implements every spec of the vocabulary. `ADAPTERS` claims `COVERING_SPECS`, a set in
  which every value of every field occurs in several combinations; `THOROUGH` is the same adapter claiming
  `ALL_SPECS`, the full product (margins 0.2 and 1.0): `pytest --adapter adapters.inhouse:THOROUGH`.
* `inhouse.triton` runs the fused kernels for batch_hard and batch_all (every form of each). The kernels do
  NOT cover semi_hard, semi_hard_all, triplets or contrastive: use `inhouse.torch` for those. Without a GPU
  they run under Triton's interpreter on the CPU (slow: `TRITON` claims `TRITON_SPECS`, a few specs in which
  every field value occurs, so that CI stays fast; `THOROUGH` claims `TRITON_ALL_SPECS`); the output's
  target says so. With a GPU visible the kernels are compiled for CUDA, and the interpreter is not used.
* Both claim cpu, cuda and cuda-tf32 (float32 only), float64, float32, float16 and bfloat16 (half precision
  computed in float32), and
  have no entries in the divergence registry.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import os
import sys

from contract.adapter import HALF_IN_FLOAT32
from contract.family import Family
from contract.targets import target as target_facts
from reference import (
    ANCHORS,
    ANCHORS_MININGS,
    MARGIN_MININGS,
    DISTANCES,
    EMPTIES,
    LOGIT_SCALES,
    LOSSES,
    MININGS,
    REDUCTIONS,
    SCALED_MININGS,
    SOFT_MININGS,
    SYMMETRIC_MININGS,
    TEMPERATURE_MININGS,
    Spec,
)

from .wrap import Unavailable, wrap_torch

FAMILY = Family(module="inhouse", library="in-house (this suite)", source="inhouse/ in this repository",
                prefix="inhouse.", cuda=True, gpu=True, migration=6, benchmarks=("inhouse.torch", "inhouse.triton"))

TARGETS = ("cpu", "cuda", "cuda-tf32")  # cuda-tf32: float32 cells only (contract/targets.py)
MARGINS = (0.2, 1.0)
TEMPERATURES = (0.05, 1.0)  # sentence-transformers' scale 20, and 1
# the similarity family's scales: PML's defaults (the authors' and TF-Similarity's beta 40), and a milder set
SIMILARITY_FORMS = {
    "multi_similarity": ({}, {"alpha": 1.0, "beta": 10.0, "base": 0.0}),
    "multi_similarity_mined": ({"margin": 0.1}, {"margin": 0.1, "beta": 40.0}, {"margin": 0.3, "alpha": 1.0, "base": 0.2}),
    "circle": ({"margin": 0.4}, {"margin": 0.25, "gamma": 256.0}, {"margin": 0.4, "gamma": 16.0}),
}


def _forms(mining: str) -> list[dict]:
    """The term's forms a mining allows: hinge at each margin, soft, scaled; no margin where it takes none; each
    temperature, symmetric or not, for the softmax family."""
    if mining in SIMILARITY_FORMS:
        return list(SIMILARITY_FORMS[mining])
    forms = [{"margin": m} for m in MARGINS] if mining in MARGIN_MININGS else [{}]
    if mining in TEMPERATURE_MININGS:
        forms = [{"temperature": t} for t in TEMPERATURES]
    if mining in SYMMETRIC_MININGS:
        forms += [{**form, "symmetric": True} for form in forms]
    if mining in SOFT_MININGS:
        forms.append({"soft": True})
    if mining in SCALED_MININGS:
        forms += [{"scaled": True, "margin": m} for m in MARGINS]
    return forms


def _variants(mining: str) -> list[dict]:
    anchors = ANCHORS if mining in ANCHORS_MININGS else ("all",)
    return [{**form, "anchors": a} for form in _forms(mining) for a in anchors]


# The losses inhouse/strategies.py implements (its STRATEGIES; without importing torch here), in the records' order: a
# loss of reference/losses.py need not have one; tests/inhouse/test_inhouse_torch.py keeps the two lists equal.
IMPLEMENTED = tuple(mining for mining in MININGS if mining in (
    "batch_all", "batch_hard", "semi_hard", "semi_hard_all", "triplets", "contrastive", "lifted", "npairs",
    "npairs_multilabel", "multiple_negatives", "ntxent", "simclr", "supcon", "multi_similarity", "multi_similarity_mined",
    "circle"))
ALL_SPECS = tuple(
    Spec(mining=mining, distance=distance, normalize=normalize, reduction=reduction, empty=empty, **variant)
    for mining in IMPLEMENTED
    for variant in _variants(mining)
    for distance, normalize, reduction, empty in itertools.product(DISTANCES, (False, True), REDUCTIONS, EMPTIES)
    if distance in LOSSES[mining].distances
)


def _covering(per_variant: int = 2) -> tuple[Spec, ...]:
    """For each mining variant, `per_variant` specs that step through the other fields at co-prime strides,
    so each distance, normalize, reduction and empty value meets many minings and forms."""
    specs = []
    for index, (mining, variant) in enumerate((m, v) for m in IMPLEMENTED for v in _variants(m)):
        accepted = LOSSES[mining].distances  # the similarity family: cosine only
        for k in range(per_variant):
            step = index * per_variant + k
            specs.append(
                Spec(
                    mining=mining,
                    distance=DISTANCES[step % 3] if DISTANCES[step % 3] in accepted else accepted[step % len(accepted)],
                    normalize=bool(step % 2),
                    reduction=REDUCTIONS[(step // 2) % 3],
                    empty=EMPTIES[(step // 3) % 2],
                    **variant,
                )
            )
    return tuple(specs)


COVERING_SPECS = _covering()


# what the harness's rounding model needs to know: half precision is computed in float32

def inhouse_torch_loss(embeddings, labels, triplets=None, spec=None):
    from inhouse.torch_losses import metric_loss

    return metric_loss(embeddings, labels, spec, triplets)


_TORCH_NOTES = (
    "Vectorised torch, any device, O(N^2) memory: Gram expansion of the re-centred batch with near pairs "
    "recomputed from differences; semi_hard / batch_all / semi_hard_all by sorting each anchor's negatives "
    "and searchsorted. float16/bfloat16 are computed in float32. Claims {claimed}; every spec is implemented "
    "(adapters.inhouse:THOROUGH claims all {total})."
)


def _torch_adapter(specs: tuple[Spec, ...]):
    adapter = wrap_torch(
        inhouse_torch_loss,
        name="inhouse.torch",
        spec=list(specs),
        dtypes=("float64", "float32", "float16", "bfloat16"),
        targets=TARGETS,
        notes=_TORCH_NOTES.format(claimed=f"a covering set of {len(specs)} specs" if specs != ALL_SPECS
                                  else "the full product", total=len(ALL_SPECS)),
        source="inhouse/torch_losses.py",
        free_fields=LOGIT_SCALES,
    )
    return dataclasses.replace(adapter, compute_dtype=HALF_IN_FLOAT32)


# --- the Triton kernels ------------------------------------------------------------------------------------

TRITON_MININGS = ("batch_hard", "batch_all")
TRITON_NOT_COVERED = tuple(m for m in IMPLEMENTED if m not in TRITON_MININGS)

# Under the interpreter every call is slow, so the default claim is a few specs in which every value of every
# field of both minings occurs; TRITON_ALL_SPECS (adapters.inhouse:THOROUGH) is everything they implement.
TRITON_SPECS = (
    Spec(mining="batch_hard", distance="euclidean", margin=1.0),  # TF-Addons triplet_hard_loss
    Spec(mining="batch_hard", distance="euclidean", margin=0.2, anchors="valid", reduction="mean_nonzero"),  # pml
    Spec(mining="batch_hard", distance="cosine", soft=True, reduction="sum"),
    Spec(mining="batch_hard", distance="squared_euclidean", normalize=True, scaled=True, margin=0.2,
         anchors="valid", reduction="mean_nonzero", empty="nan"),
    Spec(mining="batch_all", distance="euclidean", normalize=True, margin=0.2, reduction="mean_nonzero"),
    Spec(mining="batch_all", distance="squared_euclidean", soft=True, empty="nan"),
    Spec(mining="batch_all", distance="cosine", margin=1.0, reduction="sum"),
)
TRITON_ALL_SPECS = tuple(s for s in ALL_SPECS if s.mining in TRITON_MININGS)

_TRITON_NOTES = (
    "Fused Triton kernels for batch_hard (hinge, soft, scaled; both anchors) and batch_all (hinge and soft), every "
    "distance, normalize, reduction and empty; float16/bfloat16 are computed in float32. Tiles by the Gram "
    "expansion of the re-centred batch, with each entry's error bounded: near pairs are measured from differences, "
    "batch_hard anchors whose choice the bounds cannot decide are mined again from differences, and batch_all's "
    "sum is kept in float64, so no precision widening is declared. Not covered by the kernels: {not_covered} "
    "(inhouse.torch has them). Claims {claimed}. Without a GPU they run under Triton's interpreter on the CPU (the "
    "target says so)."
)


def _interpreted() -> bool | str:
    """Whether the kernels run under Triton's interpreter in this process (a query: nothing is set), or why they
    cannot run at all. Without a GPU they must be interpreted, and Triton reads TRITON_INTERPRET when kernels are
    defined, its own library kernels included: `_kernels` sets it before it first imports triton."""
    try:
        import torch
    except ImportError as exc:
        return f"torch is not installed ({type(exc).__name__}: {exc})"
    if importlib.util.find_spec("triton") is None:  # looked up, not imported: importing it fixes the mode
        return "triton is not installed"
    if os.environ.get("TRITON_INTERPRET") == "1":
        return True
    if torch.cuda.is_available():
        return False
    if "triton" in sys.modules:
        return "triton was imported before TRITON_INTERPRET=1 was set: set it in the environment to run the kernels on the CPU"
    return True


def interpret_triton_without_a_gpu() -> None:
    """Switch Triton's interpreter on for this process where no GPU is visible, before anything imports triton.
    Triton reads TRITON_INTERPRET once, at its import, and other libraries import it early (sentence-transformers
    does): after that the in-house kernels could not run here at all, and every inhouse.triton cell would skip.
    A value the user set is left alone."""
    if "TRITON_INTERPRET" not in os.environ and _interpreted() is True:
        os.environ["TRITON_INTERPRET"] = "1"


def _kernels():
    """inhouse.triton_kernels, with Triton's interpreter switched on first where no GPU is visible (_interpreted)."""
    if _interpreted() is True and "triton" not in sys.modules:
        os.environ["TRITON_INTERPRET"] = "1"
    from inhouse import triton_kernels

    return triton_kernels


def inhouse_triton_loss(embeddings, labels, spec=None):
    return _kernels().metric_loss(embeddings, labels, spec)


def _triton_adapter(specs: tuple[Spec, ...]):
    wrapped = wrap_torch(
        inhouse_triton_loss,
        name="inhouse.triton",
        spec=list(specs),
        dtypes=("float64", "float32", "float16", "bfloat16"),
        targets=TARGETS,
        notes=_TRITON_NOTES.format(
            not_covered=", ".join(TRITON_NOT_COVERED),
            claimed="every spec they implement" if specs == TRITON_ALL_SPECS
            else f"{len(specs)} specs covering every field value (adapters.inhouse:THOROUGH claims all "
                 f"{len(TRITON_ALL_SPECS)})",
        ),
        source="inhouse/triton_kernels.py",
    )

    def available(device: str | None = None) -> str | None:
        """The wrapper's reasons, and: one process runs the kernels either compiled for CUDA or interpreted."""
        interpreted = _interpreted()
        reason = (interpreted if isinstance(interpreted, str) else None) or wrapped.available(device)
        if reason or device is None:
            return reason
        on_gpu = target_facts(device).device == "cuda"
        if not on_gpu and not interpreted:
            return "a GPU is visible, so the Triton kernels are compiled for CUDA; the interpreter (CPU) is not used"
        if on_gpu and interpreted:
            return "TRITON_INTERPRET=1 is set: the kernels run under the interpreter on the CPU only"
        return None

    def run(embeddings, labels, spec, dtype, device, triplets=None):
        reason = available(device)
        if reason:
            raise Unavailable(f"adapter 'inhouse.triton': {reason}")
        output = wrapped.run(embeddings, labels, spec, dtype, device, triplets)
        output = dataclasses.replace(output, version=f"{output.version} + triton {_kernels().triton.__version__}")
        if _kernels().INTERPRETED:
            output = dataclasses.replace(output, target=f"{output.target} (Triton interpreter)")
        return output

    return dataclasses.replace(wrapped, run=run, available=available, compute_dtype=HALF_IN_FLOAT32)


TRITON = _triton_adapter(TRITON_SPECS)

ADAPTERS = [_torch_adapter(COVERING_SPECS), TRITON]
THOROUGH = [_torch_adapter(ALL_SPECS), _triton_adapter(TRITON_ALL_SPECS)]
