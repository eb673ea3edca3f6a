"""The playground of notebook 08 (satimp_lab.ui.playground): its form, requests, runs and comparison,
tested without a browser."""

import re

import numpy as np
import pandas as pd
import pytest

from satimp_lab.ui import playground as X
from satimp_lab.ui import widgets
from satimp_lab.experiments import RunResult, get_setting
from satimp_lab.unlearning.objectives import get_method, list_methods
from satimp_lab.unlearning.params import PARAMS


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


def test_the_playground_and_family_sliders_use_the_declared_range():
    ui = X.PlaygroundUI(X.Playground(FakeLab()), method="hard_top_gd")
    for name, w in ui.param_widgets.items():
        assert (w.min, w.max, w.step) == pytest.approx(PARAMS[name].slider), name
    box = widgets.family_widget(5.0, 0.1)
    for w, name in zip(box.sliders[:2], ("beta_sat", "beta_imp")):
        assert (w.min, w.max, w.step) == pytest.approx(PARAMS[name].slider), name


def test_playground_curves_carry_the_units_for_the_static_figure():
    from satimp_lab.studies.figures import curves_over_steps

    pg = X.Playground(FakeLab())
    pg.add_run("satimp")
    pg.add_run("ga", seed=3)
    curves = pg.curves()
    assert {(r.label, r.target_seed, r.seed) for r in curves.itertuples()} == {("satimp", 0, 0), ("ga seed 3", 0, 3)}
    fig = curves_over_steps(curves, title="playground")
    assert {l.get_label() for l in fig.axes[2].lines} >= {"satimp", "ga seed 3"}  # the trade-off panel
