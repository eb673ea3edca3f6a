"""Figures: what a reader needs to tell the curves and reference points apart; saved figures are
plotly's own interactive pages (the report links them) and static PNG copies drawn from the same
data with matplotlib, never converted from a plotly figure (the report embeds them)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.colors
import numpy as np
import pandas as pd
import pytest

import satimp_lab
from satimp_lab.ui import plots
from satimp_lab.mainjob.report import build_report


def _curves():
    return pd.DataFrame({"label": ["ga"] * 3 + ["simsat"] * 3, "seed": 0, "step": [0, 2, 4] * 2,
                         "retain_es": [0.9, 0.8, 0.7, 0.9, 0.85, 0.8], "forget_es": [0.9, 0.6, 0.4, 0.9, 0.5, 0.3]})


def test_reference_points_have_distinct_shapes():
    fig = plots.tradeoff_curves(_curves(), reference={"target": (0.9, 0.9), "retain model": (0.85, 0.2)})
    refs = [t for t in fig.data if t.name in ("target", "retain model")]
    assert [t.marker.symbol for t in refs] == ["star", "diamond"]
    assert {t.mode for t in fig.data if t.name in ("ga", "simsat")} == {"lines+markers"}


def test_curve_colours_are_stable_per_method():
    fig = plots.tradeoff_curves(_curves())
    colours = {t.name: t.line.color for t in fig.data}
    assert colours["ga"] != colours["simsat"]
    assert colours == {t.name: t.line.color for t in plots.tradeoff_curves(_curves().iloc[::-1]).data}


def test_save_figure_writes_the_interactive_page_only(tmp_path):
    fig = plots.tradeoff_curves(_curves())
    assert plots.save_figure(fig, None, "01_curves") is None  # interactive use: nothing written
    page = plots.save_figure(fig, tmp_path, "01_curves")
    plots.save_figure(plots.tradeoff_curves(_curves().iloc[::-1]), tmp_path, "01_again")
    folder = tmp_path / "figures"
    assert page == folder / "01_curves.html"
    assert sorted(p.name for p in folder.iterdir()) == ["01_again.html", "01_curves.html", "plotly.min.js"]
    text = page.read_text(encoding="utf-8")
    # plotly.js is loaded from the folder (offline, written once), not inlined in every page
    assert 'src="plotly.min.js"' in text and len(text) < 100_000
    assert (folder / "plotly.min.js").stat().st_size > 1_000_000


def test_no_plotly_to_matplotlib_converter_remains():
    assert not hasattr(plots, "to_matplotlib")
    package = Path(satimp_lab.__file__).parent
    users = [p for p in package.rglob("*.py") if "to_matplotlib" in p.read_text(encoding="utf-8")]
    assert users == []


def test_report_embeds_static_figures_and_links_interactive_ones(tmp_path):
    folder = tmp_path / "figures"
    folder.mkdir()
    (folder / "04_obs1_matched_forget.png").write_bytes(b"png")
    (folder / "04_tradeoff_curves.html").write_text("<html></html>")
    (folder / "05_beta_sweep.html").write_text("<html></html>")
    runs = [{"name": "04_obs1", "status": "ok", "seconds": 1.0}, {"name": "05_obs3", "status": "ok", "seconds": 1.0}]
    report = build_report(tmp_path, runs, {"size": "test"}).read_text()
    section = report[report.index("## 04_obs1"):report.index("## 05_obs3")]
    assert "![04_obs1_matched_forget](figures/04_obs1_matched_forget.png)" in section
    assert "[04_tradeoff_curves](figures/04_tradeoff_curves.html)" in section
    assert "[05_beta_sweep](figures/05_beta_sweep.html)" in report[report.index("## 05_obs3"):]
    assert "95 % interval" in report  # the note on what the static figures show


def test_static_lines_and_save_png(tmp_path):
    """The report's static copy of a line figure: one line per curve, the interactive palette, a PNG
    under figures/ (nothing without an output folder)."""
    p = np.linspace(0, 1, 5)
    curves = {"ga": np.ones(5), "satimp(β_sat=5)": p ** 5}
    fig = plots.static_lines(curves, p, "title", "x", "y", dashed=("ga",))
    (ax,) = fig.axes
    assert [l.get_label() for l in ax.lines] == list(curves)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), p ** 5)
    assert ax.lines[0].get_linestyle() == "--" and ax.lines[1].get_linestyle() == "-"
    assert matplotlib.colors.to_hex(ax.lines[1].get_color()) == plots.color_for("satimp(β_sat=5)", 1)
    path = plots.save_png(fig, tmp_path, "02_curves")
    assert path == tmp_path / "figures" / "02_curves.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plots.save_png(fig, None, "02_curves") is None
    with pytest.raises(ValueError, match="'ga' has 2 values for 5"):
        plots.static_lines({"ga": [1, 1]}, p, "t", "x", "y")
