"""Faults reported for unlearning metrics elsewhere, checked here: underflowing probabilities,
run-on generations, unpaired samples."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from satimp_lab.evaluation import reading, tofu
from satimp_lab.evaluation import metrics as M
from satimp_lab.data.batching import get_prompt_format


# ----------------------------------------------------------------------------------------------
# probabilities underflow: every NLL-derived metric in log space


@pytest.mark.parametrize("base, perturbed, log_r", [
    (800.0, [1.0], 799.0), (1.0, [800.0], -799.0), (2000.0, [2000.0, 2000.0], 0.0),
    (5000.0, [10.0, 4000.0], 5000.0 - 10.0 - math.log(2)),
])
def test_truth_ratio_at_extreme_nlls(base, perturbed, log_r):
    got_log_r, got_log_geo = tofu.log_truth_ratio_from_nll(base, perturbed)
    assert got_log_r == pytest.approx(log_r, abs=1e-9)
    assert got_log_geo == pytest.approx(base - np.mean(perturbed), abs=1e-9)
    r, r_geo = tofu.truth_ratio_from_nll(base, perturbed)  # was ZeroDivisionError / OverflowError
    assert r == pytest.approx(math.exp(log_r)) if abs(log_r) < 700 else r in (0.0, math.inf)
    forget = tofu.aggregate_truth_ratio([r], "forget")
    assert forget == pytest.approx(math.exp(-abs(log_r)), abs=1e-300)
    assert tofu.aggregate_truth_ratio([log_r], "forget", log=True) == pytest.approx(forget, abs=1e-300)
    assert tofu.aggregate_truth_ratio([r], "retain") == pytest.approx(max(0.0, -math.expm1(min(log_r, 0))))


def test_normalised_probability_at_extreme_nlls():
    assert tofu.normalised_probability(800.0, [800.0, 800.0]) == pytest.approx(1 / 3)  # was 0/0
    assert tofu.normalised_probability(2000.0, [1.0]) == 0.0
    assert tofu.normalised_probability(1.0, [2000.0, 3000.0]) == pytest.approx(1.0)
    assert tofu.normalised_probability(np.log(2), [np.log(4), np.log(4)]) == pytest.approx(0.5)


def test_forget_quality_on_extreme_ratios_stays_finite():
    # R_geo of exp(1200) and exp(-1500) are inf and 0 in float64; their logs are not
    unl = reading.MetricResult("truth_ratio", 0.0, {1: math.inf, 2: 0.0, 3: 1.0},
                         {"log_geometric_by_index": {1: 1200.0, 2: -1500.0, 3: 0.0}})
    assert tofu.forget_quality(unl, unl).agg_value == 1.0
    ret = {1: 1.0, 2: 2.0, 3: 0.5}
    assert 0.0 < tofu.forget_quality(unl, ret).agg_value <= 1.0


class ScoreLM(torch.nn.Module):
    """Every position predicts ``token`` with logit +scale, every other token -scale: answers'
    tokens other than ``token`` get an NLL of ~2*scale nats."""

    def __init__(self, vocab_size, token, scale):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, 2)
        self.vocab_size, self.token, self.scale = vocab_size, token, scale

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids, attention_mask=None, **_):
        logits = torch.full((*input_ids.shape, self.vocab_size), -self.scale)
        logits[..., self.token] = self.scale
        return SimpleNamespace(logits=logits)


def test_truth_ratio_and_evaluate_of_a_model_with_nlls_of_thousands_of_nats(tok, bench):
    model = ScoreLM(len(tok), tok.eos_token_id, 1000.0)  # NLL ~2000 nats per answer token
    rows = bench["forget10"]
    tr = tofu.truth_ratio(model, tok, rows, kind="forget")  # was ZeroDivisionError
    nll = [s.nll for s in reading.score_answers(model, tok, rows, answer_field="paraphrased_answer")]
    assert min(nll) > 800  # exp(-800) == 0.0 in float64
    logs = np.array(list(tr.extra["log_by_index"].values()))
    assert np.all(np.isfinite(logs)) and np.all(np.isfinite(list(tr.extra["log_geometric_by_index"].values())))
    assert tr.agg_value == pytest.approx(np.mean(np.exp(-np.abs(logs))))
    table = M.evaluate(model, tok, bench, metrics=["probability", "truth_ratio", "forget_quality",
                                                   "model_utility", "mia_loss", "mia_zlib", "mia_min_k"],
                       retain_truth_ratios=tr, max_new_tokens=4)
    assert np.all(np.isfinite(table["value"])), table
    assert table.set_index(["metric", "role"]).loc[("forget_quality", "forget"), "value"] == 1.0


# ----------------------------------------------------------------------------------------------
# run-on generations


class ScriptedLM(torch.nn.Module):
    """A fake model whose ``generate`` returns chosen token ids after each prompt."""

    def __init__(self, vocab_size, continuation_ids):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, 2)
        self.continuation = torch.tensor(continuation_ids)

    def get_input_embeddings(self):
        return self.embed

    def generate(self, input_ids, attention_mask=None, max_new_tokens=128, **_):
        new = self.continuation[:max_new_tokens].expand(input_ids.shape[0], -1)
        return torch.cat([input_ids, new], dim=1)


@pytest.mark.parametrize("fmt", ["qa", "es", "llama2"])
def test_a_run_on_generation_is_cut_at_the_next_turn(tok, bench, fmt):
    row = bench["forget10"][0]
    f = get_prompt_format(fmt)
    run_on = "I do not know.\n" + f.prompt("Who wrote it?") + f.answer_prefix + row["answer"]
    if fmt == "qa":
        assert run_on.startswith("I do not know.\nQuestion: ")
    ids = tok(run_on, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    model = ScriptedLM(len(tok), ids)
    gens = reading.generate_answers(model, tok, [row], prompt_format=fmt)
    assert gens == {row["qa_id"]: "I do not know."}
    rouge = tofu.rouge_l_recall(model, tok, [row], prompt_format=fmt)
    assert rouge.agg_value == 0.0  # was 1.0: the run-on holds the true answer


def test_a_generation_stops_at_any_special_token(tok, bench):
    row = bench["forget10"][0]
    ids = (tok("Paris", add_special_tokens=False)["input_ids"] + [tok.bos_token_id]
           + tok(row["answer"], add_special_tokens=False)["input_ids"])
    gens = reading.generate_answers(ScriptedLM(len(tok), ids), tok, [row])
    assert gens == {row["qa_id"]: "Paris"}


def test_first_answer_keeps_a_plain_answer():
    qa = get_prompt_format("qa")
    assert qa.first_answer(" The author was born in Rome. ") == "The author was born in Rome."
    assert qa.first_answer("Rome.\n\nQuestion: and?\nAnswer: Oslo") == "Rome."
    assert qa.first_answer("Rome.\nAnswer: Oslo") == "Rome."


# ----------------------------------------------------------------------------------------------
# two samples that are not the same rows


def test_forget_quality_matches_the_two_samples_by_qa_id():
    unl = reading.MetricResult("truth_ratio", 0.0, {10: 0.1, 11: 0.2}, {"geometric_by_index": {10: 0.5, 11: 0.7}})
    retain_all = {10: 0.5, 11: 0.7, 12: 4.0, 13: 5.0}
    assert tofu.forget_quality(unl, retain_all).agg_value == 1.0  # the same rows, selected by id
    with pytest.raises(ValueError, match="qa_id"):  # was FQ 0.933 on 2 vs 4 values
        tofu.forget_quality(unl, list(retain_all.values()))
    with pytest.raises(ValueError, match="13"):
        tofu.forget_quality({10: 0.5, 13: 0.9}, {10: 0.5, 11: 0.7})
    with pytest.raises(ValueError, match="same rows"):
        tofu.forget_quality([0.5, 0.7], [0.5, 0.7, 4.0, 5.0])
    assert tofu.forget_quality([0.5, 0.7], [0.5, 0.7]).agg_value == 1.0


def test_evaluate_forget_quality_with_max_examples_compares_the_same_rows(tok, bench):
    model = ScoreLM(len(tok), tok.eos_token_id, 3.0)
    reference = tofu.truth_ratio(model, tok, bench["forget10"], kind="forget")  # every forget row
    assert len(reference.value_by_index) > 1
    table = M.evaluate(model, tok, bench, metrics=["forget_quality"], retain_truth_ratios=reference,
                       max_examples=1)
    assert table["value"].iloc[0] == 1.0
    with pytest.raises(ValueError, match="qa_id"):
        M.evaluate(model, tok, bench, metrics=["forget_quality"], max_examples=1,
                   retain_truth_ratios=list(reference.extra["geometric_by_index"].values()))
