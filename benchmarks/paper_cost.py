"""What ``satimp-lab reproduce --tier paper`` costs: runs x steps x measured tokens, priced in GPU-hours.

    python benchmarks/paper_cost.py [--data-dir TOFU_FILES] [--tokenizer NAME_OR_FOLDER]
                                    [--params 1.42 6.74] [--tflops 300] [--forget-split forget10]

Nothing is trained. The runs are those the paper tier's studies make (``mainjob.reproduce
.PAPER_STUDIES`` without the annotated runs, times the recipe's seeds), each with the steps of the
recipe (``tiers.TIER_RECIPES["paper"]``: 5 epochs of the forget split at an effective batch of 16,
evaluated every 5 steps on 100 rows of the forget and retain splits, then TOFU's final metrics on
at most 300 rows per split with up to 200 generated tokens). The tokens are **measured**: every row
of the files is encoded with the tokenizer and prompt format the runs use (``batching
.encode_dataset``: BOS + prompt + answer + EOS), so the token counts per step are those of these
files and this tokenizer (by default our synthetic benchmark in the Hub's layout and a BPE trained
on it; give the real TOFU files and the model's tokenizer to measure the real thing).

Compute is counted as usual for decoder-only transformers (Kaplan et al. 2020): 6 N FLOP per
training token (forward + backward), 2 N per token read without gradient (evaluations, final
metrics, NPO's reference pass, generated tokens), with N the parameter count; attention's share
is left out (these sequences are short). GPU-hours = FLOP / sustained FLOP/s (``--tflops``, an
assumption, not a measurement: bf16 on an H100 peaks at ~989 dense TFLOP/s and fine-tuning
sustains a third or less of it). Generation is memory-bound on a GPU, so its real time exceeds
its FLOP count's; it is reported on its own line.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections import Counter
from pathlib import Path


def study_runs() -> Counter:
    """{method: distinct runs per seed} of the paper tier's studies on a benchmark without key spans."""
    from satimp_lab.studies import STUDIES, without_annotations
    from satimp_lab.experiments import RunSpec
    from satimp_lab.mainjob.reproduce import PAPER_STUDIES

    studies, _ = without_annotations([s for s in STUDIES if s.id in PAPER_STUDIES])
    distinct = {}
    for study in studies:
        for spec in map(RunSpec.of, [*study.specs(), *study.extras()]):
            distinct[(spec.method, tuple(sorted(spec.params.items())), tuple(sorted(spec.overrides.items())))] = spec
    return Counter(spec.method for spec in distinct.values())


def token_counts(bench, tokenizer, prompt_format: str) -> dict[str, list[int]]:
    """{split: tokens of each row} (BOS + prompt + answer + EOS), measured with ``tokenizer``."""
    from satimp_lab.data.batching import encode_dataset

    return {name: [len(e["input_ids"]) for e in encode_dataset(tokenizer, bench[name], prompt_format)]
            for name in bench}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="TOFU files by the Hub's config names (default: our benchmark in that layout)")
    parser.add_argument("--tokenizer", help="a Hugging Face tokenizer (name or folder; default: a BPE trained on the files)")
    parser.add_argument("--prompt-format", default="qa", help="qa (Phi-1.5, default) | llama2 | chat")
    parser.add_argument("--params", type=float, nargs="+", default=[1.42, 6.74],
                        help="model sizes in billions of parameters (default: Phi-1.5 1.42, Llama-2-7B 6.74)")
    parser.add_argument("--tflops", type=float, default=300.0,
                        help="sustained TFLOP/s of one GPU (an assumption; default 300)")
    parser.add_argument("--bandwidth", type=float, default=3.35,
                        help="GPU memory bandwidth in TB/s (an assumption; default 3.35, an H100 SXM)")
    parser.add_argument("--lora", action="store_true", help="price LoRA runs (no full optimiser state)")
    parser.add_argument("--forget-split", default="forget10")
    parser.add_argument("--stand-in-authors", type=int, default=570,
                        help="without --data-dir: authors of the synthetic stand-in (570 x 7 QA = 3990 rows, "
                             "forget10 = 399: TOFU's sizes, 4000 and 400)")
    args = parser.parse_args(argv)

    from satimp_lab.data.schema import retain_split_for
    from satimp_lab.data.tofu import load_tofu
    from satimp_lab.data.tofu_layout import write_tofu_layout
    from satimp_lab.experiments import get_setting
    from satimp_lab.unlearning.objectives import get_method

    scratch = None if args.data_dir else tempfile.TemporaryDirectory(prefix="tofu-layout-")  # removed at exit
    folder = args.data_dir or scratch.name
    if not args.data_dir:
        from satimp_lab.data.benchmark import BenchmarkConfig

        write_tofu_layout(folder, BenchmarkConfig(n_authors=args.stand_in_authors, qa_per_author=7,
                                                  n_holdout_authors=60))
    f, r = args.forget_split, retain_split_for(args.forget_split)
    bench = load_tofu(["full", f, r, f"{f}_perturbed", "retain_perturbed", "real_authors_perturbed",
                       "world_facts_perturbed"], data_dir=folder)
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer, source = AutoTokenizer.from_pretrained(args.tokenizer), args.tokenizer
    else:
        from satimp_lab.models.build import benchmark_texts, train_tokenizer

        tokenizer, source = train_tokenizer(benchmark_texts([bench["full"].to_list()]), 1024), "a BPE trained on the files"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokens = token_counts(bench, tokenizer, args.prompt_format)
    mean = {k: sum(v) / len(v) for k, v in tokens.items()}

    setting = get_setting("full", tier="paper", base_model="microsoft/phi-1_5" if args.prompt_format == "qa"
                          else "meta-llama/Llama-2-7b-hf", source="tofu")
    base = setting.base
    per_step_rows = base.batch_size * base.gradient_accumulation_steps
    steps = round(base.epochs * math.ceil(math.ceil(len(bench[f]) / base.batch_size) / base.gradient_accumulation_steps))
    evals = steps // base.eval_every + 1
    runs = study_runs()
    n_seeds = len(setting.seeds)
    n_runs = sum(runs.values()) * n_seeds
    with_reference = sum(n for m, n in runs.items() if get_method(m).needs_reference) * n_seeds
    train_tokens = steps * per_step_rows * mean[f]
    eval_tokens = evals * min(base.eval_max_examples, len(bench[f])) * mean[f] + \
        evals * min(base.eval_max_examples, len(bench[r])) * mean[r]
    cap = setting.final_max_examples
    final_rows = {name: min(cap, len(bench[name])) for name in
                  (f"{f}_perturbed", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed")}
    # ES, ES on paraphrased questions, the paraphrased answer and every perturbed answer: ~8 reads
    # of a row's length on the forget and retain sides, 1 + perturbed on the general ones
    final_tokens = sum(n * mean[name] * (8 if name.endswith(("forget10_perturbed", "retain_perturbed")) else 4)
                       for name, n in final_rows.items())
    generated = sum(n for name, n in final_rows.items() if name != f"{f}_perturbed") * setting.max_new_tokens
    fine_tune_tokens = 5 * (sum(tokens["full"]) + sum(tokens[r]))

    print(f"tokens per row (measured, {source}, format {args.prompt_format!r}, "
          f"files {args.data_dir or 'our benchmark in the Hub layout, ' + str(args.stand_in_authors) + ' authors'}):")
    for name in tokens:
        print(f"  {name:24s} {len(tokens[name]):5d} rows, mean {mean[name]:6.1f}, max {max(tokens[name])}")
    print(f"runs: {sum(runs.values())} distinct specs x {n_seeds} seeds = {n_runs} runs "
          f"({', '.join(f'{m} {n}' for m, n in sorted(runs.items()))}); {with_reference} with a reference model")
    print(f"per run: {steps} steps x {per_step_rows} rows = {train_tokens:,.0f} training tokens; "
          f"{evals} evaluations = {eval_tokens:,.0f} tokens read; final metrics ~{final_tokens:,.0f} "
          f"tokens read + {generated:,} generated (upper bound)")
    print(f"fine-tuning the target and the retain model: 5 epochs = {fine_tune_tokens:,.0f} training tokens")
    batch = setting.metrics_batch_size
    passes = {  # weight-reading passes per run (forward over a batch of rows, or one decode step)
        "train": steps * base.gradient_accumulation_steps,
        "evaluations": evals * (math.ceil(min(base.eval_max_examples, len(bench[f])) / base.eval_batch_size)
                                + math.ceil(min(base.eval_max_examples, len(bench[r])) / base.eval_batch_size)),
        "final metrics": math.ceil(final_tokens / mean[f] / batch),
        "generation": math.ceil(sum(n for name, n in final_rows.items() if name != f"{f}_perturbed") / batch)
        * setting.max_new_tokens,
    }
    print(f"at {args.tflops:g} sustained TFLOP/s and {args.bandwidth:g} TB/s per GPU (assumptions); each phase "
          f"takes the longer of its FLOP time and its weight traffic (fp32 weights cast to bf16: ~10 bytes "
          f"per parameter per pass; an optimiser step reads and writes weights, gradients and AdamW's two "
          f"moments: 32 bytes per parameter; LoRA: the adapter's only):")
    for billions in args.params:
        n = billions * 1e9
        flop = {"train": 6 * n * train_tokens, "evaluations": 2 * n * eval_tokens,
                "final metrics": 2 * n * final_tokens, "generation": 2 * n * generated}
        traffic = {k: passes[k] * 10 * n for k in passes}
        traffic["train"] += steps * (0 if args.lora else 32 * n)
        seconds = {k: max(flop[k] / (args.tflops * 1e12), traffic[k] / (args.bandwidth * 1e12)) for k in passes}
        run = sum(seconds.values())
        total = n_runs * run + with_reference * seconds["train"] / 3  # NPO: a reference forward per step
        ft_steps = 5 * (math.ceil(len(bench["full"]) / 32) + math.ceil(len(bench[r]) / 32))  # batch 32
        fine_tune = max(6 * n * fine_tune_tokens / (args.tflops * 1e12),
                        ft_steps * (10 * n + (0 if args.lora else 32 * n)) / (args.bandwidth * 1e12))
        memory = (n * (4 if args.lora else 16)) / 2**30
        print(f"  {billions:5.2f}B: one run ~{run / 60:4.1f} min ("
              + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
              + f"); {n_runs} runs + fine-tuning = {(total + fine_tune) / 3600:5.1f} GPU-hours; weights and "
              f"optimiser state ~{memory:.0f} GiB{' (LoRA)' if args.lora else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
