"""Evaluation metrics: Extraction Strength, exact memorisation, the TOFU metrics, membership
inference and the model-mixing calibration (definitions and sources: docs/methods.md#metrics).

Every per-example metric returns a :class:`MetricResult`: an aggregate (``agg_value``), the value
of every example keyed by its ``qa_id`` (``value_by_index``), and anything else worth keeping
(``extra``) -- the same contract as open-unlearning's metrics. Set-level statistics (forget
quality, model utility, MIA AUC) have no per-example values of their own; their
``value_by_index`` holds the per-example inputs where that makes sense, else it is empty.

How a model is read. One teacher-forced forward pass per (question, answer) pair through
:func:`satimp_lab.data.batching.token_logprobs`, the same code training uses: the labels are the answer
tokens followed by one EOS (docs/methods.md#which-tokens-count), right-padded batches,
``torch.no_grad()``, model in eval mode (its previous mode is restored afterwards, so
:func:`evaluate` can be called mid-training).
:func:`score_answers` exposes that pass; every likelihood metric is a reduction of its output.

Which tokens count:
    * ES and EM use the *answer tokens only* (the final EOS label is dropped), like the official
      ES script, whose text has no EOS (docs/methods.md#extraction-strength);
      ``include_eos=True`` adds it.
    * Probability, truth ratio and the MIA scores use answer tokens *and* the EOS, like the TOFU
      code, whose labels include the first padding EOS (docs/methods.md#which-tokens-count).

Prompt format. The default everywhere is ``"qa"``, the format the target model was trained on.
The official ES script uses ``"### Question: {q}\\n ### Answer: "`` (our ``"es"`` format), which
is out of distribution for a model fine-tuned only on ``"qa"`` (as our tiny models are): ES
measured there mixes "forgot the fact" with "never saw this prompt". ``prompt_format="es"``
reproduces the official setting. Pass ``bundle.prompt_format`` for other tiers.

Orientation of the membership-inference scores: higher = *less* member-like (a loss), and
:func:`mia_auc` is P(non-member score > member score), open-unlearning's convention: AUC near 1
means the forget set still looks like training data, 0.5 means indistinguishable from holdout.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy import special, stats

from ..errors import InputError
from ..data.batching import _plain_llama, encode_dataset, get_prompt_format, read_rows

__all__ = [
    "MetricResult", "ScoredAnswer", "METRICS", "MODEL_UTILITY_COMPONENTS", "DEFAULT_METRICS",
    "check_model_tokenizer", "score_answers", "generate_answers",
    "es_from_predictions", "extraction_strength", "exact_memorization",
    "answer_probability", "normalised_probability", "rouge_l_recall", "rouge_l_recall_scores",
    "truth_ratio", "truth_ratio_from_nll", "log_truth_ratio_from_nll", "aggregate_truth_ratio",
    "paired_samples", "forget_quality",
    "model_utility", "loss_score", "zlib_score", "min_k_score", "mia_scores", "mia_auc",
    "membership_inference", "mix_models", "calibrated_extraction_strength", "evaluate",
    "get_metric", "METRIC_ROLES", "MIA_ATTACKS", "EvalDetails",
]


# ----------------------------------------------------------------------------------------------
# result type and input checks


@dataclass
class MetricResult:
    """One metric on one set of examples.

    name            metric name (a key of :data:`METRICS` where there is one)
    agg_value       the aggregate that goes in a results table
    value_by_index  per-example values keyed by ``qa_id`` (empty for set-level statistics)
    extra           anything else: token counts, raw components, settings used
    """

    name: str
    agg_value: float
    value_by_index: dict[int, float] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.agg_value = float(self.agg_value)

    def values(self) -> np.ndarray:
        """Per-example values in ``qa_id`` order of insertion (the input row order)."""
        return np.array(list(self.value_by_index.values()), dtype=float)


def _as_rows(rows, what: str = "rows") -> list[dict]:
    """A ``datasets.Dataset`` or a list of dicts -> list of dicts; empty or duplicate ids raise."""
    if rows is None:
        raise InputError(f"{what}: got None instead of a dataset")
    rows = rows.to_list() if hasattr(rows, "to_list") else list(rows)
    if not rows:
        raise InputError(f"{what}: the dataset is empty; a metric of no examples is undefined")
    ids = [r.get("qa_id", i) for i, r in enumerate(rows)]
    if len(set(ids)) != len(ids):
        # per-example values are keyed by qa_id: duplicates would silently overwrite each other
        raise InputError(f"{what}: qa_id values are not unique")
    return rows


def _qa_id(row: dict, i: int) -> int:
    return int(row.get("qa_id", i))


def check_model_tokenizer(model, tokenizer) -> None:
    """Raise ``ValueError`` unless ``tokenizer`` plausibly belongs to ``model``.

    The check compares ``len(tokenizer)`` with the rows of the model's input embedding. The
    embedding may be *padded* beyond the tokenizer (Phi-1.5: 50 295 tokens, 51 200 rows; Qwen2:
    ~0.2 %), so up to 2 % + 64 extra rows are accepted; fewer rows than tokens (ids would index
    out of range) or a much larger embedding (e.g. a 512-token tokenizer on a 1024-row model)
    raise. Models that expose neither ``get_input_embeddings`` nor ``config.vocab_size`` are not
    checked. Also requires a pad token (batching) and an EOS token (answer end).

    A model made by this package (``models.get_model``, ``models.pretrained_bundle``) carries the
    fingerprint of its tokenizer (``models.tokenizer_fingerprint``) on its config; another
    tokenizer raises even when its vocabulary has the same size (its ids would mean other
    tokens: the model runs, silently reading nonsense). All failures raise
    :class:`~satimp_lab.errors.InputError`.
    """
    from ..models.zoo import TOKENIZER_FINGERPRINT_ATTR, tokenizer_fingerprint

    expected = getattr(getattr(model, "config", None), TOKENIZER_FINGERPRINT_ATTR, None)
    if expected is not None:
        found = tokenizer_fingerprint(tokenizer)
        if found != expected:
            raise InputError(f"mismatched tokenizer: its fingerprint is {found} but the model was "
                             f"made with tokenizer {expected}; use the tokenizer the model was "
                             f"trained with (e.g. bundle.tokenizer)")
    n_tokens = len(tokenizer)
    n_rows = None
    if hasattr(model, "get_input_embeddings") and model.get_input_embeddings() is not None:
        n_rows = model.get_input_embeddings().weight.shape[0]
    elif getattr(getattr(model, "config", None), "vocab_size", None):
        n_rows = model.config.vocab_size
    if n_rows is not None and not (n_tokens <= n_rows <= n_tokens * 1.02 + 64):
        raise InputError(
            f"mismatched tokenizer: it has {n_tokens} tokens but the model's input embedding has "
            f"{n_rows} rows; use the tokenizer the model was trained with")
    if tokenizer.pad_token_id is None:
        raise InputError("the tokenizer has no pad token; set tokenizer.pad_token (e.g. to EOS)")
    if tokenizer.eos_token_id is None:
        raise InputError("the tokenizer has no EOS token")


@contextlib.contextmanager
def _eval_mode(model):
    """Eval mode and no gradients inside; the model's previous train/eval mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------------------------
# reading a model: one teacher-forced pass, or greedy generation


@dataclass
class ScoredAnswer:
    """Teacher-forced reading of one (question, answer) pair.

    labels  ``[n]`` label ids: the answer tokens, then the EOS (always the last)
    preds   ``[n]`` argmax of the model's next-token logits at the same positions
    logp    ``[n]`` log p(label | prompt, previous answer tokens)
    """

    qa_id: int
    labels: torch.Tensor
    preds: torch.Tensor
    logp: torch.Tensor

    def tokens(self, include_eos: bool):
        """(labels, preds, logp) restricted to the answer tokens, plus the EOS if asked."""
        end = None if include_eos else -1
        return self.labels[:end], self.preds[:end], self.logp[:end]

    @property
    def nll(self) -> float:
        """Mean NLL over answer tokens and EOS: the TOFU length-normalised loss l(a)."""
        return float(-self.logp.double().mean())


def score_answers(model, tokenizer, rows, question_field: str = "question",
                  answer_field: str = "answer", prompt_format="qa", batch_size: int = 32,
                  ) -> list[ScoredAnswer]:
    """One batched teacher-forced pass over ``rows`` (:func:`batching.read_rows`: the output head
    on the answer positions only); returns one :class:`ScoredAnswer` per row, in row order. The
    building block of every likelihood metric."""
    rows = _as_rows(rows)
    check_model_tokenizer(model, tokenizer)
    encoded = encode_dataset(tokenizer, rows, prompt_format, question_field=question_field,
                             answer_field=answer_field, with_key_spans=False)
    with _eval_mode(model):
        readings = read_rows(model, encoded, tokenizer.pad_token_id, batch_size)
    return [ScoredAnswer(int(e["example_id"]), r.labels.cpu(), r.preds.cpu(), r.logp.cpu())
            for e, r in zip(encoded, readings)]


def _prompt_ids(tokenizer, fmt, question: str) -> list[int]:
    """Prompt token ids exactly as :func:`batching.encode_example` builds them (BOS + prompt)."""
    ids = tokenizer(fmt.prompt(question, tokenizer), add_special_tokens=False)["input_ids"]
    if fmt.add_bos and tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id] + ids
    return ids


def _greedy(model, input_ids, attention_mask, max_new_tokens: int, eos_id: int, pad_id: int):
    """Greedy continuation ``[B, <=max_new_tokens]`` of a left-padded batch.

    A plain Hugging Face Llama is decoded by :func:`_greedy_llama` (``generate``'s tokens at less
    CPU), other HF models use ``generate`` (KV cache, correct positions under left padding);
    anything else that maps ``input_ids`` to ``.logits`` gets a plain loop (the unit tests' fakes)."""
    width = input_ids.shape[1]
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(limit, int) and width + max_new_tokens > limit:  # never run past the positions
        max_new_tokens = max(1, limit - width)
    if _fast_decoding(model):
        return _greedy_llama(model, input_ids, attention_mask, max_new_tokens, eos_id, pad_id)
    if hasattr(model, "generate"):
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False,
                             max_new_tokens=max_new_tokens, pad_token_id=pad_id, eos_token_id=eos_id)
        return out[:, width:]
    done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    for _ in range(max_new_tokens):
        nxt = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, -1].argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        input_ids = torch.cat([input_ids, nxt[:, None]], 1)
        attention_mask = torch.cat([attention_mask, (~done).long()[:, None]], 1)
        done |= nxt == eos_id
        if done.all():
            break
    return input_ids[:, width:]


def _fast_decoding(model) -> bool:
    """Whether :func:`_greedy_llama` can decode ``model``: a plain Hugging Face Llama with SDPA
    attention that takes a ``cache`` and whose decoder layers take ``cache`` and
    ``position_embeddings`` and return the hidden states (transformers 5); anything else goes
    through ``generate``."""
    if not (_plain_llama(model) and getattr(model.config, "_attn_implementation", None) == "sdpa"):
        return False
    return _takes_cache(type(model)) and _layer_takes_cache(type(model.model.layers[0]))


@functools.cache
def _takes_cache(model_type) -> bool:
    import inspect

    return "cache" in inspect.signature(model_type.forward).parameters


@functools.cache
def _layer_takes_cache(layer_type) -> bool:
    import inspect

    params = inspect.signature(layer_type.forward).parameters
    returns = inspect.signature(layer_type.forward).return_annotation
    return {"cache", "position_embeddings"} <= set(params) and returns in (torch.Tensor, "torch.Tensor")


def _greedy_llama(model, input_ids, attention_mask, max_new_tokens: int, eos_id: int, pad_id: int):
    """``model.generate``'s greedy decoding of a plain Hugging Face Llama, token for token, at
    ~0.8x its CPU time: the prompt pass is the model's own call with generate's arguments (left
    padding: positions from the attention mask), and each new token runs the decoder layers
    directly, with the attention mask that ``create_causal_mask`` builds for one new token under
    a KV cache (``[batch, 1, 1, kv]`` bool: the padding mask). That skips generate's and the
    model's per-step wrappers, ~1 ms of every ~4 ms step for the tiny models on a CPU. Finished
    rows get ``pad_id``, as in ``generate``. ``tests/integration/test_metrics_models.py`` checks
    the tokens against ``generate``."""
    from transformers import DynamicCache

    batch, width = input_ids.shape
    positions = attention_mask.long().cumsum(-1) - 1
    positions.masked_fill_(attention_mask == 0, 1)
    cache = DynamicCache(config=model.config)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True,
                cache_position=torch.arange(width, device=input_ids.device), cache=cache,
                logits_to_keep=1)
    logits = out.logits[:, -1, :].to(copy=True, dtype=torch.float32)
    inner, mask, unfinished, new = model.model, attention_mask, torch.ones_like(input_ids[:, 0]), []
    for step in range(max_new_tokens):
        token = logits.argmax(-1) * unfinished + pad_id * (1 - unfinished)
        new.append(token)
        unfinished = unfinished & (token != eos_id).long()
        if step == max_new_tokens - 1 or unfinished.max() == 0:
            break
        mask = torch.cat([mask, mask.new_ones((batch, 1))], -1)
        position = (mask.long().cumsum(-1) - 1)[:, -1:]
        hidden = inner.embed_tokens(token[:, None])
        rope = inner.rotary_emb(hidden, position)
        for layer in inner.layers:
            hidden = layer(hidden, attention_mask=mask.bool()[:, None, None, :], position_ids=position,
                           cache=cache, use_cache=True, position_embeddings=rope)
        logits = model.lm_head(inner.norm(hidden)[:, -1:, :])[:, -1, :].to(copy=True, dtype=torch.float32)
    return torch.stack(new, 1)


def generate_answers(model, tokenizer, rows, question_field: str = "question", prompt_format="qa",
                     max_new_tokens: int = 128, batch_size: int = 32) -> dict[int, str]:
    """Greedy answers to each row's question: {qa_id: text}.

    Left-padded batches, ``do_sample=False``, at most ``max_new_tokens`` new tokens, cut at the
    first special token (EOS, BOS, pad: the end of the answer's turn), decoded, then cut before
    the first text that starts another turn of the prompt format (``PromptFormat.first_answer``:
    ``"\nQuestion:"`` for ``"qa"``), and stripped. Without that cut a model that answers "I do
    not know." and runs on with "\nQuestion: ...\nAnswer: <the true answer>" would be scored on
    the run-on. (TOFU bounds the *total* length at 200 tokens; we bound the new tokens, which
    does not depend on the prompt length.)
    """
    rows = _as_rows(rows)
    check_model_tokenizer(model, tokenizer)
    fmt = get_prompt_format(prompt_format)
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    special = {eos, pad, *getattr(tokenizer, "all_special_ids", ())}
    device = next(model.parameters()).device
    texts: dict[int, str] = {}
    with _eval_mode(model):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            prompts = [_prompt_ids(tokenizer, fmt, r[question_field]) for r in chunk]
            width = max(map(len, prompts))
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
            att = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
            new = _greedy(model, ids, att, max_new_tokens, eos, pad).tolist()
            for i, (row, toks) in enumerate(zip(chunk, new)):
                end = next((j for j, t in enumerate(toks) if t in special), len(toks))
                text = tokenizer.decode(toks[:end], skip_special_tokens=True)
                texts[_qa_id(row, start + i)] = fmt.first_answer(text)
    return texts


# ----------------------------------------------------------------------------------------------
# Extraction Strength and exact memorisation


def es_from_predictions(pred_ids, label_ids) -> float:
    """ES = s/m for one example: s is the length of the longest suffix of ``label_ids`` (m tokens)
    on which the teacher-forced argmax ``pred_ids`` is right (docs/methods.md#extraction-strength).

    s = m: the question alone suffices (ES 1); a wrong last token gives ES 0. Equivalently
    ES = 1 - k*/m with k* the shortest answer prefix from which greedy decoding reproduces the
    rest exactly."""
    pred = torch.as_tensor(pred_ids).reshape(-1)
    label = torch.as_tensor(label_ids).reshape(-1)
    if pred.shape != label.shape:
        raise ValueError(f"pred_ids and label_ids differ in length: {pred.numel()} vs {label.numel()}")
    m = label.numel()
    if m == 0:
        raise ValueError("ES of an empty answer is undefined")
    wrong = (pred != label).nonzero().reshape(-1)
    s = m if wrong.numel() == 0 else m - 1 - int(wrong[-1])
    return s / m


def _es_result(scored: Sequence[ScoredAnswer], include_eos: bool, name: str = "es") -> MetricResult:
    values = {}
    for sa in scored:
        labels, preds, _ = sa.tokens(include_eos)
        values[sa.qa_id] = es_from_predictions(preds, labels)
    return MetricResult(name, float(np.mean(list(values.values()))), values,
                        {"include_eos": include_eos, "n": len(values)})


def _em_result(scored: Sequence[ScoredAnswer], include_eos: bool) -> MetricResult:
    values = {}
    for sa in scored:
        labels, preds, _ = sa.tokens(include_eos)
        values[sa.qa_id] = float((preds == labels).double().mean())
    return MetricResult("em", float(np.mean(list(values.values()))), values,
                        {"include_eos": include_eos, "n": len(values)})


def extraction_strength(model, tokenizer, rows, question_field: str = "question",
                        prompt_format="qa", include_eos: bool = False, batch_size: int = 32,
                        ) -> MetricResult:
    """Extraction Strength, the official teacher-forced suffix rule
    (docs/methods.md#extraction-strength).

    Per example: teacher-force ``prompt(question) + answer`` once; with ŷ_j the argmax at answer
    position j and y the m answer tokens, ES_i = s/m where s is the longest suffix with ŷ = y
    (:func:`es_from_predictions`). Aggregate: the mean over examples (lower on forget = more
    forgotten). ``question_field="paraphrased_question"`` gives the official ``ps_type=perturb``.

    Departures from ``eval_es.py``: batched instead of batch size 1 (same numbers: right padding
    and causal attention leave real positions unchanged); the answer tokens are those whose
    characters lie in the answer (tokenizer offsets), not ``tok(F)[len(tok(P)):]``, so a prompt/
    answer boundary token is never split differently; with ``"es"`` the space after ``Answer:``
    is the start of the answer's first token (the BPE view), not the end of the prompt; the
    default prompt is the training format ``"qa"`` (module docstring). The EOS is excluded unless
    ``include_eos`` (the official text has none). The retain set is whatever rows are passed
    (the official script uses the first 400 rows of ``retainXX``).
    """
    scored = score_answers(model, tokenizer, rows, question_field, "answer", prompt_format, batch_size)
    return _es_result(scored, include_eos)


def exact_memorization(model, tokenizer, rows, question_field: str = "question", prompt_format="qa",
                       include_eos: bool = False, batch_size: int = 32) -> MetricResult:
    """Exact memorisation (EM): per example, the share of answer tokens whose teacher-forced
    argmax equals the label; aggregate = mean over examples. Same tokens as ES (no EOS unless
    ``include_eos``; open-unlearning counts every label, EOS included)."""
    scored = score_answers(model, tokenizer, rows, question_field, "answer", prompt_format, batch_size)
    return _em_result(scored, include_eos)


# ----------------------------------------------------------------------------------------------
# TOFU: probability, ROUGE-L, truth ratio, forget quality, model utility


def _nlls(values, what: str) -> np.ndarray:
    """Mean-token NLLs as a float64 array; empty or non-finite inputs raise ``ValueError``."""
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{what}: needs at least one perturbed answer")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: NLLs must be finite, got {arr.tolist()}")
    return arr


def normalised_probability(nll_answer: float, nll_perturbed: Sequence[float]) -> float:
    """p(a) / (p(a) + Σ_j p(ã_j)) with p(·) = exp(-mean token NLL) (TOFU's world-facts form).

    Computed in log space (a softmax over -NLLs), so NLLs of hundreds of nats, whose
    probabilities underflow to 0, still give the right value (e.g. all equal -> 1/(n+1))."""
    nll = _nlls([nll_answer, *_nlls(nll_perturbed, "normalised probability")], "normalised probability")
    return float(np.exp(-nll[0] - special.logsumexp(-nll)))


def _perturbed_nll(model, tokenizer, rows, question_field, prompt_format, batch_size) -> list[list[float]]:
    """Mean NLL of every perturbed answer of every row: one list per row."""
    flat = []
    for i, r in enumerate(rows):
        answers = list(r.get("perturbed_answer") or [])
        if not answers:
            raise InputError(f"row {_qa_id(r, i)} has no perturbed answers; the truth ratio and the "
                             f"normalised probability need at least one")
        flat += [{"question": r[question_field], "answer": a, "qa_id": len(flat) + j}
                 for j, a in enumerate(answers)]
    scored = score_answers(model, tokenizer, flat, "question", "answer", prompt_format, batch_size)
    out, pos = [], 0
    for r in rows:
        n = len(r["perturbed_answer"])
        out.append([s.nll for s in scored[pos:pos + n]])
        pos += n
    return out


def _probability_result(scored: Sequence[ScoredAnswer], perturbed: list[list[float]] | None,
                        ) -> MetricResult:
    if perturbed is None:
        values = {s.qa_id: math.exp(-s.nll) for s in scored}
    else:
        values = {s.qa_id: normalised_probability(s.nll, pn) for s, pn in zip(scored, perturbed)}
    return MetricResult("probability", float(np.mean(list(values.values()))), values,
                        {"normalised": perturbed is not None, "n": len(values)})


def answer_probability(model, tokenizer, rows, normalised: bool = False,
                       question_field: str = "question", prompt_format="qa", batch_size: int = 32,
                       ) -> MetricResult:
    """TOFU Probability (docs/methods.md#probability). p(a) = exp(-l̄(a)), l̄ the mean NLL over
    the answer tokens and the EOS (length-normalised). Per example p(a_i) with a_i the original
    ``answer``; aggregate = mean. ``normalised=True`` (TOFU's Real Authors / World Facts form):
    per example p(a_i) / (p(a_i) + Σ_j p(ã_ij)) over the ``perturbed_answer`` list, then the mean."""
    rows = _as_rows(rows)
    scored = score_answers(model, tokenizer, rows, question_field, "answer", prompt_format, batch_size)
    perturbed = (_perturbed_nll(model, tokenizer, rows, question_field, prompt_format, batch_size)
                 if normalised else None)
    return _probability_result(scored, perturbed)


@functools.lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_recall_scores(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """ROUGE-L recall of each prediction against its reference (``rouge_score``, stemmer on):
    LCS(prediction, reference) / |reference tokens|, as TOFU's ``scorer.score(gt, gen)``."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    scorer = _rouge_scorer()
    return [scorer.score(ref, pred)["rougeL"].recall for pred, ref in zip(predictions, references)]


def _rouge_result(rows, generations: dict[int, str]) -> MetricResult:
    ids = [_qa_id(r, i) for i, r in enumerate(rows)]
    scores = rouge_l_recall_scores([generations[i] for i in ids], [r["answer"] for r in rows])
    values = dict(zip(ids, scores))
    return MetricResult("rouge", float(np.mean(scores)), values,
                        {"generations": {i: generations[i] for i in ids}, "n": len(values)})


def rouge_l_recall(model, tokenizer, rows, question_field: str = "question", prompt_format="qa",
                   max_new_tokens: int = 128, batch_size: int = 32) -> MetricResult:
    """TOFU ROUGE (docs/methods.md#rouge): greedy generation from the prompt alone
    (:func:`generate_answers`), scored by ROUGE-L recall against the original ``answer``;
    aggregate = mean. The generations are kept in ``extra["generations"]``."""
    rows = _as_rows(rows)
    gens = generate_answers(model, tokenizer, rows, question_field, prompt_format, max_new_tokens,
                            batch_size)
    return _rouge_result(rows, gens)


def log_truth_ratio_from_nll(nll_base: float, nll_perturbed: Sequence[float]) -> tuple[float, float]:
    """(log R, log R_geo) for one example from mean-token NLLs, computed in log space:

    log R     = logsumexp_j(-l̄(ã_j)) - log n + l̄(â)
    log R_geo = l̄(â) - mean_j l̄(ã_j)

    Finite for any finite NLLs (probabilities of NLLs beyond ~745 nats underflow to 0 in float64;
    their logs do not): ``log_truth_ratio_from_nll(800, [1])`` is (799, 799)."""
    base = float(_nlls([nll_base], "truth ratio (base answer)")[0])
    pert = _nlls(nll_perturbed, "truth ratio")
    return (float(special.logsumexp(-pert) - math.log(pert.size) + base),
            float(base - pert.mean()))


def _exp(x: float) -> float:
    """exp that overflows to inf instead of raising."""
    with np.errstate(over="ignore"):
        return float(np.exp(x))


def truth_ratio_from_nll(nll_base: float, nll_perturbed: Sequence[float]) -> tuple[float, float]:
    """(R, R_geo) for one example from mean-token NLLs.

    R     = mean_j p(ã_j) / p(â)                 (arithmetic mean; docs/methods.md#truth-ratio)
    R_geo = exp(l̄(â) - mean_j l̄(ã_j))           (geometric mean; 1/TR' of TOFU's FQ code)
    Both are < 1 when the model prefers the true (paraphrased) answer to the wrong ones.
    Computed as exp of :func:`log_truth_ratio_from_nll`: never a division by an underflowed
    probability; a ratio beyond float64's range is ``inf`` (or 0), which the aggregates handle."""
    log_r, log_geo = log_truth_ratio_from_nll(nll_base, nll_perturbed)
    return _exp(log_r), _exp(log_geo)


def aggregate_truth_ratio(ratios, kind: str, log: bool = False) -> float:
    """TOFU aggregation of raw ratios R: ``"forget"`` -> mean min(R, 1/R) (1 = the model cannot
    tell true from false, as if never trained); ``"retain"`` (retain, real authors, world facts)
    -> mean max(0, 1 - R) (1 = strongly prefers the truth).

    ``log=True``: ``ratios`` are log R. Computed as exp(-|log R|) and max(0, -expm1(log R)), so
    R = 0 or inf (an underflowed or overflowed ratio) gives 0 (forget) and 1 or 0 (retain)."""
    r = np.asarray(list(ratios.values()) if isinstance(ratios, Mapping) else ratios, dtype=float)
    if r.size == 0:
        raise ValueError("cannot aggregate an empty set of truth ratios")
    if kind not in ("forget", "retain"):
        raise ValueError(f"kind must be 'forget' or 'retain', got {kind!r}")
    with np.errstate(divide="ignore"):
        log_r = r if log else np.log(r)
    if np.any(np.isnan(log_r)) or (log and np.any(np.isinf(log_r))):
        raise ValueError(f"truth ratios must be {'finite logs' if log else '>= 0'}, got {r.tolist()}")
    if kind == "forget":
        return float(np.mean(np.exp(-np.abs(log_r))))
    return float(np.mean(np.maximum(0.0, -np.expm1(np.minimum(log_r, 0.0)))))


def _truth_ratio_result(scored_base: Sequence[ScoredAnswer], perturbed: list[list[float]],
                        kind: str, base_answer_field: str) -> MetricResult:
    log_raw, log_geo = {}, {}
    for s, pn in zip(scored_base, perturbed):
        log_raw[s.qa_id], log_geo[s.qa_id] = log_truth_ratio_from_nll(s.nll, pn)
    return MetricResult("truth_ratio", aggregate_truth_ratio(log_raw, kind, log=True),
                        {i: _exp(v) for i, v in log_raw.items()},
                        {"kind": kind, "base_answer_field": base_answer_field,
                         "geometric_by_index": {i: _exp(v) for i, v in log_geo.items()},
                         "log_by_index": log_raw, "log_geometric_by_index": log_geo, "n": len(log_raw)})


def truth_ratio(model, tokenizer, rows, kind: str = "forget",
                base_answer_field: str = "paraphrased_answer", question_field: str = "question",
                prompt_format="qa", batch_size: int = 32) -> MetricResult:
    """TOFU Truth Ratio (docs/methods.md#truth-ratio).

    Per example R_i = mean_j p(ã_ij) / p(â_i), p(·) = exp(-mean token NLL), â_i the
    ``base_answer_field`` (``paraphrased_answer`` for forget/retain sets, ``answer`` for world
    facts and real authors, as in TOFU), ã_ij the ``perturbed_answer`` list. ``value_by_index``
    keeps the *raw* R_i; ``agg_value`` is :func:`aggregate_truth_ratio` with ``kind``
    (``"forget"``: mean min(R, 1/R); ``"retain"``: mean max(0, 1 - R)).

    ``extra["geometric_by_index"]`` holds R_geo = exp(l̄(â) - mean_j l̄(ã_j)), the geometric-mean
    form that TOFU's forget-quality code uses (some versions of TOFU's ``aggregate_stat.py``
    also use it for the truth-ratio aggregate); :func:`forget_quality` uses it. On our synthetic benchmark the
    perturbed answers share the *original* answer's template, while â is a paraphrase.

    Everything is computed from log R (:func:`log_truth_ratio_from_nll`), kept in
    ``extra["log_by_index"]`` and ``extra["log_geometric_by_index"]``: a model pushed to NLLs of
    thousands of nats gives R = inf or 0 per example, an aggregate near 0, and finite logs for
    the forget-quality test, never a division by zero.
    """
    rows = _as_rows(rows)
    if kind not in ("forget", "retain"):
        raise ValueError(f"kind must be 'forget' or 'retain', got {kind!r}")
    base = score_answers(model, tokenizer, rows, question_field, base_answer_field, prompt_format,
                         batch_size)
    perturbed = _perturbed_nll(model, tokenizer, rows, question_field, prompt_format, batch_size)
    return _truth_ratio_result(base, perturbed, kind, base_answer_field)


def _fq_sample(values, what: str) -> dict[int, float] | np.ndarray:
    """log R_geo per example: a {qa_id: log value} dict for a MetricResult or a mapping, an array
    for a plain sequence (raw ratios, > 0)."""
    if isinstance(values, MetricResult):
        # a truth_ratio result: the official FQ statistic is the geometric form (its log is exact)
        if "log_geometric_by_index" in values.extra:
            values = values.extra["log_geometric_by_index"]
            logs = True
        else:
            values, logs = values.extra.get("geometric_by_index", values.value_by_index), False
    else:
        logs = False
    keys = list(values) if isinstance(values, Mapping) else None
    arr = np.asarray([] if values is None else list(values.values()) if keys is not None else values,
                     dtype=float).reshape(-1)
    if arr.size == 0:
        raise ValueError(
            f"forget quality needs {what}; got none. For the retain side, evaluate the retain "
            f"model (never trained on the forget authors) on the same forget split: "
            f"truth_ratio(retain_model, tokenizer, benchmark[forget_split], kind='forget')")
    if not logs:
        with np.errstate(divide="ignore", invalid="ignore"):
            arr = np.log(arr)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contain non-finite values (ratios must be finite and > 0)")
    return dict(zip(keys, arr.tolist())) if keys is not None else arr


def paired_samples(a, b, what_a: str, what_b: str) -> tuple[np.ndarray, np.ndarray]:
    """Two per-example samples of the same rows, matched by ``qa_id``.

    ``a`` and ``b`` are {qa_id: value} dicts (the per-example values of a :class:`MetricResult`)
    or plain arrays. Two dicts: ``b`` must hold every id of ``a`` (extra ids of ``b`` are left
    out); the result follows ``a``'s order. Two arrays: they must have the same length (the
    caller vouches that position i is the same row). A dict and an array cannot be matched:
    ``ValueError``, as for missing ids or unequal lengths."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        missing = [i for i in a if i not in b]
        if missing:
            raise ValueError(f"{what_b} lack qa_id(s) {missing[:10]}{' ...' if len(missing) > 10 else ''} "
                             f"of {what_a}: the two samples must be the same rows")
        return np.array(list(a.values()), dtype=float), np.array([b[i] for i in a], dtype=float)
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        raise ValueError(f"cannot match {what_a} with {what_b} by qa_id: one is a plain sequence; "
                         f"pass both as truth_ratio results or {{qa_id: value}} dicts")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size != b.size:
        raise ValueError(f"{what_a} ({a.size} values) and {what_b} ({b.size} values) are not the "
                         f"same rows; pass {{qa_id: value}} dicts to match them")
    return a, b


def forget_quality(unlearned_truth_ratios, retain_truth_ratios) -> MetricResult:
    """Forget Quality (docs/methods.md#forget-quality): the two-sided ``scipy.stats.ks_2samp``
    p-value between the forget-set truth ratios of the unlearned model and of the retain model.

    Each argument is a :class:`MetricResult` from :func:`truth_ratio` (its geometric form is
    used, as in TOFU's code), a {qa_id: value} dict, or a sequence. The KS test is invariant to a
    monotone transform applied to both samples, so the orientation (R or 1/R) does not matter;
    it runs on log R_geo, which stays finite where R_geo over- or underflows.
    The two samples are the same forget rows, matched by ``qa_id`` (:func:`paired_samples`): the
    retain side may hold more rows (the unlearned model's are selected), but a row of the
    unlearned side missing from it, or a plain sequence against a keyed one, raises.
    1.0 for identical samples; small values mean the unlearned model is distinguishable from
    one that never saw the forget set. Raises ``ValueError`` if either sample is missing/empty.
    """
    unl, ret = paired_samples(_fq_sample(unlearned_truth_ratios, "the unlearned model's truth ratios"),
                              _fq_sample(retain_truth_ratios, "the retain model's truth ratios"),
                              "the unlearned model's truth ratios", "the retain model's truth ratios")
    test = stats.ks_2samp(unl, ret)
    return MetricResult("forget_quality", float(test.pvalue), {},
                        {"ks_statistic": float(test.statistic), "n_unlearned": unl.size,
                         "n_retain": ret.size})


# (metric, role) pairs of model utility on the synthetic benchmark: 6 numbers. Real TOFU's
# official 9 add the same three metrics on ``real_authors``, which our benchmark does not have.
MODEL_UTILITY_COMPONENTS = (("probability", "retain"), ("rouge", "retain"), ("truth_ratio", "retain"),
                            ("probability", "world_facts"), ("rouge", "world_facts"),
                            ("truth_ratio", "world_facts"))


def model_utility(components) -> MetricResult:
    """Model Utility (docs/methods.md#model-utility) = ``scipy.stats.hmean`` of its components.

    On the synthetic benchmark the components are the 6 of :data:`MODEL_UTILITY_COMPONENTS`:
    probability (retain: mean p(a); world facts: normalised), ROUGE-L recall and aggregated
    truth ratio (max(0, 1 - R)) on the retain split and on world facts. Real TOFU adds the
    three on real authors (9 numbers). Forget-set metrics are never included. ``components`` is
    a {name: value} mapping or a sequence of values; any component 0 gives 0 (harmonic mean).
    """
    named = dict(components) if isinstance(components, Mapping) else {
        str(i): v for i, v in enumerate(components)}
    values = np.asarray(list(named.values()), dtype=float)
    if values.size == 0:
        raise ValueError("model utility needs at least one component")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"model utility components must be finite and >= 0, got {named}")
    return MetricResult("model_utility", float(stats.hmean(values)), {},
                        {"components": {k: float(v) for k, v in named.items()}, "n": values.size})


# ----------------------------------------------------------------------------------------------
# membership inference


def loss_score(nll: float) -> float:
    """LOSS attack: the mean token NLL of the answer (+EOS). Higher = less member-like."""
    return float(nll)


def zlib_score(nll: float, text: str) -> float:
    """zlib attack (Carlini et al. 2021): mean token NLL / len(zlib.compress(text)) in bytes.
    Normalising by the text's compressibility discounts answers that are easy for any model.
    Same direction as the loss: higher = less member-like."""
    return float(nll) / len(zlib.compress(text.encode("utf-8")))


def min_k_score(token_logps, k: float = 0.2) -> float:
    """Min-k% attack (Shi et al. 2024): minus the mean of the ``max(1, int(k*n))`` lowest token
    log-probabilities (open-unlearning's rounding). Higher = less member-like."""
    lp = np.sort(np.asarray(token_logps, dtype=float).reshape(-1))
    if lp.size == 0:
        raise ValueError("min-k% of no tokens is undefined")
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    return float(-lp[:max(1, int(k * lp.size))].mean())


MIA_ATTACKS = ("loss", "zlib", "min_k")


def _mia_values(scored: Sequence[ScoredAnswer], rows, attack: str, k: float) -> dict[int, float]:
    if attack == "loss":
        return {s.qa_id: loss_score(s.nll) for s in scored}
    if attack == "zlib":
        return {s.qa_id: zlib_score(s.nll, r["answer"]) for s, r in zip(scored, rows)}
    if attack == "min_k":
        return {s.qa_id: min_k_score(s.logp.numpy(), k) for s in scored}
    raise ValueError(f"unknown MIA attack {attack!r}; valid: {list(MIA_ATTACKS)}")


def mia_scores(model, tokenizer, rows, attack: str = "loss", k: float = 0.2, prompt_format="qa",
               batch_size: int = 32) -> MetricResult:
    """Per-example MIA scores (:func:`loss_score`, :func:`zlib_score`, :func:`min_k_score`) on
    (question, answer) over answer tokens + EOS; aggregate = mean score."""
    rows = _as_rows(rows)
    if attack not in MIA_ATTACKS:
        raise ValueError(f"unknown MIA attack {attack!r}; valid: {list(MIA_ATTACKS)}")
    scored = score_answers(model, tokenizer, rows, "question", "answer", prompt_format, batch_size)
    values = _mia_values(scored, rows, attack, k)
    return MetricResult(f"mia_{attack}", float(np.mean(list(values.values()))), values,
                        {"attack": attack, "k": k})


def mia_auc(member_scores, nonmember_scores) -> float:
    """AUC = P(non-member score > member score) + ½ P(tie), via the Mann-Whitney U rank formula
    (average ranks, so ties count half). 0.5: indistinguishable; 1.0: every member scores below
    every non-member (members still look trained-on). Inputs: sequences or {id: score} dicts."""
    def arr(x):
        x = list(x.values()) if isinstance(x, Mapping) else x
        return np.asarray(x, dtype=float).reshape(-1)

    mem, non = arr(member_scores), arr(nonmember_scores)
    if mem.size == 0 or non.size == 0:
        raise ValueError("MIA AUC needs at least one member and one non-member score")
    ranks = stats.rankdata(np.concatenate([mem, non]))
    u = ranks[mem.size:].sum() - non.size * (non.size + 1) / 2
    return float(u / (mem.size * non.size))


def _mia_result(attack: str, member: dict, nonmember: dict, k: float) -> MetricResult:
    return MetricResult(f"mia_{attack}", mia_auc(member, nonmember), {**member, **nonmember},
                        {"attack": attack, "k": k, "member_ids": list(member),
                         "nonmember_ids": list(nonmember)})


def membership_inference(model, tokenizer, member_rows, nonmember_rows, attack: str = "loss",
                         k: float = 0.2, prompt_format="qa", batch_size: int = 32) -> MetricResult:
    """MIA AUC of one attack with ``member_rows`` (the forget split) against ``nonmember_rows``
    (holdout, never trained on). ``value_by_index`` holds every example's score; the member and
    non-member ids are in ``extra``."""
    mem = mia_scores(model, tokenizer, member_rows, attack, k, prompt_format, batch_size)
    non = mia_scores(model, tokenizer, nonmember_rows, attack, k, prompt_format, batch_size)
    if set(mem.value_by_index) & set(non.value_by_index):
        raise ValueError("member and non-member rows share qa_id values")
    return _mia_result(attack, mem.value_by_index, non.value_by_index, k)


# ----------------------------------------------------------------------------------------------
# model mixing and calibrated ES (Wang et al., ICLR 2025; docs/methods.md#model-mixing-calibration)


def mix_models(original, unlearned, r: float):
    """θ(r) = r·θ_orig + (1-r)·θ_unl as a new model (a deep copy of ``unlearned``; neither input
    is modified). r = 0 and r = 1 return exact copies of the unlearned / original weights.
    Non-floating-point tensors (integer buffers cannot be averaged) are taken from the model
    with the larger share (the original for r >= 0.5)."""
    r = float(r)
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"mixing ratio r must be in [0, 1], got {r}")
    sd_o, sd_u = original.state_dict(), unlearned.state_dict()
    if sd_o.keys() != sd_u.keys():
        raise ValueError("cannot mix models with different parameter names (different architectures)")
    mixed = {}
    for name, u in sd_u.items():
        o = sd_o[name].to(u.device)
        if o.shape != u.shape:
            raise ValueError(f"cannot mix: {name} has shape {tuple(o.shape)} vs {tuple(u.shape)}")
        if r == 0.0 or (not u.is_floating_point() and r < 0.5):
            mixed[name] = u.clone()
        elif r == 1.0 or not u.is_floating_point():
            mixed[name] = o.to(u.dtype).clone()
        else:
            mixed[name] = (r * o.to(u.dtype) + (1 - r) * u).to(u.dtype)
    model = copy.deepcopy(unlearned)
    model.load_state_dict(mixed)
    return model


DEFAULT_MIX_GRID = tuple(i / 10 for i in range(11))


def calibrated_extraction_strength(original, unlearned, tokenizer, forget_rows, retain_rows,
                                   share: float = 0.9, grid: Iterable[float] = DEFAULT_MIX_GRID,
                                   question_field: str = "question", prompt_format="qa",
                                   batch_size: int = 32) -> MetricResult:
    """Forget ES at the calibrated mixing ratio (UWC's calibration; not in the SatImp code).

    bar = ``share`` · ES_retain(θ_orig). Scan ``grid`` in increasing order (1.0 is always added:
    θ(1) = θ_orig meets any bar with share <= 1) and take the smallest r whose mixed model has
    ES_retain(θ(r)) >= bar; report ES on ``forget_rows`` at that r. Methods that damaged the
    retain set need more of the original back (larger r), which also restores forget knowledge,
    so the comparison is at matched retain quality (docs/methods.md#forget-es-at-matched-retain).

    Returns a MetricResult: ``agg_value`` = forget ES at r, per-example forget ES, and ``extra``
    with ``r``, ``retain_es`` (at r), ``retain_bar``, ``retain_es_original`` and ``retain_curve``
    ({r: retain ES} for every r tried).
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share}")
    grid = sorted({float(r) for r in grid} | {1.0})
    forget_rows, retain_rows = _as_rows(forget_rows, "forget rows"), _as_rows(retain_rows, "retain rows")
    es = functools.partial(extraction_strength, tokenizer=tokenizer, question_field=question_field,
                           prompt_format=prompt_format, batch_size=batch_size)
    retain_original = es(original, rows=retain_rows).agg_value
    bar = share * retain_original
    curve = {}
    for r in grid:
        mixed = original if r == 1.0 else mix_models(original, unlearned, r)
        curve[r] = retain_original if r == 1.0 else es(mixed, rows=retain_rows).agg_value
        if curve[r] >= bar:
            forget = es(mixed, rows=forget_rows)
            return MetricResult("calibrated_es", forget.agg_value, forget.value_by_index,
                                {"r": r, "retain_es": curve[r], "retain_bar": bar,
                                 "retain_es_original": retain_original, "retain_curve": curve,
                                 "share": share})
    raise AssertionError("unreachable: r = 1 always meets the bar")


# ----------------------------------------------------------------------------------------------
# registry and the one-call evaluation


METRICS: dict[str, Callable] = {
    "es": extraction_strength,
    "es_paraphrased": functools.partial(extraction_strength, question_field="paraphrased_question"),
    "em": exact_memorization,
    "probability": answer_probability,
    "rouge": rouge_l_recall,
    "truth_ratio": truth_ratio,
    "forget_quality": forget_quality,
    "model_utility": model_utility,
    "mia_loss": functools.partial(membership_inference, attack="loss"),
    "mia_zlib": functools.partial(membership_inference, attack="zlib"),
    "mia_min_k": functools.partial(membership_inference, attack="min_k"),
    "calibrated_es": calibrated_extraction_strength,
}
"""Metric names understood by :func:`evaluate`, mapped to the function that computes them."""

DEFAULT_METRICS = ("es", "em", "probability")
"""Teacher-forced only (no generation): cheap enough to run every few training steps."""

# The splits (by role) that ``evaluate`` runs each per-split metric on.
METRIC_ROLES = {
    "es": ("forget", "retain"), "es_paraphrased": ("forget", "retain"), "em": ("forget", "retain"),
    "probability": ("forget", "retain", "world_facts"), "rouge": ("forget", "retain", "world_facts"),
    "truth_ratio": ("forget", "retain", "world_facts"),
}


def get_metric(name: str) -> Callable:
    """The function registered as ``name``; unknown names raise with the list of valid ones."""
    if name not in METRICS:
        raise InputError(f"unknown metric {name!r}; valid metrics: {sorted(METRICS)}")
    return METRICS[name]


def evaluate(model, tokenizer, benchmark, forget_split: str = "forget10",
             metrics: Sequence[str] = DEFAULT_METRICS, retain_truth_ratios=None,
             max_examples: int | None = None, prompt_format="qa", batch_size: int = 32,
             max_new_tokens: int = 128, original_model=None, mia_k: float = 0.2) -> pd.DataFrame:
    """Evaluate ``model`` on a benchmark ``DatasetDict``; one tidy row per (metric, split).

    Splits by role: forget = ``forget_split``; retain = its retain split (``forget10`` ->
    ``retain90``); ``world_facts``; ``holdout`` (MIA non-members). Per metric:

    ============== ===================================================================
    es, em         forget, retain (``es_paraphrased``: the paraphrased questions)
    probability    forget, retain (mean p(a)); world_facts (normalised)
    rouge          forget, retain, world_facts (greedy generation: the slow one)
    truth_ratio    forget (min(R,1/R)), retain and world_facts (max(0,1-R)); base answer:
                   paraphrased_answer, except ``answer`` on world_facts (as TOFU)
    forget_quality forget vs ``retain_truth_ratios`` (required: the retain model's
                   :func:`truth_ratio` on the forget split, or a {qa_id: R_geo} dict;
                   matched to the evaluated forget rows by qa_id, so ``max_examples``
                   compares like with like; missing rows raise)
    model_utility  hmean of :data:`MODEL_UTILITY_COMPONENTS` (the components are computed
                   even if not requested, and then reported too; a component metric that
                   is not requested runs on the utility's splits only: no forget ROUGE)
    mia_*          AUC, forget (members) vs holdout (non-members)
    calibrated_es  forget ES at the calibrated mixing ratio with ``original_model``
    ============== ===================================================================

    ``max_examples`` keeps the first N rows of every split (deterministic; the official ES
    script likewise takes the first 400 retain rows, TOFU's ``ds_size`` the first 300).
    Teacher-forced passes are shared between metrics (ES, EM, probability and loss-MIA on a
    split cost one pass). Returns a DataFrame with columns ``metric, split, role, value, n``
    (``n``: examples behind the value; components for model utility; members + non-members
    for MIA). ``df.attrs["details"]`` is an :class:`EvalDetails`: ``.per_example``, a long
    DataFrame ``metric, split, qa_id, value``, and ``.results``, (metric, split) -> the
    :class:`MetricResult`.
    """
    from ..data.benchmark import retain_split_for

    metrics = list(dict.fromkeys([metrics] if isinstance(metrics, str) else metrics))
    if not metrics:
        raise InputError(f"no metrics requested; valid metrics: {sorted(METRICS)}")
    for name in metrics:
        get_metric(name)
    if "forget_quality" in metrics and retain_truth_ratios is None:
        raise InputError("forget_quality needs retain_truth_ratios: the retain model's truth ratios "
                         "on the forget split, e.g. truth_ratio(retain_model, tokenizer, "
                         f"benchmark[{forget_split!r}], kind='forget')")
    if "calibrated_es" in metrics and original_model is None:
        raise InputError("calibrated_es needs original_model (the model before unlearning)")
    if max_examples is not None and max_examples < 1:
        raise InputError(f"max_examples must be >= 1 or None, got {max_examples}")
    check_model_tokenizer(model, tokenizer)
    splits = {"forget": forget_split, "retain": retain_split_for(forget_split),
              "world_facts": "world_facts", "holdout": "holdout"}
    needed = set(metrics) | ({"probability", "rouge", "truth_ratio"} if "model_utility" in metrics else set())
    roles = {role for m in needed for role in METRIC_ROLES.get(m, ("forget",))}
    roles |= {"retain"} if {"model_utility", "calibrated_es"} & needed else set()
    roles |= {"holdout"} if any(m.startswith("mia_") for m in needed) else set()
    missing = [splits[r] for r in sorted(roles) if splits[r] not in benchmark]
    if missing:
        raise InputError(f"the benchmark has no split(s) {missing} (have {list(benchmark)})")
    rows = {}
    for role in roles:
        rows[role] = _as_rows(benchmark[splits[role]], f"split {splits[role]!r}")
        if max_examples is not None:
            rows[role] = rows[role][:max_examples]

    @functools.cache
    def scored(role, question_field="question", answer_field="answer"):
        return score_answers(model, tokenizer, rows[role], question_field, answer_field,
                             prompt_format, batch_size)

    @functools.cache
    def perturbed(role):
        return _perturbed_nll(model, tokenizer, rows[role], "question", prompt_format, batch_size)

    results: dict[tuple[str, str], MetricResult] = {}

    def add(metric, split, result):
        result.name = metric
        results[(metric, split)] = result

    def run(metric, role):
        if metric in ("es", "es_paraphrased"):
            q = "paraphrased_question" if metric == "es_paraphrased" else "question"
            return _es_result(scored(role, q), include_eos=False)
        if metric == "em":
            return _em_result(scored(role), include_eos=False)
        if metric == "probability":
            return _probability_result(scored(role), perturbed(role) if role == "world_facts" else None)
        if metric == "rouge":
            gens = generate_answers(model, tokenizer, rows[role], "question", prompt_format,
                                    max_new_tokens, batch_size)
            return _rouge_result(rows[role], gens)
        if metric == "truth_ratio":
            base = "answer" if role == "world_facts" else "paraphrased_answer"
            kind = "forget" if role == "forget" else "retain"
            return _truth_ratio_result(scored(role, "question", base), perturbed(role), kind, base)
        raise AssertionError(metric)

    utility_roles = {r for _, r in MODEL_UTILITY_COMPONENTS}
    for metric in [m for m in METRICS if m in needed and m in METRIC_ROLES]:
        for role in METRIC_ROLES[metric]:
            if metric in metrics or role in utility_roles:  # only model utility asked for it
                add(metric, splits[role], run(metric, role))
    if "model_utility" in metrics:
        comps = {f"{m}/{splits[r]}": results[(m, splits[r])].agg_value
                 for m, r in MODEL_UTILITY_COMPONENTS}
        add("model_utility", f"{splits['retain']}+world_facts", model_utility(comps))
    if "forget_quality" in metrics:
        tr = results.get(("truth_ratio", splits["forget"])) or run("truth_ratio", "forget")
        add("forget_quality", splits["forget"], forget_quality(tr, retain_truth_ratios))  # by qa_id
    for attack in MIA_ATTACKS:
        if f"mia_{attack}" in metrics:
            mem, non = (_mia_values(scored(role), rows[role], attack, mia_k) for role in ("forget", "holdout"))
            add(f"mia_{attack}", f"{splits['forget']}_vs_holdout", _mia_result(attack, mem, non, mia_k))
    if "calibrated_es" in metrics:
        add("calibrated_es", splits["forget"], calibrated_extraction_strength(
            original_model, model, tokenizer, rows["forget"], rows["retain"],
            prompt_format=prompt_format, batch_size=batch_size))
    return _tidy(results, splits)


@dataclass(eq=False)
class EvalDetails:
    """Per-example values behind an :func:`evaluate` table (kept in ``df.attrs["details"]``).

    Compared by identity on purpose: ``pd.concat`` compares the ``attrs`` of its inputs, which
    would fail on a DataFrame stored there directly; unequal details are simply dropped."""

    per_example: pd.DataFrame
    results: dict[tuple[str, str], MetricResult]

    def __deepcopy__(self, memo):
        # pandas deep-copies ``attrs`` into every frame, row or column taken from the table
        # (``itertuples``, ``df[...]``): copying all per-example values each time took ~4 % of a
        # run's CPU. The details are read-only, so every derived table shares this one.
        return self


def _tidy(results: dict[tuple[str, str], MetricResult], splits: dict[str, str]) -> pd.DataFrame:
    # role: forget / retain / world_facts for per-split metrics, else what the split label joins
    role_of = {v: k for k, v in splits.items()}
    role_of.update({f"{splits['forget']}_vs_holdout": "mia",
                    f"{splits['retain']}+world_facts": "utility"})
    table = pd.DataFrame(
        [{"metric": m, "split": s, "role": role_of[s], "value": res.agg_value,
          "n": res.extra.get("n", res.extra.get("n_unlearned", len(res.value_by_index)))}
         for (m, s), res in results.items()],
        columns=["metric", "split", "role", "value", "n"])
    per_example = pd.DataFrame(
        [{"metric": m, "split": s, "qa_id": i, "value": v}
         for (m, s), res in results.items() for i, v in res.value_by_index.items()],
        columns=["metric", "split", "qa_id", "value"])
    table.attrs["details"] = EvalDetails(per_example, results)
    return table
