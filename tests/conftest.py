"""Hypothesis profiles, shared by every test module.

dev       fast local iteration (the default outside CI)
ci        derandomised and bounded (loaded automatically when CI=true)
thorough  many examples; conformance checks `target()` the normalised error to hunt the worst case
Pick one with `pytest --hypothesis-profile NAME`.
"""
import os

from hypothesis import HealthCheck, settings

_quiet = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=_quiet)
settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True, database=None, print_blob=True, suppress_health_check=_quiet
)
settings.register_profile("thorough", max_examples=2000, deadline=None, print_blob=True, suppress_health_check=_quiet)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev")
