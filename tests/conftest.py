"""The suite's own tests (the suite itself is suite/, its engine engine/): SIGINT handled, the mutation score in the
summary."""
import signal


def pytest_configure(config):
    """The Ctrl-C tests send SIGINT to child processes, and a child inherits an ignored SIGINT: a run started in the
    background by a script (`cmd &`, nohup) ignores it, and none of its children would ever see a Ctrl-C. Handled
    here (KeyboardInterrupt, as in a terminal), every child starts with the default."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_terminal_summary(terminalreporter, config):
    score = getattr(config, "mutation_score", None)
    if score:
        terminalreporter.section("mutation score (tests/mutants/zoo.py)")
        for what, (count, of) in score.items():
            terminalreporter.write_line(f"{what}: {count} of {of}")
