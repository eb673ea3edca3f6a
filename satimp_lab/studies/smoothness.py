"""Observation (iii), smoothness: the exponent β of SimSat and SimImp strongly affects efficacy;
and hard sampling: unlearning only the high-likelihood tokens (bottom-k) beats unlearning only
the low-likelihood ones (top-k) at matched token counts (notebook 05)."""

from __future__ import annotations

from . import verdicts
from .base import STRONG_EFFECT, Study, best_vs_worst, unit_table
from ..experiments.matched import METRIC
from ..experiments.identity import RunSpec
from .specs import BETAS, HARD_FRACTIONS, beta_specs, hard_specs

FAMILIES = ("simsat", "simimp")


def specs() -> list[RunSpec]:
    return beta_specs(FAMILIES, BETAS) + hard_specs(HARD_FRACTIONS)


def _beta_labels(family: str) -> list[str]:
    """The labels of ``family``'s β sweep, in :data:`BETAS` order."""
    return [s.default_label for s in beta_specs((family,), BETAS)]


def _hard_labels(fraction: float) -> dict[str, str]:
    """``{mode: label}`` of the hard-sampling runs that keep ``fraction`` of the tokens."""
    return {str(s.fields.mode): s.default_label for s in hard_specs((fraction,))}


def decide(summary) -> list[verdicts.PopulationClaim]:
    return [
        verdicts.PopulationClaim(
            "obs3_smoothness_matters",
            f"Observation (iii): the smoothness of the weights (the exponent β) strongly affects unlearning "
            f"efficacy (best vs worst β of each family, by at least {STRONG_EFFECT} forget ES).",
            [best_vs_worst(summary, _beta_labels(f)) for f in FAMILIES], source="paper abstract"),
        verdicts.PopulationClaim(
            "obs3_hard_sampling_bottom_beats_top",
            "Hard sampling: unlearning only the high-likelihood tokens (bottom-k, the saturation direction) is "
            "more effective than unlearning only the low-likelihood tokens (top-k), same number of tokens.",
            [verdicts.compare(summary, _hard_labels(f)["bottom"], _hard_labels(f)["top"], METRIC)
             for f in HARD_FRACTIONS], source="paper body"),
    ]


def tables(summary) -> dict:
    return {"smoothness_units": unit_table(summary, [l for f in FAMILIES for l in _beta_labels(f)]),
            "hard_sampling_units": unit_table(summary, [_hard_labels(f)[m] for f in HARD_FRACTIONS
                                                        for m in ("bottom", "top", "random")])}


def extras() -> list:
    """What notebook 05 shows beside the study's runs on the Lab's own target: SatImp's row of the
    grid (``specs.satimp_row``) and GA (uniform weights, next to hard sampling)."""
    from ..experiments.identity import spec
    from .specs import satimp_row

    return satimp_row() + [spec("ga")]


STUDY = Study("smoothness", "05_obs3_smoothness", "Observation (iii): smoothness and hard sampling",
              specs, decide, tables, extras=extras, final=lambda: specs() + extras())
"""Notebook 05 shows the final model's utility of every run it shows on the Lab's own target."""
