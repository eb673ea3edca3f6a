"""Sweeps over methods x hyper-parameters x seeds, cached on disk, returned as DataFrames.

A :class:`Lab` holds one experimental setting (tier, benchmark, forget split, base recipe) and the
models it needs (target and retain, from the model cache). ``lab.run(...)`` runs one method and
caches its history, trace and final metrics under a key made of the *full* run configuration and
the target model's cache key, so a second call is instant and a changed config never reuses a
stale result. ``lab.sweep(...)`` runs many and returns one tidy table.

Methods are compared at matched quality (SPEC Part 1 §10): :func:`forget_at_matched_retain`
reads each run's training curve at the step where retain quality first falls to a set share of
its starting value.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .benchmark import BenchmarkConfig, load_benchmark, retain_split_for
from .models import CACHE_FORMAT, atomic_directory, cache_dir, cache_key, get_model, get_tier, subset_benchmark
from .tracing import TokenTrace
from .unlearn import UnlearnConfig, unlearn


@dataclass(frozen=True)
class Setting:
    """An experimental setting: where every run of a notebook happens."""

    name: str = "full"
    tier: str = "tiny"
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    forget_split: str = "forget10"
    """forget10 = 10 authors x 4 QA = 40 rows, the size of TOFU's forget01."""
    base: UnlearnConfig = field(default_factory=lambda: UnlearnConfig(
        epochs=6, lr=3e-4, batch_size=8, eval_every=2, eval_max_examples=40))
    """The shared recipe. At 3e-4, GA, SimSat, SimImp, SatImp, NPO and annotation weighting all
    push retain ES below 90 % of its start within ~12-22 of these 30 steps, so the matched point
    exists; evaluating every 2 steps draws the trade-off curves (~40 ms per evaluation)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    target_seed: int = 0
    """Training seed of the target and retain models. A from-scratch model's training is chaotic:
    another seed (or another CPU) gives another target, and the verdicts rest on it."""
    robustness_target_seeds: tuple[int, ...] = (1, 2)
    """Other target seeds on which notebooks 04-07 repeat their sweeps (:meth:`Lab.sweep_by_target`;
    ``()``: skip)."""
    match_level: float = 0.9
    """Compare forget ES where retain ES first falls to this share of its starting value."""
    final_metrics: tuple[str, ...] = ("es", "es_paraphrased", "em", "probability", "truth_ratio",
                                      "forget_quality", "model_utility", "mia_loss")
    """Metrics computed on each run's final model (``()`` for none): see ``satimp_lab.metrics``."""
    final_max_examples: int | None = 40
    """Rows per split for the final metrics: the first 40 (all of forget10 and world_facts, ten
    retain authors); 80 would double the retain side for ~0.8 s more per run."""
    max_new_tokens: int = 48
    """Greedy generation budget for ROUGE (answers are ~15-25 tokens)."""
    metrics_batch_size: int = 32
    """Rows per forward pass (and per generation batch) of the final metrics."""


SETTINGS = {
    "full": Setting(),
    # tests and CI: a micro model on 20 authors, a few steps, one seed
    "fast": Setting(name="fast", tier="micro",
                    benchmark=BenchmarkConfig(n_authors=20, qa_per_author=2, n_holdout_authors=4,
                                              n_world_facts=10),
                    base=UnlearnConfig(epochs=4, lr=1e-3, batch_size=2, eval_every=1,
                                       eval_max_examples=16),
                    seeds=(0,), robustness_target_seeds=(1,), final_max_examples=12, max_new_tokens=24),
}


TIER_RECIPES = {
    # SmolLM2-135M (pretrained, 49k vocabulary) on a 2-core CPU: ~2 s per unlearning step, so one
    # seed, fewer evaluation rows in batches of 8, and a learning rate for a pretrained model
    # (the tiny tier's 3e-4 is for a model trained from scratch at 3e-3).
    "small": dict(base=UnlearnConfig(epochs=4, lr=5e-5, batch_size=8, eval_every=2,
                                     eval_max_examples=20, eval_batch_size=8, fused_optimizer=True),
                  seeds=(0, 1), final_max_examples=20, max_new_tokens=32, metrics_batch_size=8,
                  # another target pair is ~7 CPU minutes and its runs ~30: not by default
                  robustness_target_seeds=()),
}
"""Setting fields a tier needs whatever the size (``Lab(SIZE, tier="small")``); fields passed
explicitly to :func:`get_setting` win."""


def get_setting(size: str | Setting = "full", **overrides) -> Setting:
    """A named size (``full``, ``fast``) or a Setting, with overrides. Overriding ``tier`` with one
    that has a recipe in :data:`TIER_RECIPES` also applies that recipe (the setting is renamed
    ``"<size>-<tier>"``), so a notebook's ``TIER = "small"`` gets a recipe that suits the model."""
    if isinstance(size, str):
        if size not in SETTINGS:
            raise ValueError(f"unknown size {size!r}; valid: {sorted(SETTINGS)}")
        size = SETTINGS[size]
    tier = overrides.get("tier")
    if isinstance(tier, str) and tier in TIER_RECIPES and tier != size.tier:
        overrides = {"name": f"{size.name}-{tier}", **TIER_RECIPES[tier], **overrides}
    return replace(size, **overrides) if overrides else size


# ----------------------------------------------------------------------------------------------


def forget_at_matched_retain(history: pd.DataFrame, level: float = 0.9, retain_col: str = "retain_es",
                             forget_col: str = "forget_es") -> dict:
    """Forget quality at the step where retain quality first falls to ``level`` x its start value.

    Linear interpolation between the two evaluations that bracket the crossing. If retain never
    falls that far, the final values are returned with ``reached=False`` (the method is gentler
    than the budget: its forget value is an upper bound of what it would reach at the level).
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
        return {"matched_forget": forget[i], "matched_retain": retain[i], "matched_step": steps[i],
                "reached": len(below) > 0}
    j = below[0]
    t = (retain[j - 1] - threshold) / max(retain[j - 1] - retain[j], 1e-12)
    return {"matched_forget": forget[j - 1] + t * (forget[j] - forget[j - 1]),
            "matched_retain": threshold, "matched_step": steps[j - 1] + t * (steps[j] - steps[j - 1]),
            "reached": True}


@dataclass
class RunResult:
    """A cached run: its config, per-step history, final metrics and (lazily) its token trace."""

    label: str
    config: UnlearnConfig
    history: pd.DataFrame
    summary: dict
    folder: Path
    status: str = "completed"

    @property
    def trace(self) -> pd.DataFrame:
        frame = TokenTrace.load(self.folder / "trace.npz").to_frame()
        frame["method"] = self.label
        frame["seed"] = self.config.seed
        return frame

    def row(self) -> dict:
        """One flat record for sweep tables."""
        return {"label": self.label, "method": self.config.method, "seed": self.config.seed,
                **{f"param_{k}": v for k, v in self.config.method_params.items()},
                "status": self.status, **self.summary}


class Lab:
    """One setting's benchmark, models and cached runs."""

    def __init__(self, size: str | Setting = "full", progress: bool = True, **setting_overrides):
        self.setting = get_setting(size, **setting_overrides)
        self.progress = progress

    # -- data and models (built on first use, then cached on disk) ------------------------------

    @cached_property
    def benchmark(self):
        """The setting's splits, as its tier sees them: a tier that trains on a subset of the
        authors (``small``) unlearns and is evaluated on that subset, so the retain set holds only
        authors its models learned (``models.subset_benchmark``)."""
        s = self.setting
        bench = load_benchmark(splits=["full", s.forget_split, retain_split_for(s.forget_split),
                                       "holdout", "world_facts"], config=s.benchmark)
        return subset_benchmark(bench, s.tier)

    def _tier_overrides(self) -> dict:
        # seed 0 passes nothing, so the default models keep their cache entries
        if self.setting.target_seed == 0:
            return {}
        return {"train": replace(get_tier(self.setting.tier).train, seed=self.setting.target_seed)}

    @cached_property
    def target(self):
        return get_model(self.benchmark, "target", self.setting.forget_split, self.setting.tier,
                         progress=self.progress, **self._tier_overrides())

    @cached_property
    def retain_model(self):
        return get_model(self.benchmark, "retain", self.setting.forget_split, self.setting.tier,
                         progress=self.progress, **self._tier_overrides())

    def with_target_seed(self, seed: int) -> "Lab":
        """The same setting with target and retain models trained with another seed."""
        return Lab(replace(self.setting, target_seed=seed), progress=self.progress)

    @cached_property
    def reference_metrics(self) -> dict:
        """Final metrics of the target and retain models themselves (the two ends of the scale)."""
        from . import metrics

        out = {}
        for name, bundle in (("target", self.target), ("retain", self.retain_model)):
            out[name] = self._final_metrics(bundle.model)
        return out

    @cached_property
    def _retain_truth_ratios(self):
        from . import metrics

        return metrics.truth_ratio(self.retain_model.model, self.retain_model.tokenizer,
                                   self.benchmark[self.setting.forget_split], kind="forget",
                                   prompt_format=self.target.tier.prompt_format,
                                   batch_size=self.setting.metrics_batch_size)

    def _final_metrics(self, model) -> dict:
        """``{name: value}``, e.g. ``forget_es``, ``retain_truth_ratio``, ``forget_quality``, ``model_utility``."""
        from . import metrics

        s = self.setting
        if not s.final_metrics:
            return {}
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
        return replace(self.setting.base, method=method, method_params=dict(params or {}), seed=seed,
                       forget_split=self.setting.forget_split, **overrides)

    def _key(self, config: UnlearnConfig) -> tuple[str, str]:
        # Everything that changes the trained model or the metric values is in the key; which
        # final metrics are wanted is not (a cached run with more metrics serves a request for
        # fewer; one with fewer is recomputed -- deterministically -- see _read_run).
        ignored = {"seeds": None, "name": None, "final_metrics": None, "match_level": None}
        # the target seed is in the key through the target model's path; the robustness seeds
        # choose other runs, not this one's result (both left out, so older entries stay valid)
        setting = {k: v for k, v in (asdict(self.setting) | ignored).items()
                   if k not in ("target_seed", "robustness_target_seeds")}
        payload = {"format": CACHE_FORMAT, "run": config.to_dict(), "target": str(self.target.path),
                   "setting": setting,
                   "target_report": {k: v for k, v in self.target.report.items() if k != "loss_history"}}
        return cache_key(payload)

    def run(self, method: str, seed: int = 0, params: dict | None = None, label: str | None = None,
            **overrides) -> RunResult:
        """Run (or load from cache) one method. ``params`` override the method's hyper-parameters;
        other keywords override fields of the setting's :class:`UnlearnConfig`."""
        config = self.config(method, seed, params, **overrides)
        config.resolved_method()  # fail fast with a clear message
        label = label or _default_label(method, params)
        key_text, digest = self._key(config)
        folder = cache_dir() / "runs" / f"{method}-{digest[:16]}"
        cached = _read_run(folder, key_text, label, config, self.setting)
        if cached is not None:
            return cached
        started = time.perf_counter()
        run = unlearn(self.target, self.benchmark, config, progress=False)
        summary = {}
        last = run.evaluations.iloc[-1] if not run.evaluations.empty else {}
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

        atomic_directory(folder, write)
        summary = {**forget_at_matched_retain(run.history, self.setting.match_level), **summary}
        return RunResult(label, config, run.history, summary, folder, run.status)

    def sweep(self, specs: list[dict], seeds: tuple[int, ...] | None = None, desc: str = "sweep") -> "Sweep":
        """Run every spec (a dict of :meth:`run` keywords: method, params, label, overrides) for
        every seed; returns a :class:`Sweep` (tidy tables of summaries and curves)."""
        seeds = self.setting.seeds if seeds is None else seeds
        jobs = [(spec, seed) for spec in specs for seed in seeds]
        results = []
        for spec, seed in tqdm(jobs, desc=desc, disable=not self.progress):
            results.append(self.run(seed=seed, **spec))
        return Sweep(results, self.setting)

    def sweep_by_target(self, specs: list[dict], seeds: tuple[int, ...] | None, done: "Sweep") -> dict:
        """``done`` (this Lab's sweep of at least ``specs``) and the sweep of ``specs`` on a target
        model trained with each of the setting's ``robustness_target_seeds``:
        ``{target seed: (summary, curves)}``, the input of ``findings.claim_by_target`` and
        ``findings.obs1_by_target``. Only ``done``'s target when there are no such seeds."""
        per_target = {self.setting.target_seed: (done.summary, done.curves)}
        for target_seed in self.setting.robustness_target_seeds:
            other = self.with_target_seed(target_seed).sweep(specs, seeds=seeds, desc=f"target seed {target_seed}")
            per_target[target_seed] = (other.summary, other.curves)
        return per_target


def _default_label(method: str, params: dict | None) -> str:
    if not params:
        return method
    return method + "(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"


def _read_run(folder: Path, key_text: str, label: str, config: UnlearnConfig,
              setting: Setting) -> RunResult | None:
    """The cached run in ``folder`` if its key matches and it holds every final metric the
    setting asks for; None (recompute) otherwise. The matched-retain numbers are recomputed from
    the stored history, so a changed ``match_level`` never needs a rerun."""
    from .models import CacheError

    if not folder.exists():
        return None
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
    return RunResult(label, config, history, summary, folder, meta["status"])


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
            frames.append(ev.assign(label=r.label, method=r.config.method, seed=r.config.seed))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def traces(self, labels: list[str] | None = None) -> pd.DataFrame:
        return pd.concat([r.trace for r in self.results if labels is None or r.label in labels],
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
