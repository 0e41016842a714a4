"""The packages are layers, each importing only those below it (README.md, "Layout"; docs/design.md, "Layers"):
the engine reads the implementations, never the reverse, so no import inside a function can hide a cycle again."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Bottom to top; the packages of one tuple are one layer and do not import each other.
LAYERS = (
    ("reference",),  # the oracle: NumPy only
    ("contract",),  # plain facts and types: dtypes, targets, precision, Batch, the adapter contract
    ("inhouse",),  # our own implementations
    ("adapters",),  # every implementation the suite judges, behind the contract
    ("registry",),  # the known divergences, as data
    ("reports",),  # the results format, its writer and reader, the page and the generated documents
    ("engine",),  # what judges: the oracle's answers, tolerances, one cell's run, the pytest plugin
    ("suite", "benchmarks", "gpu", "examples"),  # what a user runs
)
LEVEL = {package: level for level, packages in enumerate(LAYERS) for package in packages}


def imported_packages(source: str) -> list[tuple[int, str]]:
    """(line, first-party package) of every absolute import in `source`, those inside functions included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, name.split(".")[0]) for name in names if name.split(".")[0] in LEVEL]
    return found


def upward_imports(root: Path) -> list[str]:
    """Every import of a package at the importer's layer or above it (its own package excepted), as path:line."""
    wrong = []
    for package, level in LEVEL.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, imported in imported_packages(path.read_text()):
                if imported != package and LEVEL[imported] >= level:
                    wrong.append(f"{path.relative_to(root)}:{line}: {package} imports {imported}")
    return wrong


def test_every_package_imports_only_the_layers_below_it():
    assert not upward_imports(ROOT), "\n".join(upward_imports(ROOT))


def test_every_top_level_package_has_a_layer():
    packages = {path.parent.name for path in ROOT.glob("*/*.py") if not path.parent.name.startswith(".")}
    assert packages - {"tests", "build"} == set(LEVEL)  # build/: a local setuptools artefact, not the project's


def test_an_import_from_above_is_found_also_inside_a_function(tmp_path):
    for package in LEVEL:
        (tmp_path / package).mkdir()
    (tmp_path / "adapters" / "wrap.py").write_text("import numpy\n\ndef run():\n    from engine.distributed import x\n")
    (tmp_path / "engine" / "cells.py").write_text("from adapters import Adapter\nimport registry\n")
    (tmp_path / "reference" / "spec.py").write_text("from . import gaps\n")
    assert upward_imports(tmp_path) == ["adapters/wrap.py:4: adapters imports engine"]
