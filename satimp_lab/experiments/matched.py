"""Forget ES at matched retain ES: the number every claim is decided on (docs/methods.md,
"Forget ES at matched retain"), read from a run's periodic evaluations."""

from __future__ import annotations

import numpy as np
import pandas as pd

METRIC = "matched_forget"
"""The summary column of forget ES at matched retain ES (:func:`forget_at_matched_retain`); lower is better."""


def forget_at_matched_retain(history: pd.DataFrame, level: float = 0.9, retain_col: str = "retain_es",
                             forget_col: str = "forget_es") -> dict:
    """Forget quality at the step where retain quality first falls to ``level`` x its start value.

    Linear interpolation between the two evaluations that bracket the crossing. If retain never
    falls that far, the final values are returned with ``reached=False`` (the method is gentler
    than the budget: its forget value is an upper bound of what it would reach at the level).
    Returns plain Python ``float``/``bool`` values (ES in 0-1, the step in optimiser steps).
    """
    missing = [c for c in (retain_col, forget_col) if c not in history.columns]
    if missing:
        raise ValueError(f"the history has no column(s) {missing}: runs compared at matched retain "
                         f"quality need periodic evaluations (eval_every must not be None)")
    ev = history.dropna(subset=[retain_col, forget_col]).sort_values("step")
    if ev.empty:
        raise ValueError(f"the history has no evaluations of {retain_col!r} and {forget_col!r}")
    retain, forget, steps = (ev[c].to_numpy(float) for c in (retain_col, forget_col, "step"))
    threshold = level * retain[0]
    below = np.nonzero(retain <= threshold)[0]
    if len(below) == 0 or below[0] == 0:
        i = len(retain) - 1 if len(below) == 0 else 0
        return {"matched_forget": float(forget[i]), "matched_retain": float(retain[i]),
                "matched_step": float(steps[i]), "reached": bool(len(below) > 0)}
    j = below[0]
    t = (retain[j - 1] - threshold) / max(retain[j - 1] - retain[j], 1e-12)
    return {"matched_forget": float(forget[j - 1] + t * (forget[j] - forget[j - 1])),
            "matched_retain": float(threshold), "matched_step": float(steps[j - 1] + t * (steps[j] - steps[j - 1])),
            "reached": True}
