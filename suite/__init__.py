"""The suite: the checks that judge adapters (`pytest --adapter MODULE:ATTR` collects these). The engine that
runs them is engine/; the tests of the suite itself are tests/."""
