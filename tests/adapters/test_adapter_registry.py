"""Every known divergence names the test that confirms it, and points at a cell some adapter claims; every adapter
module has its family record, and the lists of implementations elsewhere are the records' (contract/family.py)."""
import importlib
import pkgutil
import re
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from adapters import distributed, pml, quaterion, seeds, sentence_transformers, tf_similarity, tfa, torch_native
from contract.family import Family
from contract.targets import target
from registry import CONFORMANCE, REGISTRY, alternatives, matches
from reference import in_scope

ROOT = Path(__file__).resolve().parents[2]
BUILT_IN = [a for family in (torch_native, pml, tfa, seeds, sentence_transformers, tf_similarity, quaterion, distributed)
            for a in family.ADAPTERS]


def test_conformance_pattern_covers_loss_and_grad_only():
    assert [fnmatchcase(q, CONFORMANCE) for q in ("loss", "grad", "edge:no_negative")] == [True, True, False]


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda d: d.id)
def test_every_entry_names_a_confirming_test_that_exists(entry):
    for test in alternatives(entry.confirmed_by):
        path, function = test.split("::")
        assert f"def {function}(" in (ROOT / path).read_text(), test


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda d: d.id)
def test_every_entry_matches_a_claimed_cell(entry):
    """A scope that matches no claimed adapter x spec x dtype x device would never fire: a typo."""
    assert any(
        matches(a.name, entry.adapter) and in_scope(spec, entry.spec) and matches(dtype, entry.dtype)
        and matches(device, entry.target)
        for a in BUILT_IN for spec in a.specs for dtype in a.dtypes for device in a.targets
    )
    assert entry.reason and entry.link and len({d.id for d in REGISTRY}) == len(REGISTRY)


@pytest.mark.parametrize("entry", [e for e in REGISTRY if e.regressions], ids=lambda d: d.id)
def test_every_regression_batch_reaches_a_spec_the_entry_covers(entry):
    assert all(any(regression.applies(spec) and in_scope(spec, entry.spec)
                   for a in BUILT_IN if matches(a.name, entry.adapter) for spec in a.specs)
               for regression in entry.regressions)


# --- the family records: one per adapter module, and the lists the benchmarks, the GPU command and the
# --- migration document take from them

def _adapter_modules() -> dict:
    """Every module adapters/<name>.py that defines ADAPTERS, by name."""
    import adapters

    found = {}
    for info in pkgutil.iter_modules(adapters.__path__):
        module = importlib.import_module(f"adapters.{info.name}")
        if hasattr(module, "ADAPTERS"):
            found[info.name] = module
    return found


def test_every_adapter_module_has_a_family_record_and_is_listed():
    import adapters

    modules = _adapter_modules()
    lacking = [name for name, module in modules.items() if not isinstance(getattr(module, "FAMILY", None), Family)]
    assert not lacking, f"adapters/{{{', '.join(lacking)}}}.py define ADAPTERS but no FAMILY = Family(...)"
    assert set(adapters.MODULES) == set(modules), "adapters.MODULES must list every module defining ADAPTERS"
    assert [f.module for f in adapters.families()] == list(adapters.MODULES)
    assert all(modules[f.module].FAMILY is f for f in adapters.families())
    assert [a.name for a in adapters.catalog()] == [a.name for name in adapters.MODULES for a in modules[name].ADAPTERS]


def test_families_fails_for_a_module_without_a_record(monkeypatch):
    import adapters

    monkeypatch.setattr(adapters, "MODULES", (*adapters.MODULES, "wrap"))  # adapters/wrap.py has no FAMILY
    with pytest.raises(TypeError, match=r"adapters/wrap.py must define FAMILY"):
        adapters.families()


@pytest.mark.parametrize("name", sorted(_adapter_modules()))
def test_a_family_record_agrees_with_its_adapters(name):
    """cuda: some adapter claims a CUDA target; prefix: some adapter's name bears it."""
    module = _adapter_modules()[name]
    record = module.FAMILY
    cuda = any(target(t).device == "cuda" for a in module.ADAPTERS for t in a.targets)
    assert record.cuda == cuda, f"adapters/{name}.py: FAMILY.cuda is {record.cuda}, its adapters say {cuda}"
    if record.prefix is not None:
        assert any(a.name.startswith(record.prefix) for a in module.ADAPTERS), record.prefix


def test_the_gpu_command_judges_the_families_the_records_name():
    from adapters import families
    from gpu import command, context

    gpu = [f for f in families() if f.gpu]
    assert command.BUILT_IN == tuple(f"adapters.{f.module}:ADAPTERS" for f in gpu)
    assert command.WHEEL_PACKAGES == tuple(dict.fromkeys(r for f in gpu for r in f.requires))
    args = context.GPU.benchmark_args
    named = args[args.index("--implementations") + 1:]
    named = named[:next((i for i, a in enumerate(named) if a.startswith("--")), len(named))]
    assert sorted(named) == sorted(n for f in gpu for n in f.benchmarks), "the GPU run benchmarks the GPU families"


def test_the_benchmarks_measure_the_implementations_the_records_name():
    from adapters import families
    from benchmarks import implementations, run
    from reports.schema import LEAST_WORK, REFERENCES

    named = [(f, n) for f in families() for n in f.benchmarks]
    families_part = [n for n in implementations.IMPLEMENTATIONS if n not in REFERENCES]
    assert families_part == [n for _, n in named]
    assert set(implementations.RECIPES) == {n for _, n in named}
    for family, name in named:
        assert implementations.IMPLEMENTATIONS[name].devices == (("cpu", "cuda") if family.cuda else ("cpu",))
    assert run.FULL["implementations"] == ("oracle", *families_part, LEAST_WORK)
    assert tuple(run.OURS) == next(f for f in families() if f.module == "inhouse").benchmarks


@pytest.mark.parametrize("changes, error, message", [
    ({"module": "Not-a-module"}, ValueError, "module name under adapters"),
    ({"library": " "}, ValueError, "library must be a non-empty string"),
    ({"prefix": "pml"}, ValueError, "ending in '.'"),
    ({"requires": "pytorch-metric-learning"}, TypeError, "requires must be a tuple"),
    ({"requires": ("torch>=2",)}, ValueError, "pip distribution names"),
    ({"benchmarks": ("a", "a")}, ValueError, "names one twice"),
    ({"gpu": True}, ValueError, "needs cuda=True"),
    ({"cuda": 1}, TypeError, "cuda must be True or False"),
    ({"migration": 0}, ValueError, "row position >= 1"),
    ({"migration": 1, "prefix": None}, ValueError, "give one"),
])
def test_a_family_record_checks_its_fields(changes, error, message):
    fields = {"module": "example", "library": "Example", "source": "owner/example", "prefix": "ex.", **changes}
    with pytest.raises(error, match=re.escape(message)):
        Family(**fields)
