"""The robustness sweeps: the points the charts draw (each error over its bound) and the table of where each
curve first leaves its bound."""
from __future__ import annotations

import math

import pandas as pd

from .. import describe
from ..reader import number
from ..schema import columns
from .common import Table, text_of

ROBUSTNESS_COLUMNS = columns("robustness")


def _ratio(error, bound) -> float | None:
    """error / bound; a zero bound allows no error at all."""
    error, bound = number(error), number(bound)
    if error is None or bound is None:
        return None
    if bound > 0:
        return error / bound
    return 0.0 if error == 0 else math.inf


def _spec_field(robustness: pd.DataFrame, name: str) -> pd.Series:
    # object dtype: a record without a spec keeps None beside the others' strings (never NaN, which sorts with
    # nothing and would stand for a distance in the legend)
    return pd.Series([spec.get(name) if isinstance(spec, dict) else None for spec in robustness["spec"]],
                     index=robustness.index, dtype=object)


def robustness_points(robustness: pd.DataFrame) -> pd.DataFrame:
    """The sweep records with what the charts and the table read: the level as a number, the distance, each
    error over its bound, and whether the point is flagged (beyond its bound) or broken (non-finite, or the
    call failed)."""
    return robustness.assign(
        x=robustness["level"].map(number),
        distance=_spec_field(robustness, "distance"),
        loss=_spec_field(robustness, "mining"),
        loss_ratio=[_ratio(e, b) for e, b in zip(robustness["loss_error"], robustness["bound"])],
        grad_ratio=[_ratio(e, b) for e, b in zip(robustness["grad_error"], robustness["grad_bound"])],
        flagged=robustness["within_bound"].map(lambda v: v is False),
        broken=[n is True or bool(e) for n, e in zip(robustness["nonfinite"], robustness["error"])],
        measured=robustness["skipped"].map(lambda v: v is None),
    )


SERIES_HEADER = {"adapter": "implementation", "loss": "loss", "distance": "distance", "dtype": "dtype", "device": "device",
                 "run_label": "run"}


def robustness_series_keys(robustness: pd.DataFrame) -> list[str]:
    """What one curve is: an implementation's spec (by loss and distance) in one dtype on one device, per run when
    several runs are merged."""
    return ["adapter", "loss", "distance", "dtype", "device"] + (
        ["run_label"] if robustness["run_id"].nunique() > 1 else [])


def stress(sweep: str, level: float) -> float:
    """How hard a level pushes: offsets grow, near-duplicate distances and temperatures shrink, scale leaves 1 either
    way."""
    exponent = math.log10(level)
    return {"near_duplicate": -exponent, "temperature": -exponent, "scale": abs(exponent)}.get(sweep, exponent)


def _first_level(points: pd.DataFrame) -> str:
    return describe.scientific(points["x"].iloc[0]) if len(points) else "—"


def _worst_ratio(points: pd.DataFrame) -> str:
    ratios = [r for r in list(points["loss_ratio"]) + list(points["grad_ratio"]) if r is not None]
    return f"{describe.scientific(max(ratios))}×" if ratios else "—"


def robustness_first_exceeded(robustness: pd.DataFrame) -> Table | None:
    """Per curve that leaves its bound: the first level (in order of stress) beyond it, the first non-finite
    one, every level beyond it, the worst error over its bound, and the registry entry that explains it."""
    measured = robustness[robustness["measured"]]
    if measured.empty:
        return None
    keys = ["sweep"] + robustness_series_keys(measured)
    rows, curves = [], 0
    for key, points in measured.groupby(keys, sort=True, dropna=False):
        curves += 1
        points = points.assign(order=[stress(str(key[0]), x) for x in points["x"]]).sort_values("order")
        beyond, broken = points[points["flagged"]], points[points["broken"]]
        if beyond.empty and broken.empty:
            continue
        rows.append([*(text_of(k) for k in key), _first_level(beyond), _first_level(broken),
                     ", ".join(dict.fromkeys(describe.scientific(x) for x in beyond["x"])), _worst_ratio(points),
                     ", ".join(sorted({str(d) for d in points["divergence"] if d}))])
    header = ["sweep", *(SERIES_HEADER[k] for k in keys[1:]), "first beyond bound", "first non-finite",
              "beyond bound at", "worst error ÷ bound", "known divergence"]
    caption = (f"{len(rows)} of {curves} curves leave their bound; the other {curves - len(rows)} stay within it at "
               "every level measured")
    skipped = sorted(set(map(str, robustness.loc[~robustness["measured"], "skipped"])))
    if skipped:
        caption += f" (not run here: {'; '.join(skipped)})"
    return Table(caption, header, rows)
