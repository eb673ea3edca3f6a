"""Two readings that no other test pinned down (issue 23, "Tests where bugs still pass"):

* a run read at the bracket only (``UnlearnConfig.forget_at_bracket``) that never reaches its
  matched level: its forget split must be read at its last step, with the whole run's numbers
  there, so forget ES at matched retain (``experiments.matched.forget_at_matched_retain``) is the whole
  run's;
* the attacks' MIA value (``experiments.attacks.attack_model``) is
  ``evaluation.privacy.membership_inference`` of the held-out forget rows (members) against the
  holdout authors (non-members), before and after quantization.

Each compares two computations made here; nothing is read from ``docs/results``.
"""

import pandas as pd
import pytest

from satimp_lab.data.batching import encode_dataset
from satimp_lab.evaluation.privacy import membership_inference
from satimp_lab.experiments import attacks
from satimp_lab.experiments import Lab, forget_at_matched_retain
from satimp_lab.unlearning.loop import unlearn
from satimp_lab.unlearning.run import UnlearnConfig
from satimp_lab.unlearning.plan import MATCHED, EvalPlan

NEVER = 1e-6
"""A matched level no run reaches: retain ES would have to fall to a millionth of its start."""

FORGET = ["forget_es", "forget_mean_logp", "forget_key_accuracy"]
RETAIN = ["retain_es", "retain_mean_logp", "retain_key_accuracy"]


def _evaluated(history: pd.DataFrame) -> pd.DataFrame:
    return history.dropna(subset=["retain_es"]).reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# a run read at the bracket only that never reaches its level


@pytest.mark.parametrize("method", ["ga", "satimp"])
def test_an_unreached_bracket_run_reads_the_forget_split_at_its_last_step(micro_target, small_benchmark,
                                                                           method):
    """5 steps evaluated every 2 (steps 0, 2, 4 and the last, 5, which is no multiple of 2): the
    lean run reads the forget split at steps 0 and 5 only, with the whole run's numbers there to
    the last bit, and the matched reading of both is the last step's, not reached."""
    recipe = {"method": method, "steps": 5, "lr": 1e-4, "batch_size": 2, "eval_every": 2,
              "eval_max_examples": 16, "trace": False}
    whole = unlearn(micro_target, small_benchmark, UnlearnConfig(**recipe), progress=False)
    lean = unlearn(micro_target, small_benchmark,
                   UnlearnConfig(**recipe), progress=False, plan=EvalPlan(curves=False, until="match",
                                                                           final_metrics=False, match_level=NEVER))
    ea, eb = _evaluated(whole.history), _evaluated(lean.history)
    # the precondition: the level is never reached, so the lean run takes every step
    assert not (ea["retain_es"].iloc[1:] <= NEVER * ea["retain_es"].iloc[0]).any()
    assert list(ea["step"]) == list(eb["step"]) == [0, 2, 4, 5]
    pd.testing.assert_frame_equal(eb[["step"] + RETAIN], ea[["step"] + RETAIN])
    read = eb.dropna(subset=["forget_es"])
    assert list(read["step"]) == [0, 5], list(read["step"])  # step 0 and the last step, nothing between
    last_a, last_b = ea.iloc[-1], eb.iloc[-1]
    for col in FORGET:
        assert last_b[col] == last_a[col], (col, last_b[col], last_a[col])  # to the last bit
    # the run moved the forget reading: a stale one (step 0's, the weights kept at step 4) would differ
    assert last_a["forget_mean_logp"] != ea["forget_mean_logp"].iloc[0]
    assert last_a["forget_mean_logp"] != ea["forget_mean_logp"].iloc[2]
    a, b = (forget_at_matched_retain(h, level=NEVER) for h in (whole.history, lean.history))
    assert a == b
    assert b == {"matched_forget": float(last_a["forget_es"]), "matched_retain": float(last_a["retain_es"]),
                 "matched_step": 5.0, "reached": False}


def test_an_unreached_population_run_of_a_lab_has_the_whole_runs_matched_numbers(session_cache, micro_target,
                                                                                 micro_retain):
    """The same through a Lab (the MATCHED plan), at a level the
    fast setting's runs never reach: the cached lean run's summary (matched and final readings) is
    the whole run's, read at its last step."""
    whole = Lab("fast", progress=False, final_metrics=(), match_level=NEVER)
    a, b = whole.run("simsat", seed=0), whole.run("simsat", seed=0, plan=MATCHED)
    assert not b.plan.curves and b.plan.match_level == NEVER and b.folder != a.folder
    assert not a.summary["reached"] and not b.summary["reached"]
    steps = int(a.history["lr"].notna().sum())
    assert int(b.history["lr"].notna().sum()) == steps and a.summary["matched_step"] == steps
    read = _evaluated(b.history).dropna(subset=["forget_es"])
    assert list(read["step"]) == [0, steps]
    for key in ("matched_forget", "matched_retain", "matched_step", "reached", "final_forget_es",
                "final_retain_es", "final_forget_mean_logp", "final_retain_mean_logp"):
        assert b.summary[key] == a.summary[key], (key, b.summary[key], a.summary[key])
    last = _evaluated(a.history).iloc[-1]
    assert b.summary["matched_forget"] == last["forget_es"] and last["step"] == steps


# ----------------------------------------------------------------------------------------------
# the attacks' MIA value


@pytest.mark.parametrize("which", ["micro_target", "micro_retain"])
def test_the_attacks_mia_is_membership_inference_of_held_out_forget_rows_against_holdout(which, request,
                                                                                         small_benchmark):
    """``mia``, ``mia_q8`` and ``mia_relearned`` of :func:`attacks.attack_model` are
    ``membership_inference`` of the same rows: members the held-out forget authors' rows,
    non-members the holdout split. On the memorised target the AUC is far from chance, so
    swapped members and non-members (AUC -> 1 - AUC) give another value; on the retain model
    (never trained on the forget authors) the AUC is not saturated, so the whole forget split as
    members gives another value too."""
    bundle = request.getfixturevalue(which)
    model, tok = bundle.model, bundle.tokenizer
    config = attacks.AttackConfig(relearn_steps=(0, 1), bits=(8,), retain_max_examples=8)
    row = attacks.attack_model(model, tok, small_benchmark, "forget10", config, lr=1e-3)
    forget = small_benchmark["forget10"]
    relearned, held_out = attacks.split_forget_authors(forget["author_id"], config.relearn_fraction,
                                                       config.split_seed)
    assert row["n_held_out"] == len(held_out) and 0 < len(held_out) < len(forget)
    members, nonmembers = forget.select(held_out), small_benchmark["holdout"]

    def auc(m, mem, non):
        return membership_inference(m, tok, mem, non, config.mia_attack, batch_size=config.batch_size).agg_value

    expected = auc(model, members, nonmembers)
    assert row["mia"] == pytest.approx(expected, abs=1e-12)
    # the line above tells the sides apart: swapped, the AUC is 1 - AUC, another value
    assert auc(model, nonmembers, members) == pytest.approx(1 - expected, abs=1e-12)
    assert abs(expected - 0.5) > (0.2 if which == "micro_target" else 0.03), expected
    if which == "micro_retain":  # not saturated: other members give another value
        assert auc(model, forget, nonmembers) != pytest.approx(expected, abs=1e-6)
    quantized = attacks.quantize_model(model, 8)
    assert row["mia_q8"] == pytest.approx(auc(quantized, members, nonmembers), abs=1e-12)
    # after relearning (deterministic: one full batch per step, no sampling) the same rows again
    encoded = encode_dataset(tok, forget, "qa")
    relearned_model, _ = attacks.relearn(model, [encoded[i] for i in relearned],
                                         {"forget": [encoded[i] for i in held_out]}, tok.pad_token_id,
                                         config.relearn_steps, 1e-3, batch_size=config.batch_size)
    assert row["mia_relearned"] == pytest.approx(auc(relearned_model, members, nonmembers), abs=1e-12)
