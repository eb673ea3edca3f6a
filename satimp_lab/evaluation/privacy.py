"""The privacy family: membership inference (LOSS, zlib and min-k% attacks, and their AUC of the
forget set against the holdout set; docs/methods.md#metrics).

The scores use the answer tokens *and* the EOS, like the TOFU code
(docs/methods.md#which-tokens-count). Orientation: higher = *less* member-like (a loss), and
:func:`mia_auc` is P(non-member score > member score), open-unlearning's convention: AUC near 1
means the forget set still looks like training data, 0.5 means indistinguishable from holdout.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from .reading import MetricResult, ScoredAnswer, _as_rows, score_answers

__all__ = ["loss_score", "zlib_score", "min_k_score", "MIA_ATTACKS", "mia_scores", "mia_auc",
           "membership_inference"]


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
