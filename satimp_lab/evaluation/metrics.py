"""Evaluation metrics by name, and the one-call evaluation of a model on a benchmark
(definitions and sources: docs/methods.md#metrics).

The metrics themselves live by family, like open-unlearning's metric files:

    reading        :class:`MetricResult` (what every metric returns), one teacher-forced pass
                   (:func:`score_answers`) and greedy generation (:func:`generate_answers`)
    memorisation   Extraction Strength, exact memorisation, ES at the calibrated mixing ratio
    tofu           probability, ROUGE-L, truth ratio, forget quality, model utility
    privacy        membership inference (LOSS, zlib, min-k%) and its AUC

This module names them (:data:`METRICS`, :func:`get_metric`) and runs them on a benchmark's
splits (:func:`evaluate`), sharing teacher-forced passes between metrics. Import a metric's
function from its family (``from satimp_lab.evaluation.tofu import truth_ratio``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from ..errors import InputError
from .memorisation import _em_result, _es_result, calibrated_extraction_strength, exact_memorization, extraction_strength
from .privacy import MIA_ATTACKS, MODEL_MIA_ATTACKS, _mia_result, _mia_values, membership_inference
from .reading import MetricResult, _as_rows, check_model_tokenizer, generate_answers, score_answers
from .tofu import (MODEL_UTILITY_COMPONENTS, MODEL_UTILITY_COMPONENTS_TOFU, _perturbed_nll, _probability_result,
                   _rouge_result, _truth_ratio_result, answer_probability, forget_quality, model_utility,
                   rouge_l_recall, truth_ratio)

__all__ = ["METRICS", "DEFAULT_METRICS", "METRIC_ROLES", "get_metric", "evaluate", "EvalDetails"]


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
    "mia_min_k_plus_plus": functools.partial(membership_inference, attack="min_k_plus_plus"),
    "mia_reference": functools.partial(membership_inference, attack="reference"),
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
METRIC_ROLES_TOFU = {m: roles if "world_facts" not in roles else ("forget", "retain", "real_authors", "world_facts")
                     for m, roles in METRIC_ROLES.items()}
""":data:`METRIC_ROLES` on a benchmark in the Hub's layout: real authors beside world facts."""
GENERAL_ROLES = ("real_authors", "world_facts")
"""Roles whose probability is normalised and whose truth ratio's base answer is ``answer`` (TOFU)."""


def get_metric(name: str) -> Callable:
    """The function registered as ``name``; unknown names raise with the list of valid ones."""
    if name not in METRICS:
        raise InputError(f"unknown metric {name!r}; valid metrics: {sorted(METRICS)}")
    return METRICS[name]


def evaluate(model, tokenizer, benchmark, forget_split: str = "forget10",
             metrics: Sequence[str] = DEFAULT_METRICS, retain_truth_ratios=None,
             max_examples: int | None = None, prompt_format="qa", batch_size: int = 32,
             max_new_tokens: int = 128, original_model=None, mia_k: float = 0.2,
             reference_model=None, mia_include_eos: bool = True) -> pd.DataFrame:
    """Evaluate ``model`` on a benchmark ``DatasetDict``; one tidy row per (metric, split).

    Splits by role (``data.tofu.eval_splits``). Synthetic benchmark: forget = ``forget_split``;
    retain = its retain split (``forget10`` -> ``retain90``); ``world_facts``; ``holdout`` (MIA
    non-members). A benchmark in TOFU's Hub layout (``data.tofu.is_hub_layout``: real TOFU or
    ``write_tofu_layout``'s files) is read as TOFU and open-unlearning read it
    (docs/methods.md#real-tofu): forget = ``forget10_perturbed``, retain = ``retain_perturbed``,
    real_authors = ``real_authors_perturbed``, world_facts = ``world_facts_perturbed``, holdout =
    ``holdout10``; the training configs (``full``, ``forget10``, ``retain90``) are not read here.
    Per metric:

    ============== ===================================================================
    es, em         forget, retain (``es_paraphrased``: the paraphrased questions)
    probability    forget, retain (mean p(a)); world_facts and real_authors (normalised)
    rouge          forget, retain, world_facts, real_authors (greedy generation: the slow one)
    truth_ratio    forget (min(R,1/R)), retain, real_authors and world_facts (max(0,1-R));
                   base answer: paraphrased_answer, except ``answer`` on world facts and
                   real authors (as TOFU)
    forget_quality forget vs ``retain_truth_ratios`` (required: the retain model's
                   :func:`truth_ratio` on the forget split, or a {qa_id: R_geo} dict;
                   matched to the evaluated forget rows by qa_id, so ``max_examples``
                   compares like with like; missing rows raise)
    model_utility  hmean of :data:`MODEL_UTILITY_COMPONENTS` (6; Hub layout:
                   :data:`MODEL_UTILITY_COMPONENTS_TOFU`, 9), each named
                   ``"<metric>/<split>"`` in the result's ``extra["components"]`` and
                   present as its own (metric, split) row of the table (the components
                   are computed even if not requested; a component metric that is not
                   requested runs on the utility's splits only: no forget ROUGE)
    mia_*          AUC, forget (members) vs holdout (non-members): LOSS, zlib, min-k%
                   (``mia_k``), min-k%++ (vocabulary-normalised) and the reference-model
                   attack (``mia_reference``, needs ``reference_model``, e.g. the retain
                   model); ``mia_include_eos=False`` scores the tokens open-unlearning scores
                   (docs/methods.md#membership-inference)
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

    Raises :class:`InputError`: an unknown metric or forget split; a split the metrics need that
    the benchmark lacks (named, with the splits it has); a row without perturbed answers where the
    truth ratio or the normalised probability needs them (split, row, field); ``forget_quality``
    without ``retain_truth_ratios`` (saying how to compute them).
    """
    from ..data.tofu import eval_splits

    metrics = list(dict.fromkeys([metrics] if isinstance(metrics, str) else metrics))
    if not metrics:
        raise InputError(f"no metrics requested; valid metrics: {sorted(METRICS)}")
    for name in metrics:
        get_metric(name)
    splits = eval_splits(benchmark, forget_split)  # raises on a bad forget split
    if "forget_quality" in metrics and retain_truth_ratios is None:
        raise InputError(
            f"forget_quality needs retain_truth_ratios: the truth ratios of the retain model (trained "
            f"without the forget authors: get_model(benchmark, 'retain', {forget_split!r}, tier=...)) on "
            f"the same forget rows: truth_ratio(retain.model, retain.tokenizer, "
            f"benchmark[{splits['forget']!r}], kind='forget'), or evaluate(retain.model, "
            f"retain.tokenizer, benchmark, {forget_split!r}, metrics=['truth_ratio'])"
            f".attrs['details'].results[('truth_ratio', {splits['forget']!r})]")
    if "calibrated_es" in metrics and original_model is None:
        raise InputError("calibrated_es needs original_model (the model before unlearning)")
    if "mia_reference" in metrics and reference_model is None:
        raise InputError("mia_reference needs reference_model (a model never trained on the forget split, "
                         "e.g. the retain model): evaluate(..., reference_model=retain.model)")
    if max_examples is not None and max_examples < 1:
        raise InputError(f"max_examples must be >= 1 or None, got {max_examples}")
    check_model_tokenizer(model, tokenizer)
    hub = "real_authors" in splits
    metric_roles = METRIC_ROLES_TOFU if hub else METRIC_ROLES
    utility_components = MODEL_UTILITY_COMPONENTS_TOFU if hub else MODEL_UTILITY_COMPONENTS
    needed = set(metrics) | ({"probability", "rouge", "truth_ratio"} if "model_utility" in metrics else set())
    roles = {role for m in needed for role in metric_roles.get(m, ("forget",))}
    roles |= {"retain"} if {"model_utility", "calibrated_es"} & needed else set()
    roles |= {"holdout"} if any(m.startswith("mia_") for m in needed) else set()
    missing = [splits[r] for r in sorted(roles) if splits[r] not in benchmark]
    if missing:
        how = f"; load them: load_benchmark('tofu', splits=[..., *{missing}], data_dir=...)" if hub else ""
        raise InputError(f"the benchmark has no split(s) {missing} (have {list(benchmark)}){how}")
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
        return _perturbed_nll(model, tokenizer, rows[role], "question", prompt_format, batch_size,
                              what=f"split {splits[role]!r}")

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
            return _probability_result(scored(role), perturbed(role) if role in GENERAL_ROLES else None)
        if metric == "rouge":
            gens = generate_answers(model, tokenizer, rows[role], "question", prompt_format,
                                    max_new_tokens, batch_size)
            return _rouge_result(rows[role], gens)
        if metric == "truth_ratio":
            base = "answer" if role in GENERAL_ROLES else "paraphrased_answer"
            kind = "forget" if role == "forget" else "retain"
            return _truth_ratio_result(scored(role, "question", base), perturbed(role), kind, base)
        raise AssertionError(metric)

    utility_roles = list(dict.fromkeys(r for _, r in utility_components))
    for metric in [m for m in METRICS if m in needed and m in metric_roles]:
        for role in metric_roles[metric]:
            if metric in metrics or role in utility_roles:  # only model utility asked for it
                add(metric, splits[role], run(metric, role))
    if "model_utility" in metrics:
        comps = {f"{m}/{splits[r]}": results[(m, splits[r])].agg_value
                 for m, r in utility_components}
        add("model_utility", _utility_label(splits), model_utility(comps))
    if "forget_quality" in metrics:
        tr = results.get(("truth_ratio", splits["forget"])) or run("truth_ratio", "forget")
        add("forget_quality", splits["forget"], forget_quality(tr, retain_truth_ratios))  # by qa_id
    for attack in MIA_ATTACKS:
        if f"mia_{attack}" in metrics:
            mem, non = (_mia_values(scored(role), rows[role], attack, mia_k, include_eos=mia_include_eos)
                        for role in ("forget", "holdout"))
            add(f"mia_{attack}", f"{splits['forget']}_vs_{splits['holdout']}",
                _mia_result(attack, mem, non, mia_k, include_eos=mia_include_eos))
    for attack in MODEL_MIA_ATTACKS:  # a pass of their own (the vocabulary; a second model)
        if f"mia_{attack}" in metrics:
            add(f"mia_{attack}", f"{splits['forget']}_vs_{splits['holdout']}", membership_inference(
                model, tokenizer, rows["forget"], rows["holdout"], attack, mia_k, prompt_format, batch_size,
                include_eos=mia_include_eos, reference_model=reference_model if attack == "reference" else None))
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


def _utility_label(splits: dict[str, str]) -> str:
    """The split label of model utility: its splits joined by ``+`` (``retain90+world_facts``;
    Hub layout ``retain_perturbed+real_authors_perturbed+world_facts_perturbed``)."""
    roles = ("retain", "real_authors", "world_facts") if "real_authors" in splits else ("retain", "world_facts")
    return "+".join(splits[r] for r in roles)


def _tidy(results: dict[tuple[str, str], MetricResult], splits: dict[str, str]) -> pd.DataFrame:
    # role: forget / retain / world_facts for per-split metrics, else what the split label joins
    role_of = {v: k for k, v in splits.items()}
    role_of.update({f"{splits['forget']}_vs_{splits['holdout']}": "mia", _utility_label(splits): "utility"})
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
