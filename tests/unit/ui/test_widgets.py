"""Widget callbacks of notebooks 02 and 08 (satimp_lab.ui.widgets), tested without a browser."""

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from satimp_lab.ui import widgets as X
from satimp_lab.unlearning import weight_curves as C
from satimp_lab.experiments import RunResult, get_setting
from satimp_lab.unlearning.objectives import get_method, list_methods
from satimp_lab.unlearning.params import PARAMS

P = np.array([0.0, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0])


# ----------------------------------------------------------------------------- 02: curves


def test_token_curves_are_the_closed_forms():
    bs, bi = 3.0, 0.5
    np.testing.assert_allclose(C.token_weights_on_grid("ga", P), np.ones_like(P))
    np.testing.assert_allclose(C.token_weights_on_grid("simsat", P, beta_sat=bs), P ** bs, rtol=1e-12)
    np.testing.assert_allclose(C.token_weights_on_grid("simimp", P, beta_imp=bi), (1 - P) ** bi, rtol=1e-12)
    np.testing.assert_allclose(C.token_weights_on_grid("satimp", P, bs, bi), P ** bs * (1 - P) ** bi, rtol=1e-12)
    with pytest.raises(ValueError, match="scheme"):
        C.token_weights_on_grid("npo", P)
    with pytest.raises(ValueError, match="beta_sat"):
        C.token_weights_on_grid("satimp", P, -1.0, 0.1)
    with pytest.raises(ValueError, match="likelihoods"):
        C.token_weights_on_grid("ga", [1.5])


def test_implicit_curves_follow_spec_a7():
    x = np.linspace(0.0, 1.0, 11)
    for beta in (0.1, 1.0, 2.5):
        want = 2 * x ** beta / (1 + x ** beta)
        np.testing.assert_allclose(C.npo_weights_on_grid(x, beta), want, atol=1e-12)
        np.testing.assert_allclose(C.simnpo_weights_on_grid(x, beta), want, atol=1e-12)
    assert C.npo_weights_on_grid([1.0], 0.1)[0] == pytest.approx(1.0)  # pi = pi_ref: GA


def test_family_curves_cover_every_scheme_and_default_betas():
    p, curves, labels = C.family_curves(5.0, 0.1)
    assert set(curves) == {"ga", "simsat", "simimp", "satimp", "npo", "simnpo"} == set(labels)
    assert all(len(c) == len(p) for c in curves.values())
    assert f"β={get_method('npo').params['npo_beta']:g}" in labels["npo"]
    assert f"β={get_method('simnpo').params['npo_beta']:g}" in labels["simnpo"]


def test_spec_a2_table_values():
    t = C.weight_table().set_index("scheme")
    assert t.loc["simsat(β_sat=5)", "p=0.9"] == pytest.approx(0.590, abs=1e-3)
    assert t.loc["simimp(β_imp=5)", "p=0.01"] == pytest.approx(0.951, abs=1e-3)
    assert t.loc["satimp(β_sat=5, β_imp=0.1)", "p=0.9"] == pytest.approx(0.469, abs=1e-3)
    assert t.loc["satimp(β_sat=5, β_imp=0.1)", "p=0.99"] == pytest.approx(0.600, abs=1e-3)
    assert t.loc["satimp(β_sat=5, β_imp=1)", "p=0.9"] == pytest.approx(0.059, abs=1e-3)
    assert list(t.columns) == [f"p={p:g}" for p in C.WEIGHT_TABLE_P]


@pytest.mark.parametrize("bs,bi", [(5.0, 0.1), (5.0, 1.0), (1.0, 1.0), (0.5, 3.0)])
def test_satimp_peak_matches_grid(bs, bi):
    pk = C.satimp_peak(bs, bi)
    assert pk["p_star"] == pytest.approx(bs / (bs + bi))
    assert pk["grid_p"] == pytest.approx(pk["p_star"], abs=1e-3)
    assert pk["w_max"] >= pk["grid_w"] - 1e-12          # the closed form is the true max
    assert pk["w_max"] == pytest.approx(pk["p_star"] ** bs * (1 - pk["p_star"]) ** bi)


def test_satimp_peak_edges_and_text():
    assert C.satimp_peak(5.0, 0.1)["w_max"] == pytest.approx(0.611, abs=1e-3)   # docs/methods.md#the-weight-family
    assert C.satimp_peak(5.0, 1.0)["w_max"] == pytest.approx(0.067, abs=1e-3)
    assert C.satimp_peak(2.0, 0.0)["p_star"] == 1.0 and C.satimp_peak(2.0, 0.0)["w_max"] == 1.0
    assert C.satimp_peak(0.0, 2.0)["p_star"] == 0.0 and C.satimp_peak(0.0, 2.0)["w_max"] == 1.0
    assert math.isnan(C.satimp_peak(0.0, 0.0)["p_star"])
    assert "0.980" in C.peak_text(5.0, 0.1) and "0.611" in C.peak_text(5.0, 0.1)
    assert "flat" in C.peak_text(0, 0)
    assert len(C.peaks_table([(5, 0.1), (5, 1)])) == 2


def test_update_family_redraws_in_place():
    fig = X.family_figure(5.0, 0.1)
    assert fig.layout.title.text and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    ga_before = np.array(fig.data[0].y)
    out = X.update_family(fig, 2.0, 1.0)
    assert out is fig
    by = {t.meta: t for t in fig.data}
    p = np.asarray(by["satimp"].x)
    np.testing.assert_allclose(by["satimp"].y, p ** 2 * (1 - p), atol=1e-12)
    np.testing.assert_allclose(by["simimp"].y, 1 - p, atol=1e-12)
    assert "β_sat=2" in by["satimp"].name and "β_imp=1" in by["simimp"].name
    assert by["peak"].x[0] == pytest.approx(2 / 3)
    np.testing.assert_allclose(by["ga"].y, ga_before)    # untouched
    X.update_family(fig, 2.0, 1.0, normalise=True)
    assert max(by["satimp"].y) == pytest.approx(1.0) and by["peak"].y[0] == 1.0
    X.update_family(fig, 0.0, 0.0)
    assert len(by["peak"].x) == 0
    with pytest.raises(ValueError):
        X.update_family(fig, -1.0, 0.0)


def test_family_widget_sliders_drive_the_figure():
    box = X.family_widget(5.0, 0.1)
    s_sat, s_imp, norm = box.sliders
    s_sat.value = 3.0
    s_imp.value = 1.0
    by = {t.meta: t for t in box.figure.data}
    assert by["peak"].x[0] == pytest.approx(0.75)
    assert "0.750" in box.children[1].value


def test_logit_view():
    p = np.array([0.01, 0.3, 0.5, 0.9, 0.999])
    np.testing.assert_allclose(C.target_logit_gradient(p), -(1 - p), atol=1e-12)   # docs/methods.md#implicit-weights
    np.testing.assert_allclose(C.logit_push("ga", p), 1 - p, atol=1e-12)
    np.testing.assert_allclose(C.logit_push("satimp", p), p ** 5 * (1 - p) ** 0.1 * (1 - p), atol=1e-12)
    np.testing.assert_allclose(C.logit_push("simsat", p, beta_sat=2.0), p ** 2 * (1 - p), atol=1e-12)
    with pytest.raises(ValueError):
        C.target_logit_gradient([0.0])
    with pytest.raises(ValueError, match="token-level"):
        C.logit_push("npo", p)
    fig = X.logit_push_figure()
    assert len(fig.data) == 4 and "logit" in fig.layout.title.text


def test_npo_shape_figure():
    fig = X.npo_shape_figure(betas=(0.1, 1.0))
    assert [t.name for t in fig.data] == ["ga(w = 1)", "npo(β=0.1)", "npo(β=1)"]
    y = np.asarray(fig.data[2].y)
    assert y[0] == pytest.approx(1.0) and np.all(np.diff(y) <= 0)


# ----------------------------------------------------------------------------- 08: playground


def test_method_controls_fit_every_registered_method():
    for name in list_methods():
        m = get_method(name)
        controls = X.method_controls(name)
        names = [c["name"] for c in controls]
        assert set(m.params) <= set(names)
        assert ("retain_weight" in names) == (m.retain != "none")
        for c in controls:
            assert c["min"] <= c["value"] <= c["max"], (name, c)
    assert [c["name"] for c in X.method_controls("satimp")] == ["beta_sat", "beta_imp"]
    assert [c["name"] for c in X.method_controls("group_simimp")] == ["beta_imp", "group_size"]
    assert X.method_controls("ga") == []


def test_run_request_keeps_only_changes():
    base = get_setting("fast").base
    req = X.run_request("satimp", {"beta_sat": 5.0, "beta_imp": 0.1}, base, lr=base.lr, epochs=base.epochs)
    assert req["params"] == {} and req["overrides"] == {} and req["label"] == "satimp"
    req = X.run_request("satimp", {"beta_sat": 5.0, "beta_imp": 1.0}, base, lr=2e-3, epochs=base.epochs, seed=1)
    assert req["params"] == {"beta_imp": 1.0} and req["overrides"] == {"lr": 2e-3}
    assert req["label"] == "satimp(beta_imp=1, lr=0.002) seed 1"
    req = X.run_request("group_simsat", {"group_size": 8.0}, base, steps=3, epochs=9)
    assert req["params"] == {"group_size": 8} and req["overrides"] == {"steps": 3}
    with pytest.raises(ValueError, match="no hyper-parameter"):
        X.run_request("ga", {"beta_sat": 1.0}, base)


class FakeLab:
    """Stands in for Lab: records the calls, returns a made-up run."""

    def __init__(self):
        self.setting = get_setting("fast")
        self.calls = []

    def run(self, method, seed=0, params=None, label=None, **overrides):
        self.calls.append({"method": method, "seed": seed, "params": params, "label": label, **overrides})
        get_method(method, **(params or {}))              # reject what the real lab would reject
        config = self.setting.base.__class__(**{**self.setting.base.to_dict(), "method": method,
                                                "method_params": dict(params or {}), "seed": seed, **overrides})
        steps = np.arange(5)
        speed = 0.1 + 0.05 * len(self.calls)
        history = pd.DataFrame({"step": steps, "loss": -steps * 1.0, "forget_es": 0.9 - speed * steps,
                                "retain_es": 0.8 - 0.04 * steps})
        summary = {"matched_forget": 0.5, "matched_step": 2.0, "reached": True, "final_forget_es": 0.9 - 4 * speed}
        return RunResult(label or method, config, history, summary, folder=None)


def test_playground_collects_runs():
    lab = FakeLab()
    pg = X.Playground(lab)
    assert pg.table().empty and len(pg.figure().data) == 0
    pg.add_run("satimp")
    pg.add_run("ga", lr=2e-3)
    assert [c["method"] for c in lab.calls] == ["satimp", "ga"]
    assert lab.calls[0]["params"] is None and lab.calls[1]["lr"] == 2e-3
    table = pg.table()
    assert list(table["run"]) == ["satimp", "ga(lr=0.002)"]
    assert {"forget ES at matched retain", "final forget ES", "seconds"} <= set(table.columns)
    assert "steps" not in table.columns
    fig = pg.figure()
    names = [t.name for t in fig.data]
    assert names[:2] == ["satimp", "ga(lr=0.002)"] and "matched-retain level" in names[2]
    assert fig.data[2].x[0] == pytest.approx(lab.setting.match_level * 0.8)
    pg.add_run("satimp")                     # the same label again: replaced and moved to the end
    assert list(pg.table()["run"]) == ["ga(lr=0.002)", "satimp"]
    pg.add_run("ga", steps=3)
    assert pg.table()["steps"].iloc[-1] == 3
    pg.clear()
    assert pg.table().empty


def test_playground_ui_form_and_button():
    lab = FakeLab()
    ui = X.PlaygroundUI(X.Playground(lab), method="satimp")
    assert list(ui.param_widgets) == ["beta_sat", "beta_imp"]
    ui.method.value = "hard_top_gd"
    assert list(ui.param_widgets) == ["k", "soft", "forget_weight", "retain_weight"]
    assert len(ui.params_box.children) == 4
    ui.method.value = "satimp"
    ui.param_widgets["beta_imp"].value = 1.0
    ui.run_button.click()                    # the real button handler
    assert lab.calls[-1]["params"] == {"beta_imp": 1.0}
    assert ui.progress.value == 1 and ui.progress.bar_style == "success"
    assert "✓" in ui.status.value and "satimp(beta_imp=1)" in ui.table_html.value
    assert any(t.name == "satimp(beta_imp=1)" for t in ui.figure.data)
    ui.method.value = "ga"
    assert ui.run() is not None and len(ui.pg.runs) == 2
    assert sum(1 for t in ui.figure.data if "matched" not in (t.name or "")) == 2


def test_playground_ui_reports_errors():
    class Broken(FakeLab):
        def run(self, *a, **k):
            raise RuntimeError("loss became NaN")

    ui = X.PlaygroundUI(X.Playground(Broken()))
    assert ui.run() is None
    assert "RuntimeError" in ui.status.value and ui.progress.bar_style == "danger"
    assert not ui.run_button.disabled
    ui.clear()
    assert "no runs" in ui.table_html.value


def test_playground_with_a_real_micro_lab(micro_target, session_cache):
    """Two short real runs through lab.run at the fast size (the micro target comes from the
    session fixture; final metrics off to stay quick)."""
    from satimp_lab.experiments import Lab

    lab = Lab("fast", progress=False, final_metrics=())
    pg = X.Playground(lab)
    pg.add_run("satimp", steps=2)
    pg.add_run("ga", steps=2, lr=2e-3)
    table = pg.table()
    assert list(table["run"]) == ["satimp(steps=2)", "ga(steps=2, lr=0.002)"]
    assert table["final forget ES"].notna().all()
    curves = pg.curves()
    assert set(curves["label"]) == set(table["run"]) and curves["step"].max() == 2
    again = pg.add_run("satimp", steps=2)      # cached: same result, no retraining
    assert again.folder == pg.runs["satimp(steps=2)"].folder
    assert len(pg.figure().data) == 3


def test_playground_cached_rerun_keeps_its_cost_and_says_so(micro_target, session_cache):
    from satimp_lab.experiments import Lab

    lab = Lab("fast", progress=False, final_metrics=())
    ui = X.PlaygroundUI(X.Playground(lab), method="ga")
    ui.steps.value = 2
    ui.run()
    label = next(iter(ui.pg.runs))
    first = ui.pg.seconds[label]
    assert first > 0 and "cache" not in ui.status.value
    # the cache may hold it from another test: what matters is that a rerun is cached and keeps the cost
    ui.run()
    assert ui.pg.cached[label] and ui.pg.seconds[label] == pytest.approx(first)
    assert "loaded from the cache" in ui.status.value and f"{first:.1f} s" in ui.status.value
    table = ui.pg.table()
    assert table["from cache"].iloc[-1] and table["seconds"].iloc[-1] == pytest.approx(first)


def test_playground_runs_of_one_method_get_distinct_colours():
    pg = X.Playground(FakeLab())
    for beta_imp in (0.1, 0.35, 1.0):
        pg.add_run("satimp", params={"beta_imp": beta_imp})
    pg.add_run("ga")
    colours = {t.name: t.line.color for t in pg.figure().data if "matched" not in t.name}
    assert len(colours) == 4 and len(set(colours.values())) == 4
    assert colours["satimp"] == X.plots.PALETTE["satimp"]          # the first keeps the family colour


def test_playground_empty_figure_and_rounded_table():
    pg = X.Playground(FakeLab())
    fig = pg.figure()
    assert tuple(fig.layout.xaxis.range) == (0, 1) and tuple(fig.layout.yaxis.range) == (0, 1)
    assert "no runs yet" in fig.layout.annotations[0].text
    pg.add_run("satimp")
    html = X.table_html(pg.table())
    numbers = re.findall(r"<td>(-?\d+\.\d+)</td>", html)
    assert numbers and all(len(n.replace("-", "").replace(".", "").lstrip("0")) <= 3 for n in numbers), numbers


def test_family_widget_fills_the_output_width():
    box = X.family_widget(5.0, 0.1)
    view = box.children[-1]
    assert type(view).__name__ == "Output" and view.layout.width == "100%"
    assert not isinstance(box.figure, go.FigureWidget)


def test_the_playground_and_family_sliders_use_the_declared_range():
    ui = X.PlaygroundUI(X.Playground(FakeLab()), method="hard_top_gd")
    for name, w in ui.param_widgets.items():
        assert (w.min, w.max, w.step) == pytest.approx(PARAMS[name].slider), name
    box = X.family_widget(5.0, 0.1)
    for w, name in zip(box.sliders[:2], ("beta_sat", "beta_imp")):
        assert (w.min, w.max, w.step) == pytest.approx(PARAMS[name].slider), name


def test_the_analytic_curves_live_in_weight_curves_only():
    assert not set(C.__all__) & set(X.__all__)  # no re-export shim (CHANGELOG.md)
    # the curves (and the course checks that use them as references) need no UI library
    code = ("import sys, satimp_lab.unlearning.weight_curves, satimp_lab.ui.course; "
            "print(sorted(m for m in ('ipywidgets', 'plotly', 'satimp_lab.ui.widgets', 'satimp_lab.ui.plots') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("interactive, static", [
    (lambda: X.logit_push_figure(5.0, 0.1, beta=1.0), lambda: X.static_logit_push_figure(5.0, 0.1, beta=1.0)),
    (lambda: X.family_figure(5.0, 0.1), lambda: X.static_family_figure(5.0, 0.1)),
])
def test_static_copies_draw_the_interactive_figures_data(interactive, static):
    """The report's PNG copy of 02's and 09's figures: the same curves, labels and values."""
    lines = {l.get_label(): l for l in static().axes[0].lines}
    traces = [t for t in interactive().data if t.meta != "peak"]   # the peak marker is interactive only
    assert list(lines) == [t.name for t in traces]
    for t in traces:
        np.testing.assert_allclose(lines[t.name].get_ydata(), t.y)
        np.testing.assert_allclose(lines[t.name].get_xdata(), t.x)


def test_playground_curves_carry_the_units_for_the_static_figure():
    from satimp_lab.studies.figures import curves_over_steps

    pg = X.Playground(FakeLab())
    pg.add_run("satimp")
    pg.add_run("ga", seed=3)
    curves = pg.curves()
    assert {(r.label, r.target_seed, r.seed) for r in curves.itertuples()} == {("satimp", 0, 0), ("ga seed 3", 0, 3)}
    fig = curves_over_steps(curves, title="playground")
    assert {l.get_label() for l in fig.axes[2].lines} >= {"satimp", "ga seed 3"}  # the trade-off panel
