"""`python -m engine.machine_variation [PYTEST ARGS]`: the ci profile under the settings a user's machine can bring,
run side by side, and every verdict that changed between them (`tox -e machine-variation`).

A verdict made on one machine must hold on every other: a cell whose outcome (passed, failed, xfailed, skipped)
depends on TensorFlow's oneDNN kernels, the thread count, torch's deterministic algorithms, flushed denormals or the
instruction set the math libraries' kernels use is a defect in the judgement or in a registry entry. Five settings,
two values each, in the six runs of DESIGN: every pair of values of every two settings meets in one run at least (a
covering array of strength 2), so a verdict that needs two settings together to change is caught too, in six runs
instead of thirty-two. The kernels' setting stands for another CPU on the machine at hand: `native` loads what this
CPU runs best, `narrowest` what an old or another CPU would run (engine/machine.py `narrowest_kernels`).

Without arguments it runs the built-in adapters' float32 CPU cells (`suite -k "float32 and cpu"`); each run writes
its results and JUnit file under --out (default results/machine-variation/). Exit status 0: every run passed and no
verdict changed; 1 otherwise (the cells are listed); 2: a run could not be started or read.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from .machine import ENVIRONMENT, KERNEL_VARIABLES, narrowest_kernels

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SELECTION = ("suite", "-k", "float32 and cpu")
# (setting, its two values): the values as the run's environment gets them (see `environment`)
FACTORS = (
    ("TF_ENABLE_ONEDNN_OPTS", ("0", "1")),
    ("threads", ("1", "2")),
    ("deterministic", ("off", "on")),
    ("flush_denormal", ("off", "on")),
    ("kernels", ("native", "narrowest")),
)
# Each setting's column is a 3-subset of runs 1 to 5, none the same: any two columns meet in a run where both are
# on, each has a run of its own, and run 0 (every default) has both off
DESIGN = ((0, 0, 0, 0, 0), (0, 0, 0, 0, 1), (0, 1, 1, 1, 1), (1, 0, 1, 1, 1), (1, 1, 0, 1, 0), (1, 1, 1, 0, 0))


def settings_of(row: tuple[int, ...]) -> dict[str, str]:
    return {name: values[level] for (name, values), level in zip(FACTORS, row)}


def label(row: tuple[int, ...]) -> str:
    """A run's name: its settings, short (onednn1-threads2-deterministic-ftz-narrowest)."""
    chosen = settings_of(row)
    parts = [f"onednn{chosen['TF_ENABLE_ONEDNN_OPTS']}", f"threads{chosen['threads']}"]
    parts += [short for name, short in (("deterministic", "deterministic"), ("flush_denormal", "ftz"))
              if chosen[name] == "on"]
    parts += ["narrowest"] if chosen["kernels"] == "narrowest" else []
    return "-".join(parts)


def environment(row: tuple[int, ...], base: dict[str, str]) -> dict[str, str]:
    """The child run's environment: the ci profile, TF's kernels, every framework's threads and instruction set, and
    the torch settings engine/machine.py applies to each adapter call."""
    chosen = settings_of(row)
    # the kernels this row names, whatever the caller's shell set (native: what the CPU offers)
    env = {name: value for name, value in base.items() if name not in KERNEL_VARIABLES}
    env.update(CI="true", TF_ENABLE_ONEDNN_OPTS=chosen["TF_ENABLE_ONEDNN_OPTS"])
    if chosen["kernels"] == "narrowest":
        env.update(narrowest_kernels())
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        env[variable] = chosen["threads"]
    torch_settings = [name for name in ("deterministic", "flush_denormal") if chosen[name] == "on"]
    env[ENVIRONMENT] = ",".join(torch_settings)
    return env


def outcomes(junit: Path) -> dict[str, str]:
    """test id -> passed, failed, xfailed or skipped, from a JUnit file (a strict XPASS is a failure there)."""
    found = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        skipped = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            found[test_id] = "failed"
        elif skipped is not None:
            found[test_id] = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
        else:
            found[test_id] = "passed"
    return found


def differences(runs: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """test id -> {run: outcome} for every test whose outcome is not the same in every run (absent: "not run")."""
    ids = sorted(set().union(*runs.values())) if runs else []
    changed = {}
    for test_id in ids:
        seen = {name: found.get(test_id, "not run") for name, found in runs.items()}
        if len(set(seen.values())) > 1:
            changed[test_id] = seen
    return changed


def run_one(row: tuple[int, ...], pytest_args: list[str], out: Path, workers: str) -> tuple[dict[str, str], float]:
    name = label(row)
    junit, results = out / f"{name}.xml", out / f"{name}.jsonl"
    results.unlink(missing_ok=True)
    parallel = [] if workers == "0" else ["-n", workers, "--dist", "loadgroup"]
    command = [sys.executable, "-m", "pytest", *pytest_args, *parallel, "-q", "-p", "no:cacheprovider",
               f"--junitxml={junit}", f"--results={results}"]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=environment(row, dict(os.environ)), capture_output=True, text=True)
    (out / f"{name}.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode not in (0, 1) or not junit.exists():
        raise RuntimeError(f"run {name} exited {done.returncode} without its JUnit file; see {out / (name + '.log')}:\n"
                           + (done.stdout + done.stderr)[-2000:])
    return outcomes(junit), time.monotonic() - started


def main(argv: list[str] | None = None, design: tuple[tuple[int, ...], ...] = DESIGN) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.machine_variation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "machine-variation",
                        help="where each run's results, JUnit file and log go")
    parser.add_argument("--workers", default="2", help="pytest-xdist workers per run (0: one process)")
    options, pytest_args = parser.parse_known_args(argv)
    options.out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for row in design:
        try:
            found, seconds = run_one(row, pytest_args or list(DEFAULT_SELECTION), options.out, options.workers)
        except (RuntimeError, ElementTree.ParseError) as exc:
            print(f"machine-variation: {exc}", file=sys.stderr)
            return 2
        runs[label(row)] = found
        counts = {outcome: list(found.values()).count(outcome) for outcome in sorted(set(found.values()))}
        print(f"{label(row):40s} {seconds:6.0f} s  " + ", ".join(f"{n} {o}" for o, n in counts.items()), flush=True)
    changed = differences(runs)
    failing = sorted({test_id for found in runs.values() for test_id, outcome in found.items() if outcome == "failed"})
    for test_id, seen in changed.items():
        print(f"CHANGED {test_id}: " + ", ".join(f"{name}={outcome}" for name, outcome in seen.items()))
    for test_id in failing:
        if test_id not in changed:
            print(f"FAILED in every run: {test_id}")
    print(f"machine-variation: {len(design)} runs, {len(changed)} verdicts changed, {len(failing)} tests failed")
    return 1 if changed or failing else 0


if __name__ == "__main__":
    sys.exit(main())
