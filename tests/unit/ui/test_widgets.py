"""The weight curves' figures and sliders of notebooks 02 and 09 (satimp_lab.ui.widgets), tested without a
browser (the playground of notebook 08: test_playground.py)."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from satimp_lab.ui import widgets as X
from satimp_lab.unlearning import weight_curves as C
from satimp_lab.unlearning.objectives import get_method

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


def test_family_widget_fills_the_output_width():
    box = X.family_widget(5.0, 0.1)
    view = box.children[-1]
    assert type(view).__name__ == "Output" and view.layout.width == "100%"
    assert not isinstance(box.figure, go.FigureWidget)


def test_the_analytic_curves_live_in_weight_curves_only():
    assert not set(C.__all__) & set(X.__all__)  # no re-export shim (CHANGELOG.md)
    # the curves (and the course checks that use them as references) need no UI library
    code = ("import sys, satimp_lab.unlearning.weight_curves, satimp_lab.ui.course; "
            "print(sorted(m for m in ('ipywidgets', 'plotly', 'satimp_lab.ui.widgets', 'satimp_lab.ui.plots', "
            "'satimp_lab.ui.playground') if m in sys.modules))")
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
