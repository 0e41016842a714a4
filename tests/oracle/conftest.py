"""The oracle self-tests' end-of-run summary: how many draws each checking test set aside."""

from oracle_helpers import TALLIES


def pytest_terminal_summary(terminalreporter):
    if TALLIES:
        terminalreporter.section("oracle self-tests: draws checked and set aside")
        for tally in TALLIES:
            terminalreporter.write_line(tally.summary())
