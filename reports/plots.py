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

from .sections.robustness import robustness_series_keys  # noqa: E402  (the table groups the curves the same way)
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


DTYPE_LINES = {"float64": ":", "float32": "-", "float16": "--", "bfloat16": "-."}
DISTANCE_MARKERS = {"euclidean": "o", "cosine": "s"}
FLAG_COLOUR = "#b3261e"
SWEEP_AXES = {
    "offset": "offset added to every coordinate",
    "near_duplicate": "distance of the near-duplicate pairs (stress grows to the right)",
    "scale": "factor every coordinate is multiplied by",
    "temperature": "temperature of the logits (1 / the similarity scales; stress grows to the right)",
    "tf32": "offset added to every coordinate (TF32 matmuls)",
}


def _adapter_colours(adapters) -> dict:
    """One colour per implementation, the same in every sweep's chart; tab20 once the palette runs out."""
    names = sorted(set(adapters))
    if len(names) > len(PALETTE):
        return {name: matplotlib.colormaps["tab20"](i % 20) for i, name in enumerate(names)}
    return dict(zip(names, PALETTE))


def _ratio_limits(points: pd.DataFrame) -> tuple[float, float]:
    """The y range: a decade below the smallest error (where an exact result is drawn) up to past the
    largest, and at least to 10 so that the bound's line sits inside."""
    positive = _finite_positive(list(points["loss_ratio"]) + list(points["grad_ratio"]))
    if not positive.size:
        return 1e-6, 10.0
    return 10.0 ** (math.floor(math.log10(positive.min())) - 1), max(10.0, 3 * positive.max())


def _draw_series(axes, series: pd.DataFrame, column: str, limits: tuple[float, float], colour, gid: str) -> None:
    """One curve; a red ring on each point beyond its bound, a red × at the top for a non-finite or failed one.
    The flagged and broken points carry SVG ids (`gid`-flagged, `gid`-broken), so a test can find them.
    Values are clipped into the axes (an exact 0 to the bottom, an error over a zero bound to the top), so
    no flagged point falls outside the picture."""
    first = series.iloc[0]
    low, high = limits[0], limits[1] / 1.5
    y = series[column].map(lambda r: None if r is None else min(max(r, low), high))
    axes.plot(series["x"], y, color=colour, linestyle=DTYPE_LINES.get(first["dtype"], "-"),
              marker=DISTANCE_MARKERS.get(first["distance"], "^"), markersize=3, linewidth=1.2)
    # Only a judged point is flagged: where a tie lies within the dtype's resolution the gradient is drawn
    # but not judged (bounds.py, "Decisions"), so its ratio may exceed 1 without a ring.
    beyond = series[series["flagged"] & series[column].map(lambda r: r is not None and r > 1) & ~series["broken"]]
    if len(beyond):
        (rings,) = axes.plot(beyond["x"], y[beyond.index], linestyle="",
                             marker="o", markersize=9, markerfacecolor="none", markeredgecolor=FLAG_COLOUR,
                             markeredgewidth=1.4, zorder=4)
        rings.set_gid(f"{gid}-flagged")
    broken = series[series["broken"]]
    if len(broken):
        (crosses,) = axes.plot(broken["x"], [0.96] * len(broken), transform=axes.get_xaxis_transform(),
                               linestyle="", marker="x", color=FLAG_COLOUR, markersize=8, markeredgewidth=1.6,
                               zorder=4)
        crosses.set_gid(f"{gid}-broken")


def _legend_handles(adapters: dict, dtypes, distances) -> list:
    handles = [plt.Line2D([], [], color=colour, linewidth=2, label=name) for name, colour in adapters.items()]
    handles += [plt.Line2D([], [], color="#5f6368", linestyle=DTYPE_LINES.get(d, "-"), label=d) for d in dtypes]
    handles += [plt.Line2D([], [], color="#5f6368", linestyle="", marker=DISTANCE_MARKERS.get(d, "^"), label=d)
                for d in distances if d]
    handles += [
        plt.Line2D([], [], linestyle="", marker="o", markerfacecolor="none", markeredgecolor=FLAG_COLOUR,
                   markersize=8, label="beyond its bound"),
        plt.Line2D([], [], linestyle="", marker="x", color=FLAG_COLOUR, markersize=7, label="non-finite or failed"),
    ]
    return handles


def robustness_curves(robustness: pd.DataFrame) -> list[tuple[str, Markup]]:
    """One chart per sweep, log-log: each curve an implementation x dtype (x device, x run), its loss error and
    gradient error divided by the documented bound of that point, so one line at 1 is every curve's bound."""
    measured = robustness[robustness["measured"]]
    if measured.empty:
        return []
    colours = _adapter_colours(measured["adapter"])
    keys = robustness_series_keys(measured)
    charts = []
    for index, (sweep, of_sweep) in enumerate(measured.groupby("sweep", sort=True)):
        limits = _ratio_limits(of_sweep)
        shown = {name: colours[name] for name in sorted(set(of_sweep["adapter"]))}
        handles = _legend_handles(shown, sorted(set(of_sweep["dtype"])), sorted(set(of_sweep["distance"]) - {None}))
        with plt.rc_context(STYLE):
            figure, panels = plt.subplots(1, 2, figsize=(11, max(3.6, 0.19 * len(handles))), sharex=True,
                                          sharey=True)
            for curve, (_, series) in enumerate(of_sweep.groupby(keys, sort=True, dropna=False)):
                series = series.sort_values("x")
                for axes, column in zip(panels, ("loss_ratio", "grad_ratio")):
                    _draw_series(axes, series, column, limits, colours[series.iloc[0]["adapter"]],
                                 f"robustness-{index}-{curve}-{column.removesuffix('_ratio')}")
            for axes, title in zip(panels, ("loss error ÷ bound", "gradient error ÷ bound")):
                axes.axhspan(1, limits[1], color="#fbe9e7", zorder=0)
                axes.axhline(1, color=FLAG_COLOUR, linewidth=1, zorder=1)
                axes.set_title(title, fontsize=9, loc="left")
                log_scale(axes)
                axes.set_xlabel(SWEEP_AXES.get(str(sweep), f"{sweep} level"))
            panels[0].set_ylabel(f"error ÷ documented bound (exact results at {limits[0]:g})")
            panels[0].set_ylim(limits[0] / 2, limits[1])
            if sweep in ("near_duplicate", "temperature"):
                panels[0].invert_xaxis()
            panels[1].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
            charts.append((str(sweep), to_svg(figure, f"robustness-{index}")))
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
