"""The oracle tests' tally (oracle_helpers.Tally): a round that sets most of its draws aside gets a second."""
import pytest

import oracle_helpers
from oracle_helpers import Tally


def _rounds(*outcomes):
    """A stand-in for a Hypothesis test: round k checks and sets aside outcomes[k] = (checked, set aside) draws."""
    rounds = iter(outcomes)
    calls = []

    def check(tally):
        checked, aside = next(rounds)
        calls.append(1)
        tally.checked["fully"] += checked
        tally.set_aside["ambiguous"] += aside

    return check, calls


@pytest.fixture(autouse=True)
def _own_tallies(monkeypatch):
    monkeypatch.setattr(oracle_helpers, "TALLIES", [])


def test_a_round_that_sets_most_aside_by_chance_gets_a_second():
    tally, (check, calls) = Tally("chance"), _rounds((10, 20), (26, 4))
    tally.judge(lambda: check(tally))
    assert len(calls) == 2 and tally.mostly_checked()


def test_a_strategy_that_sets_most_aside_fails_both_rounds():
    tally, (check, calls) = Tally("systematic"), _rounds((10, 20), (12, 18))
    with pytest.raises(AssertionError, match="more than half of the draws were set aside"):
        tally.judge(lambda: check(tally))
    assert len(calls) == 2


def test_a_round_that_checks_most_is_judged_alone():
    tally, (check, calls) = Tally("usual"), _rounds((24, 6))
    tally.judge(lambda: check(tally))
    assert len(calls) == 1
