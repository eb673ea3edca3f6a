"""The MUSE-shaped family end to end on the engine (issue 24's first parts): its corpus unlearned by
``unlearn`` as raw text, and evaluated by ``evaluate`` with MUSE's metrics. The micro target never
read these articles, so the numbers say nothing about memorisation; the test checks the path."""

from __future__ import annotations

import pytest

from satimp_lab.data.muse import MuseConfig, load_muse
from satimp_lab.evaluation.metrics import evaluate
from satimp_lab.unlearning.loop import unlearn
from satimp_lab.unlearning.run import UnlearnConfig


@pytest.fixture(scope="module")
def muse():
    return load_muse(config=MuseConfig(n_forget=4, n_retain=8, n_holdout=4))


def test_the_muse_corpus_unlearns_as_raw_text(micro_target, muse):
    # GA: on passages the target never read p is tiny, where saturation weights (SatImp, SimSat) vanish
    config = UnlearnConfig(method="ga", forget_split="forget", steps=3, batch_size=4, lr=1e-3, eval_every=1,
                           eval_max_examples=8)
    run = unlearn(micro_target, muse, config, progress=False, family="muse")
    assert run.status == "completed" and list(run.evaluations["step"]) == [0, 1, 2, 3]
    assert run.evaluations["forget_mean_logp"].iloc[-1] < run.evaluations["forget_mean_logp"].iloc[0]
    frame = run.trace_frame
    assert frame["is_key"].any() and not frame["is_key"].all()  # the facts' spans are key tokens


def test_evaluate_reads_the_muse_roles_and_metrics(micro_target, micro_retain, muse):
    table = evaluate(micro_target.model, micro_target.tokenizer, muse, forget_split="forget", family="muse",
                     metrics=["verbmem", "knowmem", "privleak"], retain_model=micro_retain.model,
                     prompt_format=micro_target.tier.prompt_format, batch_size=8)
    got = {(r.metric, r.split): r.value for r in table.itertuples()}
    # each row names the role of its split (the retain split's is "retain", not model utility's "utility")
    assert {(r.metric, r.role) for r in table.itertuples()} == {
        ("verbmem", "forget"), ("verbmem", "retain"), ("knowmem", "forget_qa"), ("knowmem", "retain_qa"),
        ("privleak", "mia")}
    assert set(got) == {("verbmem", "forget"), ("verbmem", "retain"), ("knowmem", "forget_qa"), ("knowmem", "retain_qa"),
                        ("privleak", "forget_vs_holdout")}
    assert all(0 <= got[k] <= 1 for k in got if k[0] != "privleak")
    with pytest.raises(Exception, match="benchmark family 'muse' has no final metric 'es'"):
        evaluate(micro_target.model, micro_target.tokenizer, muse, forget_split="forget", family="muse",
                 metrics=["es"])


# ----------------------------------------------------------------------------------------------
# a Lab of the family: its pinned models, and MUSE's metrics at the matched point


@pytest.fixture(scope="module")
def muse_lab(tmp_path_factory):
    import os

    from satimp_lab.experiments import Lab

    old = os.environ.get("SATIMP_LAB_CACHE")
    os.environ["SATIMP_LAB_CACHE"] = str(tmp_path_factory.mktemp("muse-cache"))
    try:
        yield Lab("fast", progress=False).family_lab("muse")
    finally:
        if old is None:
            os.environ.pop("SATIMP_LAB_CACHE")
        else:
            os.environ["SATIMP_LAB_CACHE"] = old


def test_a_muse_lab_reads_its_pinned_models_and_they_memorised_what_they_read(muse_lab):
    from satimp_lab.data.muse import MuseConfig

    s = muse_lab.setting
    assert (s.name, s.family, s.forget_split, s.tier) == ("fast-muse", "muse", "forget", "micro")
    assert isinstance(s.benchmark, MuseConfig) and s.final_metrics == ("verbmem", "knowmem", "privleak")
    assert muse_lab.target.shipped and muse_lab.retain_model.shipped  # data/models/micro/seed0/muse-*
    assert muse_lab.target.path.name == "muse-target" and muse_lab.retain_model.path.name == "muse-retain-forget"
    target, retrained = muse_lab.reference_metrics["target"], muse_lab.reference_metrics["retain"]
    # the target recites the forget articles and answers their questions; the retrained model read neither
    assert target["forget_verbmem"] > retrained["forget_verbmem"] + 0.4
    assert target["forget_qa_knowmem"] > retrained["forget_qa_knowmem"] + 0.5
    assert min(target["retain_qa_knowmem"], retrained["retain_qa_knowmem"]) > 0.8  # both read D_r
    assert target["mia_privleak"] < -50 and retrained["mia_privleak"] == 0.0  # PrivLeak is 0 by definition


def test_final_metrics_at_the_matched_point_are_read_on_the_model_there(muse_lab):
    from satimp_lab.unlearning.plan import AT_MATCH, FULL

    at_match, to_end = muse_lab.run("ga", plan=AT_MATCH), muse_lab.run("ga", plan=FULL)
    steps = at_match.history["lr"].notna().sum()
    assert at_match.summary["reached"] and steps < to_end.history["lr"].notna().sum()
    # it ended at the evaluation that closes the bracket: the first at or below the level
    evals = at_match.history[at_match.history["utility_es"].notna()]
    level = muse_lab.setting.match_level * evals["utility_es"].iloc[0]
    assert evals["utility_es"].iloc[-1] <= level and (evals["utility_es"].iloc[1:-1] > level).all()
    assert "forget_es" in evals and evals["forget_es"].notna().iloc[-1]
    # the metrics are those of that model, not of the run's end (where GA has destroyed more)
    names = ("eval_forget_verbmem", "eval_retain_verbmem", "eval_forget_qa_knowmem", "eval_retain_qa_knowmem",
             "eval_mia_privleak")
    assert all(n in at_match.summary for n in names)
    assert at_match.summary["eval_retain_qa_knowmem"] > to_end.summary["eval_retain_qa_knowmem"]
    # the same run up to the matched point: the history is the FULL run's first steps to the bit
    full = to_end.history[to_end.history["utility_es"].notna()]
    shared = full.set_index("step").loc[evals["step"], "utility_es"].to_numpy()
    assert (shared == evals["utility_es"].to_numpy()).all()


def test_the_muse_study_decides_its_claims_on_the_fast_population(muse_lab):
    from satimp_lab.studies import muse

    result = muse.STUDY.run(muse_lab)
    units = result.summary.drop_duplicates(["target_seed", "seed"])
    assert len(units) == len(muse_lab.setting.target_seeds) * len(muse_lab.setting.seeds)
    assert {c.id for c in result.claims} == {"muse_verbmem", "muse_knowmem", "muse_privleak",
                                             "muse_saturation_beats_importance"}
    assert result.summary[list(muse.METRICS)[:4]].notna().all().all()
    assert list(result.tables["muse_metrics"]["label"]) == list(muse.METHODS)


METHODS_ON_TEXT = ("ga", "gd", "npo", "simnpo", "simsat", "simimp", "annotated", "satimp", "group_simsat",
                   "instance_simimp", "instance_norm_simsat", "batch_simsat", "hard_top", "annotated_satimp_gd")
"""Every kind of forget term (token, group, instance, batch, hard, annotation) and retain term."""


@pytest.mark.parametrize("method", METHODS_ON_TEXT)
def test_every_kind_of_method_unlearns_the_pinned_target_on_text(muse_lab, method):
    import torch

    config = muse_lab.config(method, steps=2, eval_every=1, eval_max_examples=4)
    before = [p.detach().clone() for p in muse_lab.target.model.parameters()]
    run = unlearn(muse_lab.target, muse_lab.benchmark, config, progress=False, family="muse")
    assert run.status == "completed"
    moved = sum(not torch.equal(a, b) for a, b in zip(before, run.model.parameters()))
    assert moved > 0, f"{method}: no parameter moved"
    assert all(torch.equal(a, b) for a, b in zip(before, muse_lab.target.model.parameters()))  # a copy was trained
    evals = run.evaluations
    assert {"forget_es", "retain_es", "utility_es"} <= set(evals.columns)
    assert evals["forget_mean_logp"].iloc[-1] < evals["forget_mean_logp"].iloc[0], method
