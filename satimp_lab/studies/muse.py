"""Does SatImp's advantage carry over to text? The MUSE-shaped study (notebook 11; issue 24).

The paper validates SatImp on MUSE (Shi et al., 2024) as well as TOFU; its official code drives it
with ``muse_sat.py``. Here the MUSE-shaped corpus (``data.muse``: fictional news articles) is
unlearned as raw text by every method of the study, on every target model of the population
(``Setting.target_seeds`` x ``Setting.seeds``), and each run is scored by MUSE's metrics **at
matched utility**: the run ends where its utility reading (the teacher-forced extraction strength
of the retain articles' questions, ``utility_es``, a stand-in for KnowMem on D_r) first falls to
``match_level`` (0.9) of its start, and VerbMem on the forget articles (and on the retain ones),
KnowMem on their questions and on the retain articles' questions, and PrivLeak against the
retrained model are computed on the model there (``unlearning.plan.AT_MATCH``;
docs/methods.md#the-muse-shaped-study). A run that never reaches the level is scored at its last
step and counted as unreached.

Claims (source: ours, from the paper's statement that SatImp's efficacy holds on MUSE; a claim
that does not reproduce at our scale is reported with its numbers):

(a) SimSat and SatImp leave less verbatim memory of the forget articles (VerbMem D_f) than GA,
    NPO and SimNPO;
(b) ... and less knowledge of them (KnowMem D_f);
(c) their PrivLeak is closer to 0 (``privleak_gap`` = |PrivLeak| / 100);
(d) saturation beats importance on text as on QA: SimSat leaves less verbatim memory than SimImp
    and annotation weighting.
"""

from __future__ import annotations

import pandas as pd

from . import verdicts
from .base import Study, unit_table
from ..experiments.identity import RunSpec, display_names, spec

METHODS = ("ga", "gd", "npo", "simnpo", "simsat", "simimp", "annotated", "satimp")
"""The study's runs, at the registry's defaults: the baselines GA, GD (GA with the retain NLL),
NPO and SimNPO, and the reweighting family: SimSat, SimImp, annotation weighting and SatImp."""
SATURATION = ("simsat", "satimp")
"""The methods the paper says keep their advantage on MUSE (claims a-c)."""
BASELINES = ("ga", "npo", "simnpo")
"""What claims a-c compare them with."""

VERBMEM = "eval_forget_verbmem"
"""VerbMem on the forget articles at the matched point (0-1, lower: less recited)."""
VERBMEM_R = "eval_retain_verbmem"
"""VerbMem on the retain articles at the matched point (0-1): how much of the text the model should
keep it still recites (no claim reads it; it shows a method that unlearned the retain text too)."""
KNOWMEM_F = "eval_forget_qa_knowmem"
"""KnowMem on the forget articles' questions at the matched point (0-1, lower: less known)."""
KNOWMEM_R = "eval_retain_qa_knowmem"
"""KnowMem on the retain articles' questions at the matched point (0-1, the utility MUSE keeps)."""
PRIVLEAK = "eval_mia_privleak"
"""PrivLeak at the matched point, in percent (0: as private as the retrained model; -100: the
forget articles look as trained-on as to the target)."""
PRIVLEAK_GAP = "privleak_gap"
"""|PrivLeak| / 100: the distance to the retrained model's privacy, on a 0-1 scale like the other
metrics, so a verdict's minimum effect (0.02) means two points of PrivLeak."""
METRICS = {VERBMEM: "VerbMem on D_f", KNOWMEM_F: "KnowMem on D_f", KNOWMEM_R: "KnowMem on D_r",
           PRIVLEAK: "PrivLeak (%)", VERBMEM_R: "VerbMem on D_r", PRIVLEAK_GAP: "|PrivLeak| / 100"}
"""Summary column -> the name MUSE's tables give it."""

NAMES = display_names([spec(m) for m in METHODS])
"""Label -> display name of the study's runs."""


def specs() -> list[RunSpec]:
    """One run per :data:`METHODS`, at the registry's defaults."""
    return [spec(m) for m in METHODS]


def with_gap(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with :data:`PRIVLEAK_GAP` (|PrivLeak| / 100) added (the study's ``derive``; kept
    when already there). Raises KeyError naming :data:`PRIVLEAK` when the runs have no PrivLeak
    (their setting computed no final metrics)."""
    if PRIVLEAK_GAP in summary:
        return summary
    if PRIVLEAK not in summary:
        raise KeyError(f"the summary has no {PRIVLEAK!r}: the MUSE study's runs need the final metrics "
                       f"verbmem, knowmem, privleak at the matched point")
    return summary.assign(**{PRIVLEAK_GAP: summary[PRIVLEAK].abs() / 100.0})


def _against_baselines(summary: pd.DataFrame, metric: str) -> list[verdicts.PairedComparison]:
    return [verdicts.compare(summary, a, b, metric) for a in SATURATION for b in BASELINES]


def decide(summary: pd.DataFrame) -> list[verdicts.PopulationClaim]:
    """The four claims of the module docstring, each part a paired comparison on the population
    (lower is better for every metric compared)."""
    summary = with_gap(summary)
    source = "ours"  # from the paper's statement that SatImp's efficacy holds on MUSE (module docstring)
    return [
        verdicts.PopulationClaim(
            "muse_verbmem",
            "On MUSE-shaped text, SimSat and SatImp leave less verbatim memory of the forget articles "
            "(VerbMem on D_f) than GA, NPO and SimNPO, at matched utility.",
            _against_baselines(summary, VERBMEM), names=NAMES, source=source),
        verdicts.PopulationClaim(
            "muse_knowmem",
            "On MUSE-shaped text, SimSat and SatImp leave less knowledge of the forget articles "
            "(KnowMem on D_f) than GA, NPO and SimNPO, at matched utility.",
            _against_baselines(summary, KNOWMEM_F), names=NAMES, source=source),
        verdicts.PopulationClaim(
            "muse_privleak",
            "On MUSE-shaped text, the PrivLeak of SimSat and SatImp is closer to 0 (the retrained "
            "model's privacy) than that of GA, NPO and SimNPO, at matched utility.",
            _against_baselines(summary, PRIVLEAK_GAP), names=NAMES, source=source),
        verdicts.PopulationClaim(
            "muse_saturation_beats_importance",
            "On MUSE-shaped text as on QA, saturation (SimSat) leaves less verbatim memory of the "
            "forget articles than importance (SimImp, annotated key tokens), at matched utility.",
            [verdicts.compare(summary, "simsat", b, VERBMEM) for b in ("simimp", "annotated")],
            names=NAMES, source=source),
    ]


def metrics_table(summary: pd.DataFrame) -> pd.DataFrame:
    """MUSE's four metrics per method, and VerbMem on the retain articles: the mean over the
    population's units, in :data:`METHODS` order, with how many units reached the matched level
    (``reached``)."""
    summary = with_gap(summary)
    present = [m for m in METHODS if m in set(summary["label"])]
    sel = summary[summary["label"].isin(present)]
    shown = [c for c in (VERBMEM, KNOWMEM_F, KNOWMEM_R, PRIVLEAK, VERBMEM_R) if c in sel]
    means = sel.groupby("label")[shown].mean().reindex(present)
    means.insert(0, "reached", sel.groupby("label")["reached"].agg(
        lambda r: f"{int(r.astype(bool).sum())}/{len(r)}").reindex(present))
    means = means.rename(columns=METRICS)
    means.insert(0, "method", [NAMES.get(m, m) for m in means.index])
    return means.reset_index()


DECIDED_ON = ("label", "target_seed", "seed", "reached", VERBMEM, KNOWMEM_F, KNOWMEM_R, PRIVLEAK, PRIVLEAK_GAP,
              VERBMEM_R)
"""The summary columns :func:`decide` reads (saved per unit as ``muse_unit_values``, so a snapshot
of the report can be decided again)."""


def tables(summary: pd.DataFrame) -> dict:
    """``muse_metrics`` (:func:`metrics_table`), one per-unit table per compared metric
    (``muse_<metric>_by_unit``) and every unit's values the claims are decided on
    (``muse_unit_values``, long: one row per method and unit)."""
    summary = with_gap(summary)
    return {"muse_metrics": metrics_table(summary),
            "muse_verbmem_by_unit": unit_table(summary, list(METHODS), VERBMEM),
            "muse_knowmem_by_unit": unit_table(summary, list(METHODS), KNOWMEM_F),
            "muse_privleak_by_unit": unit_table(summary, list(METHODS), PRIVLEAK_GAP),
            "muse_unit_values": summary[[c for c in DECIDED_ON if c in summary]]}


def _points(metric: str, ylabel: str):
    def draw(result):
        from .figures import label_points

        return label_points(with_gap(result.summary), list(METHODS), metric, names=NAMES, ylabel=ylabel,
                            title=f"{METRICS[metric]} at matched utility: each run (dot), the population "
                                  f"mean and its 95 % interval")
    return draw


FIGURES = {"verbmem": _points(VERBMEM, "VerbMem on the forget articles\n(ROUGE-L F1, 0-1; lower: less recited)"),
           "knowmem": _points(KNOWMEM_F, "KnowMem on the forget articles' questions\n(ROUGE-L F1, 0-1; lower: less known)"),
           "privleak": _points(PRIVLEAK_GAP, "|PrivLeak| / 100\n(0: as private as the retrained model)")}
"""The study's population figures: each metric of claims a-c per method."""


STUDY = Study("muse", "11_muse_verbatim", "MUSE-shaped text: does SatImp's advantage carry over?",
              specs, decide, tables, figures=FIGURES, at_match=specs, curves=specs, derive=with_gap,
              family="muse")
"""Every run is scored at its matched point on every target (``at_match``); on the Lab's own
target its curves are recorded up to there for notebook 11's trade-off curves."""
