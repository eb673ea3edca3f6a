"""The attacks on the micro model (satimp_lab.experiments.attacks): relearning, the re-run to the matched
step, the cache."""

import pytest
import torch

from satimp_lab.experiments import attacks
from satimp_lab.data.batching import encode_dataset
from satimp_lab.experiments import Lab
from satimp_lab.models.reading import teacher_forced_summary
from satimp_lab.unlearning.loop import unlearn
from satimp_lab.unlearning.run import UnlearnConfig


@pytest.fixture(scope="module")
def lab(session_cache):
    return Lab("fast", progress=False, final_metrics=("es",))


def test_relearning_moves_parameters_and_raises_forget_likelihood(micro_target, small_benchmark):
    run = unlearn(micro_target, small_benchmark, UnlearnConfig(method="ga", steps=6, lr=1e-3, batch_size=2,
                                                              eval_every=None, trace=False), progress=False)
    tok = micro_target.tokenizer
    forget = encode_dataset(tok, small_benchmark["forget10"], "qa")
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    start = teacher_forced_summary(run.model, forget, tok.pad_token_id)
    relearned, curve = attacks.relearn(run.model, forget, {"forget": forget}, tok.pad_token_id,
                                       steps=(0, 3, 6), lr=1e-3)
    assert list(curve["step"]) == [0, 3, 6]
    assert curve["forget_mean_logp"].iloc[0] == pytest.approx(start["mean_logp"])   # step 0: the model itself
    assert curve["forget_mean_logp"].iloc[-1] > start["mean_logp"] + 0.1            # relearned: likelier
    assert curve["forget_mean_logp"].is_monotonic_increasing
    moved = [k for k, v in relearned.state_dict().items() if not torch.equal(v, before[k])]
    assert len(moved) > len(before) // 2
    for k, v in run.model.state_dict().items():                                     # the input is untouched
        assert torch.equal(v, before[k])


def test_rerun_to_the_matched_step_gives_that_step_of_the_cached_run(lab):
    run = lab.run("ga", seed=0)
    model, step = attacks.unlearned_at_matched_step(lab, run)
    assert step == attacks.matched_step_index(run.summary, int(run.history["lr"].notna().sum()))
    # the fast setting evaluates every step: the re-run's model must give that step's numbers
    ev = run.history.dropna(subset=["forget_es"]).set_index("step")
    assert ev.index.is_unique and step in ev.index and step - 1 in ev.index
    tok = lab.target.tokenizer
    forget = encode_dataset(tok, lab.benchmark["forget10"], "qa")
    got = teacher_forced_summary(model, forget[:lab.setting.base.eval_max_examples], tok.pad_token_id)
    assert got["mean_logp"] == pytest.approx(ev.loc[step, "forget_mean_logp"], abs=1e-6)
    assert got["mean_logp"] != pytest.approx(ev.loc[step - 1, "forget_mean_logp"], abs=1e-6)


def test_attack_rows_are_cached(lab, monkeypatch):
    run = lab.run("simsat", seed=0)
    first = attacks.attack_run(lab, run)
    retain = attacks.attack_retain(lab)
    assert {"relearn_auc", "relearn_gain", "forget_es_q4", "retain_es_q8", "mia", "mia_relearned",
            "attack_step"} <= set(first)
    assert first["relearn_es_k0"] == pytest.approx(first["forget_es"])
    assert retain["attack_step"] == 0

    def boom(*args, **kwargs):
        raise AssertionError("recomputed a cached attack")

    monkeypatch.setattr(attacks, "attack_model", boom)
    assert attacks.attack_run(lab, run) == first
    assert attacks.cached_attack(lab, run) == first
    assert attacks.attack_retain(lab) == retain
    assert attacks.cached_attack(lab, lab.run("ga", seed=0), attacks.AttackConfig(bits=(6,))) is None
