"""The TOFU family: answer probability, ROUGE-L recall of greedy answers, truth ratio, forget
quality and model utility (definitions and sources: docs/methods.md#metrics).

Which tokens count: probability and truth ratio use the answer tokens *and* the EOS, like the TOFU
code, whose labels include the first padding EOS (docs/methods.md#which-tokens-count).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import special, stats

from ..errors import InputError
from .reading import MetricResult, ScoredAnswer, _as_rows, _qa_id, generate_answers, score_answers

__all__ = ["answer_probability", "normalised_probability", "rouge_l_recall", "rouge_l_recall_scores",
           "truth_ratio", "truth_ratio_from_nll", "log_truth_ratio_from_nll", "aggregate_truth_ratio",
           "truth_ratio_prob_mean", "paired_samples", "forget_quality", "MODEL_UTILITY_COMPONENTS",
           "MODEL_UTILITY_COMPONENTS_TOFU", "model_utility"]


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


def _perturbed_nll(model, tokenizer, rows, question_field, prompt_format, batch_size,
                   what: str = "rows") -> list[list[float]]:
    """Mean NLL of every perturbed answer of every row: one list per row. A row without any raises
    :class:`InputError` naming ``what`` (e.g. ``split 'retain90'``), the row and the field."""
    flat: list[dict] = []
    for i, r in enumerate(rows):
        answers = list(r.get("perturbed_answer") or [])
        if not answers:
            raise InputError(f"{what} row {i} (qa_id {_qa_id(r, i)}): field 'perturbed_answer' is empty or "
                             f"missing; the truth ratio and the normalised probability need at least one "
                             f"wrong answer (real TOFU keeps them in its *_perturbed configs: "
                             f"forgetXX_perturbed, retain_perturbed, real_authors_perturbed, "
                             f"world_facts_perturbed)")
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


def truth_ratio_prob_mean(ratios, log: bool = False) -> float:
    """open-unlearning's ``prob_mean`` truth-ratio aggregator (``truth_ratio`` in its
    ``src/evals/metrics/memorization.py``; the OpenUnlearning paper's "extent of knowledge"):
    mean_i p(true_i) / (p(true_i) + p(false_i)), 1 = always prefers the truth, 0.5 = cannot tell.

    ``ratios``: R_i = p(false_i) / p(true_i), our orientation (a sequence or {qa_id: R}), or
    log R_i with ``log=True``; each term is 1 / (1 + R) = expit(-log R), so R = 0 gives 1 and
    R = inf gives 0. open-unlearning's p(false) is the *geometric* mean of the perturbed answers'
    probabilities: pass ``truth_ratio(...).extra["log_geometric_by_index"]`` with ``log=True`` to
    match it (the raw, arithmetic R gives the arithmetic analogue). It adds 1e-10 to the
    denominator, which pulls its value toward 0 once both probabilities fall below ~1e-8;
    ours is exact (docs/methods.md#truth-ratio). Empty or NaN input raises ``ValueError``."""
    r = np.asarray(list(ratios.values()) if isinstance(ratios, Mapping) else ratios, dtype=float).reshape(-1)
    if r.size == 0:
        raise ValueError("ratios: cannot aggregate an empty set of truth ratios")
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = r if log else np.log(r)
    if np.any(np.isnan(log_r)):
        raise ValueError(f"ratios must be {'logs (not NaN)' if log else '>= 0'}, got {r.tolist()}")
    return float(np.mean(special.expit(-log_r)))


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
MODEL_UTILITY_COMPONENTS_TOFU = (("probability", "retain"), ("rouge", "retain"), ("truth_ratio", "retain"),
                                 ("probability", "real_authors"), ("rouge", "real_authors"),
                                 ("truth_ratio", "real_authors"),
                                 ("probability", "world_facts"), ("rouge", "world_facts"),
                                 ("truth_ratio", "world_facts"))
"""The 9 (metric, role) pairs of TOFU's model utility on a benchmark in the Hub's layout (TOFU's
``aggregate_eval_stat.py``; open-unlearning's ``configs/eval/tofu_metrics/model_utility.yaml``):
retain (``retain_perturbed``), real authors (``real_authors_perturbed``) and world facts
(``world_facts_perturbed``) x probability, ROUGE, truth ratio."""


def model_utility(components) -> MetricResult:
    """Model Utility (docs/methods.md#model-utility) = ``scipy.stats.hmean`` of its components.

    On the synthetic benchmark the components are the 6 of :data:`MODEL_UTILITY_COMPONENTS`:
    probability (retain: mean p(a); world facts: normalised), ROUGE-L recall and aggregated
    truth ratio (max(0, 1 - R)) on the retain split and on world facts. Real TOFU (the Hub's
    layout) has the 9 of :data:`MODEL_UTILITY_COMPONENTS_TOFU`: the same three on
    ``retain_perturbed``, ``real_authors_perturbed`` (normalised probability) and
    ``world_facts_perturbed`` (docs/methods.md#real-tofu). Forget-set metrics are never included.
    ``extra["components"]`` keeps each component by name. ``components`` is
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
