"""Figures: what a reader needs to tell the curves and reference points apart."""

from __future__ import annotations

import pandas as pd

from satimp_lab import plots


def _curves():
    return pd.DataFrame({"label": ["ga"] * 3 + ["simsat"] * 3, "seed": 0, "step": [0, 2, 4] * 2,
                         "retain_es": [0.9, 0.8, 0.7, 0.9, 0.85, 0.8], "forget_es": [0.9, 0.6, 0.4, 0.9, 0.5, 0.3]})


def test_reference_points_have_distinct_shapes_in_both_renderers(tmp_path):
    fig = plots.tradeoff_curves(_curves(), reference={"target": (0.9, 0.9), "retain model": (0.85, 0.2)})
    refs = [t for t in fig.data if t.name in ("target", "retain model")]
    assert [t.marker.symbol for t in refs] == ["star", "diamond"]
    mfig = plots.to_matplotlib(fig)
    markers = {line.get_label(): line.get_marker() for line in mfig.axes[0].get_lines()}
    assert markers["target"] == "*" and markers["retain model"] == "D"
    assert markers["ga"] == markers["simsat"] == "o"


def test_curve_colours_are_stable_per_method():
    fig = plots.tradeoff_curves(_curves())
    colours = {t.name: t.line.color for t in fig.data}
    assert colours["ga"] != colours["simsat"]
    assert colours == {t.name: t.line.color for t in plots.tradeoff_curves(_curves().iloc[::-1]).data}


def test_long_category_labels_are_slanted_so_they_do_not_overlap():
    levels = ["token", "G=2", "G=5", "G=20", "instance", "instance-norm", "batch"]
    frame = pd.DataFrame({"granularity": levels * 2, "value": range(14), "method": ["a"] * 7 + ["b"] * 7})
    fig = plots.param_sweep(frame, x="granularity", y="value", group="method")
    ax = plots.to_matplotlib(fig).axes[0]
    assert {round(t.get_rotation()) for t in ax.get_xticklabels()} == {30}
    short = plots.param_sweep(frame[frame.granularity.str.len() <= 3], x="granularity", y="value", group="method")
    assert {round(t.get_rotation()) for t in plots.to_matplotlib(short).axes[0].get_xticklabels()} == {0}
