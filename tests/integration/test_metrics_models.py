"""Metrics on real (micro) models trained once per session on the small benchmark (conftest.py):
ES on memorised vs random weights, teacher-forced ES vs greedy generation, the evaluate table,
forget quality of the retain model against itself, and the model-mixing calibration."""

import pytest

from satimp_lab.errors import InputError
import torch
from scipy import stats

from satimp_lab.evaluation import memorisation, privacy, reading, tofu
from satimp_lab.evaluation import metrics as M
from satimp_lab.data.batching import IGNORE_INDEX, encode_dataset, get_prompt_format
from satimp_lab.models.build import build_tiny_model


@pytest.fixture(scope="module")
def random_model(micro_target):
    """Same architecture and tokenizer as the target, never trained."""
    return build_tiny_model(micro_target.tier.arch, micro_target.tokenizer, seed=123).eval()


def test_es_high_on_training_rows_and_near_zero_untrained(micro_target, random_model, small_benchmark):
    tok = micro_target.tokenizer
    trained = memorisation.extraction_strength(micro_target.model, tok, small_benchmark["full"])
    # The micro model reaches ~0.98 teacher-forced token accuracy but ES needs the whole suffix
    # right, so its mean ES on its training rows is ~0.82 (measured); 0.7 leaves some margin.
    assert trained.agg_value > 0.7
    assert len(trained.value_by_index) == len(small_benchmark["full"])
    assert memorisation.extraction_strength(random_model, tok, small_benchmark["full"]).agg_value < 0.1
    # never-seen authors are not extractable either
    assert memorisation.extraction_strength(micro_target.model, tok, small_benchmark["holdout"]).agg_value < 0.2


def test_teacher_forced_es_equals_greedy_generation(micro_target, small_benchmark):
    """docs/methods.md#extraction-strength: ES = s/m means greedy decoding from the answer prefix y[:m-s] reproduces the
    remaining s tokens exactly, and from y[:m-s-1] it does not (its next token is wrong)."""
    model, tok = micro_target.model, micro_target.tokenizer
    rows = small_benchmark["full"].to_list()
    es = memorisation.extraction_strength(model, tok, rows).value_by_index
    full_marks = [r for r in rows if es[r["qa_id"]] == 1.0][:2]
    partial = [r for r in rows if 0.0 < es[r["qa_id"]] < 1.0][:2]
    assert len(full_marks) == 2 and len(partial) == 2, "need both kinds of example to compare"
    for row, enc in zip(full_marks + partial, encode_dataset(tok, full_marks + partial)):
        positions = [i for i, l in enumerate(enc["labels"]) if l != IGNORE_INDEX][:-1]  # no EOS
        m, start = len(positions), positions[0]
        s = round(es[row["qa_id"]] * m)
        k = m - s
        ids = enc["input_ids"]

        def greedy(prefix_len, n):
            prefix = torch.tensor([ids[:prefix_len]])
            out = model.generate(input_ids=prefix, attention_mask=torch.ones_like(prefix),
                                 max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
            return out[0, prefix_len:].tolist()

        assert greedy(start + k, s) == ids[start + k:start + m]
        if k > 0:
            assert greedy(start + k - 1, 1) != [ids[start + k - 1]]
    # and the batched generation helper agrees for the fully extractable ones
    gens = reading.generate_answers(model, tok, full_marks + partial)
    for row in full_marks:
        assert gens[row["qa_id"]].startswith(row["answer"])
    for row in partial:
        assert not gens[row["qa_id"]].startswith(row["answer"])


def test_fast_greedy_decoding_gives_generates_tokens(micro_target, random_model, small_benchmark):
    """reading._greedy_llama (the decoder layers called directly for each new token) gives
    model.generate's greedy tokens, bit for bit: left-padded batches of different widths, rows
    that stop early (EOS, then padding), rows that run to the budget (an untrained model and a
    damaged one), a budget of one token, and a lone row."""
    tok = micro_target.tokenizer
    damaged = build_tiny_model(micro_target.tier.arch, tok, seed=0).eval()
    with torch.no_grad():
        for mine, theirs in zip(damaged.parameters(), micro_target.model.parameters()):
            mine.copy_(theirs + 0.02 * torch.randn_like(theirs))
    fmt = get_prompt_format("qa")
    rows = small_benchmark["full"].to_list()[:12] + small_benchmark["world_facts"].to_list()[:6]
    prompts = [reading._prompt_ids(tok, fmt, r["question"]) for r in rows]
    pad, eos = tok.pad_token_id, tok.eos_token_id
    runs_to_budget = False
    for model in (micro_target.model.eval(), random_model, damaged):
        assert reading._fast_decoding(model)
        for batch, budget in ((prompts, 24), (prompts[3:4], 24), (prompts[:5], 1)):
            width = max(map(len, batch))
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in batch])
            att = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch])
            with torch.no_grad():
                fast = reading._greedy_llama(model, ids, att, budget, eos, pad)
                ref = model.generate(input_ids=ids, attention_mask=att, do_sample=False, max_new_tokens=budget,
                                     pad_token_id=pad, eos_token_id=eos)[:, width:]
            assert torch.equal(fast, ref)
            runs_to_budget |= fast.shape[1] == budget and budget > 1
    assert runs_to_budget  # the comparison covered rows that never stop
    model = micro_target.model
    model.forward = model.forward  # a patched forward: generate is used
    try:
        assert not reading._fast_decoding(model)
    finally:
        del model.forward


def test_evaluate_is_the_same_through_the_generic_readers(micro_target, micro_retain, small_benchmark):
    """Every number of a run's final metrics (ROUGE included) is the same, to the last bit,
    whether the model is read by the fast paths (output head on the answer positions only,
    reading._greedy_llama) or, as before them, by the full logits and ``generate`` (a patched
    forward turns both off)."""
    model, tok = micro_target.model, micro_target.tokenizer
    reference = tofu.truth_ratio(micro_retain.model, micro_retain.tokenizer, small_benchmark["forget10"])
    names = ["es", "es_paraphrased", "em", "probability", "rouge", "truth_ratio", "forget_quality",
             "model_utility", "mia_loss"]

    def table():
        return M.evaluate(model, tok, small_benchmark, forget_split="forget10", metrics=names,
                          retain_truth_ratios=reference, max_examples=12, max_new_tokens=24)

    fast = table()
    model.forward = model.forward
    try:
        assert not reading._fast_decoding(model)
        generic = table()
    finally:
        del model.forward
    assert fast["value"].tolist() == generic["value"].tolist()
    a, b = (t.attrs["details"] for t in (fast, generic))
    assert a.per_example["value"].tolist() == b.per_example["value"].tolist()
    assert (a.results[("rouge", "retain90")].extra["generations"]
            == b.results[("rouge", "retain90")].extra["generations"])


def test_evaluate_table(micro_target, micro_retain, small_benchmark):
    model, tok = micro_target.model, micro_target.tokenizer
    reference = tofu.truth_ratio(micro_retain.model, micro_retain.tokenizer, small_benchmark["forget10"])
    from satimp_lab.data.families import TOFU

    df = M.evaluate(model, tok, small_benchmark, forget_split="forget10", metrics=list(TOFU.metrics),
                    retain_truth_ratios=reference, original_model=model, reference_model=micro_retain.model)
    pairs = set(zip(df.metric, df.split))
    split_of = {"forget": "forget10", "retain": "retain90", "world_facts": "world_facts"}
    expected = {(m, split_of[r]) for m, roles in M.METRIC_ROLES.items() for r in roles if m in TOFU.metrics}
    expected |= {("model_utility", "retain90+world_facts"), ("forget_quality", "forget10"),
                 ("calibrated_es", "forget10")}
    expected |= {(f"mia_{a}", "forget10_vs_holdout") for a in (*privacy.MIA_ATTACKS, *privacy.MODEL_MIA_ATTACKS)}
    assert pairs == expected and len(df) == len(expected)
    assert df.value.between(0, 1).all()
    by = df.set_index(["metric", "split"]).value
    comps = [by[(m, split_of[r])] for m, r in tofu.MODEL_UTILITY_COMPONENTS]
    assert by[("model_utility", "retain90+world_facts")] == pytest.approx(stats.hmean(comps))
    assert by[("es", "retain90")] > 0.7 and by[("rouge", "retain90")] > 0.8
    assert by[("mia_loss", "forget10_vs_holdout")] > 0.9  # the target still "remembers" forget10
    assert by[("calibrated_es", "forget10")] == pytest.approx(by[("es", "forget10")])  # r = 0
    # each cell equals its metric computed on its own (the wiring: roles, kinds, normalisation)
    forget, retain, wf = (small_benchmark[s] for s in ("forget10", "retain90", "world_facts"))
    alone = {("probability", "retain90"): tofu.answer_probability(model, tok, retain),
             ("probability", "world_facts"): tofu.answer_probability(model, tok, wf, normalised=True),
             ("truth_ratio", "forget10"): tofu.truth_ratio(model, tok, forget, kind="forget"),
             ("truth_ratio", "retain90"): tofu.truth_ratio(model, tok, retain, kind="retain"),
             ("truth_ratio", "world_facts"): tofu.truth_ratio(model, tok, wf, kind="retain",
                                                           base_answer_field="answer"),
             ("es", "retain90"): memorisation.extraction_strength(model, tok, retain),
             ("mia_min_k", "forget10_vs_holdout"): privacy.membership_inference(
                 model, tok, forget, small_benchmark["holdout"], "min_k"),
             ("mia_min_k_plus_plus", "forget10_vs_holdout"): privacy.membership_inference(
                 model, tok, forget, small_benchmark["holdout"], "min_k_plus_plus"),
             ("mia_reference", "forget10_vs_holdout"): privacy.membership_inference(
                 model, tok, forget, small_benchmark["holdout"], "reference", reference_model=micro_retain.model)}
    alone[("forget_quality", "forget10")] = tofu.forget_quality(alone[("truth_ratio", "forget10")], reference)
    for cell, result in alone.items():
        assert by[cell] == pytest.approx(result.agg_value, rel=1e-6), cell
    details = df.attrs["details"]
    per = details.per_example
    assert len(per) == sum(len(r.value_by_index) for r in details.results.values())
    assert set(per.query("metric == 'es' and split == 'forget10'").qa_id) == \
        set(small_benchmark["forget10"]["qa_id"])


def test_evaluate_asks_for_the_reference_model_of_the_reference_attack(micro_target, small_benchmark):
    with pytest.raises(InputError, match="reference_model"):
        M.evaluate(micro_target.model, micro_target.tokenizer, small_benchmark, metrics=["mia_reference"])


def test_forget_quality_of_retain_model_against_itself(micro_retain, small_benchmark):
    model, tok = micro_retain.model, micro_retain.tokenizer
    reference = tofu.truth_ratio(model, tok, small_benchmark["forget10"])
    assert tofu.forget_quality(reference, reference).agg_value == 1.0
    df = M.evaluate(model, tok, small_benchmark, metrics=["forget_quality"],
                    retain_truth_ratios=reference)
    assert df.value.tolist() == [1.0]


def test_calibrated_es_against_an_untrained_model(micro_target, random_model, small_benchmark):
    """Mixing the target with random weights: the calibration must move r above 0 to bring the
    retain ES back to 90 % of the target's, and report the forget ES at exactly that r."""
    tok = micro_target.tokenizer
    forget, retain = small_benchmark["forget10"], small_benchmark["retain90"]
    res = memorisation.calibrated_extraction_strength(micro_target.model, random_model, tok, forget, retain)
    r = res.extra["r"]
    assert 0.0 < r <= 1.0
    assert res.extra["retain_es"] >= res.extra["retain_bar"]
    assert all(v < res.extra["retain_bar"] for q, v in res.extra["retain_curve"].items() if q < r)
    again = memorisation.extraction_strength(memorisation.mix_models(micro_target.model, random_model, r), tok, forget)
    assert res.agg_value == pytest.approx(again.agg_value)
