"""Observation (ii): importance annotation picks low-likelihood tokens -- annotated key tokens are
less likely under the fine-tuned target model than the other answer tokens (notebook 03).

Nothing is unlearned: each target model of the population is one unit, and its value per token
group is the mean likelihood of that group's forget-answer tokens (teacher-forced, before any
unlearning; ``tables.target_token_table``). The comparison "other tokens more likely than key
tokens" is paired on the target models (``seed`` is 0: there is no unlearning seed).
"""

from __future__ import annotations

import pandas as pd

from . import verdicts
from .base import Study

METRIC = "mean_likelihood"
MIN_LIKELIHOOD_GAP = 0.02
"""Smallest gap in mean token likelihood the claim counts."""


def specs() -> list[dict]:
    return []


def measure(lab) -> pd.DataFrame:
    """One row per (target seed, token group): ``label`` ("key" / "other"), ``target_seed``,
    ``seed`` (0), ``mean_likelihood``, ``n_tokens``."""
    from .tables import target_token_table

    rows = []
    for t in lab.setting.target_seeds:
        table = target_token_table(lab.with_target_seed(t))
        for group, sel in table.groupby(table["is_key"].map({True: "key", False: "other"})):
            rows.append({"label": group, "target_seed": t, "seed": 0, METRIC: float(sel["p"].mean()),
                         "n_tokens": len(sel), "reached": True})
    return pd.DataFrame(rows)


def decide(summary) -> list[verdicts.PopulationClaim]:
    return [verdicts.PopulationClaim(
        "obs2_key_tokens_low_likelihood",
        "Observation (ii): importance annotation picks low-likelihood tokens -- annotated key tokens are less "
        "likely under the fine-tuned target model than the other answer tokens (mean token likelihood, "
        "other minus key, paired on target models).",
        [verdicts.compare(summary, "other", "key", METRIC, lower_is_better=False,
                          min_effect=MIN_LIKELIHOOD_GAP)],
        names={"other": "other answer tokens", "key": "key tokens"}, source="paper body")]


def tables(summary) -> dict:
    wide = summary.pivot_table(index="target_seed", columns="label", values=METRIC).reset_index()
    wide["other_minus_key"] = wide["other"] - wide["key"]
    return {"obs2_key_vs_other_by_target": wide}


def extras() -> list:
    """The runs whose weights notebook 03 traces on the Lab's own target: observation (i)'s and
    the NPO / SimNPO references (the study itself unlearns nothing)."""
    from .specs import obs1_specs, reference_specs

    return obs1_specs() + reference_specs()


STUDY = Study("obs2", "03_obs2_weights_vs_likelihood", "Observation (ii): key-token likelihood",
              specs, decide, tables, measure=measure, extras=extras, needs_key_spans=True, curves=extras)
