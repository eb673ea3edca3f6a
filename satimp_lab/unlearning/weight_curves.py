"""The analytic weight curves: what each method's per-token weight is as a function of the likelihood.

Pure functions of a likelihood grid ``p`` (a 1-D array of numbers in [0, 1], unitless) and the
exponents, returning numpy arrays of the same shape as ``p`` (or a DataFrame / dict): no widgets,
no figures. Every curve is evaluated by calling :mod:`satimp_lab.unlearning.weighting` (or autograd through
:mod:`satimp_lab.unlearning.objectives`) on one-token sequences, so the curves are the library's own weights,
not a re-implementation:

* the w(p) family -- GA 1, SimSat p^beta_sat, SimImp (1-p)^beta_imp, SatImp
  p^beta_sat (1-p)^beta_imp (docs/methods.md#the-weight-family) -- and the SatImp peak
  p* = beta_sat / (beta_sat + beta_imp);
* the implicit weights of NPO and SimNPO (docs/methods.md#implicit-weights);
* the weight table of docs/methods.md#the-weight-family;
* the "GA logit view": the gradient of the forget loss with respect to the target logit.

Errors: a ``p`` outside [0, 1] (or, for the logit view, outside (0, 1)) or an unknown scheme
raises ``ValueError``; an invalid exponent raises the weighting module's ``ValueError`` naming it.
The figures and sliders that show these curves (notebook 02) are in :mod:`satimp_lab.ui.widgets`;
``ui.exercises`` and ``ui.example_answer`` use them as the reference answers of notebook 09.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from . import weighting as W
from .objectives import get_method
from .params import validate_param

__all__ = [
    "likelihood_grid",
    "TOKEN_SCHEMES",
    "token_weights_on_grid",
    "npo_weights_on_grid",
    "simnpo_weights_on_grid",
    "family_curves",
    "family_labels",
    "satimp_peak",
    "peak_text",
    "peaks_table",
    "weight_table",
    "WEIGHT_TABLE_P",
    "WEIGHT_TABLE_SCHEMES",
    "target_logit_gradient",
    "logit_push",
]


def _g(x: float) -> str:
    return f"{x:.4g}"


def likelihood_grid(n: int = 401, include_ends: bool = True) -> np.ndarray:
    """An evenly spaced likelihood grid, shape [n]: on [0, 1], or n points strictly inside (0, 1)
    when include_ends=False. Raises ValueError when n < 2."""
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    p = np.linspace(0.0, 1.0, n)
    if not include_ends:
        p = np.linspace(0.0, 1.0, n + 2)[1:-1]
    return p


def _logp_row(p) -> tuple[torch.Tensor, torch.Tensor]:
    """p (1-D) -> logp and mask of shape [1, n]: one sequence whose tokens have these likelihoods."""
    p = torch.as_tensor(np.asarray(p, dtype=float), dtype=torch.float64)
    if p.dim() != 1 or bool(((p < 0) | (p > 1)).any()) or bool(torch.isnan(p).any()):
        raise ValueError("p must be a 1-D array of likelihoods in [0, 1]")
    logp = torch.log(p).unsqueeze(0)                       # log 0 = -inf: p = 0 is allowed
    return logp, torch.ones_like(logp, dtype=torch.bool)


TOKEN_SCHEMES = ("ga", "simsat", "simimp", "satimp")


def token_weights_on_grid(scheme: str, p, beta_sat: float = 0.0, beta_imp: float = 0.0) -> np.ndarray:
    """The token weight w(p) of ``scheme`` on the likelihoods ``p`` ([n] -> [n]), by calling
    satimp_lab.unlearning.weighting (docs/methods.md#the-weight-family).

    ga: 1 (= satimp with both exponents 0); simsat: p^beta_sat (weighting.saturation);
    simimp: (1-p)^beta_imp (weighting.importance); satimp: p^beta_sat (1-p)^beta_imp (weighting.satimp).
    """
    logp, mask = _logp_row(p)
    if scheme == "ga":
        w = W.satimp(logp, mask, 0.0, 0.0)
    elif scheme == "simsat":
        w = W.saturation(logp, mask, beta_sat)
    elif scheme == "simimp":
        w = W.importance(logp, mask, beta_imp)
    elif scheme == "satimp":
        w = W.satimp(logp, mask, beta_sat, beta_imp)
    else:
        raise ValueError(f"scheme must be one of {TOKEN_SCHEMES}, got {scheme!r}")
    return w[0].numpy()


def npo_weights_on_grid(ratio, beta: float) -> np.ndarray:
    """NPO's implicit weight w = 2 sigma(-beta (L - L_ref)) as a function of the sequence likelihood
    relative to the reference, ``ratio`` = pi_theta(y|x) / pi_ref(y|x) in [0, 1].

    Evaluated with weighting.npo_implicit_weights on one-token sequences with log pi_ref = 0, so the
    summed NLL difference is L - L_ref = -log(ratio). Equals 2 ratio^beta / (1 + ratio^beta)
    (docs/methods.md#implicit-weights).
    """
    logp, mask = _logp_row(ratio)
    logp, mask = logp.T.contiguous(), mask.T.contiguous()          # [n, 1]: n sequences of one token
    return W.npo_implicit_weights(logp, torch.zeros_like(logp), mask, beta)[:, 0].numpy()


def simnpo_weights_on_grid(pbar, beta: float, gamma: float = 0.0) -> np.ndarray:
    """SimNPO's implicit per-token weight (on the token-mean scale) as a function of the geometric-mean
    token likelihood ``pbar`` of the sequence: 2 pbar^beta / (1 + pbar^beta) at gamma = 0
    (docs/methods.md#implicit-weights).

    Evaluated with weighting.simnpo_implicit_weights on one-token sequences (n_i = 1, so the returned
    w_i / n_i is w_i itself, and N / B = 1: already on the scale of the token-mean methods).
    """
    logp, mask = _logp_row(pbar)
    logp, mask = logp.T.contiguous(), mask.T.contiguous()
    return W.simnpo_implicit_weights(logp, mask, beta, gamma)[:, 0].numpy()


def family_labels(beta_sat: float, beta_imp: float, npo_beta: float, simnpo_beta: float) -> dict[str, str]:
    """The legend label of each :func:`family_curves` key (ga, simsat, simimp, satimp, npo, simnpo)."""
    # labels start with the method name (no space before "(") so plots.color_for finds the family colour
    return {
        "ga": "ga(w = 1)",
        "simsat": f"simsat(β_sat={_g(beta_sat)}): p^β_sat",
        "simimp": f"simimp(β_imp={_g(beta_imp)}): (1-p)^β_imp",
        "satimp": f"satimp(β_sat={_g(beta_sat)}, β_imp={_g(beta_imp)}): p^β_sat (1-p)^β_imp",
        "npo": f"npo(β={_g(npo_beta)}): x = π_θ/π_ref of the sequence",
        "simnpo": f"simnpo(β={_g(simnpo_beta)}): x = geometric-mean p̄ of the sequence",
    }


def _default_npo_betas() -> tuple[float, float]:
    return float(get_method("npo").params["npo_beta"]), float(get_method("simnpo").params["npo_beta"])


def family_curves(beta_sat: float, beta_imp: float, p=None, npo_beta: float | None = None,
                  simnpo_beta: float | None = None) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, str]]:
    """All weight curves on one likelihood axis: ``(p, {key: w}, {key: label})``.

    keys: ga, simsat, simimp, satimp (token weights of likelihood p) and npo (x = pi/pi_ref),
    simnpo (x = geometric-mean p of the sequence). NPO/SimNPO betas default to the registry's.
    """
    p = likelihood_grid() if p is None else np.asarray(p, dtype=float)
    d_npo, d_simnpo = _default_npo_betas()
    npo_beta = d_npo if npo_beta is None else npo_beta
    simnpo_beta = d_simnpo if simnpo_beta is None else simnpo_beta
    curves = {key: token_weights_on_grid(key, p, beta_sat, beta_imp) for key in TOKEN_SCHEMES}
    curves["npo"] = npo_weights_on_grid(p, npo_beta)
    curves["simnpo"] = simnpo_weights_on_grid(p, simnpo_beta)
    return p, curves, family_labels(beta_sat, beta_imp, npo_beta, simnpo_beta)


def satimp_peak(beta_sat: float, beta_imp: float, p=None) -> dict:
    """Where SatImp's weight p^beta_sat (1-p)^beta_imp peaks.

    Closed form p* = beta_sat / (beta_sat + beta_imp) (set d log w / dp = 0); w_max is weighting.satimp
    evaluated at p*. ``grid_p``/``grid_w`` are the argmax and max on a likelihood grid, as a check.
    beta_sat = beta_imp = 0 is flat (w = 1): p* is NaN. An exponent outside its declared range
    (satimp_lab.unlearning.params) raises InputError naming it.
    """
    beta_sat = validate_param("beta_sat", beta_sat)
    beta_imp = validate_param("beta_imp", beta_imp)
    p = likelihood_grid(2001) if p is None else np.asarray(p, dtype=float)
    total = beta_sat + beta_imp
    p_star = beta_sat / total if total > 0 else math.nan
    w_max = float(token_weights_on_grid("satimp", [p_star], beta_sat, beta_imp)[0]) if total > 0 else 1.0
    w = token_weights_on_grid("satimp", p, beta_sat, beta_imp)
    i = int(np.argmax(w))
    return {"beta_sat": beta_sat, "beta_imp": beta_imp, "p_star": p_star, "w_max": w_max,
            "grid_p": float(p[i]), "grid_w": float(w[i])}


def peak_text(beta_sat: float, beta_imp: float) -> str:
    """One line for the notebook: where SatImp(beta_sat, beta_imp) peaks and how high."""
    pk = satimp_peak(beta_sat, beta_imp)
    if math.isnan(pk["p_star"]):
        return f"SatImp(β_sat={_g(beta_sat)}, β_imp={_g(beta_imp)}) is flat: w = 1 for every p (plain GA)."
    return (f"SatImp(β_sat={_g(beta_sat)}, β_imp={_g(beta_imp)}) peaks at p* = β_sat/(β_sat+β_imp) = "
            f"{pk['p_star']:.3f}, where w = {pk['w_max']:.3f}.")


def peaks_table(pairs) -> pd.DataFrame:
    """satimp_peak for each (beta_sat, beta_imp) pair, one row each."""
    return pd.DataFrame([satimp_peak(bs, bi) for bs, bi in pairs])


WEIGHT_TABLE_P = (0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99)
"""The likelihoods of the weight table (docs/methods.md#the-weight-family)."""


WEIGHT_TABLE_SCHEMES = (("simsat", 1.0, 0.0), ("simsat", 5.0, 0.0), ("simimp", 0.0, 1.0),
                        ("simimp", 0.0, 5.0), ("satimp", 5.0, 0.1), ("satimp", 5.0, 1.0))
"""(scheme, beta_sat, beta_imp) rows of that table: SatImp (5, 0.1) is the README's recommended
setting, (5, 1) the open-unlearning port's default."""


def _scheme_label(scheme: str, beta_sat: float, beta_imp: float) -> str:
    if scheme == "simsat":
        return f"simsat(β_sat={_g(beta_sat)})"
    if scheme == "simimp":
        return f"simimp(β_imp={_g(beta_imp)})"
    if scheme == "satimp":
        return f"satimp(β_sat={_g(beta_sat)}, β_imp={_g(beta_imp)})"
    return scheme


def weight_table(p=WEIGHT_TABLE_P, schemes=WEIGHT_TABLE_SCHEMES) -> pd.DataFrame:
    """w(p) of each (scheme, beta_sat, beta_imp) at the likelihoods ``p`` (one row per scheme,
    one column per p), computed with satimp_lab.unlearning.weighting -- the table of
    docs/methods.md#the-weight-family by default."""
    rows = []
    for scheme, bs, bi in schemes:
        w = token_weights_on_grid(scheme, p, bs, bi)
        rows.append({"scheme": _scheme_label(scheme, bs, bi), **{f"p={_g(x)}": float(v) for x, v in zip(p, w)}})
    return pd.DataFrame(rows)


def target_logit_gradient(p) -> np.ndarray:
    """d CE / d z_target for a token of likelihood p, by autograd: a two-logit softmax [z, 0] with
    z = log(p / (1 - p)) has softmax(z)[0] = p. It equals -(1 - p) (docs/methods.md#implicit-weights).
    p must be in (0, 1)."""
    p = torch.as_tensor(np.asarray(p, dtype=float), dtype=torch.float64)
    if bool(((p <= 0) | (p >= 1)).any()):
        raise ValueError("p must lie strictly inside (0, 1) (the logit of 0 or 1 is infinite)")
    z = torch.log(p / (1 - p)).requires_grad_()
    logits = torch.stack([z, torch.zeros_like(z)], dim=-1)
    ce = -torch.log_softmax(logits, dim=-1)[..., 0]
    (grad,) = torch.autograd.grad(ce.sum(), z)
    return grad.numpy()


def logit_push(method: str, p, **params) -> np.ndarray:
    """How hard one gradient step of ``method``'s forget loss pushes each token's target logit down,
    per unit learning rate and on the token-mean scale: d F / d z_target (positive = z decreases).

    Computed by autograd through the registered method (objectives.get_method(method, **params)
    .forget_term) on one-token sequences, times N so a single token's share is not divided away.
    For weighted GA this is w(p) (1 - p): the weight times GA's own push (1 - p). Token-level methods only.
    """
    m = get_method(method, **params)
    if m.granularity not in ("token", "group"):
        raise ValueError(f"logit_push needs a token-level method, got {method!r} ({m.granularity})")
    p = torch.as_tensor(np.asarray(p, dtype=float), dtype=torch.float64)
    if bool(((p <= 0) | (p >= 1)).any()):
        raise ValueError("p must lie strictly inside (0, 1)")
    z = torch.log(p / (1 - p)).requires_grad_()
    logits = torch.stack([z, torch.zeros_like(z)], dim=-1)            # [n, 2]
    logp = torch.log_softmax(logits, dim=-1)[..., :1]                 # [n, 1]: n one-token sequences
    mask = torch.ones_like(logp, dtype=torch.bool)
    term = m.forget_term(logp, mask)
    (grad,) = torch.autograd.grad(term.loss, z)
    return grad.numpy() * len(p)
