"""The suite under pytest-xdist (a plugin that engine/pytest_plugin.py loads): each process's role, what the controller
hands its workers, how the items are shared out between them with `--dist loadgroup` (what ./run.sh test and CI run),
and how what a worker records reaches the controller.

Under pytest-xdist (`pytest -n 2`) every process loads the plugin and gets a session (engine/session.py), in one of
three roles (`xdist_role`):
- "serial": no xdist; the session does everything itself;
- "worker": it runs its share of the items and keeps its caches, but judges and writes nothing for the run: each
  change to what the run tallies is an event the session keeps (`ConformanceSession.unsent`), and the worker's
  results writer is a `reports.results.RecordBuffer`. Both ride on the worker's test reports (`PAYLOAD`, attached
  when pytest makes the report, serialised by xdist with it: `WorkerHandover`); what is left when the worker's
  session ends goes in `config.workeroutput`;
- "controller": it runs no item; it writes each report's records to the one results file as they arrive and
  applies their events (`ControllerInbox`), so the divergence records, the verdict counts of run_end, regime coverage
  (over the union of every worker's examples), stale divergences and the summary are the run's, as a serial run has
  them. Every worker collects the same items (xdist refuses to run otherwise), so the collection's tallies (which
  items each registry entry covers, which adapters and checks were collected) are taken once, from the first worker
  that reports them; the outcomes are summed, each item having run in one worker.
"""
from __future__ import annotations

import os
from dataclasses import replace

import pytest

from contract.targets import is_distributed
from engine.cells import QUANTITIES

PAYLOAD = "conformance_payload"  # a worker's report attribute: {"records": [...], "events": [...]}
RECORDS_WRITTEN = "conformance_records"  # on the controller, after the payload is applied: how many it wrote


def xdist_role(config) -> str:
    """This process's part in the run: "worker" (an xdist worker), "controller" (xdist's controller, which runs
    no test) or "serial"."""
    if hasattr(config, "workerinput"):
        return "worker"
    under_xdist = getattr(config.option, "dist", "no") != "no" and bool(getattr(config.option, "tx", None))
    return "controller" if under_xdist and not config.getoption("collectonly") else "serial"


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


# --- what a worker records, handed to the controller --------------------------------------------------------------

def payload(session) -> dict | None:
    """A worker's records and events since the last payload (None when there are none); taken once."""
    writer = session.writer
    records = writer.take() if hasattr(writer, "take") else []
    events, session.unsent = session.unsent, []
    return {"records": records, "events": events} if records or events else None


def receive(session, payload: dict) -> int:
    """On the controller: write a worker's records to the results file, apply its events; how many records."""
    for record in payload.get("records", ()):
        session.writer.append(record)
    for event in payload.get("events", ()):
        session.apply(event)
    return len(payload.get("records", ()))


class WorkerHandover:
    """Registered in an xdist worker: hands the session's payload to each test report as pytest makes it (the
    outermost wrapper, so after the session has written the item's record), before xdist sends the report; what is
    left at the end goes in config.workeroutput."""

    def __init__(self, session):
        self.session = session

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        found = payload(self.session)
        if found:
            setattr(outcome.get_result(), PAYLOAD, found)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        found = payload(self.session)
        if found and hasattr(session.config, "workeroutput"):
            session.config.workeroutput[PAYLOAD] = found


class ControllerInbox:
    """Registered on the xdist controller: applies what each worker hands over, as it arrives."""

    def __init__(self, session):
        self.session = session

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report):
        """First of all: a worker's report brings the records and events of its item."""
        found = report.__dict__.pop(PAYLOAD, None)  # applied once; the report lives on in pytest's stats
        if found:
            setattr(report, RECORDS_WRITTEN, receive(self.session, found))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        """What a worker recorded after its last report (config.workeroutput)."""
        found = (getattr(node, "workeroutput", None) or {}).get(PAYLOAD)
        if found:
            receive(self.session, found)
