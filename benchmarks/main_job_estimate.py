"""What the main job's studies cost, priced from a main job's run cache: run counts x per-part costs.

    python benchmarks/main_job_estimate.py CACHE_DIR [--search 2] [--notebooks 80] [--rest 86]

``CACHE_DIR/runs`` is the run cache of a full ``satimp-lab reproduce`` whose runs were all
evaluated every 2 steps to the end (a main job from before the population runs stopped at their
matched point); each entry records the seconds its run took (``summary.json``). Nothing is run:
every run's cost is split into parts, then each part is counted under each schedule.

The parts: ``steps`` optimiser steps at ``--step-cost`` each and ``evals`` evaluations at
``--eval-cost`` each (their ratio, from a profiled run: docs/speed.md, ``run_breakdown.py``),
scaled by one factor, plus a final-metrics cost for the runs that have them; the factor and the
final-metrics cost are fitted (least squares) on the recorded seconds of every run, so the prices
are those of the machine that made the cache. Under each schedule a run is priced with the steps
and evaluations it would make (``run_breakdown.searched``: the population's stop-and-search,
replayed on its own history):

    recorded            every run as it was made (every 2 steps to the end)
    population          the runs on the other target models stop at their matched point,
                        searched every --search steps (``CURVES_TO_MATCH``, ``MATCHED``)
    + lean grid         and the grid cells no notebook shows end at their bracket on the Lab's
                        own target, evaluated every 2 steps up to it, without final metrics
                        (``studies.base.plan_for``: ``MATCHED``)
    + tables            and the runs whose tables but no curves a notebook shows are evaluated
                        so up to the bracket, then run to the end with the last step evaluated
                        (``FINAL``), with their final metrics

The forget split read at the bracket alone (``EvalPlan.curves=False``, 2026-11-30) is not
priced: every evaluation here reads both splits, so the estimate is an upper bound of today's
main job; measure it (``time satimp-lab reproduce``, docs/speed.md).

The studies' wall time is the worker-seconds over ``--workers`` plus ``--rest`` (relearning
attacks, starting the workers: what the recorded main job spent outside these runs, in worker
seconds), and the main job adds ``--notebooks`` seconds (the notebooks side by side, after the
studies). It prints the arithmetic.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]  # this checkout
from run_breakdown import searched  # noqa: E402

from satimp_lab.studies.base import plan_for  # noqa: E402
from satimp_lab.experiments import RunSpec
from satimp_lab.unlearning.plan import FINAL, MATCHED  # noqa: E402


def read_runs(cache: Path, level: float = 0.9) -> pd.DataFrame:
    """One row per cached run evaluated every 2 steps: ``own`` (it has final metrics: a run on
    the Lab's own target), ``kind`` (the plan :func:`plan_for` gives its method and
    parameters: ``curves``, ``table`` or ``lean``), ``seconds``, ``steps``, ``evals`` (after
    step 0) and the history (``ev``)."""
    rows = []
    for folder in sorted((cache / "runs").glob("*")):
        try:
            meta = json.loads((folder / "summary.json").read_text())
            ev = pd.read_csv(folder / "history.csv").dropna(subset=["retain_es", "forget_es"]).sort_values("step")
        except (OSError, ValueError):
            continue
        steps = ev["step"].to_numpy(int)
        if len(steps) < 2 or (np.diff(steps)[:-1] != 2).any() or "seconds" not in meta:
            continue
        run = json.loads(meta["key"])["run"]
        plan = plan_for(RunSpec(run["method"], run.get("method_params") or {}), True)
        kind = {MATCHED: "lean", FINAL: "table"}.get(plan, "curves")
        rows.append({"run": folder.name, "own": bool(meta.get("final_metrics")), "kind": kind,
                     "seconds": float(meta["seconds"]), "steps": int(steps[-1]), "evals": len(steps) - 1, "ev": ev})
    return pd.DataFrame(rows)


def fit_prices(runs: pd.DataFrame, step_cost: float, eval_cost: float) -> tuple[float, float]:
    """(scale of the step and evaluation costs, final-metrics seconds) that fit the recorded
    seconds best (least squares, no intercept)."""
    loop = step_cost * runs["steps"] + eval_cost * runs["evals"]
    design = np.column_stack([loop, runs["own"].astype(float)])
    (scale, final), *_ = np.linalg.lstsq(design, runs["seconds"].to_numpy(float), rcond=None)
    return float(scale), float(final)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cache", type=Path, help="a main job's run cache (runs evaluated every 2 steps)")
    ap.add_argument("--search", type=int, default=2,
                    help="search width of the population runs (default 2: every evaluation, the schedule made; "
                         "4 replays the search tried and removed on 2026-11-30)")
    ap.add_argument("--step-cost", type=float, default=0.039, help="seconds per optimiser step (profiled)")
    ap.add_argument("--eval-cost", type=float, default=0.11, help="seconds per evaluation (profiled)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rest", type=float, default=86.0,
                    help="worker-seconds outside these runs (relearning attacks, worker start-up)")
    ap.add_argument("--notebooks", type=float, default=80.0, help="seconds of the notebooks after the studies")
    args = ap.parse_args()

    runs = read_runs(args.cache)
    if runs.empty:
        raise SystemExit(f"no run evaluated every 2 steps with recorded seconds under {args.cache / 'runs'}")
    scale, final = fit_prices(runs, args.step_cost, args.eval_cost)
    step, evaluation = scale * args.step_cost, scale * args.eval_cost
    search = [searched(ev, args.search) for ev in runs["ev"]]
    runs["search_steps"] = [stop for _, stop in search]
    runs["search_evals"] = [len(chosen) - 1 for chosen, _ in search]
    loop = step * runs["steps"] + evaluation * runs["evals"]
    runs["final"] = runs["seconds"] - loop  # what the run spent beyond its loop (final metrics, saving)
    searched_cost = step * runs["search_steps"] + evaluation * runs["search_evals"]
    exact = [searched(ev, 2) for ev in runs["ev"]]  # every 2 steps up to the bracket
    exact_steps = pd.Series([stop for _, stop in exact], index=runs.index)
    exact_evals = pd.Series([len(chosen) - 1 for chosen, _ in exact], index=runs.index)
    lean_cost = step * exact_steps + evaluation * exact_evals
    run_on_cost = step * runs["steps"] + evaluation * (exact_evals + (exact_steps < runs["steps"]))
    pop = ~runs["own"]
    curves, table, lean = (runs["own"] & (runs["kind"] == k) for k in ("curves", "table", "lean"))

    print(f"{len(runs)} runs under {args.cache}: {int(runs['own'].sum())} on the Lab's own target "
          f"(final metrics; {int(curves.sum())} curves shown, {int(table.sum())} tables only, {int(lean.sum())} "
          f"lean grid cells), {int(pop.sum())} on the others")
    print(f"fitted prices: step {step:.4f} s, evaluation {evaluation:.4f} s, final metrics {final:.2f} s "
          f"(recorded median: own {runs.loc[runs.own, 'seconds'].median():.2f} s, "
          f"others {runs.loc[pop, 'seconds'].median():.2f} s)")
    print(f"replayed search every {args.search}: steps {runs['steps'].mean():.1f} -> "
          f"{runs['search_steps'].mean():.1f}, evaluations {runs['evals'].mean():.1f} -> "
          f"{runs['search_evals'].mean():.1f} per run")
    scenarios = {
        "recorded": runs["seconds"],
        "population": runs["seconds"].where(runs["own"], searched_cost),
        "+ lean grid": runs["seconds"].where(runs["own"], searched_cost).where(~lean, lean_cost),
        "+ tables": runs["seconds"].where(runs["own"], searched_cost).where(~lean, lean_cost)
                                   .where(~table, run_on_cost + runs["final"]),
    }
    print(f"\n{'schedule':14s}{'curves':>8s}{'tables':>8s}{'lean':>8s}{'others':>8s}{'runs':>8s}"
          f"{'studies':>10s}{'main job':>12s}")
    for name, cost in scenarios.items():
        total = float(cost.sum())
        studies = (total + args.rest) / args.workers
        job = studies + args.notebooks
        print(f"{name:14s}" + "".join(f"{cost[m].sum():8.0f}" for m in (curves, table, lean, pop))
              + f"{total:8.0f}{studies:8.0f} s{job:8.0f} s ({job / 60:.1f} min)")
    print(f"\n(worker-seconds; studies = (runs + {args.rest:.0f} rest) / {args.workers} workers; "
          f"main job = studies + {args.notebooks:.0f} s of notebooks)")


if __name__ == "__main__":
    main()
