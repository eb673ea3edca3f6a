"""Speed of the batched group averaging against calling it once per sequence (same inputs, one run).

    OMP_NUM_THREADS=1 python benchmarks/group_average_speed.py   # or: satimp-lab bench group_average_speed

``weighting.group_average`` sorts every sequence of a batch at once (one sort, two scatter_adds).
This prints the median time per call on a [32, 64] batch with ragged masks, for it and for the
same function called once per sequence (the official ``group_and_average`` loops over
sequences), and their ratio.
Both alternate call by call so machine noise hits both alike; the ratio is what to quote. (This
replaced a wall-clock bound in the unit tests: timing does not belong in tests.)
"""

from __future__ import annotations

import statistics
import time

import torch

from satimp_lab.unlearning import weighting as W

B, T, G, CALLS = 32, 64, 4, 50


def per_sequence(w: torch.Tensor, mask: torch.Tensor, group_size: int) -> torch.Tensor:
    """The same function called once per sequence: what the batch-wide sort saves."""
    return torch.cat([W.group_average(w[i:i + 1], mask[i:i + 1], group_size) for i in range(w.shape[0])])


def inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logp = torch.rand(B, T, generator=g) * -4.0
    lengths = torch.randint(8, T + 1, (B,), generator=g)
    mask = torch.arange(T)[None] < lengths[:, None]
    return W.saturation(logp, mask, 1.0), mask


def main() -> None:
    w, mask = inputs()
    assert torch.allclose(W.group_average(w, mask, G), per_sequence(w, mask, G))
    times = {"vectorised": [], "per_seq": []}
    for _ in range(CALLS):
        for name, fn in (("vectorised", W.group_average), ("per_seq", per_sequence)):
            start = time.perf_counter()
            fn(w, mask, G)
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"group_average on [{B}, {T}], group_size {G}, median of {CALLS} calls "
          f"(torch threads: {torch.get_num_threads()})")
    for k, v in med.items():
        print(f"  {k:10s} {v * 1e3:8.3f} ms")
    print(f"  per-sequence / batched: {med['per_seq'] / med['vectorised']:.1f}x")


if __name__ == "__main__":
    main()
