"""How many examples each item runs, under which Hypothesis profile: the one home of every per-profile count (a
profile is chosen with --hypothesis-profile, or CI=true for "ci"); engine/cell_run.py `for_each_batch` runs them.

    dev       the default: a fresh search on every run
    ci        derandomised and bounded (loaded automatically when CI=true)
    report    the main job's (./run.sh report): derandomised as ci, as deep as dev
    thorough  the hunt: 2000 examples per item
    gpu       the GPU command's (gpu/): derandomised as ci (one tree gives one result), 20 examples per cell
    gpu-dry   its dry mode: 2 examples per cell
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

_quiet = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
# target() hunts the worst case only with thousands of examples; below that its phase just spends time.
_untargeted = [phase for phase in Phase if phase is not Phase.target]


GPU_EXAMPLES_PER_CELL = {"gpu": 20, "gpu-dry": 2}


def register_profiles() -> None:
    settings.register_profile("dev", max_examples=30, deadline=None, phases=_untargeted, suppress_health_check=_quiet)
    settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, database=None, print_blob=True,
                              phases=_untargeted, suppress_health_check=_quiet)
    settings.register_profile("report", parent=settings.get_profile("ci"))  # its examples: EXAMPLES_PER_CELL
    settings.register_profile("thorough", max_examples=2000, deadline=None, print_blob=True,
                              suppress_health_check=_quiet)
    for name, examples in GPU_EXAMPLES_PER_CELL.items():  # their max_examples are the per-cell count
        settings.register_profile(name, parent=settings.get_profile("ci"), max_examples=examples)
    settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev")


# Examples per conformance cell (after its regression batches), by Hypothesis profile; other profiles (thorough, a
# user's own) use their max_examples. ci is derandomised: its examples are the same on every run, a fixed sample that
# guards against regressions (with the regression batches, which replay what every search found, and each geometry
# of the batch strategy at its extreme, engine/draws.py `extremes`, 7 fixed examples that every profile runs);
# the search itself is dev's (new examples on every run) and the thorough hunt's (2000 per cell). CI runs ~1500 cells
# on 2 cores within 8 minutes: 3 drawn each beside the 7 extremes cost about what 10 drawn did (measured serially on
# the torch, TF-Addons, PML, sentence-transformers and gloo subsets: +3%, against +18% with 5 drawn) and reach what
# a sample of 10 missed; the mutation zoo (tests/mutants) and the agreement with the hunt
# (tests/engine/test_thorough_agreement.py) are measured at this count, every run.
EXAMPLES_PER_CELL = {"dev": 20, "ci": 3, "report": 20}  # report: the main job's, as deep as dev, derandomised
# On a distributed target (contract/targets.py, processes > 1) an example is a round trip through W processes and
# their collectives: about 15 ms at W = 2 and 30 ms at W = 3 on 2 cores, against well under 1 ms in one process. 10
# each (ci: 3 beside the 7 extremes, as above) keeps CI's distributed cells (pytest suite -k dist-gloo) within a few
# minutes; the shard layouts and batches still vary across them, and `thorough` runs its full count.
EXAMPLES_PER_DISTRIBUTED_CELL = {"dev": 10, "ci": 3, "report": 10}
# Per property item, besides its regression batches and the strategy's extremes (ci: 3 drawn, as the conformance
# cells); other profiles use their max_examples / 10 (at least 10).
EXAMPLES_PER_PROPERTY = {"dev": 10, "ci": 3, "report": 10}
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)  # a known divergence needs no minimal example


def examples_per_cell(processes: int = 1) -> int:
    table = EXAMPLES_PER_CELL if processes == 1 else EXAMPLES_PER_DISTRIBUTED_CELL
    return table.get(settings.get_current_profile_name(), settings.default.max_examples)


def examples_per_property() -> int:
    return EXAMPLES_PER_PROPERTY.get(settings.get_current_profile_name(),
                                     max(settings.default.max_examples // 10, 10))


# A time box per cell for the hunt (--cell-seconds): None runs a cell's examples in one go.
CELL_SECONDS: float | None = None
ROUND = 50  # examples per round of a time-boxed cell
