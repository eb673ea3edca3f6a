"""satimp_lab: see what loss reweighting does to LLM unlearning (SatImp, ICML 2025).

The public API on one page, in the order data flows through the pipeline. Every name below is
importable from ``satimp_lab`` (``from satimp_lab import Lab, get_method``) and lives in the module
named above it; the formulas and their sources are on docs/methods.md.

The names are imported on first use (PEP 562 ``__getattr__``): ``import satimp_lab`` does not import
torch, so ``satimp-lab --help`` starts in a fraction of a second. The keys of the table are the
modules, by stage folder (README, "What is inside"). ``unlearning.loop.unlearn`` and
``mainjob.reproduce.reproduce`` are reached through their modules (``from satimp_lab.unlearning.loop
import unlearn``). Module paths from before the stage folders are gone (CHANGELOG.md says where
each went).
"""

from __future__ import annotations

import importlib


__version__ = "0.1.0"

_API: dict[str, tuple[str, ...]] = {
    # --- data/: the benchmark, and how a (question, answer) pair becomes tokens
    "data.schema": ("retain_split_for",),  # the row schema of every split, synthetic or TOFU
    "data.benchmark": ("BenchmarkConfig", "generate_benchmark", "load_benchmark"),  # synthetic TOFU-shaped authors
    "data.tofu": ("load_tofu",),  # the real TOFU by its Hub configs
    "data.tofu_layout": ("write_tofu_layout",),  # our benchmark in the Hub's layout
    "data.batching": ("PROMPT_FORMATS", "encode_dataset"),  # answer-only labels, key masks
    # --- tiers: every tier and size, declared in one place
    "tiers": ("TIERS", "SIZES", "TierConfig"),
    # --- models/: building a model, reading it (teacher-forced log-likelihoods), target and retain
    #     fine-tuning, the model cache and the shipped models
    "models.build": ("get_tier", "ModelBundle", "pretrained_bundle", "load_smollm2"),
    "models.reading": ("token_logprobs", "teacher_forced_summary"),  # the one teacher-forced pass
    "models.cache": ("get_model",),  # shipped models, then the on-disk cache, then training
    # --- evaluation/: ES, the TOFU metrics, MIA (the unlearning loop evaluates with them)
    "evaluation.reading": ("MetricResult",),  # what every metric returns: aggregate + per-example values
    "evaluation.memorisation": ("extraction_strength", "calibrated_extraction_strength"),
    "evaluation.tofu": ("answer_probability", "rouge_l_recall", "truth_ratio", "forget_quality", "model_utility"),
    "evaluation.privacy": ("membership_inference",),
    "evaluation.metrics": ("evaluate",),  # every metric by name on a benchmark's splits, in one call
    # --- unlearning/: per-token weights, hyper-parameters, loss terms and named methods, the loop,
    #     its token trace, and what the weights look like (analytic curves, statistics)
    "unlearning.weighting": ("saturation", "importance", "satimp", "group_average", "instance_weights",
                             "batch_weights", "hard_sample", "annotated", "npo_implicit_weights",
                             "simnpo_implicit_weights"),  # pure tensor functions, [batch, pos] -> weights
    "unlearning.params": ("Param", "PARAMS", "get_param"),  # every hyper-parameter: check, label, slider, sweeps
    "unlearning.objectives": ("Method", "get_method", "list_methods"),  # every method by name, with defaults
    "unlearning.run": ("UnlearnConfig", "UnlearnRun", "PRESETS"),  # one run; the loop itself: loop.unlearn
    "unlearning.plan": ("EvalPlan",),  # what a run records
    "unlearning.tracing": ("TokenTrace",),  # per-token likelihood and weight of every step
    "unlearning.weight_curves": ("family_curves", "satimp_peak", "weight_table"),  # w(p) of each method, analytic
    "unlearning.weight_stats": ("distribution_summary", "summarise_trace", "key_vs_other"),
    # --- ui/: the playground of notebook 08 (weight-curve figures and sliders: satimp_lab.ui.widgets)
    "ui.playground": ("Playground", "PlaygroundUI"),
    # --- experiments/: the run engine (settings, runs and what they record, sweeps, the population)
    "experiments": ("Lab", "RunSpec", "Setting", "SETTINGS", "get_setting", "Sweep", "SweepError",
                    "MissingReading", "process_pool", "forget_at_matched_retain"),
    # --- studies/: the studies of the paper's claims, verdicts; mainjob/: the main job and its report
    "studies": ("STUDIES", "Study", "StudyResult", "get_study", "run_studies"),
    "studies.verdicts": ("compare", "decide", "PairedComparison", "PopulationClaim", "claims_table"),
    "mainjob.report": ("build_report",),  # the main job itself: mainjob.reproduce.reproduce
    # --- the bottom floor: user errors, the on-disk cache, the files shipped with the package
    "errors": ("InputError",),
    "store": ("CacheError", "cache_dir"),
    "resources": ("shipped_path",),
}

_HOME = {name: module for module, names in _API.items() for name in names}

__all__ = [name for names in _API.values() for name in names]


def __getattr__(name: str):
    """Import a public name from its module on first use (then it is a plain attribute)."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'satimp_lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
