"""Interactive figures (plotly) for the notebooks, and the static copies the report embeds.

Every figure function returns a ``plotly.graph_objects.Figure`` with a title and axis labels a
reader can understand without the code. :func:`save_figure` writes it as an interactive HTML page
with plotly's own writer (the report links it). The report embeds static figures (PNG, written
by :func:`save_png`): the studies' population figures (``satimp_lab.studies.figures``, with their
95 % intervals) and, for the notebooks without a study, line figures drawn with matplotlib from
the same data as their interactive figure (:func:`static_lines`; no plotly figure is converted).
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..store import atomic_write

# One colour per method family, used everywhere so a reader can follow a method across figures.
PALETTE = {
    "ga": "#7f7f7f", "gd": "#a0a0a0", "npo": "#8c564b", "simnpo": "#c49c94",
    "simsat": "#1f77b4", "wga": "#1f77b4", "simimp": "#d62728", "satimp": "#2ca02c",
    "annotated": "#ff7f0e", "annotated_satimp": "#bcbd22", "hard_top": "#e377c2",
    "hard_bottom": "#17becf", "hard_random": "#9467bd",
    "target": "#000000", "retain": "#000000",
}
_FALLBACK = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
             "#7f7f7f", "#bcbd22", "#17becf"]


REFERENCE_SYMBOLS = ("star", "diamond", "square", "triangle-up")
"""Marker shapes of reference points (plotly names), in the order they are used."""


def color_for(label: str, index: int = 0) -> str:
    """The family colour of a method label like ``"simsat(beta=2)"`` or ``"satimp_gd"``."""
    base = label.split("(")[0]
    for name in sorted(PALETTE, key=len, reverse=True):
        if base == name or base.startswith(name + "_") or base.endswith("_" + name):
            return PALETTE[name]
    return _FALLBACK[index % len(_FALLBACK)]


def _mix(colour: str, other: str, amount: float) -> str:
    """``colour`` moved ``amount`` (0..1) of the way towards ``other`` (both "#rrggbb")."""
    a = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(other[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * amount):02x}" for x, y in zip(a, b))


_SHADES = ((None, 0.0), ("#000000", 0.4), ("#ffffff", 0.45), ("#000000", 0.65), ("#ffffff", 0.7))
"""How the 1st, 2nd, ... label of one family is drawn: its family colour, then darker and lighter."""


def distinct_colors(labels) -> list[str]:
    """One colour per label: the family colour of :func:`color_for` for the first label of each
    family, then darker and lighter shades of it for the next ones (e.g. ``satimp`` and
    ``satimp(beta_imp=0.35)``), so runs of one method stay recognisable and distinguishable.
    Past five labels of one family the shades repeat."""
    seen: dict[str, int] = {}
    out = []
    for i, label in enumerate(labels):
        base = color_for(str(label), i)
        k = seen.get(base, 0)
        seen[base] = k + 1
        other, amount = _SHADES[k % len(_SHADES)]
        out.append(base if other is None else _mix(base, other, amount))
    return out


def _layout(fig: go.Figure, title: str, x: str, y: str, **kw) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, template="plotly_white",
                      legend_title_text=kw.pop("legend", ""), **kw)
    return fig


# ----------------------------------------------------------------------------------------------
# the figures


def weight_curves(curves: dict[str, np.ndarray], p: np.ndarray, title: str = "Token weight w as a function of likelihood p",
                  normalise: bool = False) -> go.Figure:
    """w(p) for several weighting schemes (``curves``: label -> weights on the grid ``p``).

    normalise: divide each curve by its maximum, to compare shapes rather than scales.
    """
    fig = go.Figure()
    for i, (label, w) in enumerate(curves.items()):
        w = np.asarray(w, dtype=float)
        if normalise and np.nanmax(w) > 0:
            w = w / np.nanmax(w)
        fig.add_trace(go.Scatter(x=p, y=w, mode="lines", name=label, line=dict(color=color_for(label, i))))
    return _layout(fig, title, "likelihood p = exp(-CE) of the token",
                   "relative weight (max = 1)" if normalise else "weight w(p)", legend="scheme")


def tradeoff_curves(curves: pd.DataFrame, x: str = "retain_es", y: str = "forget_es", label: str = "label",
                    reference: dict[str, tuple[float, float]] | None = None,
                    title: str = "Forget vs retain extraction strength during unlearning",
                    x_title: str = "retain ES (higher = knowledge kept)",
                    y_title: str = "forget ES (lower = better forgotten)") -> go.Figure:
    """Trade-off curves: one line per label (mean over seeds at each step), start at the right.

    reference: named points drawn as black markers, one shape each so the legend tells them
    apart, e.g. ``{"target": (x0, y0), "retain model": (x1, y1)}``.
    """
    fig = go.Figure()
    for i, (name, rows) in enumerate(curves.groupby(label, sort=False)):
        mean = rows.groupby("step")[[x, y]].mean().reset_index()
        fig.add_trace(go.Scatter(x=mean[x], y=mean[y], mode="lines+markers", name=str(name),
                                 marker=dict(size=5), line=dict(color=color_for(str(name), i)),
                                 hovertext=[f"step {s}" for s in mean["step"]]))
    for k, (name, (px, py)) in enumerate((reference or {}).items()):
        symbol = REFERENCE_SYMBOLS[k % len(REFERENCE_SYMBOLS)]
        fig.add_trace(go.Scatter(x=[px], y=[py], mode="markers+text", name=name, text=[name],
                                 textposition="top center", marker=dict(size=11, color="black", symbol=symbol)))
    return _layout(fig, title, x_title, y_title, legend="method")


def bar_with_errors(frame: pd.DataFrame, value: str, label: str = "label", error: str | None = None,
                    title: str = "", y_title: str = "", lower_is_better: bool | None = None) -> go.Figure:
    """Bars of ``frame[value]`` per ``label`` with optional error bars (e.g. std over seeds)."""
    colors = [color_for(str(l), i) for i, l in enumerate(frame[label])]
    fig = go.Figure(go.Bar(x=frame[label].astype(str), y=frame[value], marker_color=colors,
                           error_y=dict(type="data", array=frame[error].fillna(0)) if error else None))
    if lower_is_better is not None:
        y_title += " (lower is better)" if lower_is_better else " (higher is better)"
    return _layout(fig, title, "", y_title)


def heatmap(frame: pd.DataFrame, x: str, y: str, z: str, title: str = "", x_title: str = "", y_title: str = "",
            z_title: str = "", fmt: str = ".2f", reverse_scale: bool = False) -> go.Figure:
    """A labelled heatmap of ``z`` over the grid ``x`` x ``y`` (values printed in the cells)."""
    grid = frame.pivot_table(index=y, columns=x, values=z, aggfunc="mean")
    text = [[format(v, fmt) if np.isfinite(v) else "" for v in row] for row in grid.to_numpy()]
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(), x=[str(c) for c in grid.columns],
                               y=[str(i) for i in grid.index], text=text, texttemplate="%{text}",
                               colorscale="Viridis", reversescale=reverse_scale,
                               colorbar=dict(title=z_title)))
    return _layout(fig, title, x_title or x, y_title or y)


def binned_weights(frame: pd.DataFrame, label: str = "label", title: str = "Mean weight per likelihood bin") -> go.Figure:
    """Lines of mean weight per likelihood bin (``unlearning.weight_stats.binned_mean_weight`` output + a label)."""
    fig = go.Figure()
    for i, (name, rows) in enumerate(frame.groupby(label, sort=False)):
        fig.add_trace(go.Scatter(x=rows["centre"], y=rows["mean_weight"], mode="lines+markers",
                                 name=str(name), line=dict(color=color_for(str(name), i))))
    return _layout(fig, title, "likelihood p of the token (bin centre)", "mean weight in the bin", legend="method")


def token_html(tokens: list[str], weights: list[float], likelihoods: list[float] | None = None,
               key: list[bool] | None = None, vmax: float | None = None) -> str:
    """An answer as HTML, each token shaded by its weight (darker = more weight); key tokens
    underlined; hover shows the likelihood and weight."""
    vmax = vmax or max(max(weights), 1e-12)
    spans = []
    for i, (tok, w) in enumerate(zip(tokens, weights)):
        alpha = min(1.0, w / vmax)
        tip = f"w={w:.3g}" + (f", p={likelihoods[i]:.3g}" if likelihoods is not None else "")
        style = f"background: rgba(44,160,44,{alpha:.2f}); padding: 1px 0;"
        if key is not None and key[i]:
            style += " text-decoration: underline; font-weight: bold;"
        spans.append(f'<span title="{tip}" style="{style}">{html.escape(tok)}</span>')
    return "<span style='font-family: monospace; white-space: pre-wrap'>" + "".join(spans) + "</span>"


# ----------------------------------------------------------------------------------------------
# saving


def save_figure(fig: go.Figure, out_dir: str | Path | None, name: str) -> Path | None:
    """Write ``name.html`` (the interactive figure, plotly's own writer) into ``out_dir/figures``
    and return its path; None (nothing written) when ``out_dir`` is None (interactive use).

    The page loads ``plotly.min.js`` from the same folder (``include_plotlyjs="directory"``:
    plotly writes that file once per folder), so it opens offline and a report with many figures
    holds plotly.js once. No static image is made: that would need a browser (kaleido drives
    Chrome); the report's static figures are the studies' seaborn figures."""
    if out_dir is None:
        return None
    folder = Path(out_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    # written atomically: a reader of the report never sees half a figure
    return atomic_write(folder / f"{name}.html", lambda tmp: fig.write_html(str(tmp), include_plotlyjs="directory"))


def static_lines(curves: dict[str, np.ndarray], x, title: str, x_title: str, y_title: str,
                 dashed: tuple[str, ...] = (), marker: str | None = None):
    """A static line figure (matplotlib, for :func:`save_png`): one line per label of ``curves``
    (label -> y values on ``x``; ``x`` numbers or category names, the same for every line), in
    the colours of the interactive figures (:func:`color_for`); the labels in ``dashed`` dashed.
    A ``matplotlib.figure.Figure`` not attached to pyplot. Raises ValueError naming a label whose
    values do not match ``x`` in length."""
    from matplotlib.figure import Figure

    x = list(x)
    fig = Figure(figsize=(9.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for i, (label, y) in enumerate(curves.items()):
        y = np.asarray(y, dtype=float)
        if len(y) != len(x):
            raise ValueError(f"curve {label!r} has {len(y)} values for {len(x)} x values")
        ax.plot(x, y, label=label, color=color_for(label, i), linestyle="--" if label in dashed else "-",
                marker=marker, markersize=4)
    ax.set(xlabel=x_title, ylabel=y_title)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: no line hidden
    return fig


def save_png(fig, out_dir: str | Path | None, name: str, dpi: int = 110) -> Path | None:
    """Write a matplotlib figure as ``out_dir/figures/<name>.png`` (atomically; the report embeds
    every PNG of a notebook's prefix) and return its path; None (nothing written) when ``out_dir``
    is None (interactive use)."""
    if out_dir is None:
        return None
    return atomic_write(Path(out_dir) / "figures" / f"{name}.png",
                        lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))


# ----------------------------------------------------------------------------------------------
# figures for the finding notebooks (03-07)


def param_sweep(frame: pd.DataFrame, x: str, y: str, group: str, error: str | None = None, title: str = "",
                x_title: str = "", y_title: str = "", names: dict | None = None, flag: str | None = None,
                flag_name: str = "flagged") -> go.Figure:
    """One line per ``group`` of ``y`` (e.g. mean over seeds) against a hyper-parameter ``x``,
    with ``error`` (e.g. std over seeds) drawn as vertical bars.

    ``x`` is shown as categories, evenly spaced (0.5, 1, 2, 5, 10), sorted when all values are
    numbers, else in the frame's order. The error bars are plain line segments (one legend-less
    trace each). ``names`` maps
    group values to legend names. ``flag``: a boolean column; flagged points get an extra black
    marker, listed in the legend as ``flag_name`` (e.g. runs that never reached a matched level).
    """
    names = names or {}
    values = list(dict.fromkeys(frame[x]))
    if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values):
        values = sorted(values)

    def cat(v):
        return f"{v:g}" if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else str(v)

    cats = [cat(v) for v in values]
    fig = go.Figure()
    flagged_x, flagged_y = [], []
    for i, (name, rows) in enumerate(frame.groupby(group, sort=False)):
        color = color_for(str(name), i)
        rows = rows.assign(_cat=[cat(v) for v in rows[x]])
        rows = rows.set_index("_cat").loc[[c for c in cats if c in set(rows["_cat"])]]
        ys = rows[y].to_numpy(float)
        fig.add_trace(go.Scatter(x=list(rows.index), y=ys, mode="lines+markers", name=names.get(name, str(name)),
                                 line=dict(color=color), marker=dict(size=6)))
        if error is not None:
            for cx, cy, ce in zip(rows.index, ys, rows[error].to_numpy(float)):
                if np.isfinite(ce) and np.isfinite(cy):
                    fig.add_trace(go.Scatter(x=[cx, cx], y=[cy - ce, cy + ce], mode="lines", showlegend=False,
                                             line=dict(color=color, width=1), hoverinfo="skip"))
        if flag is not None:
            sel = rows[flag].fillna(False).astype(bool).to_numpy()
            flagged_x += list(rows.index[sel])
            flagged_y += list(ys[sel])
    if flagged_x:
        fig.add_trace(go.Scatter(x=flagged_x, y=flagged_y, mode="markers", name=flag_name,
                                 marker=dict(color="black", size=10, symbol="circle-open")))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=cats)
    return _layout(fig, title, x_title or x, y_title or y, legend=group)
