"""Speed and memory of SatImp-with-tracing vs plain GA (same model, batch and loop).

    python benchmarks/tracing_overhead.py            # or: satimp-lab bench tracing_overhead

Prints, for the default tiny model and a >= 20M-parameter model, the median time per optimiser
step of each loop and their ratio (targets: time <= 1.03x, memory <= 1.02x). The two loops
alternate step by step so machine noise hits both alike; ratios from one run are what to quote.

Memory on a CPU: each loop runs in a fresh subprocess and reports the growth of its peak resident
set size over the step loop (``ru_maxrss`` after the loop minus the RSS before it). On a GPU the
same script reports ``torch.cuda.max_memory_allocated`` instead.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import torch

from satimp_lab.data.batching import collate, encode_dataset
from satimp_lab.models.reading import token_logprobs
from satimp_lab.data.benchmark import load_benchmark
from satimp_lab.models.build import benchmark_texts, build_tiny_model, train_tokenizer
from satimp_lab.tiers import ArchConfig
from satimp_lab.unlearning.objectives import get_method
from satimp_lab.unlearning.tracing import TokenTrace

MODELS = {
    "tiny (default)": ArchConfig(),
    "large": ArchConfig(n_layers=6, hidden_size=512, n_heads=8, intermediate_size=2048, vocab_size=1024),
}
BATCH, WARMUP, STEPS = 8, 3, 25


def _setup(arch: ArchConfig):
    bench = load_benchmark(splits=["full", "holdout", "world_facts", "forget10"])
    tokenizer = train_tokenizer(benchmark_texts([bench[s].to_list() for s in ("full", "holdout", "world_facts")]),
                                arch.vocab_size)
    model = build_tiny_model(arch, tokenizer, seed=0)
    if torch.cuda.is_available():
        model = model.cuda()
    batch = collate(encode_dataset(tokenizer, bench["forget10"])[:BATCH], tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    return model, batch, optimizer


def make_step(kind: str, model, batch, optimizer):
    """One optimiser step of plain GA, or of SatImp with the per-token trace recorded."""
    ga, satimp = get_method("ga"), get_method("satimp")
    trace = TokenTrace()
    step_index = [0]

    def step():
        out = token_logprobs(model, batch)
        if kind == "ga":
            loss = ga.forget_term(out.logp, out.mask).loss
        else:
            term = satimp.forget_term(out.logp, out.mask, out.key_mask)
            trace.record(step_index[0], batch["example_id"], out.logp, term.weights, out.mask,
                         out.key_mask, out.labels)
            loss = term.loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step_index[0] += 1
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    return step


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


def memory_child(name: str, kind: str) -> dict:
    """Run in a subprocess: peak memory growth of ``STEPS`` steps of one loop."""
    import resource

    model, batch, optimizer = _setup(MODELS[name])
    step = make_step(kind, model, batch, optimizer)
    step()  # allocate optimiser state before the baseline
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_kib() * 1024
    for _ in range(STEPS):
        step()
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"peak_growth_bytes": max(peak - base, 1), "peak_bytes": peak}


def time_both(name: str) -> dict:
    model, batch, optimizer = _setup(MODELS[name])
    steps = {kind: make_step(kind, model, batch, optimizer) for kind in ("ga", "satimp_traced")}
    for _ in range(WARMUP):
        for s in steps.values():
            s()
    times = {kind: [] for kind in steps}
    for _ in range(STEPS):  # alternate so noise hits both loops alike
        for kind, s in steps.items():
            start = time.perf_counter()
            s()
            times[kind].append(time.perf_counter() - start)
    params = sum(p.numel() for p in model.parameters())
    return {"params": params, **{k: statistics.median(v) for k, v in times.items()}}


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}; batch {BATCH}, {STEPS} timed steps each")
    print(f"{'model':16s} {'params':>8s} {'GA ms/step':>11s} {'SatImp+trace':>13s} {'time ratio':>10s} "
          f"{'GA mem MiB':>10s} {'SatImp+trace':>13s} {'mem ratio':>9s}")
    for name in MODELS:
        t = time_both(name)
        mem = {}
        for kind in ("ga", "satimp_traced"):
            out = subprocess.run([sys.executable, __file__, "--memory-child", name, kind],
                                 capture_output=True, text=True, check=True,
                                 env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
            mem[kind] = json.loads(out.stdout.strip().splitlines()[-1])
        ga_mem = mem["ga"]["peak_growth_bytes"] / 2**20
        sat_mem = mem["satimp_traced"]["peak_growth_bytes"] / 2**20
        print(f"{name:16s} {t['params'] / 1e6:7.1f}M {t['ga'] * 1e3:11.1f} {t['satimp_traced'] * 1e3:13.1f} "
              f"{t['satimp_traced'] / t['ga']:10.3f} {ga_mem:10.1f} {sat_mem:13.1f} {sat_mem / ga_mem:9.3f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        print(json.dumps(memory_child(sys.argv[2], sys.argv[3])))
    else:
        main()
