"""Observation (iii), granularity: the level at which weights are computed (token, group,
instance, batch) strongly affects efficacy (notebook 06). The paper gives no direction: the claim
is the gap between each family's best and worst level."""

from __future__ import annotations

from . import verdicts
from .base import STRONG_EFFECT, Study, best_vs_worst, unit_table
from ..experiments.identity import RunSpec
from .specs import granularity_specs

FAMILIES = ("simsat", "simimp")


def specs() -> list[RunSpec]:
    return granularity_specs(FAMILIES)


def decide(summary) -> list[verdicts.PopulationClaim]:
    runs = specs()
    return [verdicts.PopulationClaim(
        "obs3_granularity_matters",
        f"Observation (iii): the granularity of the weights (token, group, instance, batch) strongly affects "
        f"unlearning efficacy (best vs worst level of each family, by at least {STRONG_EFFECT} forget ES).",
        [best_vs_worst(summary, [s.default_label for s in runs if s.fields.family == f]) for f in FAMILIES],
        source="paper abstract")]


def tables(summary) -> dict:
    return {"granularity_units": unit_table(summary, [s["label"] for s in specs()])}


STUDY = Study("granularity", "06_obs3_granularity", "Observation (iii): granularity", specs, decide, tables,
              final=specs)
"""Notebook 06 shows the final model's metrics of each level's run on the Lab's own target."""
