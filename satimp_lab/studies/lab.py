"""Sweeps over methods x hyper-parameters x seeds, cached on disk, returned as DataFrames.

A :class:`Lab` holds one experimental setting (tier, benchmark, forget split, base recipe) and the
models it needs (target and retain, from the model cache). ``lab.run(...)`` runs one method and
caches its history, trace and final metrics under a key made of the *full* run configuration and
the target model's cache key, so a second call is instant and a changed config never reuses a
stale result. ``lab.sweep(...)`` runs many and returns one tidy table, computing the missing runs
on a ``concurrent.futures`` executor (by default a local process pool, one worker per core; any
Executor, e.g. for a cluster: README, "Speed").

Methods are compared at matched quality (docs/methods.md#forget-es-at-matched-retain):
:func:`forget_at_matched_retain` reads each run's training curve at the step where retain quality
first falls to a set share of its starting value.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import functools
import json
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple, cast

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..errors import InputError, check_choice, check_int, check_real
from ..data.benchmark import BenchmarkConfig, load_benchmark
from ..data.families import get_family
from ..models.build import get_tier, prompt_format_for
from ..models.cache import CACHE_FORMAT, get_model
from ..models.train import subset_benchmark
from ..store import CacheError, atomic_directory, cache_dir, cache_key, read_entry
from ..evaluation.metrics import get_metric
from ..unlearning.objectives import ALIASES, METHODS
from ..unlearning.params import PARAMS
from .shards import Shards, failure_note, note_failure
from ..tiers import PAPER_DRY_RUN_KEEPS, SIZES, paper_recipe, setting_name
from ..tiers import TIER_RECIPES as _TIER_RECIPE_FIELDS
from ..unlearning.tracing import TokenTrace
from ..unlearning.loop import UnlearnConfig, unlearn
from ..unlearning.plan import CURVES_TO_MATCH, FULL, EvalPlan


@dataclass(frozen=True)
class Setting:
    """An experimental setting: where every run of a notebook happens."""

    name: str = "full"
    tier: str = "tiny"
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    forget_split: str = "forget10"
    """forget10 = 10 authors x 4 QA = 40 rows, the size of TOFU's forget01."""
    base: UnlearnConfig = field(default_factory=lambda: UnlearnConfig(**SIZES["full"]["base"]))
    """The shared recipe; default: the ``full`` size's (``tiers.SIZES``, where its values are
    explained)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    target_seed: int = 0
    """Training seed of this Lab's target and retain models. A from-scratch model's training is
    chaotic: another seed (or another CPU) gives another target, so claims are decided on the
    population of :attr:`target_seeds`, not on one target."""
    target_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    """The population of target models (their training seeds) on which claims are decided: every
    (target seed, unlearning seed) pair is a unit (:meth:`Lab.sweep_population`,
    ``satimp_lab.studies.verdicts``). The tiny tier's five are shipped in ``data/models``."""
    match_level: float = 0.9
    """Compare forget ES where retain ES first falls to this share of its starting value."""
    final_metrics: tuple[str, ...] = ("es", "es_paraphrased", "em", "probability", "truth_ratio",
                                      "forget_quality", "model_utility", "mia_loss")
    """Metrics computed on the final model of each run whose plan asks for them
    (``EvalPlan.final_metrics``; ``()`` for none): see ``satimp_lab.evaluation.metrics``.
    Model utility's ROUGE runs on the retain split and world facts only; add ``"rouge"`` for the
    forget split too (no table or claim reads it)."""
    final_max_examples: int | None = 40
    """Rows per split for the final metrics: the first 40 (all of forget10 and world_facts, ten
    retain authors); 80 would double the retain side for ~0.8 s more per run."""
    max_new_tokens: int = 48
    """Greedy generation budget for ROUGE (answers are ~15-25 tokens)."""
    metrics_batch_size: int = 32
    """Rows per forward pass (and per generation batch) of the final metrics."""
    base_model: str | None = None
    """The pretrained model the ``paper`` tier fine-tunes into its target and retain models (a
    Hugging Face name or a local folder, e.g. ``"microsoft/phi-1_5"``); None for the tiers that
    build their own (``models.build.get_tier``)."""
    source: str = "synthetic"
    """The benchmark: ``"synthetic"`` (ours, built from :attr:`benchmark`) or ``"tofu"`` (the real
    ``locuslab/TOFU`` by its Hub config names, online or from :attr:`data_dir`;
    ``data.benchmark.load_benchmark``)."""
    data_dir: str | None = None
    """A local folder of the benchmark's files (for ``"tofu"``, the Hub's JSON files); None: the
    synthetic benchmark generated from :attr:`benchmark`, or TOFU from the Hub."""
    family: str = "tofu"
    """The benchmark family (``data.families``): its split names, how a row becomes a labelled
    sequence, the readings runs are matched on. Out of the run keys at its default."""

    def __post_init__(self):
        own = "Setting"
        if not self.seeds:
            raise InputError(f"{own}.seeds must hold at least one seed, got {self.seeds!r}")
        if not self.target_seeds:
            raise InputError(f"{own}.target_seeds must hold at least one target seed, got {self.target_seeds!r}")
        for name, seeds in (("seeds", self.seeds), ("target_seeds", self.target_seeds)):
            for seed in seeds:
                check_int(own, name, seed, minimum=0)
        check_int(own, "target_seed", self.target_seed, minimum=0)
        check_real(own, "match_level", self.match_level, low=0, high=1, low_open=True)
        check_int(own, "final_max_examples", self.final_max_examples, minimum=1, none_ok=True)
        check_int(own, "max_new_tokens", self.max_new_tokens, minimum=1)
        check_int(own, "metrics_batch_size", self.metrics_batch_size, minimum=1)
        check_choice(own, "source", self.source, ("synthetic", "tofu"))
        if self.tier == "paper" and not self.base_model:
            raise InputError(f"{own}: the paper tier needs base_model (a Hugging Face name or a local "
                             f"folder, e.g. 'microsoft/phi-1_5'; the CLI's --base-model)")
        try:  # names: tier, split, metrics
            self.tier_config()
            get_family(self.family).training_splits(self.forget_split)
            for name in self.final_metrics:
                get_metric(name)
        except ValueError as err:
            raise InputError(f"{own}: {err}") from None

    def tier_config(self):
        """The :class:`~satimp_lab.tiers.TierConfig` of :attr:`tier`, with :attr:`base_model` (the
        paper tier's prompt format and learning rate follow it: ``models.build.get_tier``)."""
        return get_tier(self.tier, **({"base_model": self.base_model} if self.base_model else {}))

    def benchmark_splits(self) -> list[str]:
        """The splits a Lab of this setting loads (its family's ``load_splits``)."""
        return get_family(self.family).load_splits(self.source, self.forget_split)

    def matched(self, history: pd.DataFrame) -> dict:
        """:func:`forget_at_matched_retain` of a run's history at :attr:`match_level`, on the
        family's efficacy and utility readings (``forget_es``, ``retain_es`` for TOFU)."""
        return forget_at_matched_retain(history, self.match_level, **get_family(self.family).matched_columns())


SETTING_DEFAULTS_OUT_OF_KEYS = ("base_model", "source", "data_dir", "family")
"""Setting fields that a run's cache key holds only when they differ from their default, so the
keys of runs made before the fields existed stay valid."""


def _setting_fields(fields_: dict) -> dict:
    """``Setting`` fields from a table of :mod:`satimp_lab.tiers` (nested dicts made into the
    ``benchmark`` and ``base`` configs)."""
    out = dict(fields_)
    if "benchmark" in out:
        out["benchmark"] = BenchmarkConfig(**out["benchmark"])
    if "base" in out:
        out["base"] = UnlearnConfig(**out["base"])
    return out


SETTINGS = {name: replace(Setting(), name=name, **_setting_fields(f)) for name, f in SIZES.items()}
"""The named sizes (``full``, ``fast``), declared in ``tiers.SIZES``."""

TIER_RECIPES = {tier: _setting_fields(f) for tier, f in _TIER_RECIPE_FIELDS.items()}
"""Setting fields a tier needs whatever the size (``Lab(SIZE, tier="small")``), declared in
``tiers.TIER_RECIPES``; fields passed explicitly to :func:`get_setting` win."""


def get_setting(size: str | Setting = "full", **overrides) -> Setting:
    """A named size (``full``, ``fast``) or a Setting, with overrides. Overriding ``tier`` with one
    that has a recipe in :data:`TIER_RECIPES` also applies that recipe (the setting is renamed
    ``"<size>-<tier>"``), so a notebook's ``TIER = "small"`` gets a recipe that suits the model."""
    if isinstance(size, str):
        if size not in SETTINGS:
            raise InputError(f"unknown size {size!r}; valid: {sorted(SETTINGS)}")
        size = SETTINGS[size]
    tier = overrides.get("tier")
    if isinstance(tier, str) and tier in TIER_RECIPES and tier != size.tier:
        recipe = TIER_RECIPES[tier]
        if tier == "paper" and overrides.get("base_model"):  # the recipe of the model's family
            recipe = {**recipe, "base": replace(recipe["base"], **paper_recipe(prompt_format_for(overrides["base_model"])))}
        if tier == "paper" and size.tier == "micro":  # --fast: a dry run of the machinery
            recipe = {**recipe, **{k: getattr(size, k) for k in PAPER_DRY_RUN_KEEPS}}
        overrides = {"name": setting_name(size.name, tier), **recipe, **overrides}
    return replace(size, **overrides) if overrides else size


# ----------------------------------------------------------------------------------------------


def forget_at_matched_retain(history: pd.DataFrame, level: float = 0.9, retain_col: str = "retain_es",
                             forget_col: str = "forget_es") -> dict:
    """Forget quality at the step where retain quality first falls to ``level`` x its start value.

    Linear interpolation between the two evaluations that bracket the crossing. If retain never
    falls that far, the final values are returned with ``reached=False`` (the method is gentler
    than the budget: its forget value is an upper bound of what it would reach at the level).
    Returns plain Python ``float``/``bool`` values (ES in 0-1, the step in optimiser steps).
    """
    missing = [c for c in (retain_col, forget_col) if c not in history.columns]
    if missing:
        raise ValueError(f"the history has no column(s) {missing}: runs compared at matched retain "
                         f"quality need periodic evaluations (eval_every must not be None)")
    ev = history.dropna(subset=[retain_col, forget_col]).sort_values("step")
    if ev.empty:
        raise ValueError(f"the history has no evaluations of {retain_col!r} and {forget_col!r}")
    retain, forget, steps = (ev[c].to_numpy(float) for c in (retain_col, forget_col, "step"))
    threshold = level * retain[0]
    below = np.nonzero(retain <= threshold)[0]
    if len(below) == 0 or below[0] == 0:
        i = len(retain) - 1 if len(below) == 0 else 0
        return {"matched_forget": float(forget[i]), "matched_retain": float(retain[i]),
                "matched_step": float(steps[i]), "reached": bool(len(below) > 0)}
    j = below[0]
    t = (retain[j - 1] - threshold) / max(retain[j - 1] - retain[j], 1e-12)
    return {"matched_forget": float(forget[j - 1] + t * (forget[j] - forget[j - 1])),
            "matched_retain": float(threshold), "matched_step": float(steps[j - 1] + t * (steps[j] - steps[j - 1])),
            "reached": True}


_SPEC_KEYS = ("method", "params", "label")
_NOT_OVERRIDES = ("method", "method_params", "seed", "forget_split")
"""UnlearnConfig fields a spec cannot override: the spec's own method and params, the sweep's
seed and the setting's forget split."""


@dataclass(frozen=True, eq=False)
class RunSpec(Mapping):
    """One run of a sweep, typed and frozen: a method, its hyper-parameters, a label and overrides
    of the setting's :class:`~satimp_lab.unlearning.loop.UnlearnConfig`.

    It also reads as the dict it replaces (``spec["label"]``, ``dict(spec)``, ``lab.run(**spec)``,
    ``spec == {"method": "ga", "label": "ga"}``): ``{"method", "params" (when not empty),
    "label" (when set), **overrides}``. :meth:`of` is the one place where a dict becomes a
    RunSpec; the run's config and cache key are those of the dict it came from, byte for byte.

    Raises :class:`~satimp_lab.errors.InputError` naming the bad field: ``RunSpec.method`` not a
    registered method name (``objectives.list_methods()``), a ``RunSpec.params`` key that is no
    declared hyper-parameter (``satimp_lab.unlearning.params.PARAMS``, plus ``beta`` and ``retain``) or a
    value outside its declared range, a ``RunSpec.overrides`` key that is no UnlearnConfig field.
    Whether the method reads a parameter is checked once, where the run's config is built."""

    method: str
    """A name from ``objectives.list_methods()`` (aliases kept as given: they name the cache folder)."""
    params: Mapping[str, float | int | str] = field(default_factory=dict)
    """Overrides of the method's hyper-parameters, e.g. ``{"beta_sat": 2.0}`` (stored read-only,
    values as given: the cache key tells 5 from 5.0)."""
    label: str | None = None
    """The run's name in every table; None: ``method(k=v, ...)`` of ``params``."""
    overrides: Mapping[str, object] = field(default_factory=dict)
    """Overrides of UnlearnConfig fields other than method, method_params, seed and forget_split,
    e.g. ``{"lr": 1e-3}``."""

    def __post_init__(self):
        if not isinstance(self.method, str) or self.method not in {**METHODS, **ALIASES}:
            raise InputError(f"RunSpec.method: unknown method {self.method!r}; valid names: "
                             f"{sorted(list(METHODS) + list(ALIASES))}")
        for name in ("params", "overrides"):
            value = getattr(self, name)
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise InputError(f"RunSpec.{name} must be a mapping, got {value!r}")
            object.__setattr__(self, name, MappingProxyType(dict(value)))
        for key, value in self.params.items():
            if key in PARAMS:
                PARAMS[key].validate(value, owner=f"RunSpec.params of {self.method!r}")
            elif key not in ("beta", "retain"):
                raise InputError(f"RunSpec.params: unknown hyper-parameter {key!r} for method "
                                 f"{self.method!r}; declared: {sorted(PARAMS)} (and 'beta', 'retain')")
        allowed = sorted(f.name for f in fields(UnlearnConfig) if f.name not in _NOT_OVERRIDES)
        for key in self.overrides:
            if key not in allowed:
                raise InputError(f"RunSpec.overrides: {key!r} is not an UnlearnConfig field a spec "
                                 f"may override; valid: {allowed}")
        if self.label is not None and not isinstance(self.label, str):
            raise InputError(f"RunSpec.label must be a string or None, got {self.label!r}")

    @classmethod
    def of(cls, spec: "RunSpec | Mapping") -> "RunSpec":
        """``spec`` as a RunSpec: a RunSpec as it is; a dict of :meth:`Lab.run` keywords
        (``method``, ``params``, ``label``, any other key an UnlearnConfig override)."""
        if isinstance(spec, cls):
            return spec
        if not isinstance(spec, Mapping) or "method" not in spec:
            raise InputError(f"a run spec must be a RunSpec or a dict with a 'method', got {spec!r}")
        return cls(spec["method"], spec.get("params") or {}, spec.get("label"),
                   {k: v for k, v in spec.items() if k not in _SPEC_KEYS})

    @property
    def default_label(self) -> str:
        """``label``, or ``method(k=v, ...)`` of ``params`` when it is None."""
        return self.label or _default_label(self.method, self.params)

    @property
    def fields(self):
        """What the run is, as figures and tables read it (``studies.specs.RunFields``: method
        family, exponents, granularity level, hard-sampling mode and share), from ``method`` and
        ``params`` through the registry (``studies.specs.run_fields``); ``overrides`` aside."""
        from .specs import run_fields  # specs builds RunSpecs: imported on use

        return run_fields(self.method, self.params)

    def to_dict(self) -> dict:
        """The dict form: ``{"method", "params" (when not empty), "label" (when set), **overrides}``."""
        out: dict[str, object] = {"method": self.method}
        if self.params:
            out["params"] = dict(self.params)
        if self.label is not None:
            out["label"] = self.label
        return {**out, **self.overrides}

    # the read-only dict view (the specs notebooks index) and pickling (mappingproxy does not pickle)
    def __getitem__(self, key):
        return self.to_dict()[key]

    def __iter__(self):
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __hash__(self):
        return hash((self.method, tuple(sorted(self.params.items())), self.label,
                     tuple(sorted(self.overrides.items()))))

    def __reduce__(self):
        return (RunSpec, (self.method, dict(self.params), self.label, dict(self.overrides)))

    def __repr__(self) -> str:
        return f"RunSpec({self.to_dict()!r})"


@dataclass
class RunResult:
    """A cached run: its config, per-step history, final metrics and (lazily) its token trace."""

    label: str
    config: UnlearnConfig
    history: pd.DataFrame
    summary: dict
    folder: Path
    status: str = "completed"
    target_seed: int = 0
    """Training seed of the target model the run unlearned (one unit = target seed x seed)."""
    plan: EvalPlan = FULL
    """What the run recorded (its forget curve? its final metrics?)."""

    def describe(self) -> str:
        """``run 'label' (method, params, seed s, target seed t)``, for messages."""
        return (f"run {self.label!r} (method {self.config.method!r}, params {self.config.method_params}, "
                f"seed {self.config.seed}, target seed {self.target_seed})")

    def require(self, reading: str) -> None:
        """Raise :class:`MissingReading` naming this run when its plan did not record ``reading``:
        ``"curves"`` (the forget split at every evaluation) or ``"final_metrics"``."""
        if reading not in ("curves", "final_metrics"):
            raise ValueError(f"unknown reading {reading!r}; valid: 'curves', 'final_metrics'")
        if not getattr(self.plan, reading):
            what = "its forget curve" if reading == "curves" else "the final metrics of its model"
            raise MissingReading(f"{self.describe()} recorded no {reading}: its plan {self.plan} does not ask "
                                 f"for {what}. Declare the run in its study's `{reading.split('_')[0]}` "
                                 f"(studies.base.Study) or sweep it with such a plan.")

    @property
    def trace_frame(self) -> pd.DataFrame:
        """The run's token trace as a DataFrame, one row per traced token and step
        (``tracing.COLUMNS`` + method, seed; as ``UnlearnRun.trace_frame``), read from the cache
        entry after verifying it; raises ``CacheError`` naming the entry and the file if it is
        gone or changed since it was written."""
        trace = read_entry(self.folder, lambda e: TokenTrace.load(e / "trace.npz"), what="cached run")
        if trace is None:
            raise CacheError(f"cached run {self.folder} no longer exists: trace.npz cannot be read; "
                             f"run it again")
        frame = trace.to_frame()
        frame["method"] = self.label
        frame["seed"] = self.config.seed
        return frame

    def row(self) -> dict:
        """One flat record for sweep tables."""
        return {"label": self.label, "method": self.config.method, "target_seed": self.target_seed,
                "seed": self.config.seed,
                **{f"param_{k}": v for k, v in self.config.method_params.items()},
                "status": self.status, **self.summary}


class MissingReading(InputError):
    """A figure or table asked a run for something its plan did not record (names the run and the reading)."""


PlanFor = Callable[[RunSpec, bool], EvalPlan]
"""``plan(spec, own_target) -> EvalPlan``: what a population sweep's run of ``spec`` records on the
Lab's own target (``own_target=True``) or on another target model."""


def population_plan(spec: RunSpec, own_target: bool) -> EvalPlan:
    """The default :data:`PlanFor` of a population sweep: everything on the Lab's own target (the
    notebooks' tables and figures read it), both curves up to the matched point, without final
    metrics, on the others (``unlearning.plan.CURVES_TO_MATCH``: what decides the claims, forget
    ES at matched retain, and the population curves)."""
    return FULL if own_target else CURVES_TO_MATCH


class Lab:
    """One setting's benchmark, models and cached runs."""

    def __init__(self, size: str | Setting = "full", progress: bool = True, **setting_overrides):
        self.setting = get_setting(size, **setting_overrides)
        self.progress = progress
        self._eval_cache: dict = {}  # the target's step-0 evaluation, shared by every run
        self._by_target_seed: dict = {}  # with_target_seed's Labs, so their models load once

    # -- data and models (built on first use, then cached on disk) ------------------------------

    @cached_property
    def benchmark(self):
        """The setting's splits, as its tier sees them: a tier that trains on a subset of the
        authors (``small``) unlearns and is evaluated on that subset, so the retain set holds only
        authors its models learned (``models.subset_benchmark``)."""
        s = self.setting
        bench = load_benchmark(s.source, splits=s.benchmark_splits(), config=s.benchmark, data_dir=s.data_dir)
        return subset_benchmark(bench, s.tier_config())

    def _tier_overrides(self) -> dict:
        # seed 0 passes no train config, so the default models keep their cache entries
        out = {"base_model": self.setting.base_model} if self.setting.base_model else {}
        if self.setting.target_seed == 0:
            return out
        return {**out, "train": replace(self.setting.tier_config().train, seed=self.setting.target_seed)}

    @cached_property
    def target(self):
        return get_model(self.benchmark, "target", self.setting.forget_split, self.setting.tier,
                         progress=self.progress, **self._tier_overrides())

    @cached_property
    def retain_model(self):
        return get_model(self.benchmark, "retain", self.setting.forget_split, self.setting.tier,
                         progress=self.progress, **self._tier_overrides())

    def with_target_seed(self, seed: int, **setting_overrides) -> "Lab":
        """The same setting with target and retain models trained with another seed (and any
        other :class:`Setting` field overridden, e.g. ``final_metrics=()``); one Lab per seed and
        overrides, kept, so its models load once."""
        if seed == self.setting.target_seed and not setting_overrides:
            return self
        key = (seed, repr(sorted(setting_overrides.items())))
        if key not in self._by_target_seed:
            self._by_target_seed[key] = Lab(replace(self.setting, target_seed=seed, **setting_overrides),
                                            progress=self.progress)
        return self._by_target_seed[key]

    def population_lab(self, seed: int) -> "Lab":
        """The Lab of the population's runs on target ``seed``: this Lab for its own target, else
        :meth:`with_target_seed` (what its runs record is their plan: :func:`population_plan`)."""
        return self.with_target_seed(seed)

    @cached_property
    def reference_metrics(self) -> dict:
        """Final metrics of the target and retain models themselves (the two ends of the scale)."""
        out = {}
        for name, bundle in (("target", self.target), ("retain", self.retain_model)):
            out[name] = self._final_metrics(bundle.model)
        return out

    @cached_property
    def _retain_truth_ratios(self):
        from ..evaluation.tofu import truth_ratio

        family = get_family(self.setting.family)
        forget = family.evaluation_splits(self.benchmark, self.setting.forget_split)["forget"]  # TOFU: forgetXX_perturbed
        return truth_ratio(self.retain_model.model, self.retain_model.tokenizer,
                                   self.benchmark[forget], kind="forget",
                                   prompt_format=self.target.tier.prompt_format,
                                   batch_size=self.setting.metrics_batch_size)

    def _final_metrics(self, model) -> dict:
        """``{name: value}``, e.g. ``forget_es``, ``retain_truth_ratio``, ``forget_quality``, ``model_utility``."""
        from ..evaluation import metrics

        s = self.setting
        if not s.final_metrics:
            return {}
        with torch_threads(RUN_THREADS):
            table = metrics.evaluate(model, self.target.tokenizer, self.benchmark, forget_split=s.forget_split,
                                     metrics=s.final_metrics, retain_truth_ratios=self._retain_truth_ratios,
                                     max_examples=s.final_max_examples, max_new_tokens=s.max_new_tokens,
                                     prompt_format=self.target.tier.prompt_format,
                                     batch_size=s.metrics_batch_size)
        # forget_es, retain_truth_ratio, ...; metrics already named after their role stay as they are
        return {r.metric if r.role in r.metric else f"{r.role}_{r.metric}": float(r.value)
                for r in table.itertuples()}

    # -- runs ------------------------------------------------------------------------------------

    def config(self, method: str, seed: int = 0, params: dict | None = None, **overrides) -> UnlearnConfig:
        """The setting's recipe (:attr:`Setting.base`) with this run's method, hyper-parameters,
        seed and overrides, on the setting's forget split."""
        return replace(self.setting.base, method=method, method_params=dict(params or {}), seed=seed,
                       forget_split=self.setting.forget_split, **overrides)

    def plan(self, plan: EvalPlan | None = None) -> EvalPlan:
        """``plan`` (default: every evaluation of every step, and the final metrics) with the
        setting's :attr:`Setting.match_level` where it names none."""
        plan = FULL if plan is None else plan
        return replace(plan, match_level=self.setting.match_level) if plan.match_level is None else plan

    def _key(self, config: UnlearnConfig, plan: EvalPlan) -> tuple[str, str]:
        # Everything that changes the trained model or the metric values is in the key; which
        # final metrics are wanted is not (a cached run with more metrics serves a request for
        # fewer; one with fewer is recomputed -- deterministically -- see _Entry.read).
        ignored = {"seeds": None, "name": None, "final_metrics": None, "match_level": None}
        # the target seed is in the key through the target model's digest; the population
        # choose other runs, not this one's result (both left out, so older entries stay valid)
        setting = {k: v for k, v in (asdict(self.setting) | ignored).items()
                   if k not in ("target_seed", "target_seeds")
                   and not (k in SETTING_DEFAULTS_OUT_OF_KEYS and v == getattr(Setting, k))}
        setting["base"] = self.setting.base.to_dict()  # without its unset new fields: older keys stay
        # the plan's part of the history (where it stops, what it reads) is the run's
        payload = {"format": CACHE_FORMAT, "run": {**config.to_dict(), **plan.key_fields()},
                   "target": self.target.digest or str(self.target.path),
                   "setting": setting,
                   "target_report": {k: v for k, v in self.target.report.items() if k != "loss_history"}}
        return cache_key(payload)

    def _entry(self, spec: RunSpec, seed: int, plan: EvalPlan | None = None) -> "_Entry":
        """One run's config, plan, label, key text and cache folder. Building the config resolves
        the spec's Method (the run's one registry lookup) and checks that it reads every parameter."""
        config, plan = self.config(spec.method, seed, dict(spec.params), **spec.overrides), self.plan(plan)
        key_text, digest = self._key(config, plan)
        return _Entry(config, plan, spec.default_label, key_text, cache_dir() / "runs" / f"{spec.method}-{digest[:16]}")

    def _cached(self, method: str | RunSpec, seed: int = 0, params: dict | None = None,
                label: str | None = None, plan: EvalPlan | None = None, **overrides) -> RunResult | None:
        """The run if it is in the cache (as :meth:`run` would return it), else None."""
        return self._entry(_as_spec(method, params, label, overrides), seed, plan).read(self.setting)

    def run(self, method: str | RunSpec, seed: int = 0, params: dict | None = None, label: str | None = None,
            plan: EvalPlan | None = None, **overrides) -> RunResult:
        """Run (or load from cache) one method: a :class:`RunSpec`, or its fields as keywords.
        ``params`` override the method's hyper-parameters; other keywords override fields of the
        setting's :class:`UnlearnConfig`. ``plan``: what the run records
        (:class:`~satimp_lab.unlearning.plan.EvalPlan`, in its key; default: everything). The run is computed with :data:`RUN_THREADS` torch
        threads, wherever it runs. The method is resolved from the registry once, when the run's
        config is built, and handed to ``unlearn``.

        A cached entry is recomputed (and replaced) when its key differs or it lacks a final metric
        the setting asks for. Raises ``CacheError`` naming the entry and the file when the entry's
        files do not match the content hashes recorded when it was written (a missing, truncated or
        edited ``trace.npz``, ``history.csv``, ...): it is not recomputed then; delete the folder."""
        return self._run_entry(self._entry(_as_spec(method, params, label, overrides), seed, plan))

    def _run_entry(self, entry: "_Entry") -> RunResult:
        """:meth:`run` of one :meth:`_entry` (a serial sweep has made it already)."""
        cached = entry.read(self.setting)
        if cached is not None:
            return cached
        config, plan, label, key_text, folder = entry
        started = time.perf_counter()
        with torch_threads(RUN_THREADS):
            run = unlearn(self.target, self.benchmark, config, progress=False, eval_cache=self._eval_cache,
                          method=config.resolved_method(), plan=plan, family=self.setting.family)
        summary = {}
        evals = run.evaluations  # final_*: the last evaluation after step 0; none if the run
        last = evals.iloc[-1] if len(evals) and evals["step"].iloc[-1] > 0 else {}  # diverged first
        summary.update({f"final_{k}": float(last[k]) for k in ("forget_es", "retain_es",
                                                               "forget_mean_logp", "retain_mean_logp")
                        if k in last})
        final_metrics = self.setting.final_metrics if plan.final_metrics else ()
        if run.status == "completed" and final_metrics:
            summary.update({f"eval_{k}": v for k, v in self._final_metrics(run.model).items()})

        def write(tmp: Path):
            run.save(tmp)
            (tmp / "summary.json").write_text(json.dumps({
                "key": key_text, "summary": summary, "status": run.status,
                "final_metrics": list(final_metrics),
                "seconds": time.perf_counter() - started}, default=float))   # what the run cost

        # an entry that serves this request, written meanwhile by another process, stands
        atomic_directory(folder, write, keep=lambda f: entry.read(self.setting, f) is not None)
        summary = {**self.setting.matched(run.history), **summary}
        return RunResult(label, config, run.history, summary, folder, run.status, self.setting.target_seed, plan)

    def sweep(self, specs: list[RunSpec | dict], seeds: tuple[int, ...] | None = None, desc: str = "sweep",
              executor: concurrent.futures.Executor | str | None = "processes",
              plan: EvalPlan | None = None) -> "Sweep":
        """Run every spec (a :class:`RunSpec`, or a dict of :meth:`run` keywords: method, params,
        label, overrides) for every seed; returns a :class:`Sweep` (tidy tables of summaries and curves), runs in the
        order of the specs, then the seeds. ``plan``: what every run records (default: everything).

        executor: where the runs not in the cache yet are computed.

        * ``"processes"`` (default): :func:`process_pool`, a pool of worker processes (one per
          CPU core, one torch thread each) kept for the rest of the session; a sweep with at
          most one run to compute, or on a machine with a GPU, runs here instead.
        * ``None`` or ``"serial"``: one after the other in this process.
        * a :class:`~satimp_lab.studies.shards.Shards` (``Shards.from_env()`` under ``accelerate
          launch``): this process computes its share of the runs, one after the other on its
          GPU, and reads the other processes' runs from the shared cache as they appear.
        * any ``concurrent.futures.Executor`` -- or an object whose ``submit(fn, arg)`` returns
          futures with ``done()`` and ``result()``, such as ``submitit.AutoExecutor`` (SLURM) or
          a Dask client's ``get_executor()``: each run is one job, ``_run_job(job)``, whose
          payload is the setting, the spec, the seed and the cache folder (a few KB, no models).
          Workers need this package installed and the same cache folder (a shared file
          system); each worker process loads the target and retain models once.

        Every run is computed with :data:`RUN_THREADS` torch threads whatever the executor, so
        a run's numbers do not depend on where it ran (a test checks that serial and parallel
        sweeps give bit-identical runs). The target and retain models are made (or loaded) here
        before any job starts, so workers never train them concurrently.

        A run that raises does not stop the sweep: the other runs finish (each is cached as it
        finishes), then :class:`SweepError` names every failed run (method, params, seed,
        target seed) with its error; calling the sweep again computes only the failed runs.
        Invalid specs (unknown method or hyper-parameter) raise before anything runs.
        """
        seeds = self.setting.seeds if seeds is None else seeds
        units = [(self, RunSpec.of(spec), seed, plan) for spec in specs for seed in seeds]
        return Sweep(_sweep_units(units, desc, executor, self.progress), self.setting)

    def sweep_population(self, specs: list[RunSpec | dict], seeds: tuple[int, ...] | None = None,
                         target_seeds: tuple[int, ...] | None = None, desc: str = "population",
                         executor: concurrent.futures.Executor | str | None = "processes",
                         plan: "PlanFor | None" = None) -> "Sweep":
        """Every spec on every unit: each target model of ``target_seeds`` (default: the setting's
        :attr:`Setting.target_seeds`) x each unlearning seed of ``seeds`` (default: the setting's).
        One :class:`Sweep` whose tables carry a ``target_seed`` column, runs in the order targets,
        specs, seeds; the input of ``satimp_lab.studies.verdicts``. ``executor`` as in :meth:`sweep`:
        the runs of every target go to it in one pass (one pool, one progress bar).

        ``plan(spec, own_target) -> EvalPlan`` says what each run records, on the Lab's own target
        (``own_target=True``) and on the others (default :func:`population_plan`: everything on
        the own target, curves up to the matched point elsewhere; a study passes
        ``studies.base.plan_for``, what its notebooks and figures read of each run). The studies
        decide on forget ES at matched retain, which every plan records (the whole run's number to
        the last bit)."""
        return self.sweep_groups({desc: specs}, seeds, target_seeds, desc, executor, plan)[desc]

    def sweep_groups(self, groups: dict[str, list[RunSpec | dict]], seeds: tuple[int, ...] | None = None,
                     target_seeds: tuple[int, ...] | None = None, desc: str = "population",
                     executor: concurrent.futures.Executor | str | None = "processes",
                     plan: "PlanFor | None" = None,
                     own_target_only: Collection[str] = ()) -> dict[str, "Sweep"]:
        """:meth:`sweep_population` of several groups of specs (``{name: specs}``, e.g. one per
        study) in ONE executor pass: every run of every group and target is submitted at once,
        so the workers stay busy until the last run, and a run that several groups share (the
        same method, params, overrides and seed on the same target; labels may differ) is
        computed once. Returns ``{name: Sweep}``, each as :meth:`sweep_population` would return
        it; the groups named in ``own_target_only`` (runs a notebook shows on this Lab's own
        target alone, e.g. references no claim decides on) are swept on that target only. Raises
        :class:`~satimp_lab.errors.InputError` for an empty ``target_seeds``; a failed
        run raises :class:`SweepError` once every other run finished (its ``results`` hold
        every group's runs in order: groups, targets, specs, seeds)."""
        target_seeds = self.setting.target_seeds if target_seeds is None else tuple(target_seeds)
        if not target_seeds:
            raise InputError("target_seeds is empty: a population needs at least one target model")
        unknown = set(own_target_only) - set(groups)
        if unknown:
            raise InputError(f"own_target_only names no group: {sorted(unknown)} (groups: {list(groups)})")
        labs = [self.population_lab(t) for t in target_seeds]
        plan = population_plan if plan is None else plan
        layout = {name: [(lab, spec, seed, plan(spec, lab is self))
                         for lab in ([self] if name in own_target_only else labs)
                         for spec in map(RunSpec.of, specs)
                         for seed in (lab.setting.seeds if seeds is None else seeds)]
                  for name, specs in groups.items()}
        results = _sweep_units([u for units in layout.values() for u in units], desc, executor, self.progress)
        out, start = {}, 0
        for name, units in layout.items():
            out[name] = Sweep(results[start:start + len(units)], self.setting)
            start += len(units)
        return out

    def _describe(self, spec: RunSpec, seed: int) -> str:
        extra = dict(spec.overrides)
        return (f"method {spec.method!r}, params {dict(spec.params)}, seed {seed}, "
                f"target seed {self.setting.target_seed}" + (f", overrides {extra}" if extra else ""))


def _as_spec(method: str | RunSpec, params: dict | None, label: str | None, overrides: dict) -> RunSpec:
    """The RunSpec of :meth:`Lab.run`'s arguments (a RunSpec alone, or its fields as keywords)."""
    if isinstance(method, RunSpec):
        if params is not None or label is not None or overrides:
            raise InputError("Lab.run: pass a RunSpec alone, or method, params, label and overrides "
                             "as keywords, not both")
        return method
    return RunSpec(method, params or {}, label, overrides)


# ----------------------------------------------------------------------------------------------
# running sweeps on an Executor


RUN_THREADS = 1
"""Torch threads every run is computed with, in :meth:`Lab.run`, a serial sweep or a worker.
Matrix products may round differently with another thread count, so a run's numbers must not
depend on where it ran; one thread per run and one worker per core is also the fastest way
through a sweep of these small models (docs/speed.md)."""


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch intra-op threads, then restore the previous number."""
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if before != n:
            torch.set_num_threads(before)


class SweepError(RuntimeError):
    """Some runs of a sweep failed; the others finished and are cached.

    ``failures``: ``[(run description, exception)]``; ``results``: the :class:`RunResult` of every
    job in sweep order, None where it failed."""

    def __init__(self, failures: list[tuple[str, BaseException]], results: list):
        self.failures, self.results = failures, results
        done = sum(r is not None for r in results)
        lines = "\n".join(f"  {name}: {type(err).__name__}: {err}" for name, err in failures)
        super().__init__(f"{len(failures)} of {len(results)} runs failed ({done} finished and are "
                         f"cached; running the sweep again computes only the failed ones):\n{lines}")


@dataclass(frozen=True)
class SweepJob:
    """What a worker receives for one run: small and picklable (no models)."""

    setting: Setting
    spec: RunSpec
    """The run (a dict of :meth:`Lab.run` keywords is accepted too)."""
    seed: int
    cache: str
    """The cache folder (``$SATIMP_LAB_CACHE``) the run and its models are read from and written to."""
    plan: EvalPlan | None = None
    """What the run records (None: everything)."""


_WORKER_LABS: dict[tuple[str, str], Lab] = {}
"""One Lab per (cache folder, setting) in each process: a worker loads the target and retain
models once, not once per run."""


def _run_job(job: SweepJob) -> RunResult:
    """Compute (or read from the cache) one run of a sweep; executed by the workers."""
    os.environ["SATIMP_LAB_CACHE"] = job.cache
    key = (job.cache, repr(job.setting))
    if key not in _WORKER_LABS:
        _WORKER_LABS[key] = Lab(job.setting, progress=False)
    return _WORKER_LABS[key].run(RunSpec.of(job.spec), seed=job.seed, plan=job.plan)


def _sweep_units(units: list[tuple["Lab", RunSpec, int, EvalPlan | None]], desc: str, executor,
                 progress: bool) -> list[RunResult]:
    """Every ``(lab, spec, seed, plan)`` of ``units`` as a :class:`RunResult`, in order, computing
    the runs not cached yet in one pass on ``executor`` (see :meth:`Lab.sweep`): one progress bar
    over the distinct runs, each run computed once however many units ask for it (a unit that
    repeats another's run under another label gets that run under its own label).

    Raises ValueError for an invalid spec before anything runs, :class:`SweepError` (naming
    every failed run; the others finished and are cached) once every run ended."""
    # the run of every unit (validates every spec first); units of one Lab with one cache folder
    # (same config and plan, hence same key) are one run
    entries = [lab._entry(spec, seed, plan) for lab, spec, seed, plan in units]
    owner: dict[tuple[int, Path], int] = {}
    for i, (unit, entry) in enumerate(zip(units, entries)):
        owner.setdefault((id(unit[0]), entry.folder), i)
    distinct = sorted(set(owner.values()))
    results: dict[int, RunResult | None] = {i: entries[i].read(units[i][0].setting) for i in distinct}
    todo = [i for i in distinct if results[i] is None]
    shards = executor if isinstance(executor, Shards) else None
    owned = {i for k, i in enumerate(distinct) if shards is None or shards.owns(k)}  # by place, not cache
    pool = None if shards is not None else _resolve_executor(executor, len(todo))
    failures: list[tuple[str, BaseException]] = []
    with tqdm(total=len(distinct), initial=len(distinct) - len(todo), desc=desc, disable=not progress) as bar:
        if pool is None:
            for i in sorted(todo, key=lambda i: i not in owned):  # this process's own runs first
                lab, spec, seed, _ = units[i]
                folder = entries[i].folder
                try:
                    if i in owned:
                        if shards is not None:
                            failure_note(folder).unlink(missing_ok=True)
                        results[i] = lab._run_entry(entries[i])
                    else:  # another process of the launch computes it
                        read = functools.partial(entries[i].read, lab.setting)
                        assert shards is not None  # without shards this process owns every run
                        results[i] = shards.wait_for(read, folder, lab._describe(spec, seed))
                except Exception as err:  # noqa: BLE001 -- reported with the run's name below
                    if shards is not None and i in owned:
                        note_failure(folder, err)
                    failures.append((lab._describe(spec, seed), err))
                bar.update(1)
        elif todo:
            cache = str(cache_dir())
            for lab in {id(units[i][0]): units[i][0] for i in todo}.values():
                _ = lab.target  # models are made once here, not by every worker at once
            if any(entries[i].plan.final_metrics and units[i][0].setting.final_metrics for i in todo):
                for lab in {id(units[i][0]): units[i][0] for i in todo if entries[i].plan.final_metrics}.values():
                    _ = lab.retain_model  # the final metrics read the retain model
            futures = {pool.submit(_run_job, SweepJob(units[i][0].setting, units[i][1], units[i][2], cache,
                                                      entries[i].plan)): i
                       for i in todo}
            try:
                for future in _completed(list(futures)):
                    i = futures[future]
                    try:
                        results[i] = future.result()
                    except Exception as err:  # noqa: BLE001 -- reported with the run's name below
                        failures.append((units[i][0]._describe(units[i][1], units[i][2]), err))
                    bar.update(1)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    ordered = []
    for unit, entry in zip(units, entries):
        run = results[owner[(id(unit[0]), entry.folder)]]
        ordered.append(run if run is None or run.label == entry.label else replace(run, label=entry.label))
    if failures:
        raise SweepError(failures, ordered)
    return cast("list[RunResult]", ordered)  # no run failed: every one finished


def _init_worker() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(RUN_THREADS)
    # Ctrl-C and a Jupyter interrupt or shutdown signal the whole process group: the sweep in the
    # calling process handles it (cancels the runs not started); a worker finishes its run
    signal.signal(signal.SIGINT, signal.SIG_IGN)


WORKERS_ENV = "SATIMP_LAB_WORKERS"
"""Environment variable: the number of workers of the default pool (a positive integer);
``satimp-lab reproduce`` sets it in the notebook kernels it runs side by side."""


def default_workers() -> int:
    """``$SATIMP_LAB_WORKERS`` if set, else the CPU cores this process may use
    (``os.sched_getaffinity``; ``os.cpu_count`` elsewhere). Raises InputError naming the
    variable when it is set to anything but a positive integer."""
    value = os.environ.get(WORKERS_ENV)
    if value:
        if not value.strip().isdigit() or int(value) < 1:
            raise InputError(f"{WORKERS_ENV} must be a positive integer, got {value!r}")
        return int(value)
    return cpu_cores()


def cpu_cores() -> int:
    """CPU cores this process may use (``os.sched_getaffinity``; ``os.cpu_count`` elsewhere)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def process_pool(workers: int | None = None) -> concurrent.futures.ProcessPoolExecutor:
    """A local pool of ``workers`` processes (default :func:`default_workers`) for
    :meth:`Lab.sweep`, each pinned to :data:`RUN_THREADS` torch threads. Started with ``spawn``:
    forking a process whose torch thread pool already ran can hang, and spawn works the same in
    scripts, notebooks and pytest (a script must guard its entry point with
    ``if __name__ == "__main__":``). Each worker imports torch once and keeps its models for the
    pool's life. Workers ignore SIGINT: an interrupted sweep cancels the runs not started, and
    the runs under way finish (and are cached)."""
    return concurrent.futures.ProcessPoolExecutor(
        workers or default_workers(), mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker)


_DEFAULT_POOL: concurrent.futures.ProcessPoolExecutor | None = None


def shutdown_default_pool() -> None:
    """Stop the session's default pool (started by the first parallel sweep); the next sweep
    starts a new one. Registered with ``atexit``: a pool left to the interpreter's teardown
    printed "Exception ignored in ... weakref_cb" at the exit of every script that swept."""
    global _DEFAULT_POOL
    pool, _DEFAULT_POOL = _DEFAULT_POOL, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_default_pool)


def _resolve_executor(executor, n_runs: int):
    """None (run here) or the executor to submit the runs to."""
    global _DEFAULT_POOL
    if executor is None or executor == "serial":
        return None
    if executor == "processes":
        if n_runs <= 1 or default_workers() == 1 or torch.cuda.is_available():
            return None  # starting workers costs more than the run; one process owns the GPU
        if _DEFAULT_POOL is None or getattr(_DEFAULT_POOL, "_broken", False):
            _DEFAULT_POOL = process_pool()
        return _DEFAULT_POOL
    if isinstance(executor, str) or not callable(getattr(executor, "submit", None)):
        raise ValueError(f"executor must be 'processes', 'serial', None or an object with submit() "
                         f"(a concurrent.futures.Executor), got {executor!r}")
    return executor


def _completed(futures: list):
    """Yield each future as it finishes: ``concurrent.futures.as_completed`` for standard
    futures; otherwise (e.g. submitit jobs) by polling ``done()`` every half second."""
    if all(isinstance(f, concurrent.futures.Future) for f in futures):
        yield from concurrent.futures.as_completed(futures)
        return
    pending = list(futures)
    while pending:
        finished = [f for f in pending if f.done()]
        for f in finished:
            pending.remove(f)
            yield f
        if pending and not finished:
            time.sleep(0.5)


def _default_label(method: str, params: Mapping | None) -> str:
    from .specs import params_label  # the one ``method(k=v, ...)`` label; specs imports this module

    return params_label(method, params, fmt=str)


class _Entry(NamedTuple):
    """One run's place in the cache: its config, plan, label, key text and folder."""

    config: UnlearnConfig
    plan: EvalPlan
    label: str
    key_text: str
    folder: Path

    def read(self, setting: Setting, folder: Path | None = None) -> RunResult | None:
        """The cached run in ``folder`` (default: the entry's) if its key matches and it holds
        every final metric the setting asks for (when the plan wants them); None (recompute)
        otherwise. The matched-retain numbers are recomputed from the stored history, so a
        changed ``match_level`` never needs a rerun. The key in ``summary.json`` is compared
        first, then the entry verified against its manifest (``store.read_entry``): raises
        ``CacheError`` naming the file."""
        return read_entry(folder or self.folder, lambda f: self._parse(f, setting), what="cached run",
                          key_file="summary.json", key_text=self.key_text)

    def _parse(self, folder: Path, setting: Setting) -> RunResult | None:
        try:
            meta = json.loads((folder / "summary.json").read_text())
            if meta.get("key") != self.key_text:
                return None  # a different config hashed here: never reuse it
            wanted = set(setting.final_metrics) if self.plan.final_metrics else set()
            if meta["status"] == "completed" and not wanted <= set(meta.get("final_metrics", ())):
                return None  # computed with fewer final metrics than wanted now
            history = pd.read_csv(folder / "history.csv")
        except (OSError, KeyError, json.JSONDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise CacheError(f"corrupt cached run {folder}: {err}; delete this folder to recompute it") from None
        summary = {**setting.matched(history), **meta["summary"]}
        return RunResult(self.label, self.config, history, summary, folder, meta["status"], setting.target_seed,
                         self.plan)


class Sweep:
    """The results of :meth:`Lab.sweep`: ``summary`` (one row per run) and ``curves`` (one row per
    evaluation step per run)."""

    def __init__(self, results: list[RunResult], setting: Setting):
        self.results = results
        self.setting = setting

    @cached_property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([r.row() for r in self.results])

    @cached_property
    def curves(self) -> pd.DataFrame:
        """One row per evaluation per run (``label``, ``method``, ``target_seed``, ``seed``,
        ``step`` and the readings) where the forget split was read. Raises
        :class:`MissingReading` naming the first run whose plan recorded no forget curve."""
        for r in self.results:
            r.require("curves")
        frames = []
        for r in self.results:
            ev = r.history.dropna(subset=["forget_es"]) if "forget_es" in r.history else r.history
            frames.append(ev.assign(label=r.label, method=r.config.method, target_seed=r.target_seed,
                                    seed=r.config.seed))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def final(self, labels: list[str] | None = None) -> pd.DataFrame:
        """The :attr:`summary` rows of ``labels`` (default: every run), whose ``eval_*`` columns
        hold the final model's metrics. Raises :class:`MissingReading` naming the first of those
        runs whose plan computed no final metrics."""
        chosen = [r for r in self.results if labels is None or r.label in labels]
        for r in chosen:
            r.require("final_metrics")
        return pd.DataFrame([r.row() for r in chosen])

    def traces(self, labels: list[str] | None = None) -> pd.DataFrame:
        return pd.concat([r.trace_frame for r in self.results if labels is None or r.label in labels],
                         ignore_index=True)

    def aggregate(self, columns: list[str] | None = None, by: str = "label") -> pd.DataFrame:
        """Mean, std and count over seeds of each numeric summary column, per ``by`` group, in
        the order the specs were given."""
        frame = self.summary
        columns = columns or [c for c in frame.columns if c.startswith(("matched_", "final_"))
                              and frame[c].dtype.kind in "fi"]
        order = list(dict.fromkeys(frame[by]))
        stats = frame.groupby(by)[columns].agg(["mean", "std", "count"])
        stats.columns = [f"{c}_{s}" for c, s in stats.columns]
        if "reached" in frame:
            stats["reached_all"] = frame.groupby(by)["reached"].all()
        return stats.loc[order].reset_index()
