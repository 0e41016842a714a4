"""Words and numbers for the page: a Spec in plain language, errors as multiples of their tolerance, arrays."""
from __future__ import annotations

import math

import numpy as np

from reference import LOSSES

from .reader import number

_SELECTION = {name: (loss.selects, loss.unit) for name, loss in LOSSES.items()}  # reference/losses.py
_DISTANCE = {
    "euclidean": "Euclidean distance",
    "squared_euclidean": "squared Euclidean distance",
    "cosine": "cosine distance 1 - cos(a, b)",
}


# what the margin is where it is no hinge's (reference/losses.py: the similarity family)
_MARGIN_WORDS = {"multi_similarity_mined": "the miner's epsilon", "circle": "relaxation margin m"}


def describe_spec(spec: dict | None, label: str = "") -> str:
    """A Spec (as `Spec.to_dict()` wrote it) in one sentence; the label alone when the dict is unusable."""
    if not isinstance(spec, dict) or spec.get("mining") not in _SELECTION:
        return label
    selection, unit = _SELECTION[spec["mining"]]
    parts = [selection[0].upper() + selection[1:], _DISTANCE.get(spec.get("distance"), f"distance {spec.get('distance')}")]
    if spec.get("normalize"):
        parts[-1] += " on L2-normalised embeddings"
    if spec.get("soft"):
        parts.append("soft-plus of d(a,p) - d(a,n) instead of the hinge")
    elif spec["mining"] in _MARGIN_WORDS and isinstance(spec.get("margin"), (int, float)):
        parts.append(f"{_MARGIN_WORDS[spec['mining']]} {spec['margin']:g}")
    elif spec["mining"] != "contrastive" and "margin" in LOSSES[spec["mining"]].takes:
        parts.append(f"hinge with margin {spec.get('margin', '?'):g}" if isinstance(spec.get("margin"), (int, float))
                     else "hinge")
    if spec.get("scaled"):
        parts.append("the difference divided by the mean hardest-negative distance")
    if "temperature" in LOSSES[spec["mining"]].takes:
        parts.append(f"temperature {spec.get('temperature', 1.0):g}")
    if spec.get("symmetric"):
        parts.append("averaged with the positives-to-anchors direction")
    scales = [f"{name} {spec[name]:g}" for name in ("alpha", "beta", "base", "gamma")
              if name in LOSSES[spec["mining"]].takes and isinstance(spec.get(name), (int, float))]
    if scales:
        parts.append(", ".join(scales))
    if spec["mining"] == "batch_hard":
        unit = "every anchor" if spec.get("anchors") == "all" else "anchors that have a positive and a negative"
    reduction = spec.get("reduction")
    parts.append({"mean": f"averaged over {unit}", "mean_nonzero": "averaged over the non-zero terms only",
                  "sum": "summed"}.get(reduction, f"reduction {reduction}"))
    parts.append("a batch with no term gives NaN" if spec.get("empty") == "nan" else "a batch with no term gives 0")
    return "; ".join(parts) + "."


def multiple(value) -> str:
    """An error as a multiple of its tolerance, short enough for a matrix cell (below 1 passes)."""
    x = number(value)
    if x is None:
        return ""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "∞"
    if x == 0:
        return "0"
    if x < 0.01:
        return "<0.01"
    if x < 10:
        return f"{x:.2g}"
    if x < 1000:
        return f"{x:.0f}"
    return f"{x:.1e}".replace("e+0", "e").replace("e+", "e")


def scientific(value, digits: int = 3) -> str:
    x = number(value)
    if x is None:
        return "—"
    if not math.isfinite(x):
        return str(x).replace("inf", "∞").replace("nan", "NaN")
    return f"{x:.{digits}g}"


def tolerance_text(tolerance: dict) -> str:
    """atol and rtol, and the scale they were multiplied by when the comparison scaled them."""
    scale = number(tolerance.get("scale"))
    return (f"atol {scientific(tolerance.get('atol'))}, rtol {scientific(tolerance.get('rtol'))}"
            + (f", scaled ×{scale:g}" if scale is not None and scale != 1 else ""))


def full(value) -> str:
    """A float with every digit it has (an oracle or implementation value the reader compares)."""
    x = number(value)
    return "—" if x is None else repr(x)


def as_array(value) -> np.ndarray | None:
    """A JSON array from a counterexample, with "nan"/"inf" strings turned back into floats."""
    if value is None:
        return None

    def restore(item):
        if isinstance(item, list):
            return [restore(v) for v in item]
        return number(item) if isinstance(item, str) else item

    try:
        return np.asarray(restore(value))
    except ValueError:  # ragged lists: not an array this page can lay out
        return None


def array_text(array: np.ndarray | None) -> str:
    """Every element, full precision, one row per line: the shrunk counterexample is small."""
    if array is None:
        return "—"
    with np.printoptions(threshold=array.size + 1, linewidth=120, floatmode="unique", suppress=False):
        return np.array2string(array, separator=", ")


def selection_text(selection: np.ndarray | None) -> str:
    """The oracle's selected terms as index tuples (-1: a distance that is constant 0, TF-Addons' hp = 0)."""
    if selection is None or selection.size == 0:
        return "none (no term was selected)"
    rows = np.atleast_2d(selection).astype(int).tolist()
    return ", ".join("(" + ", ".join(str(i) for i in row) + ")" for row in rows)
