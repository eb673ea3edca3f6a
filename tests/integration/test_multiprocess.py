"""``accelerate launch`` of ``satimp-lab unlearn`` on two CPU processes: the gathered trace holds
every forget token exactly once per epoch, as a single-process run does.

How the data is split (accelerate's ``BatchSamplerShard``, ``even_batches=True``): each optimiser step
takes one batch per process; the last round of an epoch is filled up with examples from the epoch's
start so every process gets a full batch. ``unlearn`` drops those repeats (neither traced nor trained
on), so the per-epoch multiset of (example_id, position, token_id) rows must equal the single-process
one. The steps differ (one step = ``num_processes`` batches), so rows are compared per epoch.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from satimp_lab.unlearning.loop import _real_rows

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------------------
# the padding rule against accelerate's own sampler (cheap, no processes)


@pytest.mark.parametrize("n_examples", [1, 4, 7, 8, 13])
@pytest.mark.parametrize("batch_size", [1, 2, 3, 5])
@pytest.mark.parametrize("num_processes", [2, 3])
def test_real_rows_matches_accelerate_sharding(n_examples, batch_size, num_processes):
    """Keeping the first ``_real_rows`` rows of each process's last batch covers every example once."""
    import torch
    from accelerate.data_loader import BatchSamplerShard

    sampler = torch.utils.data.BatchSampler(range(n_examples), batch_size, drop_last=False)
    seen = []
    lengths = set()
    for rank in range(num_processes):
        batches = list(BatchSamplerShard(sampler, num_processes, rank, split_batches=False,
                                         even_batches=True))
        lengths.add(len(batches))
        acc = SimpleNamespace(num_processes=num_processes, process_index=rank, even_batches=True,
                              split_batches=False)
        for i, batch in enumerate(batches):
            seen += batch[:_real_rows(acc, n_examples, batch_size, i, len(batches))]
    assert len(lengths) == 1  # every process runs the same number of micro-batches
    assert sorted(seen) == list(range(n_examples))


def test_real_rows_single_process_keeps_everything():
    acc = SimpleNamespace(num_processes=1, process_index=0, even_batches=True, split_batches=False)
    assert _real_rows(acc, 5, 3, 1, 2) >= 3


# ----------------------------------------------------------------------------------------------
# the real thing: two processes under ``accelerate launch``

BATCH_SIZE = 5  # 4 forget rows, 2 processes: rank 0 gets 4 real + 1 repeat, rank 1 only repeats
EPOCHS = 2
METHOD = "gd"   # a retain term too: the retain stream must not disturb the epoch boundaries


def _per_epoch(trace: dict, steps_per_epoch: int) -> dict[int, Counter]:
    epochs = trace["step"] // steps_per_epoch
    out: dict[int, Counter] = {}
    for e, ex, pos, tok in zip(epochs, trace["example_id"], trace["position"], trace["token_id"]):
        out.setdefault(int(e), Counter())[(int(ex), int(pos), int(tok))] += 1
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_trace_matches_single_process(micro_target, small_benchmark, session_cache, tmp_path):
    from satimp_lab.data.batching import encode_dataset
    from satimp_lab.data.benchmark import BenchmarkConfig, write_benchmark
    from satimp_lab.unlearning.tracing import TokenTrace
    from satimp_lab.unlearning.loop import unlearn

    # the same benchmark as the ``small_benchmark`` fixture, as files the CLI can read; the parent
    from satimp_lab.unlearning.run import UnlearnConfig
    # has trained the micro target (fixture), so the children load it from the shared cache
    data = write_benchmark(tmp_path / "data", BenchmarkConfig(n_authors=20, qa_per_author=2,
                                                              n_holdout_authors=4, n_world_facts=10))
    out = tmp_path / "run"
    env = {**os.environ, "SATIMP_LAB_CACHE": str(session_cache), "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": os.pathsep.join(
               [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    # ``--multi_gpu`` selects the torchrun-style launcher; on a machine without CUDA the processes
    # join a gloo group on the CPU (``--cpu`` with several processes would need mpirun)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()),
           "-m", "satimp_lab.cli", "unlearn", "--tier", "micro", "--method", METHOD,
           "--forget-split", "forget10", "--data-dir", str(data), "--batch-size", str(BATCH_SIZE),
           "--epochs", str(EPOCHS), "--out", str(out)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "(2 processes)" in proc.stdout, proc.stdout[-2000:]  # really distributed, printed once
    assert proc.stdout.count("completed:") == 1

    multi = TokenTrace.load(out / "trace.npz").columns()
    single = unlearn(micro_target, small_benchmark,
                     UnlearnConfig(method=METHOD, forget_split="forget10", batch_size=BATCH_SIZE,
                                   epochs=EPOCHS, eval_every=None), progress=False).trace.columns()

    n_forget = len(small_benchmark["forget10"])
    multi_epochs = _per_epoch(multi, math.ceil(n_forget / (2 * BATCH_SIZE)))
    single_epochs = _per_epoch(single, math.ceil(n_forget / BATCH_SIZE))
    assert sorted(multi_epochs) == sorted(single_epochs) == list(range(EPOCHS))

    # every forget token of every example, exactly once per epoch
    encoded = encode_dataset(micro_target.tokenizer, small_benchmark["forget10"])
    expected = Counter()
    for e in encoded:
        labels = e["labels"][1:]  # shifted: position j scores label j + 1
        for pos, tok in enumerate(labels):
            if tok != -100:
                expected[(e["example_id"], pos, tok)] += 1
    for epoch in range(EPOCHS):
        assert multi_epochs[epoch] == single_epochs[epoch] == expected
        assert max(multi_epochs[epoch].values()) == 1

    history = (out / "history.csv").read_text().splitlines()
    assert len(history) >= 1 + EPOCHS  # header + one optimiser step per epoch (+ evaluations)
    assert np.isfinite(multi["logp"]).all()
