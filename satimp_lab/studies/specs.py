"""The run specs the studies sweep and the notebooks show, written once, and what names them.

:func:`spec` writes every run in one canonical way (hyper-parameters equal to the registry
default are dropped), so the same run requested by two studies (or by a study and a notebook's
illustration) has the same cache key and is computed once. :func:`spec_params` gives every
spec's full hyper-parameters.

A run's identity is typed. :func:`run_fields` reads a spec's method and hyper-parameters into a
:class:`RunFields` (``RunSpec.fields``): the method family, the exponents of its weights, the
level they are computed at, the hard-sampling mode and the share of tokens it keeps.
:func:`run_label` is the one function that makes a label from those fields, on the axis a study
varies (:data:`LABEL_AXES`); :data:`NAMES` (through :func:`display_name`) is the one table of the
names figures, claims and notebooks show. Figures and tables read the fields of a label from the
specs that made it (:func:`fields_by_label`, :func:`fields_table`), never from the label's text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from .lab import RunSpec
from ..errors import InputError
from ..unlearning.objectives import GRANULARITIES, METHODS, get_method
from ..unlearning.params import PARAMS
from ..unlearning.weighting import HARD_MODES

BETAS = PARAMS["beta_sat"].sweep("smoothness")
"""SimSat / SimImp exponents of the smoothness sweep (declared in satimp_lab.unlearning.params)."""
HARD_FRACTIONS = PARAMS["k"].sweep("kept_share")
"""Shares of each answer's tokens kept by top-k / bottom-k / random at matched token counts."""
GROUP_SIZES = PARAMS["group_size"].sweep("granularity")
"""Group sizes G of the granularity sweep (on the synthetic benchmark G = 20 is about a whole answer:
a per-answer mean)."""
GRID_BETA_SAT = PARAMS["beta_sat"].sweep("grid")
GRID_BETA_IMP = PARAMS["beta_imp"].sweep("grid")
RECOMMENDED = (METHODS["satimp"].params["beta_sat"], METHODS["satimp"].params["beta_imp"])
"""The official README's SatImp recommendation (beta_sat, beta_imp): the registry's ``satimp``."""


# ----------------------------------------------------------------------------------------------
# what a run is: its fields


NAMES = {"ga": "GA", "npo": "NPO", "simnpo": "SimNPO", "simsat": "SimSat", "simimp": "SimImp",
         "satimp": "SatImp", "annotated": "annotation", "annotated_satimp": "annotation x SatImp",
         "hard_top": "top-k: low-likelihood", "hard_bottom": "bottom-k: high-likelihood",
         "hard_random": "random"}
"""Method family (:attr:`RunFields.family`) -> the name figures, claims and notebooks show: the one
table of display names (:func:`display_name` adds the retain term). It covers every family of
the registry (``unlearning.objectives.METHODS``); the hard-sampling families are named by the
likelihood of the tokens each unlearns."""

RETAIN_NAMES = {"none": "", "nll": " + retain NLL", "kl": " + retain KL"}
"""A method's retain term (``Method.retain``) -> what :func:`display_name` appends to its family's name."""

_FAMILY_OF_WEIGHTING = {"saturation": "simsat", "importance": "simimp"}
"""Weighting rules whose family is named after the token-level method (the rest: the rule's own name)."""
_EXPONENT_FAMILIES = ("ga", "simsat", "simimp", "satimp", "annotated_satimp")
"""Families whose weight is p^β_sat (1-p)^β_imp (times the annotation weight for
``annotated_satimp``); an exponent a family does not read is 0 (GA: both)."""
_HARD_MODE = {f"hard_{mode}": mode for mode in HARD_MODES}
"""Hard-sampling weighting rule -> its mode (``weighting.HARD_MODES``)."""
LEVEL_NAMES = {"instance_norm": "instance-norm"}
"""Granularities (``objectives.GRANULARITIES``) whose level is written otherwise in labels and figures."""


@dataclass(frozen=True)
class RunFields:
    """What a run is, as figures and tables read it: its method and hyper-parameters, and what they
    make of it in the registry (:func:`run_fields`). A label is made from these fields
    (:func:`run_label`), never read back. Overrides of the unlearning recipe (``RunSpec.overrides``)
    are not among them."""

    method: str
    """The method's name as the spec gives it (a registry name or an alias)."""
    params: tuple[tuple[str, float | int | str], ...]
    """The spec's own hyper-parameters, as (name, value) pairs in its order (:func:`spec` keeps
    those that differ from the registry default)."""
    family: str
    """The method family, a key of :data:`NAMES`: the weighting rule's family (``simsat`` for
    saturation weights at any granularity, ``simimp``, ``satimp``, ``annotated``,
    ``annotated_satimp``, ``hard_top``, ``hard_bottom``, ``hard_random``), or for unweighted
    methods the forget loss (``ga``, ``npo``, ``simnpo``)."""
    granularity: str
    """Where the weight lives: one of ``objectives.GRANULARITIES`` (token, group, instance,
    instance_norm, batch)."""
    group_size: int | None
    """Tokens per group at the group granularity (None at any other)."""
    beta_sat: float | None
    """Saturation exponent of the weight p^β_sat (1-p)^β_imp (0 for a family that does not read
    it, e.g. SimImp or GA); None for a family whose weight is not of that form."""
    beta_imp: float | None
    """Importance exponent of the same weight (0 for SimSat or GA; None as :attr:`beta_sat`)."""
    mode: str | None
    """Hard sampling: ``top`` (lowest-likelihood tokens), ``bottom`` (highest) or ``random``; None
    for other families."""
    fraction: float | None
    """Hard sampling: the share (0-1) of each answer's tokens unlearned (top-k and random keep
    ``k``, bottom-k keeps ``1 - k``); None for other families."""
    retain: str
    """The retain term: ``none``, ``nll`` (gradient difference) or ``kl``."""

    @property
    def level(self) -> str:
        """The granularity as labels and figures write it: ``token``, ``G=<group size>``,
        ``instance``, ``instance-norm`` or ``batch``."""
        return level_name(self.granularity, self.group_size)

    @property
    def level_rank(self) -> tuple[int, int]:
        """Sort key of :attr:`level` from finest to coarsest (``GRANULARITIES`` order, then group size)."""
        return GRANULARITIES.index(self.granularity), self.group_size or 0

    @property
    def beta(self) -> float | None:
        """The family's own exponent: SimSat's β_sat, SimImp's β_imp; None for other families."""
        return {"simsat": self.beta_sat, "simimp": self.beta_imp}.get(self.family)


def level_name(granularity: str, group_size: int | None = None) -> str:
    """``G=<group size>`` for the group granularity, ``instance-norm`` for ``instance_norm``,
    else the granularity itself: how labels, figures and tables write a level."""
    if granularity == "group":
        return f"G={group_size}"
    return LEVEL_NAMES.get(granularity, granularity)


def run_fields(method: str, params: Mapping | None = None) -> RunFields:
    """The :class:`RunFields` of a run of ``method`` with hyper-parameters ``params`` (overrides of
    the registry defaults, ``beta`` included), read from the registry
    (``objectives.get_method``). Raises InputError for an unknown method or parameter."""
    params = dict(params or {})
    m = get_method(method, **params)
    p = m.params
    family = _FAMILY_OF_WEIGHTING.get(m.weighting or "", m.weighting) or m.forget
    exponents = family in _EXPONENT_FAMILIES
    mode = _HARD_MODE.get(m.weighting or "")
    fraction = None
    if mode is not None:
        fraction = round(1.0 - p["k"], 10) if mode == "bottom" else float(p["k"])
    return RunFields(method=method, params=tuple(params.items()), family=family, granularity=m.granularity,
                     group_size=int(p["group_size"]) if m.granularity == "group" else None,
                     beta_sat=float(p.get("beta_sat", 0.0)) if exponents else None,
                     beta_imp=float(p.get("beta_imp", 0.0)) if exponents else None,
                     mode=mode, fraction=fraction, retain=m.retain)


def display_name(run: RunSpec | Mapping | RunFields) -> str:
    """The name a run's method is shown by: its family's :data:`NAMES` entry, with its retain term
    (:data:`RETAIN_NAMES`), e.g. ``SimSat``, ``SatImp + retain NLL``."""
    fields = run if isinstance(run, RunFields) else RunSpec.of(run).fields
    return NAMES[fields.family] + RETAIN_NAMES[fields.retain]


def display_names(specs: Iterable[RunSpec | Mapping]) -> dict[str, str]:
    """``{label: display name}`` of ``specs`` (:func:`display_name`): the ``names`` of a claim."""
    return {s.default_label: display_name(s) for s in map(RunSpec.of, specs)}


# ----------------------------------------------------------------------------------------------
# labels: made from the fields by one function


def _fmt_num(v) -> str:
    """A number as ``f"{float(v):g}"`` (5.0 -> ``5``, 0.1 -> ``0.1``); anything else as ``str``."""
    try:
        return f"{float(v):g}"
    except (TypeError, ValueError):
        return str(v)


LABEL_AXES = ("method", "beta", "level", "hard", "grid")
"""What a label shows (:func:`run_label`): the method and its own hyper-parameters; the family's
exponent (smoothness); the granularity level; the hard-sampling mode and share; the SatImp grid
cell (β_sat, β_imp)."""


def params_label(method: str, params: Mapping | None, fmt: Callable[[Any], str] = _fmt_num) -> str:
    """``method`` alone when ``params`` is empty, else ``method(k=v, ...)`` with each value written
    by ``fmt`` (default ``f"{float(v):g}"``), in ``params`` order: the label of a run named by its
    method and hyper-parameters (specs, ``Lab.run`` without a label, the playground's requests)."""
    if not params:
        return method
    return method + "(" + ", ".join(f"{k}={fmt(v)}" for k, v in params.items()) + ")"


def run_label(fields: RunFields, axis: str = "method") -> str:
    """The label of the run with ``fields`` in a study that varies ``axis`` (:data:`LABEL_AXES`):

    ========  ===================================  ===============================
    axis      label                                e.g.
    ========  ===================================  ===============================
    method    :func:`params_label` of the spec      ``simsat``, ``simimp(beta_imp=2)``
    beta      ``family(β=<family's exponent>)``     ``simsat(β=0.5)``
    level     ``family/<level>``                    ``simsat/G=5``, ``simimp/instance-norm``
    hard      ``<mode>-<share in %>%``              ``bottom-30%``
    grid      ``satimp(<β_sat>, <β_imp>)``          ``satimp(5, 0.1)``, GA: ``satimp(0, 0)``
    ========  ===================================  ===============================

    Numbers are written ``f"{float(v):g}"``. Raises InputError for an unknown axis or fields that
    lack what the axis shows (a β label of a method without its own exponent, a grid label of one
    whose weight is not p^β_sat (1-p)^β_imp, a hard label of one that is not hard sampling)."""
    if axis == "method":
        return params_label(fields.method, dict(fields.params))
    if axis == "level":
        return f"{fields.family}/{fields.level}"
    if axis == "beta" and fields.beta is not None:
        return f"{fields.family}(β={_fmt_num(fields.beta)})"
    if axis == "hard" and fields.mode is not None and fields.fraction is not None:
        return f"{fields.mode}-{round(100 * fields.fraction)}%"
    if axis == "grid" and fields.beta_sat is not None and fields.beta_imp is not None:
        return f"satimp({_fmt_num(fields.beta_sat)}, {_fmt_num(fields.beta_imp)})"
    if axis not in LABEL_AXES:
        raise InputError(f"unknown label axis {axis!r}; valid: {list(LABEL_AXES)}")
    raise InputError(f"method {fields.method!r} (family {fields.family!r}) has no {axis!r} label: "
                     f"its fields lack what that label shows")


def spec(method: str, label: str | None = None, axis: str = "method", **params) -> RunSpec:
    """One ``lab.sweep`` spec (a :class:`~satimp_lab.studies.lab.RunSpec`, which reads as the dict
    ``{"method", "params" (when any), "label"}``), written canonically so identical runs share a
    cache entry.

    ``beta`` is resolved to the method's own exponent (``beta_sat`` or ``beta_imp``); integers
    and floats are stored as floats (``group_size``, as int); parameters equal to the registry
    default are dropped. ``label`` defaults to :func:`run_label` of the spec's fields on
    ``axis`` (``method``: ``method(k=v, ...)`` of the non-default values)."""
    default = get_method(method)
    resolved = get_method(method, **params).params   # validates and resolves `beta`
    changed = {}
    for key, value in resolved.items():
        if value != default.params.get(key):
            changed[key] = int(value) if key == "group_size" else float(value)
    return RunSpec(method, changed, label or run_label(run_fields(method, changed), axis))


def fields_by_label(specs: Iterable[RunSpec | Mapping]) -> dict[str, RunFields]:
    """``{label: RunFields}`` of ``specs`` (each spec's ``default_label`` and ``fields``): how
    figures and tables read what a summary's label is. Raises InputError when two specs share a
    label but not their fields (the label would not say which run it is)."""
    out: dict[str, RunFields] = {}
    for s in map(RunSpec.of, specs):
        label, fields = s.default_label, s.fields
        if out.setdefault(label, fields) != fields:
            raise InputError(f"label {label!r} names two different runs: {out[label]} and {fields}")
    return out


def fields_table(specs: Iterable[RunSpec | Mapping]) -> pd.DataFrame:
    """One row per label of ``specs`` (:func:`fields_by_label`, first-seen order): ``label``, every
    :class:`RunFields` field but ``params`` (``method``, ``family``, ``granularity``,
    ``group_size``, ``beta_sat``, ``beta_imp``, ``mode``, ``fraction``, ``retain``), ``level``,
    ``level_rank``, ``beta`` and ``name`` (:func:`display_name`); a field a run lacks is NaN
    (``group_size``: <NA>; ``mode``: None). Merge it into a summary ``on="label"``."""
    rows = []
    for label, f in fields_by_label(specs).items():
        row = {k: v for k, v in asdict(f).items() if k != "params"}
        rows.append({"label": label, **row, "level": f.level, "level_rank": f.level_rank, "beta": f.beta,
                     "name": display_name(f)})
    columns = ["label", *(f.name for f in dataclasses.fields(RunFields) if f.name != "params"),
               "level", "level_rank", "beta", "name"]
    table = pd.DataFrame(rows, columns=columns)
    # absent numbers as NaN / <NA>, whichever specs are given
    return table.astype({"group_size": "Int64", "beta_sat": float, "beta_imp": float, "fraction": float,
                         "beta": float})


def spec_params(specs: list[RunSpec | dict]) -> pd.DataFrame:
    """One row per spec: ``label``, ``method`` and every resolved hyper-parameter of the method."""
    rows = []
    for s in map(RunSpec.of, specs):
        m = get_method(s.method, **s.params)
        rows.append({"label": s.label or s.method, "method": s.method, **m.params})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# the studies' runs


OBS1_METHODS = ("ga", "simsat", "simimp", "annotated", "satimp")
"""Observation (i): GA, SimSat, SimImp, annotation-based importance and SatImp."""


def obs1_specs() -> list[RunSpec]:
    """The observation (i) runs: one spec per :data:`OBS1_METHODS`, at the registry defaults."""
    return [spec(n) for n in OBS1_METHODS]


def reference_specs() -> list[RunSpec]:
    """NPO and SimNPO: references the notebooks show next to the observation (i) runs (their
    implicit per-token weights); no study decides a claim on them."""
    return [spec("npo"), spec("simnpo")]


def beta_specs(methods: tuple[str, ...] = ("simsat", "simimp"), betas: tuple[float, ...] = BETAS) -> list[RunSpec]:
    """Observation (iii-a): SimSat and SimImp at every beta (beta = 1 is the observation (i) run),
    labelled on the ``beta`` axis (``simsat(β=2)``)."""
    return [spec(m, axis="beta", beta=b) for m in methods for b in betas]


def hard_specs(fractions: tuple[float, ...] = HARD_FRACTIONS) -> list[RunSpec]:
    """Hard sampling at matched token counts: each keeps ``fraction`` of every answer's tokens,
    labelled on the ``hard`` axis (``top-50%``).

    top: the highest-CE (lowest-likelihood) ``fraction`` (k = fraction); bottom: the lowest-CE
    ``fraction`` -- the official bottom-k keeps the ~(1-k) lowest-CE tokens, so k = 1 - fraction;
    random: ``floor(fraction n)`` random tokens (k = fraction, soft 1).
    """
    out = []
    for f in fractions:
        out += [spec("hard_top", axis="hard", k=f, soft=1.0),
                spec("hard_bottom", axis="hard", k=round(1.0 - f, 10), soft=1.0),
                spec("hard_random", axis="hard", k=f, soft=1.0)]
    return out


def granularity_specs(families: tuple[str, ...] = ("simsat", "simimp"),
                      group_sizes: tuple[int, ...] = GROUP_SIZES) -> list[RunSpec]:
    """Observation (iii-b): token, group(G), instance (official), instance (length-normalised,
    ours) and batch weights for each family at its default beta, labelled on the ``level`` axis
    (``family/level``, level ``token``, ``G=<group size>``, ``instance``, ``instance-norm`` or
    ``batch``, e.g. ``simsat/G=5``)."""
    out = []
    for fam in families:
        out.append(spec(fam, axis="level"))
        out += [spec(f"group_{fam}", axis="level", group_size=g) for g in group_sizes]
        out += [spec(f"{level}_{fam}", axis="level") for level in ("instance", "instance_norm", "batch")]
    return out


def grid_spec(beta_sat: float, beta_imp: float) -> RunSpec:
    """One cell of the SatImp grid, labelled on the ``grid`` axis (``satimp(β_sat, β_imp)``) and
    written as the run it is identical to: (0, 0) is GA, (b, 0) SimSat(b), (0, b) SimImp(b),
    (5, 0.1) the default SatImp -- so those cells reuse the observation (i) and smoothness runs
    from the cache."""
    if beta_sat == 0 and beta_imp == 0:
        return spec("ga", axis="grid")
    if beta_imp == 0:
        return spec("simsat", axis="grid", beta=beta_sat)
    if beta_sat == 0:
        return spec("simimp", axis="grid", beta=beta_imp)
    return spec("satimp", axis="grid", beta_sat=beta_sat, beta_imp=beta_imp)


def satimp_grid_specs(beta_sats: tuple[float, ...] = GRID_BETA_SAT,
                      beta_imps: tuple[float, ...] = GRID_BETA_IMP) -> list[RunSpec]:
    return [grid_spec(a, b) for b in beta_imps for a in beta_sats]


def satimp_row() -> list[RunSpec]:
    """SatImp's beta_sat sweep at the recommended beta_imp, beta_sat > 0: the row of the grid
    (:func:`satimp_grid_specs`) that notebook 05 shows beside the smoothness sweep, with the
    final model's utility."""
    return [grid_spec(b, RECOMMENDED[1]) for b in GRID_BETA_SAT if b > 0]
