"""Calling an adapter: the one place the suite does it, so that nothing an adapter does stops the run.

`call_adapter` turns every way an adapter can go wrong into an `AdapterFailure` whose reason says
exactly what happened: it raised (type, message, the innermost frame), it did not answer within the
per-call timeout, or it returned something the contract does not allow (not an `Output`, a loss that
is not a float, no gradient, a gradient of the wrong shape or dtype). Whether the numbers are right
(NaN where the oracle has none, ...) is the comparison's business, not this module's.

Calls run in a daemon thread, so that a timeout can be noticed: a hung thread cannot be stopped, so
its adapter is quarantined for the rest of the session and later calls fail at once with the same
reason (which also keeps Hypothesis from waiting out the timeout again on every shrinking step).

`Adapter.extra["isolate"] = True` runs each call in a child process instead (multiprocessing's
"forkserver" context: a clean process forked from a small server, not from this one with its
framework threads), so that an adapter that kills its process (a segfault in a kernel, os._exit, a
signal) fails its cell with the signal or exit code instead of ending the run, and a call past the
timeout is killed (its adapter is quarantined too: it would most likely hang again). The constraints:
the child gets `adapter.run` by pickle, that is by reference, so `run` must be a module-level function
of an importable module (the child has this process's sys.path, so a module given with --adapter and
tests/fake_adapters.py qualify; a closure such as the adapters.wrap_* helpers build does not,
and fails its cell saying so); and a script that calls an isolated adapter outside pytest needs the
usual `if __name__ == "__main__":` guard, since the child re-imports the main module.

A call on a distributed target (contract/targets.py processes > 1) runs in the daemon thread too: the adapter's
`rank_call` gives the function each rank runs on its shard, and engine/distributed.py runs the ranks.
"""
from __future__ import annotations

import functools
import multiprocessing
import pickle
import signal
import threading
import traceback
from collections.abc import Callable

import numpy as np

from contract.adapter import Adapter, Output, Unavailable
from contract.targets import is_distributed

from . import machine

DEFAULT_TIMEOUT_S = 60.0
_QUARANTINED: dict[str, str] = {}  # adapter name -> why it is no longer called


class AdapterFailure(Exception):
    """The adapter gave no usable answer; `reason` says why, in words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class AdapterUnavailable(AdapterFailure):
    """The adapter raised adapters.Unavailable: this machine lacks what it needs (a skip, not a failure)."""


def _innermost_frame(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f" (at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""


def _described(exc: BaseException) -> str:
    return f"raised {type(exc).__name__}: {exc}{_innermost_frame(exc)}"


def _timed_out(name: str, timeout: float, aftermath: str = "") -> AdapterFailure:
    reason = f"adapter {name!r} gave no answer within the per-call timeout of {timeout:g} s{aftermath}"
    _QUARANTINED[name] = reason
    return AdapterFailure(reason)


def _run_in_thread(adapter: Adapter, call: Callable[[], object], timeout: float) -> object:
    box: dict[str, object] = {}
    settings = machine.configured()  # read here: the caller's `machine.varied` holds while this call runs

    def target() -> None:
        try:
            with machine.applied(settings):  # in the adapter's own thread: denormal flushing is per thread
                box["value"] = call()
        except BaseException as exc:  # the adapter may raise anything, SystemExit included
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"adapter {adapter.name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise _timed_out(adapter.name, timeout)
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, Unavailable):
            raise AdapterUnavailable(str(exc)) from exc
        raise AdapterFailure(f"adapter {adapter.name!r} {_described(exc)}") from exc
    return box["value"]


# forkserver: children fork from a clean server (no framework threads), cheaper than spawning an interpreter. The
# ranks of engine/distributed.py fork from the same server (a process has one), hence torch among what it preloads
# (a server without torch installed skips it).
_FORKSERVER = "forkserver" in multiprocessing.get_all_start_methods()
CHILD_CONTEXT = multiprocessing.get_context("forkserver" if _FORKSERVER else "spawn")
if _FORKSERVER:
    CHILD_CONTEXT.set_forkserver_preload(["adapters", "torch", "torch.distributed"])


def _child(sender, run, args: tuple) -> None:
    """An isolated call's process: sends ("value", output), ("unavailable", why) or ("error", why)."""
    try:
        value = run(*args)
    except BaseException as exc:  # the adapter may raise anything, SystemExit included
        sender.send(("unavailable", str(exc)) if isinstance(exc, Unavailable) else ("error", _described(exc)))
        return
    try:
        sender.send(("value", value))
    except Exception as exc:  # pickling failed before anything was written: the pipe is still clean
        sender.send(("error", f"returned a {type(value).__name__} that cannot be sent back from its process: {exc}"))


def process_death(exitcode: int | None) -> str:
    """How a child process ended before it answered, from its exit code (negative: the signal that killed it)."""
    if exitcode is not None and exitcode < 0:
        try:
            signame = signal.Signals(-exitcode).name
        except ValueError:
            signame = "unknown signal"
        return f"died with signal {-exitcode} ({signame}) before it answered"
    return f"exited with exit code {exitcode} before it answered"


def _death(name: str, exitcode: int | None) -> str:
    return f"the process of adapter {name!r} {process_death(exitcode)}"


def _run_in_process(adapter: Adapter, args: tuple, timeout: float) -> object:
    name = adapter.name
    try:
        pickle.dumps(adapter.run)
    except Exception as exc:
        raise AdapterFailure(
            f"adapter {name!r} asks to be isolated, but its run function cannot be sent to a child process"
            f" ({type(exc).__name__}: {exc}); make run a module-level function"
        ) from exc
    receiver, sender = CHILD_CONTEXT.Pipe(duplex=False)
    child = CHILD_CONTEXT.Process(target=_child, args=(sender, adapter.run, args), name=f"adapter {name}", daemon=True)
    child.start()
    sender.close()  # the child now holds the only writer, so its death reads as EOF here
    try:
        if not receiver.poll(timeout):
            raise _timed_out(name, timeout, "; its process was killed")
        try:
            kind, value = receiver.recv()
        except EOFError:
            child.join()
            raise AdapterFailure(_death(name, child.exitcode)) from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    if kind == "unavailable":
        raise AdapterUnavailable(value)
    if kind == "error":
        raise AdapterFailure(f"adapter {name!r} {value}")
    return value


def _run(adapter: Adapter, args: tuple, timeout: float, shards: tuple[int, ...] | None = None) -> object:
    """The runner seam: every adapter call goes through here (see the module docstring)."""
    if is_distributed(args[4]):
        return _run_sharded(adapter, args, timeout, shards)
    if adapter.extra.get("isolate"):
        return _run_in_process(adapter, args, timeout)
    return _run_in_thread(adapter, functools.partial(adapter.run, *args), timeout)


def _run_sharded(adapter: Adapter, args: tuple, timeout: float, shards: tuple[int, ...] | None) -> Output:
    """A call on a distributed target: the adapter's rank_call gives what each rank runs, and engine.distributed
    shards the batch and holds the ranks to the per-call timeout itself (a hung rank fails the call, its group is
    shut down and the next call starts a fresh one). The thread waits longer than that, the group's start and
    shutdown included, so that only a rank_call that hangs in this process is quarantined."""
    from . import distributed  # here, not at the top: engine/distributed.py imports this module

    embeddings, labels, spec, dtype, device, _ = args  # no triplets: index triples name rows of the whole batch

    def sharded() -> Output:
        on_rank = adapter.rank_call(spec, dtype, device)
        return distributed.run_sharded(on_rank, f"adapter {adapter.name!r}", embeddings, labels, device, shards,
                                       timeout=timeout, equal_shards=bool(adapter.extra.get("equal_shards")))

    return _run_in_thread(adapter, sharded, timeout + distributed.START_TIMEOUT_S + distributed.CLOSE_S)


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
    shards: tuple[int, ...] | None = None,
) -> Output:
    """adapter.run(...) with copies of the inputs, checked against the contract; AdapterFailure otherwise.
    On a distributed target the ranks run the adapter's rank_call on `shards` (rows per rank, None for the even
    split; engine/distributed.py)."""
    if adapter.name in _QUARANTINED:
        raise AdapterFailure(f"not called again: {_QUARANTINED[adapter.name]}")
    embeddings = np.array(embeddings, dtype=np.float64)
    labels = np.array(labels, dtype=np.int64)
    triplets = None if triplets is None else np.array(triplets, dtype=np.int64)

    args = (embeddings.copy(), labels.copy(), spec, dtype, device, None if triplets is None else triplets.copy())
    if shards is not None and not is_distributed(device):
        raise ValueError(f"shards {tuple(shards)} given for {device!r}, a single-process target")
    shards = None if shards is None else tuple(int(s) for s in shards)
    return _checked(adapter, _run(adapter, args, timeout, shards), embeddings.shape)
