"""Forget and retain loss terms, and the registry of unlearning methods.

Every loss takes per-token log-likelihoods `logp` [batch, pos] of the shifted labels and a `mask`
[batch, pos] of valid answer tokens (see weighting.py). CE_t = -logp_t, N = number of valid tokens in
the micro-batch, B = number of sequences, L_i = sum_t CE_it (summed NLL), lbar_i = L_i / n_i.

Reductions (docs/methods.md#notation-and-reductions):
  token-mean    F = -(1/N) sum_t w_t CE_t = (1/N) sum_t w_t logp_t    GA, weighted GA, group, hard, annotated
  sequence-mean F = -(1/B) sum_i w_i L_i                               instance / batch (official), NPO, SimNPO
The official code used raw sums for hard sampling and annotation losses; we use the token mean so
learning rates are comparable across methods (a sum is the token mean times N).

A method's total loss is  forget_weight * F + retain_weight * R,  with R none, retain NLL (GD) or
KL to the reference model. Minimising F pushes the forget likelihood DOWN (it is minus a likelihood).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F_
from jaxtyping import Float, Shaped
from torch import Tensor

from . import weighting as W
from ..errors import InputError
from .params import FORGET_PARAMS, LOSS_WEIGHTS, PARAMS, WEIGHTING_PARAMS, validate_param

__all__ = [
    "weighted_ga_loss",
    "instance_ga_loss",
    "npo_loss",
    "simnpo_loss",
    "retain_nll_loss",
    "kl_to_reference",
    "ForgetTerm",
    "Method",
    "get_method",
    "list_methods",
    "METHODS",
    "ALIASES",
]


# -----------------------------------------------------------------------------
# loss terms

def _masked_logp(logp: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logp with masked positions set to an exact 0 (they may hold -inf/NaN garbage), and the bool mask."""
    W._check_pair(logp, mask, ndim2=True)
    valid = W._valid(mask)
    return torch.where(valid, logp, torch.zeros((), dtype=logp.dtype, device=logp.device)), valid


def weighted_ga_loss(logp: Float[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"],
                     weights: Float[Tensor, "batch pos"] | None = None) -> Float[Tensor, ""]:
    """Token-mean (weighted) gradient ascent, [batch, pos] -> scalar:  F = (1/N) sum_t w_t logp_t.

    weights None is plain GA (w = 1). N counts all valid tokens of the micro-batch, so long sequences
    count more: this is not a mean of per-sequence means. Weights are detached here too, so
    grad F = -(1/N) sum_t w_t grad CE_t.
    """
    lp, valid = _masked_logp(logp, mask)
    if weights is not None:
        if weights.shape != logp.shape:
            raise ValueError(f"weights shape {tuple(weights.shape)} does not match logp shape {tuple(logp.shape)}")
        w = torch.where(valid, weights.detach().to(logp.dtype), torch.zeros((), dtype=logp.dtype, device=logp.device))
        lp = w * lp
    n = valid.sum().clamp(min=1)
    return lp.sum() / n


def instance_ga_loss(logp: Float[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"],
                     seq_weights: Float[Tensor, " batch"] | float) -> Float[Tensor, ""]:
    """Sequence-mean weighted GA on summed NLL (official instance/batch rule), -> scalar:
    F = -(1/B) sum_i w_i L_i = (1/B) sum_i w_i sum_t logp_it.   seq_weights: [batch] or a scalar.
    """
    lp, _ = _masked_logp(logp, mask)
    w = torch.as_tensor(seq_weights, dtype=logp.dtype, device=logp.device).detach()
    if w.dim() == 0:
        w = w.expand(logp.shape[0])
    if w.shape != (logp.shape[0],):
        raise ValueError(f"seq_weights shape {tuple(w.shape)} does not match batch size {logp.shape[0]}")
    return (w * lp.sum(dim=1)).mean()


def npo_loss(logp: Float[Tensor, "batch pos"], ref_logp: Float[Tensor, "batch pos"],
             mask: Shaped[Tensor, "batch pos"], beta: float) -> Float[Tensor, ""]:
    """NPO (official `npo`), -> scalar:  -(2/beta) (1/B) sum_i log sigma(beta (L_i - L_i^ref)).

    L_i, L_i^ref are SUMMED NLLs under the model and the frozen reference (ref_logp is detached).
    -log sigma is decreasing, so minimising the loss increases L_i - L_i^ref: the forget NLL goes up.
    Gradient: -(1/B) sum_i w_i grad L_i with w_i = 2 sigma(-beta (L_i - L_i^ref)) (weighting.npo_implicit_weights).
    """
    beta = validate_param("npo_beta", beta)
    lp, valid = _masked_logp(logp, mask)
    W._check_pair(ref_logp, mask, name="ref_logp")
    ref = torch.where(valid, ref_logp.detach().to(logp.dtype), torch.zeros((), dtype=logp.dtype, device=logp.device))
    L, L_ref = -lp.sum(dim=1), -ref.sum(dim=1)
    return -(2.0 / beta) * F_.logsigmoid(beta * (L - L_ref)).mean()


def simnpo_loss(logp: Float[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"], beta: float,
                gamma: float = 0.0) -> Float[Tensor, ""]:
    """SimNPO (official `simnpo`), -> scalar:  -(2/beta) (1/B) sum_i log sigma(beta (lbar_i - gamma)).

    lbar_i = mean token NLL of sequence i; reference-free. Written with the NLL, so minimising raises
    lbar_i (unlearning). gamma sits inside beta (.), as in the official code (the paper: beta lbar - gamma).
    Gradient: -(1/B) sum_i w_i grad lbar_i, w_i = 2 sigma(-beta (lbar_i - gamma)) (weighting.simnpo_implicit_weights).

    Departure (length count): lbar_i = L_i / n_i with n_i the number of valid *shifted* label
    positions, the tokens L_i sums over. The official ``simnpo`` branch
    (``dataloader/dataloader_base.py``, tmlr-group/SatImp, commit 51314c0) divides by
    ``(labels != -100).sum(-1)`` on the *unshifted* labels, which counts the first label too. On
    TOFU-style data (the first label is part of the question, -100) the two agree; on MUSE-style
    data, where every token is a label, the official n_i is one more than the tokens scored. See
    docs/departures.md.
    """
    beta = validate_param("npo_beta", beta)
    gamma = validate_param("gamma", gamma)
    lp, valid = _masked_logp(logp, mask)
    lbar = -lp.sum(dim=1) / valid.sum(dim=1).clamp(min=1).to(logp.dtype)
    return -(2.0 / beta) * F_.logsigmoid(beta * (lbar - gamma)).mean()


def retain_nll_loss(logp: Float[Tensor, "batch pos"],
                    mask: Shaped[Tensor, "batch pos"]) -> Float[Tensor, ""]:
    """Retain NLL (GD's retain term), token mean over valid tokens: R = -(1/N) sum_t logp_t."""
    return -weighted_ga_loss(logp, mask)


def kl_to_reference(logits: Float[Tensor, "batch pos vocab"], ref_logits: Float[Tensor, "batch pos vocab"],
                    mask: Shaped[Tensor, "batch pos"]) -> Float[Tensor, ""]:
    """KL(pi_ref || pi_theta) summed over the vocabulary, averaged over valid positions, -> scalar.

    logits, ref_logits: [batch, pos, vocab], aligned with logp positions; ref_logits are detached.
    Departure: the official code (F.kl_div(..., 'batchmean')) averages over ALL batch*seq positions,
    question and padding included, so its value shrinks with the padding fraction; we average over the
    valid answer positions given by mask.

    Precision: computed in float32 for float32, float16 and bfloat16 logits (the official ``KL``
    branch of ``dataloader/dataloader_base.py``, tmlr-group/SatImp commit 51314c0, works in the
    logits' own dtype, bf16 in its runs) and in float64 for float64 logits; the result has the
    logits' dtype. See docs/departures.md.
    """
    if logits.shape != ref_logits.shape:
        raise ValueError(f"ref_logits shape {tuple(ref_logits.shape)} does not match logits shape {tuple(logits.shape)}")
    if logits.dim() != 3 or mask.shape != logits.shape[:2]:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match logits [batch, pos] {tuple(logits.shape[:2])}")
    valid = W._valid(mask)
    work = W._work_dtype(logits)
    logq = torch.log_softmax(logits.to(work), dim=-1)
    logr = torch.log_softmax(ref_logits.detach().to(work), dim=-1)
    kl = (logr.exp() * (logr - logq)).sum(dim=-1)                        # [batch, pos]
    kl = torch.where(valid, kl, torch.zeros((), dtype=kl.dtype, device=kl.device))
    return (kl.sum() / valid.sum().clamp(min=1)).to(logits.dtype)


# -----------------------------------------------------------------------------
# methods

FORGETS = ("ga", "weighted_ga", "instance", "batch", "npo", "simnpo")
WEIGHTINGS = (None, "saturation", "importance", "satimp", "annotated", "annotated_satimp",
              "hard_top", "hard_bottom", "hard_random")
GRANULARITIES = ("token", "group", "instance", "instance_norm", "batch")
RETAINS = ("none", "nll", "kl")

# forget kind -> the granularities it can run at
_FORGET_GRANULARITY = {
    "ga": ("token",),
    "weighted_ga": ("token", "group"),
    "instance": ("instance", "instance_norm"),
    "batch": ("batch",),
    "npo": ("instance",),            # sequence-level on summed NLL
    "simnpo": ("instance_norm",),    # sequence-level on length-normalised NLL
}


def _required_params(forget: str, weighting: str | None, granularity: str) -> tuple[str, ...]:
    """The hyper-parameters a method reads, in order: its weighting rule's and its forget loss's
    (params.WEIGHTING_PARAMS, params.FORGET_PARAMS), then ``group_size`` at group granularity."""
    keys = list(WEIGHTING_PARAMS[weighting]) + list(FORGET_PARAMS.get(forget, ()))
    if granularity == "group":
        keys.append("group_size")
    return tuple(keys)


@dataclass(frozen=True)
class ForgetTerm:
    """The forget loss of one micro-batch and the per-token weights that produced it.

    weights are the u_t with  grad(loss) = -(1/R) sum_t u_t grad CE_t,  R = N (valid tokens) when
    reduction == "token" and R = B (sequences) when reduction == "sequence". For token methods they are
    the token weights (all ones for GA), for instance/batch methods the sequence/batch weight on every
    token, for NPO/SimNPO their implicit weights (weighting.npo_implicit_weights / simnpo_...).
    """
    loss: Float[Tensor, ""]               # scalar, carries the graph of logp
    weights: Float[Tensor, "batch pos"]   # [batch, pos], detached, 0 off the mask
    reduction: str = "token"  # "token" (1/N) or "sequence" (1/B): how to read `weights`


@dataclass(frozen=True)
class Method:
    """One unlearning method: forget term x weighting x granularity (+ retain term)."""
    name: str                                    # registry key, e.g. "satimp_gd"
    description: str                             # one line, for tables and list_methods()
    forget: str                                  # loss family: one of FORGETS
    weighting: str | None = None                 # token weight rule: one of WEIGHTINGS (None = uniform)
    granularity: str = "token"                   # where the weight lives: one of GRANULARITIES
    params: dict = field(default_factory=dict)   # hyper-parameters the pieces above read (and only those; params.PARAMS)
    retain: str = "none"                         # retain term: "none", "nll" (GD) or "kl" (to the reference)
    forget_weight: float = 1.0                   # multiplies the forget term F
    retain_weight: float = 1.0                   # multiplies the retain term R (unused when retain == "none")

    def __post_init__(self):
        if self.forget not in FORGETS:
            raise ValueError(f"forget must be one of {FORGETS}, got {self.forget!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {self.granularity!r}")
        if self.retain not in RETAINS:
            raise ValueError(f"retain must be one of {RETAINS}, got {self.retain!r}")
        if self.granularity not in _FORGET_GRANULARITY[self.forget]:
            raise ValueError(f"granularity {self.granularity!r} does not fit forget {self.forget!r} "
                             f"(allowed: {_FORGET_GRANULARITY[self.forget]})")
        if self.forget in ("ga", "npo", "simnpo") and self.weighting is not None:
            raise ValueError(f"weighting must be None for forget {self.forget!r}, got {self.weighting!r}")
        if self.forget == "weighted_ga" and self.weighting is None:
            raise ValueError("weighting must be set for forget 'weighted_ga' (use forget='ga' for uniform)")
        if self.forget in ("instance", "batch") and self.weighting not in ("saturation", "importance"):
            raise ValueError(f"weighting must be 'saturation' or 'importance' for forget {self.forget!r}, "
                             f"got {self.weighting!r}")
        needed = set(self.required_params())
        missing = needed - set(self.params)
        extra = set(self.params) - needed
        if missing:
            raise ValueError(f"params of method {self.name!r} lack {sorted(missing)}")
        if extra:
            raise ValueError(f"params of method {self.name!r} have unused keys {sorted(extra)}")
        for key, value in self.params.items():
            PARAMS[key].validate(value, owner=f"method {self.name!r}")
        for key in LOSS_WEIGHTS:
            PARAMS[key].validate(getattr(self, key), owner=f"method {self.name!r}")

    def __hash__(self):  # params is a dict; hash its sorted items so Methods can key caches
        return hash((self.name, self.forget, self.weighting, self.granularity,
                     tuple(sorted(self.params.items())), self.retain, self.forget_weight, self.retain_weight))

    def required_params(self) -> tuple[str, ...]:
        """The keys ``params`` must hold (see :func:`_required_params`)."""
        return _required_params(self.forget, self.weighting, self.granularity)

    @property
    def needs_reference_logprobs(self) -> bool:
        """True when the forget term reads the reference model's per-token log-likelihoods of each
        forget micro-batch (``ref_logp`` of :meth:`forget_term`: NPO); the loop runs that
        reference forward pass only then."""
        return self.forget == "npo"

    @property
    def needs_reference_distribution(self) -> bool:
        """True when the retain term compares the model's next-token distribution with the
        reference model's on each retain micro-batch (``logits`` and ``ref_logits`` of
        :meth:`retain_term`: the KL retain term); the loop keeps both logits only then."""
        return self.retain == "kl"

    @property
    def needs_retain_batch(self) -> bool:
        """True when the method has a retain term (a retain micro-batch is drawn per forget one)."""
        return self.retain != "none"

    @property
    def needs_reference(self) -> bool:
        """True when a frozen reference model is needed: either reference pass above."""
        return self.needs_reference_logprobs or self.needs_reference_distribution

    @property
    def needs_key_mask(self) -> bool:
        return self.weighting in ("annotated", "annotated_satimp")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # -- the forget term ------------------------------------------------------------------------

    def token_weights(self, logp: Float[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"],
                      key_mask: Shaped[Tensor, "batch pos"] | None = None,
                      generator=None) -> Float[Tensor, "batch pos"]:
        """Token-level weights [batch, pos] of the weighting rule (before any granularity transform)."""
        P, kind = self.params, self.weighting
        if kind is None:
            return W.broadcast_to_tokens(torch.ones(logp.shape[0], dtype=logp.dtype, device=logp.device), mask)
        if kind == "saturation":
            return W.saturation(logp, mask, P["beta_sat"])
        if kind == "importance":
            return W.importance(logp, mask, P["beta_imp"])
        if kind == "satimp":
            return W.satimp(logp, mask, P["beta_sat"], P["beta_imp"])
        if kind.startswith("hard_"):
            return W.hard_sample(logp, mask, P["k"], mode=kind[len("hard_"):], soft=P["soft"], generator=generator)
        if key_mask is None:
            raise ValueError(f"method {self.name!r} needs key_mask (the annotated key-token mask)")
        w = W.annotated(key_mask, mask, P["p_imp"]).to(logp.dtype)
        if kind == "annotated_satimp":
            w = W.compose(w, W.satimp(logp, mask, P["beta_sat"], P["beta_imp"]))
        return w

    def forget_term(self, logp: Float[Tensor, "batch pos"], mask: Shaped[Tensor, "batch pos"],
                    key_mask: Shaped[Tensor, "batch pos"] | None = None,
                    ref_logp: Float[Tensor, "batch pos"] | None = None,
                    generator: torch.Generator | None = None) -> ForgetTerm:
        """Unscaled forget loss F (multiply by forget_weight yourself, or use total_loss) and its weights.

        logp, mask, key_mask, ref_logp: [batch, pos]. key_mask is required by annotated methods,
        ref_logp (the reference model's logp) by NPO; generator seeds hard_random.
        """
        W._check_pair(logp, mask, ndim2=True)
        P = self.params
        if self.forget == "npo":
            if ref_logp is None:
                raise ValueError(f"method {self.name!r} needs ref_logp (reference-model log-likelihoods)")
            return ForgetTerm(npo_loss(logp, ref_logp, mask, P["npo_beta"]),
                              W.npo_implicit_weights(logp, ref_logp, mask, P["npo_beta"]), "sequence")
        if self.forget == "simnpo":
            return ForgetTerm(simnpo_loss(logp, mask, P["npo_beta"], P["gamma"]),
                              W.simnpo_implicit_weights(logp, mask, P["npo_beta"], P["gamma"]), "sequence")
        if self.forget in ("instance", "batch"):
            kind = self.weighting
            assert kind is not None  # __post_init__: instance/batch methods weight by saturation or importance
            beta = P["beta_sat"] if kind == "saturation" else P["beta_imp"]
            if self.forget == "batch":
                seq_w = W.batch_weights(logp, mask, beta, kind=kind)
            else:
                seq_w = W.instance_weights(logp, mask, beta, kind=kind,
                                           length_normalised=self.granularity == "instance_norm")
            w = W.broadcast_to_tokens(seq_w.to(logp.dtype), mask)
            if self.granularity == "instance_norm":   # ours: token-mean loss, comparable with token methods
                return ForgetTerm(weighted_ga_loss(logp, mask, w), w, "token")
            return ForgetTerm(instance_ga_loss(logp, mask, seq_w), w, "sequence")
        w = self.token_weights(logp, mask, key_mask=key_mask, generator=generator)
        if self.granularity == "group":
            w = W.group_average(w, mask, P["group_size"])
        return ForgetTerm(weighted_ga_loss(logp, mask, None if self.forget == "ga" else w), w, "token")

    # -- the retain term and the total ----------------------------------------------------------

    def retain_term(self, logp: Float[Tensor, "batch pos"] | None = None,
                    mask: Shaped[Tensor, "batch pos"] | None = None,
                    logits: Float[Tensor, "batch pos vocab"] | None = None,
                    ref_logits: Float[Tensor, "batch pos vocab"] | None = None) -> Float[Tensor, ""] | None:
        """Unscaled retain loss R on a retain micro-batch: None ("none"), token-mean NLL ("nll", needs
        logp and mask) or KL(pi_ref || pi_theta) over valid positions ("kl", needs logits, ref_logits, mask)."""
        if self.retain == "none":
            return None
        if self.retain == "nll":
            if logp is None or mask is None:
                raise ValueError(f"method {self.name!r} needs retain logp and mask for its NLL retain term")
            return retain_nll_loss(logp, mask)
        if logits is None or ref_logits is None or mask is None:
            raise ValueError(f"method {self.name!r} needs retain logits, ref_logits and mask for its KL retain term")
        return kl_to_reference(logits, ref_logits, mask)

    def total_loss(self, forget_loss: Float[Tensor, ""],
                   retain_loss: Float[Tensor, ""] | None = None) -> Float[Tensor, ""]:
        """forget_weight * F + retain_weight * R; retain_loss is required unless retain == "none"."""
        if self.retain == "none":
            return self.forget_weight * forget_loss
        if retain_loss is None:
            raise ValueError(f"method {self.name!r} has retain={self.retain!r}: retain_loss is required")
        return self.forget_weight * forget_loss + self.retain_weight * retain_loss


# -----------------------------------------------------------------------------
# the registry
#
# Defaults and where they come from (docs/methods.md#retain-terms-and-defaults and
# docs/departures.md#by-design):
#   simsat / wga   beta_sat = 1.0  (OU's WGA default; the official `simsat_ga` uses p^1. The official
#                                   `forget_sat.yaml` beta is 0.2 and G-effect's WGA 5.0.)
#   simimp         beta_imp = 1.0  (the official YAML default is 0.2; we use 1.0 so that SimSat and
#                                   SimImp are compared at equal beta)
#   satimp         beta_sat = 5.0, beta_imp = 0.1, forget-only  (README's recommended run)
#   group          group_size = 4; instance/batch beta 1.0
#   hard           k: top 0.15, bottom 0.5, random 0.5 (soft 1.0)  (official defaults)
#   npo            npo_beta = 0.1  (NPO paper and OU; the official config's 2.5 is shared with SimNPO
#                                   and on SUMMED NLL makes w_i = 0.15 after a 1-nat change)
#   simnpo         npo_beta = 2.5, gamma = 0.0  (official TOFU setting = SimNPO's published one)
#   *_gd           retain NLL, forget_weight 1.0, retain_weight 1.0 (the official coefficients differ
#                  per branch, docs/methods.md#retain-terms-and-defaults); npo_gd / simnpo_gd use the
#                  official npo_coeff 0.1375 on F.
# Single-exponent methods store their exponent as beta_sat (saturation) or beta_imp (importance), so
# the key always says which factor it belongs to; get_method accepts `beta` as a shorthand for them.


def _m(name, description, forget, weighting=None, granularity="token", retain="none",
       forget_weight=None, retain_weight=None, **differs) -> Method:
    """A registry Method: every parameter it reads at its declared default (params.PARAMS) unless
    ``differs`` gives the method's own value."""
    params = {key: differs.pop(key, PARAMS[key].default) for key in _required_params(forget, weighting, granularity)}
    params.update(differs)    # a key the method does not read: Method refuses it
    return Method(name=name, description=description, forget=forget, weighting=weighting,
                  granularity=granularity, params=params, retain=retain,
                  forget_weight=PARAMS["forget_weight"].default if forget_weight is None else forget_weight,
                  retain_weight=PARAMS["retain_weight"].default if retain_weight is None else retain_weight)


def _build_registry() -> dict[str, Method]:
    # every parameter a method reads defaults to its declaration (params.PARAMS); the keywords
    # below are where a method differs from it
    base = [
        _m("ga", "gradient ascent on forget tokens (uniform weights, token mean)", "ga"),
        _m("gd", "gradient difference: GA + retain NLL", "ga", retain="nll"),
        _m("ga_kl", "GA + KL(ref || model) on retain data", "ga", retain="kl"),
        _m("npo", "NPO on summed sequence NLL vs the reference model", "npo", granularity="instance"),
        _m("npo_gd", "NPO x npo_coeff + retain NLL", "npo", granularity="instance", retain="nll",
           forget_weight=0.1375),
        _m("simnpo", "SimNPO: reference-free NPO on mean token NLL", "simnpo", granularity="instance_norm",
           npo_beta=2.5),
        _m("simnpo_gd", "SimNPO x npo_coeff + retain NLL", "simnpo", granularity="instance_norm", retain="nll",
           forget_weight=0.1375, npo_beta=2.5),
    ]
    weighted = [
        _m("simsat", "SimSat = WGA: token weight p^beta_sat", "weighted_ga", "saturation"),
        _m("simimp", "SimImp: token weight (1-p)^beta_imp", "weighted_ga", "importance"),
        _m("satimp", "SatImp: token weight p^beta_sat (1-p)^beta_imp", "weighted_ga", "satimp",
           beta_sat=5.0, beta_imp=0.1),
        _m("annotated", "annotated key tokens weight p_imp, other answer tokens 1-p_imp", "weighted_ga",
           "annotated"),
        _m("annotated_satimp", "annotation weight x SatImp weight", "weighted_ga", "annotated_satimp",
           beta_sat=5.0, beta_imp=0.1),
        _m("hard_top", "GA on the top-k highest-CE (lowest-p) tokens per sequence", "weighted_ga", "hard_top",
           k=0.15),
        _m("hard_bottom", "GA on tokens below the (1-k) CE quantile: the ~(1-k) lowest-CE tokens", "weighted_ga",
           "hard_bottom"),
        _m("hard_random", "GA on floor(k n) random tokens per sequence (control)", "weighted_ga", "hard_random"),
        _m("group_simsat", "SimSat weights averaged in rank buckets of group_size", "weighted_ga", "saturation",
           "group"),
        _m("group_simimp", "SimImp weights averaged in rank buckets of group_size", "weighted_ga", "importance",
           "group"),
        _m("instance_simsat", "sequence weight P^beta_sat, P = prod p (official), loss on summed NLL", "instance",
           "saturation", "instance"),
        _m("instance_simimp", "sequence weight (1-P)^beta_imp, P = prod p (official), loss on summed NLL",
           "instance", "importance", "instance"),
        _m("instance_norm_simsat", "ours: sequence weight Pbar^beta_sat, Pbar = geometric-mean p, token-mean loss",
           "instance", "saturation", "instance_norm"),
        _m("instance_norm_simimp", "ours: sequence weight (1-Pbar)^beta_imp, Pbar = geometric-mean p, token-mean loss",
           "instance", "importance", "instance_norm"),
        _m("batch_simsat", "one weight per micro-batch: mean_i P_i^beta_sat, loss on summed NLL", "batch",
           "saturation", "batch"),
        _m("batch_simimp", "one weight per micro-batch: mean_i (1-P_i)^beta_imp, loss on summed NLL", "batch",
           "importance", "batch"),
    ]
    reg = {m.name: m for m in base + weighted}
    for m in weighted:   # the GD variant of every weighted method: + retain NLL, 1:1
        reg[m.name + "_gd"] = dataclasses.replace(m, name=m.name + "_gd", description=m.description + " + retain NLL",
                                                  retain="nll")
    return reg


METHODS: dict[str, Method] = _build_registry()
ALIASES: dict[str, str] = {"wga": "simsat", "wga_gd": "simsat_gd"}


def _fmt(m: Method) -> str:
    parts = [f"{k}={v}" for k, v in m.params.items()]
    if m.retain != "none":
        parts.append(f"retain={m.retain}")
        parts.append(f"loss={m.forget_weight}*F+{m.retain_weight}*R")
    elif m.forget_weight != 1.0:
        parts.append(f"forget_weight={m.forget_weight}")
    return ", ".join(parts)


def list_methods() -> dict[str, str]:
    """name -> one-line description with the default hyper-parameters (aliases included)."""
    out = {}
    for name, m in METHODS.items():
        extra = _fmt(m)
        out[name] = m.description + (f" [{extra}]" if extra else "")
    for alias, target in ALIASES.items():
        out[alias] = f"alias of {target}: {out[target]}"
    return out


def get_method(name: str, **overrides) -> Method:
    """The registered Method `name` (aliases: wga -> simsat), with overrides applied and validated.

    Overrides may replace any of the method's own params (e.g. beta_sat, k, group_size, npo_beta),
    forget_weight, retain_weight or retain. `beta` is a shorthand for the single exponent of
    simsat/simimp-type methods (beta_sat or beta_imp); it is refused where it would be ambiguous.
    Unknown names and keys raise InputError naming them; a value outside the range its declaration
    allows (satimp_lab.unlearning.params.PARAMS) raises InputError naming the method, the parameter and the value.
    """
    canonical = ALIASES.get(name, name)
    if canonical not in METHODS:
        raise InputError(f"unknown method {name!r}; valid names: {sorted(list(METHODS) + list(ALIASES))}")
    m = METHODS[canonical]
    params = dict(m.params)
    fields = {}
    valid_keys = sorted(list(params) + ["forget_weight", "retain_weight", "retain"])
    for key, value in overrides.items():
        if key == "beta":
            exps = [k for k in ("beta_sat", "beta_imp") if k in params]
            if len(exps) != 1:
                raise InputError(f"override 'beta' is ambiguous or unused for method {name!r}; "
                                 f"valid keys: {valid_keys}")
            key = exps[0]
        if key in params:
            params[key] = value
        elif key in ("forget_weight", "retain_weight", "retain"):
            fields[key] = value
        else:
            raise InputError(f"unknown override {key!r} for method {name!r}; valid keys: {valid_keys}")
    # group_size may arrive as 4.0 from a CLI; store the int the weighting uses
    if "group_size" in params:
        params["group_size"] = PARAMS["group_size"].validate(params["group_size"], owner=f"method {name!r}")
    return dataclasses.replace(m, params=params, **fields)   # __post_init__ validates everything
