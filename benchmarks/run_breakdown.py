"""Where the time of one full-size tiny run goes: optimiser steps, evaluations, final metrics.

    python benchmarks/run_breakdown.py                       # this checkout
    python benchmarks/run_breakdown.py --before ../old       # and another checkout, interleaved

One run is ``Lab("full").run("satimp", params={"beta_sat": 5, "beta_imp": 0.1})`` with the model
cache warm and the run cache empty (each measured run is computed, never read back). Every
checkout runs in its own worker process (``PYTHONPATH`` = that checkout), with ``--threads``
torch threads; the workers take turns run by run, so machine noise hits both alike, and the
ratio of their medians is the figure to quote. After the timed runs, one run per checkout is
profiled (cProfile, CPU time) and broken down into:

    steps+setup   the unlearning loop without its evaluations (optimiser steps, data, copy)
    evaluations   the periodic teacher-forced evaluations (forget + retain)
    final         the final metrics: scoring (teacher-forced passes, incl. perturbed answers),
                  generation (greedy, for ROUGE), rest (truth ratio, KS test, ...)
    save          writing the run into the cache
    encode        tokenising rows (inside the parts above)

The first run of a Lab is reported apart: it builds what the Lab's later runs reuse.
Models come from ``$SATIMP_LAB_CACHE`` (trained there if missing); runs go to a temporary folder.

    python benchmarks/run_breakdown.py --population           # a population run instead

``--population`` times the kind of run the population sweeps on the target models other than
the Lab's own (``Lab.population_lab``: no final metrics, the run ends at the evaluation that
brackets its matched point, and, for the runs whose curves no figure draws, the forget split is
read at that bracket alone: the ``MATCHED`` plan, ``unlearning.plan``; an older checkout gets the
Setting fields it used for them). The main job's studies make ~4 of these per run
of the first kind (docs/speed.md).

    python benchmarks/run_breakdown.py --replay CACHE_DIR     # the population's schedule, replayed

``--replay`` re-reads every cached run's history under ``CACHE_DIR/runs`` (runs evaluated every
2 steps, e.g. a main job's run cache) and replays the population runs' schedule on it: search
every 4 steps, then the steps inside the last interval, stop at the bracket (with ``--search``
other widths). It prints how many runs would get other matched numbers (forget ES, step, reached)
and the mean evaluations and optimiser steps per run: every 2 steps to the end, every 2 steps
stopping at the bracket, and the search.

    python benchmarks/run_breakdown.py --options              # what cheaper settings would change
    python benchmarks/run_breakdown.py --batches 32,20,16,10  # rows per evaluation pass

``--options`` measures changes that would move numbers, so that they are chosen knowingly: for
a few methods and seeds it unlearns once with an evaluation at every step (evaluations do not
change training: the schedules below are that history subsampled, and every 2 steps gives
exactly today's numbers), then prints the matched forget ES under other evaluation schedules
(every 2, 3, 4 or 6 steps; "adaptive": today's schedule up to the first evaluation at or below
the matched retain level, then every 6 steps and the last step) and the final model's utility and CPU
seconds of its final metrics under other generation budgets (``max_new_tokens``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = dict(method="satimp", params={"beta_sat": 5, "beta_imp": 0.1})

# part of the breakdown -> ((file, ...), function); cumulative CPU time of each. The files of the
# stage-folder layout first, then the flat layout's (a --before checkout may be older)
PARTS = {
    "total": (("lab.py", "experiments.py"), "run"),
    "unlearn": (("loop.py", "unlearn.py"), "unlearn"),
    "evaluations": (("loop.py", "unlearn.py"), "evaluate"),
    "final": (("lab.py", "experiments.py"), "_final_metrics"),
    "scoring": (("reading.py", "metrics.py"), "score_answers"),
    "perturbed": (("tofu.py", "metrics.py"), "_perturbed_nll"),
    "generation": (("reading.py", "metrics.py"), "generate_answers"),
    "save": (("store.py",), "atomic_directory"),
    "encode": (("batching.py",), "encode_dataset"),
}


# ----------------------------------------------------------------------------------------------
# worker: one checkout, commands on stdin, one JSON line per answer on stdout


def _population_run() -> tuple[dict, dict]:
    """(Setting overrides, ``Lab.run`` keywords) of most population runs in the checkout being
    measured: those whose curves no figure draws, which read the forget split at the bracket
    alone where the checkout can (the ``MATCHED`` plan; older checkouts: Setting fields)."""
    try:
        from satimp_lab.unlearning.plan import MATCHED
        return {}, {"plan": MATCHED}
    except ImportError:  # before plans: the population's runs were chosen by Setting fields
        pass
    try:
        from satimp_lab.studies.lab import POPULATION_OVERRIDES, Setting  # type: ignore  # an older checkout
    except ImportError:  # before the population runs stopped at their matched point
        return {"final_metrics": ()}, {}
    extra = {"forget_at_bracket": True} if "forget_at_bracket" in Setting.__dataclass_fields__ else {}
    return {**POPULATION_OVERRIDES, **extra}, {}


def _worker(size: str, threads: int, population: bool = False) -> None:
    import cProfile
    import pstats

    import torch

    torch.set_num_threads(threads)
    from satimp_lab import Lab  # the one-page API: the same in a --before checkout of the flat layout

    models = Path(os.environ["SATIMP_LAB_CACHE"]) / "models"
    setting_overrides, run_keywords = _population_run() if population else ({}, {})
    lab = Lab(size, progress=False, **setting_overrides)
    _ = (lab.target, lab.retain_model)  # trains them if the cache lacks them
    tmp = Path(tempfile.mkdtemp(prefix="run_breakdown-"))
    (tmp / "models").symlink_to(models.resolve(), target_is_directory=True)
    os.environ["SATIMP_LAB_CACHE"] = str(tmp)
    seed = 0

    def one_run():
        nonlocal seed
        shutil.rmtree(tmp / "runs", ignore_errors=True)
        seed += 1
        return int(lab.run(seed=seed % 3, **RUN, **run_keywords).history["lr"].notna().sum())  # optimiser steps

    def answer(obj):
        print(json.dumps(obj), flush=True)

    answer({"ready": True, "module": str(Path(sys.modules["satimp_lab"].__file__).parent)})
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "run":
            wall, cpu = time.perf_counter(), time.process_time()
            steps = one_run()
            answer({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "steps": steps})
        elif cmd == "profile":
            prof = cProfile.Profile(time.process_time)
            prof.enable()
            one_run()
            prof.disable()
            stats = pstats.Stats(prof).stats
            parts = {}
            for name, (files, func) in PARTS.items():
                parts[name] = sum(v[3] for (f, _, fn), v in stats.items()
                                  if fn == func and any(f.endswith(os.sep + file) for file in files))
            answer(parts)
        else:
            break
    shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# --options: evaluation schedules and generation budgets, measured


OPTION_RUNS = [("satimp", {"beta_sat": 5, "beta_imp": 0.1}), ("simsat", None), ("ga", None), ("simnpo", None)]


def schedules(every: int, last: int, crossing: int) -> dict[str, set[int]]:
    """Evaluated steps of each schedule (step 0 and the last step always); ``every``: today's."""
    out = {f"every {k}": set(range(0, last + 1, k)) | {last} for k in sorted({every, 2, 3, 4, 6})}
    out["adaptive"] = set(range(0, crossing + 1, every)) | set(range(crossing, last + 1, 6)) | {last}
    return out


def batches(size: str, sizes: tuple[int, ...], repeats: int = 15) -> None:
    """``--batches``: the cost of reading the evaluation rows (forget and retain, the Lab's own
    target, one torch thread) in passes of each row count of ``sizes``, taking turns, and how far
    their numbers are from one pass of every row (max |difference| of the per-token
    log-likelihoods; argmax predictions that differ); then the final metrics in passes of the
    setting's ``metrics_batch_size`` and of each row count of ``sizes``. The row count changes the
    padded width, hence the float32 rounding, of every row."""
    import numpy as np
    import torch

    from satimp_lab import Lab
    from satimp_lab.data.batching import encode_dataset
    from satimp_lab.models.reading import read_rows
    from satimp_lab.data.schema import retain_split_for
    from satimp_lab.evaluation import metrics
    from satimp_lab.unlearning.loop import _subset

    torch.set_num_threads(1)
    lab = Lab(size, progress=False)
    target, bench, base = lab.target, lab.benchmark, lab.setting.base
    model, tok = target.model.eval(), target.tokenizer
    pad, fmt = tok.pad_token_id, target.tier.prompt_format
    splits = {name: _subset(encode_dataset(tok, bench[split], fmt, target.tier.arch.max_length), base.eval_max_examples)
              for name, split in (("forget", lab.setting.forget_split), ("retain", retain_split_for(lab.setting.forget_split)))}
    whole = max(len(rows) for rows in splits.values())
    sizes = tuple(dict.fromkeys((whole,) + sizes))
    seconds = {b: [] for b in sizes}
    for _ in range(repeats):
        for b in sizes:
            start = time.perf_counter()
            for rows in splits.values():
                read_rows(model, rows, pad, b)
            seconds[b].append(time.perf_counter() - start)
    ref = {name: read_rows(model, rows, pad, whole) for name, rows in splits.items()}
    print(f"{size} setting: one evaluation (forget + retain, {whole} rows each), {repeats} repeats taking turns, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'rows per pass':>14s}{'ms (median)':>13s}{'x one pass':>12s}{'max |dlogp|':>13s}{'argmax differ':>15s}")
    for b in sizes:
        got = {name: read_rows(model, rows, pad, b) for name, rows in splits.items()}
        dlogp = max(float((x.logp - y.logp).abs().max()) for n in got for x, y in zip(got[n], ref[n]))
        flips = sum(int((x.preds != y.preds).sum()) for n in got for x, y in zip(got[n], ref[n]))
        print(f"{b:14d}{1000 * np.median(seconds[b]):13.1f}{np.median(seconds[b]) / np.median(seconds[whole]):12.2f}"
              f"{dlogp:13.1e}{flips:15d}")
    names = [m for m in lab.setting.final_metrics if m != "forget_quality"]
    s = lab.setting
    timed = {}
    for b in dict.fromkeys((s.metrics_batch_size,) + sizes):  # the setting's batch size first
        def final(b=b):
            return metrics.evaluate(model, tok, bench, s.forget_split, names, max_examples=s.final_max_examples,
                                    prompt_format=fmt, batch_size=b, max_new_tokens=s.max_new_tokens)
        final()  # warm-up
        runs = [_timed(final) for _ in range(3)]
        timed[b] = (np.median([seconds for seconds, _ in runs]), runs[-1][1].set_index(["metric", "split"])["value"])
    t0, v0 = timed[s.metrics_batch_size]
    print(f"final metrics ({', '.join(names)}), median of 3, rows per pass:")
    for b, (t, v) in timed.items():
        print(f"  {b:3d}: {t:.2f} s (x{t / t0:.2f} of {s.metrics_batch_size}); max |difference| of the values "
              f"{(v - v0).abs().max():.1e}")


def _timed(fn) -> tuple[float, object]:
    """(wall seconds of ``fn()``, its result)."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def options(size: str, seeds: tuple[int, ...], budgets: tuple[int, ...]) -> None:
    import numpy as np
    import pandas as pd
    import torch

    torch.set_num_threads(1)
    from satimp_lab import Lab, forget_at_matched_retain  # the same in a --before checkout of the flat layout
    try:
        from satimp_lab.unlearning.loop import unlearn
    except ModuleNotFoundError:  # a --before checkout from before the stage folders
        from satimp_lab.unlearning.loop import unlearn

    lab = Lab(size, progress=False)
    level, every = lab.setting.match_level, lab.setting.base.eval_every
    labs = {b: lab if b == lab.setting.max_new_tokens else Lab(lab.setting, progress=False, max_new_tokens=b)
            for b in budgets}
    _ = (lab.benchmark, lab.target, lab.retain_model)
    for other in labs.values():  # the same models and retain-model truth ratios
        other.__dict__.update({k: lab.__dict__[k] for k in ("benchmark", "target", "retain_model")})
        other.__dict__["_retain_truth_ratios"] = lab._retain_truth_ratios
    rows = []
    for method, params in OPTION_RUNS:
        for seed in seeds:
            run = unlearn(lab.target, lab.benchmark, lab.config(method, seed, params, eval_every=1), progress=False)
            hist = run.history
            ev = hist.dropna(subset=["retain_es"])
            last = int(ev["step"].max())
            today = ev[ev["step"].isin(set(range(0, last + 1, every)) | {last})]
            below = today[today["retain_es"] <= level * today["retain_es"].iloc[0]]
            crossing = int(below["step"].iloc[0]) if len(below) else last
            row = {"run": f"{method} s{seed}"}
            for name, steps in schedules(every, last, crossing).items():
                sub = hist[hist["step"].isin(steps) | hist["retain_es"].isna()]
                row[f"{name}: forget"] = forget_at_matched_retain(sub, level)["matched_forget"]
                row[f"{name}: evals"] = len(steps)
            for b, other in labs.items():
                cpu = time.process_time()
                row[f"utility {b}"] = other._final_metrics(run.model)["model_utility"]
                row[f"final CPU s {b}"] = time.process_time() - cpu
            rows.append(row)
            print(row["run"], flush=True)
    df = pd.DataFrame(rows).set_index("run")
    pd.set_option("display.width", 250)
    print(f"\n{size} setting; today: every {every} steps, budget {lab.setting.max_new_tokens}")
    base = f"every {every}: forget"
    for name in schedules(every, 1, 1):
        col = f"{name}: forget"
        diff = (df[col] - df[base]).abs()
        print(f"{name:10s} matched forget ES: max |change| {diff.max():.4f} ({int((diff > 0).sum())} of "
              f"{len(df)} runs change); evaluations {df[f'{name}: evals'].mean():.1f}")
    ref = lab.setting.max_new_tokens
    for b in budgets:
        diff = (df[f"utility {b}"] - df[f"utility {ref}"]).abs()
        ratio = np.median(df[f"final CPU s {b}"] / df[f"final CPU s {ref}"])
        print(f"budget {b:3d}: model utility max |change| {diff.max():.2g} ({int((diff > 0).sum())} runs "
              f"change); final-metrics CPU x{ratio:.2f} (median ratio)")
    print(df.round(4).to_string())


def searched(ev, width: int, level: float = 0.9) -> tuple[list[int], int]:
    """The population's schedule replayed on one every-2-step history ``ev`` (rows: step 0, 2,
    ..., the last step; ``step``, ``retain_es``): (positions of the evaluations it makes, in the
    order made; the step it stops at). Search every ``width`` steps (and the last step) until
    retain ES is at or below ``level`` x its start, then the steps inside that last interval up
    to the first at or below it (the search tried and removed on 2026-11-30: docs/speed.md)."""
    step, retain = ev["step"].to_numpy(int), ev["retain_es"].to_numpy(float)
    threshold, last = level * retain[0], step[-1]
    chosen, stop = [0], last
    for i in range(1, len(step)):
        if step[i] % width and step[i] != last:
            continue
        inside = [j for j in range(i) if step[j] > step[chosen[-1]]]
        chosen.append(i)
        if retain[i] <= threshold:
            for j in inside:
                chosen.append(j)
                if retain[j] <= threshold:
                    break
            stop = step[i]
            break
    return chosen, int(stop)


def replay(cache: Path, widths: tuple[int, ...], level: float = 0.9) -> None:
    """``--replay``: the population's stop-and-search schedule on cached every-2-step histories."""
    import numpy as np
    import pandas as pd

    from satimp_lab.experiments import forget_at_matched_retain

    histories = []
    for f in sorted(cache.glob("runs/*/history.csv")):
        ev = pd.read_csv(f).dropna(subset=["retain_es", "forget_es"]).sort_values("step")
        steps = ev["step"].to_numpy(int)
        if len(steps) > 1 and (np.diff(steps)[:-1] == 2).all():
            histories.append(ev)
    print(f"{len(histories)} cached runs evaluated every 2 steps under {cache}")
    whole = [len(ev) - 1 for ev in histories]
    print(f"{'schedule':34s}{'differ':>8s}{'evals':>8s}{'steps':>8s}")
    print(f"{'every 2, to the end':34s}{0:8d}{np.mean(whole):8.2f}{np.mean([ev['step'].iloc[-1] for ev in histories]):8.2f}")
    for width in (2,) + tuple(widths):
        differ, evals, steps = 0, [], []
        for ev in histories:
            chosen, stop = searched(ev, width, level)
            a = forget_at_matched_retain(ev, level)
            b = forget_at_matched_retain(ev.iloc[sorted(chosen)], level)
            differ += not all(a[k] == b[k] for k in ("matched_forget", "matched_step", "reached"))
            evals.append(len(chosen) - 1)
            steps.append(stop)
        name = "every 2, stop at the bracket" if width == 2 else f"search every {width}, stop"
        print(f"{name:34s}{differ:8d}{np.mean(evals):8.2f}{np.mean(steps):8.2f}")


# ----------------------------------------------------------------------------------------------
# driver


class Checkout:
    def __init__(self, name: str, root: Path, size: str, threads: int, population: bool = False):
        env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": str(threads),
               "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
        self.name = name
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", size, str(threads)] + (["population"] if population else []), env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     stderr=subprocess.DEVNULL, cwd=root)
        ready = self._read()
        self.module = ready["module"]

    def _read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"the {self.name} worker stopped (run it alone to see its error)")

    def ask(self, cmd: str) -> dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", type=Path, help="another checkout (e.g. a git worktree of an older commit)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per checkout (default 5)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--size", default="full")
    ap.add_argument("--population", action="store_true",
                    help="time a population run (no final metrics, ends at its matched point) instead")
    ap.add_argument("--replay", type=Path, metavar="CACHE_DIR",
                    help="replay the population's stop-and-search schedule on the cached runs there")
    ap.add_argument("--search", default="4,6,8", help="--replay: search widths in steps (default 4,6,8)")
    ap.add_argument("--options", action="store_true",
                    help="measure evaluation schedules and generation budgets instead (see above)")
    ap.add_argument("--batches", default=None, metavar="SIZES",
                    help="time the evaluations' reading in passes of these row counts, e.g. 40,20,10 (see above)")
    ap.add_argument("--seeds", type=int, default=3, help="--options: unlearning seeds per method")
    ap.add_argument("--budgets", default="48,32,24", help="--options: generation budgets to compare")
    argv = sys.argv[1:]
    args = ap.parse_args([] if argv[:1] == ["bench"] else argv)  # or `satimp-lab bench NAME`
    if args.replay is not None:
        replay(args.replay, tuple(int(w) for w in args.search.split(",")))
        return
    if args.batches:
        batches(args.size, tuple(int(b) for b in args.batches.split(",")))
        return
    if args.options:
        options(args.size, tuple(range(args.seeds)), tuple(int(b) for b in args.budgets.split(",")))
        return

    roots = {"after": ROOT} if args.before is None else {"before": args.before.resolve(), "after": ROOT}
    checkouts = {name: Checkout(name, root, args.size, args.threads, args.population)
                 for name, root in roots.items()}
    print(f"{args.size} setting, {'population runs, ' if args.population else ''}{args.runs} timed runs each, {args.threads} torch thread(s), "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    for c in checkouts.values():
        print(f"  {c.name}: {c.module}")
    first = {name: c.ask("run") for name, c in checkouts.items()}
    times = {name: [] for name in checkouts}
    for _ in range(args.runs):
        for name, c in checkouts.items():
            times[name].append(c.ask("run"))
    parts = {name: c.ask("profile") for name, c in checkouts.items()}
    for c in checkouts.values():
        c.close()

    print(f"\n{'seconds':28s}" + "".join(f"{n:>10s}" for n in checkouts))
    rows = [("first run of the Lab, wall", lambda n: first[n]["wall"]),
            ("run, wall (median)", lambda n: statistics.median(t["wall"] for t in times[n])),
            ("run, CPU (median)", lambda n: statistics.median(t["cpu"] for t in times[n])),
            ("optimiser steps (mean)", lambda n: statistics.mean(t.get("steps", float("nan")) for t in times[n]))]
    for label, get in rows:
        print(f"{label:28s}" + "".join(f"{get(n):10.3f}" for n in checkouts))
    print("profiled run (CPU s, cProfile):")
    for label, get in [
        ("  total", lambda p: p["total"]),
        ("  steps+setup", lambda p: p["unlearn"] - p["evaluations"]),
        ("  evaluations", lambda p: p["evaluations"]),
        ("  final metrics", lambda p: p["final"]),
        ("    scoring", lambda p: p["scoring"]),
        ("      of which perturbed", lambda p: p["perturbed"]),
        ("    generation", lambda p: p["generation"]),
        ("    rest", lambda p: p["final"] - p["scoring"] - p["generation"]),
        ("  save", lambda p: p["save"]),
        ("  encode (inside the above)", lambda p: p["encode"]),
    ]:
        print(f"{label:28s}" + "".join(f"{get(parts[n]):10.3f}" for n in checkouts))
    if "before" in checkouts:
        for what in ("wall", "cpu"):
            b = statistics.median(t[what] for t in times["before"])
            a = statistics.median(t[what] for t in times["after"])
            print(f"speed-up, median {what}: {b / a:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], int(sys.argv[3]), sys.argv[4:] == ["population"])
    else:
        main()
