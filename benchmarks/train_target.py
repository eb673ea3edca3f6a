"""Time to train the default tiny target model (and the retain model) on this machine.

    python benchmarks/train_target.py [tier]      # or: satimp-lab bench train_target

Trains without the cache (so it always measures), prints wall time, epochs and memorisation.
"""

from __future__ import annotations

import sys
import time

import torch

from satimp_lab.data.benchmark import load_benchmark
from satimp_lab.models.cache import get_model


def main(tier: str = "tiny") -> None:
    bench = load_benchmark()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; tier {tier!r}")
    for kind in ("target", "retain"):
        start = time.perf_counter()
        bundle = get_model(bench, kind, tier=tier, use_cache=False, progress=False)
        seconds = time.perf_counter() - start
        r = bundle.report
        params = sum(p.numel() for p in bundle.model.parameters())
        print(f"{kind:6s}: {seconds:6.1f} s, {r['epochs']} epochs, {params / 1e6:.2f}M params, "
              f"answer-token accuracy {r['answer_accuracy']:.3f}, key-token accuracy {r['key_accuracy']:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
