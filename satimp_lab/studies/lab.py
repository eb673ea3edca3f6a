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
from typing import cast

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..errors import InputError, check_choice, check_int, check_real
from ..data.benchmark import BenchmarkConfig, benchmark_splits, load_benchmark
from ..data.schema import retain_split_for
from ..models.build import get_tier, prompt_format_for
from ..models.cache import CACHE_FORMAT, get_model
from ..models.train import subset_benchmark
from ..store import CacheError, atomic_directory, cache_dir, cache_key, read_entry
from ..evaluation.metrics import get_metric
from ..unlearning.objectives import ALIASES, METHODS
from ..unlearning.params import PARAMS
from .shards import Shards, failure_note, note_failure
from ..tiers import PAPER_DRY_RUN_KEEPS, SIZES, paper_recipe
from ..tiers import TIER_RECIPES as _TIER_RECIPE_FIELDS
from ..unlearning.tracing import TokenTrace
from ..unlearning.loop import UnlearnConfig, unlearn


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
    stop_at_match: bool = False
    """End each run at the evaluation that brackets the matched point (the first one whose retain
    ES is at or below :attr:`match_level` x its start; ``UnlearnConfig.stop_below``): its forget
    ES at matched retain is the whole run's to the last bit, its final model and curves end
    there. Needs ``final_metrics=()``; set for the population's runs on the other target models
    (:data:`POPULATION_OVERRIDES`)."""
    forget_at_bracket: bool = False
    """With :attr:`stop_at_match`: evaluate the forget split only at the two evaluations that
    bracket the matched point and at the last step, the retain split at every one
    (``UnlearnConfig.forget_at_bracket``): forget ES at matched retain is the whole run's to the
    last bit, and the forget evaluations that no figure draws are saved (~0.05 s each for the
    tiny tier). For runs whose curves no figure draws (``studies.specs.population_overrides``,
    :data:`LEAN_OVERRIDES`, :data:`TABLE_OVERRIDES`)."""
    run_on: bool = False
    """With :attr:`stop_at_match`: searched for the bracket of the matched point as a population
    run is, then the run goes on to its last step without evaluations but the last
    (``UnlearnConfig.run_on``): its final model, final metrics and matched numbers are the whole
    run's to the last bit, its curves have no point between the bracket and the end; the final
    metrics are allowed then (:data:`TABLE_OVERRIDES`)."""
    final_metrics: tuple[str, ...] = ("es", "es_paraphrased", "em", "probability", "truth_ratio",
                                      "forget_quality", "model_utility", "mia_loss")
    """Metrics computed on each run's final model (``()`` for none): see ``satimp_lab.evaluation.metrics``.
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
        for name, does in (("forget_at_bracket", "reads the forget split at"), ("run_on", "goes on after")):
            if getattr(self, name) and not self.stop_at_match:
                raise InputError(f"{own}.{name}=True {does} the matched point's bracket, which only "
                                 f"stop_at_match=True searches for; got stop_at_match=False")
        if self.stop_at_match and self.final_metrics and not self.run_on:
            raise InputError(f"{own}.stop_at_match=True ends runs before their last step: the final metrics "
                             f"{self.final_metrics!r} would read a truncated model; set final_metrics=()")
        check_choice(own, "source", self.source, ("synthetic", "tofu"))
        if self.tier == "paper" and not self.base_model:
            raise InputError(f"{own}: the paper tier needs base_model (a Hugging Face name or a local "
                             f"folder, e.g. 'microsoft/phi-1_5'; the CLI's --base-model)")
        try:  # names: tier, split, metrics
            self.tier_config()
            retain_split_for(self.forget_split)
            for name in self.final_metrics:
                get_metric(name)
        except ValueError as err:
            raise InputError(f"{own}: {err}") from None

    def tier_config(self):
        """The :class:`~satimp_lab.tiers.TierConfig` of :attr:`tier`, with :attr:`base_model` (the
        paper tier's prompt format and learning rate follow it: ``models.build.get_tier``)."""
        return get_tier(self.tier, **({"base_model": self.base_model} if self.base_model else {}))

    def benchmark_splits(self) -> list[str]:
        """The splits a Lab of this setting loads (``data.benchmark.benchmark_splits``)."""
        return benchmark_splits(self.source, self.forget_split)


SETTING_DEFAULTS_OUT_OF_KEYS = ("base_model", "source", "data_dir")
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


POPULATION_OVERRIDES = {"final_metrics": (), "stop_at_match": True}
""":class:`Setting` fields of the population's runs on target models other than the Lab's own
(:meth:`Lab.population_lab`): no final metrics, and each run ends at the evaluation that brackets
its matched point, evaluated every ``eval_every`` steps until then (its matched numbers are the
whole run's by construction). The studies read forget ES at matched retain from these runs, and
observation (i)'s population figure their curves; a run whose curves no figure draws also reads
its forget split at the bracket alone (``on_others`` of :meth:`Lab.sweep_population`,
``studies.specs.population_overrides``: :attr:`Setting.forget_at_bracket`). The notebooks'
tables read the Lab's own target's runs."""

TABLE_OVERRIDES = {"stop_at_match": True, "forget_at_bracket": True, "run_on": True}
""":class:`Setting` fields of runs on the Lab's own target whose final metrics and matched numbers
a notebook's table shows but no figure their curves: the retain split evaluated every
``eval_every`` steps up to the bracket of the matched point, the forget split at the bracket,
then run to the last step unevaluated but the last (the same final model, final metrics and
matched numbers; curves without the points between the bracket and the end, no forget points
before the bracket)."""

LEAN_OVERRIDES = {**POPULATION_OVERRIDES, "forget_at_bracket": True}
""":class:`Setting` fields of runs on the Lab's own target that no notebook shows (only their
forget ES at matched retain is read): no final metrics, the retain split evaluated every
``eval_every`` steps up to the bracket of the matched point and ending there, the forget split
at the bracket (its numbers the whole run's by construction)."""


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
        overrides = {"name": f"{size.name}-{tier}", **recipe, **overrides}
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
        :meth:`with_target_seed` with :data:`POPULATION_OVERRIDES` (no final metrics; runs end at
        their matched point)."""
        return self if seed == self.setting.target_seed else self.with_target_seed(seed, **POPULATION_OVERRIDES)

    @cached_property
    def reference_metrics(self) -> dict:
        """Final metrics of the target and retain models themselves (the two ends of the scale)."""
        out = {}
        for name, bundle in (("target", self.target), ("retain", self.retain_model)):
            out[name] = self._final_metrics(bundle.model)
        return out

    @cached_property
    def _retain_truth_ratios(self):
        from ..data.tofu import eval_splits
        from ..evaluation.tofu import truth_ratio

        forget = eval_splits(self.benchmark, self.setting.forget_split)["forget"]  # TOFU: forgetXX_perturbed
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
        stop = {}
        if self.setting.stop_at_match:  # evaluated every eval_every steps until the level is passed
            stop = {"stop_below": self.setting.match_level, "forget_at_bracket": self.setting.forget_at_bracket,
                    "run_on": self.setting.run_on}
        return replace(self.setting.base, method=method, method_params=dict(params or {}), seed=seed,
                       forget_split=self.setting.forget_split, **{**stop, **overrides})

    def _key(self, config: UnlearnConfig) -> tuple[str, str]:
        # Everything that changes the trained model or the metric values is in the key; which
        # final metrics are wanted is not (a cached run with more metrics serves a request for
        # fewer; one with fewer is recomputed -- deterministically -- see _read_run).
        ignored = {"seeds": None, "name": None, "final_metrics": None, "match_level": None}
        # the target seed is in the key through the target model's digest; the population
        # choose other runs, not this one's result (both left out, so older entries stay valid)
        setting = {k: v for k, v in (asdict(self.setting) | ignored).items()
                   if k not in ("target_seed", "target_seeds", "stop_at_match", "forget_at_bracket", "run_on")  # in the run config
                   and not (k in SETTING_DEFAULTS_OUT_OF_KEYS and v == getattr(Setting, k))}
        setting["base"] = self.setting.base.to_dict()  # without its unset new fields: older keys stay
        payload = {"format": CACHE_FORMAT, "run": config.to_dict(), "target": self.target.digest or str(self.target.path),
                   "setting": setting,
                   "target_report": {k: v for k, v in self.target.report.items() if k != "loss_history"}}
        return cache_key(payload)

    def _entry(self, spec: RunSpec, seed: int) -> tuple[UnlearnConfig, str, str, Path]:
        """(config, label, key text, cache folder) of one run. Building the config resolves the
        spec's Method (the run's one registry lookup) and checks that it reads every parameter."""
        config = self.config(spec.method, seed, dict(spec.params), **spec.overrides)
        key_text, digest = self._key(config)
        return config, spec.default_label, key_text, cache_dir() / "runs" / f"{spec.method}-{digest[:16]}"

    def _cached(self, method: str | RunSpec, seed: int = 0, params: dict | None = None,
                label: str | None = None, **overrides) -> RunResult | None:
        """The run if it is in the cache (as :meth:`run` would return it), else None."""
        config, label, key_text, folder = self._entry(_as_spec(method, params, label, overrides), seed)
        return _read_run(folder, key_text, label, config, self.setting)

    def run(self, method: str | RunSpec, seed: int = 0, params: dict | None = None, label: str | None = None,
            **overrides) -> RunResult:
        """Run (or load from cache) one method: a :class:`RunSpec`, or its fields as keywords.
        ``params`` override the method's hyper-parameters; other keywords override fields of the
        setting's :class:`UnlearnConfig`. The run is computed with :data:`RUN_THREADS` torch
        threads, wherever it runs. The method is resolved from the registry once, when the run's
        config is built, and handed to ``unlearn``.

        A cached entry is recomputed (and replaced) when its key differs or it lacks a final metric
        the setting asks for. Raises ``CacheError`` naming the entry and the file when the entry's
        files do not match the content hashes recorded when it was written (a missing, truncated or
        edited ``trace.npz``, ``history.csv``, ...): it is not recomputed then; delete the folder."""
        return self._run_entry(*self._entry(_as_spec(method, params, label, overrides), seed))

    def _run_entry(self, config: UnlearnConfig, label: str, key_text: str, folder: Path) -> RunResult:
        """:meth:`run` of one :meth:`_entry` (a serial sweep has made it already)."""
        cached = _read_run(folder, key_text, label, config, self.setting)
        if cached is not None:
            return cached
        started = time.perf_counter()
        with torch_threads(RUN_THREADS):
            run = unlearn(self.target, self.benchmark, config, progress=False, eval_cache=self._eval_cache,
                          method=config.resolved_method())
        summary = {}
        evals = run.evaluations  # final_*: the last evaluation after step 0; none if the run
        last = evals.iloc[-1] if len(evals) and evals["step"].iloc[-1] > 0 else {}  # diverged first
        summary.update({f"final_{k}": float(last[k]) for k in ("forget_es", "retain_es",
                                                               "forget_mean_logp", "retain_mean_logp")
                        if k in last})
        if run.status == "completed":
            summary.update({f"eval_{k}": v for k, v in self._final_metrics(run.model).items()})

        def write(tmp: Path):
            run.save(tmp)
            (tmp / "summary.json").write_text(json.dumps({
                "key": key_text, "summary": summary, "status": run.status,
                "final_metrics": list(self.setting.final_metrics),
                "seconds": time.perf_counter() - started}, default=float))   # what the run cost

        # an entry that serves this request, written meanwhile by another process, stands
        atomic_directory(folder, write,
                         keep=lambda f: _read_run(f, key_text, label, config, self.setting) is not None)
        summary = {**forget_at_matched_retain(run.history, self.setting.match_level), **summary}
        return RunResult(label, config, run.history, summary, folder, run.status, self.setting.target_seed)

    def sweep(self, specs: list[RunSpec | dict], seeds: tuple[int, ...] | None = None, desc: str = "sweep",
              executor: concurrent.futures.Executor | str | None = "processes") -> "Sweep":
        """Run every spec (a :class:`RunSpec`, or a dict of :meth:`run` keywords: method, params,
        label, overrides) for every seed; returns a :class:`Sweep` (tidy tables of summaries and curves), runs in the
        order of the specs, then the seeds.

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
        units = [(self, RunSpec.of(spec), seed) for spec in specs for seed in seeds]
        return Sweep(_sweep_units(units, desc, executor, self.progress), self.setting)

    def sweep_population(self, specs: list[RunSpec | dict], seeds: tuple[int, ...] | None = None,
                         target_seeds: tuple[int, ...] | None = None, desc: str = "population",
                         executor: concurrent.futures.Executor | str | None = "processes",
                         on_target: Callable[[RunSpec], dict] | None = None,
                         on_others: Callable[[RunSpec], dict] | None = None) -> "Sweep":
        """Every spec on every unit: each target model of ``target_seeds`` (default: the setting's
        :attr:`Setting.target_seeds`) x each unlearning seed of ``seeds`` (default: the setting's).
        One :class:`Sweep` whose tables carry a ``target_seed`` column, runs in the order targets,
        specs, seeds; the input of ``satimp_lab.studies.verdicts``. ``executor`` as in :meth:`sweep`:
        the runs of every target go to it in one pass (one pool, one progress bar).

        Runs on the other targets (:meth:`population_lab`) skip the final metrics (no retain model
        needed) and end at the evaluation that brackets their matched point
        (:data:`POPULATION_OVERRIDES`): the studies decide on forget ES at matched retain, read
        from the training curves up to that point; the Lab's own target's runs keep every step
        and the final metrics, because the notebooks' tables and curves read them; ``on_target``
        (e.g. ``studies.specs.target_overrides``) may give a spec's run on this target other
        :class:`Setting` fields (:data:`LEAN_OVERRIDES` for a run that no notebook shows there,
        :data:`TABLE_OVERRIDES` for one whose curves none shows); ``on_others`` (e.g.
        ``studies.specs.population_overrides``) gives its runs on the other targets fields on top
        of :data:`POPULATION_OVERRIDES` (:attr:`Setting.forget_at_bracket` for a run whose curves
        no figure draws)."""
        return self.sweep_groups({desc: specs}, seeds, target_seeds, desc, executor, on_target, on_others)[desc]

    def sweep_groups(self, groups: dict[str, list[RunSpec | dict]], seeds: tuple[int, ...] | None = None,
                     target_seeds: tuple[int, ...] | None = None, desc: str = "population",
                     executor: concurrent.futures.Executor | str | None = "processes",
                     on_target: Callable[[RunSpec], dict] | None = None,
                     on_others: Callable[[RunSpec], dict] | None = None,
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
        layout = {name: [(self._unit_lab(lab, spec, on_target, on_others), spec, seed)
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

    def _unit_lab(self, lab: "Lab", spec: RunSpec, on_target: Callable[[RunSpec], dict] | None,
                  on_others: Callable[[RunSpec], dict] | None = None) -> "Lab":
        """The Lab that runs ``spec`` in a population sweep where ``lab`` is the unit's target
        (:meth:`population_lab`): on this Lab's own target, ``on_target(spec)`` (Setting fields,
        ``{}`` for none) gives the Lab with those fields; on another, ``on_others(spec)`` gives
        them on top of :data:`POPULATION_OVERRIDES`."""
        hook = on_target if lab is self else on_others
        overrides = hook(spec) if hook is not None else {}
        if not overrides or all(getattr(lab.setting, k) == v for k, v in overrides.items()):
            return lab
        if lab is self:
            return self.with_target_seed(self.setting.target_seed, **overrides)
        return self.with_target_seed(lab.setting.target_seed, **{**POPULATION_OVERRIDES, **overrides})

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


_WORKER_LABS: dict[tuple[str, str], Lab] = {}
"""One Lab per (cache folder, setting) in each process: a worker loads the target and retain
models once, not once per run."""


def _run_job(job: SweepJob) -> RunResult:
    """Compute (or read from the cache) one run of a sweep; executed by the workers."""
    os.environ["SATIMP_LAB_CACHE"] = job.cache
    key = (job.cache, repr(job.setting))
    if key not in _WORKER_LABS:
        _WORKER_LABS[key] = Lab(job.setting, progress=False)
    return _WORKER_LABS[key].run(RunSpec.of(job.spec), seed=job.seed)


def _sweep_units(units: list[tuple["Lab", RunSpec, int]], desc: str, executor, progress: bool) -> list[RunResult]:
    """Every ``(lab, spec, seed)`` of ``units`` as a :class:`RunResult`, in order, computing the
    runs not cached yet in one pass on ``executor`` (see :meth:`Lab.sweep`): one progress bar
    over the distinct runs, each run computed once however many units ask for it (a unit that
    repeats another's run under another label gets that run under its own label).

    Raises ValueError for an invalid spec before anything runs, :class:`SweepError` (naming
    every failed run; the others finished and are cached) once every run ended."""
    # the run of every unit (validates every spec first); units of one Lab with one cache folder
    # (same config, hence same key) are one run
    entries = [lab._entry(spec, seed) for lab, spec, seed in units]
    owner: dict[tuple[int, Path], int] = {}
    for i, ((lab, _, _), (_, _, _, folder)) in enumerate(zip(units, entries)):
        owner.setdefault((id(lab), folder), i)
    distinct = sorted(set(owner.values()))
    results: dict[int, RunResult | None] = {}
    for i in distinct:
        lab, config, label, key_text, folder = units[i][0], *entries[i]
        results[i] = _read_run(folder, key_text, label, config, lab.setting)
    todo = [i for i in distinct if results[i] is None]
    shards = executor if isinstance(executor, Shards) else None
    owned = {i for k, i in enumerate(distinct) if shards is None or shards.owns(k)}  # by place, not cache
    pool = None if shards is not None else _resolve_executor(executor, len(todo))
    failures: list[tuple[str, BaseException]] = []
    with tqdm(total=len(distinct), initial=len(distinct) - len(todo), desc=desc, disable=not progress) as bar:
        if pool is None:
            for i in sorted(todo, key=lambda i: i not in owned):  # this process's own runs first
                lab, spec, seed = units[i]
                folder = entries[i][3]
                try:
                    if i in owned:
                        if shards is not None:
                            failure_note(folder).unlink(missing_ok=True)
                        results[i] = lab._run_entry(*entries[i])
                    else:  # another process of the launch computes it
                        config, label, key_text, _ = entries[i]
                        read = functools.partial(_read_run, folder, key_text, label, config, lab.setting)
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
                if lab.setting.final_metrics:  # the final metrics read the retain model
                    _ = lab.retain_model
            futures = {pool.submit(_run_job, SweepJob(units[i][0].setting, units[i][1], units[i][2], cache)): i
                       for i in todo}
            try:
                for future in _completed(list(futures)):
                    i = futures[future]
                    try:
                        results[i] = future.result()
                    except Exception as err:  # noqa: BLE001 -- reported with the run's name below
                        failures.append((units[i][0]._describe(*units[i][1:]), err))
                    bar.update(1)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    ordered = []
    for i, ((lab, _, _), (_, label, _, folder)) in enumerate(zip(units, entries)):
        run = results[owner[(id(lab), folder)]]
        ordered.append(run if run is None or run.label == label else replace(run, label=label))
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
    if not params:
        return method
    return method + "(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"


def _read_run(folder: Path, key_text: str, label: str, config: UnlearnConfig,
              setting: Setting) -> RunResult | None:
    """The cached run in ``folder`` if its key matches and it holds every final metric the
    setting asks for; None (recompute) otherwise. The matched-retain numbers are recomputed from
    the stored history, so a changed ``match_level`` never needs a rerun. The key in
    ``summary.json`` is compared first, then the entry verified against its manifest
    (``store.read_entry``): raises ``CacheError`` naming the file."""
    return read_entry(folder, lambda f: _parse_run(f, key_text, label, config, setting), what="cached run",
                      key_file="summary.json", key_text=key_text)


def _parse_run(folder: Path, key_text: str, label: str, config: UnlearnConfig,
               setting: Setting) -> RunResult | None:
    try:
        meta = json.loads((folder / "summary.json").read_text())
        if meta.get("key") != key_text:
            return None  # a different config hashed here: never reuse it
        if meta["status"] == "completed" and not set(setting.final_metrics) <= set(meta.get("final_metrics", ())):
            return None  # computed with fewer final metrics than wanted now
        history = pd.read_csv(folder / "history.csv")
    except (OSError, KeyError, json.JSONDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise CacheError(f"corrupt cached run {folder}: {err}; delete this folder to recompute it") from None
    summary = {**forget_at_matched_retain(history, setting.match_level), **meta["summary"]}
    return RunResult(label, config, history, summary, folder, meta["status"], setting.target_seed)


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
        frames = []
        for r in self.results:
            ev = r.history.dropna(subset=["forget_es"]) if "forget_es" in r.history else r.history
            frames.append(ev.assign(label=r.label, method=r.config.method, target_seed=r.target_seed,
                                    seed=r.config.seed))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

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
