"""What the suite's own tests hand a child pytest they start (tests/engine/test_parallel.py,
test_without_frameworks.py)."""
import os


def environment(**extra: str) -> dict[str, str]:
    """This environment for a child pytest: CI=true (the derandomised profile, as CI has it), none of the variables
    an enclosing xdist worker or the user's PYTEST_ADDOPTS would hand down."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST") and k != "PYTEST_ADDOPTS"}
    env.update(CI="true", **extra)
    return env
