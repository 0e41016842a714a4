"""The default verdict equals the thorough verdict (issue 15): the hunt's committed results
(reports/results/thorough-float32.jsonl, written by `tox -e thorough`) hold nothing unregistered, and every
divergence the hunt met, the derandomised ci profile meets too, through a regression batch, so the page's verdict
does not depend on how long one searched. A new find committed without its registry entry or regression batch
fails here (or, when this run holds its cell under ci, there, as a strict XPASS)."""
import json
import subprocess
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[2]
HUNT = ROOT / "reports" / "results" / "thorough-float32.jsonl"


def comparisons(path: Path) -> list[dict]:
    return [r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if r["kind"] == "comparison"]


@pytest.fixture(scope="module")
def hunt() -> list[dict]:
    assert HUNT.exists(), f"{HUNT} is missing: run `tox -e thorough` and commit it"
    return comparisons(HUNT)


def test_the_hunt_ran_the_thorough_profile_and_left_nothing_unregistered(hunt):
    header = json.loads(HUNT.read_text(encoding="utf-8").splitlines()[0])
    assert header["hypothesis"]["profile"] == "thorough"
    unregistered = [f"{r['adapter']}|{r['spec_label']}|{r['dtype']}|{r['quantity']}: {r['reason'][:200]}"
                    for r in hunt if r["verdict"] in ("fail", "error", "xpass")]
    assert not unregistered, "register or fix each, with a regression batch:\n" + "\n".join(unregistered)


def strict_xfails_this_run_makes(session, nodeids: set[str], profile: str) -> set[str]:
    """Those of `nodeids` that this session runs itself, under the Hypothesis `profile` ci, as strict xfails: in
    this same run each fails the run as an XPASS should ci not reach its divergence, so no child run need repeat them."""
    if profile != "ci":
        return set()
    return {item.nodeid for item in session.items if item.nodeid in nodeids
            and any(mark.kwargs.get("strict") for mark in item.iter_markers("xfail"))}


def runnable_here(records: list[dict]) -> tuple[list[dict], dict[str, str]]:
    """`records` whose adapter can run on its target in this environment, and for the others adapter -> why not (a
    tox environment has one framework stack, the oracle's none: their cells would only skip here)."""
    from adapters import catalog, unavailable

    adapters = {adapter.name: adapter for adapter in catalog()}
    gone = sorted({r["adapter"] for r in records} - set(adapters))
    assert not gone, f"the hunt judged adapters the catalog no longer has (rerun `tox -e thorough`): {gone}"
    reasons = {(r["adapter"], r["device"]): unavailable(adapters[r["adapter"]], r["device"]) for r in records}
    runnable = [r for r in records if not reasons[r["adapter"], r["device"]]]
    return runnable, {adapter: reason for (adapter, _), reason in sorted(reasons.items()) if reason}


def test_the_ci_profile_reaches_every_verdict_the_hunt_reached(hunt, tmp_path, request):
    """Under ci, every cell the hunt found diverging must be a strict xfail that holds: the cells this run runs
    itself as strict xfails under ci are judged there; the others run in a child pytest under ci. Only the cells of
    the adapters that can run here are judged; the others are named (a warning, or the skip when none can run)."""
    diverging, not_here = runnable_here([r for r in hunt if r["verdict"] == "xfail"])
    by_reason = defaultdict(list)
    for adapter, reason in not_here.items():
        by_reason[reason].append(adapter)
    unjudged = "; ".join(f"{', '.join(adapters)} ({reason})" for reason, adapters in by_reason.items())
    if not diverging:
        if not_here:
            pytest.skip(f"no adapter the hunt found diverging can run here: {unjudged}")
        return
    if not_here:
        warnings.warn(f"the hunt's divergences not judged here (their adapters cannot run here): {unjudged}")
    nodeids = {r["nodeid"] for r in diverging}
    here = strict_xfails_this_run_makes(request.session, nodeids, settings.get_current_profile_name())
    elsewhere = sorted(nodeids - here)
    if elsewhere:
        results = tmp_path / "ci.jsonl"
        run = subprocess.run(
            [sys.executable, "-m", "pytest", *elsewhere, "--hypothesis-profile", "ci", "-p", "no:cacheprovider", "-q",
             "--results", str(results)],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )
        assert run.returncode == 0, run.stdout[-3000:]
        ci = {r["nodeid"]: r["verdict"] for r in comparisons(results)}
        missed = [nodeid for nodeid in elsewhere if ci.get(nodeid) != "xfail"]
        assert not missed, "the hunt's divergences the ci profile does not reach (add a regression batch):\n" + "\n".join(missed)


def test_only_the_cells_this_run_holds_as_strict_xfails_under_ci_are_left_to_it():
    from types import SimpleNamespace

    def item(nodeid, **xfail):
        return SimpleNamespace(nodeid=nodeid, iter_markers=lambda name: [SimpleNamespace(kwargs=xfail)] if xfail else [])

    session = SimpleNamespace(items=[item("a", strict=True), item("b", strict=False), item("c"), item("z", strict=True)])
    assert strict_xfails_this_run_makes(session, {"a", "b", "c", "d"}, "ci") == {"a"}
    assert strict_xfails_this_run_makes(session, {"a", "b", "c", "d"}, "dev") == set()
