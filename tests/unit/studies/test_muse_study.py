"""The MUSE-shaped study's claims on synthetic population tables with known effects
(``satimp_lab.studies.muse``), and how its runs are planned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from satimp_lab.experiments.identity import spec
from satimp_lab.studies import base, muse
from satimp_lab.unlearning.plan import AT_MATCH, CURVES_AT_MATCH, MATCHED

COLUMNS = (muse.VERBMEM, muse.KNOWMEM_F, muse.KNOWMEM_R, muse.PRIVLEAK)


def population(values: dict, targets=(0, 1, 2, 3, 4), seeds=(0, 1, 2), noise=0.005, seed=0) -> pd.DataFrame:
    """A sweep summary: every method on every unit; ``values[label]`` = (VerbMem D_f, KnowMem D_f,
    KnowMem D_r, PrivLeak %), each + noise."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"label": label, "target_seed": t, "seed": s, "reached": True,
                          **{c: v + rng.normal(0, noise) for c, v in zip(COLUMNS, vals)}}
                         for t in targets for s in seeds for label, vals in values.items()])


BASE = {"ga": (0.5, 0.6, 0.8, -80.0), "gd": (0.5, 0.6, 0.9, -80.0), "npo": (0.5, 0.6, 0.8, -80.0),
        "simnpo": (0.5, 0.6, 0.8, -80.0), "simimp": (0.5, 0.6, 0.8, -80.0), "annotated": (0.5, 0.6, 0.8, -80.0)}


def verdicts_of(summary):
    return {c.id: c.verdict for c in muse.decide(summary)}


def test_the_claims_follow_the_metrics():
    holds = population({**BASE, "simsat": (0.2, 0.3, 0.8, -10.0), "satimp": (0.1, 0.2, 0.8, 5.0)})
    assert verdicts_of(holds) == {"muse_verbmem": "reproduced", "muse_knowmem": "reproduced",
                                  "muse_privleak": "reproduced", "muse_saturation_beats_importance": "reproduced"}
    # more memory left, and a PrivLeak further from 0 on either side: every claim contradicted
    reversed_ = population({**BASE, "simsat": (0.8, 0.9, 0.8, -100.0), "satimp": (0.7, 0.9, 0.8, 99.0)})
    assert set(verdicts_of(reversed_).values()) == {"contradicted"}
    # the same PrivLeak everywhere (all at -100, as when nothing is private yet): no difference to claim
    flat = population({**{k: (*v[:3], -100.0) for k, v in BASE.items()}, "simsat": (0.2, 0.3, 0.8, -100.0),
                       "satimp": (0.1, 0.2, 0.8, -100.0)}, noise=0.0)
    assert verdicts_of(flat)["muse_privleak"] == "inconclusive"


def test_privleak_is_compared_by_its_distance_to_zero():
    gap = muse.with_gap(population({"ga": (0.5, 0.5, 0.5, -60.0), "simsat": (0.5, 0.5, 0.5, 40.0)}, noise=0))
    assert gap.groupby("label")[muse.PRIVLEAK_GAP].mean().to_dict() == pytest.approx({"ga": 0.6, "simsat": 0.4})
    with pytest.raises(KeyError, match="eval_mia_privleak"):
        muse.with_gap(population({"ga": (0.5, 0.5, 0.5, 0.0)}).drop(columns=[muse.PRIVLEAK]))


def test_the_metrics_table_has_every_method_in_order():
    table = muse.metrics_table(population({**BASE, "simsat": (0.2, 0.3, 0.8, -10.0), "satimp": (0.1, 0.2, 0.8, 5.0)},
                                          noise=0))
    assert list(table["label"]) == list(muse.METHODS)
    assert list(table.columns[2:]) == ["reached", "VerbMem on D_f", "KnowMem on D_f", "KnowMem on D_r", "PrivLeak (%)"]
    assert table.set_index("label").loc["satimp", "VerbMem on D_f"] == pytest.approx(0.1)
    assert set(table["reached"]) == {"15/15"}


def test_its_runs_are_scored_at_the_matched_point_and_tofu_runs_are_not():
    plan = base.planner([muse.STUDY])
    assert plan(spec("satimp"), True) == CURVES_AT_MATCH and plan(spec("satimp"), False) == AT_MATCH
    # a TOFU study's run of the same method keeps its own plan: identities do not name the family
    assert not any(base.plan_for(s, False).final_metrics for s in muse.specs())
    assert base.plan_for(spec("gd"), False) == MATCHED  # declared by no TOFU study
    assert base.declared_readings(family="tofu")[2] == frozenset()
    with pytest.raises(ValueError, match="several benchmark families"):
        base.planner([muse.STUDY, base.Study("t", "99_t", "t", lambda: [], lambda s: [])])
