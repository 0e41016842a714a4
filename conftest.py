"""The suite's pytest plugin (engine/pytest_plugin.py): options, Hypothesis profiles, the conformance session."""
pytest_plugins = ["engine.pytest_plugin"]
