"""An experimental setting: where every run of a study happens (tier, benchmark family and forget
split, the shared recipe, the population of target models), and the named sizes and tier recipes
(declared in ``satimp_lab.tiers``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from ..data.benchmark import BenchmarkConfig
from ..data.families import get_family
from ..errors import InputError, check_choice, check_int, check_real
from ..evaluation.metrics import get_metric
from ..models.build import get_tier, prompt_format_for
from ..tiers import FAMILY_SIZES, PAPER_DRY_RUN_KEEPS, SIZES, paper_recipe, setting_name, size_of
from ..tiers import TIER_RECIPES as _TIER_RECIPE_FIELDS
from ..unlearning.run import UnlearnConfig
from .matched import forget_at_matched_retain


@dataclass(frozen=True)
class Setting:
    """An experimental setting: where every run of a notebook happens."""

    name: str = "full"
    tier: str = "tiny"
    benchmark: Any = field(default_factory=BenchmarkConfig)
    """The benchmark's config, of its family's ``config_type``: ``data.benchmark.BenchmarkConfig``
    (TOFU-shaped), ``data.muse.MuseConfig`` (MUSE-shaped)."""
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
        if not isinstance(self.benchmark, get_family(self.family).config_type):
            raise InputError(f"{own}.benchmark must be a {get_family(self.family).config_type.__name__} for "
                             f"benchmark family {self.family!r}, got {type(self.benchmark).__name__} (use "
                             f"get_setting(size, family={self.family!r}), which sets it)")
        if self.tier == "paper" and not self.base_model:
            raise InputError(f"{own}: the paper tier needs base_model (a Hugging Face name or a local "
                             f"folder, e.g. 'microsoft/phi-1_5'; the CLI's --base-model)")
        try:  # names: tier, family, split, metrics
            self.tier_config()
            family = get_family(self.family)
            family.training_splits(self.forget_split)
            for name in self.final_metrics:
                get_metric(name)
            family.check_metrics(self.final_metrics)
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


def _setting_fields(fields_: dict, family: str = "tofu") -> dict:
    """``Setting`` fields from a table of :mod:`satimp_lab.tiers` (nested dicts made into the
    ``benchmark`` config of ``family``'s type and the ``base`` recipe)."""
    out = dict(fields_)
    if "benchmark" in out:
        out["benchmark"] = get_family(family).config_type(**out["benchmark"])
    if "base" in out:
        out["base"] = UnlearnConfig(**out["base"])
    return out


SETTINGS = {name: replace(Setting(), name=name, **_setting_fields(f)) for name, f in SIZES.items()}
"""The named sizes (``full``, ``fast``), declared in ``tiers.SIZES``."""

TIER_RECIPES = {tier: _setting_fields(f) for tier, f in _TIER_RECIPE_FIELDS.items()}

FAMILY_RECIPES = {family: {size: {"family": family, **_setting_fields(f, family)} for size, f in by_size.items()}
                  for family, by_size in FAMILY_SIZES.items()}
"""Benchmark family -> size -> ``Setting`` fields (``get_setting(size, family="muse")``), declared
in ``tiers.FAMILY_SIZES``."""
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
    family = overrides.get("family")
    if isinstance(family, str) and family in FAMILY_RECIPES and family != size.family:
        own = size_of(size) or size.name
        if own not in FAMILY_RECIPES[family]:
            raise InputError(f"benchmark family {family!r} has no recipe for size {own!r}; "
                             f"valid: {sorted(FAMILY_RECIPES[family])}")
        overrides = {"name": setting_name(own, family), **FAMILY_RECIPES[family][own], **overrides}
    tier = overrides.get("tier")
    if isinstance(tier, str) and tier in TIER_RECIPES and tier != size.tier:
        recipe = TIER_RECIPES[tier]
        if tier == "paper" and overrides.get("base_model"):  # the recipe of the model's family
            recipe = {**recipe, "base": replace(recipe["base"], **paper_recipe(prompt_format_for(overrides["base_model"])))}
        if tier == "paper" and size.tier == "micro":  # --fast: a dry run of the machinery
            recipe = {**recipe, **{k: getattr(size, k) for k in PAPER_DRY_RUN_KEEPS}}
        overrides = {"name": setting_name(size.name, tier), **recipe, **overrides}
    return replace(size, **overrides) if overrides else size
