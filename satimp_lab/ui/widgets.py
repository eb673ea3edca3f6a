"""The notebooks' interactive parts: figures and sliders for the weight curves, and the Playground.

Every callback here is a plain function or method that takes numbers/strings and returns data (a
DataFrame, a dict) or a plotly figure, so it is unit-tested without a browser and the notebooks can
call it directly when they run headless. The ipywidgets/FigureWidget wrappers only wire sliders and
buttons to these callbacks.

Two groups:

* **weighting functions** (notebook 02): figures and sliders over the analytic weight curves of
  :mod:`satimp_lab.unlearning.weight_curves` (the w(p) family, NPO's and SimNPO's implicit weights, the
  SatImp peak, the weight table of docs/methods.md#the-weight-family, the GA logit view); the curve
  functions themselves are imported from there.
* **playground** (notebook 08): :class:`Playground` holds runs made by ``lab.run(...)`` (cached) and
  turns them into a comparison table and a trade-off figure; :class:`PlaygroundUI` is the widget
  form (method dropdown, the chosen method's hyper-parameters, learning rate, epochs/steps, seed, a
  Run button with a progress bar and status line). Each hyper-parameter's slider (range, step,
  label) is read from its declaration in :mod:`satimp_lab.unlearning.params`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import plots
from ..unlearning.objectives import get_method, list_methods
from ..unlearning.params import LOSS_WEIGHTS, PARAMS, validate_param
from ..unlearning.weight_curves import (family_curves, family_labels, likelihood_grid, logit_push, npo_weights_on_grid,
                            peak_text, satimp_peak, token_weights_on_grid)

__all__ = [
    # notebook 02: figures and sliders over the weight curves (the curves: unlearning.weight_curves)
    "family_figure",
    "update_family",
    "figure_output",
    "family_widget",
    "npo_shape_figure",
    "logit_push_curves",
    "logit_push_figure",
    "static_family_figure",
    "static_logit_push_figure",
    # notebook 08: the playground
    "PARAM_SPECS",
    "method_controls",
    "run_request",
    "Playground",
    "PlaygroundUI",
    "table_html",
]


# =============================================================================================
# 02 · weighting functions


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
    spec = PARAM_SPECS[name]
    return ipw.FloatSlider(value=value, min=spec.min, max=spec.max if max_value is None else max_value,
                           step=spec.step, description=description, tooltip=spec.description,
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


# =============================================================================================
# 08 · playground


@dataclass(frozen=True)
class ParamSpec:
    """How to show one hyper-parameter as a slider: a view of its :class:`satimp_lab.unlearning.params.Param`."""

    kind: str           # "float" or "int"
    min: float
    max: float
    step: float
    description: str    # the declaration's label (symbol, meaning, units)


PARAM_SPECS: dict[str, ParamSpec] = {
    name: ParamSpec(p.kind, *p.slider, p.label) for name, p in PARAMS.items()
}
"""Every declared hyper-parameter's slider, read from satimp_lab.unlearning.params.PARAMS."""


def method_controls(method: str) -> list[dict]:
    """The hyper-parameters worth a slider for ``method``: its own params, plus the forget/retain
    weights when it has a retain term. One dict each: name, value (the registry default) and the
    :class:`ParamSpec` fields."""
    m = get_method(method)
    values = dict(m.params)
    if m.retain != "none":
        values.update({key: getattr(m, key) for key in LOSS_WEIGHTS})
    out = []
    for name, value in values.items():
        spec = PARAM_SPECS[name]
        out.append({"name": name, "value": int(value) if spec.kind == "int" else float(value),
                    "kind": spec.kind, "min": spec.min, "max": spec.max, "step": spec.step,
                    "description": spec.description})
    return out


def _differs(a, b) -> bool:
    if a is None or b is None:
        return a is not b
    return not math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def run_request(method: str, values: dict | None = None, base=None, lr: float | None = None,
                epochs: float | None = None, steps: int | None = None, seed: int = 0) -> dict:
    """The keyword arguments of ``lab.run`` for a form's values: only what differs from the method's
    registry defaults goes into ``params`` and only what differs from the setting's recipe ``base``
    (an UnlearnConfig) into the overrides, so a default form hits the same cache entry as the
    notebooks' default runs. ``steps`` 0 or None means "use epochs". Returns
    ``{"method", "seed", "params", "overrides", "label"}``."""
    m = get_method(method)
    defaults = {c["name"]: c["value"] for c in method_controls(method)}
    values = dict(values or {})
    unknown = set(values) - set(defaults)
    if unknown:
        raise ValueError(f"method {method!r} has no hyper-parameter(s) {sorted(unknown)}; "
                         f"it takes {sorted(defaults)}")
    params = {}
    for name, value in values.items():
        if _differs(value, defaults[name]):
            params[name] = int(value) if PARAM_SPECS[name].kind == "int" else float(value)
    overrides: dict[str, float] = {}
    if steps:
        overrides["steps"] = int(steps)
    for name, value in (("lr", lr), ("epochs", epochs)):
        if value is not None and (base is None or _differs(value, getattr(base, name))):
            if name == "epochs" and steps:
                continue
            overrides[name] = float(value)
    from ..experiments.identity import params_label  # the one method(k=v, ...) label (studies sit above ui)

    label = params_label(m.name, {**params, **overrides}, fmt=_g) + (f" seed {seed}" if seed else "")
    return {"method": method, "seed": int(seed), "params": params, "overrides": overrides, "label": label}


SUMMARY_COLUMNS = {
    "matched_forget": "forget ES at matched retain",
    "matched_step": "step of the match",
    "reached": "retain fell to the level",
    "final_forget_es": "final forget ES",
    "final_retain_es": "final retain ES",
    "eval_forget_quality": "forget quality",
    "eval_model_utility": "model utility",
}
"""The summary fields the comparison table shows (when a run has them), and their headers."""


class Playground:
    """The runs of one playground session and their comparison.

    ``add_run`` calls ``lab.run`` (cached on disk, so repeating a configuration is instant) and keeps
    the result under its label (a repeated label replaces the earlier run); ``table()`` and
    ``figure()`` compare everything added so far. ``seconds[label]`` is what the run cost when it
    was computed (NaN if the cache does not record it) and ``cached[label]`` says whether this
    ``add_run`` loaded it from the cache.
    """

    def __init__(self, lab) -> None:
        self.lab = lab
        # lab.run's RunResults (experiments, not imported: ui sits below studies), read by attribute
        self.runs: dict[str, Any] = {}
        self.seconds: dict[str, float] = {}
        self.cached: dict[str, bool] = {}

    @property
    def base(self):
        return self.lab.setting.base

    def request(self, method: str, params: dict | None = None, seed: int = 0, lr: float | None = None,
                epochs: float | None = None, steps: int | None = None) -> dict:
        return run_request(method, params, self.base, lr=lr, epochs=epochs, steps=steps, seed=seed)

    def add_run(self, method: str, params: dict | None = None, seed: int = 0, lr: float | None = None,
                epochs: float | None = None, steps: int | None = None, label: str | None = None):
        """Run (or load) one configuration and add it to the comparison. Returns the RunResult."""
        req = self.request(method, params, seed, lr, epochs, steps)
        label = label or req["label"]
        start, wall = time.perf_counter(), time.time()
        result = self.lab.run(req["method"], seed=req["seed"], params=req["params"] or None, label=label,
                              **req["overrides"])
        elapsed = time.perf_counter() - start
        cached, cost = _cache_record(getattr(result, "folder", None), wall)
        self.cached[label] = cached
        self.seconds[label] = cost if cached or math.isfinite(cost) else elapsed
        self.runs.pop(label, None)          # re-adding moves it to the end
        self.runs[label] = result
        return result

    def remove(self, label: str) -> None:
        self.runs.pop(label, None)
        self.seconds.pop(label, None)
        self.cached.pop(label, None)

    def clear(self) -> None:
        self.runs.clear()
        self.seconds.clear()
        self.cached.clear()

    def curves(self) -> pd.DataFrame:
        """One row per evaluation step per run (label, step, forget_es, retain_es, target_seed,
        seed, ...): the frame of :func:`satimp_lab.studies.figures.curves_over_steps` too."""
        frames = []
        for label, r in self.runs.items():
            h = r.history
            ev = h.dropna(subset=["forget_es", "retain_es"]) if "forget_es" in h else h.iloc[0:0]
            frames.append(ev.assign(label=label, target_seed=r.target_seed, seed=r.config.seed))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["label", "step", "forget_es", "retain_es", "target_seed", "seed"])

    def table(self, timings: bool = True) -> pd.DataFrame:
        """One row per run: its configuration and the summary numbers of :data:`SUMMARY_COLUMNS`
        (plus, when ``timings``, "seconds": what the run cost when it was computed, and "from cache":
        whether it was loaded from the cache this time)."""
        rows = []
        for label, r in self.runs.items():
            c = r.config
            row = {"run": label, "method": c.method, "seed": c.seed, "lr": f"{c.lr:.3g}",
                   "epochs": c.epochs if c.steps is None else math.nan,
                   "steps": c.steps if c.steps is not None else math.nan,
                   "status": getattr(r, "status", "completed")}
            row.update({header: r.summary[key] for key, header in SUMMARY_COLUMNS.items() if key in r.summary})
            if timings and label in self.seconds:
                row["seconds"] = self.seconds[label]
                row["from cache"] = self.cached.get(label, False)
            rows.append(row)
        frame = pd.DataFrame(rows)
        if not frame.empty and frame["steps"].isna().all():
            frame = frame.drop(columns="steps")
        return frame

    def figure(self) -> go.Figure:
        """Trade-off curves of every run so far, with the matched-retain level drawn as a line. Runs
        of one method get shades of its colour (:func:`plots.distinct_colors`); with no run the axes
        span 0..1 (extraction strength's range) and say so."""
        curves = self.curves()
        n = len(self.runs)
        fig = plots.tradeoff_curves(curves, title=f"Playground: forget vs retain ES ({n} run"
                                                  f"{'' if n == 1 else 's'}; each starts at the right)")
        colours = dict(zip(self.runs, plots.distinct_colors(self.runs)))
        for trace in fig.data:
            if trace.name in colours:
                trace.line.color = colours[trace.name]
        if curves.empty:
            fig.update_layout(xaxis_range=[0, 1], yaxis_range=[0, 1], annotations=[dict(
                text="no runs yet: press Run", x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                font=dict(size=14, color="#888"))])
        else:
            start = curves.sort_values("step").groupby("label").first()["retain_es"].mean()
            level = self.lab.setting.match_level * start
            fig.add_trace(go.Scatter(x=[level, level], y=[0, float(curves["forget_es"].max())], mode="lines",
                                     name=f"matched-retain level ({self.lab.setting.match_level:.0%} of start)",
                                     line=dict(color="black", dash="dot")))
        return fig


def _cache_record(folder, since: float) -> tuple[bool, float]:
    """(loaded from the cache?, seconds the run cost) for a run folder written by ``Lab.run``: a
    folder whose ``summary.json`` is older than ``since`` (a ``time.time()``) was there before the
    call. The cost is the "seconds" ``Lab.run`` recorded there (NaN for older cache entries)."""
    import json
    from pathlib import Path

    summary = Path(folder) / "summary.json" if folder is not None else None
    if summary is None or not summary.exists():
        return False, math.nan
    cached = summary.stat().st_mtime < since
    try:
        return cached, float(json.loads(summary.read_text()).get("seconds", math.nan))
    except (OSError, ValueError, TypeError):
        return cached, math.nan


def table_html(table: pd.DataFrame, digits: int = 3) -> str:
    """The comparison table as HTML with numbers rounded to ``digits`` significant places."""
    if table.empty:
        return "<i>no runs yet</i>"

    def fmt(v):
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else ""
        if isinstance(v, (float, np.floating)):
            return "" if math.isnan(v) else f"{v:.{digits}g}"
        return v

    return table.map(fmt).to_html(index=False)


class PlaygroundUI:
    """The playground form. Widgets: a method dropdown (``list_methods()``), one slider per relevant
    hyper-parameter (rebuilt when the method changes), learning rate, epochs, steps (0 = use epochs),
    seed, and a Run button; a progress bar and a status line; the comparison figure (a FigureWidget)
    and table (HTML) below. ``run()`` is the button's callback and can be called directly."""

    def __init__(self, playground: Playground, method: str = "satimp"):
        import ipywidgets as ipw

        self.pg = playground
        base = playground.base
        self.method = ipw.Dropdown(options=sorted(list_methods()), value=method, description="method")
        self.description = ipw.HTML()
        self.params_box = ipw.VBox()
        self.param_widgets: dict[str, Any] = {}  # ipywidgets sliders (untyped library)
        self.lr = ipw.FloatLogSlider(value=base.lr, base=10, min=-5, max=-2, step=0.1, description="lr",
                                     readout_format=".1e", continuous_update=False)
        self.epochs = ipw.FloatSlider(value=float(base.epochs), min=1.0, max=20.0, step=1.0, description="epochs",
                                      continuous_update=False)
        self.steps = ipw.BoundedIntText(value=int(base.steps or 0), min=0, max=10_000, description="steps",
                                        tooltip="0 = use epochs")
        self.seed = ipw.BoundedIntText(value=0, min=0, max=10_000, description="seed")
        self.run_button = ipw.Button(description="Run", button_style="primary", icon="play")
        self.clear_button = ipw.Button(description="Clear comparison", icon="trash",
                                       layout=ipw.Layout(width="auto"))   # the default width cuts the label
        self.progress = ipw.IntProgress(value=0, min=0, max=1, description="progress")
        self.status = ipw.HTML("Pick a method and press Run.")
        self.figure = self.pg.figure()
        self.figure_view, self._show_figure = figure_output(self.figure)
        self.table_html = ipw.HTML()
        self.method.observe(lambda change: self.set_method(change["new"]), names="value")
        self.run_button.on_click(lambda _: self.run())
        self.clear_button.on_click(lambda _: self.clear())
        self.set_method(method)
        self.widget = ipw.VBox([
            ipw.HBox([self.method, self.description]), self.params_box,
            ipw.HBox([self.lr, self.epochs]), ipw.HBox([self.steps, self.seed]),
            ipw.HBox([self.run_button, self.clear_button, self.progress]), self.status,
            self.figure_view, self.table_html])
        self.refresh()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def set_method(self, method: str) -> None:
        """Rebuild the hyper-parameter sliders for ``method`` (the dropdown's callback)."""
        import ipywidgets as ipw

        self.description.value = f"<i>{list_methods()[method]}</i>"
        widgets = {}
        for c in method_controls(method):
            cls = ipw.IntSlider if c["kind"] == "int" else ipw.FloatSlider
            widgets[c["name"]] = cls(value=c["value"], min=c["min"], max=c["max"], step=c["step"],
                                     description=c["name"], tooltip=c["description"],
                                     continuous_update=False, style={"description_width": "initial"})
        self.param_widgets = widgets
        self.params_box.children = tuple(widgets.values()) or (ipw.HTML("<i>no hyper-parameters</i>"),)

    def values(self) -> dict:
        """The form's current values as ``Playground.add_run`` keywords."""
        return {"method": self.method.value,
                "params": {name: w.value for name, w in self.param_widgets.items()},
                "seed": int(self.seed.value), "lr": float(self.lr.value), "epochs": float(self.epochs.value),
                "steps": int(self.steps.value) or None}

    def run(self):
        """Run the form's configuration (the Run button's callback). Returns the RunResult, or None
        if the configuration was rejected or the run failed (the status line says why)."""
        kwargs = self.values()
        self.run_button.disabled = True
        self.progress.value, self.progress.bar_style = 0, "info"
        self.status.value = f"running <b>{kwargs['method']}</b> ... (a cached configuration returns at once)"
        try:
            result = self.pg.add_run(**kwargs)
        except Exception as err:  # noqa: BLE001 -- a bad value must not kill the form
            self.progress.bar_style = "danger"
            self.status.value = f"<span style='color:#b00'>✗ {type(err).__name__}: {err}</span>"
            return None
        finally:
            self.run_button.disabled = False
        label = next(reversed(self.pg.runs))
        self.progress.value, self.progress.bar_style = 1, "success"
        cost = self.pg.seconds[label]
        if self.pg.cached[label]:
            how = "loaded from the cache" + (f" (the run took {cost:.1f} s)" if math.isfinite(cost) else "")
        else:
            how = f"done in {cost:.1f} s"
        n = len(self.pg.runs)
        self.status.value = f"✓ <b>{label}</b> {how} ({n} run{'s' if n != 1 else ''} in the comparison)"
        self.refresh()
        return result

    def clear(self) -> None:
        self.pg.clear()
        self.progress.value, self.progress.bar_style = 0, ""
        self.status.value = "Comparison cleared."
        self.refresh()

    def refresh(self) -> None:
        """Redraw the comparison figure and table from the playground's runs."""
        self.figure = self.pg.figure()
        self._show_figure(self.figure)
        self.table_html.value = table_html(self.pg.table())
