"""Serial vs parallel sweep throughput (runs per minute) and their ratio, in one process run.

    python benchmarks/sweep_throughput.py [--size full] [--workers N] [--seeds 2]

The same sweep (GA, SimSat, SimImp, SatImp x ``--seeds`` seeds, computed, never read from the
cache) runs twice: ``Lab.sweep(..., executor="serial")`` in this process, and on a
``process_pool(workers)`` (default: one worker per core) whose workers have already started and
loaded their models (the warm-up runs other seeds on the same pool and is timed apart: the cost
a sweep pays once per session). Each run is computed with one torch thread either way, so both
sweeps give the same numbers (checked). Models come from ``$SATIMP_LAB_CACHE`` (trained there if
missing); runs go to temporary folders. Only meaningful on a machine with nothing else running.

``--targets K`` (K >= 2) adds the population case on the same warm pool: the same specs and
seeds on K target models, swept target after target (one ``Lab.sweep`` per target, as
``sweep_population`` did before it submitted every run in one pass) and in one pass
(``Lab.sweep_population``); prints both throughputs, their ratio, and checks the runs agree.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's satimp_lab

from satimp_lab.experiments import Lab, default_workers, process_pool

SPECS = [{"method": "ga"}, {"method": "simsat"}, {"method": "simimp"},
         {"method": "satimp", "params": {"beta_sat": 5, "beta_imp": 0.1}}]


def _fresh_cache(models: Path) -> Path:
    path = Path(tempfile.mkdtemp(prefix="sweep_throughput-"))
    (path / "models").symlink_to(models, target_is_directory=True)
    os.environ["SATIMP_LAB_CACHE"] = str(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="full")
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--seeds", type=int, default=2, help="seeds per method (runs = 4 x seeds)")
    ap.add_argument("--targets", type=int, default=0,
                    help="also sweep the population of this many target models, target by target "
                         "and in one pass (0: skip; the targets must be shipped or cached)")
    argv = sys.argv[1:]
    args = ap.parse_args([] if argv[:1] == ["bench"] else argv)  # or `satimp-lab bench NAME`
    models = (Path(os.environ.get("SATIMP_LAB_CACHE") or Lab(args.size).target.path.parents[1])
              / "models").resolve()
    Lab(args.size, progress=False).retain_model  # train the models here if the cache lacks them
    seeds = tuple(range(args.seeds))
    n = len(SPECS) * len(seeds)
    print(f"{args.size} setting, {n} runs per sweep, {args.workers} workers, "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    folders = []

    folders.append(_fresh_cache(models))
    start = time.perf_counter()
    pool = process_pool(args.workers)
    Lab(args.size, progress=False).sweep(SPECS[:1], seeds=tuple(100 + i for i in range(args.workers)),
                                          executor=pool)
    startup = time.perf_counter() - start

    folders.append(_fresh_cache(models))
    lab = Lab(args.size, progress=False)
    lab.run("ga", seed=99)  # the serial Lab warms up too (models, encodings, step-0 evaluation)
    start = time.perf_counter()
    serial = lab.sweep(SPECS, seeds=seeds, executor="serial")
    t_serial = time.perf_counter() - start

    folders.append(_fresh_cache(models))
    start = time.perf_counter()
    parallel = Lab(args.size, progress=False).sweep(SPECS, seeds=seeds, executor=pool)
    t_parallel = time.perf_counter() - start
    population = _population(args, pool, models, seeds) if args.targets >= 2 else None
    pool.shutdown()

    same = serial.summary.equals(parallel.summary) and serial.curves.equals(parallel.curves)
    print(f"serial    {t_serial:7.1f} s  {60 * n / t_serial:6.1f} runs/min")
    print(f"parallel  {t_parallel:7.1f} s  {60 * n / t_parallel:6.1f} runs/min")
    print(f"ratio     {t_serial / t_parallel:.2f}x   (pool start-up + model loading, once per session: "
          f"{startup:.1f} s for {args.workers} warm-up runs)")
    print(f"identical runs: {same}")
    if population is not None:
        n_pop, t_by_target, t_one_pass, pop_same, pop_folders = population
        folders += pop_folders
        print(f"population of {args.targets} targets, {n_pop} runs on the pool:")
        print(f"  target by target  {t_by_target:7.1f} s  {60 * n_pop / t_by_target:6.1f} runs/min")
        print(f"  one pass          {t_one_pass:7.1f} s  {60 * n_pop / t_one_pass:6.1f} runs/min")
        print(f"  ratio             {t_by_target / t_one_pass:.2f}x   identical runs: {pop_same}")
        same = same and pop_same
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    if not same:
        pd.testing.assert_frame_equal(serial.summary, parallel.summary)


def _population_labs(args, targets: tuple[int, ...]) -> list:
    """A fresh Lab's population (as ``sweep_population`` builds it), models loaded."""
    lab = Lab(args.size, progress=False)
    labs = [lab.population_lab(t) for t in targets]
    for other in labs:  # models are loaded before the clock starts
        _ = other.target
        if other.setting.final_metrics:
            _ = other.retain_model
    return labs


def _population(args, pool, models: Path, seeds: tuple[int, ...]):
    """(runs, seconds target by target, seconds in one pass, identical?, cache folders)."""
    targets = tuple(range(args.targets))
    folders = [_fresh_cache(models)]  # the workers load every target's models first
    _population_labs(args, targets)[0].sweep_population(
        SPECS[:1], seeds=tuple(200 + i for i in range(2 * args.workers)), target_seeds=targets, executor=pool)

    folders.append(_fresh_cache(models))
    labs = _population_labs(args, targets)
    start = time.perf_counter()
    by_target = [r for lab in labs for r in lab.sweep(SPECS, seeds=seeds, executor=pool).results]
    t_by_target = time.perf_counter() - start

    folders.append(_fresh_cache(models))
    lab = _population_labs(args, targets)[0]
    start = time.perf_counter()
    one_pass = lab.sweep_population(SPECS, seeds=seeds, target_seeds=targets, executor=pool)
    t_one_pass = time.perf_counter() - start
    same = pd.DataFrame([r.row() for r in by_target]).equals(one_pass.summary)
    return len(by_target), t_by_target, t_one_pass, same, folders


if __name__ == "__main__":
    main()
