"""unlearning.plan: what a run records, on a scripted run whose retain ES is known at every step.

The "model" is a one-weight module whose weight is the step count; the scripted reader returns
retain ES from a table by that weight and forget ES = the weight itself, so every reading says
which weights it was taken on."""

from __future__ import annotations

import pytest
import torch

from satimp_lab.errors import InputError
from satimp_lab.unlearning.plan import CURVES_TO_MATCH, FINAL, FULL, MATCHED, EvalPlan, PlannedEvaluations

RETAIN = {0: 1.0, 2: 0.97, 4: 0.93, 6: 0.88, 8: 0.8, 10: 0.7, 11: 0.6}
"""Retain ES after each evaluated step (every 2 and the last, 11): 0.9 x 1.0 is crossed between 4 and 6."""


class _Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))


def _run(plan: EvalPlan, total: int = 11, every: int = 2, retain=RETAIN):
    """Drive PlannedEvaluations as the loop does; returns (rows, reads, steps taken)."""
    reads = []

    def read(model, splits):
        at = int(model.w.item())
        reads.append((at, splits))
        out = {}
        if "forget" in splits:
            out["forget_es"] = float(at)
        if "retain" in splits:
            out["retain_es"] = retain[at]
        return out

    model = _Model()
    ev = PlannedEvaluations(plan, every, read)
    ev.rows.append(ev.evaluate(model, 0))
    step = 0
    while step < total:
        with torch.no_grad():
            model.w += 1  # one optimiser step
        step += 1
        if ev.due(step, total) and ev.record(model, step, last=step == total):
            total = step
    return ev.rows, reads, step


def _forget_steps(rows):
    return [r["step"] for r in rows if "forget_es" in r]


def test_full_reads_both_splits_at_every_evaluation_and_takes_every_step():
    rows, _, steps = _run(FULL)
    assert [r["step"] for r in rows] == [0, 2, 4, 6, 8, 10, 11] == _forget_steps(rows) and steps == 11


def test_curves_to_match_ends_at_the_evaluation_that_closes_the_bracket():
    rows, _, steps = _run(replace_level(CURVES_TO_MATCH))
    assert [r["step"] for r in rows] == _forget_steps(rows) == [0, 2, 4, 6] and steps == 6


def test_matched_reads_forget_at_the_bracket_alone_from_the_kept_weights():
    rows, reads, steps = _run(replace_level(MATCHED))
    assert [r["step"] for r in rows] == [0, 2, 4, 6] and steps == 6
    assert _forget_steps(rows) == [0, 4, 6]
    # the forget reading of step 4 was taken on the weights of step 4 (kept), not step 6's
    assert {r["step"]: r["forget_es"] for r in rows if "forget_es" in r} == {0: 0.0, 4: 4.0, 6: 6.0}
    assert (4, ("forget",)) in reads


def test_final_reads_forget_at_the_bracket_then_runs_on_and_reads_the_last_step():
    rows, _, steps = _run(replace_level(FINAL))
    assert [r["step"] for r in rows] == [0, 2, 4, 6, 11] and steps == 11
    assert _forget_steps(rows) == [0, 4, 6, 11]


def test_a_run_that_never_reaches_the_level_reads_forget_at_its_last_step():
    never = {k: 1.0 for k in RETAIN}
    rows, _, steps = _run(replace_level(MATCHED), retain=never)
    assert [r["step"] for r in rows] == [0, 2, 4, 6, 8, 10, 11] and steps == 11
    assert _forget_steps(rows) == [0, 11]


def test_a_crossing_at_the_first_evaluation_reads_forget_at_both_ends():
    early = {**RETAIN, 2: 0.5}
    rows, _, steps = _run(replace_level(MATCHED), retain=early)
    assert _forget_steps(rows) == [0, 2] and steps == 2


def test_plans_say_what_they_put_in_the_run_key():
    assert FULL.key_fields() == {}
    assert replace_level(CURVES_TO_MATCH).key_fields() == {"stop_below": 0.9}
    assert replace_level(MATCHED).key_fields() == {"stop_below": 0.9, "forget_at_bracket": True}
    assert replace_level(FINAL).key_fields() == {"stop_below": 0.9, "forget_at_bracket": True, "run_on": True}
    with pytest.raises(InputError, match="match_level is None"):
        MATCHED.key_fields()


@pytest.mark.parametrize("fields, match", [
    ({"until": "stop"}, "until"),
    ({"match_level": 0.0}, "match_level"), ({"curves": "yes"}, "curves")])
def test_a_bad_plan_names_its_field(fields, match):
    with pytest.raises(InputError, match=match):
        EvalPlan(**fields)


def replace_level(plan: EvalPlan, level: float = 0.9) -> EvalPlan:
    from dataclasses import replace

    return replace(plan, match_level=level)
