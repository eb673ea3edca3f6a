"""The SatImp grid (β_sat x β_imp): is the official (5, 0.1) the best cell, and does the best
SatImp cell beat the best pure SimSat and SimImp cells (notebook 07)? Best cells are picked by
their mean over every unit, on the same runs they are then compared on (optimistic for the
picked cell: stated with the claims)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import verdicts
from .base import Study, mean_by_label, unit_table
from ..experiments.matched import METRIC
from ..experiments.identity import RunSpec
from ..experiments.identity import display_name
from .specs import GRID_BETA_IMP, GRID_BETA_SAT, RECOMMENDED, grid_spec, satimp_grid_specs


def specs() -> list[RunSpec]:
    return satimp_grid_specs(GRID_BETA_SAT, GRID_BETA_IMP)


def best_cells(summary) -> dict:
    """``{kind: label}`` of the lowest-mean cell of each kind (GA, SimSat, SimImp, SatImp: the
    display name of the method the cell's run is, ``specs.display_name``)."""
    cells = {s.default_label: display_name(s) for s in specs()}
    means = mean_by_label(summary, list(cells))
    out: dict[str, str] = {}
    for label, mean in means.sort_values().items():
        out.setdefault(cells[label], label)
    return out


def grid_table(summary: pd.DataFrame, beta_sats=GRID_BETA_SAT, beta_imps=GRID_BETA_IMP,
               metric: str = METRIC) -> pd.DataFrame:
    """Per grid cell: ``beta_sat, beta_imp, label, kind`` (GA / SimSat / SimImp / SatImp), the
    mean, std and count (``n_runs``) of ``metric`` over the summary's runs of that cell (seeds of
    one target, or every unit of a population), ``reached_all`` and ``rank`` (1 = lowest mean)."""
    rows = []
    for cell in satimp_grid_specs(beta_sats, beta_imps):
        label, fields = cell.default_label, cell.fields
        sel = summary[summary["label"] == label]
        vals = pd.to_numeric(sel[metric], errors="coerce").dropna()
        rows.append({"beta_sat": fields.beta_sat, "beta_imp": fields.beta_imp, "label": label,
                     "kind": display_name(fields),
                     f"{metric}_mean": vals.mean() if len(vals) else np.nan,
                     f"{metric}_std": vals.std() if len(vals) > 1 else np.nan,
                     "n_runs": len(vals),
                     "reached_all": bool(sel["reached"].astype(bool).all()) if len(sel) else False})
    out = pd.DataFrame(rows)
    out["rank"] = out[f"{metric}_mean"].rank(method="min").astype("Int64")
    return out


def decide(summary) -> list[verdicts.PopulationClaim]:
    rec = grid_spec(*RECOMMENDED).default_label
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
