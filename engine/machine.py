"""The settings of a user's machine that can change a framework's arithmetic, and applying them to adapter calls.

    flush_denormal  denormal numbers read and written as 0 (torch.set_flush_denormal: the FTZ and DAZ bits of the
                    thread that runs the adapter; some BLAS builds and -ffast-math programs set them)
    deterministic   torch.use_deterministic_algorithms(True) (other kernels, other summation orders)
    threads=N       torch.set_num_threads(N) (a reduction split another way)

TensorFlow picks its oneDNN kernels when it loads (TF_ENABLE_ONEDNN_OPTS), and every math library picks its
kernels by the CPU's instruction set when it loads (`narrowest_kernels`), so only a new process varies those:
`tox -e machine-variation` runs the ci profile under each combination and compares the verdicts
(engine/machine_variation.py).
Within one run, the property `machine_settings` (suite/test_properties.py) asks a torch adapter again under each
setting and holds its answer to the default one: a verdict must not depend on the machine it was made on.

CONFORMANCE_MACHINE_SETTINGS="flush_denormal,deterministic,threads=1" applies settings to every call of a run.
"""
from __future__ import annotations

import contextlib
import os
import platform
import sys
import threading

ENVIRONMENT = "CONFORMANCE_MACHINE_SETTINGS"
KNOWN = ("flush_denormal", "deterministic", "threads")
# What picks a library's kernels when it loads: TensorFlow's oneDNN switch, each math library's instruction set
# (`narrowest_kernels`)
KERNEL_VARIABLES = ("TF_ENABLE_ONEDNN_OPTS", "NPY_DISABLE_CPU_FEATURES", "ATEN_CPU_CAPABILITY",
                    "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR", "OPENBLAS_CORETYPE", "ONEDNN_MAX_CPU_ISA")
FRAMEWORK_VARIABLES = (*KERNEL_VARIABLES, "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "MKL_NUM_THREADS")

# The vector instructions a CPU offers, widest first, by their /proc/cpuinfo flags: every math library loads its
# kernels by them, so two CPUs of one model name (an AMD EPYC with AVX-512 and one without) can rank two
# implementations apart
VECTOR_INSTRUCTIONS = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("sve", "SVE"), ("asimd", "NEON"))

_lock = threading.Lock()
_varied: tuple[str, ...] = ()  # what `varied` adds to the run's settings, for the calls made inside it


def parse(text: str) -> tuple[str, ...]:
    """The settings named in `text` (comma-separated), checked: a typo must not run the defaults silently."""
    settings = tuple(part.strip() for part in text.split(",") if part.strip())
    for setting in settings:
        name, _, value = setting.partition("=")
        if name not in KNOWN or (name == "threads") != bool(value) or (value and not value.isdigit()):
            raise ValueError(f"{ENVIRONMENT}: unknown setting {setting!r}; known: flush_denormal, deterministic, "
                             f"threads=N")
    return settings


def configured() -> tuple[str, ...]:
    """The run's settings (from the environment) and those of an enclosing `varied`."""
    return parse(os.environ.get(ENVIRONMENT, "")) + _varied


def in_force() -> dict[str, str]:
    """What the results header records: the run's settings and the environment variables that choose the
    frameworks' kernels and threads (unset ones left out)."""
    found = {name: os.environ[name] for name in FRAMEWORK_VARIABLES if name in os.environ}
    return {"settings": ",".join(configured()), **found}


def numpy_simd():
    """NumPy's module that names its SIMD features: `__cpu_dispatch__` (chosen at load), `__cpu_features__` (in use)."""
    try:
        from numpy._core import _multiarray_umath
    except ImportError:  # NumPy 1
        from numpy.core import _multiarray_umath
    return _multiarray_umath


def cpu_words(cpuinfo: str | None = None) -> str:
    """The CPU in words: its model name and the widest vector instructions it offers ("AMD EPYC (AVX2)"), read from
    `cpuinfo` (None: /proc/cpuinfo; the platform's name where it has no model name)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as file:
                cpuinfo = file.read()
        except OSError:
            cpuinfo = ""
    fields = {}
    for line in cpuinfo.splitlines():
        key, colon, value = line.partition(":")
        if colon:
            fields.setdefault(key.strip(), value.strip())  # the first processor's
    model = fields.get("model name") or platform.processor() or platform.machine()
    offered = set((fields.get("flags") or fields.get("Features") or "").split())
    widest = next((name for flag, name in VECTOR_INSTRUCTIONS if flag in offered), None)
    return f"{model} ({widest})" if widest else model


def narrowest_kernels() -> dict[str, str]:
    """The environment in which every math library loads its narrowest kernels: NumPy's SIMD loops beyond its
    baseline switched off, ATen's DEFAULT kernels, MKL's SSE4.2 ones (no FMA: a product and a sum rounded twice),
    OpenBLAS's and oneDNN's oldest cores. Another CPU sums in another order and fuses other operations; this one run
    stands for those machines, on the machine at hand. A feature the CPU lacks is ignored (an ARM CPU has no MKL,
    and its OpenBLAS core is ARMV8)."""
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
    env = {"NPY_DISABLE_CPU_FEATURES": " ".join(numpy_simd().__cpu_dispatch__), "ATEN_CPU_CAPABILITY": "default",
           "OPENBLAS_CORETYPE": "Nehalem" if x86 else "ARMV8"}
    if x86:
        env.update(MKL_ENABLE_INSTRUCTIONS="SSE4_2", ONEDNN_MAX_CPU_ISA="SSE41")
    return env


def variations() -> tuple[str, ...]:
    """Each setting away from this run's: denormals flushed, deterministic algorithms, and another thread count than
    the one in force (1, or 2 where the run has one thread)."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else 1
    return "flush_denormal", "deterministic", f"threads={1 if threads > 1 else 2}"


@contextlib.contextmanager
def varied(*settings: str):
    """Adapter calls made inside run under `settings` too (one caller at a time: they are process-wide)."""
    global _varied
    with _lock:
        before, _varied = _varied, _varied + parse(",".join(settings))
        try:
            yield
        finally:
            _varied = before


@contextlib.contextmanager
def applied(settings: tuple[str, ...]):
    """Run the enclosed code (in the calling thread) under `settings`, restoring torch's state after. Settings are
    torch's: without torch imported in this process nothing applies (a NumPy or TensorFlow-only run)."""
    torch = sys.modules.get("torch")
    if not settings or torch is None:
        yield
        return
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    try:
        for setting in settings:
            name, _, value = setting.partition("=")
            if name == "flush_denormal":
                torch.set_flush_denormal(True)
            elif name == "deterministic":
                torch.use_deterministic_algorithms(True)
            else:
                torch.set_num_threads(int(value))
        yield
    finally:
        torch.set_flush_denormal(False)
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)
