"""The small conformance run that tests/engine/test_parallel.py runs serially and under pytest-xdist, and a pytest
plugin for it (`-p tests.engine.parallel_run`, loaded by the controller and by every worker):

- `BROKEN`: two of tests/fake_adapters.py's broken adapters (`--adapter tests.engine.parallel_run:BROKEN`, next to
  `--adapter tests.fake_adapters:ORACLES`);
- `ENTRIES`: two known divergences the plugin adds to the registry before collection, so that the run has strict
  xfails that reproduce (the flipped gradient, in its conformance cells and its edge cases) and strict xfails that
  pass (an entry on the oracle itself: a "fixed upstream bug", which fails its items);
- with PARALLEL_PROBE_DIR set, each process writes the Hypothesis settings it runs under to
  PARALLEL_PROBE_DIR/<worker id or "controller">.json.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from tests import fake_adapters as fake

BROKEN = [fake.FLIPPED_GRADIENT, fake.MARGIN_OFF]
PROBE_DIR = "PARALLEL_PROBE_DIR"
CONFIRMED_BY = "tests/engine/test_parallel.py::test_a_parallel_run_records_what_a_serial_run_records"


def entries():
    from registry import Divergence

    return (
        Divergence(id="parallel-flipped-gradient", adapter="test.broken.flipped_gradient", kind="semantics",
                   reason="the gradient's sign is flipped (a test-only entry)", link="tests/engine/parallel_run.py",
                   confirmed_by=CONFIRMED_BY, check=("grad", "edge:*")),
        Divergence(id="parallel-fixed-upstream", adapter="test.oracle", kind="semantics",
                   reason="an entry whose divergence no longer reproduces (a test-only entry)",
                   link="tests/engine/parallel_run.py", confirmed_by=CONFIRMED_BY, spec={"mining": "batch_hard"},
                   check="loss"),
    )


def pytest_configure(config):
    import registry

    known = {entry.id for entry in registry.REGISTRY}
    registry.REGISTRY = registry.REGISTRY + tuple(e for e in entries() if e.id not in known)


def pytest_sessionstart(session):
    folder = os.environ.get(PROBE_DIR)
    if not folder:
        return
    from hypothesis import settings

    worker = getattr(session.config, "workerinput", {}).get("workerid", "controller")
    profile = settings.default
    Path(folder, f"{worker}.json").write_text(json.dumps({
        "profile": settings.get_current_profile_name(),
        "derandomize": profile.derandomize,
        "database": None if profile.database is None else repr(profile.database),
        "max_examples": profile.max_examples,
    }))
