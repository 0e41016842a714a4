"""Quaterion 0.1.35 (its last release; qdrant/quaterion): the real `TripletLoss`, not the suite's re-derivation
of its formula (adapters/seeds.py, "seed003.quaterion-formula(hard)").

Source: quaterion/loss/triplet_loss.py (TripletLoss(margin=0.5, distance_metric_name=Distance.COSINE,
mining="hard", soft=False)), quaterion/distances/{cosine,euclidean}.py, quaterion/utils/utils.py; identical in
the 0.1.35 wheel and on master db4f455. What each configuration is (tests/adapters/test_adapter_quaterion.py):

  * distances: "euclidean" is torch.cdist(x, x) (the direct kernel up to 25 rows, the Gram expansion above);
    "cosine" is 1 - (cos + 1) / 2 = (1 - cos) / 2, half the suite's cosine, not clamped.
  * mining="hard" = batch_hard scaled: hp = max(mask_pos * d) (0 without a positive), hn = min(d + rowmax *
    [same label]) (the row maximum plus d(a, a) without a negative), relu((hp - hn) / mean(hn) + m), mean over
    every anchor; 0/0 = NaN at exact collapse. The factor 1/2 of Quaterion's cosine cancels in the ratio, so
    cosine is the suite's cosine here.
  * mining="hard", soft=True = batch_hard soft: softplus(hp - hn), no margin, no division. Euclidean only: with
    Quaterion's cosine it is softplus((hp - hn) / 2) in the suite's units, no vocabulary value today.
  * mining="all" = batch_all mean_nonzero: relu over every valid triplet, sum / (number of terms > 1e-16 +
    1e-16); `soft` is ignored. Euclidean only: with Quaterion's cosine it is half the suite's batch_all at
    margin 2m.
  * mining="semi_hard" is no vocabulary value (not claimed): every same-label pair (i, j) *including i == j*
    against every different-label pair (k, l) of any anchors, min(relu(d_ij - d_kl + m), m), mean over all
    those combinations; NaN in a batch of one class. Shown in the tests; a new mining value is proposed.

Installation: quaterion 0.1.35 declares python < 3.11 and its package __init__ imports its trainer
(pytorch_lightning < 2, quaterion_models) and its dataset module, which imports `T_co` from
torch.utils.data.dataloader, absent in torch 2.13, so `import quaterion` fails with torch 2.13 whatever the
Python. The loss modules themselves (quaterion.loss, .distances, .utils) import torch and tqdm only. The tox
environment `quaterion` installs the wheel with --no-deps past its Python bound, and this module imports the
loss modules under a package entry whose __init__ is not run (`triplet_loss_module`), unless the process has
already imported `quaterion` itself. The code that runs is Quaterion's, unmodified.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import sys

from reference import Spec

from contract.family import Family
from .wrap import Unavailable, wrap_torch

FAMILY = Family(module="quaterion", library="Quaterion", source="qdrant/quaterion", prefix="quaterion.",
                requires=("quaterion",), cuda=True, migration=5)

SOURCE = "qdrant/quaterion quaterion/loss/triplet_loss.py (0.1.35)"
MARGIN = 0.5  # Quaterion's default


def triplet_loss_module():
    """quaterion.loss.triplet_loss, imported without running quaterion/__init__.py (see the module docstring).
    Raises ImportError when quaterion is not installed."""
    if "quaterion" not in sys.modules:
        found = importlib.util.find_spec("quaterion")
        if found is None or not found.submodule_search_locations:
            raise ImportError("No module named 'quaterion'")
        package = importlib.util.module_from_spec(importlib.machinery.ModuleSpec("quaterion", None, is_package=True))
        package.__path__ = list(found.submodule_search_locations)
        package.__file__ = None
        sys.modules["quaterion"] = package
    return importlib.import_module("quaterion.loss.triplet_loss")


def missing() -> str | None:
    """Why Quaterion's loss modules cannot be imported here, else None."""
    try:
        triplet_loss_module()
    except ImportError as exc:
        return f"quaterion is not installed ({type(exc).__name__}: {exc})"
    return None


def version() -> str:
    try:
        number = importlib.metadata.version("quaterion")
    except importlib.metadata.PackageNotFoundError:
        number = "unknown"
    return f"quaterion {number} (loss modules; package __init__ not run)"


def triplet_loss(mining: str, soft: bool = False):
    """fn(embeddings, labels, spec) running quaterion's TripletLoss(mining, soft) with `spec`'s margin and distance."""

    def loss(embeddings, labels, spec):
        module = triplet_loss_module()
        margin = MARGIN if spec.soft else spec.margin
        criterion = module.TripletLoss(margin=margin, distance_metric_name=spec.distance, mining=mining, soft=soft)
        return criterion(embeddings, labels)

    return loss


def quaterion_adapter(name, fn, spec, notes):
    wrapped = wrap_torch(
        fn,
        name=name,
        spec=spec,
        dtypes=("float64", "float32"),
        targets=("cpu", "cuda"),
        notes=notes + " float16/bfloat16 not claimed: torch.cdist has no CPU kernel for them.",
        source=SOURCE,
        precision="gram",  # torch.cdist: the Gram expansion above 25 rows
    )

    def available(device: str | None = None) -> str | None:
        return missing() or wrapped.available(device)

    def run(embeddings, labels, spec, dtype, device, triplets=None):
        reason = missing()
        if reason:
            raise Unavailable(f"adapter {name!r}: {reason}")
        output = wrapped.run(embeddings, labels, spec, dtype, device, triplets)
        return dataclasses.replace(output, version=f"{output.version} + {version()}")

    return dataclasses.replace(wrapped, available=available, run=run)


ADAPTERS = [
    quaterion_adapter(
        'quaterion.TripletLoss(mining="hard")',
        triplet_loss("hard"),
        [Spec(mining="batch_hard", distance=d, margin=MARGIN, scaled=True) for d in ("euclidean", "cosine")],
        "Collapse prevention [(hp - hn) / mean(hn) + m]+ over every anchor, default margin 0.5; NaN at exact "
        "collapse. Quaterion's cosine is (1 - cos) / 2, which the ratio cancels.",
    ),
    quaterion_adapter(
        'quaterion.TripletLoss(mining="hard", soft=True)',
        triplet_loss("hard", soft=True),
        Spec(mining="batch_hard", distance="euclidean", soft=True),
        "softplus(hp - hn) over every anchor, no margin, no division (euclidean: with Quaterion's cosine the "
        "argument is halved).",
    ),
    quaterion_adapter(
        'quaterion.TripletLoss(mining="all")',
        triplet_loss("all"),
        Spec(mining="batch_all", distance="euclidean", margin=MARGIN, reduction="mean_nonzero"),
        "Every valid triplet, relu, sum / (number of terms > 1e-16 + 1e-16); soft is ignored (euclidean: with "
        "Quaterion's cosine it is half of batch_all at margin 2m).",
    ),
]
