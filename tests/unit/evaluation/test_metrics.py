"""Unit tests for satimp_lab.evaluation.metrics (docs/methods.md#metrics): pure functions, hand-worked values,
and a hand-built "oracle" language model whose next-token predictions we choose exactly."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from satimp_lab.evaluation import memorisation, privacy, reading, tofu
from satimp_lab.evaluation import metrics as M
from satimp_lab.data.batching import IGNORE_INDEX, encode_dataset


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SATIMP_LAB_CACHE", str(tmp_path / "cache"))


# ----------------------------------------------------------------------------- a fake model


class OracleLM(torch.nn.Module):
    """Predicts the next token by looking the whole (unpadded) prefix up in ``table``: a perfect
    memoriser of the sequences it is built from. Edit ``table`` to make chosen predictions wrong."""

    def __init__(self, vocab_size: int, sequences, default_token: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, 2)  # for the vocabulary check and .parameters()
        self.vocab_size, self.default = vocab_size, default_token
        self.table = {tuple(s[:i + 1]): s[i + 1] for s in sequences for i in range(len(s) - 1)}
        self.training_flags = []

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids, attention_mask=None, **_):
        self.training_flags.append(self.training)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        B, T = input_ids.shape
        logits = torch.full((B, T, self.vocab_size), -10.0)
        for b in range(B):
            prefix = []
            for t in range(T):
                if attention_mask[b, t]:
                    prefix.append(int(input_ids[b, t]))
                    logits[b, t, self.table.get(tuple(prefix), self.default)] = 10.0
        return SimpleNamespace(logits=logits)


@pytest.fixture(scope="module")
def rows(bench):
    return bench["full"].to_list()[:6]


def _oracle(tok, rows, prompt_format="qa"):
    enc = encode_dataset(tok, rows, prompt_format)
    return OracleLM(len(tok), [e["input_ids"] for e in enc], tok.eos_token_id), enc


def _answer_positions(example):
    """Indices i of the label tokens (answer tokens, then the EOS last)."""
    return [i for i, l in enumerate(example["labels"]) if l != IGNORE_INDEX]


def _corrupt(oracle, example, i):
    """Make the model predict a wrong token for the label at index ``i``."""
    seq = example["input_ids"]
    oracle.table[tuple(seq[:i])] = (seq[i] + 1) % oracle.vocab_size


# ----------------------------------------------------------------------------- ES/EM through a model


def test_es_and_em_through_the_oracle(tok, rows):
    oracle, enc = _oracle(tok, rows)
    es = memorisation.extraction_strength(oracle, tok, rows)
    assert es.agg_value == 1.0 and set(es.value_by_index) == {r["qa_id"] for r in rows}
    assert memorisation.exact_memorization(oracle, tok, rows).agg_value == 1.0

    # row 0: last answer token wrong -> ES 0; row 1: answer token j wrong -> ES (m-1-j)/m
    pos0, pos1 = _answer_positions(enc[0]), _answer_positions(enc[1])
    _corrupt(oracle, enc[0], pos0[-2])  # pos[-1] is the EOS
    j = 2
    _corrupt(oracle, enc[1], pos1[j])
    m0, m1 = len(pos0) - 1, len(pos1) - 1
    es = memorisation.extraction_strength(oracle, tok, rows, batch_size=4)
    assert es.value_by_index[rows[0]["qa_id"]] == 0.0
    assert es.value_by_index[rows[1]["qa_id"]] == pytest.approx((m1 - 1 - j) / m1)
    assert all(es.value_by_index[r["qa_id"]] == 1.0 for r in rows[2:])
    em = memorisation.exact_memorization(oracle, tok, rows)
    assert em.value_by_index[rows[0]["qa_id"]] == pytest.approx((m0 - 1) / m0)
    # batching does not change anything
    assert memorisation.extraction_strength(oracle, tok, rows, batch_size=1).value_by_index == es.value_by_index


def test_es_excludes_eos_unless_asked(tok, rows):
    oracle, enc = _oracle(tok, rows)
    _corrupt(oracle, enc[0], _answer_positions(enc[0])[-1])  # the model never stops
    qa = rows[0]["qa_id"]
    assert memorisation.extraction_strength(oracle, tok, rows).value_by_index[qa] == 1.0
    assert memorisation.extraction_strength(oracle, tok, rows, include_eos=True).value_by_index[qa] == 0.0


def test_es_prompt_format_matters(tok, rows):
    oracle, _ = _oracle(tok, rows, prompt_format="es")  # memorised under the official ES prompt
    assert memorisation.extraction_strength(oracle, tok, rows, prompt_format="es").agg_value == 1.0
    assert memorisation.extraction_strength(oracle, tok, rows, prompt_format="qa").agg_value < 0.5


def test_eval_mode_inside_and_mode_restored(tok, rows):
    oracle, _ = _oracle(tok, rows)
    oracle.train()
    memorisation.extraction_strength(oracle, tok, rows)
    assert oracle.training_flags and not any(oracle.training_flags)
    assert oracle.training


# ----------------------------------------------------------------------------- errors


def test_error_empty_dataset(tok, rows):
    oracle, _ = _oracle(tok, rows)
    with pytest.raises(ValueError, match="empty"):
        memorisation.extraction_strength(oracle, tok, [])


def test_error_mismatched_tokenizer(tok, rows):
    oracle, enc = _oracle(tok, rows)
    for rows_in_embedding in (len(tok) - 10, 2 * len(tok)):
        oracle.embed = torch.nn.Embedding(rows_in_embedding, 2)
        with pytest.raises(ValueError, match="mismatched tokenizer"):
            memorisation.extraction_strength(oracle, tok, rows)
    oracle.embed = torch.nn.Embedding(len(tok) + 16, 2)  # a padded embedding is fine
    assert memorisation.extraction_strength(oracle, tok, rows).agg_value == 1.0


def test_error_forget_quality_without_retain_values():
    with pytest.raises(ValueError, match="retain model"):
        tofu.forget_quality([0.5, 1.0], None)
    with pytest.raises(ValueError, match="retain model"):
        tofu.forget_quality([0.5, 1.0], [])
    with pytest.raises(ValueError, match="retain model"):
        tofu.forget_quality([0.5, 1.0], reading.MetricResult("truth_ratio", 0.0, {}, {}))


def test_error_unknown_metric_lists_valid(tok, rows, bench):
    oracle, _ = _oracle(tok, rows)
    with pytest.raises(ValueError, match=r"unknown metric 'bogus'.*'es'"):
        M.evaluate(oracle, tok, bench, metrics=["es", "bogus"])
    with pytest.raises(ValueError, match="retain_truth_ratios"):
        M.evaluate(oracle, tok, bench, metrics=["forget_quality"])
    with pytest.raises(ValueError, match="no split"):
        M.evaluate(oracle, tok, {"forget10": bench["forget10"]}, metrics=["es"])


# ----------------------------------------------------------------------------- TOFU metrics (E.11, E.12)


def test_forget_quality_identical_and_inversion_invariant():
    g = np.random.default_rng(0)
    a, b = g.lognormal(size=30), g.lognormal(size=30)  # plain sequences: same length (same rows)
    assert tofu.forget_quality(a, a).agg_value == 1.0
    fq = tofu.forget_quality(a, b).agg_value
    assert tofu.forget_quality(1 / a, 1 / b).agg_value == pytest.approx(fq, abs=1e-12)
    assert fq == pytest.approx(stats.ks_2samp(a, b).pvalue)
    # it can fail: clearly different distributions give a small p-value
    assert tofu.forget_quality(a, a * 20).agg_value < 1e-3


def test_forget_quality_uses_geometric_form_of_truth_ratio_results():
    tr = reading.MetricResult("truth_ratio", 0.0, {1: 0.1, 2: 0.2}, {"geometric_by_index": {1: 5.0, 2: 6.0}})
    assert tofu.forget_quality(tr, {1: 5.0, 2: 6.0}).agg_value == 1.0
    assert tofu.forget_quality(tr, {1: 0.1, 2: 0.2}).agg_value < 1.0


def test_model_utility_is_hmean():
    comps = {"probability/retain": 0.9, "rouge/retain": 0.5, "truth_ratio/retain": 0.3,
             "probability/world_facts": 0.4, "rouge/world_facts": 0.8, "truth_ratio/world_facts": 0.6}
    mu = tofu.model_utility(comps)
    assert mu.agg_value == pytest.approx(stats.hmean(list(comps.values())))
    assert mu.agg_value < np.mean(list(comps.values()))
    assert tofu.model_utility([0.5, 0.0]).agg_value == 0.0
    with pytest.raises(ValueError):
        tofu.model_utility([])
    with pytest.raises(ValueError):
        tofu.model_utility([0.5, -0.1])
    assert len(tofu.MODEL_UTILITY_COMPONENTS) == 6


def test_truth_ratio_by_hand():
    # p(base) = 0.5, p(perturbed) = 0.25, 0.75 -> R = mean(0.25, 0.75)/0.5 = 1
    r, r_geo = tofu.truth_ratio_from_nll(np.log(2), [np.log(4), np.log(4 / 3)])
    assert r == pytest.approx(1.0)
    assert r_geo == pytest.approx(np.sqrt(0.25 * 0.75) / 0.5)  # geometric mean of probabilities
    # p(base) = 0.5, p(perturbed) = 0.25, 0.125 -> R = 0.1875/0.5 = 0.375 (its inverse is 2.67):
    # the model prefers the true answer, so R < 1
    r, r_geo = tofu.truth_ratio_from_nll(np.log(2), [np.log(4), np.log(8)])
    assert r == pytest.approx(0.375)
    assert r_geo == pytest.approx(np.sqrt(0.25 * 0.125) / 0.5)
    ratios = [0.5, 2.0, 1.0, 0.25]
    assert tofu.aggregate_truth_ratio(ratios, "forget") == pytest.approx((0.5 + 0.5 + 1 + 0.25) / 4)
    assert tofu.aggregate_truth_ratio(ratios, "retain") == pytest.approx((0.5 + 0 + 0 + 0.75) / 4)
    assert tofu.aggregate_truth_ratio({7: 2.0}, "retain") == 0.0
    with pytest.raises(ValueError):
        tofu.aggregate_truth_ratio(ratios, "world")


def test_normalised_probability_by_hand():
    assert tofu.normalised_probability(np.log(2), [np.log(4), np.log(4)]) == pytest.approx(0.5 / 1.0)


def test_rouge_l_recall_by_hand():
    assert tofu.rouge_l_recall_scores(["The cat sat on the mat."], ["The cat sat on the mat."]) == [1.0]
    assert tofu.rouge_l_recall_scores(["the cat"], ["the cat sat down"]) == [pytest.approx(0.5)]
    assert tofu.rouge_l_recall_scores(["the cats running"], ["the cat runs"]) == [1.0]  # stemmer on
    with pytest.raises(ValueError):
        tofu.rouge_l_recall_scores(["a"], [])


def test_generation_and_rouge_through_the_oracle(tok, rows):
    oracle, _ = _oracle(tok, rows)
    gens = reading.generate_answers(oracle, tok, rows, batch_size=4)  # left-padded, mixed lengths
    assert gens == {r["qa_id"]: r["answer"] for r in rows}
    assert tofu.rouge_l_recall(oracle, tok, rows).agg_value == 1.0


def test_probability_and_truth_ratio_through_the_oracle(tok, bench):
    rows = bench["world_facts"].to_list()
    oracle, _ = _oracle(tok, rows)
    p = tofu.answer_probability(oracle, tok, rows)
    assert p.agg_value == pytest.approx(1.0, abs=1e-6)  # logits +-10: p(label) ~ 1 - 3e-7 per token
    pn = tofu.answer_probability(oracle, tok, rows, normalised=True)
    # recompute by hand: the perturbed answers scored as if they were the answers
    for r in rows:
        fake = [{**r, "answer": a, "qa_id": j} for j, a in enumerate(r["perturbed_answer"])]
        p_pert = tofu.answer_probability(oracle, tok, fake).values()
        p_true = p.value_by_index[r["qa_id"]]
        assert pn.value_by_index[r["qa_id"]] == pytest.approx(p_true / (p_true + p_pert.sum()))
        assert p_pert.max() < 0.5  # they diverge from the memorised answer at the fact
        tr = tofu.truth_ratio(oracle, tok, [r], kind="retain", base_answer_field="answer")
        assert tr.value_by_index[r["qa_id"]] == pytest.approx(p_pert.mean() / p_true)
        assert tr.agg_value == pytest.approx(max(0.0, 1 - p_pert.mean() / p_true))


# ----------------------------------------------------------------------------- membership inference


def test_mia_auc():
    g = np.random.default_rng(1)
    x = g.normal(size=40)
    assert privacy.mia_auc(x, x) == 0.5
    assert privacy.mia_auc([1.0, 2.0, 3.0], [4.0, 5.0]) == 1.0  # members have the lower loss
    assert privacy.mia_auc([4.0, 5.0], [1.0, 2.0, 3.0]) == 0.0
    assert privacy.mia_auc([1.0, 2.0], [2.0, 3.0]) == pytest.approx(3.5 / 4)  # one tie counts half
    assert privacy.mia_auc({1: 0.0}, {2: 0.0}) == 0.5
    with pytest.raises(ValueError):
        privacy.mia_auc([], [1.0])


def test_min_k_and_zlib_by_hand():
    assert privacy.min_k_score([-1, -2, -3, -4, -5], k=0.4) == pytest.approx(4.5)  # int(0.4*5)=2 lowest
    assert privacy.min_k_score([-1, -2, -3], k=0.2) == pytest.approx(3.0)  # at least one token
    assert privacy.min_k_score([-1, -2, -3, -4, -5], k=1.0) == pytest.approx(3.0)
    # k*n not an integer: rounded down (open-unlearning's int), where ceil would take one more
    assert privacy.min_k_score([-1, -2, -3, -4, -5], k=0.5) == pytest.approx(4.5)  # int(2.5)=2, not 3
    assert privacy.min_k_score([-1, -3, -2, -4], k=0.3) == pytest.approx(4.0)      # int(1.2)=1, not 2
    import zlib

    text = "The capital of France is Paris."
    assert privacy.zlib_score(2.0, text) == pytest.approx(2.0 / len(zlib.compress(text.encode())))
    with pytest.raises(ValueError):
        privacy.min_k_score([], 0.2)


# ----------------------------------------------------------------------------- model mixing (E.18)


class TiedLM(torch.nn.Module):
    """Tied input/output embedding (like the tiny Llama) plus an integer buffer."""

    def __init__(self, seed, vocab=20, width=8):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = torch.nn.Embedding(vocab, width)
        self.mlp = torch.nn.Linear(width, width)
        self.head = torch.nn.Linear(width, vocab, bias=False)
        self.head.weight = self.embed.weight
        self.register_buffer("steps", torch.tensor([seed], dtype=torch.long))


def test_mix_models_endpoints_exact_and_inputs_untouched():
    orig, unl = TiedLM(0), TiedLM(1)
    before_o = {k: v.clone() for k, v in orig.state_dict().items()}
    before_u = {k: v.clone() for k, v in unl.state_dict().items()}
    m0, m1, mh = (memorisation.mix_models(orig, unl, r) for r in (0.0, 1.0, 0.5))
    for k in before_o:
        assert torch.equal(m0.state_dict()[k], before_u[k])
        assert torch.equal(m1.state_dict()[k], before_o[k])
        if before_o[k].is_floating_point():
            assert torch.allclose(mh.state_dict()[k], (before_o[k] + before_u[k]) / 2)
        assert torch.equal(orig.state_dict()[k], before_o[k])
        assert torch.equal(unl.state_dict()[k], before_u[k])
    assert m0 is not unl and m1 is not orig
    assert mh.head.weight is mh.embed.weight  # still tied
    # integer buffers come from the model with the larger share
    assert memorisation.mix_models(orig, unl, 0.4).steps.item() == 1 and mh.steps.item() == 0
    with pytest.raises(ValueError, match="r must be in"):
        memorisation.mix_models(orig, unl, 1.5)
    with pytest.raises(ValueError, match="cannot mix"):
        memorisation.mix_models(torch.nn.Linear(2, 2), torch.nn.Linear(2, 3), 0.5)


class MixableOracle(OracleLM):
    """logits = w·(+10 on the right token) + (1-w)·(+strength on a wrong token), with w a
    parameter: mixing a w=1 copy (original) with a w=0 copy (unlearned) gives w = r. A wrong
    prediction survives while strength·(1-r) > 10·r, i.e. up to r = strength/(10+strength)."""

    def __init__(self, vocab_size, sequences, default_token, wrong, w):
        super().__init__(vocab_size, sequences, default_token)
        self.w = torch.nn.Parameter(torch.tensor([float(w)]))
        self.wrong = wrong  # prefix -> (wrong token, strength)

    def forward(self, input_ids, attention_mask=None, **_):
        B, T = input_ids.shape
        w = self.w.item()
        logits = torch.zeros(B, T, self.vocab_size)
        for b in range(B):
            prefix = []
            for t in range(T):
                if attention_mask is None or attention_mask[b, t]:
                    prefix.append(int(input_ids[b, t]))
                    key = tuple(prefix)
                    logits[b, t, self.table.get(key, self.default)] += 10 * w
                    if key in self.wrong:
                        token, strength = self.wrong[key]
                        logits[b, t, token] += strength * (1 - w)
        return SimpleNamespace(logits=logits)


def test_calibrated_es_picks_smallest_r_meeting_the_retain_bar(tok, rows):
    forget, retain = rows[:2], rows[2:]
    enc = encode_dataset(tok, rows)
    wrong = {}
    for k, e in enumerate(enc):
        strength = 10.0 if k < 2 else 2.0  # forget answers broken hard, retain answers lightly
        for i in _answer_positions(e):
            wrong[tuple(e["input_ids"][:i])] = ((e["input_ids"][i] + 1) % len(tok), strength)
    seqs = [e["input_ids"] for e in enc]
    original = MixableOracle(len(tok), seqs, tok.eos_token_id, wrong, w=1.0)
    unlearned = MixableOracle(len(tok), seqs, tok.eos_token_id, wrong, w=0.0)
    assert memorisation.extraction_strength(unlearned, tok, rows).agg_value == 0.0
    res = memorisation.calibrated_extraction_strength(original, unlearned, tok, forget, retain, share=0.9)
    # retain answers come back for r > 2/12, forget answers only for r > 1/2
    assert res.extra["r"] == pytest.approx(0.2)
    assert res.extra["retain_es"] == 1.0 and res.extra["retain_bar"] == pytest.approx(0.9)
    assert res.extra["retain_curve"] == {0.0: 0.0, 0.1: 0.0, 0.2: 1.0}
    assert res.agg_value == 0.0
    assert unlearned.w.item() == 0.0 and original.w.item() == 1.0  # inputs untouched
    # with no bar at all, r = 0 (the unlearned model itself) qualifies
    assert memorisation.calibrated_extraction_strength(original, unlearned, tok, forget, retain,
                                            share=0.0).extra["r"] == 0.0
    with pytest.raises(ValueError, match="share"):
        memorisation.calibrated_extraction_strength(original, unlearned, tok, forget, retain, share=1.5)


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_table_shape_with_the_oracle(tok, bench):
    all_rows = [r for s in ("forget10", "retain90", "world_facts", "holdout") for r in bench[s].to_list()]
    oracle, _ = _oracle(tok, all_rows)
    df = M.evaluate(oracle, tok, bench, forget_split="forget10")
    assert list(df.columns) == ["metric", "split", "role", "value", "n"]
    assert list(zip(df.metric, df.split)) == [
        ("es", "forget10"), ("es", "retain90"), ("em", "forget10"), ("em", "retain90"),
        ("probability", "forget10"), ("probability", "retain90"), ("probability", "world_facts")]
    assert (df[df.metric.isin(["es", "em"])].value == 1.0).all()
    assert df.set_index(["metric", "split"]).loc[("es", "retain90"), "n"] == len(bench["retain90"])
    per = df.attrs["details"].per_example
    assert len(per) == df.n.sum()
    assert set(per[per.split == "forget10"].qa_id) == set(bench["forget10"]["qa_id"])
    # max_examples keeps the first rows of each split
    small = M.evaluate(oracle, tok, bench, metrics=["es"], max_examples=3)
    assert small.n.tolist() == [min(3, len(bench["forget10"])), 3]
    keys = small.attrs["details"].per_example.query("split == 'retain90'").qa_id.tolist()
    assert keys == bench["retain90"]["qa_id"][:3]
    # tables from several calls (e.g. one per training step) concatenate
    both = pd.concat([df.assign(step=0), small.assign(step=1)], ignore_index=True)
    assert len(both) == len(df) + len(small)


def test_evaluate_cells_equal_standalone_metrics(tok, bench):
    """Every cell of evaluate's table equals its metric computed on its own on the same rows."""
    all_rows = [r for s in ("forget10", "retain90", "world_facts", "holdout") for r in bench[s].to_list()]
    oracle, _ = _oracle(tok, all_rows)
    metrics = ["es", "es_paraphrased", "em", "probability", "rouge", "truth_ratio", "forget_quality",
               "model_utility", "mia_loss", "mia_zlib", "mia_min_k"]
    reference = {r["qa_id"]: 0.5 + 0.1 * i for i, r in enumerate(bench["forget10"])}
    df = M.evaluate(oracle, tok, bench, forget_split="forget10", metrics=metrics,
                    retain_truth_ratios=reference, max_new_tokens=24, max_examples=6)
    by = df.set_index(["metric", "split"]).value
    f, r, w, h = (bench[s].select(range(min(6, len(bench[s])))) for s in
                  ("forget10", "retain90", "world_facts", "holdout"))
    alone = {
        ("es", "forget10"): memorisation.extraction_strength(oracle, tok, f),
        ("es", "retain90"): memorisation.extraction_strength(oracle, tok, r),
        ("es_paraphrased", "forget10"): memorisation.extraction_strength(oracle, tok, f, "paraphrased_question"),
        ("es_paraphrased", "retain90"): memorisation.extraction_strength(oracle, tok, r, "paraphrased_question"),
        ("em", "forget10"): memorisation.exact_memorization(oracle, tok, f),
        ("em", "retain90"): memorisation.exact_memorization(oracle, tok, r),
        ("probability", "forget10"): tofu.answer_probability(oracle, tok, f),
        ("probability", "retain90"): tofu.answer_probability(oracle, tok, r),
        ("probability", "world_facts"): tofu.answer_probability(oracle, tok, w, normalised=True),
        ("rouge", "forget10"): tofu.rouge_l_recall(oracle, tok, f, max_new_tokens=24),
        ("rouge", "retain90"): tofu.rouge_l_recall(oracle, tok, r, max_new_tokens=24),
        ("rouge", "world_facts"): tofu.rouge_l_recall(oracle, tok, w, max_new_tokens=24),
        ("truth_ratio", "forget10"): tofu.truth_ratio(oracle, tok, f, kind="forget"),
        ("truth_ratio", "retain90"): tofu.truth_ratio(oracle, tok, r, kind="retain"),
        ("truth_ratio", "world_facts"): tofu.truth_ratio(oracle, tok, w, kind="retain", base_answer_field="answer"),
    }
    alone[("forget_quality", "forget10")] = tofu.forget_quality(alone[("truth_ratio", "forget10")], reference)
    alone[("model_utility", "retain90+world_facts")] = tofu.model_utility(
        [alone[(m, {"retain": "retain90", "world_facts": "world_facts"}[role])].agg_value
         for m, role in tofu.MODEL_UTILITY_COMPONENTS])
    for attack in privacy.MIA_ATTACKS:
        alone[(f"mia_{attack}", "forget10_vs_holdout")] = privacy.membership_inference(oracle, tok, f, h, attack)
    assert set(alone) == set(by.index)
    for cell, result in alone.items():
        assert by[cell] == pytest.approx(result.agg_value, rel=1e-9, abs=1e-12), cell
    # the oracle makes the cells that a wiring slip would change far from their wrong values:
    # world facts, normalised: p(a) ~ 1 but the perturbed answers share its template
    unnormalised = tofu.answer_probability(oracle, tok, w).agg_value
    assert abs(by[("probability", "world_facts")] - unnormalised) > 0.05
    tr_wf = alone[("truth_ratio", "world_facts")]
    assert abs(by[("truth_ratio", "world_facts")] - tofu.aggregate_truth_ratio(tr_wf.value_by_index, "forget")) > 0.5


def test_model_utility_alone_reads_its_components_on_their_splits_only(tok, bench):
    all_rows = [r for s in ("forget10", "retain90", "world_facts", "holdout") for r in bench[s].to_list()]
    oracle, _ = _oracle(tok, all_rows)
    df = M.evaluate(oracle, tok, bench, metrics=["model_utility"], max_examples=4, max_new_tokens=40)
    pairs = set(zip(df.metric, df.split))
    assert pairs == {(m, {"retain": "retain90", "world_facts": "world_facts"}[r])
                     for m, r in tofu.MODEL_UTILITY_COMPONENTS} | {("model_utility", "retain90+world_facts")}
    asked = M.evaluate(oracle, tok, bench, metrics=["model_utility", "rouge"], max_examples=4, max_new_tokens=40)
    assert ("rouge", "forget10") in set(zip(asked.metric, asked.split))


def test_tables_taken_from_an_evaluation_share_its_details():
    """pandas deep-copies ``attrs`` into every frame derived from a table (``df[...]``,
    ``itertuples``); the per-example details are read-only and shared, never copied (copying
    them on every row of a run's final metrics took ~4 % of the run)."""
    import copy

    from satimp_lab.evaluation.metrics import EvalDetails

    details = EvalDetails(pd.DataFrame({"qa_id": [1, 2]}), {})
    assert copy.deepcopy(details) is details
    table = pd.DataFrame({"metric": ["es", "em"], "value": [0.5, 0.25]})
    table.attrs["details"] = details
    assert table[["value"]].attrs["details"] is details
    assert table.iloc[1:].attrs["details"] is details
