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
    assert set(got) == {("verbmem", "forget"), ("knowmem", "forget_qa"), ("knowmem", "retain_qa"),
                        ("privleak", "forget_vs_holdout")}
    assert all(0 <= got[k] <= 1 for k in got if k[0] != "privleak")
    with pytest.raises(Exception, match="benchmark family 'muse' has no final metric 'es'"):
        evaluate(micro_target.model, micro_target.tokenizer, muse, forget_split="forget", family="muse",
                 metrics=["es"])
