"""Helpers of the fault tests: run the conformance suite in a pytest subprocess, as a user would, and read
what it left (tests/faults is on sys.path, as pytest puts a test file's directory there)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def conformance_command(adapters: str, results: Path, timeout: float = 10.0) -> list[str]:
    """The conformance run over `adapters` (MODULE:ATTR): derandomised, no Hypothesis database, no cache."""
    return [
        sys.executable, "-m", "pytest", "suite/test_conformance.py", "--adapter", adapters,
        "--results", str(results), "--adapter-timeout", str(timeout), "--hypothesis-profile", "ci",
        "-p", "no:randomly", "-p", "no:cacheprovider", "-q",
    ]


def records(path: Path) -> list[dict]:
    """Every line of a results file, each of which must be a JSON object."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def build_page(results: Path, page: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reports", str(results), "-o", str(page)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
