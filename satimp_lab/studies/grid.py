"""The SatImp grid (β_sat x β_imp): is the official (5, 0.1) the best cell, and does the best
SatImp cell beat the best pure SimSat and SimImp cells (notebook 07)? Best cells are picked by
their mean over every unit, on the same runs they are then compared on (optimistic for the
picked cell: stated with the claims)."""

from __future__ import annotations

from .. import verdicts
from ..findings import GRID_BETA_IMP, GRID_BETA_SAT, RECOMMENDED, grid_label, satimp_grid_specs
from .base import METRIC, Study, mean_by_label, unit_table


def specs() -> list[dict]:
    return satimp_grid_specs(GRID_BETA_SAT, GRID_BETA_IMP)


def _kind(beta_sat: float, beta_imp: float) -> str:
    return "GA" if beta_sat == 0 and beta_imp == 0 else "SimSat" if beta_imp == 0 else \
        "SimImp" if beta_sat == 0 else "SatImp"


def best_cells(summary) -> dict:
    """``{kind: label}`` of the lowest-mean cell of each kind (GA, SimSat, SimImp, SatImp)."""
    cells = {grid_label(a, b): _kind(a, b) for b in GRID_BETA_IMP for a in GRID_BETA_SAT}
    means = mean_by_label(summary, list(cells))
    out = {}
    for label, mean in means.sort_values().items():
        out.setdefault(cells[label], label)
    return out


def decide(summary) -> list[verdicts.PopulationClaim]:
    rec = grid_label(*RECOMMENDED)
    means = mean_by_label(summary, [s["label"] for s in specs()])
    best_other = means.drop(rec).idxmin()
    best = best_cells(summary)
    return [
        verdicts.PopulationClaim(
            "satimp_recommended_is_best",
            "SatImp's recommended exponents (β_sat = 5, β_imp = 0.1) are the best setting of a β_sat x β_imp grid "
            "(compared with the best other cell, picked on the same runs).",
            [verdicts.compare(summary, rec, best_other, METRIC)], source="official code"),
        verdicts.PopulationClaim(
            "satimp_tuned_combination",
            "With each method at its best β in the grid, SatImp (both exponents > 0) unlearns better than pure "
            "saturation (SimSat) and pure importance (SimImp) weighting.",
            [verdicts.compare(summary, best["SatImp"], best[k], METRIC) for k in ("SimSat", "SimImp")],
            source="ours"),
    ]


def tables(summary) -> dict:
    return {"grid_units": unit_table(summary, [s["label"] for s in specs()])}


STUDY = Study("grid", "07_satimp_grid", "The SatImp grid", specs, decide, tables)
