"""Observation (i): saturation-based reweighting (SimSat) beats importance-based reweighting
(SimImp, annotated key tokens), and their combination (SatImp) beats both (notebook 04)."""

from __future__ import annotations

from . import verdicts
from .base import Study, unit_table
from ..experiments.matched import METRIC
from ..experiments.identity import RunSpec
from ..experiments.identity import display_names, spec
from .specs import OBS1_METHODS, obs1_specs

LABELS = list(OBS1_METHODS)
NAMES = display_names(obs1_specs())
"""Label -> display name of the observation (i) runs (``specs.display_name``), for the claims."""


def specs() -> list[RunSpec]:
    return obs1_specs()


def decide(summary) -> list[verdicts.PopulationClaim]:
    """The two claims of observation (i). On a benchmark without key-token annotations (real TOFU)
    the sweep has no ``annotated`` runs (``studies.without_annotations``) and the first claim is
    decided on SimSat vs SimImp alone."""
    importance = [m for m in ("simimp", "annotated") if m != "annotated" or m in set(summary["label"])]
    return [
        verdicts.PopulationClaim(
            "obs1_saturation_beats_importance",
            "Observation (i): saturation-based reweighting (SimSat) unlearns more effectively than "
            "importance-based reweighting (SimImp, annotated key tokens), at matched retain quality.",
            [verdicts.compare(summary, "simsat", imp, METRIC) for imp in importance], names=NAMES,
            source="paper abstract"),
        verdicts.PopulationClaim(
            "obs1_combination_beats_both",
            "Observation (i): combining saturation and importance (SatImp) unlearns better than either alone.",
            [verdicts.compare(summary, "satimp", part, METRIC) for part in ("simsat", "simimp")], names=NAMES,
            source="paper abstract"),
    ]


def tables(summary) -> dict:
    return {"obs1_units": unit_table(summary, LABELS)}


def extras() -> list:
    """NPO, the reference that notebook 04 shows beside the study's runs on the Lab's own target."""
    return [spec("npo")]


STUDY = Study("obs1", "04_obs1_saturation_vs_importance",
              "Observation (i): saturation vs importance", specs, decide, tables, extras=extras,
              curves=lambda: specs() + extras())
"""Notebook 04 draws every run's curves: the study's and NPO's on the Lab's own target, the
study's on the whole population."""
