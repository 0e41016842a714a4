"""The page's charts, drawn with matplotlib and inlined as SVG (text kept as text, so the page stays small).

Everything a label shows comes from records (adapter names, sweeps): matplotlib's SVG writer escapes
text, and math parsing is off, so a "$" or "<" in a name is drawn as itself.
"""
from __future__ import annotations

import io
import itertools
import math

import matplotlib

matplotlib.use("Agg")  # no display on CI machines; the page only needs the SVG text

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from markupsafe import Markup  # noqa: E402

from .reader import number  # noqa: E402

QUANTITY_COLOURS = {"loss": "#3b6ea8", "grad": "#c26b2b"}
PALETTE = ("#3b6ea8", "#c26b2b", "#3f8f5a", "#8c5aa8", "#b8485b", "#2f8f8f", "#8a7a3a", "#5a6473")
BOUND_COLOUR = "#444444"
STYLE = {
    "svg.fonttype": "none",  # text stays text: smaller, and drawn in the page's own font
    "text.parse_math": False,  # "$" in an adapter name is a dollar sign, never mathtext
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.edgecolor": "#9aa0a6",
    "axes.labelcolor": "#3c4043",
    "xtick.color": "#5f6368",
    "ytick.color": "#5f6368",
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}


SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_of_ten(value, _position=None) -> str:
    """A log-axis tick as 10⁻⁵ in plain text (matplotlib's default label is mathtext, which is off here)."""
    if value <= 0:
        return ""
    exponent = math.log10(value)
    return f"10{str(round(exponent)).translate(SUPERSCRIPTS)}" if abs(exponent - round(exponent)) < 1e-9 else f"{value:g}"


def log_scale(axes, axis: str = "both") -> None:
    for name in ("x", "y") if axis == "both" else (axis,):
        getattr(axes, f"set_{name}scale")("log")
        target = getattr(axes, f"{name}axis")
        target.set_major_locator(ticker.LogLocator(numticks=8))
        target.set_major_formatter(ticker.FuncFormatter(_power_of_ten))
        target.set_minor_locator(ticker.NullLocator())  # decades are enough, and minor ticks cost seconds to lay out


def to_svg(figure, name: str) -> Markup:
    """The figure as inline SVG markup. `name` salts the SVG's ids so two charts on one page never share one."""
    buffer = io.StringIO()
    with plt.rc_context({"svg.hashsalt": name}):
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return Markup(text[text.index("<svg"):])  # drop the XML prolog and DOCTYPE: the SVG sits inside HTML


def _finite_positive(values) -> np.ndarray:
    array = np.array([v for v in (number(x) for x in values) if v is not None], dtype=float)
    return array[np.isfinite(array) & (array > 0)]


def error_distribution(comparisons: pd.DataFrame) -> Markup | None:
    """Per implementation and quantity: every example's error over its tolerance, on a log axis."""
    rows = []
    for (adapter, quantity), group in comparisons.groupby(["adapter", "quantity"], sort=True):
        values = [number(v) for errors in group["errors"] if isinstance(errors, list) for v in errors]
        if values:
            rows.append((adapter, quantity, values))
    if not rows:
        return None
    adapters = list(dict.fromkeys(adapter for adapter, _, _ in rows))
    positive = _finite_positive(v for _, _, values in rows for v in values)
    floor = 10.0 ** math.floor(math.log10(positive.min())) if positive.size else 1e-6
    ceiling = max(10.0, positive.max() * 3 if positive.size else 10.0)
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(11, 0.5 * len(adapters) + 1.5))
        axes.axvspan(1, ceiling, color="#fbe9e7", zorder=0)
        axes.axvline(1, color="#b3261e", linewidth=1, zorder=1)
        axes.text(1, -0.9, " tolerance", color="#b3261e", va="bottom", fontsize=8)
        for adapter, quantity, values in rows:
            row = adapters.index(adapter) + (-0.17 if quantity == "loss" else 0.17)
            finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
            nonfinite = len(values) - finite.size
            colour = QUANTITY_COLOURS.get(quantity, PALETTE[-1])
            if finite.size:
                shown = np.clip(finite, floor, None)
                axes.boxplot(shown, positions=[row], orientation="horizontal", widths=0.28, whis=(5, 95),
                             patch_artist=True, manage_ticks=False,
                             boxprops={"facecolor": colour, "alpha": 0.35, "edgecolor": colour},
                             medianprops={"color": colour}, whiskerprops={"color": colour},
                             capprops={"color": colour},
                             flierprops={"marker": ".", "markersize": 3, "markeredgecolor": colour, "alpha": 0.5})
                axes.plot([shown.max()], [row], marker="D", markersize=4, color=colour, zorder=3)
            if nonfinite:
                axes.text(ceiling, row, f" {nonfinite} non-finite", va="center", fontsize=7, color="#b3261e")
        log_scale(axes, "x")
        axes.set_xlim(floor / 2, ceiling)
        axes.set_yticks(range(len(adapters)), adapters)
        axes.set_ylim(len(adapters) - 0.5, -1)
        axes.grid(axis="y", visible=False)
        axes.set_xlabel(f"error of each example ÷ its tolerance (log scale; exact matches drawn at {floor:g})")
        handles = [plt.Line2D([], [], color=c, marker="s", linestyle="", alpha=0.6, label=q)
                   for q, c in QUANTITY_COLOURS.items()]
        handles.append(plt.Line2D([], [], color="#5f6368", marker="D", linestyle="", markersize=4, label="worst"))
        axes.legend(handles=handles, loc="lower right", bbox_to_anchor=(1, 1), ncols=3, fontsize=8)
        return to_svg(figure, "errors")


def _series_label(parts) -> str:
    return " · ".join(str(p) for p in parts if p not in (None, ""))


def _log_if_positive(axes, axis: str, values) -> None:
    finite = _finite_positive(values)
    if finite.size and finite.size == len([v for v in values if number(v) is not None]) and finite.max() / finite.min() > 20:
        log_scale(axes, axis)


def robustness_curves(robustness: pd.DataFrame) -> list[tuple[str, Markup]]:
    """One chart per sweep: loss and gradient error against the sweep's level, the documented bound dashed."""
    charts = []
    several_runs = robustness["run_id"].nunique() > 1
    for sweep, of_sweep in robustness.groupby("sweep", sort=True):
        with plt.rc_context(STYLE):
            figure, panels = plt.subplots(1, 2, figsize=(10, 3.4), sharex=True)
            keys = ["adapter", "dtype", "device"] + (["run_label"] if several_runs else [])
            for colour, (key, series) in zip(itertools.cycle(PALETTE), of_sweep.groupby(keys, sort=True, dropna=False)):
                series = series.assign(x=series["level"].map(number)).sort_values("x")
                for axes, column in zip(panels, ("loss_error", "grad_error")):
                    y = series[column].map(number)
                    axes.plot(series["x"], y, marker="o", markersize=3, color=colour, label=_series_label(key))
                    broken = series[series["nonfinite"] == True]  # noqa: E712 (None is not True)
                    axes.plot(broken["x"], [0.97] * len(broken), transform=axes.get_xaxis_transform(),
                              linestyle="", marker="x", color="#b3261e", markersize=7)
            for dtype, of_dtype in of_sweep.groupby("dtype", sort=True, dropna=False):
                bound = of_dtype.assign(x=of_dtype["level"].map(number), b=of_dtype["bound"].map(number))
                bound = bound.dropna(subset=["b"]).groupby("x")["b"].max()
                for axes in panels:
                    axes.plot(bound.index, bound.values, linestyle="--", color=BOUND_COLOUR, linewidth=1,
                              label=f"bound ({dtype})")
            for axes, title in zip(panels, ("loss error", "gradient error")):
                axes.set_title(title, fontsize=9, loc="left")
                _log_if_positive(axes, "x", of_sweep["level"])
                _log_if_positive(axes, "y", list(of_sweep["loss_error"]) + list(of_sweep["grad_error"]))
                axes.set_xlabel(f"{sweep} level")
            panels[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
            charts.append((str(sweep), to_svg(figure, f"robustness-{sweep}")))
    return charts


def benchmark_charts(benchmarks: pd.DataFrame) -> list[tuple[str, Markup]]:
    """Per device: time and peak memory against N, log-log, with one N x N x D matmul as the yardstick."""
    charts = []
    runs_per_device = benchmarks.groupby("device")["run_id"].nunique()
    keys = ["device"] + (["run_label"] if (runs_per_device > 1).any() else [])
    for key, of_device in benchmarks.groupby(keys, sort=True, dropna=False):
        title = _series_label(key)
        series_keys = ["implementation"] + [k for k in ("spec_label", "d") if of_device[k].nunique() > 1]
        with plt.rc_context(STYLE):
            figure, (time_axes, memory_axes) = plt.subplots(1, 2, figsize=(10, 3.4))
            for colour, (name, series) in zip(itertools.cycle(PALETTE), of_device.groupby(series_keys, sort=True, dropna=False)):
                series = series.assign(x=series["n"].map(number)).sort_values("x")
                ok = series[series["status"] == "ok"]
                label = _series_label(name if isinstance(name, tuple) else (name,))
                time_axes.plot(ok["x"], ok["seconds"].map(number), marker="o", markersize=3, color=colour, label=label)
                memory_axes.plot(ok["x"], ok["peak_bytes"].map(number), marker="o", markersize=3, color=colour)
                failed = series[series["status"] != "ok"]
                for axes in (time_axes, memory_axes):
                    for row in failed.itertuples():
                        axes.annotate(f"✗ {row.status}", (row.x, 1), xycoords=("data", "axes fraction"),
                                      color=colour, fontsize=7, ha="center", va="top")
            reference = of_device.assign(x=of_device["n"].map(number), r=of_device["reference_seconds"].map(number))
            reference = reference.dropna(subset=["r"]).groupby("x")["r"].median()
            if not reference.empty:
                time_axes.plot(reference.index, reference.values, linestyle="--", color=BOUND_COLOUR, linewidth=1,
                               label="N×N×D matmul")
            for axes, ylabel in ((time_axes, "seconds"), (memory_axes, "peak bytes")):
                log_scale(axes)
                axes.set_xlabel("batch size N")
                axes.set_ylabel(ylabel)
            time_axes.set_title("time", fontsize=9, loc="left")
            memory_axes.set_title("peak memory", fontsize=9, loc="left")
            time_axes.legend(fontsize=7)
            charts.append((title, to_svg(figure, f"benchmark-{title}")))
    return charts
