"""Calling an adapter: the one place the suite does it, so that nothing an adapter does stops the run.

`call_adapter` turns every way an adapter can go wrong into an `AdapterFailure` whose reason says
exactly what happened: it raised (type, message, the innermost frame), it did not answer within the
per-call timeout, or it returned something the contract does not allow (not an `Output`, a loss that
is not a float, no gradient, a gradient of the wrong shape or dtype). Whether the numbers are right
(NaN where the oracle has none, ...) is the comparison's business, not this module's.

Timeouts run the call in a daemon thread: a hung call cannot be stopped, so its adapter is
quarantined for the rest of the session and later calls fail at once with the same reason.
`Adapter.extra["isolate"] = True` is the switch for adapters that may kill their own process: the
runner seam is `_run`, where a subprocess runner will take those adapters; until it lands they run in
a thread like the others.
"""
from __future__ import annotations

import threading
import traceback
from typing import Callable

import numpy as np

from adapters import Adapter, Output, Unavailable

DEFAULT_TIMEOUT_S = 60.0
_QUARANTINED: dict[str, str] = {}  # adapter name -> why it is no longer called


class AdapterFailure(Exception):
    """The adapter gave no usable answer; `reason` says why, in words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class AdapterUnavailable(AdapterFailure):
    """The adapter raised adapters.Unavailable: this machine lacks what it needs (a skip, not a failure)."""


def device_unavailable(device: str) -> str | None:
    """Why `device` cannot run here, or None."""
    if device == "cpu":
        return None
    try:
        import torch
    except ImportError:
        return f"{device}: torch is not installed, so no CUDA device can be found"
    if not torch.cuda.is_available():
        return f"{device}: no CUDA device available"
    return None


def _innermost_frame(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f" (at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""


def _run_in_thread(call: Callable[[], object], timeout: float, name: str) -> object:
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # the adapter may raise anything, SystemExit included
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"adapter {name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        reason = f"adapter {name!r} gave no answer within the per-call timeout of {timeout:g} s"
        _QUARANTINED[name] = reason
        raise AdapterFailure(reason)
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, Unavailable):
            raise AdapterUnavailable(str(exc)) from exc
        raise AdapterFailure(f"adapter {name!r} raised {type(exc).__name__}: {exc}{_innermost_frame(exc)}") from exc
    return box["value"]


def _run(adapter: Adapter, call: Callable[[], object], timeout: float) -> object:
    """The runner seam: every adapter call goes through here (see the module docstring)."""
    return _run_in_thread(call, timeout, adapter.name)


def _checked(adapter: Adapter, out: object, shape: tuple[int, int]) -> Output:
    name = adapter.name
    if not isinstance(out, Output):
        raise AdapterFailure(f"adapter {name!r} returned a {type(out).__name__} ({out!r:.80}), not an adapters.Output")
    loss = out.loss
    if isinstance(loss, bool) or not isinstance(loss, (float, np.floating)):
        raise AdapterFailure(
            f"adapter {name!r} returned a loss of type {type(loss).__module__}.{type(loss).__qualname__}"
            f" ({loss!r:.80}), not a float"
        )
    grad = out.grad
    if grad is None:
        if adapter.gradient:
            raise AdapterFailure(f"adapter {name!r} returned no gradient, but it claims gradient=True")
    elif not isinstance(grad, np.ndarray):
        raise AdapterFailure(f"adapter {name!r} returned a gradient of type {type(grad).__name__}, not a NumPy array")
    elif grad.dtype.kind != "f":
        raise AdapterFailure(f"adapter {name!r} returned a gradient of dtype {grad.dtype}, not a floating dtype")
    elif grad.shape != shape:
        raise AdapterFailure(f"adapter {name!r} returned a gradient of shape {grad.shape}; the embeddings are {shape}")
    return Output(
        loss=float(loss),
        grad=None if grad is None else grad.astype(np.float64),
        version=str(out.version),
        target=str(out.target),
    )


def call_adapter(
    adapter: Adapter,
    embeddings: np.ndarray,
    labels: np.ndarray,
    spec,
    dtype: str,
    device: str,
    triplets: np.ndarray | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Output:
    """adapter.run(...) with copies of the inputs, checked against the contract; AdapterFailure otherwise."""
    if adapter.name in _QUARANTINED:
        raise AdapterFailure(f"not called again: {_QUARANTINED[adapter.name]}")
    embeddings = np.array(embeddings, dtype=np.float64)
    labels = np.array(labels, dtype=np.int64)
    triplets = None if triplets is None else np.array(triplets, dtype=np.int64)

    def call() -> object:
        return adapter.run(embeddings.copy(), labels.copy(), spec, dtype, device,
                           None if triplets is None else triplets.copy())

    return _checked(adapter, _run(adapter, call, timeout), embeddings.shape)
