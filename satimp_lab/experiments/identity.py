"""What a run is: :class:`RunSpec` (a method, its hyper-parameters, a label, config overrides),
its typed fields, the one function that makes its label and the one table of display names.

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

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from types import MappingProxyType
from typing import Any

import pandas as pd

from ..errors import InputError
from ..unlearning.run import UnlearnConfig
from ..unlearning.objectives import ALIASES, GRANULARITIES, METHODS, get_method
from ..unlearning.params import PARAMS
from ..unlearning.weighting import HARD_MODES


_SPEC_KEYS = ("method", "params", "label")
_NOT_OVERRIDES = ("method", "method_params", "seed", "forget_split")
"""UnlearnConfig fields a spec cannot override: the spec's own method and params, the sweep's
seed and the setting's forget split."""


@dataclass(frozen=True, eq=False)
class RunSpec(Mapping):
    """One run of a sweep, typed and frozen: a method, its hyper-parameters, a label and overrides
    of the setting's :class:`~satimp_lab.unlearning.run.UnlearnConfig`.

    It also reads as the dict it replaces (``spec["label"]``, ``dict(spec)``, ``lab.run(**spec)``,
    ``spec == {"method": "ga", "label": "ga"}``): ``{"method", "params" (when not empty),
    "label" (when set), **overrides}``. :meth:`of` is the one place where a dict becomes a
    RunSpec; the run's config and cache key are those of the dict it came from, byte for byte.

    Raises :class:`~satimp_lab.errors.InputError` naming the bad field: ``RunSpec.method`` not a
    registered method name (``objectives.list_methods()``), a ``RunSpec.params`` key that is no
    declared hyper-parameter (``satimp_lab.unlearning.params.PARAMS``, plus ``beta`` and ``retain``) or a
    value outside its declared range, a ``RunSpec.overrides`` key that is no UnlearnConfig field.
    Whether the method reads a parameter is checked once, where the run's config is built."""

    method: str
    """A name from ``objectives.list_methods()`` (aliases kept as given: they name the cache folder)."""
    params: Mapping[str, float | int | str] = field(default_factory=dict)
    """Overrides of the method's hyper-parameters, e.g. ``{"beta_sat": 2.0}`` (stored read-only,
    values as given: the cache key tells 5 from 5.0)."""
    label: str | None = None
    """The run's name in every table; None: ``method(k=v, ...)`` of ``params``."""
    overrides: Mapping[str, object] = field(default_factory=dict)
    """Overrides of UnlearnConfig fields other than method, method_params, seed and forget_split,
    e.g. ``{"lr": 1e-3}``."""

    def __post_init__(self):
        if not isinstance(self.method, str) or self.method not in {**METHODS, **ALIASES}:
            raise InputError(f"RunSpec.method: unknown method {self.method!r}; valid names: "
                             f"{sorted(list(METHODS) + list(ALIASES))}")
        for name in ("params", "overrides"):
            value = getattr(self, name)
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise InputError(f"RunSpec.{name} must be a mapping, got {value!r}")
            object.__setattr__(self, name, MappingProxyType(dict(value)))
        for key, value in self.params.items():
            if key in PARAMS:
                PARAMS[key].validate(value, owner=f"RunSpec.params of {self.method!r}")
            elif key not in ("beta", "retain"):
                raise InputError(f"RunSpec.params: unknown hyper-parameter {key!r} for method "
                                 f"{self.method!r}; declared: {sorted(PARAMS)} (and 'beta', 'retain')")
        allowed = sorted(f.name for f in fields(UnlearnConfig) if f.name not in _NOT_OVERRIDES)
        for key in self.overrides:
            if key not in allowed:
                raise InputError(f"RunSpec.overrides: {key!r} is not an UnlearnConfig field a spec "
                                 f"may override; valid: {allowed}")
        if self.label is not None and not isinstance(self.label, str):
            raise InputError(f"RunSpec.label must be a string or None, got {self.label!r}")

    @classmethod
    def of(cls, spec: "RunSpec | Mapping") -> "RunSpec":
        """``spec`` as a RunSpec: a RunSpec as it is; a dict of :meth:`Lab.run` keywords
        (``method``, ``params``, ``label``, any other key an UnlearnConfig override)."""
        if isinstance(spec, cls):
            return spec
        if not isinstance(spec, Mapping) or "method" not in spec:
            raise InputError(f"a run spec must be a RunSpec or a dict with a 'method', got {spec!r}")
        return cls(spec["method"], spec.get("params") or {}, spec.get("label"),
                   {k: v for k, v in spec.items() if k not in _SPEC_KEYS})

    @property
    def default_label(self) -> str:
        """``label``, or ``method(k=v, ...)`` of ``params`` when it is None."""
        return self.label or _default_label(self.method, self.params)

    @property
    def fields(self) -> "RunFields":
        """What the run is, as figures and tables read it (:class:`RunFields`: method family,
        exponents, granularity level, hard-sampling mode and share), from ``method`` and
        ``params`` through the registry (:func:`run_fields`); ``overrides`` aside."""
        return run_fields(self.method, self.params)

    def to_dict(self) -> dict:
        """The dict form: ``{"method", "params" (when not empty), "label" (when set), **overrides}``."""
        out: dict[str, object] = {"method": self.method}
        if self.params:
            out["params"] = dict(self.params)
        if self.label is not None:
            out["label"] = self.label
        return {**out, **self.overrides}

    # the read-only dict view (the specs notebooks index) and pickling (mappingproxy does not pickle)
    def __getitem__(self, key):
        return self.to_dict()[key]

    def __iter__(self):
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __hash__(self):
        return hash((self.method, tuple(sorted(self.params.items())), self.label,
                     tuple(sorted(self.overrides.items()))))

    def __reduce__(self):
        return (RunSpec, (self.method, dict(self.params), self.label, dict(self.overrides)))

    def __repr__(self) -> str:
        return f"RunSpec({self.to_dict()!r})"



def _default_label(method: str, params: Mapping | None) -> str:
    """:func:`params_label` with values written by ``str`` (``Lab.run`` without a label)."""
    return params_label(method, params, fmt=str)


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
    """One ``lab.sweep`` spec (a :class:`~satimp_lab.experiments.identity.RunSpec`, which reads as the dict
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
