"""The suite's own tests (the suite itself is suite/, its engine engine/): the mutation score in the summary."""


def pytest_terminal_summary(terminalreporter, config):
    score = getattr(config, "mutation_score", None)
    if score:
        terminalreporter.section("mutation score (tests/mutants/zoo.py)")
        for what, (count, of) in score.items():
            terminalreporter.write_line(f"{what}: {count} of {of}")
