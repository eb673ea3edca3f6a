"""Unit tests for satimp_lab.evaluation.muse (MUSE's VerbMem, KnowMem and PrivLeak): hand-computed
values through a scripted language model whose next token we choose, on a tokenizer in which every
word is one token, and the metrics' edges (an empty continuation, a passage shorter than the
prefix, ties in the membership scores, perfect and no memorisation)."""

from types import SimpleNamespace

import pytest

from satimp_lab.errors import InputError
from satimp_lab.evaluation import muse, privacy
from satimp_lab.evaluation.reading import _prompt_ids
from satimp_lab.data.batching import get_prompt_format
from satimp_lab.models.build import train_tokenizer
from scripted_lm import ScriptedLM, hit as _hit, ids_of as _ids, miss as _miss

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu the red fox cat jumps over lazy "
         "dog foxes jumped zebra blue green sky colour what is Question Answer").split()


@pytest.fixture(scope="module")
def wtok():
    """A byte-level BPE (``models.build.train_tokenizer``) in which each word of WORDS, with or
    without a leading space, is one token."""
    texts = ([" ".join(WORDS), " " + " ".join(reversed(WORDS)), "\n".join(WORDS)] * 4
             + ["Question: what colour is the sky?\nAnswer: blue\n\ngreen"] * 4)
    tok = train_tokenizer(texts, vocab_size=2000)
    for w in WORDS:
        assert len(tok(w, add_special_tokens=False)["input_ids"]) == 1, w
        assert len(tok(" " + w, add_special_tokens=False)["input_ids"]) == 1, w
    return tok


def _reciter(tok, texts, first: bool = True):
    """A model that has memorised every text of ``texts`` word for word (BOS first). ``first=False``:
    all but the first word, which the BOS alone cannot tell apart between texts (a scripted prefix
    has one next token), so that every passage's first token is missed alike."""
    model = ScriptedLM(len(tok), tok.pad_token_id)
    for t in texts:
        seq = [tok.bos_token_id] + _ids(tok, t)
        model.add(seq, positions=None if first else set(range(2, len(seq))))
    return model


PASSAGES = ["alpha bravo charlie delta the red fox jumps over the lazy dog",
            "echo foxtrot golf hotel the fox jumps",
            "india juliet kilo lima mike november oscar papa quebec romeo"]


# ----------------------------------------------------------------------------------------------
# ROUGE-L F1, by hand


def test_rouge_l_f1_by_hand():
    # LCS("the red cat jumps", "the red fox jumps over the lazy dog") = 3: P = 3/4, R = 3/8
    assert muse.rouge_l_f1_scores(["the red cat jumps"], ["the red fox jumps over the lazy dog"]) == [0.5]
    # no stemmer: only "the" matches (the stemmer would make it 1)
    assert muse.rouge_l_f1_scores(["the foxes jumped"], ["the fox jumps"]) == [pytest.approx(1 / 3)]
    assert muse.rouge_l_f1_scores(["the foxes jumped"], ["the fox jumps"], use_stemmer=True) == [1.0]
    assert muse.rouge_l_f1_scores(["The Fox, jumps!"], ["the fox jumps"]) == [1.0]  # case and punctuation
    assert muse.rouge_l_f1_scores(["", "fox"], ["the fox", "..."]) == [0.0, 0.0]  # nothing to match
    with pytest.raises(ValueError):
        muse.rouge_l_f1_scores(["a"], [])


# ----------------------------------------------------------------------------------------------
# VerbMem


def _rows(texts, start=0):
    return [{"text": t, "doc_id": start + i} for i, t in enumerate(texts)]


def test_verbmem_of_perfect_memorisation_is_one(wtok):
    res = muse.verbatim_memorization(_reciter(wtok, PASSAGES), wtok, _rows(PASSAGES), prefix_tokens=4)
    assert res.name == "verbmem" and res.agg_value == 1.0
    assert res.value_by_index == {0: 1.0, 1: 1.0, 2: 1.0}
    assert res.extra["references"][0].split() == "the red fox jumps over the lazy dog".split()
    assert res.extra["generations"] == res.extra["references"]
    assert res.extra["n"] == 3 and res.extra["n_skipped"] == 0


def test_verbmem_compares_the_same_length_budget(wtok):
    # the third passage continues with 6 words; a budget of 3 cuts the reference and the recital alike
    model = _reciter(wtok, PASSAGES)
    res = muse.verbatim_memorization(model, wtok, _rows(PASSAGES), prefix_tokens=4, max_new_tokens=3)
    assert res.extra["references"][2].split() == ["mike", "november", "oscar"]
    assert res.extra["generations"][2] == res.extra["references"][2] and res.agg_value == 1.0
    # a model that recites the passage and runs on past its end is scored on the passage's length
    last = [wtok.bos_token_id] + _ids(wtok, PASSAGES[1])
    model.add(last + _ids(wtok, " zebra zebra zebra"))
    assert muse.verbatim_memorization(model, wtok, _rows(PASSAGES), prefix_tokens=4).value_by_index[1] == 1.0


def test_verbmem_reads_the_first_training_block(wtok):
    # a block of 8 tokens is the BOS and 7 text tokens: "mike november oscar" follow the 4-token prefix
    model = _reciter(wtok, PASSAGES)
    res = muse.verbatim_memorization(model, wtok, _rows(PASSAGES), prefix_tokens=4, max_length=8)
    assert res.extra["references"][2].split() == ["mike", "november", "oscar"] and res.extra["max_length"] == 8
    assert res.extra["references"][1].split() == ["the", "fox", "jumps"] and res.agg_value == 1.0
    model.config = SimpleNamespace(max_position_embeddings=8)  # the default: the model's positions
    assert muse.verbatim_memorization(model, wtok, _rows(PASSAGES), prefix_tokens=4).extra["references"] \
        == res.extra["references"]
    with pytest.raises(InputError, match="max_length"):
        muse.verbatim_memorization(model, wtok, _rows(PASSAGES), max_length=1)


def test_verbmem_of_partial_continuations_by_hand(wtok):
    model = ScriptedLM(len(wtok), wtok.pad_token_id)
    bos, eos = wtok.bos_token_id, wtok.eos_token_id
    model.add([bos] + _ids(wtok, "alpha bravo charlie delta") + _ids(wtok, " the red cat jumps") + [eos])
    model.add([bos] + _ids(wtok, "echo foxtrot golf hotel") + _ids(wtok, " the foxes jumped"))
    res = muse.verbatim_memorization(model, wtok, _rows(PASSAGES[:2]), prefix_tokens=4)
    assert res.extra["generations"] == {0: " the red cat jumps", 1: " the foxes jumped"}
    # F1 = 2PR/(P+R): 1/2 (recall: 3/8) and 1/3 without stemming (with it: 1)
    assert res.value_by_index == {0: 0.5, 1: pytest.approx(1 / 3)}
    assert res.agg_value == pytest.approx((0.5 + 1 / 3) / 2)


def test_verbmem_of_nothing_memorised_is_zero(wtok):
    model = ScriptedLM(len(wtok), _ids(wtok, " zebra")[0])  # always "zebra": no word in common
    res = muse.verbatim_memorization(model, wtok, _rows(PASSAGES), prefix_tokens=4)
    assert res.agg_value == 0.0 and set(res.value_by_index.values()) == {0.0}
    assert res.extra["generations"][0].split() == ["zebra"] * 8


def test_an_empty_continuation_scores_zero(wtok):
    for default in (wtok.eos_token_id, wtok.pad_token_id):  # the first new token ends the continuation
        res = muse.verbatim_memorization(ScriptedLM(len(wtok), default), wtok, _rows(PASSAGES), prefix_tokens=4)
        assert res.extra["generations"] == {0: "", 1: "", 2: ""}
        assert res.value_by_index == {0: 0.0, 1: 0.0, 2: 0.0}


def test_a_passage_not_longer_than_the_prefix_is_skipped_and_counted(wtok):
    rows = _rows(PASSAGES) + [{"text": "sierra tango uniform victor", "doc_id": 7},  # 4 tokens: no continuation
                              {"text": "whiskey xray yankee zulu alpha", "doc_id": 8}]  # 5: one token to continue
    model = _reciter(wtok, [r["text"] for r in rows])
    res = muse.verbatim_memorization(model, wtok, rows, prefix_tokens=4)
    assert res.extra["skipped"] == {7: 4} and res.extra["n_skipped"] == 1 and res.extra["n"] == 4
    assert set(res.value_by_index) == {0, 1, 2, 8} and res.value_by_index[8] == 1.0
    with pytest.raises(InputError, match="text row 7 has 4 tokens"):
        muse.verbatim_memorization(model, wtok, rows, prefix_tokens=4, on_short="raise")
    with pytest.raises(InputError, match="no passage has more than prefix_tokens"):
        muse.verbatim_memorization(model, wtok, rows[3:4], prefix_tokens=4)


def test_verbmem_refuses_bad_rows_and_settings(wtok):
    model = _reciter(wtok, PASSAGES)
    for rows, named in (([], "empty"), ([{"text": "  "}], "text row 0"), ([{"doc_id": 3}], "text row 3"),
                        (_rows(PASSAGES[:1]) * 2, "repeats"), ([{"text": "alpha", "doc_id": -1}], "doc_id")):
        with pytest.raises(InputError, match=named):
            muse.verbatim_memorization(model, wtok, rows)
    with pytest.raises(InputError, match="prefix_tokens"):
        muse.verbatim_memorization(model, wtok, _rows(PASSAGES), prefix_tokens=0)
    with pytest.raises(InputError, match="on_short"):
        muse.verbatim_memorization(model, wtok, _rows(PASSAGES), on_short="drop")


# ----------------------------------------------------------------------------------------------
# KnowMem


def _answerer(tok, pairs):
    """Answers each question with the given text (then EOS), in the ``"qa"`` format."""
    fmt, model = get_prompt_format("qa"), ScriptedLM(len(tok), tok.pad_token_id)
    for question, said in pairs:
        model.add(_prompt_ids(tok, fmt, question) + _ids(tok, " " + said) + [tok.eos_token_id])
    return model


def test_knowmem_by_hand(wtok):
    rows = [{"question": "alpha bravo", "answer": "red fox jumps over the lazy dog", "qa_id": 5},
            {"question": "charlie delta", "answer": "blue sky", "qa_id": 6},
            {"question": "echo foxtrot", "answer": "blue", "qa_id": 7},
            {"question": "golf hotel", "answer": "zebra", "qa_id": 8}]
    model = _answerer(wtok, [("alpha bravo", "red cat jumps"), ("charlie delta", "blue sky"),
                             ("echo foxtrot", "blue\n\ngreen")])  # "golf hotel": pad first, an empty answer
    res = muse.knowledge_memorization(model, wtok, rows)
    assert res.name == "knowmem"
    assert res.extra["generations"] == {5: "red cat jumps", 6: "blue sky", 7: "blue", 8: ""}
    # LCS("red cat jumps", 7 words) = 2: P = 2/3, R = 2/7, F1 = 0.4; MUSE's "\n\n" cut makes row 7 exact
    assert res.value_by_index == {5: pytest.approx(0.4), 6: 1.0, 7: 1.0, 8: 0.0}
    assert res.agg_value == pytest.approx(2.4 / 4)


def test_knowmem_refuses_rows_without_an_answer(wtok):
    with pytest.raises(InputError, match="qa_id 0"):
        muse.knowledge_memorization(_answerer(wtok, []), wtok, [{"question": "alpha"}])
    with pytest.raises(InputError, match="empty"):
        muse.knowledge_memorization(_answerer(wtok, []), wtok, [])


# ----------------------------------------------------------------------------------------------
# min-k% on passages, the AUC and PrivLeak


def test_min_k_of_a_passage_at_k_04_by_hand(wtok):
    text = "india juliet kilo lima mike november oscar papa quebec romeo"  # 10 tokens, each scored
    seq = [wtok.bos_token_id] + _ids(wtok, text)
    model = ScriptedLM(len(wtok), wtok.pad_token_id)
    model.add(seq, positions=set(range(2, 10)))  # the first and the last token missed, 8 hit
    scores = muse.text_min_k_scores(model, wtok, [{"text": text, "doc_id": 3}])
    # k = 0.4: the 4 lowest of 10 = the 2 misses and 2 hits (k = 0.2 would take the 2 misses; dropping
    # the last token, as open-unlearning does, the 3 lowest of 9 = 1 miss and 2 hits)
    assert scores == {3: pytest.approx(-(2 * _miss(wtok) + 2 * _hit(wtok)) / 4)}
    assert muse.text_min_k_scores(model, wtok, [{"text": text}], k=0.2) == {0: pytest.approx(-_miss(wtok))}


def test_min_k_pools_the_blocks_of_a_passage(wtok):
    rows = _rows(PASSAGES)
    whole = muse.text_min_k_scores(ScriptedLM(len(wtok), wtok.pad_token_id), wtok, rows)
    model = ScriptedLM(len(wtok), wtok.pad_token_id)
    blocks = muse.text_min_k_scores(model, wtok, rows, max_length=4)
    model.config = SimpleNamespace(max_position_embeddings=4)  # the default: the model's positions
    assert muse.text_min_k_scores(model, wtok, rows) == blocks
    assert set(blocks) == set(whole) == {0, 1, 2}
    assert blocks == pytest.approx(whole)
    assert whole == pytest.approx({i: -_miss(wtok) for i in range(3)})


def test_min_k_reads_every_block_of_a_passage(wtok):
    """Blocks of 3 text tokens behind the BOS: the first block memorised, the other three not; at
    k = 1 the score is the mean over all 10 tokens (3 hits, 7 misses), not one block's."""
    text = PASSAGES[2]  # 10 tokens
    ids = _ids(wtok, text)
    model = ScriptedLM(len(wtok), wtok.pad_token_id)
    model.add([wtok.bos_token_id] + ids[:3])
    scores = muse.text_min_k_scores(model, wtok, [{"text": text, "doc_id": 0}], k=1.0, max_length=4)
    assert scores == {0: pytest.approx(-(3 * _hit(wtok) + 7 * _miss(wtok)) / 10)}


def test_the_auc_counts_a_tie_as_one_half():
    assert privacy.mia_auc([1.0, 2.0], [2.0, 3.0]) == pytest.approx(3.5 / 4)
    assert privacy.mia_auc([2.0, 2.0], [2.0, 2.0, 2.0]) == 0.5
    assert privacy.mia_auc({0: 1.0, 1: 1.0}, {10: 1.0, 11: 3.0}) == pytest.approx(3 / 4)


FORGET = ["alpha bravo charlie delta echo", "foxtrot golf hotel india juliet"]
HOLDOUT = ["kilo lima mike november oscar", "papa quebec romeo sierra tango"]


def test_privleak_of_passages_by_hand(wtok):
    forget, holdout = _rows(FORGET), _rows(HOLDOUT, start=10)
    # unlearned: still recites both forget passages, and the second holdout one; retrained: that one only
    unlearned = _reciter(wtok, FORGET + HOLDOUT[1:], first=False)
    retrained = _reciter(wtok, HOLDOUT[1:], first=False)
    # min-k% (k = 0.4: the 2 lowest of 5 tokens) of a recited passage (its first token missed, 4 hit)
    # and of an unknown one (5 missed)
    low, high = -(_miss(wtok) + _hit(wtok)) / 2, -_miss(wtok)
    mia = muse.text_membership_inference(unlearned, wtok, forget, holdout)
    assert mia.value_by_index == {0: pytest.approx(low), 1: pytest.approx(low), 10: pytest.approx(high),
                                  11: pytest.approx(low)}
    # pairs (member, non-member): vs 10 both won, vs 11 both tied -> (2 + 2 x 1/2) / 4
    assert mia.agg_value == 0.75 and mia.extra["auc_muse"] == 0.25
    assert mia.extra["member_ids"] == [0, 1] and mia.extra["nonmember_ids"] == [10, 11]
    res = muse.text_privleak(unlearned, wtok, forget, holdout, retain_model=retrained)
    # retrained: vs 10 both tied, vs 11 both lost -> AUC 1/4; MUSE's AUCs 0.25 and 0.75
    assert res.extra["auc"] == 0.75 and res.extra["auc_ref"] == 0.25
    assert res.extra["auc_muse"] == 0.25 and res.extra["auc_ref_muse"] == 0.75
    assert res.agg_value == pytest.approx((0.25 - 0.75) / 0.75 * 100)  # -66.7: under-unlearned
    assert res.name == "privleak" and res.value_by_index == mia.value_by_index
    assert res.extra["k"] == 0.4 and res.extra["mia_ref"].agg_value == 0.25
    # against a given AUC (open-unlearning's fallback 0.5): (0.25 - 0.5) / 0.5
    assert muse.text_privleak(unlearned, wtok, forget, holdout, auc_ref=0.5).agg_value == pytest.approx(-50.0)
    # the retrained model against itself: 0
    assert muse.text_privleak(retrained, wtok, forget, holdout, retain_model=retrained).agg_value == 0.0


def test_privleak_refuses_what_it_cannot_compute(wtok):
    model, forget, holdout = _reciter(wtok, FORGET), _rows(FORGET), _rows(HOLDOUT, start=10)
    with pytest.raises(InputError, match="neither"):
        muse.text_privleak(model, wtok, forget, holdout)
    with pytest.raises(InputError, match="both"):
        muse.text_privleak(model, wtok, forget, holdout, retain_model=model, auc_ref=0.5)
    with pytest.raises(InputError, match="auc_ref = 1"):
        muse.text_privleak(model, wtok, forget, holdout, auc_ref=1.0)
    with pytest.raises(InputError, match="AUC in"):
        muse.text_privleak(model, wtok, forget, holdout, auc_ref=1.5)
    with pytest.raises(InputError, match="share doc_id"):
        muse.text_privleak(model, wtok, forget, _rows(HOLDOUT), auc_ref=0.5)
    with pytest.raises(InputError, match="k must be"):
        muse.text_min_k_scores(model, wtok, forget, k=0.0)


# ----------------------------------------------------------------------------------------------
# inside evaluate: the registry's compute functions


def test_the_compute_functions_read_an_evaluation(wtok):
    long_text = " ".join(WORDS)  # more than the default 32-token prefix
    forget, holdout = _rows([long_text] + FORGET), _rows(HOLDOUT, start=10)
    qa = [{"question": "alpha bravo", "answer": "blue sky"}]
    model = _reciter(wtok, [long_text] + FORGET)
    model.add(_prompt_ids(wtok, get_prompt_format("qa"), "alpha bravo") + _ids(wtok, " blue sky")
              + [wtok.eos_token_id])
    ev = SimpleNamespace(model=model, tokenizer=wtok, prompt_format="qa", batch_size=2, max_new_tokens=128,
                         rows={"forget": forget, "holdout": holdout, "forget_qa": qa},
                         splits={"forget": "forget10", "holdout": "holdout"}, retain_model=None)
    verbmem = muse._verbmem_on(ev, "forget")  # MUSE's budgets: the two 5-token passages are skipped
    assert verbmem.value_by_index == {0: 1.0} and verbmem.extra["skipped"] == {1: 5, 2: 5}
    assert verbmem.extra["prefix_tokens"] == 32 and verbmem.extra["max_new_tokens"] == 128
    knowmem = muse._knowmem_on(ev, "forget_qa")
    assert knowmem.value_by_index == {0: 1.0} and knowmem.extra["max_new_tokens"] == 32
    with pytest.raises(InputError, match="retain_model"):
        muse._privleak_of(ev)
    ev.retain_model = _reciter(wtok, [])
    label, leak = muse._privleak_of(ev)
    direct = muse.text_privleak(model, wtok, forget, holdout, retain_model=ev.retain_model)
    assert label == "forget10_vs_holdout" and leak.agg_value == direct.agg_value
    ev.retain_model, ev.privleak_auc_ref = None, 0.5
    assert muse._privleak_of(ev)[1].agg_value == muse.text_privleak(model, wtok, forget, holdout,
                                                                      auc_ref=0.5).agg_value
