"""What every part of the GPU command (gpu/command.py) shares: the modes (the real run, the dry one), the run's
context, and the repository root the children run in."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

GRACE_S = 15.0  # after SIGINT, how long a shard may take to write its last records


@dataclass(frozen=True)
class Mode:
    name: str  # "cuda" or "dry": the suffix of the files it writes
    targets: tuple[str, ...]
    profile: str  # gpu/plugin.py's Hypothesis profile
    shards: int
    conformance_budget: float
    benchmark_budget: float
    report_budget: float
    total_budget: float
    benchmark_args: tuple[str, ...]


# The real run on one GPU, budgeted for an H100: conformance ~3 min, benchmarks ~4 min, the report under 1.
GPU = Mode(
    name="cuda",
    targets=("cuda", "cuda-tf32"),
    profile="gpu",
    shards=8,
    conformance_budget=180.0,
    benchmark_budget=220.0,
    report_budget=45.0,
    total_budget=470.0,
    benchmark_args=(
        "--devices", "cuda", "--dims", "128",
        "--sizes", "1024", "2048", "4096", "8192", "16384", "32768", "65536",
        "--tasks", "batch_hard", "batch_all", "semi_hard", "semi_hard_all",
        "--max-n", "semi_hard=16384", "semi_hard_all=16384",
        "--implementations", "inhouse.triton", "inhouse.torch", "pytorch-metric-learning", "torch.naive",
        "--time-cap", "30", "--implementation-cap", "45", "--min-timed-seconds", "0.25", "--memory-cap-gb", "48",
    ),
)
# The dry mode's caps are far above what its toy sizes take: on a loaded machine a capped measurement would read as a
# timeout, which is no finding about the code.
DRY = Mode(
    name="dry",
    targets=("cpu", "cuda", "cuda-tf32"),
    profile="gpu-dry",
    shards=1,
    conformance_budget=120.0,
    benchmark_budget=60.0,
    report_budget=60.0,
    total_budget=300.0,
    benchmark_args=(
        "--devices", "cpu", "--dims", "16", "--sizes", "32", "64", "--tasks", "batch_hard",
        "--implementations", "inhouse.triton", "pytorch-metric-learning",
        "--time-cap", "120", "--implementation-cap", "180", "--process-per", "implementation",
        "--min-timed-seconds", "0.02", "--repeats", "1",
    ),
)


@dataclass
class Context:
    mode: Mode
    out: Path
    started: float
    env: dict
    device: str = ""  # "cuda:0 NVIDIA H100 80GB HBM3", or "" without CUDA
    no_cuda: str = ""  # why there is no CUDA device, or ""
    machine: str = ""
    wheels: str = "not asked for"
    site: Path | None = None  # the temporary folder the wheels went into
    summary: list[str] = field(default_factory=list)

    def left(self) -> float:
        return self.mode.total_budget - (time.monotonic() - self.started)

    def say(self, line: str) -> None:
        print(f"[gpu {time.monotonic() - self.started:6.1f}s] {line}", flush=True)
