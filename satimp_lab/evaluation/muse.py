"""The MUSE family: VerbMem, KnowMem and PrivLeak on raw-text passages and question-answer rows
(Shi et al. 2024, "MUSE: Machine Unlearning Six-Way Evaluation for Language Models"; our
conventions and departures: docs/methods.md, section "MUSE metrics").

    verbatim_memorization   VerbMem: greedy continuation of a passage's first tokens, ROUGE-L F1
                            against the true continuation (lower = forgotten verbatim)
    knowledge_memorization  KnowMem: greedy answers to questions, ROUGE-L F1 against the answer
                            (on D_f lower = knowledge forgotten; on D_r the utility to keep)
    text_min_k_scores       min-k% prob (k = 0.4) of every passage, every text token scored
    text_membership_inference   its AUC, forget passages (members) against holdout passages
    text_privleak           PrivLeak: that AUC relative to the retrained model's, in percent

Every function returns a :class:`~satimp_lab.evaluation.reading.MetricResult` (VerbMem and the
text MIA key their per-example values by the passage's ``doc_id``, KnowMem by ``qa_id``); the
ROUGE values are in [0, 1] (MUSE's tables print them x 100).

Sources, read for this module. MUSE's own code, ``swj0419/muse_bench`` (commit ``fcd6651``):
``metrics/verbmem.py`` (greedy, ``max_new_tokens=128``, the true continuation cut to its first 128
tokens), ``metrics/knowmem.py`` (greedy, ``max_new_tokens=32``, the answer cut before ``"\\n\\n"``,
``"\\nQuestion"`` and ``"Question:"``), ``metrics/logger.py`` (``RougeScorer(..., use_stemmer=False)``,
the ROUGE-L ``fmeasure``), ``metrics/privleak.py`` (min-k% for k in 0.05 ... 0.6 over every token
after the BOS, ``roc_curve`` / ``auc``) and ``eval.py`` (PrivLeak = (AUC - AUC_retrain) /
AUC_retrain x 100 on the key ``forget_holdout_Min-40%``). open-unlearning
(``locuslab/open-unlearning``, commit ``d3d7cf9``): ``configs/eval/muse_metrics/*.yaml``
(``rouge_type: rougeL_f1``; VerbMem ``max_new_tokens: 128``, KnowMem 32 with the same stop words;
``mia_min_k.yaml`` ``k: 0.4``; ``privleak.yaml`` ``ref_value: 0.5``) and
``src/evals/metrics/privacy.py`` (``privleak``). Two differences between them that matter here:
open-unlearning's ``eval_text_similarity`` (``src/evals/metrics/utils.py``) scores ROUGE with
``use_stemmer=True``; MUSE's logger does not stem, and we follow MUSE. And open-unlearning's
``tokenwise_logprobs`` drops the last labelled token of every sequence (meant for the EOS, which a
MUSE passage does not have); MUSE scores every token, and so do we.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch

from ..data.batching import get_prompt_format
from ..data.families import encode_text_dataset, text_block_source
from ..errors import InputError, check_choice, check_int, check_real
from ..models.reading import read_rows
from .privacy import mia_auc, min_k_score, privleak_against
from .reading import (MetricResult, _as_rows, _eval_mode, _greedy, _qa_id, check_model_tokenizer,
                      generate_answers)

__all__ = ["VERBMEM_PREFIX_TOKENS", "VERBMEM_MAX_NEW_TOKENS", "KNOWMEM_MAX_NEW_TOKENS", "KNOWMEM_STOPWORDS",
           "PRIVLEAK_K", "rouge_l_f1_scores", "verbatim_memorization", "knowledge_memorization",
           "text_min_k_scores", "text_membership_inference", "text_privleak"]

VERBMEM_PREFIX_TOKENS = 32
"""Text tokens of a passage fed as the VerbMem prompt (after the BOS). Our choice, for short
synthetic passages: MUSE ships its prompts already cut (``verbmem/forget.json``, fields ``prompt``
and ``gt``; in the News set of ``jaechan-repo/muse_bench`` commit ``e000038``,
``data/bbc/verbmem/forget.json``, 100 prompts of 611-736 words, several hundred Llama-2 tokens,
each before a ``gt`` of 69-98 words), and neither MUSE's code nor open-unlearning's config has a
prefix length to copy."""

VERBMEM_MAX_NEW_TOKENS = 128
"""VerbMem's continuation budget: MUSE's ``max_new_tokens=128`` (and its ``gt`` cut to 128 tokens);
open-unlearning's ``forget_verbmem_ROUGE.yaml`` the same."""

KNOWMEM_MAX_NEW_TOKENS = 32
"""KnowMem's answer budget: MUSE's ``knowmem_max_new_tokens=32``; open-unlearning the same."""

KNOWMEM_STOPWORDS = ("\n\n", "\nQuestion", "Question:")
"""A KnowMem answer is cut before the first of these (MUSE's ``knowmem.py``; open-unlearning's
``stopwords``)."""

PRIVLEAK_K = 0.4
"""Min-k% at k = 0.4: MUSE's ``forget_holdout_Min-40%`` key and open-unlearning's ``mia_min_k.yaml``."""


# ----------------------------------------------------------------------------------------------
# ROUGE-L F1


@functools.lru_cache(maxsize=2)
def _rouge_scorer(use_stemmer: bool):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)


def rouge_l_f1_scores(predictions: Sequence[str], references: Sequence[str],
                      use_stemmer: bool = False) -> list[float]:
    """ROUGE-L F1 of each prediction against its reference, in [0, 1] (``rouge_score``, as MUSE's
    ``metrics/logger.py``: ``scorer.score(gt, output)["rougeL"].fmeasure``, no stemmer).

    F1 = 2 P R / (P + R), with P = LCS / |prediction tokens| and R = LCS / |reference tokens|;
    ``rouge_score`` lower-cases and keeps runs of ``[a-z0-9]`` as tokens, so punctuation never
    counts. "the red cat jumps" against "the red fox jumps over the lazy dog": LCS 3, P = 3/4,
    R = 3/8, F1 = 1/2 (TOFU's recall would be 3/8). An empty prediction, or a reference without any
    token, scores 0. ``use_stemmer=True`` is open-unlearning's setting ("foxes jumped" then
    matches "fox jumps"). Unequal lengths raise ``ValueError``."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    scorer = _rouge_scorer(bool(use_stemmer))
    return [float(scorer.score(ref, pred)["rougeL"].fmeasure) for pred, ref in zip(predictions, references)]


# ----------------------------------------------------------------------------------------------
# rows


def _text_rows(rows, what: str) -> list[dict]:
    """Text rows as a list of dicts with ``doc_id`` filled in (default: the row's index);
    an empty split, a missing or blank ``text``, a ``doc_id`` that is not an integer >= 0 or
    repeats raise :class:`InputError` naming ``what`` and the row."""
    if rows is None:
        raise InputError(f"{what}: got None instead of a dataset")
    rows = rows.to_list() if hasattr(rows, "to_list") else list(rows)
    if not rows:
        raise InputError(f"{what}: the dataset is empty; a metric of no passages is undefined")
    out, seen = [], set()
    for i, row in enumerate(rows):
        doc_id = row.get("doc_id", i)
        if not (isinstance(doc_id, int) and not isinstance(doc_id, bool) and doc_id >= 0):
            raise InputError(f"{what}: row {i}: field 'doc_id' must be an integer >= 0, got {doc_id!r}")
        if doc_id in seen:
            raise InputError(f"{what}: text row {doc_id}: field 'doc_id' repeats an earlier row's")
        text = row.get("text")
        if not (isinstance(text, str) and text.strip()):
            raise InputError(f"{what}: text row {doc_id}: field 'text' must be a non-empty string, got {text!r}")
        seen.add(doc_id)
        out.append({**row, "doc_id": doc_id})
    return out


def _block_length(model, max_length: int | None, owner: str) -> int | None:
    """``max_length`` if given (an integer >= 2), else the model's ``config.max_position_embeddings``
    (the tiny tiers' ``arch.max_length``, which is also the length their text blocks are trained
    at: ``TierConfig.encode_max_length``), else None (no limit)."""
    check_int(owner, "max_length", max_length, minimum=2, none_ok=True)
    if max_length is None:
        limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        max_length = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    return max_length


# ----------------------------------------------------------------------------------------------
# VerbMem


def _continue(model, tokenizer, prompts: list[list[int]], budgets: list[int], batch_size: int) -> list[str]:
    """Greedy continuation of each prompt (token ids, BOS included), at most ``budgets[i]`` new
    tokens, cut at the first special token (EOS, BOS, pad) and decoded without special tokens:
    :func:`reading.generate_answers`' decoding on given token ids (left-padded batches)."""
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    special = {eos, pad, *getattr(tokenizer, "all_special_ids", ())}
    device = next(model.parameters()).device
    texts: list[str] = []
    with _eval_mode(model):
        for start in range(0, len(prompts), batch_size):
            chunk, limits = prompts[start:start + batch_size], budgets[start:start + batch_size]
            width = max(map(len, chunk))
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in chunk], device=device)
            att = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk], device=device)
            new = _greedy(model, ids, att, max(limits), eos, pad).tolist()
            for toks, limit in zip(new, limits):
                toks = toks[:limit]
                end = next((j for j, t in enumerate(toks) if t in special), len(toks))
                texts.append(tokenizer.decode(toks[:end], skip_special_tokens=True))
    return texts


def verbatim_memorization(model, tokenizer, rows, prefix_tokens: int = VERBMEM_PREFIX_TOKENS,
                          max_new_tokens: int = VERBMEM_MAX_NEW_TOKENS, prompt_format="qa",
                          batch_size: int = 32, on_short: str = "skip",
                          max_length: int | None = None) -> MetricResult:
    """MUSE's VerbMem on forget passages: how much of a passage the model recites from its start.

    ``rows``: text rows (a ``datasets.Dataset`` or a list of dicts) with ``text`` and optionally
    ``doc_id`` (an integer >= 0, default the row's index; the per-example key). Each text is
    tokenised as training tokenises it (``data.families.encode_text``: no special tokens, the BOS
    in front when ``prompt_format`` adds one). The prompt is the BOS and the first
    ``prefix_tokens`` text tokens; the true continuation is the next ``max_new_tokens`` text tokens
    (fewer where the passage ends first: MUSE cuts its ``gt`` to 128 tokens the same way). The
    model continues greedily for as many tokens as the true continuation has (the same length
    budget: a model that recites the passage and runs on past its end is not penalised for the
    run-on), the continuation is cut at the first special token, and both are decoded without
    special tokens. Only the passage's first block counts, ``max_length`` tokens with the BOS (the
    block ``data.families.encode_text`` trains on; default the model's
    ``config.max_position_embeddings``, the tiny tiers' block length, or no limit): a model trained
    on blocks never saw the text after a block's end behind the text before it. Per passage: ROUGE-L F1 without stemming (:func:`rouge_l_f1_scores`), in
    [0, 1]; 1 = the continuation recited word for word, 0 = no word in common or an empty
    continuation (an EOS first). Aggregate: the mean over the scored passages.

    A passage (its first block) of at most ``prefix_tokens`` text tokens has no continuation to compare with:
    ``on_short="skip"`` (default) leaves it out, its ``doc_id`` and token count in
    ``extra["skipped"]`` (and ``extra["n_skipped"]``); ``on_short="raise"`` raises
    :class:`InputError` naming it. ``extra`` also keeps ``generations`` and ``references``
    ({doc_id: text}), the settings and ``n`` (passages scored).

    Defaults: MUSE's 128-token continuation (``metrics/verbmem.py``; open-unlearning's
    ``forget_verbmem_ROUGE.yaml``); the 32-token prefix is ours (:data:`VERBMEM_PREFIX_TOKENS`).
    Raises :class:`InputError`: bad rows (:func:`_text_rows`), ``prefix_tokens`` < 1,
    ``max_new_tokens`` < 1, ``max_length`` < 2, an unknown ``on_short``, a mismatched tokenizer
    (:func:`reading.check_model_tokenizer`), or no passage longer than the prefix.
    """
    check_int("verbatim_memorization", "prefix_tokens", prefix_tokens, minimum=1)
    check_int("verbatim_memorization", "max_new_tokens", max_new_tokens, minimum=1)
    check_int("verbatim_memorization", "batch_size", batch_size, minimum=1)
    check_choice("verbatim_memorization", "on_short", on_short, ("skip", "raise"))
    rows = _text_rows(rows, "verbmem rows")
    check_model_tokenizer(model, tokenizer)
    fmt = get_prompt_format(prompt_format)
    lead = [tokenizer.bos_token_id] if fmt.add_bos and tokenizer.bos_token_id is not None else []
    block = _block_length(model, max_length, "verbatim_memorization")
    ids_of, prompts, truths, skipped = [], [], [], {}
    for row in rows:
        ids = list(tokenizer(row["text"], add_special_tokens=False)["input_ids"])
        if block is not None:
            ids = ids[:block - len(lead)]
        if len(ids) <= prefix_tokens:
            if on_short == "raise":
                raise InputError(f"verbmem rows: text row {row['doc_id']} has {len(ids)} tokens; VerbMem needs "
                                 f"more than prefix_tokens = {prefix_tokens} (a prefix and a continuation)")
            skipped[row["doc_id"]] = len(ids)
            continue
        ids_of.append(row["doc_id"])
        prompts.append(lead + ids[:prefix_tokens])
        truths.append(ids[prefix_tokens:prefix_tokens + max_new_tokens])
    if not prompts:
        raise InputError(f"verbmem rows: no passage has more than prefix_tokens = {prefix_tokens} tokens "
                         f"(token counts {skipped}); lower prefix_tokens or use longer passages")
    generations = _continue(model, tokenizer, prompts, [len(t) for t in truths], batch_size)
    references = [tokenizer.decode(t, skip_special_tokens=True) for t in truths]
    scores = rouge_l_f1_scores(generations, references)
    return MetricResult("verbmem", float(np.mean(scores)), dict(zip(ids_of, scores)),
                        {"generations": dict(zip(ids_of, generations)), "references": dict(zip(ids_of, references)),
                         "n": len(scores), "skipped": skipped, "n_skipped": len(skipped),
                         "prefix_tokens": prefix_tokens, "max_new_tokens": max_new_tokens,
                         "max_length": block, "rouge": "rougeL_f1", "use_stemmer": False})


# ----------------------------------------------------------------------------------------------
# KnowMem


def _cut_at_stopwords(text: str) -> str:
    """``text`` before the first of :data:`KNOWMEM_STOPWORDS`, stripped (MUSE's
    ``get_prefix_before_words_occur``)."""
    for word in KNOWMEM_STOPWORDS:
        text = text.split(word)[0]
    return text.strip()


def knowledge_memorization(model, tokenizer, rows, question_field: str = "question",
                           answer_field: str = "answer", prompt_format="qa",
                           max_new_tokens: int = KNOWMEM_MAX_NEW_TOKENS, batch_size: int = 32) -> MetricResult:
    """MUSE's KnowMem on question-answer rows (its D_f questions, or D_r's for utility).

    Greedy answers from the prompt alone (:func:`reading.generate_answers`: ``prompt_format``, at
    most ``max_new_tokens`` new tokens, cut at the first special token and at the format's next
    turn), further cut before MUSE's stop words (:data:`KNOWMEM_STOPWORDS`); per row the ROUGE-L
    F1 without stemming (:func:`rouge_l_f1_scores`) against ``answer_field``, in [0, 1], keyed by
    ``qa_id`` (default the row's index). Aggregate: the mean. ``extra["generations"]`` keeps the
    answers. MUSE prompts with a few in-context examples (``"Question: q\\nAnswer: a\\n\\n"``, its
    ``*_qa_icl`` files) because its models read the questions' format only there; ours are trained
    on the ``prompt_format`` and are asked in it, zero-shot.

    Defaults: MUSE's ``knowmem.py`` and open-unlearning's ``{forget,retain}_knowmem_ROUGE.yaml``
    (32 new tokens, ROUGE-L F1; MUSE without stemming). Raises :class:`InputError`: an empty
    split, repeated ``qa_id``, a row whose ``answer_field`` is not a string, a mismatched tokenizer.
    """
    check_int("knowledge_memorization", "max_new_tokens", max_new_tokens, minimum=1)
    rows = _as_rows(rows, "knowmem rows")
    ids = [_qa_id(r, i) for i, r in enumerate(rows)]
    for i, r in zip(ids, rows):
        if not isinstance(r.get(answer_field), str):
            raise InputError(f"knowmem rows: row qa_id {i}: field {answer_field!r} must be a string, "
                             f"got {r.get(answer_field)!r}")
    gens = generate_answers(model, tokenizer, rows, question_field, prompt_format, max_new_tokens, batch_size)
    answers = {i: _cut_at_stopwords(gens[i]) for i in ids}
    scores = rouge_l_f1_scores([answers[i] for i in ids], [r[answer_field] for r in rows])
    return MetricResult("knowmem", float(np.mean(scores)), dict(zip(ids, scores)),
                        {"generations": answers, "n": len(scores), "max_new_tokens": max_new_tokens,
                         "rouge": "rougeL_f1", "use_stemmer": False})


# ----------------------------------------------------------------------------------------------
# PrivLeak on passages


def text_min_k_scores(model, tokenizer, rows, k: float = PRIVLEAK_K, prompt_format="qa",
                      batch_size: int = 32, max_length: int | None = None) -> dict[int, float]:
    """{doc_id: min-k% score} of every text row (:func:`privacy.min_k_score`: minus the mean of the
    ``max(1, int(k*n))`` lowest token log-probabilities, nats; higher = less member-like).

    The passage is read as training reads it (``data.families.encode_text_dataset``: BOS, then
    every text token a label, no EOS; blocks of ``max_length`` tokens, default the model's
    ``config.max_position_embeddings``, the tiny tiers' block length, or one block where the model
    has none), one teacher-forced pass per ``batch_size`` blocks (``models.reading.read_rows``) in
    eval mode; n is every scored token of the passage, its blocks pooled. Every text token counts, as in
    MUSE's ``metrics/privleak.py`` (every token after the BOS); open-unlearning drops the last one
    (its ``tokenwise_logprobs`` takes the last label for an EOS). MUSE rounds the count down
    without the floor of 1 (``int(k*n)``: NaN below 3 tokens at k = 0.4); we keep
    open-unlearning's ``max(1, ...)``.

    Raises :class:`InputError`: bad rows, a text without a token to predict, ``k`` outside (0, 1],
    ``max_length`` < 2, a mismatched tokenizer."""
    check_real("text_min_k_scores", "k", k, low=0.0, high=1.0, low_open=True)
    check_int("text_min_k_scores", "batch_size", batch_size, minimum=1)
    rows = _text_rows(rows, "text rows")
    check_model_tokenizer(model, tokenizer)
    encoded = encode_text_dataset(tokenizer, rows, prompt_format, _block_length(model, max_length, "text_min_k_scores"))
    with _eval_mode(model):
        readings = read_rows(model, encoded, tokenizer.pad_token_id, batch_size)
    parts: dict[int, list[torch.Tensor]] = {}
    for example, reading in zip(encoded, readings):
        parts.setdefault(text_block_source(example["example_id"])[0], []).append(reading.logp)
    return {doc: min_k_score(torch.cat(p).double().numpy(), k, include_eos=True) for doc, p in parts.items()}


def text_membership_inference(model, tokenizer, member_rows, nonmember_rows, k: float = PRIVLEAK_K,
                              prompt_format="qa", batch_size: int = 32,
                              max_length: int | None = None) -> MetricResult:
    """Min-k% AUC of ``member_rows`` (the forget passages) against ``nonmember_rows`` (held-out
    passages, never trained on), scores of :func:`text_min_k_scores`.

    ``agg_value``: :func:`privacy.mia_auc`, P(non-member score > member score) + ½ P(tie) (a tie
    counts one half; the Mann-Whitney rank formula), open-unlearning's orientation: 1 = every
    forget passage looks more trained-on than every holdout passage, 0.5 = indistinguishable.
    MUSE's AUC is 1 minus this one (``extra["auc_muse"]``). ``value_by_index``: every passage's
    score by ``doc_id``; ``extra["member_ids"]`` and ``extra["nonmember_ids"]`` say which is
    which, so the two splits need distinct ``doc_id`` values (shared ones raise
    :class:`InputError`), as well as the errors of :func:`text_min_k_scores`."""
    mem = text_min_k_scores(model, tokenizer, member_rows, k, prompt_format, batch_size, max_length)
    non = text_min_k_scores(model, tokenizer, nonmember_rows, k, prompt_format, batch_size, max_length)
    shared = sorted(set(mem) & set(non))
    if shared:
        raise InputError(f"member and non-member passages share doc_id values {shared[:5]}; give the "
                         f"forget and holdout passages distinct doc_ids")
    auc = mia_auc(mem, non)
    return MetricResult("mia_min_k_text", auc, {**mem, **non},
                        {"attack": "min_k", "k": k, "auc_muse": 1.0 - auc, "member_ids": list(mem),
                         "nonmember_ids": list(non), "n": len(mem) + len(non)})


def text_privleak(model, tokenizer, forget_rows, holdout_rows, retain_model=None, auc_ref: float | None = None,
                  k: float = PRIVLEAK_K, prompt_format="qa", batch_size: int = 32,
                  max_length: int | None = None) -> MetricResult:
    """MUSE's PrivLeak of ``model`` on forget passages (members) and holdout passages (non-members),
    relative to the retrained model: ``retain_model`` (read with the same tokenizer and attack) or
    its AUC ``auc_ref`` (exactly one of the two).

    PrivLeak = (AUC_unl - AUC_retrain) / AUC_retrain x 100 in MUSE's AUC (``eval.py``), computed by
    :func:`privacy.privleak_from_auc` from our orientation: ((1 - auc) - (1 - auc_ref)) /
    (1 - auc_ref) x 100, with auc and auc_ref :func:`text_membership_inference` (min-k% at
    k = 0.4). Percent, in [-100, inf): 0 = as private as the retrained model; negative down to
    -100 = the forget passages still look trained-on (under-unlearning: MUSE's target models score
    about -100); positive = they look less member-like than the retrained model finds them
    (over-unlearning). ``auc_ref`` is in our orientation too: pass 1 minus a MUSE-published
    AUC_retrain, or 0.5 for open-unlearning's fallback (``privleak.yaml`` ``ref_value: 0.5``).

    Returns ``agg_value`` the PrivLeak; ``value_by_index`` the unlearned model's min-k% score of
    every passage; ``extra``: ``auc``, ``auc_ref`` (ours), ``auc_muse``, ``auc_ref_muse``, ``k``,
    ``mia`` (and ``mia_ref`` when ``retain_model`` was read). Raises :class:`InputError`: both or
    neither of ``retain_model`` and ``auc_ref``, an AUC outside [0, 1], ``auc_ref`` = 1 (nothing to
    divide by), and the errors of :func:`text_membership_inference`."""
    args = dict(k=k, prompt_format=prompt_format, batch_size=batch_size, max_length=max_length)
    value, mia, auc_ref, extra = privleak_against(
        lambda m: text_membership_inference(m, tokenizer, forget_rows, holdout_rows, **args),
        model, retain_model, auc_ref, "text_privleak")
    return MetricResult("privleak", value, dict(mia.value_by_index),
                        {"auc": mia.agg_value, "auc_ref": auc_ref, "auc_muse": 1.0 - mia.agg_value,
                         "auc_ref_muse": 1.0 - auc_ref, "attack": "min_k", "k": k, **extra})


# ----------------------------------------------------------------------------------------------
# inside evaluation.metrics.evaluate (the registry's compute functions; ``ev`` is its _Evaluation)


def _verbmem_on(ev, role: str) -> MetricResult:
    """VerbMem on the text split of ``role`` with MUSE's budgets (not ``ev.max_new_tokens``)."""
    return verbatim_memorization(ev.model, ev.tokenizer, ev.rows[role], prompt_format=ev.prompt_format,
                                 batch_size=ev.batch_size)


def _knowmem_on(ev, role: str) -> MetricResult:
    """KnowMem on the question-answer split of ``role`` with MUSE's 32-token budget."""
    return knowledge_memorization(ev.model, ev.tokenizer, ev.rows[role], prompt_format=ev.prompt_format,
                                  batch_size=ev.batch_size)


def _privleak_of(ev) -> tuple[str, MetricResult]:
    """(``"<forget>_vs_<holdout>"``, PrivLeak) against ``ev.retain_model`` or ``ev.privleak_auc_ref``."""
    retain_model, auc_ref = getattr(ev, "retain_model", None), getattr(ev, "privleak_auc_ref", None)
    if retain_model is None and auc_ref is None:
        raise InputError("privleak needs the retrained model (never trained on the forget passages): "
                         "evaluate(..., retain_model=retrain.model), or its AUC: privleak_auc_ref=...")
    result = text_privleak(ev.model, ev.tokenizer, ev.rows["forget"], ev.rows["holdout"],
                           retain_model=retain_model, auc_ref=None if retain_model is not None else auc_ref,
                           prompt_format=ev.prompt_format, batch_size=ev.batch_size)
    return f"{ev.splits['forget']}_vs_{ev.splits['holdout']}", result
