"""Six tests that tests/engine/test_parallel.py runs under pytest-xdist (`-n 2 --dist loadgroup`). They share a
module-scoped fixture, which appends its process id to the file GROUP_PROBE_FILE names: engine/pytest_plugin.py
puts them in one xdist group, so the fixture (in the suite's tests, a child pytest run) is set up once. Not
collected by default (the name is not test_*.py)."""
import os

import pytest


@pytest.fixture(scope="module")
def shared_setup():
    with open(os.environ["GROUP_PROBE_FILE"], "a", encoding="utf-8") as setups:
        setups.write(f"{os.getpid()}\n")


@pytest.mark.parametrize("index", range(6))
def test_uses_the_module_fixture(shared_setup, index):
    pass
