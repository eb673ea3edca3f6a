"""The run engine is benchmark-agnostic: a benchmark family that is not TOFU-shaped (raw text,
every token a label, its own split names) runs through ``unlearn`` and a plan as TOFU does."""

from __future__ import annotations

import datasets
import pytest
import torch

from satimp_lab.data.families import BenchmarkFamily
from satimp_lab.unlearning.loop import unlearn
from satimp_lab.unlearning.run import UnlearnConfig
from satimp_lab.unlearning.plan import EvalPlan

TEXT = BenchmarkFamily(
    name="toy_text", description="raw-text passages (a test family)", encoding="text",
    forget_splits=("passages_f",), retain_for=lambda split: "passages_r",
    eval_roles=lambda bench, split: {"forget": "passages_f", "retain": "passages_r"},
    splits_to_load=lambda source, split: ["passages_f", "passages_r"])


@pytest.fixture(scope="module")
def text_benchmark(small_benchmark):
    """Passages made of the synthetic benchmark's answers (words the micro tokenizer knows)."""
    def passages(split, first_id):
        answers = small_benchmark[split]["answer"]
        return datasets.Dataset.from_list([{"text": " ".join(answers[i:i + 3]), "key_spans": [], "doc_id": first_id + k}
                                           for k, i in enumerate(range(0, len(answers) - 2, 3))])
    return datasets.DatasetDict({"passages_f": passages("forget10", 0), "passages_r": passages("retain90", 100)})


def test_a_text_family_unlearns_every_token_through_the_engine(micro_target, text_benchmark):
    config = UnlearnConfig(method="simsat", forget_split="passages_f", steps=4, batch_size=4, lr=3e-3,
                           eval_every=2, eval_max_examples=8)
    run = unlearn(micro_target, text_benchmark, config, progress=False, family=TEXT)
    assert run.status == "completed" and list(run.evaluations["step"]) == [0, 2, 4]
    evals = run.evaluations
    assert evals["forget_mean_logp"].iloc[-1] < evals["forget_mean_logp"].iloc[0]  # the passages fall
    # every token of a passage but the first (nothing predicts it) is traced as a label
    tok = micro_target.tokenizer
    lengths = {row["doc_id"]: len(tok(row["text"], add_special_tokens=False)["input_ids"])
               for row in text_benchmark["passages_f"]}
    frame = run.trace_frame
    per_example = frame[frame["step"] == frame["step"].min()].groupby("example_id").size()
    first_batch = per_example.index
    bos = micro_target.tier.prompt_format != "none" and tok.bos_token_id is not None
    for example_id in first_batch:
        doc = int(example_id) // 100_000
        assert per_example[example_id] == lengths[doc] - (0 if bos else 1), example_id
    before = dict(micro_target.model.named_parameters())
    assert all(not torch.equal(p, before[n]) for n, p in run.model.named_parameters())


def test_a_text_family_runs_under_a_plan_that_stops_at_its_matched_point(micro_target, text_benchmark):
    """The plan finds the bracket on the family's utility reading (retain ES of the retain passages)."""
    config = UnlearnConfig(method="ga", forget_split="passages_f", steps=12, batch_size=4, lr=1e-2,
                           eval_every=2, eval_max_examples=8, trace=False)
    whole = unlearn(micro_target, text_benchmark, config, progress=False, family=TEXT)
    retain = whole.evaluations["retain_es"]
    assert (retain.iloc[1:-1] <= 0.999 * retain.iloc[0]).any(), "the level is never crossed before the end"
    plan = EvalPlan(until="match", final_metrics=False, match_level=0.999)
    stopped = unlearn(micro_target, text_benchmark, config, progress=False, family=TEXT, plan=plan)
    assert stopped.history["lr"].notna().sum() < whole.history["lr"].notna().sum()
    n = len(stopped.evaluations)
    cols = ["step", "retain_es", "forget_es", "forget_mean_logp"]
    assert stopped.evaluations[cols].equals(whole.evaluations[cols].iloc[:n].reset_index(drop=True))


def test_a_split_the_family_lacks_is_named(micro_target, text_benchmark):
    from satimp_lab.errors import InputError

    with pytest.raises(InputError, match="forget10.*toy_text.*passages_f"):
        unlearn(micro_target, text_benchmark, UnlearnConfig(steps=1), progress=False, family=TEXT)
