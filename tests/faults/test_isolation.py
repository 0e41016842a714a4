"""An isolated adapter (Adapter.extra["isolate"]) runs each call in its own process: what kills that
process fails the call with the signal or exit code, a call past the timeout is killed, and an adapter
that behaves gives the same answer as in-process."""
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import reference
from adapters import Unavailable, wrap_numpy
from engine.harness import AdapterFailure, AdapterUnavailable, call_adapter
from tests import fake_adapters as fake

EMBEDDINGS = np.random.default_rng(0).normal(size=(6, 3))
LABELS = np.array([0, 0, 1, 1, 2, 2])
SPEC = reference.Spec()


def call(adapter, timeout=10.0):
    return call_adapter(adapter, EMBEDDINGS, LABELS, SPEC, "float32", "cpu", timeout=timeout)


def failure(adapter, timeout=10.0) -> str:
    with pytest.raises(AdapterFailure) as caught:
        call(adapter, timeout)
    return caught.value.reason


def test_an_isolated_adapter_answers_as_it_does_in_process():
    isolated, in_process = call(fake.ORACLE_ISOLATED), call(fake.ORACLE)
    assert isolated.loss == in_process.loss
    np.testing.assert_array_equal(isolated.grad, in_process.grad)


@pytest.mark.parametrize("adapter, reason", [
    (fake.SEGFAULTS, "the process of adapter 'test.broken.segfaults' died with signal 11 (SIGSEGV) before it answered"),
    (fake.KILLS_ITSELF, "died with signal 9 (SIGKILL)"),
    (fake.EXITS, "the process of adapter 'test.broken.exits' exited with exit code 3 before it answered"),
], ids=lambda v: getattr(v, "name", ""))
def test_a_process_that_dies_fails_the_call_with_how_it_died(adapter, reason):
    assert reason in failure(adapter)
    assert reason in failure(adapter)  # not quarantined: the next call gets a fresh process


# Not tmp_path: the child re-imports this module by name, so the place must not depend on the test run.
HANG_PIDS = Path(tempfile.gettempdir()) / "triplet-conformance-isolated-hangs"


def _hangs_and_leaves_its_pid(embeddings, labels, spec, dtype, device, triplets=None):
    HANG_PIDS.mkdir(exist_ok=True)
    (HANG_PIDS / str(os.getpid())).touch()
    time.sleep(3600)


def test_a_call_past_the_timeout_is_killed_and_the_adapter_quarantined():
    adapter = replace(fake.HANGS_ISOLATED, name="test.hangs_isolated.killed", run=_hangs_and_leaves_its_pid)
    before = set(HANG_PIDS.iterdir()) if HANG_PIDS.exists() else set()
    assert "timeout of 2 s; its process was killed" in failure(adapter, timeout=2.0)
    started = set(HANG_PIDS.iterdir()) - before
    assert started, "the hanging adapter never ran"
    for pid_file in started:
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.name), 0)
        pid_file.unlink()
    assert failure(adapter).startswith("not called again: ")


def _unavailable(embeddings, labels, spec, dtype, device, triplets=None):
    raise Unavailable("needs a frobnicator")


def test_an_exception_and_unavailable_cross_the_process_boundary():
    assert "raised RuntimeError: kernel launch failed" in failure(replace(fake.RAISES, extra={"isolate": True}))
    with pytest.raises(AdapterUnavailable, match="needs a frobnicator"):
        call(replace(fake.ORACLE_ISOLATED, run=_unavailable))


def test_a_run_function_that_cannot_reach_a_child_process_says_so():
    closure = wrap_numpy(lambda e, y: 0.0, name="test.closure", spec=SPEC)
    assert "cannot be sent to a child process" in failure(replace(closure, extra={"isolate": True}))
