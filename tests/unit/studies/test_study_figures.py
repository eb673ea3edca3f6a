"""The studies' seaborn figures show the intervals they claim: the error bars and bands are the
claims' cluster-bootstrap intervals (satimp_lab.studies.verdicts), one per method; every study draws its
figures from a synthetic population (no model runs), and StudyResult saves and shows them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from satimp_lab.studies import verdicts
from satimp_lab.studies import STUDIES, StudyResult, figures, obs1

TARGETS, SEEDS = (0, 1, 2, 3, 4), (0, 1, 2)


def population(values: dict, targets=TARGETS, seeds=SEEDS, metric="matched_forget", seed=0) -> pd.DataFrame:
    """Every label on every (target, seed) unit: its value + a per-target offset + noise (so the
    intervals over target models are wide and differ between labels)."""
    rng = np.random.default_rng(seed)
    offsets = {t: rng.normal(0, 0.08) for t in targets}
    return pd.DataFrame([{"label": label, "target_seed": t, "seed": s, "reached": (t, s) != (0, 0),
                          metric: value + offsets[t] * (1 + i % 3) + rng.normal(0, 0.02)}
                         for i, (label, value) in enumerate(values.items()) for t in targets for s in seeds])


def curves_of(labels, targets=TARGETS, seeds=SEEDS, steps=range(5), seed=1) -> pd.DataFrame:
    """Sweep.curves-like rows: forget ES falls and retain ES drifts with the step, per run."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"label": l, "target_seed": t, "seed": s, "step": k,
                          "forget_es": 0.9 * np.exp(-k * (0.3 + 0.1 * i)) + rng.normal(0, 0.05),
                          "retain_es": 0.7 - 0.03 * k + rng.normal(0, 0.04)}
                         for i, l in enumerate(labels) for t in targets for s in seeds for k in steps])


def expected_interval(rows: pd.DataFrame, value: str) -> tuple[float, float]:
    """The claims' interval of the mean of ``value`` over the runs ``rows`` (clusters: targets)."""
    _, low, high, _ = verdicts.interval(rows.assign(diff=rows[value]))
    return low, high


def vertical_segments(ax) -> list[tuple[float, float, float]]:
    """(x, low, high) of every vertical two-point segment of ``ax``'s lines (seaborn's error bars;
    a line's segments are separated by NaN, its caps are horizontal)."""
    out = []
    for line in ax.lines:
        xy = np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float)
        breaks = np.flatnonzero(np.isnan(xy).any(axis=1))
        for seg in np.split(xy, breaks):
            seg = seg[~np.isnan(seg).any(axis=1)]
            if len(seg) == 2 and seg[0, 0] == seg[1, 0] and seg[0, 1] != seg[1, 1]:
                out.append((seg[0, 0], seg[:, 1].min(), seg[:, 1].max()))
    return sorted(out)


@pytest.mark.parametrize("targets, seeds", [(TARGETS, SEEDS), ((3,), (0, 1, 2, 3))])
def test_error_bars_are_the_claims_bootstrap_interval(targets, seeds):
    values = {"ga": 0.5, "simsat": 0.3, "simimp": 0.45, "annotated": 0.4, "satimp": 0.25}
    summary = population(values, targets, seeds)
    fig = figures.label_points(summary)
    assert isinstance(fig, Figure)
    bars = vertical_segments(fig.axes[0])
    assert [round(x) for x, _, _ in bars] == list(range(len(values)))  # one error bar per method
    for (x, low, high), label in zip(bars, values):
        want = expected_interval(summary[summary["label"] == label], "matched_forget")
        assert (low, high) == pytest.approx(want, abs=1e-12), label
        assert high - low > 0.01  # a real interval, not a point
    assert "lower = better" in fig.axes[0].get_ylabel() and "95 %" in fig.axes[0].get_title()


def test_unreached_runs_are_marked():
    summary = population({"ga": 0.5, "satimp": 0.2})
    ax = figures.label_points(summary).axes[0]
    dots = [c for c in ax.collections if len(c.get_offsets())]
    assert sum(len(c.get_offsets()) for c in dots) == len(summary)  # every run drawn
    assert len(dots) == 4  # per label: reached runs (o) and the one unreached run (x)


def test_curves_have_one_band_per_method_spanning_the_interval():
    labels = ["ga", "simsat", "satimp"]
    curves = curves_of(labels)
    fig = figures.curves_over_steps(curves)
    forget_ax, retain_ax, tradeoff_ax = fig.axes[:3]
    for ax, col in ((forget_ax, "forget_es"), (retain_ax, "retain_es")):
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == len(labels), col
        for band, label in zip(bands, labels):
            vertices = np.concatenate([p.vertices for p in band.get_paths()])
            for step in range(5):
                at = vertices[np.isclose(vertices[:, 0], step)][:, 1]
                rows = curves[(curves["label"] == label) & (curves["step"] == step)]
                assert (at.min(), at.max()) == pytest.approx(expected_interval(rows, col), abs=1e-9), (col, label, step)
    assert "retain ES" in tradeoff_ax.get_xlabel() and "forget ES" in tradeoff_ax.get_ylabel()


def test_beta_sweep_has_a_band_per_family():
    values = {f"{fam}(β={b:g})": 0.3 + 0.02 * b for fam in ("simsat", "simimp") for b in (0.5, 1.0, 2.0, 5.0)}
    ax = figures.beta_sweep(population(values)).axes[0]
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 2
    assert ax.get_xscale() == "log" and "β" in ax.get_xlabel()


def test_grid_cells_show_mean_and_interval():
    from satimp_lab.studies import grid

    labels = [s["label"] for s in grid.specs()]
    summary = population({l: 0.2 + 0.01 * i for i, l in enumerate(labels)})
    ax = figures.grid_heatmap(summary).axes[0]
    texts = {t.get_text() for t in ax.texts}
    for label in labels:
        rows = summary[summary["label"] == label]
        low, high = expected_interval(rows, "matched_forget")
        mean = rows.groupby("target_seed")["matched_forget"].mean().mean()
        assert f"{mean:.2f}\n[{low:.2f}, {high:.2f}]" in texts, label


def _synthetic_result(study) -> StudyResult:
    if study.id == "obs2":
        summary = population({"key": 0.6, "other": 0.75}, seeds=(0,), metric="mean_likelihood")
        sweep = None
    elif study.id == "relearning":  # a measured study: recovery curves, no sweep
        from satimp_lab.studies import relearning

        labels = [*relearning.LABELS, relearning.REFERENCE]
        summary = population({l: 0.05 * i for i, l in enumerate(labels)}, seeds=(0,), metric="relearn_gain")
        summary = summary.assign(relearn_auc=0.4, forget_es=0.3, relearn_es_k0=0.3, matched_step=10.0,
                                 relearn_es_k5=0.3 + summary["relearn_gain"], forget_es_q4=0.3)
        summary = pd.concat([summary, relearning.quantized_rows(summary)], ignore_index=True)
        sweep = None
    else:
        labels = [s["label"] for s in study.specs()]
        summary = population({l: 0.2 + 0.3 * (i % 4) / 4 for i, l in enumerate(labels)})
        if study.id == "muse":  # MUSE's metrics at the matched point
            from satimp_lab.studies import muse

            summary = summary.assign(**{c: summary["matched_forget"] for c in (muse.VERBMEM, muse.KNOWMEM_F,
                                                                               muse.KNOWMEM_R)},
                                     **{muse.PRIVLEAK: -100 * summary["matched_forget"]})
        sweep = SimpleNamespace(summary=summary, curves=curves_of(labels, seeds=(0,), steps=range(3)))
    return StudyResult(study, summary, study.decide(summary), study.tables(summary), sweep)


@pytest.mark.parametrize("study", STUDIES, ids=[s.id for s in STUDIES])
def test_every_study_draws_its_figures(study):
    result = _synthetic_result(study)
    drawn = figures.study_figures(result)
    declared = study.figures if study.figures is not None else figures.FIGURES[study.id]
    assert set(drawn) == set(declared)
    for name, fig in drawn.items():
        assert isinstance(fig, Figure), name
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                continue
            assert ax.get_ylabel() and ax.get_title(), (name, ax.get_ylabel(), ax.get_title())


def test_save_writes_every_figure_and_show_displays_them(tmp_path, monkeypatch):
    result = _synthetic_result(obs1.STUDY)
    result.save(tmp_path)
    names = {p.name for p in (tmp_path / "figures").glob("*.png")}
    assert names == {"04_obs1_paired_differences.png", "04_obs1_matched_forget.png", "04_obs1_curves.png"}
    assert all((tmp_path / "figures" / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names)

    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs: shown.extend(objs))
    result.show()
    assert sum(isinstance(o, IPython.display.Image) for o in shown) == 3

    # a result without a sweep (built from its summary alone) has no curves to draw
    bare = StudyResult(obs1.STUDY, result.summary, result.claims, result.tables)
    assert set(bare.figures()) == {"paired_differences", "matched_forget"}


def test_a_summary_without_the_expected_labels_is_an_error_naming_them():
    summary = population({"ga": 0.5, "simsat": 0.3})
    with pytest.raises(ValueError, match=r"satimp\(β_sat, β_imp\).*'ga'"):
        figures.grid_heatmap(summary)


def test_curves_keep_the_steps_every_run_of_a_label_evaluated():
    # a population run (target 1) evaluated every 4 steps and stopped at step 8; the Lab's own
    # target's run (target 0) every 2 steps to 12: the mean is drawn at 0, 4, 8 only
    rows = [(0, s) for s in range(0, 13, 2)] + [(1, s) for s in (0, 4, 6, 8)]
    curves = pd.DataFrame([{"label": "ga", "target_seed": t, "seed": 0, "step": s,
                            "forget_es": 0.5, "retain_es": 0.8} for t, s in rows])
    other = curves[curves["target_seed"] == 0].assign(label="npo")
    kept = figures.common_steps(pd.concat([curves, other], ignore_index=True))
    assert sorted(set(kept.loc[kept["label"] == "ga", "step"])) == [0, 4, 6, 8]
    assert len(kept[kept["label"] == "ga"]) == 8
    assert sorted(set(kept.loc[kept["label"] == "npo", "step"])) == list(range(0, 13, 2))


def test_curves_say_where_they_end_when_some_runs_stopped_early():
    """A run that ended at its matched point (a population run) cuts every curve of its label at
    its last step; the title says so, and a figure of whole runs carries no such note."""
    curves = curves_of(["ga", "simsat"])
    whole = figures.curves_over_steps(curves)
    assert "matched point" not in whole._suptitle.get_text()
    last = curves["step"].max()
    cut = curves[~((curves["label"] == "ga") & (curves["target_seed"] == curves["target_seed"].iloc[0])
                   & (curves["step"] >= last - 1))]
    fig = figures.curves_over_steps(cut)
    assert "up to the last step that all its runs evaluated" in fig._suptitle.get_text()
