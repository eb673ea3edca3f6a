"""Self-checks for the course notebook (09): compare a student's answer with the library's reference.

Each ``check_*`` function returns a :class:`CheckResult` that shows itself in a notebook as a short
✓ / ✗ / ○ message: ✓ correct, ✗ wrong (with the first failing input and, where the mistake is a
common one, a hint), ○ not attempted yet (the stub still raises ``NotImplementedError`` or returns
``...``/``None``). ``bool(result)`` is True only when the answer is correct.

Function answers are compared with the reference in :mod:`satimp_lab.unlearning.weighting` (or autograd) on
random batches and on edge inputs: padding masks, p = 0 (logp = -inf), p = 1 (logp = 0), an
exponent of 0, float32 and float64. Multiple-choice answers are checked against :data:`QUESTIONS`,
whose per-option feedback explains why a wrong option is wrong.

The reference solutions (:data:`SOLUTIONS`) live here, not in the notebook's cells, so "Run All"
leaves every exercise open: a student sees one only on request (:func:`solution_button`,
:func:`show_solution`), and it is shown, never run. :func:`check_reference_solutions` runs each
one through its checker, for the teacher and the tests.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from ..unlearning import weighting as W
from ..unlearning.objectives import get_method
from ..unlearning.weight_curves import satimp_peak, target_logit_gradient

__all__ = [
    "CheckResult",
    "check_simimp",
    "check_satimp",
    "check_peak",
    "check_logit_gradient",
    "check_top_token",
    "check_choice",
    "question",
    "QUESTIONS",
    "EXAMPLE_TOKENS",
    "example_tokens",
    "example_weights",
    "example_weights_figure",
    "example_weight_summary",
    "static_example_weights_figure",
    "progress",
    "SOLUTIONS",
    "solution_code",
    "show_solution",
    "solution_button",
    "reference_results",
    "check_reference_solutions",
]

SYMBOLS = {"correct": "✓", "wrong": "✗", "not attempted": "○"}
_COLOURS = {"correct": ("#e8f5e9", "#2e7d32"), "wrong": ("#ffebee", "#c62828"),
            "not attempted": ("#f5f5f5", "#616161")}


@dataclass
class CheckResult:
    """The verdict of one self-check."""

    exercise: str
    status: str
    """"correct", "wrong" or "not attempted"."""
    message: str

    def __post_init__(self):
        if self.status not in SYMBOLS:
            raise ValueError(f"status must be one of {tuple(SYMBOLS)}, got {self.status!r}")

    def __bool__(self) -> bool:
        return self.status == "correct"

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.status]

    def __str__(self) -> str:
        return f"{self.symbol} {self.exercise}: {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        bg, fg = _COLOURS[self.status]
        return (f"<div style='background:{bg}; color:{fg}; border-left: 4px solid {fg}; padding: 6px 10px; "
                f"font-family: sans-serif'><b>{self.symbol} {html.escape(self.exercise)}</b>: "
                f"{html.escape(self.message)}</div>")


class _NotAttempted(Exception):
    pass


_NOT_ATTEMPTED = "not attempted yet: replace the `raise NotImplementedError` (or `...`) with your answer and run the cell again."


def _call(fn: Callable, *args):
    """fn(*args); a stub (NotImplementedError, or a ... / None result) raises _NotAttempted."""
    try:
        out = fn(*args)
    except NotImplementedError:
        raise _NotAttempted from None
    if out is None or out is Ellipsis:
        raise _NotAttempted
    return out


def _f(x: float) -> str:
    return f"{x:.4g}"


# =============================================================================================
# weight-function exercises


@dataclass
class _Case:
    description: str
    logp: torch.Tensor     # leaf, requires_grad (a weight must not carry it)
    mask: torch.Tensor     # bool
    args: tuple            # the exponent(s), positional after (logp, mask)


def _random_logp(shape, seed: int, dtype=torch.float64, lo: float = -6.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=torch.float64) * lo).to(dtype)


def _padding_mask(shape, seed: int) -> torch.Tensor:
    """Ragged answers: each row valid from a random start for a random length (>= 1 token)."""
    g = torch.Generator().manual_seed(seed)
    B, T = shape
    start = torch.randint(0, T // 2, (B,), generator=g)
    length = torch.randint(1, T, (B,), generator=g)
    pos = torch.arange(T)
    return (pos[None] >= start[:, None]) & (pos[None] < (start + length)[:, None])


def _weight_cases(exponents: list[tuple]) -> list[_Case]:
    """The inputs every weight exercise is checked on; ``exponents`` gives the args of each case."""
    edge = torch.tensor([[-math.inf, 0.0, math.log(0.5), math.log(0.98), math.log(0.02), -20.0]], dtype=torch.float64)
    interior = _random_logp((2, 5), seed=3, lo=-3.0)
    shapes = [
        ("a random batch (3 answers x 6 tokens, every token valid)", _random_logp((3, 6), 0),
         torch.ones(3, 6, dtype=torch.bool)),
        ("a padded batch (mask is False on question/padding positions)", _random_logp((4, 9), 1),
         _padding_mask((4, 9), 1)),
        ("edge likelihoods p = 0 (logp = -inf), p = 1 (logp = 0) and nearly-0/1 values", edge,
         torch.ones_like(edge, dtype=torch.bool)),
        ("a float32 batch with padding", _random_logp((3, 8), 2, dtype=torch.float32), _padding_mask((3, 8), 2)),
        ("a batch with an exponent of 0", interior, torch.ones_like(interior, dtype=torch.bool)),
    ]
    cases = []
    for (desc, logp, mask), args in zip(shapes, exponents):
        cases.append(_Case(desc, logp.clone().requires_grad_(), mask, args))
    return cases


def _masked(fn):
    """An (unmasked) alternative formula, with the mask applied: for 'right idea, wrong formula' hints."""
    return lambda logp, mask, *a: torch.where(mask, fn(logp, *a), torch.zeros((), dtype=logp.dtype))


def _p(logp):
    return logp.detach().exp()


def _check_weights(exercise: str, fn: Callable, reference: Callable, cases: list[_Case],
                   diagnoses: list[tuple[Callable, str]], arg_names: tuple[str, ...]) -> CheckResult:
    """Run ``fn`` on every case and compare it with ``reference``; explain the first mismatch."""
    if not callable(fn):
        return CheckResult(exercise, "wrong", f"pass your function itself (got a {type(fn).__name__}).")
    for i, case in enumerate(cases):
        args_text = ", ".join(f"{n}={_f(v)}" for n, v in zip(arg_names, case.args))
        where = f"on {case.description} with {args_text}"
        expected = reference(case.logp, case.mask, *case.args).to(torch.float64)
        try:
            out = _call(fn, case.logp.clone(), case.mask.clone(), *case.args)
        except _NotAttempted:
            if i == 0:
                return CheckResult(exercise, "not attempted", _NOT_ATTEMPTED)
            return CheckResult(exercise, "wrong", f"your function returned nothing {where}.")
        except Exception as err:  # noqa: BLE001 -- any error is a wrong answer, reported with its input
            return CheckResult(exercise, "wrong", f"your function raised {type(err).__name__}: {err} {where}.")
        try:
            got_raw = out if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))
        except Exception:  # noqa: BLE001
            return CheckResult(exercise, "wrong", f"return a tensor of weights (got a {type(out).__name__}) {where}.")
        if tuple(got_raw.shape) != tuple(expected.shape):
            return CheckResult(exercise, "wrong",
                               f"your weights have shape {tuple(got_raw.shape)} but should have the shape of logp, "
                               f"{tuple(expected.shape)} (one weight per token) {where}.")
        got = got_raw.detach().to(torch.float64)
        close = torch.isclose(got, expected, rtol=1e-4, atol=1e-6)
        if not bool(close.all()):
            b, t = (int(v) for v in (~close).nonzero()[0])
            lp = float(case.logp.detach()[b, t])
            msg = (f"wrong {where}: at answer {b}, token {t} (logp = {_f(lp)}, p = {_f(math.exp(lp))}, "
                   f"mask = {bool(case.mask[b, t])}) the weight should be {_f(float(expected[b, t]))} "
                   f"but yours is {_f(float(got[b, t]))}.")
            for alt, hint in diagnoses:
                alt_w = alt(case.logp, case.mask, *case.args).detach().to(torch.float64)
                if torch.allclose(got, alt_w, rtol=1e-4, atol=1e-6, equal_nan=True):
                    msg += " Hint: " + hint
                    break
            return CheckResult(exercise, "wrong", msg)
        if got_raw.requires_grad:
            return CheckResult(exercise, "wrong",
                               f"the values are right, but your weights carry a gradient (requires_grad=True) {where}. "
                               "A weight is a constant for autograd: compute p from logp.detach(), so the loss "
                               "gradient is -(1/N) Σ w_t ∇CE_t and no gradient flows through w.")
    return CheckResult(exercise, "correct",
                       f"matches satimp_lab.unlearning.weighting on all {len(cases)} test inputs (random, padded, "
                       "p = 0 and p = 1, float32, exponent 0).")


_FORGOT_MASK = ("you forgot the mask: positions where mask is False (question and padding tokens) must get "
                "weight exactly 0, e.g. torch.where(mask, w, 0.0) or w * mask.")
_CE_NOT_P = "you used the cross-entropy -logp where the likelihood p = exp(logp) belongs."
_LOGP_NOT_P = "logp is a log-likelihood; the likelihood is p = logp.exp()."


def check_simimp(fn: Callable) -> CheckResult:
    """Exercise: ``fn(logp, mask, beta)`` -> SimImp weights (1 - p)^beta, p = exp(logp) detached,
    0 where mask is False. Reference: weighting.importance."""
    cases = _weight_cases([(2.0,), (1.5,), (3.0,), (0.5,), (0.0,)])
    diagnoses = [
        (lambda logp, mask, b: (1 - _p(logp)).pow(b), _FORGOT_MASK),
        (_masked(lambda logp, b: _p(logp).pow(b)),
         "that is SimSat's p^β (saturation). SimImp weights by (1 - p)^β: large where the model is unsure."),
        (_masked(lambda logp, b: (1 + logp.detach()).pow(b)), _CE_NOT_P),
        (_masked(lambda logp, b: (1 - logp.detach()).pow(b)), _LOGP_NOT_P),
        (_masked(lambda logp, b: (-logp.detach()).pow(b)), _CE_NOT_P),
        (_masked(lambda logp, b: 1 - _p(logp).pow(b)), "the exponent applies to (1 - p), not to p: (1 - p)^β."),
    ]
    return _check_weights("SimImp weight", fn, W.importance, cases, diagnoses, ("beta",))


def check_satimp(fn: Callable) -> CheckResult:
    """Exercise: ``fn(logp, mask, beta_sat, beta_imp)`` -> SatImp weights p^beta_sat (1 - p)^beta_imp,
    p = exp(logp) detached, 0 where mask is False. Reference: weighting.satimp."""
    cases = _weight_cases([(5.0, 0.1), (2.0, 1.0), (5.0, 0.1), (0.5, 3.0), (3.0, 0.0)])
    diagnoses = [
        (lambda logp, mask, bs, bi: _p(logp).pow(bs) * (1 - _p(logp)).pow(bi), _FORGOT_MASK),
        (lambda logp, mask, bs, bi: W.satimp(logp, mask, bi, bs),
         "the exponents look swapped: β_sat is the exponent on p (saturation), β_imp the exponent on (1 - p) "
         "(importance)."),
        (_masked(lambda logp, bs, bi: _p(logp).pow(bs)),
         "you have only the saturation factor p^β_sat; multiply by the importance factor (1 - p)^β_imp."),
        (_masked(lambda logp, bs, bi: (1 - _p(logp)).pow(bi)),
         "you have only the importance factor (1 - p)^β_imp; multiply by the saturation factor p^β_sat."),
        (_masked(lambda logp, bs, bi: _p(logp).pow(bs) + (1 - _p(logp)).pow(bi)),
         "SatImp multiplies the two factors; you added them."),
        (_masked(lambda logp, bs, bi: (-logp.detach()).pow(bs) * (1 + logp.detach()).pow(bi)), _CE_NOT_P),
    ]
    return _check_weights("SatImp weight", fn, W.satimp, cases, diagnoses, ("beta_sat", "beta_imp"))


# =============================================================================================
# number / function exercises

PEAK_CASES = ((5.0, 0.1), (5.0, 1.0), (1.0, 1.0), (2.0, 8.0), (0.5, 3.0), (3.0, 0.0), (0.0, 2.0))
"""(beta_sat, beta_imp) pairs the peak exercise is checked on."""


def _reference_peak(beta_sat: float, beta_imp: float) -> float:
    return satimp_peak(beta_sat, beta_imp)["p_star"]


def check_peak(fn: Callable, tolerance: float = 1e-3) -> CheckResult:
    """Exercise: ``fn(beta_sat, beta_imp)`` -> the likelihood p* where SatImp's weight is largest.
    A numerical argmax on a fine grid is accepted within ``tolerance``."""
    exercise = "SatImp peak p*"
    if not callable(fn):
        return CheckResult(exercise, "wrong", f"pass your function itself (got a {type(fn).__name__}).")
    for i, (bs, bi) in enumerate(PEAK_CASES):
        expected = _reference_peak(bs, bi)
        where = f"for β_sat = {_f(bs)}, β_imp = {_f(bi)}"
        try:
            got = float(_call(fn, bs, bi))
        except _NotAttempted:
            if i == 0:
                return CheckResult(exercise, "not attempted", _NOT_ATTEMPTED)
            return CheckResult(exercise, "wrong", f"your function returned nothing {where}.")
        except Exception as err:  # noqa: BLE001
            return CheckResult(exercise, "wrong", f"your function raised {type(err).__name__}: {err} {where}.")
        if not (math.isfinite(got) and abs(got - expected) <= tolerance):
            msg = f"wrong {where}: the peak is at p* = {_f(expected)}, your answer is {_f(got)}."
            w_max = float(W.satimp(torch.tensor([[math.log(expected) if expected > 0 else -math.inf]],
                                                dtype=torch.float64), torch.ones(1, 1, dtype=torch.bool), bs, bi))
            if bs + bi > 0 and abs(got - bi / (bs + bi)) <= tolerance:
                msg += " Hint: that is β_imp/(β_sat + β_imp): the exponents are swapped."
            elif abs(got - w_max) <= tolerance:
                msg += " Hint: that is the peak's height w(p*); the exercise asks where it is (the p)."
            else:
                msg += (" Hint: maximise log w = β_sat log p + β_imp log(1 - p): set its derivative "
                        "β_sat/p - β_imp/(1 - p) to 0.")
            return CheckResult(exercise, "wrong", msg)
    return CheckResult(exercise, "correct", f"right on all {len(PEAK_CASES)} (β_sat, β_imp) pairs, "
                                            "including the edges β_imp = 0 (p* = 1) and β_sat = 0 (p* = 0).")


def check_logit_gradient(fn: Callable) -> CheckResult:
    """Exercise: ``fn(p)`` (a float64 tensor of likelihoods in (0, 1)) -> d CE / d z_target, the
    gradient of a token's cross-entropy with respect to its target logit. Reference: autograd."""
    exercise = "GA logit gradient"
    if not callable(fn):
        return CheckResult(exercise, "wrong", f"pass your function itself (got a {type(fn).__name__}).")
    g = torch.Generator().manual_seed(7)
    inputs = [torch.rand(8, generator=g, dtype=torch.float64) * 0.98 + 0.01,
              torch.tensor([1e-6, 0.5, 1 - 1e-6], dtype=torch.float64)]
    for i, p in enumerate(inputs):
        expected = torch.as_tensor(target_logit_gradient(p.numpy()))
        try:
            out = _call(fn, p.clone())
            got = torch.as_tensor(np.asarray(out.detach() if isinstance(out, torch.Tensor) else out),
                                  dtype=torch.float64)
        except _NotAttempted:
            if i == 0:
                return CheckResult(exercise, "not attempted", _NOT_ATTEMPTED)
            return CheckResult(exercise, "wrong", "your function returned nothing for some inputs.")
        except Exception as err:  # noqa: BLE001
            return CheckResult(exercise, "wrong", f"your function raised {type(err).__name__}: {err}.")
        if got.shape != expected.shape:
            got = got.expand_as(expected) if got.numel() == 1 else got
        if got.shape != expected.shape:
            return CheckResult(exercise, "wrong", f"return one gradient per likelihood: shape {tuple(expected.shape)}, "
                                                  f"got {tuple(got.shape)}.")
        close = torch.isclose(got, expected, rtol=1e-5, atol=1e-8)
        if not bool(close.all()):
            j = int((~close).nonzero()[0])
            msg = (f"wrong at p = {_f(float(p[j]))}: d CE / d z_target = {_f(float(expected[j]))}, "
                   f"yours is {_f(float(got[j]))}.")
            if torch.allclose(got, -expected, rtol=1e-5, atol=1e-8):
                msg += (" Hint: check the sign: raising the target logit raises p, which lowers the "
                        "cross-entropy, so the derivative is negative.")
            elif torch.allclose(got, -p, rtol=1e-5, atol=1e-8) or torch.allclose(got, p, rtol=1e-5, atol=1e-8):
                msg += (" Hint: ±p is the gradient with respect to a logit of a *wrong* class (for the other "
                        "class the derivative is +p_j); for the target logit it involves 1 - p.")
            else:
                msg += " Hint: CE = -z_target + log Σ_j exp(z_j); differentiate with respect to z_target."
            return CheckResult(exercise, "wrong", msg)
    return CheckResult(exercise, "correct", "matches autograd on random likelihoods and at p near 0 and 1.")


# =============================================================================================
# the example answer: which token does SatImp up-weight?

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
    p_star = _reference_peak(*(get_method("satimp").params[k] for k in ("beta_sat", "beta_imp")))
    if index == best:
        return CheckResult(exercise, "correct",
                           f"'{frame['token'][best].strip()}' (p = {_f(p[best])}) gets w = {_f(w[best])}, the largest: "
                           f"its likelihood is the closest to the peak p* = {_f(p_star)}.")
    rank = int((w > w[index]).sum()) + 1
    msg = (f"'{frame['token'][index].strip()}' (p = {_f(p[index])}) gets w = {_f(w[index])}, rank {rank} of "
           f"{len(w)}; another token gets more.")
    if p[index] < p_star:
        msg += (" Hint: a low-likelihood token is one the model has already (nearly) forgotten; the saturation "
                "factor p^β_sat shrinks its weight. GA's own push on the logit, 1 - p, is largest there, not SatImp's.")
    else:
        msg += (" Hint: above the peak p* the importance factor (1 - p)^β_imp pulls the weight down: a token "
                "with p → 1 gets weight → 0.")
    return CheckResult(exercise, "wrong", msg)


# =============================================================================================
# multiple choice

QUESTIONS = {
    "upweighted": {
        "question": "Compared with plain GA (weight 1 on every token), on which forget tokens does SatImp with its "
                    "recommended exponents (a large β_sat, a small β_imp) put its **largest** weights?",
        "options": {
            "a": "tokens the model already gives a low likelihood (p near 0)",
            "b": "tokens with a high but not certain likelihood (p just below the peak p*)",
            "c": "tokens the model predicts with certainty (p = 1)",
            "d": "every token equally: the weights only rescale the learning rate",
        },
        "answer": "b",
        "feedback": {
            "a": "those are the tokens the saturation factor p^β_sat switches off: they are already unlearned, "
                 "and plain GA pushes on them hardest anyway (its logit push is 1 - p).",
            "b": "the weight p^β_sat (1 - p)^β_imp peaks at p* = β_sat/(β_sat + β_imp), close to 1: SatImp "
                 "concentrates on tokens that are still well remembered but not yet fully certain.",
            "c": "at p = 1 the importance factor (1 - p)^β_imp is exactly 0 (for β_imp > 0).",
            "d": "that describes batch-level weighting; SatImp's weight differs from token to token.",
        },
    },
    "granularity": {
        "question": "Which granularity gives every answer token of a sequence **one shared weight**, computed "
                    "from that sequence alone (so two sequences of a batch can get different weights)?",
        "options": {"a": "token", "b": "group", "c": "instance", "d": "batch"},
        "answer": "c",
        "aliases": {"instance-level": "c", "instance_norm": "c", "sequence": "c", "instance level": "c"},
        "feedback": {
            "a": "at token granularity every token keeps its own weight w(p_t).",
            "b": "group granularity averages weights within rank buckets of G similar tokens; only when G is at "
                 "least the answer length does the whole sequence share one weight (the mean of its token "
                 "weights).",
            "c": "the instance weight comes from the sequence likelihood (the product of its token "
                 "likelihoods, or their geometric mean in the length-normalised variant) and is broadcast "
                 "to every token of that sequence.",
            "d": "batch granularity shares one weight across all sequences of the micro-batch, so it is not "
                 "computed from the sequence alone.",
        },
    },
}
"""Multiple-choice questions: text, options (letter -> text), the right letter, accepted aliases and
feedback per option."""


def question(qid: str):
    """The question and its options as Markdown (for display in the notebook)."""
    from IPython.display import Markdown

    q = _question(qid)
    lines = [q["question"], ""] + [f"- **({k})** {v}" for k, v in q["options"].items()]
    return Markdown("\n".join(lines))


def _question(qid: str) -> dict:
    if qid not in QUESTIONS:
        raise ValueError(f"unknown question {qid!r}; valid: {sorted(QUESTIONS)}")
    return QUESTIONS[qid]


def check_choice(qid: str, answer) -> CheckResult:
    """Check a multiple-choice answer: the option letter ("c", "(c)") or the option's text/keyword."""
    q = _question(qid)
    exercise = f"question '{qid}'"
    if answer is None or answer is Ellipsis or (isinstance(answer, str) and not answer.strip()):
        return CheckResult(exercise, "not attempted", "not attempted yet: set `answer` to one of the letters "
                                                       f"{', '.join(q['options'])} and run the cell again.")
    text = str(answer).strip().lower()
    as_letter = re.fullmatch(r"\(?\s*([a-z])\s*\)?", text)
    by_text = {v.lower(): k for k, v in q["options"].items()}
    if as_letter and as_letter.group(1) in q["options"]:
        letter = as_letter.group(1)
    else:
        letter = by_text.get(text, q.get("aliases", {}).get(text))
    if letter is None:
        return CheckResult(exercise, "wrong", f"{answer!r} is not one of the options "
                                              f"({', '.join(q['options'])}); answer with a letter.")
    status = "correct" if letter == q["answer"] else "wrong"
    lead = f"({letter}) is right" if status == "correct" else f"({letter}) is not it"
    return CheckResult(exercise, status, f"{lead}: {q['feedback'][letter]}")


# =============================================================================================


def progress(results) -> pd.DataFrame:
    """A table of check results (e.g. at the end of the notebook): exercise, status, symbol."""
    return pd.DataFrame([{"exercise": r.exercise, "status": r.status, "": r.symbol} for r in results])


# =============================================================================================
# reference solutions: shown on request, never run by the notebook


SOLUTIONS: dict[int, dict] = {
    1: {"title": "the gradient of CE with respect to the target logit",
        "code": "def dce_dz(p):\n"
                "    # CE = -z_target + log sum_j exp(z_j), so d CE / d z_target = -1 + p\n"
                "    return -(1 - p)\n",
        "checks": lambda ns: [check_logit_gradient(ns["dce_dz"])]},
    2: {"title": "SimImp's weight",
        "code": "def my_simimp(logp, mask, beta):\n"
                "    p = logp.detach().exp()            # the weight is a constant for autograd\n"
                "    return torch.where(mask, (1 - p).pow(beta), torch.zeros_like(p))\n",
        "checks": lambda ns: [check_simimp(ns["my_simimp"])]},
    3: {"title": "SatImp's weight",
        "code": "def my_satimp(logp, mask, beta_sat, beta_imp):\n"
                "    p = logp.detach().exp()\n"
                "    return torch.where(mask, p.pow(beta_sat) * (1 - p).pow(beta_imp), torch.zeros_like(p))\n",
        "checks": lambda ns: [check_satimp(ns["my_satimp"])]},
    4: {"title": "which tokens SatImp up-weights",
        "code": "# p* = 5 / (5 + 0.1) = 0.980: ' born' (p = 0.98) sits right at the peak\n"
                "top_token = \"born\"\n"
                "answer_upweighted = \"b\"   # high but not certain likelihood\n",
        "checks": lambda ns: [check_top_token(ns["top_token"]), check_choice("upweighted", ns["answer_upweighted"])]},
    5: {"title": "the peak p*",
        "code": "def peak(beta_sat, beta_imp):\n"
                "    # d/dp log w = beta_sat / p - beta_imp / (1 - p) = 0\n"
                "    return beta_sat / (beta_sat + beta_imp)\n",
        "checks": lambda ns: [check_peak(ns["peak"])]},
    6: {"title": "the granularity question",
        "code": "answer_granularity = \"c\"   # instance: one weight per sequence, from that sequence\n",
        "checks": lambda ns: [check_choice("granularity", ns["answer_granularity"])]},
}
"""Exercise number -> its title, the reference solution's source ("code", what a student is shown)
and "checks" (the namespace the code defines -> the CheckResults of its checkers)."""


def _solution(n: int) -> dict:
    if n not in SOLUTIONS:
        raise ValueError(f"no exercise {n!r}; the exercises are {sorted(SOLUTIONS)}")
    return SOLUTIONS[n]


def solution_code(n: int) -> str:
    """The reference solution of exercise ``n`` (1-6) as source text. Raises ValueError for an
    unknown exercise."""
    return _solution(n)["code"]


def show_solution(n: int):
    """Exercise ``n``'s reference solution as Markdown, to display (it is not run: paste it into
    your cell to try it)."""
    from IPython.display import Markdown

    sol = _solution(n)
    return Markdown(f"**Reference solution of exercise {n}** ({sol['title']}); it is not run, your answer "
                    f"stays yours:\n\n```python\n{sol['code']}```")


def solution_button(n: int):
    """A "Show solution n" button that reveals (and hides again) exercise ``n``'s reference
    solution below it. Running the cell only draws the button: nothing is shown or run until a
    student presses it. Returns the ipywidgets VBox (``.button``, ``.shown`` attributes)."""
    import ipywidgets as ipw

    sol = _solution(n)
    button = ipw.Button(description=f"Show solution {n}", icon="eye", layout=ipw.Layout(width="auto"),
                        tooltip=f"the reference solution of exercise {n}; it is shown, not run")
    shown = ipw.HTML()

    def toggle(_=None):
        if shown.value:
            shown.value, button.description, button.icon = "", f"Show solution {n}", "eye"
        else:
            shown.value = (f"<div style='font-family: sans-serif'>Reference solution of exercise {n} "
                           f"({html.escape(sol['title'])}); it is not run, your answer stays yours:</div>"
                           f"<pre style='background:#f5f5f5; padding:6px 10px'>{html.escape(sol['code'])}</pre>")
            button.description, button.icon = f"Hide solution {n}", "eye-slash"

    button.on_click(toggle)
    box = ipw.VBox([button, shown], layout=ipw.Layout(align_items="flex-start"))   # a button, not a bar
    box.button, box.shown = button, shown
    return box


def reference_results(n: int) -> list[CheckResult]:
    """Run exercise ``n``'s reference solution (:func:`solution_code`) in a fresh namespace and
    return what its checker(s) say about it."""
    namespace = {"torch": torch, "np": np, "math": math}
    exec(compile(solution_code(n), f"<solution {n}>", "exec"), namespace)  # noqa: S102 -- our own text
    return _solution(n)["checks"](namespace)


def check_reference_solutions() -> pd.DataFrame:
    """For the teacher: every reference solution through its checker. One row per check: exercise
    number, the check's name and whether the reference passes (no answers or messages, so a
    student can see it)."""
    rows = []
    for n in SOLUTIONS:
        for result in reference_results(n):
            rows.append({"exercise": n, "check": result.exercise, "reference passes": bool(result)})
    return pd.DataFrame(rows)
