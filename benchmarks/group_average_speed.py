"""Speed of the vectorised group averaging against a per-sequence loop (same inputs, one run).

    OMP_NUM_THREADS=1 python benchmarks/group_average_speed.py   # or: satimp-lab bench group_average_speed

``weighting.group_average`` sorts every sequence of a batch at once (one sort, two scatter_adds).
This prints the median time per call on a [32, 64] batch with ragged masks, for it and for a
literal per-sequence transcription of the official ``group_and_average`` loop, and their ratio.
Both alternate call by call so machine noise hits both alike; the ratio is what to quote. (This
replaced a wall-clock bound in the unit tests: timing does not belong in tests.)
"""

from __future__ import annotations

import statistics
import time

import torch

from satimp_lab import weighting as W

B, T, G, CALLS = 32, 64, 4, 50


def loop_reference(w: torch.Tensor, mask: torch.Tensor, group_size: int) -> torch.Tensor:
    """Per sequence: sort the valid weights descending, replace each bucket by its mean."""
    out = torch.zeros_like(w)
    for i in range(w.shape[0]):
        idx = mask[i].nonzero().flatten()
        vals = w[i, idx]
        order = torch.sort(vals, descending=True, stable=True).indices
        for s in range(0, len(idx), group_size):
            chunk = order[s:s + group_size]
            out[i, idx[chunk]] = vals[chunk].mean()
    return out


def inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logp = torch.rand(B, T, generator=g) * -4.0
    lengths = torch.randint(8, T + 1, (B,), generator=g)
    mask = torch.arange(T)[None] < lengths[:, None]
    return W.saturation(logp, mask, 1.0), mask


def main() -> None:
    w, mask = inputs()
    assert torch.allclose(W.group_average(w, mask, G), loop_reference(w, mask, G))
    times = {"vectorised": [], "loop": []}
    for _ in range(CALLS):
        for name, fn in (("vectorised", W.group_average), ("loop", loop_reference)):
            start = time.perf_counter()
            fn(w, mask, G)
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"group_average on [{B}, {T}], group_size {G}, median of {CALLS} calls "
          f"(torch threads: {torch.get_num_threads()})")
    for k, v in med.items():
        print(f"  {k:10s} {v * 1e3:8.3f} ms")
    print(f"  loop / vectorised: {med['loop'] / med['vectorised']:.1f}x")


if __name__ == "__main__":
    main()
