"""Static figures of a study's population (seaborn), with the uncertainty across it visible.

Every figure shows, per method (or grid cell, β, level), the **population mean** and its **95 %
interval**, computed the way the claims are (:mod:`satimp_lab.studies.verdicts`): the runs are averaged
within each *cluster* -- a target model, or a run when the population has one target model -- and
the interval is the percentile bootstrap of the mean of those cluster means
(:func:`satimp_lab.studies.verdicts.interval`: ``scipy.stats.bootstrap``, 10 000 resamples, fixed seed).
Seaborn draws the points, lines and bands; the interval is passed to it as its ``errorbar``
callable on the cluster means (:func:`interval95`), not seaborn's own bootstrap, so a figure's
error bar is the interval a reader finds in the claims table. Single runs appear as small dots
(a cross: the run never reached the matched retain level, its final value is shown).

Each figure function is pure: data in, a ``matplotlib.figure.Figure`` out (not attached to
pyplot, so nothing is shown or kept alive by accident). :data:`FIGURES` says which figures each
study draws; :func:`study_figures` draws them for a :class:`~satimp_lab.studies.base.StudyResult`.

Units: extraction strength (ES) is in [0, 1]; for the forget set lower is better (the model
can no longer produce the answer), for the retain set higher is better.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from . import verdicts
from ..ui.plots import distinct_colors
from ..experiments.matched import METRIC
from ..experiments.identity import NAMES, fields_table
from .specs import RECOMMENDED, beta_specs, granularity_specs, hard_specs, satimp_grid_specs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..experiments.identity import RunSpec

FORGET_AT_MATCHED = "forget ES at matched retain ES\n(0-1, lower = better forgotten)"
INTERVAL_NOTE = "mean over target models, 95 % cluster-bootstrap interval"
UNIT_COLS = ("target_seed", "seed")


# ----------------------------------------------------------------------------------------------
# the intervals


def interval95(values) -> tuple[float, float]:
    """(low, high) of the 95 % percentile bootstrap of the mean of ``values``, each value one
    cluster (a target model's mean): :func:`satimp_lab.studies.verdicts.interval` on them, so the same
    resamples and seed as the claims. (nan, nan) with fewer than two values. Usable as seaborn's
    ``errorbar`` callable."""
    values = np.asarray(values, dtype=float)
    frame = pd.DataFrame({"target_seed": np.arange(len(values)), "seed": 0, "diff": values})
    _, low, high, _ = verdicts.interval(frame)
    return low, high


def cluster_means(frame: pd.DataFrame, values: list[str], by: list[str]) -> pd.DataFrame:
    """Mean of each column of ``values`` per ``by`` group and cluster, with a ``cluster`` column,
    ordered by cluster, then by group.

    Clusters are target models (``target_seed``), or runs (``target_seed``, ``seed``) when the
    frame holds one target model -- the clusters :func:`satimp_lab.studies.verdicts.interval` resamples.
    Raises ValueError naming a missing column."""
    missing = [c for c in (*values, *by, *UNIT_COLS) if c not in frame.columns]
    if missing:
        raise ValueError(f"the table has no column(s) {missing}; has {list(frame.columns)}")
    keys = ["target_seed"] if frame["target_seed"].nunique() > 1 else list(UNIT_COLS)
    numeric = frame.assign(**{v: pd.to_numeric(frame[v], errors="coerce") for v in values})
    out = numeric.groupby([*by, *keys], sort=False)[values].mean().reset_index()
    # by cluster, then group: the values of each group reach interval95 in the claims' order (the
    # bootstrap's resamples depend on it), and seaborn's groups keep it (sort=False, stable)
    out = out.sort_values([*keys, *by], kind="stable").reset_index(drop=True)
    out["cluster"] = out[keys].astype(str).agg("/".join, axis=1)
    return out


def population_intervals(frame: pd.DataFrame, value: str, by: list[str]) -> pd.DataFrame:
    """Per ``by`` group: ``mean`` (of the cluster means), ``low``, ``high`` (:func:`interval95`)
    and ``n_clusters`` of ``value``, in first-seen order."""
    means = cluster_means(frame, [value], by)
    rows = []
    for key, sel in means.groupby(by, sort=False):
        low, high = interval95(sel[value])
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "mean": sel[value].mean(),
                     "low": low, "high": high, "n_clusters": len(sel)})
    return pd.DataFrame(rows)


def population_note(frame: pd.DataFrame) -> str:
    """"n target models x m seeds" of a summary, for titles."""
    return f"{frame['target_seed'].nunique()} target models x {frame['seed'].nunique()} seed(s)"


DOTS = "dots: single runs (x: never reached the matched level, final value shown)"


def _title(ax, head: str, frame: pd.DataFrame, detail: str = DOTS) -> None:
    """Three short lines: what is shown, the interval and population, what the marks are."""
    ax.set_title(f"{head}\n{INTERVAL_NOTE} ({population_note(frame)})\n{detail}", fontsize=9)


# ----------------------------------------------------------------------------------------------
# drawing helpers


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _unit_dots(ax, summary: pd.DataFrame, x: str, y: str, order: list, hue: str | None = None,
               hue_order: list | None = None, palette=None, dodge: bool = False) -> None:
    """Every run as a small dot over the means (a cross: it never reached the matched level)."""
    import seaborn as sns

    reached = summary["reached"].astype(bool) if "reached" in summary else pd.Series(True, index=summary.index)
    for sel, marker, size in ((summary[reached], "o", 3.5), (summary[~reached], "X", 6)):
        if len(sel):
            sns.stripplot(data=sel, x=x, y=y, order=order, hue=hue, hue_order=hue_order, palette=palette,
                          dodge=dodge, marker=marker, size=size, alpha=0.7, jitter=0.08, legend=False, ax=ax,
                          color=None if hue else "dimgrey", edgecolor="black" if marker == "X" else "white",
                          linewidth=0.5, zorder=4)


def _points(ax, summary: pd.DataFrame, x: str, y: str, order: list, hue: str | None = None,
            hue_order: list | None = None, palette=None) -> None:
    """Means of the cluster means with their 95 % interval (:func:`interval95`), over the runs."""
    import seaborn as sns

    by = [x] + ([hue] if hue else [])
    means = cluster_means(summary, [y], by)
    _unit_dots(ax, summary, x, y, order, hue, hue_order, palette, dodge=bool(hue))
    dodge: float | bool = False
    if hue:
        assert hue_order is not None  # hue needs its order (the dodge width)
        dodge = 0.8 - 0.8 / len(hue_order)
    sns.pointplot(data=means, x=x, y=y, order=order, hue=hue, hue_order=hue_order, palette=palette,
                  errorbar=interval95, capsize=0.1, linestyle="none", markersize=6, err_kws={"linewidth": 1.5},
                  dodge=dodge, legend=bool(hue), ax=ax, zorder=3)


def _names(labels, names: dict | None) -> list[str]:
    names = names or {}
    return [names.get(l, l) for l in labels]


def _family_name(family: str, names: dict | None = None) -> str:
    """``names[family]``, else the family's display name (``specs.NAMES``), else the family."""
    return {**NAMES, **(names or {})}.get(family, family)


def _require(frame: pd.DataFrame, what: str, labels: list) -> None:
    if not len(frame):
        raise ValueError(f"no label of the form {what} in the summary (labels: {sorted(map(str, labels))})")


def with_fields(summary: pd.DataFrame, specs: Iterable[RunSpec | Mapping]) -> pd.DataFrame:
    """The rows of ``summary`` whose ``label`` is one of ``specs``', in the summary's order, with
    the fields of the spec that made the label as columns (``specs.fields_table``: ``family``,
    ``beta_sat``, ``level``, ``mode``, ``fraction``, ...; a summary column of the same name is
    replaced): how every figure here reads what a label is, never from the label's text."""
    fields = fields_table(specs)
    return summary.drop(columns=[c for c in fields if c != "label" and c in summary]).merge(
        fields, on="label", how="inner")


def _drawn(summary: pd.DataFrame, specs: Iterable[RunSpec | Mapping], needs: tuple[str, ...],
           what: str) -> pd.DataFrame:
    """:func:`with_fields` of the runs that have every field of ``needs`` (a figure's axes).
    Raises ValueError naming ``what`` when none is left."""
    rows = with_fields(summary, specs)
    rows = rows[rows[list(needs)].notna().all(axis=1)]
    _require(rows, what, list(summary["label"]))
    return rows


# ----------------------------------------------------------------------------------------------
# the figures


def label_points(summary: pd.DataFrame, labels: list[str] | None = None, metric: str = METRIC,
                 names: dict | None = None, ylabel: str = FORGET_AT_MATCHED, title: str = "") -> Figure:
    """``metric`` per label: each run a dot, the population mean with its 95 % interval.

    ``summary``: one row per run with ``label``, ``target_seed``, ``seed``, ``metric`` (and
    ``reached``). ``labels``: which, in order (default: all, first-seen order)."""
    import seaborn as sns

    labels = labels or list(dict.fromkeys(summary["label"]))
    sel = summary[summary["label"].isin(labels)]
    order = [l for l in labels if l in set(sel["label"])]
    _require(sel, str(labels), list(summary["label"]))
    fig, (ax,) = _figure(max(5.0, 1.1 * len(order) + 2), 4.2)
    palette = dict(zip(order, distinct_colors(order)))
    _unit_dots(ax, sel, "label", metric, order)
    means = cluster_means(sel, [metric], ["label"])
    sns.pointplot(data=means, x="label", y=metric, order=order, hue="label", hue_order=order, palette=palette,
                  errorbar=interval95, capsize=0.12, linestyle="none", markersize=7, err_kws={"linewidth": 1.5},
                  legend=False, ax=ax, zorder=3)
    ax.set_xticks(range(len(order)), _names(order, names))
    ax.set(xlabel="", ylabel=ylabel)
    _title(ax, title or f"{ylabel.splitlines()[0]} per method", sel)
    ax.grid(axis="y", alpha=0.3)
    return fig


def curves_over_steps(curves: pd.DataFrame, labels: list[str] | None = None, names: dict | None = None,
                      title: str = "") -> Figure:
    """Forget ES and retain ES against the unlearning step, one line per label with a band: the
    population mean and its 95 % interval at each step; and the trade-off (forget vs retain ES)
    of the population means, with both 95 % intervals at the last step as a cross.

    ``curves``: one row per evaluation step per run (``Sweep.curves``): ``label``, ``step``,
    ``forget_es``, ``retain_es``, ``target_seed``, ``seed``. Each label is drawn at the steps
    that every one of its runs evaluated (:func:`common_steps`): the population's runs on the
    other target models end at their matched point (``unlearning.plan.CURVES_TO_MATCH``), so
    the common steps end there too."""
    import seaborn as sns

    labels = labels or list(dict.fromkeys(curves["label"]))
    sel = common_steps(curves[curves["label"].isin(labels)])
    order = [l for l in labels if l in set(sel["label"])]
    _require(sel, str(labels), list(curves["label"]))
    shown = dict(zip(order, _names(order, names)))
    means = cluster_means(sel, ["forget_es", "retain_es"], ["label", "step"])
    means["method"] = means["label"].map(shown)
    palette = dict(zip(shown.values(), distinct_colors(order)))
    fig, axes = _figure(14, 4.4, ncols=3)
    for ax, col, text in ((axes[0], "forget_es", "forget ES (0-1, lower = better forgotten)"),
                          (axes[1], "retain_es", "retain ES (0-1, higher = knowledge kept)")):
        sns.lineplot(data=means, x="step", y=col, hue="method", hue_order=list(shown.values()), palette=palette,
                     errorbar=interval95, err_style="band", err_kws={"alpha": 0.12}, marker="o", markersize=4,
                     sort=False, legend=ax is axes[1], ax=ax)
        ax.set(xlabel="unlearning step", ylabel=text, title=f"{text.split(' (')[0]} during unlearning")
        ax.grid(alpha=0.3)
    ax = axes[2]
    for label in order:
        rows = sel[sel["label"] == label]
        f = population_intervals(rows, "forget_es", ["step"])
        r = population_intervals(rows, "retain_es", ["step"])
        colour = palette[shown[label]]
        ax.plot(r["mean"], f["mean"], color=colour, marker="o", markersize=3, linewidth=1.2, label=shown[label])
        ax.errorbar(r["mean"].iloc[-1:], f["mean"].iloc[-1:], xerr=_err(r.iloc[-1:]), yerr=_err(f.iloc[-1:]),
                    color=colour, marker="o", markersize=6, elinewidth=1.2, capsize=3)
        ax.plot(r["mean"].iloc[:1], f["mean"].iloc[:1], marker="s", color="black", markersize=5)
    ax.set(xlabel="retain ES (0-1, higher = knowledge kept)", ylabel="forget ES (0-1, lower = better forgotten)",
           title="trade-off: population means per step\n(black square: start; crosses: 95 % intervals at the "
                 "last step;\ngoal: bottom right)")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    axes[1].legend(title="method", fontsize=7, title_fontsize=7)
    drawn, made = (frame.groupby("label")["step"].max() for frame in (sel, curves[curves["label"].isin(order)]))
    ends = "" if (drawn.reindex(made.index) >= made).all() else (
        "\neach method drawn up to the last step that all its runs evaluated: the population's runs "
        "end at their matched point")
    fig.suptitle(title or f"Unlearning curves: {INTERVAL_NOTE} at each step (bands, crosses); "
                 f"{population_note(sel)}{ends}", fontsize=10)
    return fig


def common_steps(curves: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``curves`` (``label``, ``step``, ``target_seed``, ``seed``) at the steps that
    every run of their label evaluated: the population's runs on the other target models end at
    their matched point (``unlearning.plan.CURVES_TO_MATCH``), and a mean over some of the runs
    would not be the population's."""
    if curves.empty:
        return curves
    unit = curves["target_seed"].astype(str) + "/" + curves["seed"].astype(str)
    runs = unit.groupby(curves["label"]).nunique()
    at_step = unit.groupby([curves["label"], curves["step"]]).nunique()
    full = at_step[at_step.to_numpy() == runs.reindex(at_step.index.get_level_values(0)).to_numpy()].index
    return curves[pd.MultiIndex.from_arrays([curves["label"], curves["step"]]).isin(full)]


def _err(frame: pd.DataFrame) -> np.ndarray:
    """2 x n error-bar lengths of :func:`population_intervals` output (0 where there is none)."""
    lo = (frame["mean"] - frame["low"]).to_numpy(float)
    hi = (frame["high"] - frame["mean"]).to_numpy(float)
    return np.nan_to_num(np.vstack([lo, hi]), nan=0.0)


def beta_sweep(summary: pd.DataFrame, metric: str = METRIC, names: dict | None = None,
               specs: Iterable[RunSpec | Mapping] | None = None) -> Figure:
    """``metric`` against the exponent β (log scale), one line per family with a band: the
    population mean and its 95 % interval at each β; runs as dots.

    ``specs``: the runs the summary's labels name (default ``specs.beta_specs()``); the rows drawn
    are those of a spec whose family has its own exponent (SimSat, SimImp: ``RunFields.beta``).
    ``names``: family -> legend name (default ``specs.NAMES``)."""
    import seaborn as sns

    rows = _drawn(summary, beta_specs() if specs is None else specs, ("family", "beta"),
                        "family(β=b) (a SimSat / SimImp run of the specs)")
    families = list(dict.fromkeys(rows["family"]))
    rows["family"] = rows["family"].map(lambda f: _family_name(f, names))
    shown = list(dict.fromkeys(rows["family"]))
    palette = dict(zip(shown, distinct_colors(families)))
    means = cluster_means(rows, [metric], ["family", "beta"])
    fig, (ax,) = _figure(6.5, 4.4)
    sns.scatterplot(data=rows, x="beta", y=metric, hue="family", palette=palette, s=12, alpha=0.4,
                    legend=False, ax=ax)
    sns.lineplot(data=means, x="beta", y=metric, hue="family", hue_order=shown, palette=palette,
                 errorbar=interval95, err_style="band", marker="o", sort=False, ax=ax)
    ax.set_xscale("log")
    betas = sorted(rows["beta"].unique())
    ax.set_xticks(betas, [f"{b:g}" for b in betas])
    ax.minorticks_off()
    ax.set(xlabel="exponent β of the weights (log scale; larger = sharper weighting)", ylabel=FORGET_AT_MATCHED)
    _title(ax, "Smoothness: forget ES against the exponent β (band: 95 % interval)", rows, "dots: single runs")
    ax.legend(title="method", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def hard_sampling(summary: pd.DataFrame, metric: str = METRIC,
                  specs: Iterable[RunSpec | Mapping] | None = None) -> Figure:
    """Hard sampling: ``metric`` per share of each answer's tokens unlearned, one point per mode
    (top-k, bottom-k, random) with its 95 % interval; runs as dots; the legend names the modes by
    the likelihood of the tokens each unlearns (``specs.NAMES``).

    ``specs``: the runs the summary's labels name (default ``specs.hard_specs()``); the rows
    drawn are those of a hard-sampling spec (``RunFields.mode`` and ``fraction``)."""
    rows = _drawn(summary, hard_specs() if specs is None else specs, ("family", "mode", "fraction"),
                        "top|bottom|random-<k>% (a hard-sampling run of the specs)")
    rows["percent"] = (100 * rows["fraction"]).round()
    rows["kept"] = rows["percent"].map(lambda p: f"{p:g} %")
    families = [f for f in ("hard_bottom", "hard_top", "hard_random") if f in set(rows["family"])]
    families += [f for f in dict.fromkeys(rows["family"]) if f not in families]
    palette = dict(zip(families, distinct_colors(families)))
    order = list(dict.fromkeys(rows.sort_values("percent", ascending=False)["kept"]))
    fig, (ax,) = _figure(6.5, 4.4)
    _points(ax, rows, "kept", metric, order, hue="family", hue_order=families, palette=palette)
    ax.set(xlabel="share of each answer's tokens unlearned (the same count for every mode)", ylabel=FORGET_AT_MATCHED)
    _title(ax, "Hard sampling: which tokens to unlearn", rows)
    handles, texts = ax.get_legend_handles_labels()
    ax.legend(handles, [_family_name(t) for t in texts], title="tokens unlearned", fontsize=8, title_fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def granularity(summary: pd.DataFrame, metric: str = METRIC, names: dict | None = None,
                specs: Iterable[RunSpec | Mapping] | None = None) -> Figure:
    """``metric`` per granularity level of the weights, finest to coarsest (``RunFields.level``:
    token, ``G=<group size>``, instance, instance-norm, batch), one point per family with its
    95 % interval; runs as dots.

    ``specs``: the runs the summary's labels name (default ``specs.granularity_specs()``); every
    row of one of them is drawn. ``names``: family -> legend name (default ``specs.NAMES``)."""
    rows = _drawn(summary, granularity_specs() if specs is None else specs, ("family", "level", "level_rank"),
                        "family/level (a run of the specs)")
    order = list(dict.fromkeys(rows.sort_values("level_rank", kind="stable")["level"]))
    keys = list(dict.fromkeys(rows["family"]))
    rows["family"] = rows["family"].map(lambda f: _family_name(f, names))
    families = list(dict.fromkeys(rows["family"]))
    palette = dict(zip(families, distinct_colors(keys)))
    fig, (ax,) = _figure(8, 4.4)
    _points(ax, rows, "level", metric, order, hue="family", hue_order=families, palette=palette)
    ax.set(xlabel="level the weights are computed at (G = tokens per group; finest to coarsest)",
           ylabel=FORGET_AT_MATCHED)
    _title(ax, "Granularity: forget ES per level of the weights", rows)
    ax.legend(title="method", fontsize=8, title_fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def grid_heatmap(summary: pd.DataFrame, metric: str = METRIC, highlight: tuple[float, float] | None = None,
                 specs: Iterable[RunSpec | Mapping] | None = None) -> Figure:
    """SatImp grid: the population mean of ``metric`` per cell (β_sat, β_imp) as colour, each cell
    annotated with the mean and its 95 % interval ``[low, high]``; the best (lowest) cell outlined
    in white, ``highlight`` (β_sat, β_imp; the official recommendation) outlined in red.

    ``specs``: the runs the summary's labels name (default ``specs.satimp_grid_specs()``); a
    cell's exponents are its spec's (``RunFields.beta_sat``, ``beta_imp``: GA is (0, 0))."""
    import seaborn as sns
    from matplotlib.patches import Rectangle

    rows = _drawn(summary, satimp_grid_specs() if specs is None else specs, ("beta_sat", "beta_imp"),
                        "satimp(β_sat, β_imp) (a SatImp grid cell of the specs)")
    cells = population_intervals(rows, metric, ["beta_imp", "beta_sat"])
    mean = cells.pivot(index="beta_imp", columns="beta_sat", values="mean").sort_index().sort_index(axis=1)
    text = cells.assign(text=[f"{m:.2f}\n" + (f"[{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) else "no interval")
                              for m, lo, hi in zip(cells["mean"], cells["low"], cells["high"])])
    annot = text.pivot(index="beta_imp", columns="beta_sat", values="text").reindex_like(mean)
    fig, (ax,) = _figure(1.45 * mean.shape[1] + 2.5, 0.85 * mean.shape[0] + 2.2)
    sns.heatmap(mean, annot=annot.fillna("").to_numpy(), fmt="", cmap="viridis", ax=ax, annot_kws={"fontsize": 7.5},
                cbar_kws={"label": "forget ES at matched retain ES\n(mean; 0-1, lower = better forgotten)"},
                xticklabels=[f"{v:g}" for v in mean.columns], yticklabels=[f"{v:g}" for v in mean.index])
    ax.invert_yaxis()
    best_row, best_col = (int(i) for i in np.unravel_index(np.nanargmin(mean.to_numpy()), mean.shape))
    ax.add_patch(Rectangle((best_col, best_row), 1, 1, fill=False, edgecolor="white", linewidth=2.5))
    if highlight is not None and highlight[0] in mean.columns and highlight[1] in mean.index:
        col, row = list(mean.columns).index(highlight[0]), list(mean.index).index(highlight[1])
        ax.add_patch(Rectangle((col + 0.06, row + 0.06), 0.88, 0.88, fill=False, edgecolor="red", linewidth=1.5,
                               linestyle="--"))
    ax.set(xlabel="β_sat (saturation exponent; 0 = no saturation weighting)",
           ylabel="β_imp (importance exponent;\n0 = no importance weighting)")
    _title(ax, "SatImp grid: forget ES at matched retain ES per cell, mean [95 % interval]", rows,
           "white box: best cell" + (f"; red dashed: the recommended cell (β_sat {highlight[0]:g}, β_imp "
                                     f"{highlight[1]:g})" if highlight is not None else ""))
    return fig


def paired_groups(summary: pd.DataFrame, metric: str, names: dict | None = None, ylabel: str = "") -> Figure:
    """A per-target-model quantity of two or more groups (e.g. key vs other tokens): each target
    model's values joined by a grey line, the population mean with its 95 % interval per group."""
    import seaborn as sns

    order = list(dict.fromkeys(summary["label"]))
    fig, (ax,) = _figure(6.5, 4.2)
    means = cluster_means(summary, [metric], ["label"])
    for _, sel in means.groupby("cluster"):
        sel = sel.set_index("label").reindex(order)
        ax.plot(range(len(order)), sel[metric], color="grey", alpha=0.5, linewidth=0.8, zorder=1)
    palette = dict(zip(order, distinct_colors(order)))
    sns.pointplot(data=means, x="label", y=metric, order=order, hue="label", hue_order=order, palette=palette,
                  errorbar=interval95, capsize=0.1, linestyle="none", markersize=7, err_kws={"linewidth": 1.5},
                  legend=False, ax=ax, zorder=3)
    ax.set_xticks(range(len(order)), _names(order, names))
    ylabel = ylabel or metric.replace("_", " ")
    ax.set(xlabel="", ylabel=ylabel)
    _title(ax, ylabel.splitlines()[0] + " per group", summary, "grey lines: one target model each")
    ax.grid(axis="y", alpha=0.3)
    return fig


# ----------------------------------------------------------------------------------------------
# which figures each study draws


def _names_of(result) -> dict:
    return {k: v for claim in result.claims for k, v in claim.names.items()}


def _curves_figure(result):
    """The curves of a result's sweep; None for a result without a sweep (measured, or built
    from a summary alone)."""
    if result.sweep is None or result.sweep.curves.empty:
        return None
    return curves_over_steps(result.sweep.curves, names=_names_of(result))


FIGURES: dict[str, dict[str, Callable]] = {
    "obs1": {"matched_forget": lambda r: label_points(r.summary, names=_names_of(r)),
             "curves": _curves_figure},
    "obs2": {"likelihood_by_group": lambda r: paired_groups(
        r.summary, "mean_likelihood", _names_of(r),
        ylabel="mean token likelihood under the target model\n(0-1, before unlearning)")},
    "smoothness": {"beta": lambda r: beta_sweep(r.summary, specs=r.study.specs()),
                   "hard_sampling": lambda r: hard_sampling(r.summary, specs=r.study.specs())},
    "granularity": {"levels": lambda r: granularity(r.summary, specs=r.study.specs())},
    "grid": {"heatmap": lambda r: grid_heatmap(r.summary, highlight=RECOMMENDED, specs=r.study.specs())},
}
"""Study id -> {figure name: function(StudyResult) -> Figure, or None when the result lacks the
data (the curves of a result without a sweep)}. A study that declares its own ``figures``
(``studies.relearning``) gets those; one not listed gets :func:`label_points` of
its summary's ``matched_forget`` when it has that column, ``label``, ``target_seed`` and ``seed``
(else no population figure)."""


def study_figures(result) -> dict:
    """``{name: Figure}`` of :data:`FIGURES` for ``result`` (a StudyResult). Raises ValueError
    when its summary lacks what a figure needs (e.g. no label of the expected form)."""
    table = result.study.figures if result.study.figures is not None else FIGURES.get(result.study.id)
    if table is None:
        drawable = {"label", METRIC, *UNIT_COLS} <= set(result.summary.columns)
        return {"points": label_points(result.summary)} if drawable else {}
    figures = {name: draw(result) for name, draw in table.items()}
    return {name: fig for name, fig in figures.items() if fig is not None}


def png_bytes(fig, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes (``IPython.display.Image(png_bytes(fig))``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


__all__ = ["FIGURES", "beta_sweep", "cluster_means", "common_steps", "curves_over_steps", "granularity", "grid_heatmap",
           "hard_sampling", "interval95", "label_points", "paired_groups", "png_bytes", "population_intervals",
           "study_figures", "with_fields"]

