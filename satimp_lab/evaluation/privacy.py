"""The privacy family: membership inference (LOSS, zlib, min-k%, min-k%++ and reference-model
attacks), their AUC of the forget set against the holdout set, and MUSE's PrivLeak summary
(docs/methods.md#membership-inference).

Which tokens count: every score reads the answer tokens *and* the EOS by default, like the TOFU
code (docs/methods.md#which-tokens-count); ``include_eos=False`` drops the EOS, which is what
open-unlearning's min-k% and min-k%++ do (its ``tokenwise_logprobs`` drops the last label).
Orientation: higher = *less* member-like (a loss), and :func:`mia_auc` is P(non-member score >
member score), open-unlearning's convention: AUC near 1 means the forget set still looks like
training data, 0.5 means indistinguishable from holdout.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from scipy import stats

from ..data.batching import collate, encode_dataset
from ..errors import InputError
from ..models.reading import token_logprobs
from .reading import MetricResult, ScoredAnswer, _as_rows, _eval_mode, check_model_tokenizer, score_answers

__all__ = ["loss_score", "zlib_score", "label_text", "min_k_score", "vocab_normalised_logprobs",
           "min_k_plus_plus_score", "reference_score", "read_vocab_normalised", "MIA_ATTACKS",
           "MODEL_MIA_ATTACKS", "mia_scores", "mia_auc", "membership_inference", "privleak_from_auc",
           "privleak", "privleak_against"]


# ----------------------------------------------------------------------------------------------
# per-example scores (pure functions)


def loss_score(nll: float) -> float:
    """LOSS attack: the mean token NLL of the answer (+EOS). Higher = less member-like."""
    return float(nll)


def zlib_score(nll: float, text: str) -> float:
    """zlib attack (Carlini et al. 2021): mean token NLL / len(zlib.compress(text)) in bytes.
    Normalising by the text's compressibility discounts answers that are easy for any model.
    Same direction as the loss: higher = less member-like.

    We compress the raw ``answer``; open-unlearning (``src/evals/metrics/mia/zlib.py``) the
    decoded label tokens (:func:`label_text`), which differ when the prompt/answer separator is
    part of the answer's first token (docs/methods.md#membership-inference)."""
    return float(nll) / len(zlib.compress(text.encode("utf-8")))


def label_text(tokenizer, label_ids) -> str:
    """The text open-unlearning's zlib attack compresses: the label tokens decoded with
    ``skip_special_tokens=True`` (``extract_target_texts_from_processed_data`` in its
    ``src/evals/metrics/utils.py``). ``label_ids``: ``[n]`` ids, e.g. ``ScoredAnswer.labels``
    (the EOS is a special token and disappears). With our ``"qa"`` format and a BPE tokenizer it
    is ``" " + answer``: the space after ``Answer:`` belongs to the answer's first token."""
    ids = torch.as_tensor(label_ids).reshape(-1).tolist()
    if not ids:
        raise ValueError("label_ids: no label tokens to decode")
    return tokenizer.decode(ids, skip_special_tokens=True)


def _scored_tokens(values, include_eos: bool, what: str) -> np.ndarray:
    """``values`` as a float64 ``[n]`` array, the last entry (the EOS) dropped unless
    ``include_eos``; no values left raises ``ValueError`` naming ``what``."""
    arr = np.asarray(values, dtype=float).reshape(-1)
    if not include_eos:
        arr = arr[:-1]
    if arr.size == 0:
        raise ValueError(f"{what}: no tokens to score" + ("" if include_eos else
                                                         " (include_eos=False drops the only one)"))
    return arr


def min_k_score(token_logps, k: float = 0.2, include_eos: bool = True) -> float:
    """Min-k% attack (Shi et al. 2024): minus the mean of the ``max(1, int(k*n))`` lowest token
    log-probabilities (open-unlearning's rounding). Higher = less member-like.

    ``token_logps``: ``[n]`` log p of the answer tokens, then the EOS (a ``ScoredAnswer.logp``).
    ``include_eos=False`` drops the last entry first, as open-unlearning's ``MinKProbAttack``
    (``src/evals/metrics/mia/min_k.py``) does: log-probs [-0.1, -0.2, -0.3, -0.4] and an EOS at
    -9.0 give 9.0 with the EOS (k = 0.2: 1 of 5 tokens) and 0.4 without (1 of 4). No tokens, or
    k outside (0, 1], raise ``ValueError`` (open-unlearning scores no tokens as 0)."""
    if not 0 < k <= 1:
        raise ValueError(f"k must be in (0, 1], got {k}")
    lp = np.sort(_scored_tokens(token_logps, include_eos, "min-k% token_logps"))
    return float(-lp[:max(1, int(k * lp.size))].mean())


def vocab_normalised_logprobs(logits, labels) -> np.ndarray:
    """Min-k%++'s per-token statistic (Zhang et al. 2024): z_t = (log p(x_t) - mu_t) / sigma_t.

    ``logits``: ``[n, vocab]`` next-token logits (or log-probabilities: they are normalised with
    ``log_softmax``) at the n scored positions; ``labels``: ``[n]`` the token ids x_t. mu_t and
    sigma_t^2 are the mean and variance of log p(v) for v drawn from the model's own
    distribution at that position: mu = sum_v p(v) log p(v), sigma^2 = sum_v p(v) (log p(v) -
    mu)^2 (an expectation, so no sample correction), equal to open-unlearning's
    E[(log p)^2] - mu^2 (``src/evals/metrics/mia/min_k_plus_plus.py``) without its cancellation.
    sigma^2 is floored at 1e-6 as there (a uniform distribution gives z = 0, not NaN); tokens of
    probability 0 (logit -inf) add nothing. Returns float64 ``[n]``. Computed in float32 (float64
    for float64 logits)."""
    logits, labels = torch.as_tensor(logits), torch.as_tensor(labels).reshape(-1)
    if logits.ndim != 2 or logits.shape[0] != labels.numel():
        raise ValueError(f"logits must be [n, vocab] with n = len(labels) = {labels.numel()}, "
                         f"got shape {tuple(logits.shape)}")
    if labels.numel() == 0:
        raise ValueError("labels: min-k%++ of no tokens is undefined")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must be token ids in [0, {logits.shape[1]}), got {labels.tolist()}")
    if torch.isnan(logits).any():
        raise ValueError("logits contain NaN")
    logp = torch.log_softmax(logits.double() if logits.dtype == torch.float64 else logits.float(), -1)
    p = logp.exp()
    mu = torch.where(p > 0, p * logp, 0.0).sum(-1)
    var = torch.where(p > 0, p * (logp - mu[:, None]) ** 2, 0.0).sum(-1).clamp_min(1e-6)
    target = logp.gather(1, labels.to(logp.device)[:, None]).squeeze(1)
    return ((target - mu) / var.sqrt()).double().cpu().numpy()


def min_k_plus_plus_score(logits, labels, k: float = 0.2, include_eos: bool = True) -> float:
    """Min-k%++ attack (Zhang et al. 2024; open-unlearning's ``MinKPlusPlusAttack``): minus the
    mean of the ``max(1, int(k*n))`` lowest :func:`vocab_normalised_logprobs`. Higher = less
    member-like. ``logits`` ``[n, vocab]`` and ``labels`` ``[n]``: the answer tokens, then the
    EOS; ``include_eos=False`` drops the last position (open-unlearning's tokens)."""
    return min_k_score(vocab_normalised_logprobs(logits, labels), k, include_eos)


def reference_score(nll: float, nll_reference: float) -> float:
    """Reference-model attack (open-unlearning's ``ReferenceAttack``,
    ``src/evals/metrics/mia/reference.py``): the target model's mean token NLL minus the
    reference model's on the same tokens (nats). Subtracting what a model that never saw the
    example finds hard leaves the part the target memorised; higher = less member-like."""
    nll, nll_reference = float(nll), float(nll_reference)
    if not (math.isfinite(nll) and math.isfinite(nll_reference)):
        raise ValueError(f"reference attack: NLLs must be finite, got {nll} and {nll_reference}")
    return nll - nll_reference


# ----------------------------------------------------------------------------------------------
# reading a model


MIA_ATTACKS = ("loss", "zlib", "min_k")
"""Attacks computed from one teacher-forced pass (``ScoredAnswer``); ``evaluate`` runs them."""

MODEL_MIA_ATTACKS = ("min_k_plus_plus", "reference")
"""Attacks that need more than the label log-probs: the vocabulary distribution at every answer
position (min-k%++) or a second model (reference). :func:`membership_inference` runs them."""


def read_vocab_normalised(model, tokenizer, rows, question_field: str = "question",
                          answer_field: str = "answer", prompt_format="qa", batch_size: int = 32,
                          ) -> dict[int, np.ndarray]:
    """{qa_id: z ``[n]``}: :func:`vocab_normalised_logprobs` at every label position of each row
    (the answer tokens, then the EOS; docs/methods.md#which-tokens-count), from the model's
    logits at those positions. One batched teacher-forced pass per ``batch_size`` rows in row
    order (the reading of :func:`satimp_lab.evaluation.reading.score_answers`, keeping the
    logits), in eval mode without gradients; the model's mode is restored."""
    rows = _as_rows(rows)
    check_model_tokenizer(model, tokenizer)
    encoded = encode_dataset(tokenizer, rows, prompt_format, question_field=question_field,
                             answer_field=answer_field, with_key_spans=False)
    out: dict[int, np.ndarray] = {}
    with _eval_mode(model):
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start:start + batch_size]
            tl = token_logprobs(model, collate(chunk, tokenizer.pad_token_id), keep_logits=True,
                                labels_only=True)
            z = vocab_normalised_logprobs(tl.logits, tl.labels)
            for e, part in zip(chunk, np.split(z, np.cumsum(tl.per_row())[:-1])):
                out[int(e["example_id"])] = part
    return out


def _nll(s: ScoredAnswer, include_eos: bool) -> float:
    """Mean token NLL; with the EOS exactly ``ScoredAnswer.nll`` (the stored numbers' path)."""
    return s.nll if include_eos else float(-s.tokens(False)[2].double().mean())


def _mia_values(scored: Sequence[ScoredAnswer], rows, attack: str, k: float,
                include_eos: bool = True) -> dict[int, float]:
    if attack == "loss":
        return {s.qa_id: loss_score(_nll(s, include_eos)) for s in scored}
    if attack == "zlib":
        return {s.qa_id: zlib_score(_nll(s, include_eos), r["answer"]) for s, r in zip(scored, rows)}
    if attack == "min_k":
        return {s.qa_id: min_k_score(s.logp.numpy(), k, include_eos) for s in scored}
    raise ValueError(f"unknown MIA attack {attack!r}; valid: {list(MIA_ATTACKS)}")


def _check_attack(attack: str, reference_model) -> None:
    if attack not in MIA_ATTACKS + MODEL_MIA_ATTACKS:
        raise InputError(f"unknown MIA attack {attack!r}; valid: {list(MIA_ATTACKS + MODEL_MIA_ATTACKS)}")
    if (attack == "reference") != (reference_model is not None):
        raise InputError("reference_model is required by attack 'reference' and used by no other"
                         f" (attack {attack!r}, reference_model {'given' if reference_model is not None else None})")


def mia_scores(model, tokenizer, rows, attack: str = "loss", k: float = 0.2, prompt_format="qa",
               batch_size: int = 32, *, include_eos: bool = True, reference_model=None) -> MetricResult:
    """Per-example MIA scores on (question, answer) over answer tokens + EOS (without the EOS if
    ``include_eos=False``); aggregate = mean score. ``attack``: one of :data:`MIA_ATTACKS`
    (:func:`loss_score`, :func:`zlib_score`, :func:`min_k_score`) or :data:`MODEL_MIA_ATTACKS`
    (:func:`min_k_plus_plus_score` from :func:`read_vocab_normalised`; :func:`reference_score`,
    which needs ``reference_model``, read with the same tokenizer)."""
    rows = _as_rows(rows)
    _check_attack(attack, reference_model)
    if attack == "min_k_plus_plus":
        z = read_vocab_normalised(model, tokenizer, rows, "question", "answer", prompt_format, batch_size)
        values = {i: min_k_score(v, k, include_eos) for i, v in z.items()}
    else:
        scored = score_answers(model, tokenizer, rows, "question", "answer", prompt_format, batch_size)
        if attack == "reference":
            ref = score_answers(reference_model, tokenizer, rows, "question", "answer", prompt_format,
                                batch_size)
            values = {s.qa_id: reference_score(_nll(s, include_eos), _nll(r, include_eos))
                      for s, r in zip(scored, ref)}
        else:
            values = _mia_values(scored, rows, attack, k, include_eos)
    return MetricResult(f"mia_{attack}", float(np.mean(list(values.values()))), values,
                        {"attack": attack, "k": k, "include_eos": include_eos})


# ----------------------------------------------------------------------------------------------
# AUC and PrivLeak


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


def _mia_result(attack: str, member: dict, nonmember: dict, k: float,
                include_eos: bool = True) -> MetricResult:
    return MetricResult(f"mia_{attack}", mia_auc(member, nonmember), {**member, **nonmember},
                        {"attack": attack, "k": k, "include_eos": include_eos,
                         "member_ids": list(member), "nonmember_ids": list(nonmember)})


def membership_inference(model, tokenizer, member_rows, nonmember_rows, attack: str = "loss",
                         k: float = 0.2, prompt_format="qa", batch_size: int = 32, *,
                         include_eos: bool = True, reference_model=None) -> MetricResult:
    """MIA AUC of one attack with ``member_rows`` (the forget split) against ``nonmember_rows``
    (holdout, never trained on). ``value_by_index`` holds every example's score; the member and
    non-member ids are in ``extra``. ``include_eos`` and ``reference_model``: :func:`mia_scores`
    (docs/methods.md#membership-inference)."""
    args = dict(include_eos=include_eos, reference_model=reference_model)
    mem = mia_scores(model, tokenizer, member_rows, attack, k, prompt_format, batch_size, **args)
    non = mia_scores(model, tokenizer, nonmember_rows, attack, k, prompt_format, batch_size, **args)
    if set(mem.value_by_index) & set(non.value_by_index):
        raise ValueError("member and non-member rows share qa_id values")
    return _mia_result(attack, mem.value_by_index, non.value_by_index, k, include_eos)


def _check_auc(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an AUC in [0, 1], got {value!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise InputError(f"{name} must be an AUC in [0, 1], got {value!r}")
    return value


def privleak_from_auc(auc: float, auc_ref: float) -> float:
    """MUSE's PrivLeak (Shi et al. 2024, "MUSE"), as open-unlearning's ``privleak``
    (``src/evals/metrics/privacy.py``) computes it from our AUC orientation:

        ((1 - auc) - (1 - auc_ref)) / (1 - auc_ref) * 100

    ``auc``: the MIA AUC (:func:`mia_auc`, P(non-member > member)) of the unlearned model,
    ``auc_ref``: the same attack's AUC for the retain model (never trained on the forget set).
    MUSE orients its AUC the other way (1 - ours), so this is MUSE's (AUC_unl - AUC_retrain) /
    AUC_retrain x 100. 0: as private as the retain model; negative (down to -100): the forget
    set still looks trained-on (under-unlearning); positive: it looks *less* member-like than
    the retain model finds it (over-unlearning). ``auc_ref = 1`` (the retain model already
    separates the sets perfectly) leaves nothing to compare with and raises ``InputError``
    (open-unlearning adds 1e-10 to the denominator and reports up to 1e12); so do AUCs outside
    [0, 1] (docs/methods.md#membership-inference)."""
    auc, auc_ref = _check_auc(auc, "auc"), _check_auc(auc_ref, "auc_ref")
    if auc_ref == 1.0:
        raise InputError("auc_ref = 1: the retain model's AUC leaves 1 - auc_ref = 0 to divide by; "
                         "PrivLeak is undefined (use another attack or more holdout rows)")
    return ((1 - auc) - (1 - auc_ref)) / (1 - auc_ref) * 100


def privleak(model, tokenizer, member_rows, nonmember_rows, retain_model=None, auc_ref: float | None = None,
             attack: str = "min_k", k: float = 0.4, include_eos: bool = False, prompt_format="qa",
             batch_size: int = 32, reference_model=None) -> MetricResult:
    """PrivLeak (:func:`privleak_from_auc`) of ``model`` against ``retain_model``, or against a
    given ``auc_ref`` (exactly one of the two; open-unlearning falls back to 0.5 when the retain
    model's logs are missing: pass ``auc_ref=0.5`` for that).

    Defaults are open-unlearning's TOFU and MUSE ``privleak`` configs: min-k% at k = 0.4 on the
    answer tokens without the EOS (docs/methods.md#membership-inference). Returns a
    MetricResult: ``agg_value`` the PrivLeak in percent, no per-example values, ``extra`` with
    ``auc``, ``auc_ref``, the settings and the :func:`membership_inference` results
    (``mia``, and ``mia_ref`` when the retain model was read)."""
    args = dict(attack=attack, k=k, prompt_format=prompt_format, batch_size=batch_size,
                include_eos=include_eos, reference_model=reference_model)
    value, mia, auc_ref, extra = privleak_against(
        lambda m: membership_inference(m, tokenizer, member_rows, nonmember_rows, **args),
        model, retain_model, auc_ref, "privleak")
    return MetricResult("privleak", value, {}, {"auc": mia.agg_value, "auc_ref": auc_ref, "attack": attack,
                                                "k": k, "include_eos": include_eos, **extra})


def privleak_against(read_mia: Callable[[object], MetricResult], model, retain_model, auc_ref: float | None,
                     who: str) -> tuple[float, MetricResult, float, dict]:
    """PrivLeak (:func:`privleak_from_auc`) of ``model`` against ``retain_model`` or a given
    ``auc_ref``, with ``read_mia(model) -> MetricResult`` an MIA AUC (the same attack on both
    models): the one recipe of :func:`privleak` (QA rows) and ``evaluation.muse.text_privleak``
    (text passages). Returns (PrivLeak in percent, the model's MIA result, the reference AUC,
    ``{"mia": ..., "mia_ref": ...}`` (``mia_ref`` when ``retain_model`` was read)). Raises
    :class:`InputError` naming ``who``: both or neither of ``retain_model`` and ``auc_ref``; an
    ``auc_ref`` outside [0, 1] or equal to 1, before any model is read."""
    if (retain_model is None) == (auc_ref is None):
        raise InputError(f"{who} needs exactly one of retain_model (read with the same attack) and "
                         f"auc_ref (a number), got {'both' if retain_model is not None else 'neither'}")
    if auc_ref is not None:
        _check_auc(auc_ref, "auc_ref")  # before the model is read
    mia = read_mia(model)
    extra: dict[str, object] = {"mia": mia}
    if retain_model is not None:
        extra["mia_ref"] = mia_ref = read_mia(retain_model)
        auc_ref = mia_ref.agg_value
    assert auc_ref is not None  # exactly one of retain_model and auc_ref (checked above)
    return privleak_from_auc(mia.agg_value, auc_ref), mia, float(auc_ref), extra
