"""A digest of the batches engine/draws.py builds over every geometry, label layout and dtype, drawn and at their
extremes: tests/engine/test_machine.py compares it across processes that load other kernels."""
import hashlib
import itertools

import numpy as np

from engine import draws
from reference import Spec

SPECS = (Spec(mining="batch_hard"), Spec(mining="semi_hard", distance="squared_euclidean"),
         Spec(mining="supcon", distance="cosine", temperature=0.1), Spec(mining="npairs", distance="cosine"))


def digest() -> str:
    found = hashlib.sha256()
    geometries, layouts = dict.fromkeys(draws.GEOMETRIES), dict.fromkeys(draws.LABEL_LAYOUTS)  # each once
    for spec, dtype, geometry, labels, extreme, (n, d) in itertools.product(
            SPECS, ("float16", "float32", "float64"), geometries, layouts, (False, True), ((7, 3), (40, 13))):
        plan = draws.Plan(n=n, d=d, labels=labels, geometry=geometry, near_duplicates=not extreme,
                          duplicates=extreme, extreme=extreme)
        batch = draws.build(spec, dtype, plan, np.random.default_rng(n + d))
        found.update(np.ascontiguousarray(batch.embeddings).tobytes() + np.asarray(batch.labels).tobytes())
    return found.hexdigest()


if __name__ == "__main__":
    print(digest())
