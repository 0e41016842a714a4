"""A test that tests/engine/test_parallel.py runs under pytest-xdist (`-n 2`): it sets a mutation score as
tests/mutants does, on its worker, and the controller's summary must print it. Not collected by default (the
name is not test_*.py)."""


def test_sets_a_score(request):
    request.config.mutation_score = {"probe implementations flagged": (3, 4)}
