"""Tests that tests/engine/test_parallel.py runs under pytest-xdist (`-n 2 --dist loadgroup`). Six share a
module-scoped fixture, which appends its process id and OMP_NUM_THREADS to the file GROUP_PROBE_FILE names: engine/workers.py puts them
in one xdist group, so the fixture (in the suite's tests, a child pytest run) is set up once. The others stand for
the items of a cell key, a loss, a grad and a property item each (ids ending in |loss], |grad] and
|property:permutation], as the suite's do); each appends "<process id> <its id>" to the file GROUP_PROBE_CELLS names:
the items of a cell key must run in one worker (engine/workers.py `work_unit`). Not collected by default (the name
is not test_*.py)."""
import os

import pytest

CELLS = 12


@pytest.fixture(scope="module")
def shared_setup():
    with open(os.environ["GROUP_PROBE_FILE"], "a", encoding="utf-8") as setups:
        setups.write(f"{os.getpid()} OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}\n")


@pytest.mark.parametrize("index", range(6))
def test_uses_the_module_fixture(shared_setup, index):
    pass


CHECKS = ("loss", "grad", "property:permutation")


@pytest.mark.parametrize("cell", [f"cell-{index}|{check}" for index in range(CELLS) for check in CHECKS])
def test_cell(cell):
    with open(os.environ["GROUP_PROBE_CELLS"], "a", encoding="utf-8") as ran:
        ran.write(f"{os.getpid()} {cell}\n")
