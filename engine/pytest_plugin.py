"""The suite's pytest plugin (registered by the root conftest.py): Hypothesis profiles, the conformance
options, and what a run collects.

Hypothesis profiles, shared by every test module, and the examples each item runs under them: engine/profiles.py.
Pick one with `pytest --hypothesis-profile NAME`.

What a run collects: `pytest` alone collects the suite (suite/: the checks that judge adapters) and the
suite's own tests (tests/). `pytest --adapter MODULE:ATTR` judges exactly the named adapters: it collects
suite/ only, and not suite/robustness (the sweeps measure, they do not judge), unless a path is named.

In parallel (pytest-xdist, `pytest -n 2`): every worker loads this plugin, and so the same Hypothesis profile (from
CI and --hypothesis-profile, which reach every worker); the controller alone writes the results file (its header,
every worker's records as their reports arrive, the divergence records and run_end), and judges the run as a
serial one (engine/session.py, engine/workers.py). With `--dist loadgroup`, the items of a test module that share a module-scoped
fixture (a child pytest run, a page) run in one worker, so the fixture runs once, and so do the conformance and
property items of one cell key, so the adapter and the oracle answer each example they share once: engine/workers.py,
a plugin this one loads, says how the work is shared out and what the workers are handed.
"""
import importlib
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import settings

from adapters import import_torch_first, interpret_triton_without_a_gpu
from engine import profiles


class TorchBeforeTensorFlow:
    """An import hook: the first import of tensorflow in this process imports torch first (adapters/_tf.py
    import_torch_first), whoever imports it (a test module, a sweep, a library). In a hook, not at this plugin's
    import: a process that never imports TensorFlow (most of the suite's child pytest runs) does not pay torch's 2 s
    import either."""

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow":
            sys.meta_path.remove(self)
            import_torch_first()
        return None  # the usual finders find tensorflow itself


if "tensorflow" not in sys.modules:
    sys.meta_path.insert(0, TorchBeforeTensorFlow())
interpret_triton_without_a_gpu()  # before any library imports triton (see there)
pytest_plugins = ["engine.workers"]

profiles.register_profiles()


# --- the conformance run's options: which adapters, and where the results go -------------------------

def pytest_addoption(parser):
    group = parser.getgroup("triplet-conformance")
    group.addoption(
        "--adapter",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="check only these adapters (repeatable); ATTR is an Adapter or a list of them",
    )
    group.addoption("--results", metavar="PATH", help="append JSON-lines results of this run to PATH")
    group.addoption(
        "--adapter-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="per-call timeout for an adapter; a call past it fails its cell and the run goes on (default 60)",
    )
    group.addoption(
        "--cell-seconds",
        type=float,
        default=None,
        metavar="SECONDS",
        help="time box per conformance item for a long search (the thorough hunt): its examples run in rounds until "
        "the profile's max_examples are done or the box is spent (default: no box)",
    )


class _NoResults:
    """Stands in for the writer when no --results file was asked for."""

    run_id = "none"

    def write(self, kind, **fields):
        return None

    def append(self, record):
        return None


def load_user_adapters(specs: list[str]):
    """Resolve each --adapter MODULE:ATTR, with a clear message for every way it can go wrong.

    Returns the adapters and, per adapter name, the MODULE:ATTR it came from (for reproducers)."""
    from adapters import Adapter

    found, sources = [], {}
    for spec in specs:
        module_name, sep, attr = spec.partition(":")
        if not sep or not module_name or not attr:
            raise pytest.UsageError(f"--adapter {spec!r}: expected MODULE:ATTR, e.g. my_losses:ADAPTERS")
        if "" not in sys.path:
            sys.path.insert(0, "")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # the user's module may fail in any way; say which and why
            raise pytest.UsageError(f"--adapter {spec!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}")
        try:
            value = getattr(module, attr)
        except AttributeError:
            raise pytest.UsageError(f"--adapter {spec!r}: module {module_name!r} has no attribute {attr!r}")
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if not isinstance(item, Adapter):
                raise pytest.UsageError(
                    f"--adapter {spec!r}: {attr} holds a {type(item).__name__}, not an adapters.Adapter "
                    "(build one with adapters.wrap_torch / wrap_tensorflow / wrap_numpy)"
                )
            found.append(item)
            sources[item.name] = spec
    names = [a.name for a in found]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise pytest.UsageError(f"--adapter: adapter names must be unique, repeated: {', '.join(dupes)}")
    return found, sources


ROOT = Path(__file__).resolve().parent.parent
SUITE, MEASUREMENTS, SELF_TESTS = ROOT / "suite", ROOT / "suite" / "robustness", ROOT / "tests"


def pytest_ignore_collect(collection_path, config):
    """With --adapter, what is not named on the command line and does not judge the named adapters: the
    suite's own tests (tests/) and the robustness sweeps (they measure; only in-house code is held to them)."""
    if not config.getoption("adapter"):
        return None
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        named = [Path(arg.split("::")[0]).resolve() for arg in config.args]
        if any(collection_path == path or path in collection_path.parents for path in named if path != ROOT):
            return None
    for skipped in (SELF_TESTS, MEASUREMENTS):
        if collection_path == skipped or skipped in collection_path.parents:
            return True
    return None


@pytest.hookimpl(trylast=True)  # after Hypothesis's plugin has loaded --hypothesis-profile: the header names it
def pytest_configure(config):
    from adapters import catalog

    user = config.getoption("adapter")
    if user:
        config.conformance_adapters, config.conformance_adapter_sources = load_user_adapters(user)
    else:
        config.conformance_adapters, config.conformance_adapter_sources = catalog(), {}
    from engine import machine
    from engine.workers import xdist_role

    try:
        settings_in_force = machine.in_force()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    role = xdist_role(config)
    path = config.getoption("results")
    config.conformance_started = time.time()
    if role == "worker":  # the controller writes the file; this worker's records go to it with its reports
        from reports.results import RecordBuffer

        run_id = config.workerinput.get(WORKER_RUN_ID)
        config.conformance_results = RecordBuffer(run_id) if run_id else _NoResults()
    elif path:
        from reports.results import ResultsWriter

        config.conformance_results = ResultsWriter(path)
        profile = settings.default
        workers = len(config.getoption("tx") or ()) if role == "controller" else 0
        config.conformance_results.header(
            hypothesis={
                "profile": settings.get_current_profile_name(),
                "seed": config.getoption("hypothesis_seed", None),
                "max_examples": profile.max_examples,
                "derandomize": profile.derandomize,
                "cell_seconds": config.getoption("cell_seconds"),
            },
            adapters=[a.name for a in config.conformance_adapters],
            machine_settings=settings_in_force,
            **({"notes": f"pytest-xdist: {workers} workers; the controller wrote every worker's records"}
               if workers else {}),
        )
    else:
        config.conformance_results = _NoResults()
    # The session: cells, records, known divergences, regime coverage, summary.
    from engine.session import ConformanceSession
    from engine.workers import ControllerInbox, WorkerHandover

    profiles.CELL_SECONDS = config.getoption("cell_seconds")

    config.addinivalue_line("markers", "divergence(*ids): the known divergences (registry/__init__.py) a test covers")
    # pytest-xdist registers it too; here so that a test module may name its group where xdist is not loaded
    config.addinivalue_line("markers", "xdist_group(name): run these tests in one xdist worker (--dist loadgroup)")
    session = ConformanceSession(writer=config.conformance_results, sources=config.conformance_adapter_sources,
                                 timeout=config.getoption("adapter_timeout"), results_path=path, role=role)
    config.conformance_session = session
    config.pluginmanager.register(session, "triplet-conformance-session")
    if role == "worker":
        config.pluginmanager.register(WorkerHandover(session), "triplet-conformance-handover")
    elif role == "controller":
        config.pluginmanager.register(ControllerInbox(session), "triplet-conformance-inbox")
    elif role == "serial":
        stopper = StopAfterTheItem()
        stopper.install()
        config.pluginmanager.register(stopper, "triplet-conformance-ctrl-c")


WORKER_RUN_ID = "conformance_run_id"  # in each xdist worker's workerinput: the run id its records carry


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """On the xdist controller, before a worker starts: the run id of the one results file, if there is one."""
    writer = node.config.conformance_results
    node.workerinput[WORKER_RUN_ID] = None if isinstance(writer, _NoResults) else writer.run_id


class StopAfterTheItem:
    """Ctrl-C in a run in one process: the first stops the run when the item under way has ended (its record whole,
    the interrupt raised from here, a frame pytest can print), a second stops it at once. Raised anywhere, a
    KeyboardInterrupt may land in a frame whose line number Python cannot tell (a context manager being entered),
    and pytest then crashes while printing it and exits with 1, not "interrupted" (2). Under pytest-xdist the
    controller and its workers keep pytest-xdist's own handling."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self.handle)

    def uninstall(self) -> None:
        if self.previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self.previous)

    def handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        sys.__stderr__.write("\nCtrl-C: stopping when the item under way ends (Ctrl-C again to stop at once)\n")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        result = yield
        if self.requested:
            raise KeyboardInterrupt(f"stopped by the user after {item.nodeid}")
        return result


def pytest_unconfigure(config):
    stopper = config.pluginmanager.get_plugin("triplet-conformance-ctrl-c")
    if stopper is not None:
        stopper.uninstall()


def pytest_keyboard_interrupt(excinfo):
    """Ctrl-C, as opposed to what pytest routes through here too (collection errors, pytest.exit)."""
    global _STOPPED_BY_USER
    _STOPPED_BY_USER = isinstance(excinfo.value, KeyboardInterrupt) and not isinstance(
        excinfo.value, (pytest.Session.Interrupted, pytest.exit.Exception)
    )


_STOPPED_BY_USER = False


@pytest.hookimpl(trylast=True)  # after the session plugin, which may fail the run on regime coverage
def pytest_sessionfinish(session, exitstatus):
    writer = session.config.conformance_results
    if isinstance(writer, _NoResults) or not hasattr(writer, "header"):  # no file, or an xdist worker's buffer
        return
    from reports.results import now

    status = session.exitstatus
    writer.write(
        "run_end",
        finished=now(),
        duration_s=round(time.time() - session.config.conformance_started, 3),
        exit_status=int(status),
        interrupted=_STOPPED_BY_USER,
        counts=dict(session.config.conformance_session.verdicts),
    )
    writer.close()


@pytest.fixture(scope="session")
def results(pytestconfig):
    """The run's results writer (a no-op without --results)."""
    return pytestconfig.conformance_results


@pytest.fixture(scope="session")
def conformance(pytestconfig):
    """The conformance session (engine/session.py): each item's run, the records, coverage."""
    return pytestconfig.conformance_session
