"""Per-token loss weights for LLM unlearning: the saturation / importance family and friends.

Pure tensor functions. Nothing here knows about models, loops or plots.

Conventions (every function):
  logp  [batch, pos]  per-token log-likelihood log pi(y_t | x, y_<t) of the (already shifted) labels;
                      the likelihood is p = exp(logp) and the cross-entropy is CE = -logp.
  mask  [batch, pos]  bool or 0/1; nonzero marks a valid answer token (question/pad/-100 are 0).
  returns             weights of shape [batch, pos] (or [batch] / a scalar where stated), DETACHED
                      (no autograd graph even if logp requires grad) and exactly 0 where mask is 0.

The weight family (docs/methods.md#the-weight-family): w(p) = p^beta_sat * (1 - p)^beta_imp with
  p detached.
  beta_sat is the exponent on p (saturation, the paper's beta1); beta_imp the exponent on 1 - p
  (importance, beta2). GA = (0, 0), SimSat = WGA = (beta, 0), SimImp = (0, beta), SatImp = (5, 0.1).
  The official code keeps these exponents under the keys `hyper_param` / `beta`, whose meaning swaps
  between files; here the names say which factor each exponent belongs to.

Weights are constants for autograd: the gradient of a weighted forget loss -(1/N) sum_t w_t CE_t is
-(1/N) sum_t w_t grad CE_t, exactly as in the official code (which computes p from a detached CE).
"""

from __future__ import annotations

import math
import numbers

import torch
from jaxtyping import Float, Shaped
from torch import Tensor

__all__ = [
    "saturation",
    "importance",
    "satimp",
    "group_average",
    "instance_weights",
    "batch_weights",
    "broadcast_to_tokens",
    "hard_sample",
    "annotated",
    "npo_implicit_weights",
    "simnpo_implicit_weights",
    "compose",
    "validate_exponent",
    "validate_unit_interval",
    "validate_fraction",
    "validate_group_size",
    "validate_real",
]

KINDS = ("saturation", "importance")
HARD_MODES = ("top", "bottom", "random")


# -----------------------------------------------------------------------------
# validation helpers (public so that objectives.py can validate method parameters up front)

def _num(value) -> float | None:
    """float(value) for a real number (or a one-element tensor); None for anything else.

    bool is a numbers.Real in Python, but True as an exponent is almost certainly a mistake.
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def validate_real(name: str, value) -> float:
    """A finite real number (any sign), e.g. SimNPO's margin gamma."""
    v = _num(value)
    if v is None or not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return v


def validate_exponent(name: str, value) -> float:
    """An exponent: finite and >= 0 (a negative exponent would blow up at p -> 0 or p -> 1)."""
    v = _num(value)
    if v is None or not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def validate_unit_interval(name: str, value) -> float:
    """A value in [0, 1] (soft mask values, p_imp)."""
    v = _num(value)
    if v is None or not (0.0 <= v <= 1.0):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return v


def validate_fraction(name: str, value) -> float:
    """A fraction in (0, 1] (the hard-sampling k)."""
    v = _num(value)
    if v is None or not (0.0 < v <= 1.0):
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
    return v


def validate_group_size(name: str, value) -> int:
    """A positive integer; integral floats such as 4.0 (what a CLI parser hands over) are accepted."""
    v = _num(value)
    if v is None or not math.isfinite(v) or v != int(v) or v < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(v)


def _check_pair(logp: torch.Tensor, mask: torch.Tensor, name: str = "mask", ndim2: bool = False,
                first: str = "logp"):
    """logp (called `first` in messages) is a float tensor and `name` a tensor of the same shape."""
    if not isinstance(logp, torch.Tensor) or not logp.is_floating_point():
        raise ValueError(f"{first} must be a floating-point tensor, got {type(logp).__name__}")
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(mask).__name__}")
    if mask.shape != logp.shape:
        raise ValueError(f"{name} shape {tuple(mask.shape)} does not match {first} shape {tuple(logp.shape)}")
    if ndim2 and logp.dim() != 2:
        raise ValueError(f"{first} must be 2-D [batch, pos], got shape {tuple(logp.shape)}")


def _valid(mask: torch.Tensor) -> torch.Tensor:
    return mask if mask.dtype == torch.bool else mask != 0


def _work_dtype(t: torch.Tensor) -> torch.dtype:
    # compute in at least float32 (bf16 p^5 is coarse); keep float64 if the caller uses it
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _likelihood(logp: torch.Tensor) -> torch.Tensor:
    """p = exp(logp), detached, clamped to <= 1 so that (1 - p)^beta never sees a negative base."""
    return logp.detach().to(_work_dtype(logp)).exp().clamp(max=1.0)


def _finish(w: torch.Tensor, mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # torch.where (not w * mask) so NaN/inf garbage at masked positions becomes an exact 0
    return torch.where(_valid(mask), w, torch.zeros((), dtype=w.dtype, device=w.device)).to(dtype).detach()


# -----------------------------------------------------------------------------
# the token-level weight family

def satimp(logp: Float[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"], beta_sat: float = 5.0,
           beta_imp: float = 0.1) -> Float[Tensor, "batch pos"]:
    """SatImp weight, [batch, pos] -> [batch, pos]:  w = p^beta_sat * (1 - p)^beta_imp,  p = sg[exp(logp)].

    Peaks at p* = beta_sat / (beta_sat + beta_imp) (0.980 for the recommended (5, 0.1)).
    0^0 is 1 (torch.pow convention), so satimp(b, 0) == saturation(b) and satimp(0, b) == importance(b)
    exactly, even at p = 1 or p = 0; satimp(0, 0) is 1 on every valid token (plain GA).
    Official code: `p**hyper_param * (1-p)**beta`; we name the exponents after their factors.
    """
    _check_pair(logp, mask)
    beta_sat = validate_exponent("beta_sat", beta_sat)
    beta_imp = validate_exponent("beta_imp", beta_imp)
    p = _likelihood(logp)
    w = p.pow(beta_sat) * (1.0 - p).pow(beta_imp)
    return _finish(w, mask, logp.dtype)


def saturation(logp: Float[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"],
               beta: float = 1.0) -> Float[Tensor, "batch pos"]:
    """SimSat (= WGA) weight, [batch, pos] -> [batch, pos]:  w = p^beta.

    Small on tokens that are already unlearned (low p). Official `simsat_ga` ignores its beta and uses
    p^1; `simsat_gd` uses p^beta. Here beta is always honoured (default 1 = the `simsat_ga` behaviour).
    """
    _check_pair(logp, mask)
    beta = validate_exponent("beta", beta)
    return _finish(_likelihood(logp).pow(beta), mask, logp.dtype)


def importance(logp: Float[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"],
               beta: float = 1.0) -> Float[Tensor, "batch pos"]:
    """SimImp weight, [batch, pos] -> [batch, pos]:  w = (1 - p)^beta.

    Large on low-likelihood tokens, the likelihood proxy for "important" tokens.
    """
    _check_pair(logp, mask)
    beta = validate_exponent("beta", beta)
    return _finish((1.0 - _likelihood(logp)).pow(beta), mask, logp.dtype)


# -----------------------------------------------------------------------------
# granularity transforms (docs/methods.md#granularity)

def group_average(weights: Float[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"],
                  group_size: int) -> Float[Tensor, "batch pos"]:
    """Rank-bucket averaging, [batch, pos] -> [batch, pos] (the official `group_and_average`).

    Within each sequence: sort the valid tokens by weight, descending; cut the sorted list into
    consecutive buckets of `group_size` (the last one may be partial); give every token its bucket's
    mean weight. A "group" is therefore a bucket of similarly-weighted tokens, not a contiguous span.
    group_size = 1 is the identity; group_size >= n_valid gives each token the sequence mean.
    Per-sequence sums of weights are preserved. Ties are ordered by position (stable sort).
    Works for any length (the official code hard-codes 499 = max_length - 1) and uses the mask for
    validity (the official code uses CE != 0). Vectorised: one sort + two scatter_adds.

    Departure (a valid weight that is exactly 0, e.g. p^beta underflowing): here invalid
    positions always sort after every valid token, so the valid token is in a bucket and gets its
    mean. The official ``group_and_average`` (``dataloader/dataloader_granu.py``,
    tmlr-group/SatImp, commit 51314c0) zeroes invalid positions and sorts with an unstable
    descending sort, so a question or pad position (weight 0) may take a slot among the first
    n_valid: that position receives the bucket mean (harmless, its CE is 0) and the valid
    zero-weight token gets 0 instead. See docs/departures.md.
    """
    _check_pair(weights, mask, ndim2=True, first="weights")
    g = validate_group_size("group_size", group_size)
    valid = _valid(mask)
    w = weights.detach().to(_work_dtype(weights))
    B, T = w.shape
    # invalid positions sort last; stable so ties keep their positional order
    key = torch.where(valid, w, torch.full_like(w, -math.inf))
    sorted_w, order = torch.sort(key, dim=1, descending=True, stable=True)
    n = valid.sum(dim=1, keepdim=True)                                   # [B, 1]
    rank = torch.arange(T, device=w.device)
    in_seq = rank.unsqueeze(0) < n                                      # [B, T] valid, in sorted order
    bucket = (rank // g).unsqueeze(0).expand(B, T)                       # bucket id of each rank
    n_buckets = (T + g - 1) // g
    vals = torch.where(in_seq, sorted_w, torch.zeros_like(sorted_w))
    sums = torch.zeros(B, n_buckets, dtype=w.dtype, device=w.device).scatter_add_(1, bucket, vals)
    counts = torch.zeros(B, n_buckets, dtype=w.dtype, device=w.device).scatter_add_(1, bucket, in_seq.to(w.dtype))
    means = sums / counts.clamp(min=1.0)
    sorted_out = torch.where(in_seq, means.gather(1, bucket), torch.zeros_like(sorted_w))
    out = torch.zeros_like(w).scatter_(1, order, sorted_out)             # undo the sort
    return _finish(out, mask, weights.dtype)


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def instance_weights(logp: Float[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"], beta: float,
                     kind: str = "saturation", length_normalised: bool = False) -> Float[Tensor, " batch"]:
    """Sequence weights, [batch, pos] -> [batch].

    Official rule (length_normalised=False): P_i = exp(sum_t logp_it) = prod_t p_it (the sequence
    likelihood); saturation w_i = P_i^beta, importance w_i = (1 - P_i)^beta. For answers of tens of
    tokens P_i is tiny, so instance-SimSat weights collapse to ~0 and instance-SimImp to ~1.
    Ours (length_normalised=True, NOT in the official code): P_i = exp(mean_t logp_it), the geometric
    mean token likelihood, which stays on the same scale as token-level p.
    A sequence with no valid token gets weight 0 (it contributes no loss either way).
    """
    _check_pair(logp, mask, ndim2=True)
    beta = validate_exponent("beta", beta)
    _check_kind(kind)
    valid = _valid(mask)
    lp = torch.where(valid, logp.detach().to(_work_dtype(logp)), torch.zeros((), dtype=_work_dtype(logp), device=logp.device))
    n = valid.sum(dim=1)
    log_P = lp.sum(dim=1)
    if length_normalised:
        log_P = log_P / n.clamp(min=1).to(lp.dtype)
    P = log_P.exp().clamp(max=1.0)
    w = P.pow(beta) if kind == "saturation" else (1.0 - P).pow(beta)
    w = torch.where(n > 0, w, torch.zeros_like(w))
    return w.to(logp.dtype).detach()


def batch_weights(logp: Float[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"], beta: float,
                  kind: str = "saturation", length_normalised: bool = False) -> Float[Tensor, ""]:
    """One weight for the whole micro-batch, [batch, pos] -> scalar: W = mean_i instance_weights_i.

    Official rule (with the official P_i = prod_t p_it). The mean runs over sequences with at least one
    valid token (in the official data every row has one, so this is its (1/B) sum).
    """
    w = instance_weights(logp, mask, beta, kind=kind, length_normalised=length_normalised)
    nonempty = _valid(mask).any(dim=1)
    if not bool(nonempty.any()):
        return torch.zeros((), dtype=logp.dtype, device=logp.device)
    return w[nonempty].mean().detach()


def broadcast_to_tokens(seq_weights: Float[Tensor, " batch"] | float,
                        mask: Shaped[Tensor, "batch pos"]) -> Float[Tensor, "batch pos"]:
    """[batch] (or a scalar) -> [batch, pos]: the sequence weight on each of its valid tokens, 0 elsewhere."""
    if not isinstance(seq_weights, torch.Tensor):
        seq_weights = torch.as_tensor(seq_weights, dtype=torch.get_default_dtype())
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2:
        raise ValueError("mask must be a 2-D [batch, pos] tensor")
    if seq_weights.dim() == 0:
        seq_weights = seq_weights.expand(mask.shape[0])
    if seq_weights.shape != (mask.shape[0],):
        raise ValueError(f"seq_weights shape {tuple(seq_weights.shape)} does not match batch size {mask.shape[0]}")
    dtype = seq_weights.dtype if seq_weights.is_floating_point() else torch.get_default_dtype()
    w = seq_weights.detach().to(dtype).unsqueeze(1).expand(mask.shape)
    return _finish(w, mask, dtype)


# -----------------------------------------------------------------------------
# selection and annotation weights (docs/methods.md#hard-sampling, docs/methods.md#annotation-weighting)

def hard_sample(logp: Float[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"], k: float,
                mode: str = "top", soft: float = 1.0,
                generator: torch.Generator | None = None) -> Float[Tensor, "batch pos"]:
    """Hard token selection as weights, [batch, pos] -> [batch, pos] (the official `*_topk/bottomk/rand`).

    Per sequence: CE = -logp, tau = quantile(valid CE, 1 - k) with linear interpolation (torch.quantile).
      top     selects CE > tau: the ~k fraction of highest-CE (lowest-likelihood) tokens.
      bottom  selects CE < tau with the SAME tau: the ~(1 - k) fraction of lowest-CE tokens. This is
              the official rule (not "the k lowest"); a token sitting exactly on tau is in neither.
      random  selects floor(k * n_valid) valid tokens uniformly at random (pass a seeded
              torch.Generator for determinism).
    Selected valid tokens get `soft`, the other valid tokens get 1 - soft (soft = 1: a 0/1 mask).
    Fractional soft values are honoured; the official code stored the mask as int and so truncated
    e.g. soft = 0.3 to 0. Validity comes from the mask (the official code used CE > 0).

    Departure (random, floor(k * n_valid) = 0, i.e. a sequence shorter than 1/k tokens): no token
    is selected, so every valid token gets 1 - soft (0 for the default soft = 1: the sequence is
    dropped). The official ``*_rand`` branches of ``dataloader/dataloader_hardsampling.py``
    (tmlr-group/SatImp, commit 51314c0) skip the assignment when nothing is selected and leave
    every valid token at weight 1 (plain GA on that sequence). Kept on purpose: "a random k
    fraction" of a short sequence is then consistently the empty set, for every soft value. See
    docs/departures.md.
    """
    _check_pair(logp, mask, ndim2=True)
    k = validate_fraction("k", k)
    soft = validate_unit_interval("soft", soft)
    if mode not in HARD_MODES:
        raise ValueError(f"mode must be one of {HARD_MODES}, got {mode!r}")
    valid = _valid(mask)
    dt = _work_dtype(logp)
    ce = (-logp.detach()).to(dt)
    if mode == "random":
        n = valid.sum(dim=1)
        # floor in float64, like the official int(k * n) on Python floats
        m = torch.floor(torch.tensor(k, dtype=torch.float64) * n.to(torch.float64).cpu()).to(torch.long).to(logp.device)
        dev = generator.device if generator is not None else logp.device
        keys = torch.rand(logp.shape, generator=generator, device=dev, dtype=torch.float64).to(logp.device)
        keys = torch.where(valid, keys, torch.full_like(keys, 2.0))     # invalid tokens rank last
        order = keys.argsort(dim=1)
        rank = torch.empty_like(order).scatter_(1, order, torch.arange(logp.shape[1], device=logp.device).expand_as(order))
        selected = rank < m.unsqueeze(1)
    else:
        # nanquantile over NaN-padded rows == torch.quantile over each row's valid CE
        tau = torch.nanquantile(torch.where(valid, ce, torch.full_like(ce, math.nan)), 1.0 - k, dim=1, keepdim=True)
        selected = ce > tau if mode == "top" else ce < tau
    w = torch.where(selected, torch.full_like(ce, soft), torch.full_like(ce, 1.0 - soft))
    return _finish(w, mask, logp.dtype)


def annotated(key_mask: Shaped[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"],
              p_imp: float = 1.0) -> Float[Tensor, "batch pos"]:
    """Annotation-based importance, [batch, pos] -> [batch, pos]: key tokens p_imp, other valid 1 - p_imp.

    p_imp = 1 trains only on annotated key tokens (the official `att_` hard mask); p_imp = 0.5 is
    uniform (GA up to a factor 1/2). The soft rule is our reading of the unreleased official builder
    (docs/methods.md#annotation-weighting): the same s / 1 - s scheme as the random hard-sampling
    control.
    Returns the default float dtype.
    """
    if not isinstance(key_mask, torch.Tensor):
        raise ValueError(f"key_mask must be a tensor, got {type(key_mask).__name__}")
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"mask must be a tensor, got {type(mask).__name__}")
    if key_mask.shape != mask.shape:
        raise ValueError(f"key_mask shape {tuple(key_mask.shape)} does not match mask shape {tuple(mask.shape)}")
    p_imp = validate_unit_interval("p_imp", p_imp)
    dtype = torch.get_default_dtype()
    w = torch.where(_valid(key_mask), torch.full(mask.shape, p_imp, dtype=dtype, device=mask.device),
                    torch.full(mask.shape, 1.0 - p_imp, dtype=dtype, device=mask.device))
    return _finish(w, mask, dtype)


# -----------------------------------------------------------------------------
# implicit weights of the preference-style objectives (docs/methods.md#implicit-weights)
#
# Convention for both: the returned u_t are the per-token weights with
#     grad(loss) = -(1/B) * sum_{i,t} u_it * grad(CE_it)            (B = sequences in the micro-batch)
# i.e. the loss has the gradient of the sequence-mean weighted GA  -(1/B) sum_i sum_t sg[u_it] CE_it.
# To compare with the token-mean methods (-(1/N) sum w_t grad CE_t) multiply by N/B.

def npo_implicit_weights(logp: Float[Tensor, "batch pos"], ref_logp: Float[Tensor, "batch pos"],
                         mask: Shaped[Tensor, "batch pos"], beta: float) -> Float[Tensor, "batch pos"]:
    """NPO's implicit weight on each token, [batch, pos] -> [batch, pos]:  u_it = w_i = 2 sigma(-beta (L_i - L_i^ref)).

    L_i = -sum_t logp_it is the SUMMED NLL under the model, L_i^ref under the reference. For the
    official loss  -(2/beta) (1/B) sum_i log sigma(beta (L_i - L_i^ref)):
        d loss / d L_i = -w_i / B,   so  grad loss = -(1/B) sum_i w_i grad L_i = -(1/B) sum_{i,t} w_i grad CE_it.
    w_i = 2 pi^beta / (pi^beta + pi_ref^beta): a sequence-level saturation weight, 1 at the start
    (pi = pi_ref), -> 0 as the model forgets, -> 1 (GA) as beta -> 0.
    """
    _check_pair(logp, mask, ndim2=True)
    _check_pair(ref_logp, mask, name="ref_logp")
    beta = validate_exponent("beta", beta)
    valid = _valid(mask)
    dt = _work_dtype(logp)
    zero = torch.zeros((), dtype=dt, device=logp.device)
    L = -torch.where(valid, logp.detach().to(dt), zero).sum(dim=1)
    L_ref = -torch.where(valid, ref_logp.detach().to(dt), zero).sum(dim=1)
    w = 2.0 * torch.sigmoid(-beta * (L - L_ref))
    return broadcast_to_tokens(w.to(logp.dtype), mask)


def simnpo_implicit_weights(logp: Float[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"], beta: float,
                            gamma: float = 0.0) -> Float[Tensor, "batch pos"]:
    """SimNPO's implicit weight on each token, [batch, pos] -> [batch, pos]:  u_it = w_i / n_i.

    w_i = 2 sigma(-beta (lbar_i - gamma)), lbar_i = L_i / n_i the mean token NLL of sequence i.
    Sign: the official loss is  -(2/beta) (1/B) sum_i log sigma(beta (lbar_i - gamma))  written with the
    NLL lbar, so minimising it INCREASES lbar (unlearning) - the same sign as NPO with L - L_ref.
        d loss / d lbar_i = -w_i / B,  so  grad loss = -(1/B) sum_i w_i grad lbar_i = -(1/B) sum_{i,t} (w_i / n_i) grad CE_it.
    With gamma = 0, w_i = 2 pbar_i^beta / (1 + pbar_i^beta), pbar_i = exp(-lbar_i) (geometric-mean
    likelihood). Note gamma sits inside beta (.) as in the official code; the SimNPO paper writes
    sigma(beta lbar - gamma) - the two agree at the default gamma = 0. n_i counts the valid
    (shifted) label positions, as :func:`satimp_lab.unlearning.objectives.simnpo_loss` does (a departure
    when the first label is valid: see there and docs/departures.md).
    """
    _check_pair(logp, mask, ndim2=True)
    beta = validate_exponent("beta", beta)
    gamma = validate_real("gamma", gamma)
    valid = _valid(mask)
    dt = _work_dtype(logp)
    n = valid.sum(dim=1).clamp(min=1).to(dt)
    lbar = -torch.where(valid, logp.detach().to(dt), torch.zeros((), dtype=dt, device=logp.device)).sum(dim=1) / n
    w = 2.0 * torch.sigmoid(-beta * (lbar - gamma))
    return broadcast_to_tokens((w / n).to(logp.dtype), mask)


# -----------------------------------------------------------------------------

def compose(*weights: Float[Tensor, "batch pos"]) -> Float[Tensor, "batch pos"]:
    """Elementwise product of weight tensors of one shape (e.g. annotated x satimp), detached.

    Zeros at masked positions survive the product, so the result is still 0 off the mask.
    """
    if not weights:
        raise ValueError("weights: compose needs at least one weight tensor")
    shape = weights[0].shape
    out = weights[0].detach()
    for i, w in enumerate(weights[1:], start=1):
        if w.shape != shape:
            raise ValueError(f"weights[{i}] shape {tuple(w.shape)} does not match weights[0] shape {tuple(shape)}")
        out = out * w.detach()
    return out.detach()
