"""The coding exercises of the course notebook (09) and their self-checks: compare a student's
function with the library's reference.

Each ``check_*`` function returns a :class:`CheckResult` that shows itself in a notebook as a short
✓ / ✗ / ○ message: ✓ correct, ✗ wrong (with the first failing input and, where the mistake is a
common one, a hint), ○ not attempted yet (the stub still raises ``NotImplementedError`` or returns
``...``/``None``). ``bool(result)`` is True only when the answer is correct. The course's other
checks return one too: :mod:`~satimp_lab.ui.example_answer` (which token of the worked example
SatImp up-weights) and :mod:`~satimp_lab.ui.multiple_choice` (the questions).

Function answers are compared with the reference in :mod:`satimp_lab.unlearning.weighting` (or autograd) on
random batches and on edge inputs: padding masks, p = 0 (logp = -inf), p = 1 (logp = 0), an
exponent of 0, float32 and float64. The reference solutions, and the progress table of the
notebook's end, are in :mod:`~satimp_lab.ui.course`.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..unlearning import weighting as W
from ..unlearning.weight_curves import satimp_peak, target_logit_gradient

__all__ = [
    "CheckResult",
    "check_simimp",
    "check_satimp",
    "check_peak",
    "check_logit_gradient",
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


def number_text(x: float) -> str:
    """A number as the checkers' messages write it (four significant digits)."""
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
        args_text = ", ".join(f"{n}={number_text(v)}" for n, v in zip(arg_names, case.args))
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
            msg = (f"wrong {where}: at answer {b}, token {t} (logp = {number_text(lp)}, p = {number_text(math.exp(lp))}, "
                   f"mask = {bool(case.mask[b, t])}) the weight should be {number_text(float(expected[b, t]))} "
                   f"but yours is {number_text(float(got[b, t]))}.")
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
        where = f"for β_sat = {number_text(bs)}, β_imp = {number_text(bi)}"
        try:
            got = float(_call(fn, bs, bi))
        except _NotAttempted:
            if i == 0:
                return CheckResult(exercise, "not attempted", _NOT_ATTEMPTED)
            return CheckResult(exercise, "wrong", f"your function returned nothing {where}.")
        except Exception as err:  # noqa: BLE001
            return CheckResult(exercise, "wrong", f"your function raised {type(err).__name__}: {err} {where}.")
        if not (math.isfinite(got) and abs(got - expected) <= tolerance):
            msg = f"wrong {where}: the peak is at p* = {number_text(expected)}, your answer is {number_text(got)}."
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
            msg = (f"wrong at p = {number_text(float(p[j]))}: d CE / d z_target = {number_text(float(expected[j]))}, "
                   f"yours is {number_text(float(got[j]))}.")
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
