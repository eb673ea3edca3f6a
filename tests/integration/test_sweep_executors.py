"""Sweeps on an Executor: the same runs bit for bit, failures named, finished runs kept."""

import concurrent.futures
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from satimp_lab.experiments import lab as experiments
from satimp_lab.experiments import Lab, SweepError, process_pool
from satimp_lab.experiments.lab import SweepJob

SPECS = [{"method": "ga"}, {"method": "satimp", "params": {"beta_sat": 5.0, "beta_imp": 0.1}}]


@pytest.fixture
def fresh_cache(session_cache, micro_target, micro_retain, tmp_path, monkeypatch):
    """A run cache of its own (so every run is computed) holding the session's trained models."""
    def make(name):
        path = tmp_path / name
        shutil.copytree(session_cache / "models", path / "models")
        monkeypatch.setenv("SATIMP_LAB_CACHE", str(path))
        return path
    return make


def _traces(sweep):
    return pd.concat([r.trace_frame for r in sweep.results], ignore_index=True)


def test_parallel_sweep_gives_the_serial_runs_bit_for_bit(fresh_cache):
    # every final metric (generation included), two methods x two seeds
    fresh_cache("serial")
    serial = Lab("fast", progress=False).sweep(SPECS, seeds=(0, 1), executor="serial")
    fresh_cache("parallel")
    with process_pool(2) as pool:
        parallel = Lab("fast", progress=False).sweep(SPECS, seeds=(0, 1), executor=pool)
    pd.testing.assert_frame_equal(parallel.summary, serial.summary, check_exact=True)
    pd.testing.assert_frame_equal(parallel.curves, serial.curves, check_exact=True)
    pd.testing.assert_frame_equal(_traces(parallel), _traces(serial), check_exact=True)
    assert "eval_model_utility" in serial.summary and serial.summary["eval_model_utility"].notna().all()
    assert all(str(r.folder).startswith(os.environ["SATIMP_LAB_CACHE"]) for r in parallel.results)


class _Job:
    """A submitit-like job: done() and result(), not a concurrent.futures.Future."""

    def __init__(self, fn, arg):
        try:
            self._value, self._error = fn(arg), None
        except Exception as err:  # noqa: BLE001
            self._value, self._error = None, err

    def done(self):
        return True

    def result(self):
        if self._error is not None:
            raise self._error
        return self._value


class _SubmititLike:
    def __init__(self):
        self.jobs = []

    def submit(self, fn, arg):
        assert isinstance(arg, SweepJob) and len(repr(arg)) < 5000  # small payload, no models
        self.jobs.append(_Job(fn, arg))
        return self.jobs[-1]


@pytest.mark.parametrize("executor", ["serial", "threads", "submitit-like"])
def test_a_failed_run_is_named_and_the_others_are_kept(fresh_cache, executor, monkeypatch):
    fresh_cache(f"fail-{executor}")
    lab = Lab("fast", progress=False, final_metrics=("es",))
    real_unlearn = experiments.unlearn

    def unlearn_failing_for_simsat(target, benchmark, config, **kwargs):  # in-process executors only
        if config.method == "simsat":
            raise FloatingPointError("planted failure inside the run")
        return real_unlearn(target, benchmark, config, **kwargs)

    # a valid spec whose run fails (an invalid one raises before anything runs: test below)
    monkeypatch.setattr(experiments, "unlearn", unlearn_failing_for_simsat)
    specs = [{"method": "ga"}, {"method": "simsat", "lr": 2e-3}]
    pool = {"serial": lambda: "serial", "threads": lambda: concurrent.futures.ThreadPoolExecutor(2),
            "submitit-like": _SubmititLike}[executor]()
    with pytest.raises(SweepError, match=r"1 of 2 runs failed") as info:
        lab.sweep(specs, seeds=(0,), executor=pool)
    (name, err), = info.value.failures
    assert "method 'simsat'" in name and "seed 0" in name and "target seed 0" in name and "lr" in name
    assert isinstance(err, FloatingPointError) and "planted failure" in str(err)
    assert info.value.results[0] is not None and info.value.results[1] is None
    assert lab._cached(seed=0, **specs[0]) is not None  # the finished run is in the cache
    if executor == "threads":
        pool.shutdown()


def test_an_invalid_spec_raises_before_anything_runs(fresh_cache):
    fresh_cache("invalid")
    lab = Lab("fast", progress=False, final_metrics=("es",))
    with pytest.raises(ValueError, match="nope"):
        lab.sweep([{"method": "ga"}, {"method": "nope"}], seeds=(0,), executor="serial")
    assert lab._cached("ga", seed=0) is None
    with pytest.raises(ValueError, match="executor"):
        lab.sweep([{"method": "ga"}], seeds=(0,), executor="cluster")


def test_a_worker_loads_its_models_once(fresh_cache, monkeypatch):
    cache = str(fresh_cache("worker"))
    monkeypatch.setattr(experiments, "_WORKER_LABS", {})
    setting = experiments.get_setting("fast", final_metrics=("es",))
    first = experiments._run_job(SweepJob(setting, {"method": "ga"}, 0, cache))
    (lab,) = experiments._WORKER_LABS.values()
    target = lab.target
    second = experiments._run_job(SweepJob(setting, {"method": "simsat"}, 0, cache))
    assert list(experiments._WORKER_LABS.values()) == [lab] and lab.target is target
    assert first.folder != second.folder
    np.testing.assert_array_equal(first.history["step"], second.history["step"])


class _Recording:
    """Wraps an executor; records the order of submits and first result reads."""

    def __init__(self, inner):
        self.inner, self.events = inner, []

    def submit(self, fn, job):
        self.events.append(("submit", job.setting.target_seed, job.spec.get("label") or job.spec["method"]))
        future = self.inner.submit(fn, job)
        real_result = future.result

        def result(*args, **kwargs):
            self.events.append(("result", job.setting.target_seed, None))
            return real_result(*args, **kwargs)

        future.result = result
        return future


def test_the_population_is_one_pass_and_gives_the_serial_runs_bit_for_bit(fresh_cache):
    fresh_cache("pop-serial")
    serial = Lab("fast", progress=False).sweep_population(SPECS, seeds=(0,), target_seeds=(0, 1),
                                                          executor="serial")
    fresh_cache("pop-parallel")
    with process_pool(2) as pool:
        recording = _Recording(pool)
        parallel = Lab("fast", progress=False).sweep_population(SPECS, seeds=(0,), target_seeds=(0, 1),
                                                                executor=recording)
    pd.testing.assert_frame_equal(parallel.summary, serial.summary, check_exact=True)
    pd.testing.assert_frame_equal(parallel.curves, serial.curves, check_exact=True)
    pd.testing.assert_frame_equal(_traces(parallel), _traces(serial), check_exact=True)
    assert list(serial.summary["target_seed"]) == [0, 0, 1, 1]  # order: targets, specs, seeds
    # one executor pass: both targets' runs are submitted before the first result is read
    kinds = [kind for kind, *_ in recording.events]
    assert kinds == ["submit"] * 4 + ["result"] * 4
    assert sorted(t for kind, t, _ in recording.events if kind == "submit") == [0, 0, 1, 1]


def test_runs_shared_by_groups_are_computed_once(fresh_cache):
    from satimp_lab.studies import Study, plan_for, run_studies

    fresh_cache("groups")
    lab = Lab("fast", progress=False, final_metrics=("es",))
    a = [{"method": "ga"}, {"method": "simsat"}]
    b = [{"method": "simsat", "label": "saturation"}, {"method": "ga", "lr": 2e-3}]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        recording = _Recording(pool)
        sweeps = lab.sweep_groups({"a": a, "b": b}, seeds=(0,), target_seeds=(0, 1), executor=recording,
                                  plan=plan_for)  # as run_studies does
    submitted = [e for e in recording.events if e[0] == "submit"]
    assert len(submitted) == 3 * 2  # ga, simsat, ga(lr) on two targets; simsat once per target
    assert list(sweeps["a"].summary["label"]) == ["ga", "simsat"] * 2
    assert list(sweeps["b"].summary["label"]) == ["saturation", "ga"] * 2
    same = sweeps["b"].summary[sweeps["b"].summary["label"] == "saturation"].reset_index(drop=True)
    sim = sweeps["a"].summary[sweeps["a"].summary["label"] == "simsat"].reset_index(drop=True)
    pd.testing.assert_frame_equal(same.drop(columns="label"), sim.drop(columns="label"), check_exact=True)
    assert [r.folder for r in sweeps["b"].results[:1]] == [r.folder for r in sweeps["a"].results[1:2]]

    # run_studies sweeps every study's specs in one pass, then decides each from its own runs
    studies = [Study(name, "0x_test", name, lambda specs=specs: specs, lambda summary: [])
               for name, specs in (("a", a), ("b", b))]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        recording = _Recording(pool)
        results = run_studies(lab, studies, seeds=(0,), target_seeds=(0, 1), executor=recording)
    assert recording.events == []  # every run was cached by the sweep above
    pd.testing.assert_frame_equal(results[1].summary, sweeps["b"].summary, check_exact=True)
    assert [r.study.id for r in results] == ["a", "b"]


def test_run_studies_makes_the_runs_a_notebook_shows_beside_a_study(fresh_cache, monkeypatch):
    """A study's ``extras`` (runs its notebook shows on the Lab's own target alone, e.g. NPO as a
    reference) are made in ``run_studies``' one pass, on that target only, with the own target's
    schedule; the notebook's ``target_sweep`` then reads them back with nothing left to compute.
    The runs on the other targets get the population's plan (``studies.base.plan_for``: MATCHED)."""
    from satimp_lab.studies import Study, run_studies
    from satimp_lab.experiments.identity import spec

    fresh_cache("extras")
    lab = Lab("fast", progress=False, final_metrics=("es",))
    study = Study("a", "0x_test", "a", lambda: [spec("simsat", "s2", beta=2.0)], lambda summary: [],
                  extras=lambda: [spec("npo")])
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        recording = _Recording(pool)
        (result,) = run_studies(lab, [study], seeds=(0,), target_seeds=(0, 1), executor=recording)
    submitted = sorted((t, label) for kind, t, label in recording.events if kind == "submit")
    assert submitted == [(0, "npo"), (0, "s2"), (1, "s2")]
    other = [r for r in result.sweep.results if r.target_seed == 1]
    assert len(other) == 1 and not other[0].plan.curves and other[0].plan.until == "match"
    todo = []
    real = experiments._resolve_executor
    monkeypatch.setattr(experiments, "_resolve_executor", lambda executor, n: (todo.append(n), real(executor, n))[1])
    shown = result.target_sweep(lab)
    assert todo == [0], "the notebook computed runs that the main job's studies should have made"
    assert [(r.label, r.target_seed) for r in shown.results] == [("s2", 0), ("npo", 0)]
