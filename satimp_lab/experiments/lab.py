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

import concurrent.futures
import functools
import json
import os
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import cast

from tqdm.auto import tqdm

from ..data.families import get_family
from ..errors import InputError
from ..models.cache import CACHE_FORMAT, get_model
from ..models.train import subset_benchmark
from ..store import atomic_directory, cache_dir, cache_key
from ..unlearning.loop import unlearn
from ..unlearning.run import UnlearnConfig
from ..unlearning.plan import CURVES_TO_MATCH, FULL, EvalPlan
from .pool import RUN_THREADS, SweepError, _completed, _resolve_executor, torch_threads
from .results import RunResult, Sweep, _Entry
from .setting import SETTING_DEFAULTS_OUT_OF_KEYS, Setting, get_setting
from .shards import Shards, failure_note, note_failure
from .identity import RunSpec


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
        self._by_family: dict = {}  # family_lab's Labs, so their models load once

    # -- data and models (built on first use, then cached on disk) ------------------------------

    @cached_property
    def benchmark(self):
        """The setting's splits, as its tier sees them: a tier that trains on a subset of the
        authors (``small``) unlearns and is evaluated on that subset, so the retain set holds only
        authors its models learned (``models.subset_benchmark``)."""
        s = self.setting
        family = get_family(s.family)
        bench = family.load_benchmark(s.source, s.forget_split, config=s.benchmark, data_dir=s.data_dir)
        return subset_benchmark(bench, s.tier_config()) if family.model_rows is None else bench

    def _tier_overrides(self) -> dict:
        # seed 0 passes no train config, so the default models keep their cache entries
        out = {"base_model": self.setting.base_model} if self.setting.base_model else {}
        if self.setting.target_seed == 0:
            return out
        return {**out, "train": replace(self.setting.tier_config().train, seed=self.setting.target_seed)}

    @cached_property
    def target(self):
        return get_model(self.benchmark, "target", self.setting.forget_split, self.setting.tier,
                         progress=self.progress, family=self.setting.family, **self._tier_overrides())

    @cached_property
    def retain_model(self):
        return get_model(self.benchmark, "retain", self.setting.forget_split, self.setting.tier,
                         progress=self.progress, family=self.setting.family, **self._tier_overrides())

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

    def family_lab(self, family: str) -> "Lab":
        """This Lab for benchmark family ``family`` (``data.families``); for another family, the
        Lab of the same size and tier on that family's recipe (``tiers.FAMILY_SIZES``, applied by
        ``get_setting(size, family=...)``), kept, so its models load once. Raises
        :class:`InputError` for a family without a recipe for this Lab's size."""
        if family == self.setting.family:
            return self
        if family not in self._by_family:
            from ..tiers import size_of

            size = size_of(self.setting)
            if size is None:
                raise InputError(f"Lab {self.setting.name!r} is no named size (tiers.SIZES): no recipe for "
                                 f"benchmark family {family!r} to follow it; build Lab(size, family={family!r})")
            tier = {} if self.setting.tier == get_setting(size).tier else {"tier": self.setting.tier}
            self._by_family[family] = Lab(size, progress=self.progress, family=family, **tier)
        return self._by_family[family]

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

    @cached_property
    def _privleak_auc_ref(self) -> float:
        """The retrained model's membership-inference AUC on the forget vs held-out passages
        (PrivLeak's reference, ``evaluation.muse.text_privleak``), computed once per Lab."""
        from ..evaluation.muse import text_membership_inference

        roles = get_family(self.setting.family).evaluation_splits(self.benchmark, self.setting.forget_split)
        with torch_threads(RUN_THREADS):
            return text_membership_inference(self.retain_model.model, self.retain_model.tokenizer,
                                             self.benchmark[roles["forget"]], self.benchmark[roles["holdout"]],
                                             prompt_format=self.target.tier.prompt_format,
                                             batch_size=self.setting.metrics_batch_size).agg_value

    def _final_metrics(self, model) -> dict:
        """``{name: value}``, e.g. ``forget_es``, ``retain_truth_ratio``, ``forget_quality``, ``model_utility``."""
        from ..evaluation import metrics

        s = self.setting
        if not s.final_metrics:
            return {}
        needs = ({"retain_truth_ratios": self._retain_truth_ratios} if "forget_quality" in s.final_metrics else {})
        if "privleak" in s.final_metrics:
            needs["privleak_auc_ref"] = self._privleak_auc_ref
        with torch_threads(RUN_THREADS):
            table = metrics.evaluate(model, self.target.tokenizer, self.benchmark, forget_split=s.forget_split,
                                     metrics=s.final_metrics, family=s.family, **needs,
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
        * a :class:`~satimp_lab.experiments.shards.Shards` (``Shards.from_env()`` under ``accelerate
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
            for i in todo:  # models are made once here, not by every worker at once
                lab = units[i][0]
                _ = lab.target
                if entries[i].plan.final_metrics and lab.setting.final_metrics:
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
