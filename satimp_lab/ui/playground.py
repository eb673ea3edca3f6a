"""The playground of notebook 08: run any method with any hyper-parameters and compare the runs.

:class:`Playground` holds runs made by ``lab.run(...)`` (cached) and turns them into a comparison
table and a trade-off figure; :class:`PlaygroundUI` is the widget form (method dropdown, the chosen
method's hyper-parameters, learning rate, epochs/steps, seed, a Run button with a progress bar and
status line). Each hyper-parameter's slider (range, step, label) is read from its declaration in
:mod:`satimp_lab.unlearning.params` (:data:`PARAM_SPECS`).

Every callback here is a plain function or method that takes numbers/strings and returns data (a
DataFrame, a dict) or a plotly figure, so it is unit-tested without a browser and the notebook can
call it directly when it runs headless. The ipywidgets form only wires sliders and buttons to
these callbacks.
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
from .widgets import figure_output
from ..experiments.identity import params_label
from ..unlearning.objectives import get_method, list_methods
from ..unlearning.params import LOSS_WEIGHTS, PARAMS

__all__ = [
    "PARAM_SPECS",
    "method_controls",
    "run_request",
    "Playground",
    "PlaygroundUI",
    "table_html",
]


def _g(x: float) -> str:
    return f"{x:.4g}"


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
