"""Unit tests for satimp_lab.evaluation.multiple_choice (lm-eval's zero-shot multiple-choice ``acc``
and ``acc_norm``): hand-computed log-likelihoods through a scripted language model whose next token
we choose (``scripted_lm.ScriptedLM``, shared with test_muse_metrics.py), on a tokenizer in which every
word is one token; the letter convention (WMDP, MMLU) against the choice texts; ties; lm-eval's
split of a context and continuation that the tokenizer merges; bad rows."""

from types import SimpleNamespace

import pytest

from satimp_lab.data.batching import PromptFormat
from satimp_lab.errors import InputError
from satimp_lab.evaluation import multiple_choice as mc
from satimp_lab.models.build import train_tokenizer
from scripted_lm import ScriptedLM, hit as _hit, ids_of as _ids, miss as _miss

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima the red fox cat jumps over "
         "lazy dog foxes zebra blue green sky colour what is Question Answer A B C D").split()


@pytest.fixture(scope="module")
def wtok():
    """A byte-level BPE (``models.build.train_tokenizer``) in which each word of WORDS, with or
    without a leading space, is one token ("A", " A", ... included)."""
    texts = ([" ".join(WORDS), " " + " ".join(reversed(WORDS)), "\n".join(WORDS)] * 4
             + ["Question: what colour is the sky?\nA. blue\nB. red\nC. green\nD. zebra\nAnswer: A"] * 4)
    tok = train_tokenizer(texts, vocab_size=2000)
    for w in WORDS:
        assert len(tok(w, add_special_tokens=False)["input_ids"]) == 1, w
        assert len(tok(" " + w, add_special_tokens=False)["input_ids"]) == 1, w
    return tok


def _saying(tok, pairs):
    """A model that continues each context (its text, written out) with the given text, word by word;
    every other token is missed (the pad is predicted)."""
    model = ScriptedLM(len(tok), tok.pad_token_id)
    for context, said in pairs:
        model.add([tok.bos_token_id] + _ids(tok, context) + _ids(tok, said))
    return model


COLOURS = ["red", "blue", "green", "zebra"]
TEXT_ROWS = [{"qa_id": 10, "question": "alpha bravo", "choices": COLOURS, "answer": 1},
             {"qa_id": 11, "question": "charlie delta", "choices": COLOURS, "answer": 0},
             {"qa_id": 12, "question": "echo foxtrot", "choices": ["red fox", "lazy dog", "sky", "cat"], "answer": 1}]


def _text_model(tok):
    # contexts in the "qa" format, written out by hand
    return _saying(tok, [("Question: alpha bravo\nAnswer:", " blue"), ("Question: charlie delta\nAnswer:", " green"),
                         ("Question: echo foxtrot\nAnswer:", " lazy dog")])


# ----------------------------------------------------------------------------------------------
# acc and acc_norm by hand


def test_acc_of_choice_texts_by_hand(wtok):
    res = mc.multiple_choice_accuracy(_text_model(wtok), wtok, TEXT_ROWS, choice_format="texts")
    hit, miss = _hit(wtok), _miss(wtok)
    assert res.name == "mc_accuracy"
    lls = res.extra["loglikelihoods"]
    assert lls[10] == pytest.approx([miss, hit, miss, miss])
    assert lls[11] == pytest.approx([miss, miss, hit, miss])
    # "red fox": " red" missed, then " fox" (unscripted) missed; "lazy dog": both scripted
    assert lls[12] == pytest.approx([2 * miss, 2 * hit, miss, miss])
    assert res.extra["n_tokens"] == {10: [1, 1, 1, 1], 11: [1, 1, 1, 1], 12: [2, 2, 1, 1]}
    assert res.extra["pred"] == {10: 1, 11: 2, 12: 1}
    assert res.value_by_index == {10: 1.0, 11: 0.0, 12: 1.0}
    assert res.agg_value == res.extra["acc"] == pytest.approx(2 / 3)
    assert res.extra["n"] == 3 and res.extra["chance"] == 0.25
    assert res.extra["is_greedy"][12] == [False, True, False, False]
    assert res.extra["choice_format"] == "texts" and res.extra["prompt_format"] == "qa"


def test_acc_norm_divides_by_the_choice_length_in_characters(wtok):
    rows = [{"qa_id": 0, "question": "golf hotel", "choices": ["cat", "the lazy dog jumps"], "answer": 1},
            {"qa_id": 1, "question": "india juliet", "choices": ["red", "blue"], "answer": 1},
            {"qa_id": 2, "question": "kilo lima", "choices": ["cat", "red fox"], "answer": 1}]
    # row 0: " the lazy dog" scripted (3 hits), " jumps" missed; row 1: both choices missed alike
    model = _saying(wtok, [("Question: golf hotel\nAnswer:", " the lazy dog")])
    res = mc.multiple_choice_accuracy(model, wtok, rows, choice_format="texts")
    hit, miss = _hit(wtok), _miss(wtok)
    assert res.extra["loglikelihoods"][0] == pytest.approx([miss, 3 * hit + miss])
    # acc: miss (-6.40) > 3 hit + miss (-10.6); acc_norm: miss / 3 (-2.13) < (3 hit + miss) / 18 (-0.59)
    assert miss > 3 * hit + miss and miss / 3 < (3 * hit + miss) / 18
    # row 1: equal log-likelihoods; per character "blue" (4) beats "red" (3)
    # row 2: all missed, miss (3 characters) against 2 miss ("red fox": 7 characters, 2 tokens): per
    # character 2/7 < 1/3 picks "red fox"; counting the delimiter (miss/4 = 2 miss/8) or normalising
    # per token (miss/1 = 2 miss/2) would tie, and the tie would pick "cat"
    assert res.extra["loglikelihoods"][2] == pytest.approx([miss, 2 * miss])
    assert res.extra["pred"] == {0: 0, 1: 0, 2: 0} and res.extra["pred_norm"] == {0: 1, 1: 1, 2: 1}
    assert res.value_by_index == {0: 0.0, 1: 0.0, 2: 0.0} and res.agg_value == 0.0
    assert res.extra["acc_norm_by_index"] == {0: 1.0, 1: 1.0, 2: 1.0} and res.extra["acc_norm"] == 1.0
    assert res.extra["acc_bytes"] == 1.0  # ASCII: a character is a byte
    assert res.extra["chance"] == 0.5


def test_ties_go_to_the_first_choice(wtok):
    """lm-eval's ``np.argmax``: of equal log-likelihoods the first choice is taken."""
    rows = [{"qa_id": 0, "question": "alpha", "choices": ["red", "cat", "sky"], "answer": 0},
            {"qa_id": 1, "question": "bravo", "choices": ["red", "cat", "sky"], "answer": 2},
            {"qa_id": 2, "question": "charlie", "choices": ["red", "cat"], "answer": 1}]
    res = mc.multiple_choice_accuracy(ScriptedLM(len(wtok), wtok.pad_token_id), wtok, rows, choice_format="texts")
    assert res.extra["pred"] == res.extra["pred_norm"] == {0: 0, 1: 0, 2: 0}  # all three letters long
    assert res.value_by_index == {0: 1.0, 1: 0.0, 2: 0.0}
    assert res.extra["chance"] == pytest.approx((1 / 3 + 1 / 3 + 1 / 2) / 3)


# ----------------------------------------------------------------------------------------------
# the letter convention (WMDP, MMLU)


SKY = {"qa_id": 4, "question": "  what colour is the sky? ", "choices": ["blue", "red", "green", "zebra"], "answer": 2}
LISTED = "what colour is the sky?\nA. blue\nB. red\nC. green\nD. zebra"


def test_the_letter_context_lists_the_choices_as_lm_eval_does():
    assert mc.mc_context(SKY["question"], SKY["choices"]) == (
        f"Question: {LISTED}\nAnswer:", [" A", " B", " C", " D"])
    # lm-eval's WMDP doc_to_text, to the character
    assert mc.mc_context(SKY["question"], SKY["choices"], prompt_format=mc.LM_EVAL_PROMPT) == (
        f"{LISTED}\nAnswer:", [" A", " B", " C", " D"])
    assert mc.mc_context(SKY["question"], SKY["choices"], "texts") == (
        f"Question: {SKY['question']}\nAnswer:", [" blue", " red", " green", " zebra"])
    with pytest.raises(InputError, match="at most 26"):
        mc.mc_context("q", ["x"] * 27)


def test_the_letter_convention_scores_the_letters(wtok):
    model = _saying(wtok, [(f"Question: {LISTED}\nAnswer:", " C"), (f"{LISTED}\nAnswer:", " B")])
    res = mc.multiple_choice_accuracy(model, wtok, [SKY])
    hit, miss = _hit(wtok), _miss(wtok)
    assert res.extra["loglikelihoods"][4] == pytest.approx([miss, miss, hit, miss])
    assert res.extra["n_tokens"][4] == [1, 1, 1, 1] and res.extra["choice_format"] == "letters"
    assert res.value_by_index == {4: 1.0} and res.extra["acc_norm"] == 1.0
    # lm-eval's exact context is another prompt: there the model says B
    res = mc.multiple_choice_accuracy(model, wtok, [SKY], prompt_format=mc.LM_EVAL_PROMPT)
    assert res.extra["pred"] == {4: 1} and res.agg_value == 0.0 and res.extra["prompt_format"] == "lm_eval"
    # the choice texts after the bare question: nothing scripted, four one-token misses, the first taken
    res = mc.multiple_choice_accuracy(model, wtok, [SKY], choice_format="texts")
    assert res.extra["pred"] == {4: 0} and res.agg_value == 0.0


# ----------------------------------------------------------------------------------------------
# tokenisation: lm-eval's split of context and continuation


def test_a_continuation_merged_into_the_context_is_split_as_lm_eval_splits_it(wtok):
    bos = wtok.bos_token_id
    # no merge: the continuation's own tokens
    assert mc.encode_choice(wtok, "the red", " fox jumps") == ([bos] + _ids(wtok, "the red"), _ids(wtok, " fox jumps"))
    # "the red fo" is [the, " red", " ", "fo"]; "the red fox jumps over" is [the, " red", " fox", " jumps", " over"]:
    # the continuation is the whole's tokens after the context's 4, read after the context's own tokens
    assert len(_ids(wtok, "the red fo")) == 4
    assert mc.encode_choice(wtok, "the red fo", "x jumps over") == ([bos] + _ids(wtok, "the red fo"), _ids(wtok, " over"))
    assert mc.encode_choice(wtok, "the red fo", "x jumps over", add_bos=False)[0] == _ids(wtok, "the red fo")
    # trailing spaces of the context move to the continuation
    assert mc.encode_choice(wtok, "the red ", "fox") == ([bos] + _ids(wtok, "the red"), _ids(wtok, " fox"))
    # the metric scores the same tokens: a raw format whose delimiter is empty
    raw = PromptFormat("raw", "{question}", "")
    model = _saying(wtok, [("the red fo", " lazy")])
    rows = [{"question": "the red fo", "choices": ["x jumps over", "x jumps lazy"], "answer": 1}]
    res = mc.multiple_choice_accuracy(model, wtok, rows, "texts", prompt_format=raw)
    assert res.extra["n_tokens"] == {0: [1, 1]} and res.extra["pred"] == {0: 1}
    assert res.extra["loglikelihoods"][0] == pytest.approx([_miss(wtok), _hit(wtok)])
    # "the red fox" + "es" is [the, " red", " foxes"]: nothing of the continuation's own is left
    with pytest.raises(InputError, match="row qa_id 0: choice 1 .* leaves no token"):
        mc.multiple_choice_accuracy(model, wtok, [{"question": "the red fox", "choices": ["jumps", "es"],
                                                   "answer": 0}], "texts", prompt_format=raw)


def test_a_trailing_space_in_the_prompt_is_the_delimiter(wtok):
    model = _text_model(wtok)
    spaced = PromptFormat("spaced", "Question: {question}\nAnswer: ", "")
    a = mc.multiple_choice_accuracy(model, wtok, TEXT_ROWS, "texts")
    b = mc.multiple_choice_accuracy(model, wtok, TEXT_ROWS, "texts", prompt_format=spaced)
    assert a.extra["loglikelihoods"] == b.extra["loglikelihoods"] and a.value_by_index == b.value_by_index


# ----------------------------------------------------------------------------------------------
# batches, limits and bad input


def test_the_batch_size_does_not_change_the_results(wtok):
    model = _text_model(wtok)
    rows = TEXT_ROWS + [{"qa_id": 20, "question": "golf hotel", "choices": ["cat", "the lazy dog jumps"], "answer": 1}]
    base = mc.multiple_choice_accuracy(model, wtok, rows, "texts", batch_size=1)
    for batch_size in (2, 3, 5, 64):  # batches that cut rows' choices apart, and one batch
        res = mc.multiple_choice_accuracy(model, wtok, rows, "texts", batch_size=batch_size)
        assert res.value_by_index == base.value_by_index and res.extra == base.extra, batch_size


def test_a_request_longer_than_the_model_window_raises(wtok):
    model = _text_model(wtok)
    model.config = SimpleNamespace(max_position_embeddings=6)
    # [BOS] Question : " alpha" " bravo" \n Answer : " red": 9 tokens
    with pytest.raises(InputError, match="row qa_id 10: choice 0 is 9 tokens .* max_length = 6"):
        mc.multiple_choice_accuracy(model, wtok, TEXT_ROWS, "texts")
    assert mc.multiple_choice_accuracy(model, wtok, TEXT_ROWS, "texts", max_length=64).agg_value == pytest.approx(2 / 3)


GOOD = {"question": "alpha", "choices": ["red", "blue"], "answer": 0}


@pytest.mark.parametrize("rows, named", [
    ([], "empty"),
    ([GOOD, {"question": "bravo", "answer": 0}], r"row 1 \(qa_id 1\): field 'choices'"),
    ([{**GOOD, "choices": []}], r"row 0 \(qa_id 0\): field 'choices'"),
    ([{**GOOD, "choices": ["red"]}], "at least 2"),
    ([{**GOOD, "choices": "red blue"}], "field 'choices'"),
    ([{**GOOD, "choices": ["red", " "]}], "'choices' item 1"),
    ([{**GOOD, "answer": 2}], r"row 0 \(qa_id 0\): field 'answer' .*\(0 to 1\)"),
    ([{**GOOD, "answer": -1}], "field 'answer'"),
    ([{**GOOD, "answer": True}], "field 'answer'"),
    ([{**GOOD, "answer": "red"}], "field 'answer'"),
    ([{**GOOD, "qa_id": 3}, {**GOOD, "qa_id": 5}, {**GOOD, "qa_id": 3}], r"row 2 \(qa_id 3\): .* repeats row 0"),
    ([{**GOOD, "qa_id": "a"}], "row 0: field 'qa_id'"),
    ([{**GOOD, "question": ""}], "field 'question'"),
])
def test_bad_rows_raise_naming_the_row(wtok, rows, named):
    with pytest.raises(InputError, match=named):
        mc.multiple_choice_accuracy(ScriptedLM(len(wtok), wtok.pad_token_id), wtok, rows)


def test_bad_settings_raise(wtok):
    model = ScriptedLM(len(wtok), wtok.pad_token_id)
    with pytest.raises(InputError, match="choice_format"):
        mc.multiple_choice_accuracy(model, wtok, [GOOD], choice_format="words")
    with pytest.raises(InputError, match="batch_size"):
        mc.multiple_choice_accuracy(model, wtok, [GOOD], batch_size=0)
    with pytest.raises(InputError, match="mismatched tokenizer"):
        mc.multiple_choice_accuracy(ScriptedLM(len(wtok) * 2, 0), wtok, [GOOD])


def test_the_model_mode_is_restored(wtok):
    model = _text_model(wtok).train()
    mc.multiple_choice_accuracy(model, wtok, TEXT_ROWS, "texts")
    assert model.training


def test_the_compute_function_reads_an_evaluation(wtok):
    model = _saying(wtok, [(f"Question: {LISTED}\nAnswer:", " C")])
    ev = SimpleNamespace(model=model, tokenizer=wtok, prompt_format="qa", batch_size=2, rows={"forget_mc": [SKY]})
    res = mc._mc_accuracy_on(ev, "forget_mc")
    assert res.value_by_index == {4: 1.0} and res.extra["choice_format"] == "letters"
