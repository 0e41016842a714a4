"""With this folder on PYTHONPATH, every Python process (and every child it starts, which inherits PYTHONPATH) runs as
in an environment that lacks the frameworks: `import torch` raises ModuleNotFoundError and
importlib.util.find_spec("torch") is None. Python imports `sitecustomize` at startup, before any test code.

    PYTHONPATH=tests/without_frameworks .venv/bin/python -m pytest suite tests      # tox's oracle env, roughly

WITHOUT_FRAMEWORKS=torch,triton names which (comma-separated); unset, every framework an adapter family uses.
tests/engine/test_without_frameworks.py runs the suite and its own tests so, inside CI's run where all are installed.
"""
import os
import sys

FRAMEWORKS = ("torch", "pytorch_metric_learning", "sentence_transformers", "triton", "quaterion",
              "tensorflow", "tensorflow_addons", "tensorflow_similarity")

# Only as Python's own sitecustomize at startup: imported by name (tests.without_frameworks.sitecustomize, for
# FRAMEWORKS), it blocks nothing.
if __name__ == "sitecustomize":
    for _name in filter(None, os.environ.get("WITHOUT_FRAMEWORKS", ",".join(FRAMEWORKS)).split(",")):
        # None in sys.modules is the import system's own "not importable" (the import reference, "The module
        # cache"): the import fails with ModuleNotFoundError and find_spec answers None, as for a package never
        # installed
        sys.modules[_name] = None
