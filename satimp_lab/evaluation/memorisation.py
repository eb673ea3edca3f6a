"""The memorisation family: Extraction Strength, exact memorisation, and ES at the calibrated
model-mixing ratio (definitions and sources: docs/methods.md#extraction-strength,
docs/methods.md#model-mixing-calibration).

Which tokens count: ES and EM use the *answer tokens only* (the final EOS label is dropped), like
the official ES script, whose text has no EOS (docs/methods.md#extraction-strength), and like
open-unlearning's ES and EM, which drop the last label (docs/methods.md#which-tokens-count);
``include_eos=True`` adds it. Both are reductions of one teacher-forced pass
(:func:`satimp_lab.evaluation.reading.score_answers`).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Sequence

import numpy as np

from ..models.reading import es_from_predictions
from .reading import MetricResult, ScoredAnswer, _as_rows, score_answers

__all__ = ["extraction_strength", "exact_memorization", "mix_models", "DEFAULT_MIX_GRID",
           "calibrated_extraction_strength"]


# ----------------------------------------------------------------------------------------------
# Extraction Strength and exact memorisation


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
    (:func:`satimp_lab.models.reading.es_from_predictions`). Aggregate: the mean over examples (lower on forget = more
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
    argmax equals the label; aggregate = mean over examples. Same tokens as ES: no EOS unless
    ``include_eos``. open-unlearning's ``exact_memorization``
    (``src/evals/metrics/memorization.py``) reads the same tokens: its
    ``tokenwise_vocab_logprobs`` (``src/evals/metrics/utils.py``) drops the last label, the EOS
    its TOFU preprocessing appends (docs/methods.md#which-tokens-count)."""
    scored = score_answers(model, tokenizer, rows, question_field, "answer", prompt_format, batch_size)
    return _em_result(scored, include_eos)


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
