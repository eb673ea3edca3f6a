"""Multiple-choice accuracy as lm-evaluation-harness scores it: zero-shot, the log-likelihood of each
choice given the question, the highest one picked (the WMDP-style family, issue 25).

    multiple_choice_accuracy    ``acc`` (argmax of the summed log-likelihoods) and ``acc_norm``
                                (argmax of the log-likelihood per character of the choice)
    mc_context                  the context (prompt) text a row is scored after
    encode_choice               a (context, continuation) pair as token ids, split as lm-eval splits it
    LM_EVAL_PROMPT              a prompt format that reproduces lm-eval's WMDP/MMLU context string

Two conventions, ``choice_format``:

``"letters"`` (default; WMDP and MMLU in lm-eval). The question is followed by the choices listed
as ``"A. <choice 0>"``, ``"B. <choice 1>"``, ...; the continuations scored are the *letters*
(``" A"``, ``" B"``, ...). lm-eval's ``lm_eval/tasks/wmdp/_default_template_yaml`` and
``lm_eval/tasks/mmlu/default/_default_template_yaml``: ``doc_to_text: "{{question.strip()}}\\nA.
{{choices[0]}}\\nB. ...\\nD. {{choices[3]}}\\nAnswer:"``, ``doc_to_choice: ["A", "B", "C", "D"]``,
``doc_to_target: answer``, ``num_fewshot: 0``, metric ``acc`` only. Every letter is one
character, so ``acc_norm`` equals ``acc`` up to ties here; WMDP reports ``acc``.

``"texts"`` (the classic ``acc_norm`` case: ARC, HellaSwag, PIQA). The context is the question
alone; the continuations are the choice texts themselves (``" <choice>"``), so a longer choice has
more tokens, a lower summed log-likelihood, and ``acc_norm`` divides that length out.

Sources, read for this module: ``EleutherAI/lm-evaluation-harness`` at commit ``4e7e0d4``
(2026-08-21). ``lm_eval/api/task.py``: ``ConfigurableTask.construct_requests`` (output type
``multiple_choice``: one request ``(ctx, target_delimiter + choice)`` per choice) and
``ConfigurableTask.process_results`` (``pred = np.argmax(lls)``, ``pred_norm = np.argmax(lls /
completion_len)`` with ``completion_len`` the length in *characters* of the choice string from
``doc_to_choice``, the delimiter not counted; ``acc_bytes`` the same per UTF-8 byte); the
legacy ``MultipleChoiceTask`` does the same with ``" " + choice``. ``lm_eval/config/task.py``:
``target_delimiter`` defaults to ``" "``. ``lm_eval/api/model.py``: ``TemplateLM._encode_pair``
(trailing spaces of the context move to the front of the continuation; a causal model encodes
context + continuation whole, encodes the context alone, and takes the continuation's tokens as
the whole's tokens after the context's token count). ``lm_eval/models/huggingface.py``:
``_loglikelihood_tokens`` (the input is ``context_enc + continuation_enc``, the continuation's
log-probabilities summed; a sequence longer than the model's window is cut from the left).

Our conventions and departures:

* The context is the package's prompt format around the question text (``prompt_format``, default
  ``"qa"``: ``"Question: {q}\\nAnswer:"``, the format our models were trained on), and the
  format's ``answer_prefix`` is lm-eval's ``target_delimiter`` (``" "`` for ``"qa"``, ``""`` for
  ``"chat"``, as lm-eval drops the delimiter under a chat template). With ``"letters"`` and
  ``"qa"`` the context differs from lm-eval's only by the leading ``"Question: "``;
  ``prompt_format=LM_EVAL_PROMPT`` gives lm-eval's string exactly. A BOS is put in front when
  the format adds one (what lm-eval's Hugging Face model does for tokenizers that add one).
* The tokens scored are lm-eval's: ``encode_choice`` encodes the whole text and the context, and
  the continuation is the whole's tokens from the context's token count on, read after the
  context's own tokens. A tokenizer that merges across the boundary (a continuation ``"es"``
  after ``"... fox"`` becoming ``" foxes"``) thus scores the whole's later tokens; should the
  continuation leave no token of its own, the row raises :class:`InputError` (lm-eval would
  score an empty continuation as 0). The package's own QA encoding
  (``data.batching.encode_example``) splits by character offsets instead; here we follow lm-eval.
* Only the continuation's tokens are scored: no EOS after a choice (unlike the QA metrics).
* A sequence longer than ``max_length`` (default the model's ``config.max_position_embeddings``)
  raises :class:`InputError` naming the row; lm-eval cuts it from the left with a warning, and
  this package never cuts silently.
* Log-likelihoods are summed in float64 from the per-token float32 readings
  (``models.reading.read_rows``); ties are broken as ``np.argmax`` breaks them: the first choice.
"""

from __future__ import annotations

import numbers
import string
from typing import Sequence

import numpy as np

from ..data.batching import IGNORE_INDEX, PromptFormat, get_prompt_format
from ..errors import InputError, check_choice, check_int
from ..models.reading import read_rows
from .reading import MetricResult, _eval_mode, check_model_tokenizer

__all__ = ["CHOICE_FORMATS", "LETTERS", "LM_EVAL_PROMPT", "mc_context", "encode_choice",
           "multiple_choice_accuracy"]

CHOICE_FORMATS = ("letters", "texts")
"""``"letters"``: the choices listed after the question, the letters scored (WMDP, MMLU);
``"texts"``: the choice texts scored as continuations of the question."""

LETTERS = string.ascii_uppercase
"""The labels of the listed choices (``"letters"``): at most 26 choices."""

LM_EVAL_PROMPT = PromptFormat("lm_eval", "{question}\nAnswer:", " ", next_turn=("\nAnswer:",))
"""lm-eval's WMDP/MMLU context exactly: the question text (for ``"letters"``, already followed by
the listed choices) then ``"\\nAnswer:"``, target delimiter ``" "``, a BOS in front."""


# ----------------------------------------------------------------------------------------------
# rows and prompts


def _check_rows(rows, what: str) -> list[dict]:
    """Multiple-choice rows as a list of dicts with ``qa_id`` filled in (default: the row's index).

    Raises :class:`InputError` naming ``what`` and the row (its index and ``qa_id``): an empty
    split; a ``qa_id`` that is not an integer or repeats an earlier row's; a ``question`` that is
    not a non-empty string; ``choices`` that are not a list of at least 2 non-empty strings; an
    ``answer`` that is not an integer index into ``choices``."""
    if rows is None:
        raise InputError(f"{what}: got None instead of a dataset")
    rows = rows.to_list() if hasattr(rows, "to_list") else list(rows)
    if not rows:
        raise InputError(f"{what}: the dataset is empty; an accuracy over no questions is undefined")
    out: list[dict] = []
    seen: dict[int, int] = {}
    for i, row in enumerate(rows):
        qa_id = row.get("qa_id", i)
        if not isinstance(qa_id, numbers.Integral) or isinstance(qa_id, bool):
            raise InputError(f"{what}: row {i}: field 'qa_id' must be an integer, got {qa_id!r}")
        qa_id = int(qa_id)
        name = f"{what}: row {i} (qa_id {qa_id})"
        if qa_id in seen:
            raise InputError(f"{name}: field 'qa_id' repeats row {seen[qa_id]}'s")
        question = row.get("question")
        if not (isinstance(question, str) and question.strip()):
            raise InputError(f"{name}: field 'question' must be a non-empty string, got {question!r}")
        choices = row.get("choices")
        if isinstance(choices, str) or not isinstance(choices, Sequence) or len(choices) < 2:
            raise InputError(f"{name}: field 'choices' must be a list of at least 2 strings, got {choices!r}")
        for j, choice in enumerate(choices):
            if not (isinstance(choice, str) and choice.strip()):
                raise InputError(f"{name}: field 'choices' item {j} must be a non-empty string, got {choice!r}")
        answer = row.get("answer")
        if (not isinstance(answer, numbers.Integral) or isinstance(answer, bool)
                or not 0 <= int(answer) < len(choices)):
            raise InputError(f"{name}: field 'answer' must be an integer index into its {len(choices)} "
                             f"choices (0 to {len(choices) - 1}), got {answer!r}")
        seen[qa_id] = i
        out.append({**row, "qa_id": qa_id, "choices": list(choices), "answer": int(answer)})
    return out


def mc_context(question: str, choices: Sequence[str], choice_format: str = "letters",
               prompt_format="qa", tokenizer=None) -> tuple[str, list[str]]:
    """(context text, continuation texts) of one question.

    ``"letters"``: the question text is ``question.strip()`` then one line ``"\\n<L>. <choice>"``
    per choice (``L`` = A, B, ...; lm-eval's WMDP/MMLU ``doc_to_text``), the continuations are
    ``answer_prefix + L``. ``"texts"``: the question text is ``question`` as given (the package's
    other metrics ask it so), the continuations ``answer_prefix + choice``. The context is
    ``prompt_format``'s prompt around the question text (a :class:`PromptFormat` or its name;
    ``tokenizer`` for a chat format). Raises :class:`InputError`: an unknown ``choice_format`` or
    prompt format, more than 26 choices with ``"letters"``."""
    check_choice("mc_context", "choice_format", choice_format, CHOICE_FORMATS)
    fmt = get_prompt_format(prompt_format)
    if choice_format == "letters":
        if len(choices) > len(LETTERS):
            raise InputError(f"mc_context: {len(choices)} choices; the letter convention labels at most "
                             f"{len(LETTERS)}")
        text = question.strip() + "".join(f"\n{LETTERS[j]}. {c}" for j, c in enumerate(choices))
        targets = list(LETTERS[:len(choices)])
    else:
        text, targets = question, list(choices)
    return fmt.prompt(text, tokenizer), [fmt.answer_prefix + t for t in targets]


def encode_choice(tokenizer, context: str, continuation: str, add_bos: bool = True) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) of one request, as lm-eval's ``TemplateLM._encode_pair`` splits it.

    Trailing whitespace of ``context`` moves to the front of ``continuation``; then
    ``whole = tok(context + continuation)`` and ``ctx = tok(context)`` (no special tokens), and the
    continuation's ids are ``whole[len(ctx):]``: the model reads ``ctx + whole[len(ctx):]`` and
    scores the second part. On a tokenizer that does not merge across the boundary this is
    ``tok(continuation)``; on one that does, the first continuation token may carry context
    characters, and the continuation may come out empty (the caller decides). The BOS
    (``add_bos`` and the tokenizer has one) is put in front of the context ids."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = list(tokenizer(context + continuation, add_special_tokens=False)["input_ids"])
    ctx = list(tokenizer(context, add_special_tokens=False)["input_ids"])
    lead = [tokenizer.bos_token_id] if add_bos and tokenizer.bos_token_id is not None else []
    return lead + ctx, whole[len(ctx):]


def _model_window(model, max_length: int | None) -> int | None:
    check_int("multiple_choice_accuracy", "max_length", max_length, minimum=2, none_ok=True)
    if max_length is None:
        limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        max_length = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    return max_length


# ----------------------------------------------------------------------------------------------
# the metric


def multiple_choice_accuracy(model, tokenizer, rows, choice_format: str = "letters", prompt_format="qa",
                             batch_size: int = 32, max_length: int | None = None) -> MetricResult:
    """Zero-shot multiple-choice accuracy of ``model`` on ``rows``, lm-eval's ``acc`` and ``acc_norm``.

    ``rows``: a ``datasets.Dataset`` or a list of dicts with ``question`` (str), ``choices`` (a
    list of at least 2 non-empty strings; WMDP has 4), ``answer`` (the int index of the right
    choice) and optionally ``qa_id`` (an integer, default the row's index; the per-example key).
    For each row and choice ``j``, the request is (context, continuation ``j``) of
    :func:`mc_context` (``choice_format``: ``"letters"``, WMDP/MMLU's listed choices with the
    letters scored, or ``"texts"``, the choice texts scored), tokenised by :func:`encode_choice`
    (lm-eval's split), and read in one teacher-forced pass per ``batch_size`` requests
    (``models.reading.read_rows``, in eval mode; the model's mode is restored). Per choice:

        ll[j]       the summed log-likelihood of the continuation's tokens, nats (<= 0)
        len[j]      the length of the scored choice string in characters, the delimiter not
                    counted (a letter: 1; lm-eval's ``completion_len``); bytes: its UTF-8 bytes

    Per row: ``pred = argmax_j ll[j]``, ``pred_norm = argmax_j ll[j] / len[j]`` (ties: the first
    choice, as ``np.argmax``), acc = [pred == answer], acc_norm = [pred_norm == answer].

    Returns a :class:`MetricResult` named ``"mc_accuracy"``: ``agg_value`` the mean acc in [0, 1];
    ``value_by_index`` {qa_id: 1.0 or 0.0}; ``extra``: ``acc``, ``acc_norm`` and ``acc_bytes``
    (means), ``acc_norm_by_index`` {qa_id: 1.0 or 0.0}, ``pred`` and ``pred_norm`` {qa_id: the
    chosen index}, ``loglikelihoods`` {qa_id: [ll per choice]}, ``n_tokens`` {qa_id: [tokens
    scored per choice]}, ``is_greedy`` {qa_id: [whether greedy decoding gives the continuation,
    lm-eval's exact_match basis]}, ``n`` (rows), ``chance`` (the expected acc of a uniform random
    guess: the mean of 1 / number of choices, 0.25 for four; draw it on every figure),
    ``choice_format``, ``prompt_format`` (its name).

    Raises :class:`InputError`: bad rows (an empty split; a row without choices or with fewer than
    2, an empty choice, an ``answer`` that is no index into its choices, a missing question, a
    ``qa_id`` that repeats: each names the row), a continuation that leaves no token of its own
    after the context (:func:`encode_choice`), a request longer than ``max_length``, an unknown
    ``choice_format``, ``batch_size`` < 1, a mismatched tokenizer
    (:func:`reading.check_model_tokenizer`)."""
    check_choice("multiple_choice_accuracy", "choice_format", choice_format, CHOICE_FORMATS)
    check_int("multiple_choice_accuracy", "batch_size", batch_size, minimum=1)
    rows = _check_rows(rows, "mc rows")
    check_model_tokenizer(model, tokenizer)
    fmt = get_prompt_format(prompt_format)
    window = _model_window(model, max_length)
    encoded: list[dict] = []
    scored: list[list[str]] = []
    for row in rows:
        context, continuations = mc_context(row["question"], row["choices"], choice_format, fmt, tokenizer)
        targets = list(LETTERS[:len(row["choices"])]) if choice_format == "letters" else row["choices"]
        scored.append(targets)
        for j, continuation in enumerate(continuations):
            ctx, cont = encode_choice(tokenizer, context, continuation, add_bos=fmt.add_bos)
            if not cont:
                raise InputError(f"mc rows: row qa_id {row['qa_id']}: choice {j} ({continuation!r}) leaves no "
                                 f"token of its own after the context (the tokenizer merges it into the "
                                 f"context's last token)")
            if window is not None and len(ctx) + len(cont) > window:
                raise InputError(f"mc rows: row qa_id {row['qa_id']}: choice {j} is {len(ctx) + len(cont)} tokens "
                                 f"with its context, more than max_length = {window} (never cut silently)")
            encoded.append({"input_ids": ctx + cont, "labels": [IGNORE_INDEX] * len(ctx) + cont,
                            "key_mask": [0] * (len(ctx) + len(cont)), "example_id": len(encoded)})
    with _eval_mode(model):
        readings = read_rows(model, encoded, tokenizer.pad_token_id, batch_size)
    acc, acc_norm, acc_bytes, pred, pred_norm, lls, n_tokens, greedy = {}, {}, {}, {}, {}, {}, {}, {}
    k = 0
    for row, targets in zip(rows, scored):
        qa_id, n = row["qa_id"], len(targets)
        mine = readings[k:k + n]
        k += n
        ll = np.array([r.logp.double().sum().item() for r in mine])
        chars = np.array([float(len(t)) for t in targets])
        utf8 = np.array([float(len(t.encode("utf-8"))) for t in targets])
        pred[qa_id], pred_norm[qa_id] = int(np.argmax(ll)), int(np.argmax(ll / chars))
        acc[qa_id] = float(pred[qa_id] == row["answer"])
        acc_norm[qa_id] = float(pred_norm[qa_id] == row["answer"])
        acc_bytes[qa_id] = float(int(np.argmax(ll / utf8)) == row["answer"])
        lls[qa_id] = ll.tolist()
        n_tokens[qa_id] = [len(r.labels) for r in mine]
        greedy[qa_id] = [bool((r.preds == r.labels).all()) for r in mine]
    return MetricResult("mc_accuracy", float(np.mean(list(acc.values()))), acc,
                        {"acc": float(np.mean(list(acc.values()))),
                         "acc_norm": float(np.mean(list(acc_norm.values()))),
                         "acc_bytes": float(np.mean(list(acc_bytes.values()))),
                         "acc_norm_by_index": acc_norm, "pred": pred, "pred_norm": pred_norm,
                         "loglikelihoods": lls, "n_tokens": n_tokens, "is_greedy": greedy, "n": len(rows),
                         "chance": float(np.mean([1.0 / len(r["choices"]) for r in rows])),
                         "choice_format": choice_format, "prompt_format": fmt.name})


# ----------------------------------------------------------------------------------------------
# inside evaluation.metrics.evaluate (the registry's compute function; ``ev`` is its _Evaluation)


def _mc_accuracy_on(ev, role: str) -> MetricResult:
    """Multiple-choice accuracy (the letter convention) on the split of ``role``."""
    return multiple_choice_accuracy(ev.model, ev.tokenizer, ev.rows[role], prompt_format=ev.prompt_format,
                                    batch_size=ev.batch_size)
