"""Machine settings (engine/machine.py) and the machine-variation run (engine/machine_variation.py): the settings
apply to an adapter's call and are undone after it, a typo is an error, the six runs meet every pair of settings, the
narrowest kernels are the ones a run loads, draw the same batches and are loaded by a reproducer, and a verdict that
changes with a setting is listed."""
import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import machine, machine_variation
from engine.harness import call_adapter

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text", ["flush_denormals", "threads", "threads=two", "deterministic=1"])
def test_an_unknown_setting_is_an_error_that_names_the_known_ones(text):
    with pytest.raises(ValueError, match="known: flush_denormal, deterministic, threads=N"):
        machine.parse(text)


def test_a_run_with_an_unknown_setting_stops_with_a_usage_error():
    env = dict(os.environ, **{machine.ENVIRONMENT: "flush_denormals"})
    done = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "tests/engine/machine_probe.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 4 and "unknown setting 'flush_denormals'" in done.stderr, done.stderr[-1000:]


def test_the_settings_apply_inside_the_adapters_call_and_are_undone_after_it():
    torch = pytest.importorskip("torch")
    import adapters
    import reference

    seen = {}

    def loss(x, y):
        seen["denormal"] = float(torch.tensor(1e-40, dtype=torch.float32) * 1.0)
        seen["deterministic"] = torch.are_deterministic_algorithms_enabled()
        seen["threads"] = torch.get_num_threads()
        return (x * 0).sum()

    adapter = adapters.wrap_torch(loss, name="probe.settings", spec=reference.Spec(mining="batch_hard"))
    threads = torch.get_num_threads()
    with machine.varied("flush_denormal", "deterministic", f"threads={threads + 1}"):
        call_adapter(adapter, [[0.0], [1.0]], [0, 1], adapter.specs[0], "float32", "cpu")
    assert seen == {"denormal": 0.0, "deterministic": True, "threads": threads + 1}
    call_adapter(adapter, [[0.0], [1.0]], [0, 1], adapter.specs[0], "float32", "cpu")
    assert seen["denormal"] > 0 and seen["deterministic"] is False and seen["threads"] == threads


def test_every_two_settings_meet_in_each_pair_of_values():
    for first, second in itertools.combinations(range(len(machine_variation.FACTORS)), 2):
        met = {(row[first], row[second]) for row in machine_variation.DESIGN}
        assert met == {(0, 0), (0, 1), (1, 0), (1, 1)}, (first, second)


def test_a_verdict_that_changes_with_tensorflows_kernels_or_the_instruction_set_is_listed(tmp_path, capsys):
    """Two runs (oneDNN off then on, the native kernels then the narrowest) over the probe adapters."""
    status = machine_variation.main(
        ["--out", str(tmp_path), "--workers", "0", "--adapter", "tests.engine.machine_probe:ADAPTERS",
         "suite/test_conformance.py", "-k", "loss"],
        design=((0, 1, 1, 1, 0), (1, 0, 1, 1, 1)))
    printed = capsys.readouterr().out
    assert status == 1
    first, second = "onednn0-threads2-deterministic-ftz", "onednn1-threads1-deterministic-ftz-narrowest"
    for probe, wrong, right in (("onednn", first, second), ("kernel", second, first)):
        assert f"CHANGED suite.test_conformance::test_conformance[probe.{probe}-dependent|" in printed
        assert f"{wrong}=failed, {right}=passed" in printed or f"{right}=passed, {wrong}=failed" in printed


def test_a_run_in_the_narrowest_kernels_loads_them():
    """The child of a narrowest run: torch's ATen kernels at their DEFAULT capability and none of NumPy's dispatched
    SIMD loops enabled; a native run's child loads what the CPU offers, whatever the caller's shell set."""
    pytest.importorskip("torch")
    probe = ("import torch; from engine.machine import numpy_simd; simd = numpy_simd(); "
             "print(torch.backends.cpu.get_cpu_capability(), sum(simd.__cpu_features__[f] for f in simd.__cpu_dispatch__))")
    shell = dict(os.environ, ATEN_CPU_CAPABILITY="avx2")
    env = machine_variation.environment((0, 0, 0, 0, 1), shell)
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["DEFAULT", "0"]
    assert "ATEN_CPU_CAPABILITY" not in machine_variation.environment((0, 0, 0, 0, 0), shell)


def test_the_batches_are_the_same_in_the_narrowest_kernels():
    """Another CPU runs NumPy's power and its BLAS's sums on other kernels: a batch drawn from one seed must not
    change with them, or each machine judges other examples (tests/engine/draws_probe.py)."""
    from tests.engine import draws_probe

    env = dict(os.environ, **machine.narrowest_kernels())
    done = subprocess.run([sys.executable, "-m", "tests.engine.draws_probe"], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == draws_probe.digest()


def test_a_reproducer_made_in_the_narrowest_kernels_loads_them(monkeypatch):
    """A failure found in one run of machine-variation must reproduce from its script alone, run anywhere: the script
    sets the run's kernel variables before any library loads."""
    pytest.importorskip("torch")
    from engine.reproducer import reproducer
    from reference import Spec

    for name, value in machine.narrowest_kernels().items():
        monkeypatch.setenv(name, value)
    spec = Spec(mining="semi_hard", distance="euclidean", margin=1.0)
    script = reproducer("seed002.semihard-loop", "catalog", spec, "float32", "cpu", np.array([[0.0], [1.0], [3.0]]),
                        np.array([0, 0, 1]), None)
    assert script.index("os.environ.update(") < script.index("import numpy")
    script += "import torch\nprint(torch.backends.cpu.get_cpu_capability())\n"
    clean = {name: value for name, value in os.environ.items() if name not in machine.KERNEL_VARIABLES}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=clean, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "DEFAULT"


def test_two_cpus_of_one_model_name_with_other_vector_instructions_are_two_machines():
    """Benchmark figures belong to a CPU model and the vector instructions its libraries load kernels for: an AMD EPYC
    with AVX-512 and one with AVX2 alone rank NumPy's exp and torch's apart (inhouse/distance_rows.py NUMPY_EXP)."""
    epyc = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx fma avx2{}\n\nprocessor\t: 1\n"
    assert machine.cpu_words(epyc.format(" avx512f avx512bw")) == "AMD EPYC (AVX-512)"
    assert machine.cpu_words(epyc.format("")) == "AMD EPYC (AVX2)"
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm sve\nCPU implementer\t: 0x41\n"
    assert machine.cpu_words(arm).endswith(" (SVE)")
    assert machine.cpu_words("model name\t: Some CPU\n") == "Some CPU"
