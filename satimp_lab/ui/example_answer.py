"""The course's worked example (notebook 09, exercise 4): one answer part-way through unlearning,
its tokens' weights under each scheme, and the check of which token SatImp up-weights most.

The weights are computed with :mod:`satimp_lab.unlearning.weighting`; :func:`check_top_token`
returns a :class:`~satimp_lab.ui.exercises.CheckResult` like every self-check of the course. The
figures import plotly and matplotlib (:mod:`satimp_lab.ui.plots`) only when they are drawn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .exercises import CheckResult, number_text
from ..unlearning import weighting as W
from ..unlearning.objectives import get_method
from ..unlearning.weight_curves import satimp_peak

__all__ = [
    "EXAMPLE_TOKENS",
    "example_tokens",
    "example_weights",
    "example_weights_figure",
    "example_weight_summary",
    "static_example_weights_figure",
    "check_top_token",
]


EXAMPLE_TOKENS = (("She", 0.90), (" was", 0.999), (" born", 0.98), (" in", 0.995), (" Lima", 0.35),
                  (" to", 0.80), (" a", 0.997), (" baker", 0.12))
"""An answer's tokens and made-up likelihoods under a model that is part-way through unlearning:
grammar tokens near 1, the fact tokens (the city, the occupation) already partly forgotten."""


def example_tokens() -> pd.DataFrame:
    """The example answer as a table: position, token, likelihood p."""
    return pd.DataFrame({"position": range(len(EXAMPLE_TOKENS)), "token": [t for t, _ in EXAMPLE_TOKENS],
                         "p": [p for _, p in EXAMPLE_TOKENS]})


def example_weights(beta_sat: float | None = None, beta_imp: float | None = None, beta: float = 1.0) -> pd.DataFrame:
    """The example tokens' weights under GA, SimSat(beta), SimImp(beta) and SatImp (registry defaults
    unless given), computed with satimp_lab.unlearning.weighting; plus GA's logit push 1 - p."""
    defaults = get_method("satimp").params
    beta_sat = defaults["beta_sat"] if beta_sat is None else beta_sat
    beta_imp = defaults["beta_imp"] if beta_imp is None else beta_imp
    frame = example_tokens()
    logp = torch.log(torch.tensor(frame["p"].to_numpy()[None], dtype=torch.float64))
    mask = torch.ones_like(logp, dtype=torch.bool)
    frame["ga"] = W.satimp(logp, mask, 0.0, 0.0)[0].numpy()
    frame[f"simsat(β_sat={beta:g})"] = W.saturation(logp, mask, beta)[0].numpy()
    frame[f"simimp(β_imp={beta:g})"] = W.importance(logp, mask, beta)[0].numpy()
    frame[f"satimp(β_sat={beta_sat:g}, β_imp={beta_imp:g})"] = W.satimp(logp, mask, beta_sat, beta_imp)[0].numpy()
    return frame


def _token_ticks(frame: pd.DataFrame) -> list[str]:
    """The x labels of the example figures: each token and its likelihood."""
    return [f"{t.strip()}\n(p={p:.3g})" for t, p in zip(frame["token"], frame["p"])]


def example_weights_figure(**kwargs):
    """The example answer's token weights under each scheme (one line per scheme, tokens on x)."""
    import plotly.graph_objects as go

    from . import plots

    frame = example_weights(**kwargs)
    x = _token_ticks(frame)
    fig = go.Figure()
    for i, col in enumerate(c for c in frame.columns if c not in ("position", "token", "p")):
        fig.add_trace(go.Scatter(x=x, y=frame[col], mode="lines+markers", name=col,
                                 line=dict(color=plots.color_for(col, i))))
    fig.update_layout(title="Weight of each token of one answer under each scheme",
                      xaxis_title="token of the answer (its likelihood p)", yaxis_title="token weight w",
                      template="plotly_white", legend_title_text="scheme")
    return fig


def static_example_weights_figure(**kwargs):
    """:func:`example_weights_figure` drawn statically for the report
    (:func:`satimp_lab.ui.plots.static_lines`, the same weights): a ``matplotlib.figure.Figure``."""
    from . import plots

    frame = example_weights(**kwargs)
    x = _token_ticks(frame)
    curves = {c: frame[c].to_numpy() for c in frame.columns if c not in ("position", "token", "p")}
    return plots.static_lines(curves, x, "Weight of each token of one answer under each scheme",
                              "token of the answer (its likelihood p)", "token weight w", marker="o")


NEARLY_FORGOTTEN_BELOW = 0.5
"""Likelihood below which :func:`example_weight_summary` counts a token as nearly forgotten."""
WELL_REMEMBERED_FROM = 0.9
"""Likelihood from which :func:`example_weight_summary` counts a token as well remembered."""


def example_weight_summary(**kwargs) -> pd.DataFrame:
    """Where each scheme of :func:`example_weights` (same keyword arguments) puts its weight on the
    example answer, one row per scheme: the token it weights most and that token's likelihood p
    ("every token alike" and nan when all weights are equal);
    the share of the scheme's total weight on the nearly forgotten tokens
    (p < :data:`NEARLY_FORGOTTEN_BELOW`) and on the well-remembered ones
    (p >= :data:`WELL_REMEMBERED_FROM`); and the weight of the most certain token (largest p) as a
    fraction of the largest weight (1: nothing trims the most certain token). Shares are in [0, 1]."""
    frame = example_weights(**kwargs)
    p = frame["p"].to_numpy()
    certain = int(p.argmax())
    rows = []
    for scheme in (c for c in frame.columns if c not in ("position", "token", "p")):
        w = frame[scheme].to_numpy()
        top = int(w.argmax())
        alike = bool(np.ptp(w) == 0)
        rows.append({"scheme": scheme, "largest weight on": "every token alike" if alike else frame["token"][top].strip(),
                     "its p": np.nan if alike else p[top],
                     f"share on p < {NEARLY_FORGOTTEN_BELOW:g}": w[p < NEARLY_FORGOTTEN_BELOW].sum() / w.sum(),
                     f"share on p >= {WELL_REMEMBERED_FROM:g}": w[p >= WELL_REMEMBERED_FROM].sum() / w.sum(),
                     f"w('{frame['token'][certain].strip()}') / largest w": w[certain] / w[top]})
    return pd.DataFrame(rows)


# =============================================================================================
# the exercise: which token does SatImp up-weight most?


def _satimp_top() -> tuple[int, pd.DataFrame]:
    frame = example_weights()
    col = [c for c in frame.columns if c.startswith("satimp")][0]
    return int(frame[col].to_numpy().argmax()), frame.rename(columns={col: "satimp"})


def check_top_token(answer) -> CheckResult:
    """Exercise: which token of :data:`EXAMPLE_TOKENS` gets the largest SatImp weight (registry
    defaults)? ``answer`` is the token text (e.g. "Lima") or its position."""
    exercise = "Which token does SatImp up-weight most?"
    if answer is None or answer is Ellipsis:
        return CheckResult(exercise, "not attempted", "not attempted yet: replace the `...` with a token "
                                                       "(e.g. \"Lima\") or its position and run the cell again.")
    best, frame = _satimp_top()
    tokens = [t.strip().lower() for t in frame["token"]]
    if isinstance(answer, (int, np.integer)) and not isinstance(answer, bool):
        index = int(answer)
        if not 0 <= index < len(tokens):
            return CheckResult(exercise, "wrong", f"position {index} is not in the answer (0 to {len(tokens) - 1}).")
    elif isinstance(answer, str) and answer.strip().lower() in tokens:
        index = tokens.index(answer.strip().lower())
    else:
        return CheckResult(exercise, "wrong", f"answer with one of the tokens {[t.strip() for t in frame['token']]} "
                                              f"or its position; got {answer!r}.")
    w, p = frame["satimp"].to_numpy(), frame["p"].to_numpy()
    p_star = satimp_peak(*(get_method("satimp").params[k] for k in ("beta_sat", "beta_imp")))["p_star"]
    if index == best:
        return CheckResult(exercise, "correct",
                           f"'{frame['token'][best].strip()}' (p = {number_text(p[best])}) gets w = {number_text(w[best])}, the largest: "
                           f"its likelihood is the closest to the peak p* = {number_text(p_star)}.")
    rank = int((w > w[index]).sum()) + 1
    msg = (f"'{frame['token'][index].strip()}' (p = {number_text(p[index])}) gets w = {number_text(w[index])}, rank {rank} of "
           f"{len(w)}; another token gets more.")
    if p[index] < p_star:
        msg += (" Hint: a low-likelihood token is one the model has already (nearly) forgotten; the saturation "
                "factor p^β_sat shrinks its weight. GA's own push on the logit, 1 - p, is largest there, not SatImp's.")
    else:
        msg += (" Hint: above the peak p* the importance factor (1 - p)^β_imp pulls the weight down: a token "
                "with p → 1 gets weight → 0.")
    return CheckResult(exercise, "wrong", msg)
