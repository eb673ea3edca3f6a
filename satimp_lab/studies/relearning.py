"""Is it really forgotten? Relearning and quantization attacks on every method at matched retain
quality (notebook 10). The claims are ours, not the paper's.

Each method (GA, NPO, SimSat, SimImp, SatImp (5, 0.1), annotation weighting) is taken at the
matched retain level of each unit (its cached run re-run to that step), then attacked
(``satimp_lab.experiments.attacks``): relearning on a fixed quarter of the forget authors (the held-out
authors' forget ES as the steps grow; area under that curve and its gain over the start),
rounding the weights to 8 and 4 bits, and membership inference before and after. The retain
model relearning the same rows is the "never knew it" reference, labelled ``retain`` (the same
for every unlearning seed of a target, so it pairs with every unit).

**Population.** Every target model of the setting, with the unlearning seeds of
:data:`SEEDS`: the full size attacks unlearning seed 0 only (5 targets x 1 seed = 5 units of
the 15), because each unit costs ~4 s on one core on top of its cached run (~1.5 s to re-run it
to the matched step, ~2.2 s of attacks), the NPO runs are not in the observation (i) study, and
the main job's budget is minutes (measured: 138 s wall for the 35 re-runs and attacks on 2
cores shared with other jobs, every run cached; the 4 NPO runs on the other targets add ~1 min);
the fast size takes its setting's seeds. Claims are decided with ``satimp_lab.studies.verdicts`` on the (target, seed) units, as every
other study.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import verdicts
from ..experiments.attacks import AttackConfig, attack_config, attack_retain, attack_run, cached_attack
from .base import Study, unit_table
from .figures import population_intervals
from ..experiments.identity import display_names
from ..tiers import RELEARNING_SEEDS, size_of

if TYPE_CHECKING:
    from ..experiments.setting import Setting

LABELS = ["ga", "npo", "simsat", "simimp", "satimp", "annotated"]
"""The attacked methods, at their registry defaults (SatImp: β_sat = 5, β_imp = 0.1)."""
REFERENCE = "retain"
"""Label of the retain model's rows (never trained on the forget authors)."""
SEEDS = RELEARNING_SEEDS
"""Unlearning seeds attacked per size (absent: the setting's seeds), declared in ``tiers.RELEARNING_SEEDS``."""
QUANT_BITS = 4
"""The bit width of the quantization claim."""


def specs() -> list[dict]:
    """One sweep spec per method of :data:`LABELS` (defaults only, so the runs share cache entries
    with the observation (i) study's)."""
    return [{"method": m, "label": m} for m in LABELS]


NAMES = {**display_names(specs()), REFERENCE: "retain model"}
"""Label -> display name (``specs.display_name`` of each attacked run; the retain model's rows)."""


def seeds_for(setting) -> tuple[int, ...]:
    """The unlearning seeds attacked: :data:`SEEDS` of the size the setting was made from
    (``tiers.size_of``), else its own seeds."""
    size = size_of(setting)
    return setting.seeds if size is None else SEEDS.get(size, setting.seeds)


@dataclass(frozen=True)
class AttackJob:
    """One unit's attack for a worker process: small and picklable (no models)."""

    setting: Setting
    spec: dict | None
    """The run's sweep spec (``Lab.run`` keywords, its plan among them); None for the retain model."""
    seed: int
    config: AttackConfig
    cache: str


_WORKER_LABS: dict = {}


def _attack_job(job: AttackJob) -> dict:
    """Compute (or read) one attack row in a worker (loads the Lab's models once per process)."""
    from ..experiments.lab import Lab

    os.environ["SATIMP_LAB_CACHE"] = job.cache
    key = (job.cache, repr(job.setting))
    if key not in _WORKER_LABS:
        _WORKER_LABS[key] = Lab(job.setting, progress=False)
    lab = _WORKER_LABS[key]
    if job.spec is None:
        return attack_retain(lab, job.config)
    return attack_run(lab, lab.run(seed=job.seed, **job.spec), job.config)


def measure(lab, executor="processes") -> pd.DataFrame:
    """One row per (label, target seed, seed): the unit columns, ``reached`` and ``matched_step``
    of the run, and every number of :func:`satimp_lab.experiments.attacks.attack_model` (``retain`` rows:
    the retain model's, repeated for each seed); then each method's quantized copies as rows of
    their own (:func:`quantized_rows`, labels ``<method>/<bits>-bit``). The runs come from
    :meth:`~satimp_lab.experiments.lab.Lab.sweep_population` (cached); the attacks are cached too and
    the missing ones computed on ``executor`` (as :meth:`Lab.sweep`)."""
    from ..experiments.pool import _completed, _resolve_executor
    from ..store import cache_dir

    config = attack_config(lab.setting)
    seeds = seeds_for(lab.setting)
    sweep = lab.sweep_population(specs(), seeds=seeds, desc="relearning: runs", executor=executor)
    items = []  # (target lab, run or None)
    for t in lab.setting.target_seeds:
        tlab = lab.population_lab(t)
        items += [(tlab, r) for r in sweep.results if r.target_seed == t] + [(tlab, None)]
    rows = [cached_attack(tlab, run, config) for tlab, run in items]
    todo = [i for i, r in enumerate(rows) if r is None]
    pool = _resolve_executor(executor, len(todo))
    if pool is None:
        for i in todo:
            tlab, run = items[i]
            rows[i] = attack_run(tlab, run, config) if run is not None else attack_retain(tlab, config)
    elif todo:
        jobs = {}
        for i in todo:
            tlab, run = items[i]
            spec = None if run is None else {"method": run.config.method, "label": run.label,
                                             "params": run.config.method_params, "plan": run.plan}
            jobs[pool.submit(_attack_job, AttackJob(tlab.setting, spec, run.config.seed if run else 0,
                                                    config, str(cache_dir())))] = i
        for future in _completed(list(jobs)):
            rows[jobs[future]] = future.result()
    out = []
    for (tlab, run), row in zip(items, rows):
        assert row is not None  # every attack not cached was computed above
        t = tlab.setting.target_seed
        if run is None:
            out += [{"label": REFERENCE, "target_seed": t, "seed": s, "reached": True,
                     "matched_step": 0.0, **row} for s in seeds]
        else:
            out.append({"label": run.label, "target_seed": t, "seed": run.config.seed,
                        "reached": bool(run.summary.get("reached", False)),
                        "matched_step": float(run.summary.get("matched_step", np.nan)), **row})
    out = pd.DataFrame(out)
    return pd.concat([out, quantized_rows(out)], ignore_index=True)


# ----------------------------------------------------------------------------------------------
# claims


QUANT_COLUMNS = ("forget_es", "forget_key_accuracy", "forget_mean_logp", "retain_es", "mia")
"""The numbers :func:`satimp_lab.experiments.attacks.attack_model` measures again on each quantized copy."""


def quantized_label(label: str, bits: int) -> str:
    return f"{label}/{bits}-bit"


def quantized_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """Each method's quantized copies as models of their own: one row per method row and bit width,
    labelled :func:`quantized_label`, whose :data:`QUANT_COLUMNS` are the ``<column>_q<bits>``
    values (the unit columns, ``reached`` and ``matched_step`` kept). The retain model's rows are
    left out."""
    plain = summary[summary["label"] != REFERENCE]
    bits = sorted({int(c[len("forget_es_q"):]) for c in summary if c.startswith("forget_es_q")}, reverse=True)
    frames = [plain[["label", "target_seed", "seed", "reached", "matched_step"]].assign(
        label=plain["label"].map(lambda l, b=b: quantized_label(l, b)),
        **{c: plain[f"{c}_q{b}"] for c in QUANT_COLUMNS if f"{c}_q{b}" in plain}) for b in bits]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def decide(summary: pd.DataFrame) -> list[verdicts.PopulationClaim]:
    labels = [l for l in LABELS if l in set(summary["label"])]
    gain = "relearn_gain"
    qnames = {**NAMES, **{quantized_label(m, QUANT_BITS): f"{NAMES[m]} {QUANT_BITS}-bit" for m in labels}}
    return [
        verdicts.PopulationClaim(
            "relearn_shallow",
            "Unlearning at matched retain quality is shallow: fine-tuning on a quarter of the forget authors "
            "brings back more of the OTHER forget authors' answers after each method than it teaches the retain "
            "model, which never saw them (recovery gain: area under the held-out forget-ES curve over 0..K "
            "relearning steps minus its start; lower is better).",
            [verdicts.compare(summary, REFERENCE, m, gain) for m in labels], names=NAMES, source="ours"),
        verdicts.PopulationClaim(
            "relearn_saturation_vs_ga",
            "Saturation-weighted unlearning (SimSat, SatImp) forgets less shallowly than GA at matched retain "
            "quality: relearning brings back less (smaller recovery gain).",
            [verdicts.compare(summary, m, "ga", gain) for m in ("simsat", "satimp")], names=NAMES, source="ours"),
        verdicts.PopulationClaim(
            "relearn_saturation_vs_importance",
            "Saturation weighting (SimSat) forgets less shallowly than importance weighting (SimImp, annotated "
            "key tokens): relearning brings back less (smaller recovery gain).",
            [verdicts.compare(summary, "simsat", m, gain) for m in ("simimp", "annotated")], names=NAMES,
            source="ours"),
        verdicts.PopulationClaim(
            "relearned_level_saturation_vs_ga",
            "After relearning, SimSat and SatImp still leak less than GA: lower area under the held-out "
            "forget-ES recovery curve (what the attacker gets, start included).",
            [verdicts.compare(summary, m, "ga", "relearn_auc") for m in ("simsat", "satimp")], names=NAMES,
            source="ours"),
        verdicts.PopulationClaim(
            "quantization_restores",
            f"Rounding the unlearned weights to {QUANT_BITS} bits (per-channel round-to-nearest) restores "
            f"forgotten answers: held-out forget ES is higher after quantization than before, for each method "
            f"(shown for GA and NPO on 7B models by Zhang et al., ICLR 2025; tested here on our tiny models).",
            [verdicts.compare(summary, m, quantized_label(m, QUANT_BITS), "forget_es") for m in labels], names=qnames,
            source="ours"),
    ]


# ----------------------------------------------------------------------------------------------
# tables and the recovery figure


def relearn_steps(summary: pd.DataFrame) -> list[int]:
    """The relearning steps measured (from the ``relearn_es_k<k>`` columns), in order."""
    return sorted(int(c[len("relearn_es_k"):]) for c in summary if c.startswith("relearn_es_k"))


def recovery_curves(summary: pd.DataFrame, metric: str = "es") -> pd.DataFrame:
    """Mean held-out forget ``metric`` (``es`` or ``key``) after each number of relearning steps,
    per label, with its 95 % cluster-bootstrap interval over target models: ``label, step, mean,
    low, high, n_clusters``, labels in :data:`LABELS` order, then :data:`REFERENCE` (quantized
    copies left out: they are not relearned).

    The intervals are :func:`satimp_lab.studies.figures.population_intervals` -- the one interval
    of every study figure, :func:`satimp_lab.studies.verdicts.interval` on the cluster means -- on the
    ``relearn_<metric>_k<k>`` columns. Clusters are target models, or (target, seed) units when
    the summary has one target model; that choice is made on the whole summary, which for
    :func:`measure`'s output is the same as per label (every label, the retain model included,
    runs on the same units). Raises ValueError naming a missing column."""
    steps = relearn_steps(summary)
    columns = {f"relearn_{metric}_k{k}": k for k in steps}
    rows = summary[summary["label"].isin([*LABELS, REFERENCE])]
    long = rows.melt(id_vars=["label", "target_seed", "seed"], value_vars=list(columns), var_name="step",
                     value_name="value").assign(step=lambda f: f["step"].map(columns))
    curves = population_intervals(long, "value", ["label", "step"])
    order = {l: i for i, l in enumerate([*LABELS, REFERENCE])}
    return curves.sort_values(["label", "step"], key=lambda c: c.map(order) if c.name == "label" else c,
                              kind="stable").reset_index(drop=True)


def _means(summary: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    order = [l for l in [*LABELS, REFERENCE] if l in set(summary["label"])]
    present = [c for c in columns if c in summary]
    return summary.groupby("label")[present].mean().reindex(order).reset_index()


DECIDED_ON = ("label", "target_seed", "seed", "reached", "relearn_gain", "relearn_auc", "forget_es")
"""The summary columns :func:`decide` reads (saved per unit as ``relearning_unit_values``)."""


def tables(summary: pd.DataFrame) -> dict:
    """Means over units per label: the recovery curve and its area and gain; forget ES, retain ES
    and MIA AUC before and after quantization and relearning; each unit's recovery gain; and
    (``relearning_unit_values``) every row's values the claims are decided on, quantized copies
    included, so a snapshot of the report can be decided again."""
    bits = sorted({int(c[len("forget_es_q"):]) for c in summary if c.startswith("forget_es_q")}, reverse=True)
    curve = [f"relearn_es_k{k}" for k in relearn_steps(summary)]
    return {
        "relearning_recovery": _means(summary, ["attack_step", *curve, "relearn_auc", "relearn_gain",
                                                "relearn_key_auc", "relearned_fit_es"]),
        "relearning_quantization": _means(summary, ["forget_es", *[f"forget_es_q{b}" for b in bits],
                                                    "retain_es", *[f"retain_es_q{b}" for b in bits]]),
        "relearning_membership": _means(summary, ["mia", "mia_relearned", *[f"mia_q{b}" for b in bits]]),
        "relearning_gain_by_unit": unit_table(summary, [*LABELS, REFERENCE], metric="relearn_gain"),
        "relearning_unit_values": summary[[c for c in DECIDED_ON if c in summary]],
    }


def recovery_figure(summary: pd.DataFrame, metric: str = "es"):
    """Recovery curves (seaborn colours): held-out forget ``metric`` against relearning steps, one
    line per method (the retain model dashed, black), the 95 % cluster-bootstrap interval over
    target models shaded (:func:`recovery_curves`). A ``matplotlib.figure.Figure``."""
    import seaborn as sns
    from matplotlib.figure import Figure

    curves = recovery_curves(summary, metric)
    labels = list(dict.fromkeys(curves["label"]))
    colours = dict(zip(labels, sns.color_palette("colorblind", len(labels))))
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    for label in labels:
        c = curves[curves["label"] == label]
        ref = label == REFERENCE
        colour = "black" if ref else colours[label]
        ax.plot(c["step"], c["mean"], marker="o", color=colour, linestyle="--" if ref else "-",
                label=NAMES.get(label, label))
        if np.isfinite(c["low"]).all():
            ax.fill_between(c["step"], c["low"], c["high"], color=colour, alpha=0.12)
    units = summary.drop_duplicates(["target_seed", "seed"])
    what = "ES" if metric == "es" else "key-token accuracy"
    ax.set(xlabel="relearning steps on a quarter of the forget authors",
           ylabel=f"forget {what} on the other authors",
           title=f"Relearning recovery ({units['target_seed'].nunique()} targets x "
                 f"{units['seed'].nunique()} seed(s); 95 % interval over targets)")
    ax.legend(fontsize=8)
    return fig


def recovery_png(summary: pd.DataFrame, metric: str = "es", dpi: int = 110) -> bytes:
    """:func:`recovery_figure` as PNG bytes (``IPython.display.Image(recovery_png(summary))``)."""
    import io

    buffer = io.BytesIO()
    recovery_figure(summary, metric).savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


STUDY = Study("relearning", "10_really_forgotten", "Is it really forgotten? (ours)", specs, decide, tables,
              measure=measure, figures={"recovery": lambda result: recovery_figure(result.summary)})
