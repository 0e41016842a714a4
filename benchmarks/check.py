"""`python -m benchmarks.run --check`: are the in-house losses still as far ahead as the committed figures say?

The committed figures (benchmarks/committed.json, and benchmarks/committed-<machine>.json for each further machine:
the check judges against this machine's own, where it has one) are speedups measured side by side in one run:
the fastest peer's time over inhouse.torch's, and one N x N x D matmul's time over inhouse.torch's (both higher is
better), per task and N, each with its noise: the relative spread of the figure over the committed runs (never
below `min_noise`). The check measures them again here, in one run (peers, in-house and the matmul side by side:
ratios taken within a run cancel most of a machine's speed), and fails when a figure falls below committed x
(1 - noise) twice (run_check). It is run by hand after a change to inhouse/, never as a timed test in CI
(tests/inhouse/test_benchmark_command.py tests its logic).
`python -m benchmarks.run --commit RUNS [--tasks ...]` measures the figures to commit (run_commit), on a quiet machine.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.implementations import IMPLEMENTATIONS
from benchmarks.settings import machine
from reports.schema import LEAST_WORK, MATMUL, NOT_PEERS, OURS

COMMITTED = Path(__file__).resolve().parent / "committed.json"  # and committed-<machine>.json, one per machine
# What `--commit` measures with: one thread, D = 64, and a time cap under which a slow peer's repeats still fit
COMMIT_SETTING = {"d": 64, "threads": 1, "time_cap": 150}
COMMIT_WORDS = ("{runs} run(s) of `python -m benchmarks.run --commit {runs}` (time cap 150 s), 1 thread, forward + "
                "backward, fastest of the repeats; speedup = the other's time / inhouse.torch's (higher is better), the "
                "lower of the runs; noise = its relative spread over the runs, never below min_noise")
# Two --check runs ten minutes apart on the 2-core machine, no code changed between them, gave batch_hard's N = 4096
# figure over the matmul 0.534x and 0.806x: figures move by up to a third between sessions, far more than the
# spread of the back-to-back --commit runs (5%), so no figure's noise is taken below that.
DEFAULT_MIN_NOISE = 0.3


@dataclass(frozen=True)
class Figure:
    """One guarded speedup: `of` over inhouse.torch ("peer": the fastest peer; "matmul": the matmul)."""

    task: str
    n: int
    of: str
    speedup: float
    peer: str | None = None  # which peer was the fastest when committed (for the reader)


def speedups(records: list[dict]) -> list[Figure]:
    """Every figure the records of one run give: per (task, N), the fastest peer's and the matmul's time over
    inhouse.torch's. A task without a timed peer has no peer figure (the table says so)."""
    ok = [r for r in records if r.get("status") == "ok" and r.get("seconds")]
    matmul = {(r["d"], r["n"]): r["seconds"] for r in ok if r["implementation"] == MATMUL}
    figures = []
    for ours in (r for r in ok if r["implementation"] == OURS):
        key = (ours["task"], ours["d"], ours["n"])
        peers = [r for r in ok if (r["task"], r["d"], r["n"]) == key and r["implementation"] not in NOT_PEERS]
        if peers:
            fastest = min(peers, key=lambda r: r["seconds"])
            figures.append(Figure(ours["task"], ours["n"], "peer", fastest["seconds"] / ours["seconds"],
                                  fastest["implementation"]))
        if (ours["d"], ours["n"]) in matmul:
            figures.append(Figure(ours["task"], ours["n"], "matmul", matmul[(ours["d"], ours["n"])] / ours["seconds"]))
    return figures


def load(path: Path = COMMITTED) -> dict:
    return json.loads(path.read_text())


def own_figures(here: str) -> Path | None:
    """The committed figures file whose setting names this machine, or None."""
    for path in sorted(COMMITTED.parent.glob("committed*.json")):
        if load(path).get("setting", {}).get("machine") == here:
            return path
    return None


def figures_to_commit(here: str) -> Path:
    """Where `--commit` writes: this machine's file, or committed.json while there is none, or a new
    committed-<machine>.json: another machine's figures are never written over."""
    own = own_figures(here)
    if own or not COMMITTED.exists():
        return own or COMMITTED
    return COMMITTED.with_name(f"committed-{re.sub(r'[^a-z0-9]+', '-', here.lower()).strip('-')}.json")


def judge(committed: dict, measured: list[Figure]) -> list[str]:
    """The committed figures that the measured ones fall short of, beyond the noise, as lines of text; a committed
    figure that was not measured is a failure too (a peer that stopped running hides nothing)."""
    failures = []
    for entry, got, floor in shortfalls(committed, measured):
        if got is None:
            failures.append(f"{entry['task']} N={entry['n']} {entry['of']}: not measured")
        else:
            failures.append(f"{entry['task']} N={entry['n']} {entry['of']}: {got.speedup:.3g}x, below the committed "
                            f"{entry['speedup']:.3g}x less the noise {_noise(committed, entry):.0%} ({floor:.3g}x)")
    return failures


def shortfalls(committed: dict, measured: list[Figure]) -> list[tuple[dict, Figure | None, float]]:
    """(committed entry, measured figure or None, floor) of each figure below its floor or not measured."""
    found = {(f.task, f.n, f.of): f for f in measured}
    out = []
    for entry in committed["figures"]:
        floor = entry["speedup"] * (1.0 - _noise(committed, entry))
        got = found.get((entry["task"], entry["n"], entry["of"]))
        if got is None or got.speedup < floor:
            out.append((entry, got, floor))
    return out


def _noise(committed: dict, entry: dict) -> float:
    """A figure's own noise (its spread over the committed runs), never below the file's floor `min_noise`."""
    return max(entry.get("noise", 0.0), committed.get("min_noise", 0.0))


def table(committed: dict, measured: list[Figure]) -> str:
    found = {(f.task, f.n, f.of): f for f in measured}
    lines = [f"{'task':18s} {'N':>6s} {'over':7s} {'committed':>10s} {'noise':>6s} {'floor':>9s} {'measured':>9s}  peer"]
    for entry in committed["figures"]:
        got = found.get((entry["task"], entry["n"], entry["of"]))
        shown = f"{got.speedup:.3g}x" if got else "-"
        noise = _noise(committed, entry)
        lines.append(f"{entry['task']:18s} {entry['n']:6d} {entry['of']:7s} {entry['speedup']:9.3g}x {noise:6.0%} "
                     f"{entry['speedup'] * (1 - noise):8.3g}x {shown:>9s}  {(got and got.peer) or ''}")
    return "\n".join(lines)


def committed_figures(figures: list[Figure], runs: list[list[Figure]], min_noise: float) -> dict:
    """What to commit from several runs: each figure's lowest value and its noise, the relative spread
    (max - min) / max of its values over the runs; `min_noise` is the floor of every figure's noise."""
    by_key: dict = {}
    for run in runs:
        for f in run:
            by_key.setdefault((f.task, f.n, f.of), []).append(f.speedup)
    entries = []
    for f in figures:
        values = by_key[(f.task, f.n, f.of)]
        entries.append({"task": f.task, "n": f.n, "of": f.of, "peer": f.peer, "speedup": float(f"{min(values):.4g}"),
                        "noise": float(f"{(max(values) - min(values)) / max(values):.3g}")})
    return {"min_noise": min_noise, "figures": entries}


def run_check(args, sweep) -> int:
    """Measure the committed figures' tasks and sizes (per task: inhouse.torch, the peers the figures name, the
    matmul, side by side), print the comparison, and return 1 if one fell short twice: the tasks of the figures that
    fell short are measured once more and each figure keeps the better of its two values (a regression falls short
    both times; a neighbour's burst on a shared machine, which halved circle's N = 4096 figure once with no code
    changed, rarely does)."""
    here = machine(["cpu"])
    path = args.check_file or own_figures(here) or COMMITTED
    if not path.exists():
        print(f"error: no committed figures at {path} (`--commit` writes them)", file=sys.stderr)
        return 2
    committed = load(path)
    print(f"judging against {path}")
    setting = committed["setting"]
    args.sizes = sorted({e["n"] for e in committed["figures"]})
    args.dims, args.devices, args.threads = [setting["d"]], ["cpu"], setting["threads"]
    # a call of a slow peer (pytorch-metric-learning at N = 4096: 10 to 20 s) is repeated only while its repeats fit
    # in half the cap; with the default 60 s its first call, warm-up included, would be the time (measure.py)
    args.time_cap = max(args.time_cap, setting["time_cap"])
    note = other_machine(committed, here)
    if note:
        print(note)
    measured = _measure(args, sweep, committed, dict.fromkeys(e["task"] for e in committed["figures"]))
    print(table(committed, measured))
    short = dict.fromkeys(entry["task"] for entry, _, _ in shortfalls(committed, measured))
    if short:
        print(f"measuring {', '.join(short)} once more: a figure fails only if it falls short twice")
        again = _measure(args, sweep, committed, short)
        measured = better_of(measured, again)
        print(table(committed, [f for f in measured if f.task in short]))
    failures = judge(committed, measured)
    for line in failures:
        print(f"FAILED {line}")
    print("check: " + ("failed" if failures else "every figure within its noise"))
    return 1 if failures else 0


def _measure(args, sweep, committed: dict, tasks) -> list[Figure]:
    # the peer each figure was committed against, not every peer: a peer that runs out of time or memory
    # (recorded, never timed) would cost minutes and guard nothing
    def committed_peers(task: str) -> list[str]:
        return sorted({e["peer"] for e in committed["figures"] if e["task"] == task and e.get("peer")})

    return speedups(_each_task(args, sweep, tasks, committed_peers, _Discard()))


def _each_task(args, sweep, tasks, peers, writer) -> list[dict]:
    """The records of one sweep per task: inhouse.torch and `peers(task)` side by side (the matmul with them)."""
    records = []
    for task in tasks:
        args.tasks, args.implementations = [task], [OURS, *peers(task)]
        records += sweep(args, writer)
    return records


def better_of(first: list[Figure], second: list[Figure]) -> list[Figure]:
    """Each figure's higher value of two measurements (a figure measured once keeps its value)."""
    best = {(f.task, f.n, f.of): f for f in first}
    for f in second:
        key = (f.task, f.n, f.of)
        if key not in best or f.speedup > best[key].speedup:
            best[key] = f
    return list(best.values())


def measured_elsewhere(committed: dict, here: str) -> str | None:
    """The CPU model the committed figures were measured on, where that is not `here` (else None)."""
    there = committed.get("setting", {}).get("machine")
    return None if there == here else there


def other_machine(committed: dict, here: str) -> str | None:
    """A line for the reader where the committed figures were measured on another CPU model than `here`: a ratio of
    two implementations moves with the CPU (its vector width, caches, BLAS kernels), not only with the code."""
    there = measured_elsewhere(committed, here)
    if there is None:
        return None
    return (f"note: the committed figures were measured on {there}; this is {here}. A ratio moves with the CPU "
            "model: where a figure falls short here, `python -m benchmarks.run --commit 3` at the code before the "
            f"change, on this machine, writes its own figures ({figures_to_commit(here).name}), which later checks "
            "here judge against.")


def peers_of(task: str) -> list[str]:
    """The implementations that compute the task, but ours: neither a reference (the oracle, the matmul, the least
    work) nor inhouse.triton (ours too)."""
    return [name for name, impl in IMPLEMENTATIONS.items()
            if task in impl.specs and name not in NOT_PEERS]


def run_commit(args, sweep, recorded) -> int:
    """Measure the figures to commit: `args.commit` runs, each measuring inhouse.torch, every peer of each of
    `args.tasks` (and its least work) and the matmul side by side at `args.sizes`, each a run of its own in the results
    file (`recorded`: the figures come with the records they were taken from), then write committed_figures() of
    those runs to the check file, in place of its figures for those tasks (the other tasks' figures are kept)."""
    here = machine(["cpu"])
    path = args.check_file or figures_to_commit(here)
    previous = load(path) if path.exists() else {"min_noise": DEFAULT_MIN_NOISE, "figures": []}
    tasks = list(args.tasks)
    mixed = mixed_machines(previous, tasks, here)
    if mixed:
        print(f"error: {mixed}", file=sys.stderr)
        return 2
    args.dims, args.devices, args.threads = [COMMIT_SETTING["d"]], ["cpu"], COMMIT_SETTING["threads"]
    args.time_cap = max(args.time_cap, COMMIT_SETTING["time_cap"])
    everyone = [OURS, *dict.fromkeys(name for task in tasks for name in _beside(task))]
    runs = []
    for _ in range(args.commit):
        args.tasks, args.implementations = tasks, everyone  # what the run's header says it measured
        runs.append(speedups(recorded(args, lambda writer: _each_task(args, sweep, tasks, _beside, writer))))
        print(_listed(runs[-1]), flush=True)
    fresh = committed_figures(runs[0], runs, previous["min_noise"])
    kept = [e for e in previous["figures"] if e["task"] not in tasks]
    setting = {**COMMIT_SETTING, "runs": args.commit, "machine": here,
               "measured": COMMIT_WORDS.format(runs=args.commit)}
    path.write_text(json.dumps({"setting": setting, "min_noise": previous["min_noise"],
                                "figures": kept + fresh["figures"]}, indent=1) + "\n")
    print(f"wrote {path}: {len(fresh['figures'])} figures of {', '.join(tasks)}, {len(kept)} kept")
    return 0


def mixed_machines(previous: dict, tasks: list[str], here: str) -> str | None:
    """Why committing `tasks` on `here` would mix two machines' figures in one file (its setting names one machine
    for all of them), or None: the file's other tasks were measured on another CPU model."""
    there = measured_elsewhere(previous, here)
    kept = sorted({e["task"] for e in previous["figures"] if e["task"] not in tasks})
    if there is None or not kept:
        return None
    return (f"the committed figures were measured on {there}; this is {here}. Committing {', '.join(tasks)} here "
            f"would leave {', '.join(kept)} under this machine's name: commit every task here (no --tasks), or "
            "write to another --check-file. Nothing was measured.")


def _beside(task: str) -> list[str]:
    """What --commit measures beside inhouse.torch: every peer, and the least work where the task has one (how far
    ahead of the peers any implementation doing that work could be)."""
    return peers_of(task) + ([LEAST_WORK] if task in IMPLEMENTATIONS[LEAST_WORK].specs else [])


def _listed(figures: list[Figure]) -> str:
    return "\n".join(f"{f.task:18s} {f.n:6d} {f.of:7s} {f.speedup:9.3g}x  {f.peer or ''}" for f in figures)


class _Discard:
    """The sweep's writer for a check: the figures are printed, nothing is written."""

    def write(self, kind: str, **record) -> None:
        pass
