"""The suite's own tests (the suite itself is suite/, its engine engine/): SIGINT handled, the mutation score in the
summary (from whichever xdist worker ran it)."""
import signal

import pytest


def pytest_configure(config):
    """The Ctrl-C tests send SIGINT to child processes, and a child inherits an ignored SIGINT: a run started in the
    background by a script (`cmd &`, nohup) ignores it, and none of its children would ever see a Ctrl-C. Handled
    here (KeyboardInterrupt, as in a terminal), every child starts with the default."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionfinish(session):
    """On a pytest-xdist worker: hand the mutation score to the controller, which prints the summary."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None and getattr(session.config, "mutation_score", None):
        output["mutation_score"] = session.config.mutation_score


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """On the xdist controller: a worker's mutation score (its module ran in that one worker)."""
    score = getattr(node, "workeroutput", {}).get("mutation_score")
    if score:
        node.config.mutation_score = {**getattr(node.config, "mutation_score", {}), **score}


def pytest_terminal_summary(terminalreporter, config):
    score = getattr(config, "mutation_score", None)
    if score:
        terminalreporter.section("mutation score (tests/mutants/zoo.py)")
        for what, (count, of) in score.items():
            terminalreporter.write_line(f"{what}: {count} of {of}")
