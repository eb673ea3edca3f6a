"""Every hyper-parameter of the unlearning methods, declared once.

A :class:`Param` says what one hyper-parameter is: its kind (float or int), its family default,
the check that refuses an invalid value (raising :class:`~satimp_lab.errors.InputError` that
names the parameter and the value), its label with the symbol and units, a line of help, the
range and step of its slider in the playground, and the values the studies sweep. The pieces
that need a hyper-parameter read it here:

* ``objectives`` -- which parameters each weighting rule and forget loss reads
  (:data:`WEIGHTING_PARAMS`, :data:`FORGET_PARAMS`), the checks of ``Method`` and of the losses,
  and the registry's family defaults;
* ``ui.playground`` -- the playground's sliders (``playground.PARAM_SPECS`` is a view of these
  declarations); ``ui.widgets`` -- the exponent sliders of the weight curves;
* ``studies.specs`` -- the swept values (``BETAS``, ``GRID_BETA_SAT``, ``GRID_BETA_IMP``,
  ``HARD_FRACTIONS``, ``GROUP_SIZES``).

The formulas each parameter enters are on docs/methods.md (sections named in each ``help``);
the registry's per-method defaults, and where they come from, on
docs/methods.md#retain-terms-and-defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from . import weighting as W
from ..errors import InputError

__all__ = ["Param", "PARAMS", "WEIGHTING_PARAMS", "FORGET_PARAMS", "LOSS_WEIGHTS", "get_param",
           "validate_param"]


def _positive(name: str, value) -> float:
    """A finite number > 0 (NPO's and SimNPO's beta: the loss divides by it)."""
    v = W._num(value)
    if v is None or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


@dataclass(frozen=True)
class Param:
    """One hyper-parameter: how it is checked, shown and swept.

    ``check(name, value)`` returns the value as the method stores it (a float, or an int for
    ``kind == "int"``) and raises ``ValueError`` naming ``name`` and the value when it is
    invalid; :meth:`validate` turns that into :class:`InputError`. ``slider`` is
    ``(min, max, step)`` of the playground slider, inside the valid range. ``sweeps`` maps a
    sweep's name to the values a study runs (read through :meth:`sweep`).
    """

    name: str                                   # the key in Method.params, e.g. "beta_sat"
    kind: str                                   # "float" or "int"
    default: float | int                        # the family default (the registry's, unless a method differs)
    check: Callable[[str, object], float]       # validator: returns the stored value, raises ValueError
    label: str                                  # symbol and meaning, units where it has some
    help: str                                   # one line: what it does, and where the formula is
    slider: tuple[float, float, float]          # (min, max, step) of the playground slider
    sweeps: Mapping[str, tuple] = field(default_factory=dict, hash=False)   # sweep name -> values

    def __post_init__(self):
        if self.kind not in ("float", "int"):
            raise ValueError(f"Param {self.name!r}: kind must be 'float' or 'int', got {self.kind!r}")
        object.__setattr__(self, "sweeps", MappingProxyType(dict(self.sweeps)))
        lo, hi, step = self.slider
        if not (lo < hi and step > 0):
            raise ValueError(f"Param {self.name!r}: slider must be (min < max, step > 0), got {self.slider}")
        for v in (self.default, lo, hi, *(x for values in self.sweeps.values() for x in values)):
            self.validate(v)

    def validate(self, value, owner: str | None = None) -> float | int:
        """``value`` as the method stores it (float; int for an int parameter, 4.0 -> 4).

        Raises InputError naming the parameter and the value (after ``owner``, e.g. the method,
        when given) when it is outside the valid range."""
        try:
            v = self.check(self.name, value)
        except ValueError as err:
            raise InputError(f"{owner}: {err}" if owner else str(err)) from None
        return int(v) if self.kind == "int" else float(v)

    def sweep(self, name: str) -> tuple:
        """The values of the sweep ``name``; raises InputError listing the declared sweeps."""
        if name not in self.sweeps:
            raise InputError(f"parameter {self.name!r} has no sweep {name!r}; declared: {sorted(self.sweeps)}")
        return self.sweeps[name]


SMOOTHNESS_BETAS = (0.5, 1.0, 2.0, 5.0, 10.0)
"""SimSat / SimImp exponents of the smoothness sweep (one exponent for both families)."""

_DECLARED = (
    Param("beta_sat", "float", 1.0, W.validate_exponent, "β_sat (exponent on p)",
          "saturation exponent: the weight grows as p^β_sat, so tokens already forgotten (low p) get "
          "little (docs/methods.md#the-weight-family)",
          (0.0, 10.0, 0.1),
          {"smoothness": SMOOTHNESS_BETAS, "grid": (0.0, 1.0, 2.0, 5.0, 10.0)}),
    Param("beta_imp", "float", 1.0, W.validate_exponent, "β_imp (exponent on 1-p)",
          "importance exponent: the weight grows as (1-p)^β_imp, so hard tokens (low p) get more "
          "(docs/methods.md#the-weight-family)",
          (0.0, 5.0, 0.05),
          {"smoothness": SMOOTHNESS_BETAS, "grid": (0.0, 0.1, 0.5, 1.0)}),
    Param("group_size", "int", 4, W.validate_group_size, "group size G (tokens)",
          "token weights are averaged in rank buckets of G tokens (docs/methods.md#granularity)",
          (1, 32, 1),
          # on the synthetic benchmark G = 20 is about a whole answer: a per-answer mean
          {"granularity": (2, 5, 20)}),
    Param("k", "float", 0.5, W.validate_fraction, "fraction k (share of answer tokens)",
          "hard sampling: top-k keeps the k highest-CE tokens, bottom-k those below the (1-k) CE "
          "quantile, random floor(k n) tokens (docs/methods.md#hard-sampling)",
          (0.05, 1.0, 0.05),
          # the kept share f of every answer's tokens: top and random use k = f, bottom k = 1 - f
          {"kept_share": (0.5, 0.3)}),
    Param("soft", "float", 1.0, W.validate_unit_interval, "soft value s (weight of a sampled token)",
          "hard sampling: the weight a selected token gets (docs/methods.md#hard-sampling)",
          (0.0, 1.0, 0.05)),
    Param("p_imp", "float", 1.0, W.validate_unit_interval, "key-token weight p_imp",
          "annotation: key tokens weigh p_imp, the other answer tokens 1 - p_imp "
          "(docs/methods.md#annotation-weighting)",
          (0.0, 1.0, 0.05)),
    Param("npo_beta", "float", 0.1, _positive, "NPO β (inverse temperature, 1/nat)",
          "NPO / SimNPO: implicit weight 2σ(-β Δ) of the NLL change Δ in nats (docs/methods.md#ga-and-npo, "
          "docs/methods.md#simnpo)",
          (0.01, 5.0, 0.01)),
    Param("gamma", "float", 0.0, W.validate_real, "SimNPO margin γ (nats per token)",
          "SimNPO: the margin inside σ(-β(l̄ - γ)) on the mean token NLL l̄ (docs/methods.md#simnpo)",
          (-2.0, 2.0, 0.1)),
    Param("forget_weight", "float", 1.0, W.validate_exponent, "forget weight (multiplies F)",
          "total loss = forget_weight · F + retain_weight · R (docs/methods.md#retain-terms-and-defaults)",
          (0.0, 2.0, 0.0125)),
    Param("retain_weight", "float", 1.0, W.validate_exponent, "retain weight (multiplies R)",
          "total loss = forget_weight · F + retain_weight · R (docs/methods.md#retain-terms-and-defaults)",
          (0.0, 2.0, 0.05)),
)

PARAMS: Mapping[str, Param] = MappingProxyType({p.name: p for p in _DECLARED})
"""Every hyper-parameter by name, in declaration order."""

LOSS_WEIGHTS = ("forget_weight", "retain_weight")
"""The two Method fields declared here as well: they are fields of ``Method``, not ``Method.params``."""

WEIGHTING_PARAMS: Mapping[str | None, tuple[str, ...]] = MappingProxyType({
    None: (),
    "saturation": ("beta_sat",),
    "importance": ("beta_imp",),
    "satimp": ("beta_sat", "beta_imp"),
    "annotated": ("p_imp",),
    "annotated_satimp": ("p_imp", "beta_sat", "beta_imp"),
    "hard_top": ("k", "soft"),
    "hard_bottom": ("k", "soft"),
    "hard_random": ("k", "soft"),
})
"""Weighting rule -> the parameters it reads (a group granularity adds ``group_size``)."""

FORGET_PARAMS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "npo": ("npo_beta",),
    "simnpo": ("npo_beta", "gamma"),
})
"""Forget loss -> the parameters it reads (the others read none)."""


def get_param(name: str) -> Param:
    """The declaration of ``name``; raises InputError listing the declared parameters."""
    if name not in PARAMS:
        raise InputError(f"unknown hyper-parameter {name!r}; declared: {list(PARAMS)}")
    return PARAMS[name]


def validate_param(name: str, value) -> float | int:
    """``get_param(name).validate(value)``: the stored value, or InputError naming both."""
    return get_param(name).validate(value)
