"""Test-only adapters: the oracle itself, and deliberately broken variants of it.

Never part of the default run (adapters.catalog() does not list them). The meta tests check that the
harness passes the oracle in every dtype and fails each broken variant with the right reason; a
subprocess run can select them with `--adapter tests.fake_adapters:ORACLES` (from the repository root).
FAULT_ZOO (tests/faults) is every way an adapter can misbehave, plus the oracle in-process and isolated, on one spec
and one dtype so that a whole conformance run over it takes seconds.

The oracle adapter computes in float64 on the input it gets (already exactly representable in the
dtype) and rounds the loss and gradient to the dtype: a perfect implementation of that dtype.
"""
from __future__ import annotations

import ctypes
import os
import signal
import time
from dataclasses import replace

import numpy as np

import reference
from adapters import Adapter, Output
from contract.dtypes import round_to_dtype
from reference import Spec, evaluate_distances


SPECS = (
    Spec(mining="semi_hard", empty="nan"),  # TF-Addons triplet_semihard_loss
    Spec(mining="semi_hard", distance="cosine", empty="nan"),
    Spec(),  # TF-Addons triplet_hard_loss
    Spec(mining="batch_hard", soft=True, distance="squared_euclidean"),
    Spec(mining="batch_hard", scaled=True, margin=0.5),
    Spec(mining="batch_hard", normalize=True, margin=0.05, reduction="mean_nonzero", anchors="valid"),
    Spec(mining="batch_all", normalize=True, margin=0.05, reduction="mean_nonzero"),  # pytorch-metric-learning
    Spec(mining="semi_hard_all", normalize=True, margin=0.05, reduction="mean_nonzero"),
    Spec(mining="triplets", reduction="sum"),
    Spec(mining="contrastive", reduction="sum"),
)
VERSION = f"reference oracle (numpy {np.__version__})"


def _oracle(embeddings, labels, spec, dtype, triplets) -> Output:
    result = reference.evaluate(embeddings, labels, spec, triplets)
    loss = float(round_to_dtype(np.array(result.loss), dtype))
    return Output(loss, round_to_dtype(result.grad, dtype), VERSION, "cpu")


def run_oracle(embeddings, labels, spec, dtype, device, triplets=None) -> Output:
    return _oracle(embeddings, labels, spec, dtype, triplets)


ORACLE = Adapter(
    name="test.oracle",
    framework="reference",  # the oracle itself: no framework plumbing applies
    specs=SPECS,
    run=run_oracle,
    dtypes=("float64", "float32", "float16", "bfloat16"),
    notes="the oracle itself, rounded to the dtype: every cell must pass",
)
ORACLES = [ORACLE]


def _broken(name: str, notes: str, run, specs=SPECS, gradient=True, **extra) -> Adapter:
    return Adapter(name=f"test.broken.{name}", framework="reference", specs=specs, run=run,
                   dtypes=("float64", "float32"), gradient=gradient, notes=notes, extra=extra)


def _flipped_gradient(embeddings, labels, spec, dtype, device, triplets=None):
    out = _oracle(embeddings, labels, spec, dtype, triplets)
    return replace(out, grad=-out.grad)


def _sum_not_mean(embeddings, labels, spec, dtype, device, triplets=None):
    return _oracle(embeddings, labels, replace(spec, reduction="sum"), dtype, triplets)


def _margin_off_by_one_percent(embeddings, labels, spec, dtype, device, triplets=None):
    return _oracle(embeddings, labels, replace(spec, margin=spec.margin * 1.01), dtype, triplets)


def _raises(embeddings, labels, spec, dtype, device, triplets=None):
    raise RuntimeError("kernel launch failed: out of shared memory")


def _nan_loss(embeddings, labels, spec, dtype, device, triplets=None):
    return replace(_oracle(embeddings, labels, spec, dtype, triplets), loss=float("nan"))


def _transposed_gradient(embeddings, labels, spec, dtype, device, triplets=None):
    out = _oracle(embeddings, labels, spec, dtype, triplets)
    return replace(out, grad=out.grad.T.copy())


def _loss_as_list(embeddings, labels, spec, dtype, device, triplets=None):
    out = _oracle(embeddings, labels, spec, dtype, triplets)
    return replace(out, loss=[out.loss])


def _not_an_output(embeddings, labels, spec, dtype, device, triplets=None):
    out = _oracle(embeddings, labels, spec, dtype, triplets)
    return out.loss, out.grad


def semi_hard_ties_the_other_way(embeddings, labels, spec, dtype, device, triplets=None):
    """semi_hard with d_an >= d_ap where the spec says d_an > d_ap: every negative pair's distance is
    nudged up by a hair before the selection. It differs from the oracle only at exact ties."""
    result = reference.evaluate(embeddings, labels, spec, triplets)
    labels = np.asarray(labels)
    nudged = result.distances + 1e-12 * (1.0 + result.distances) * (labels[:, None] != labels[None, :])
    loss = evaluate_distances(nudged, labels, spec, triplets).loss
    return Output(float(round_to_dtype(np.array(loss), dtype)), round_to_dtype(result.grad, dtype), VERSION, "cpu")


def _inf_loss(embeddings, labels, spec, dtype, device, triplets=None):
    return replace(_oracle(embeddings, labels, spec, dtype, triplets), loss=float("inf"))


def _integer_gradient(embeddings, labels, spec, dtype, device, triplets=None):
    out = _oracle(embeddings, labels, spec, dtype, triplets)
    return replace(out, grad=out.grad.astype(np.int64))


def _object_loss(embeddings, labels, spec, dtype, device, triplets=None):
    return replace(_oracle(embeddings, labels, spec, dtype, triplets), loss=object())


def _hangs(embeddings, labels, spec, dtype, device, triplets=None):
    time.sleep(3600)


def _segfaults(embeddings, labels, spec, dtype, device, triplets=None):
    ctypes.string_at(0)  # reads address 0: SIGSEGV, as a crashing native kernel would


def _exits(embeddings, labels, spec, dtype, device, triplets=None):
    os._exit(3)  # no cleanup, no exception: what a library calling exit() does


def _kills_itself(embeddings, labels, spec, dtype, device, triplets=None):
    os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer does



_PRESSED: list[bool] = []


def _presses_ctrl_c(embeddings, labels, spec, dtype, device, triplets=None):
    if not _PRESSED:  # the user's Ctrl-C, once, in the middle of the first call
        _PRESSED.append(True)
        os.kill(os.getpid(), signal.SIGINT)
    return run_oracle(embeddings, labels, spec, dtype, device, triplets)


BATCH_HARD = (Spec(),)
SEMI_HARD = (Spec(mining="semi_hard", empty="nan"),)
FLIPPED_GRADIENT = _broken("flipped_gradient", "dL/dx with the wrong sign", _flipped_gradient, BATCH_HARD)
SUM_NOT_MEAN = _broken("sum_not_mean", "reduces with sum where the spec says mean", _sum_not_mean, SEMI_HARD)
MARGIN_OFF = _broken("margin_off", "margin 1% too large", _margin_off_by_one_percent, BATCH_HARD)
RAISES = _broken("raises", "raises on every call", _raises, BATCH_HARD)
NAN_LOSS = _broken("nan_loss", "returns a NaN loss", _nan_loss, BATCH_HARD)
TRANSPOSED_GRADIENT = _broken("transposed_gradient", "gradient of shape [D, N]", _transposed_gradient, BATCH_HARD)
LOSS_AS_LIST = _broken("loss_as_list", "loss wrapped in a list", _loss_as_list, BATCH_HARD)
NOT_AN_OUTPUT = _broken("not_an_output", "returns a tuple, not an Output", _not_an_output, BATCH_HARD)
HANGS = _broken("hangs", "never returns", _hangs, BATCH_HARD)
BROKEN = [FLIPPED_GRADIENT, SUM_NOT_MEAN, MARGIN_OFF, RAISES, NAN_LOSS, TRANSPOSED_GRADIENT, LOSS_AS_LIST,
          NOT_AN_OUTPUT, HANGS]

INF_LOSS = _broken("inf_loss", "returns an infinite loss", _inf_loss, BATCH_HARD)
INTEGER_GRADIENT = _broken("integer_gradient", "gradient of dtype int64", _integer_gradient, BATCH_HARD)
OBJECT_LOSS = _broken("object_loss", "a Python object where the loss should be", _object_loss, BATCH_HARD)
# Isolated (run in a child process): a hard death or a hang there must take down only the child.
SEGFAULTS = _broken("segfaults", "dies of SIGSEGV", _segfaults, BATCH_HARD, isolate=True)
EXITS = _broken("exits", "calls os._exit(3)", _exits, BATCH_HARD, isolate=True)
KILLS_ITSELF = _broken("kills_itself", "sends itself SIGKILL", _kills_itself, BATCH_HARD, isolate=True)
HANGS_ISOLATED = _broken("hangs_isolated", "never returns, in its own process", _hangs, BATCH_HARD, isolate=True)
ORACLE_ISOLATED = replace(ORACLE, name="test.oracle_isolated", extra={"isolate": True})
FAULTS = [RAISES, NAN_LOSS, INF_LOSS, TRANSPOSED_GRADIENT, INTEGER_GRADIENT, OBJECT_LOSS, HANGS,
          SEGFAULTS, EXITS, KILLS_ITSELF, HANGS_ISOLATED]
# A correct adapter whose first call meets a Ctrl-C: the run must stop after the item under way, not inside it.
PRESSES_CTRL_C = [replace(ORACLE, name="test.presses_ctrl_c", run=_presses_ctrl_c, specs=BATCH_HARD, dtypes=("float32",))]
# One spec, one dtype each: the behaving adapters must pass, every fault must fail its cells and only those.
FAULT_ZOO = [replace(adapter, specs=BATCH_HARD, dtypes=("float32",)) for adapter in (ORACLE, ORACLE_ISOLATED, *FAULTS)]
