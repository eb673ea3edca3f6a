"""Evaluation metrics by name, and the one-call evaluation of a model on a benchmark
(definitions and sources: docs/methods.md#metrics).

The metrics themselves live by family, like open-unlearning's metric files:

    reading        :class:`MetricResult` (what every metric returns), one teacher-forced pass
                   (:func:`score_answers`) and greedy generation (:func:`generate_answers`)
    memorisation   Extraction Strength, exact memorisation, ES at the calibrated mixing ratio
    tofu           probability, ROUGE-L, truth ratio, forget quality, model utility
    privacy        membership inference (LOSS, zlib, min-k%) and its AUC
    muse           MUSE's VerbMem, KnowMem and PrivLeak on raw-text passages

This module names them (:data:`METRICS`, :func:`get_metric`: a :class:`Metric` each, which
computes its metric on its own or inside an evaluation) and runs them on a benchmark's splits
(:func:`evaluate`), sharing teacher-forced passes between metrics. Import a metric's
function from its family (``from satimp_lab.evaluation.tofu import truth_ratio``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..errors import InputError
from .muse import _knowmem_on, _privleak_of, _verbmem_on, knowledge_memorization, text_privleak, verbatim_memorization
from .memorisation import _em_result, _es_result, calibrated_extraction_strength, exact_memorization, extraction_strength
from .privacy import MIA_ATTACKS, _mia_result, _mia_values, membership_inference
from .reading import MetricResult, _as_rows, check_model_tokenizer, generate_answers, score_answers
from .tofu import (MODEL_UTILITY_COMPONENTS, MODEL_UTILITY_COMPONENTS_TOFU, _perturbed_nll, _probability_result,
                   _rouge_result, _truth_ratio_result, answer_probability, forget_quality, model_utility,
                   rouge_l_recall, truth_ratio)

__all__ = ["Metric", "KINDS", "METRICS", "DEFAULT_METRICS", "METRIC_ROLES", "get_metric", "evaluate", "EvalDetails"]


# ----------------------------------------------------------------------------------------------
# the registry: every metric by name, computed on its own or inside evaluate


KINDS = ("split", "summary", "comparison")
"""What a :class:`Metric` gives inside :func:`evaluate`, in the order evaluate computes them:
``split``, one result on each split it reads; ``summary``, one result made of the split metrics'
results (model utility); ``comparison``, one result that sets the evaluated rows against other
rows or models (forget quality, membership inference, calibrated ES)."""


@dataclass(frozen=True)
class Metric:
    """A metric by name: how to compute it on its own, and what it gives inside :func:`evaluate`.

    Calling a Metric calls ``function``, the standalone metric of its family module
    (``get_metric("es")(model, tokenizer, rows)`` is ``extraction_strength(model, tokenizer, rows)``).
    Inside :func:`evaluate`, ``compute`` reads the passes that the metrics of one evaluation share:

    kind        one of :data:`KINDS`
    compute     ``split``: ``compute(ev, role) -> MetricResult`` on the split of ``role``; else
                ``compute(ev) -> (split label, MetricResult)``
    roles       ``split``: the roles of the splits it is computed on (:data:`METRIC_ROLES`)
    reads       other kinds: the roles whose rows it reads
    needs       ``needs(hub) -> ((metric, role), ...)``: the split results it is made of
                (model utility's components; ``hub``: the benchmark is in TOFU's Hub layout)
    """

    function: Callable[..., MetricResult]
    kind: str
    compute: Callable[..., Any]
    roles: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    needs: Callable[[bool], tuple[tuple[str, str], ...]] = lambda hub: ()

    def __call__(self, *args, **kwargs) -> MetricResult:
        return self.function(*args, **kwargs)


@dataclass(eq=False)
class _Evaluation:
    """One :func:`evaluate` call as its metrics see it: the model, the rows by role, the settings,
    the teacher-forced passes shared between metrics (:meth:`scored`, :meth:`perturbed`, each
    computed once per split and fields) and the results so far, keyed by (metric, split)."""

    model: Any
    tokenizer: Any
    rows: dict[str, list[dict]]
    splits: dict[str, str]
    hub: bool
    prompt_format: Any
    batch_size: int
    max_new_tokens: int
    mia_k: float
    mia_include_eos: bool
    retain_truth_ratios: Any
    original_model: Any
    reference_model: Any
    retain_model: Any = None
    privleak_auc_ref: float | None = None
    results: dict[tuple[str, str], MetricResult] = field(default_factory=dict)
    _scored: dict = field(default_factory=dict)
    _perturbed: dict = field(default_factory=dict)

    def scored(self, role: str, question_field: str = "question", answer_field: str = "answer"):
        """:func:`score_answers` of the split of ``role`` (one pass per split and fields)."""
        key = (role, question_field, answer_field)
        if key not in self._scored:
            self._scored[key] = score_answers(self.model, self.tokenizer, self.rows[role], question_field,
                                              answer_field, self.prompt_format, self.batch_size)
        return self._scored[key]

    def perturbed(self, role: str):
        """The perturbed answers' NLLs of the split of ``role`` (one pass per split)."""
        if role not in self._perturbed:
            self._perturbed[role] = _perturbed_nll(self.model, self.tokenizer, self.rows[role], "question",
                                                   self.prompt_format, self.batch_size,
                                                   what=f"split {self.splits[role]!r}")
        return self._perturbed[role]

    def add(self, metric: str, split: str, result: MetricResult) -> None:
        result.name = metric
        self.results[(metric, split)] = result


def _es_on(ev: _Evaluation, role: str, question_field: str = "question") -> MetricResult:
    return _es_result(ev.scored(role, question_field), include_eos=False)


def _em_on(ev: _Evaluation, role: str) -> MetricResult:
    return _em_result(ev.scored(role), include_eos=False)


def _probability_on(ev: _Evaluation, role: str) -> MetricResult:
    return _probability_result(ev.scored(role), ev.perturbed(role) if role in GENERAL_ROLES else None)


def _rouge_on(ev: _Evaluation, role: str) -> MetricResult:
    gens = generate_answers(ev.model, ev.tokenizer, ev.rows[role], "question", ev.prompt_format,
                            ev.max_new_tokens, ev.batch_size)
    return _rouge_result(ev.rows[role], gens)


def _truth_ratio_on(ev: _Evaluation, role: str) -> MetricResult:
    base = "answer" if role in GENERAL_ROLES else "paraphrased_answer"
    kind = "forget" if role == "forget" else "retain"
    return _truth_ratio_result(ev.scored(role, "question", base), ev.perturbed(role), kind, base)


def _utility_components(hub: bool) -> tuple[tuple[str, str], ...]:
    return MODEL_UTILITY_COMPONENTS_TOFU if hub else MODEL_UTILITY_COMPONENTS


def _model_utility_of(ev: _Evaluation) -> tuple[str, MetricResult]:
    comps = {f"{m}/{ev.splits[r]}": ev.results[(m, ev.splits[r])].agg_value
             for m, r in _utility_components(ev.hub)}
    return _utility_label(ev.splits), model_utility(comps)


def _forget_quality_of(ev: _Evaluation) -> tuple[str, MetricResult]:
    forget = ev.splits["forget"]
    tr = ev.results.get(("truth_ratio", forget)) or _truth_ratio_on(ev, "forget")
    return forget, forget_quality(tr, ev.retain_truth_ratios)  # by qa_id


def _mia_of(ev: _Evaluation, attack: str) -> tuple[str, MetricResult]:
    if attack in MIA_ATTACKS:  # from the shared pass
        mem, non = (_mia_values(ev.scored(role), ev.rows[role], attack, ev.mia_k, include_eos=ev.mia_include_eos)
                    for role in ("forget", "holdout"))
        return _mia_label(ev.splits), _mia_result(attack, mem, non, ev.mia_k, include_eos=ev.mia_include_eos)
    # privacy.MODEL_MIA_ATTACKS: a pass of their own (the vocabulary; a second model)
    return _mia_label(ev.splits), membership_inference(
        ev.model, ev.tokenizer, ev.rows["forget"], ev.rows["holdout"], attack, ev.mia_k, ev.prompt_format,
        ev.batch_size, include_eos=ev.mia_include_eos,
        reference_model=ev.reference_model if attack == "reference" else None)


def _calibrated_es_of(ev: _Evaluation) -> tuple[str, MetricResult]:
    return ev.splits["forget"], calibrated_extraction_strength(
        ev.original_model, ev.model, ev.tokenizer, ev.rows["forget"], ev.rows["retain"],
        prompt_format=ev.prompt_format, batch_size=ev.batch_size)


def _mia(attack: str) -> Metric:
    return Metric(functools.partial(membership_inference, attack=attack), "comparison",
                  functools.partial(_mia_of, attack=attack), reads=("forget", "holdout"))


_FORGET_RETAIN = ("forget", "retain")
_WITH_WORLD_FACTS = ("forget", "retain", "world_facts")

METRICS: dict[str, Metric] = {
    "es": Metric(extraction_strength, "split", _es_on, _FORGET_RETAIN),
    "es_paraphrased": Metric(functools.partial(extraction_strength, question_field="paraphrased_question"),
                             "split", functools.partial(_es_on, question_field="paraphrased_question"),
                             _FORGET_RETAIN),
    "em": Metric(exact_memorization, "split", _em_on, _FORGET_RETAIN),
    "probability": Metric(answer_probability, "split", _probability_on, _WITH_WORLD_FACTS),
    "rouge": Metric(rouge_l_recall, "split", _rouge_on, _WITH_WORLD_FACTS),
    "truth_ratio": Metric(truth_ratio, "split", _truth_ratio_on, _WITH_WORLD_FACTS),
    "forget_quality": Metric(forget_quality, "comparison", _forget_quality_of, reads=("forget",)),
    "model_utility": Metric(model_utility, "summary", _model_utility_of, reads=("retain",),
                            needs=_utility_components),
    "mia_loss": _mia("loss"),
    "mia_zlib": _mia("zlib"),
    "mia_min_k": _mia("min_k"),
    "mia_min_k_plus_plus": _mia("min_k_plus_plus"),
    "mia_reference": _mia("reference"),
    "calibrated_es": Metric(calibrated_extraction_strength, "comparison", _calibrated_es_of,
                            reads=("forget", "retain")),
    # the MUSE-shaped family (data.muse): text passages and questions about them
    "verbmem": Metric(verbatim_memorization, "split", _verbmem_on, ("forget", "retain")),
    "knowmem": Metric(knowledge_memorization, "split", _knowmem_on, ("forget_qa", "retain_qa")),
    "privleak": Metric(text_privleak, "comparison", _privleak_of, reads=("forget", "holdout")),
}
"""Metric names understood by :func:`evaluate`, mapped to their :class:`Metric`."""

DEFAULT_METRICS = ("es", "em", "probability")
"""Teacher-forced only (no generation): cheap enough to run every few training steps."""

METRIC_ROLES = {name: metric.roles for name, metric in METRICS.items() if metric.kind == "split"}
"""The splits (by role) that :func:`evaluate` runs each per-split metric on (``Metric.roles``)."""
METRIC_ROLES_TOFU = {m: roles if "world_facts" not in roles else ("forget", "retain", "real_authors", "world_facts")
                     for m, roles in METRIC_ROLES.items()}
""":data:`METRIC_ROLES` on a benchmark in the Hub's layout: real authors beside world facts."""
GENERAL_ROLES = ("real_authors", "world_facts")
"""Roles whose probability is normalised and whose truth ratio's base answer is ``answer`` (TOFU)."""


def get_metric(name: str) -> Metric:
    """The :class:`Metric` registered as ``name`` (call it as its standalone function); unknown
    names raise :class:`InputError` with the list of valid ones."""
    if name not in METRICS:
        raise InputError(f"unknown metric {name!r}; valid metrics: {sorted(METRICS)}")
    return METRICS[name]


# ----------------------------------------------------------------------------------------------
# the one-call evaluation


def evaluate(model, tokenizer, benchmark, forget_split: str = "forget10",
             metrics: Sequence[str] = DEFAULT_METRICS, retain_truth_ratios=None,
             max_examples: int | None = None, prompt_format="qa", batch_size: int = 32,
             max_new_tokens: int = 128, original_model=None, mia_k: float = 0.2,
             reference_model=None, mia_include_eos: bool = True, family: str = "tofu",
             retain_model=None, privleak_auc_ref: float | None = None) -> pd.DataFrame:
    """Evaluate ``model`` on a benchmark ``DatasetDict``; one tidy row per (metric, split).

    ``family``: the benchmark family (``data.families``) whose split roles are read and whose
    metrics may be asked for (``"muse"``: ``verbmem``, ``knowmem``, ``privleak``, which needs
    ``retain_model`` or ``privleak_auc_ref``; docs/methods.md#muse-metrics). TOFU's splits by
    role (``data.tofu.eval_splits``). Synthetic benchmark: forget = ``forget_split``;
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
    from ..data.families import get_family

    metrics = list(dict.fromkeys([metrics] if isinstance(metrics, str) else metrics))
    if not metrics:
        raise InputError(f"no metrics requested; valid metrics: {sorted(METRICS)}")
    for name in metrics:
        get_metric(name)
    fam = get_family(family)
    fam.check_metrics(metrics)
    splits = fam.evaluation_splits(benchmark, forget_split)  # raises on a bad forget split
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
    # the roles each split metric is computed on: all of its own if asked for, and those a summary needs
    wanted = {name: set(metric_roles[name]) for name in metrics if name in metric_roles}
    for name in metrics:
        for needed, role in METRICS[name].needs(hub):
            wanted.setdefault(needed, set()).add(role)
    # the forget split is always read (an evaluation is of a forget split)
    roles = {"forget"} | {role for name in wanted for role in metric_roles[name]}
    roles |= {role for name in metrics for role in METRICS[name].reads}
    missing = [splits[r] for r in sorted(roles) if splits[r] not in benchmark]
    if missing:
        how = f"; load them: load_benchmark('tofu', splits=[..., *{missing}], data_dir=...)" if hub else ""
        raise InputError(f"the benchmark has no split(s) {missing} (have {list(benchmark)}){how}")
    rows = {}
    for role in roles:
        rows[role] = _as_rows(benchmark[splits[role]], f"split {splits[role]!r}")
        if max_examples is not None:
            rows[role] = rows[role][:max_examples]

    ev = _Evaluation(model, tokenizer, rows, splits, hub, prompt_format, batch_size, max_new_tokens, mia_k,
                     mia_include_eos, retain_truth_ratios, original_model, reference_model, retain_model,
                     privleak_auc_ref)
    for name in [n for n in METRICS if n in wanted]:  # the split metrics first, in registry order
        for role in [r for r in metric_roles[name] if r in wanted[name]]:
            ev.add(name, splits[role], METRICS[name].compute(ev, role))
    for kind in KINDS[1:]:  # then the summaries (made of split results), then the comparisons
        for name in [n for n in METRICS if n in metrics and METRICS[n].kind == kind]:
            ev.add(name, *METRICS[name].compute(ev))
    return _tidy(ev.results, splits)


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
    return "+".join(splits[r] for r in roles if r in splits)  # a family without world facts: its retain split


def _mia_label(splits: dict[str, str]) -> str:
    """The split label of a membership-inference AUC: ``<forget>_vs_<holdout>`` (members vs non-members)."""
    return f"{splits['forget']}_vs_{splits['holdout']}"


def _tidy(results: dict[tuple[str, str], MetricResult], splits: dict[str, str]) -> pd.DataFrame:
    # role: forget / retain / world_facts for per-split metrics, else what the split label joins
    role_of = {v: k for k, v in splits.items()}
    for label, role in ((_mia_label(splits), "mia"), (_utility_label(splits), "utility")):
        # a split's own role wins: a family without world facts has model utility's label = its retain split
        role_of.setdefault(label, role)
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
