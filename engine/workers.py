"""The suite under pytest-xdist (a plugin that engine/pytest_plugin.py loads): what the controller hands its workers,
and how the items are shared out between them with `--dist loadgroup` (what ./run.sh test and CI run)."""
from __future__ import annotations

import os
from dataclasses import replace

import pytest

from engine.cells import QUANTITIES
from engine.session import xdist_role
from contract.targets import is_distributed

# The xdist group of everything that starts torch.distributed process groups in the worker's own process: the cells
# of the multi-process targets and the suite's tests of them (they name it). A worker holds one group per world
# size, each a few interpreters that import torch; in one worker they start once, not once in each.
PROCESS_GROUPS = "torch.distributed process groups"

VALUED_OPTIONS = ("--adapter", "--results", "--adapter-timeout", "--cell-seconds")


def joined_option_values(args) -> tuple[str, ...]:
    """The command line with engine/pytest_plugin.py's `--option VALUE` pairs written `--option=VALUE`, as the xdist controller
    hands it to its workers. A worker parses it before any plugin has declared these options, and pytest then takes a
    lone VALUE that names an existing file for a test path: the rootdir it finds from it (`--results /elsewhere/x.jsonl`,
    which the controller has just created) has no pyproject.toml, the plugin is never loaded, and every worker dies
    with "unrecognized arguments: --results"."""
    joined, index = [], 0
    while index < len(args):
        if args[index] in VALUED_OPTIONS and index + 1 < len(args):
            joined.append(f"{args[index]}={args[index + 1]}")
            index += 2
        else:
            joined.append(args[index])
            index += 1
    return tuple(joined)


def cores_per_process(processes: int) -> int:
    """This machine's cores (those this process may use) shared among `processes` processes, at least 1 each."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // processes)


def share_the_cores(workers, environ=os.environ) -> None:
    """OMP_NUM_THREADS for the workers, which inherit the controller's environment, unless it is set: each worker's
    torch gets its share of the cores. By default every worker's torch starts a thread per core, and OpenMP's
    threads, waiting for work between two of its calls, spin on the cores the other workers need (on 2 cores the
    same torch cells took 39% more CPU time that way)."""
    if isinstance(workers, int) and workers > 0:
        environ.setdefault("OMP_NUM_THREADS", str(cores_per_process(workers)))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """On the controller, before any worker starts: the command line the workers get (`joined_option_values`), and
    their share of the cores (`share_the_cores`)."""
    if xdist_role(config) == "controller":
        config.invocation_params = replace(config.invocation_params,
                                           args=joined_option_values(config.invocation_params.args))
        share_the_cores(config.getoption("numprocesses", None))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """With --dist loadgroup (a worker's config.option.loadgroup): the items of a test module that use one of the
    module's own module-scoped fixtures go to one worker together, so the fixture (a child pytest run, a page
    built from one) runs once, not once per worker. An item that names its own xdist_group keeps it.

    And the longest items first: the suite's own tests (tests/, which hold the child pytest runs, seconds to a minute
    each) before the suite's cells (a second or less each), so that the run ends on short items in both workers
    rather than with one worker idle while the other finishes a long one (CellScheduling keeps this order)."""
    if not getattr(config.option, "loadgroup", False):
        return
    items.sort(key=lambda item: not item.nodeid.startswith("tests/"))  # stable: tests/ first, in their own order
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        info = getattr(item, "_fixtureinfo", None)
        module = getattr(item, "module", None)
        if info is None or module is None:
            continue
        shared = [
            name for name, definitions in info.name2fixturedefs.items()
            if any(d.scope == "module" and getattr(d.func, "__module__", None) == module.__name__ for d in definitions)
        ]
        if shared:
            item.add_marker(pytest.mark.xdist_group(f"module {item.nodeid.split('::')[0]}"))


def work_unit(nodeid: str, group: str) -> str:
    """What goes to one worker under --dist loadgroup: the item's xdist group (`group`, the nodeid itself when it has
    none), and for an ungrouped conformance or property item its cell key (adapter|spec|dtype|device, engine/cells.py):
    the items of a cell key share the examples Hypothesis draws for it, so the grad item finds the adapter's and the
    oracle's answers the loss item got (ConformanceSession caches them per cell key), and the property items the
    answers on their base batches, instead of another worker computing them again. A cell key of a multi-process
    target goes to PROCESS_GROUPS instead (a unit that holds all of the key's items too)."""
    if group != nodeid or "[" not in nodeid:
        return group
    key, _, check = nodeid[nodeid.index("[") + 1:-1].rpartition("|")
    if not (check in QUANTITIES or check.startswith("property:")):
        return group
    if is_distributed(key.rpartition("|")[2]):
        return PROCESS_GROUPS
    return f"cell {key}"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """On the xdist controller: --dist loadgroup's scheduling, with work units from `work_unit`, in collection order."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class CellScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid, super()._split_scope(nodeid))

        def schedule(self) -> None:
            """The work units in collection order (pytest_collection_modifyitems puts the long ones first), not in
            xdist's largest-unit-first order, which would leave the long single items for the end."""
            reorder, self.config.option.loadscopereorder = self.config.option.loadscopereorder, False
            try:
                super().schedule()
            finally:
                self.config.option.loadscopereorder = reorder

    return CellScheduling(config, log)
