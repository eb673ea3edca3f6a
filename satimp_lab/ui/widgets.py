"""The weight curves' figures and sliders (notebooks 02 and 09).

Every callback here is a plain function that takes numbers and returns a plotly figure (or the
curves' data), so it is unit-tested without a browser and the notebooks can call it directly when
they run headless. The ipywidgets wrappers only wire sliders to these callbacks.

The figures are over the analytic weight curves of :mod:`satimp_lab.unlearning.weight_curves` (the
w(p) family, NPO's and SimNPO's implicit weights, the SatImp peak, the GA logit view); the curve
functions themselves are imported from there. Each exponent slider's range and step is read from
its declaration in :mod:`satimp_lab.unlearning.params`. :func:`figure_output` shows a figure in a
widget that can redraw it; the playground (:mod:`satimp_lab.ui.playground`) uses it too.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from . import plots
from ..unlearning.params import PARAMS, validate_param
from ..unlearning.weight_curves import (family_curves, family_labels, likelihood_grid, logit_push, npo_weights_on_grid,
                            peak_text, satimp_peak, token_weights_on_grid)

__all__ = [
    "family_figure",
    "update_family",
    "figure_output",
    "family_widget",
    "npo_shape_figure",
    "logit_push_curves",
    "logit_push_figure",
    "static_family_figure",
    "static_logit_push_figure",
]


def _g(x: float) -> str:
    return f"{x:.4g}"


def _peak_marker(beta_sat: float, beta_imp: float) -> tuple[list, list, list]:
    pk = satimp_peak(beta_sat, beta_imp)
    if math.isnan(pk["p_star"]):
        return [], [], []
    return [pk["p_star"]], [pk["w_max"]], [f"p* = {pk['p_star']:.3f}"]


def family_figure(beta_sat: float, beta_imp: float, p=None, npo_beta: float | None = None,
                  simnpo_beta: float | None = None, normalise: bool = False,
                  title: str | None = None) -> go.Figure:
    """Every weight curve on the same axes, with SatImp's peak marked (a star at (p*, w_max)).

    Each trace's ``meta`` is its key (ga, simsat, ..., peak) so :func:`update_family` can redraw it.
    """
    p, curves, labels = family_curves(beta_sat, beta_imp, p, npo_beta, simnpo_beta)
    title = title or "Weight per token vs likelihood: SatImp's family, GA, NPO, SimNPO"
    fig = plots.weight_curves({labels[k]: curves[k] for k in curves}, p, title=title, normalise=normalise)
    for trace, key in zip(fig.data, curves):
        trace.meta = key
        if key in ("npo", "simnpo"):
            trace.line.dash = "dash"
    x, y, text = _peak_marker(beta_sat, beta_imp)
    if normalise and y:
        y = [1.0]
    fig.add_trace(go.Scatter(x=x, y=y, text=text, mode="markers+text", textposition="top left",
                             name="SatImp peak p*", meta="peak",
                             marker=dict(size=12, color=plots.PALETTE["satimp"], symbol="star")))
    fig.update_layout(xaxis_title="likelihood p = exp(-CE) of the token (NPO: π_θ/π_ref; SimNPO: p̄)",
                      yaxis_range=[0, 1.05], legend=dict(font=dict(size=10)))
    return fig


def update_family(fig: go.Figure, beta_sat: float, beta_imp: float, normalise: bool = False) -> go.Figure:
    """Slider callback: redraw the SimSat, SimImp and SatImp curves and the peak of a
    :func:`family_figure` (a Figure or FigureWidget) for new exponents, in place. Returns ``fig``."""
    beta_sat = validate_param("beta_sat", beta_sat)
    beta_imp = validate_param("beta_imp", beta_imp)
    by_key = {t.meta: t for t in fig.data}
    p = np.asarray(by_key["satimp"].x, dtype=float)
    npo_beta = simnpo_beta = 1.0   # only the token-scheme labels are used below
    labels = family_labels(beta_sat, beta_imp, npo_beta, simnpo_beta)
    with fig.batch_update():
        for key in ("simsat", "simimp", "satimp"):
            w = token_weights_on_grid(key, p, beta_sat, beta_imp)
            if normalise and np.nanmax(w) > 0:
                w = w / np.nanmax(w)
            by_key[key].y = w
            by_key[key].name = labels[key]
        x, y, text = _peak_marker(beta_sat, beta_imp)
        if normalise and y:
            y = [1.0]
        by_key["peak"].x, by_key["peak"].y, by_key["peak"].text = x, y, text
        fig.layout.yaxis.title.text = "relative weight (max = 1)" if normalise else "weight w(p)"
    return fig


def figure_output(fig: go.Figure):
    """An ``ipywidgets.Output`` that shows ``fig`` and a function that shows it again after ``fig``
    changed: ``(output, redraw)``.

    The figure is displayed like any notebook figure (plotly's own renderer), so it fills the
    output's width; plotly's ``FigureWidget`` is drawn at its default 700 px instead, because it
    is sized before JupyterLab attaches it to the page."""
    import ipywidgets as ipw
    from IPython.display import clear_output, display

    out = ipw.Output(layout=ipw.Layout(width="100%"))

    def redraw(figure: go.Figure | None = None) -> None:
        with out:
            clear_output(wait=True)
            display(fig if figure is None else figure)

    redraw()
    return out, redraw


def _exponent_slider(ipw, name: str, value: float, max_value: float | None, description: str):
    """A continuously updating FloatSlider over the declared slider range of ``name`` (params.PARAMS)."""
    param = PARAMS[name]
    lo, hi, step = param.slider
    return ipw.FloatSlider(value=value, min=lo, max=hi if max_value is None else max_value,
                           step=step, description=description, tooltip=param.label,
                           continuous_update=True, readout_format=".2f")


def family_widget(beta_sat: float = 5.0, beta_imp: float = 0.1, max_beta_sat: float | None = None,
                  max_beta_imp: float | None = None):
    """:func:`family_figure` with beta_sat / beta_imp sliders, a normalise box and a live peak
    readout (the sliders are cheap, so they redraw continuously). The sliders' range and step are
    the declared ones (satimp_lab.unlearning.params; ``max_beta_*`` overrides the upper end). Returns the
    VBox; its ``.figure`` attribute is the figure (updated in place by :func:`update_family`)."""
    import ipywidgets as ipw

    fig = family_figure(beta_sat, beta_imp)
    view, show = figure_output(fig)
    s_sat = _exponent_slider(ipw, "beta_sat", beta_sat, max_beta_sat, "β_sat")
    s_imp = _exponent_slider(ipw, "beta_imp", beta_imp, max_beta_imp, "β_imp")
    norm = ipw.Checkbox(value=False, description="normalise (max = 1)")
    readout = ipw.HTML(peak_text(beta_sat, beta_imp))

    def redraw(_=None):
        update_family(fig, s_sat.value, s_imp.value, normalise=norm.value)
        readout.value = peak_text(s_sat.value, s_imp.value)
        show()

    for w in (s_sat, s_imp, norm):
        w.observe(redraw, names="value")
    box = ipw.VBox([ipw.HBox([s_sat, s_imp, norm]), readout, view])
    box.figure, box.sliders, box.redraw = fig, (s_sat, s_imp, norm), redraw
    return box


# --- NPO's shape ---------------------------------------------------------------------------------


def npo_shape_figure(betas=(0.1, 1.0, 2.5), max_drop: float = 30.0, n: int = 301) -> go.Figure:
    """NPO's implicit sequence weight against how far the summed sequence NLL has risen above the
    reference's, Delta = L_theta - L_ref (nats), for several beta. GA (w = 1) for comparison."""
    drop = np.linspace(0.0, max_drop, n)
    ratio = np.exp(-drop)
    curves = {"ga(w = 1)": np.ones_like(drop)}
    for b in betas:
        curves[f"npo(β={_g(b)})"] = npo_weights_on_grid(ratio, b)
    fig = go.Figure()
    for i, (label, w) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=drop, y=w, mode="lines", name=label,
                                 line=dict(color=None if label.startswith("npo") else plots.PALETTE["ga"])))
    fig.update_layout(title="NPO's implicit weight 2σ(-β(L_θ - L_ref)) on every token of a sequence",
                      xaxis_title="rise of the summed sequence NLL above the reference, L_θ - L_ref (nats)",
                      yaxis_title="implicit weight w_i", template="plotly_white", legend_title_text="method",
                      yaxis_range=[0, 1.05])
    return fig


# --- the GA logit view ---------------------------------------------------------------------------


def logit_push_curves(beta_sat: float = 5.0, beta_imp: float = 0.1, beta: float = 1.0,
                      p=None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(p, {label: push})``: the GA logit view's push on the target logit, w(p) (1 - p), for GA,
    SimSat(beta), SimImp(beta) and SatImp(beta_sat, beta_imp) on the likelihood grid ``p``
    (default: 401 points inside (0, 1)), from autograd through the library's objectives
    (:func:`satimp_lab.unlearning.weight_curves.logit_push`)."""
    p = likelihood_grid(401, include_ends=False) if p is None else np.asarray(p, dtype=float)
    return p, {
        "ga(w = 1): 1 · (1-p)": logit_push("ga", p),
        f"simsat(β_sat={_g(beta)}): p^β (1-p)": logit_push("simsat", p, beta_sat=beta),
        f"simimp(β_imp={_g(beta)}): (1-p)^β (1-p)": logit_push("simimp", p, beta_imp=beta),
        f"satimp(β_sat={_g(beta_sat)}, β_imp={_g(beta_imp)}): w(p) (1-p)":
            logit_push("satimp", p, beta_sat=beta_sat, beta_imp=beta_imp),
    }


LOGIT_PUSH_TITLE = "GA logit view: how hard one step pushes the target logit down"
LOGIT_PUSH_AXIS = "push w(p)·(1-p) per unit lr"   # -dF/dz; short enough for the axis


def logit_push_figure(beta_sat: float = 5.0, beta_imp: float = 0.1, beta: float = 1.0, p=None) -> go.Figure:
    """The GA logit view (:func:`logit_push_curves`) as an interactive figure."""
    p, curves = logit_push_curves(beta_sat, beta_imp, beta, p)
    fig = plots.weight_curves(curves, p, title=LOGIT_PUSH_TITLE)
    fig.update_layout(yaxis_title=LOGIT_PUSH_AXIS)
    return fig


def static_logit_push_figure(beta_sat: float = 5.0, beta_imp: float = 0.1, beta: float = 1.0):
    """:func:`logit_push_figure` drawn statically for the report (:func:`satimp_lab.ui.plots.static_lines`,
    the same curves): a ``matplotlib.figure.Figure``."""
    p, curves = logit_push_curves(beta_sat, beta_imp, beta)
    return plots.static_lines(curves, p, LOGIT_PUSH_TITLE, "likelihood p = exp(-CE) of the token", LOGIT_PUSH_AXIS)


def static_family_figure(beta_sat: float, beta_imp: float):
    """:func:`family_figure`'s curves drawn statically for the report (NPO and SimNPO dashed, on
    their own x as in the interactive figure; no peak marker): a ``matplotlib.figure.Figure``."""
    p, curves, labels = family_curves(beta_sat, beta_imp)
    return plots.static_lines({labels[k]: w for k, w in curves.items()}, p,
                              "Weight per token vs likelihood: SatImp's family, GA, NPO, SimNPO",
                              "likelihood p = exp(-CE) of the token (NPO: π_θ/π_ref; SimNPO: p̄)", "weight w(p)",
                              dashed=(labels["npo"], labels["simnpo"]))
