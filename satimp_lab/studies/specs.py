"""The run specs the studies sweep and the notebooks show, written once.

:func:`spec` writes every run in one canonical way (hyper-parameters equal to the registry
default are dropped), so the same run requested by two studies (or by a study and a notebook's
illustration) has the same cache key and is computed once. :func:`spec_params` gives every
spec's full hyper-parameters. Labels (``beta_label``, ``hard_label``, ``grid_label``, the
``family/level`` labels of :func:`granularity_specs`) name the runs in every table.
"""

from __future__ import annotations

import pandas as pd

from .lab import LEAN_OVERRIDES, TABLE_OVERRIDES, RunSpec
from ..unlearning.objectives import METHODS, get_method
from ..unlearning.params import PARAMS

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

NAMES = {"ga": "GA", "simsat": "SimSat", "simimp": "SimImp", "satimp": "SatImp",
         "annotated": "annotation", "npo": "NPO", "simnpo": "SimNPO"}


def _fmt_num(v) -> str:
    return f"{float(v):g}"


def spec(method: str, label: str | None = None, **params) -> RunSpec:
    """One ``lab.sweep`` spec (a :class:`~satimp_lab.studies.lab.RunSpec`, which reads as the dict
    ``{"method", "params" (when any), "label"}``), written canonically so identical runs share a
    cache entry.

    ``beta`` is resolved to the method's own exponent (``beta_sat`` or ``beta_imp``); integers
    and floats are stored as floats (``group_size``, as int); parameters equal to the registry
    default are dropped. The label defaults to ``method(k=v, ...)`` of the non-default values.
    """
    default = get_method(method)
    resolved = get_method(method, **params).params   # validates and resolves `beta`
    changed = {}
    for key, value in resolved.items():
        if value != default.params.get(key):
            changed[key] = int(value) if key == "group_size" else float(value)
    return RunSpec(method, changed, label or (method if not changed else
                   method + "(" + ", ".join(f"{k}={_fmt_num(v)}" for k, v in changed.items()) + ")"))


def spec_params(specs: list[RunSpec | dict]) -> pd.DataFrame:
    """One row per spec: ``label``, ``method`` and every resolved hyper-parameter of the method."""
    rows = []
    for s in map(RunSpec.of, specs):
        m = get_method(s.method, **s.params)
        rows.append({"label": s.label or s.method, "method": s.method, **m.params})
    return pd.DataFrame(rows)


OBS1_METHODS = ("ga", "simsat", "simimp", "annotated", "satimp")
"""Observation (i): GA, SimSat, SimImp, annotation-based importance and SatImp."""


def obs1_specs() -> list[RunSpec]:
    """The observation (i) runs: one spec per :data:`OBS1_METHODS`, at the registry defaults."""
    return [spec(n) for n in OBS1_METHODS]


def reference_specs() -> list[RunSpec]:
    """NPO and SimNPO: references the notebooks show next to the observation (i) runs (their
    implicit per-token weights); no study decides a claim on them."""
    return [spec("npo"), spec("simnpo")]


def beta_label(method: str, beta: float) -> str:
    return f"{method}(β={_fmt_num(beta)})"


def beta_specs(methods: tuple[str, ...] = ("simsat", "simimp"), betas: tuple[float, ...] = BETAS) -> list[RunSpec]:
    """Observation (iii-a): SimSat and SimImp at every beta (beta = 1 is the observation (i) run)."""
    return [spec(m, beta_label(m, b), beta=b) for m in methods for b in betas]


def hard_label(mode: str, fraction: float) -> str:
    return f"{mode}-{round(100 * fraction)}%"


def hard_specs(fractions: tuple[float, ...] = HARD_FRACTIONS) -> list[RunSpec]:
    """Hard sampling at matched token counts: each keeps ``fraction`` of every answer's tokens.

    top: the highest-CE (lowest-likelihood) ``fraction`` (k = fraction); bottom: the lowest-CE
    ``fraction`` -- the official bottom-k keeps the ~(1-k) lowest-CE tokens, so k = 1 - fraction;
    random: ``floor(fraction n)`` random tokens (k = fraction, soft 1).
    """
    out = []
    for f in fractions:
        out += [spec("hard_top", hard_label("top", f), k=f, soft=1.0),
                spec("hard_bottom", hard_label("bottom", f), k=round(1.0 - f, 10), soft=1.0),
                spec("hard_random", hard_label("random", f), k=f, soft=1.0)]
    return out


def granularity_specs(families: tuple[str, ...] = ("simsat", "simimp"),
                      group_sizes: tuple[int, ...] = GROUP_SIZES) -> list[RunSpec]:
    """Observation (iii-b): token, group(G), instance (official), instance (length-normalised,
    ours) and batch weights for each family at its default beta. Labels are ``family/level`` with
    level ``token``, ``G=<group size>``, ``instance`` (official), ``instance-norm`` (ours) or
    ``batch``, e.g. ``simsat/G=5``."""
    out = []
    for fam in families:
        out.append(spec(fam, f"{fam}/token"))
        out += [spec(f"group_{fam}", f"{fam}/G={g}", group_size=g) for g in group_sizes]
        out += [spec(f"instance_{fam}", f"{fam}/instance"),
                spec(f"instance_norm_{fam}", f"{fam}/instance-norm"),
                spec(f"batch_{fam}", f"{fam}/batch")]
    return out


def granularity_of(label: str) -> tuple[str, str]:
    """(family, level) of a :func:`granularity_specs` label."""
    fam, level = label.split("/", 1)
    return fam, level


def grid_label(beta_sat: float, beta_imp: float) -> str:
    return f"satimp({_fmt_num(beta_sat)}, {_fmt_num(beta_imp)})"


def grid_spec(beta_sat: float, beta_imp: float) -> RunSpec:
    """One cell of the SatImp grid, written as the run it is identical to: (0, 0) is GA,
    (b, 0) SimSat(b), (0, b) SimImp(b), (5, 0.1) the default SatImp -- so those cells reuse the
    observation (i) and smoothness runs from the cache."""
    label = grid_label(beta_sat, beta_imp)
    if beta_sat == 0 and beta_imp == 0:
        return spec("ga", label)
    if beta_imp == 0:
        return spec("simsat", label, beta=beta_sat)
    if beta_sat == 0:
        return spec("simimp", label, beta=beta_imp)
    return spec("satimp", label, beta_sat=beta_sat, beta_imp=beta_imp)


def satimp_grid_specs(beta_sats: tuple[float, ...] = GRID_BETA_SAT,
                      beta_imps: tuple[float, ...] = GRID_BETA_IMP) -> list[RunSpec]:
    return [grid_spec(a, b) for b in beta_imps for a in beta_sats]



def satimp_row() -> list[RunSpec]:
    """SatImp's beta_sat sweep at the recommended beta_imp, beta_sat > 0: the row of the grid
    (:func:`satimp_grid_specs`) that notebook 05 shows beside the smoothness sweep, with the
    final model's utility."""
    return [grid_spec(b, RECOMMENDED[1]) for b in GRID_BETA_SAT if b > 0]


def curves_on_target() -> list[RunSpec]:
    """The runs whose curves (every evaluation) on the Lab's own target a notebook shows:
    observation (i) and the NPO / SimNPO references (notebook 04's trade-off curves)."""
    return obs1_specs() + reference_specs()


def shown_on_target() -> list[RunSpec]:
    """The runs whose results on the Lab's own target model a notebook shows beyond forget ES at
    matched retain (final metrics, curves, final models): :func:`curves_on_target` (notebooks 01,
    03, 04, 10), the smoothness and hard-sampling sweeps with GA and SatImp's row of the grid
    (:func:`satimp_row`, 05) and the granularity sweep (06). The grid's other cells (notebook 07
    shows matched forget ES alone) are not among them."""
    return (curves_on_target() + beta_specs() + hard_specs() + granularity_specs() + [spec("ga")]
            + satimp_row())


def _run_of(s: RunSpec | dict) -> tuple:
    """What makes a spec's run (labels aside): method, hyper-parameters and overrides."""
    s = RunSpec.of(s)
    return s.method, tuple(sorted(s.params.items())), tuple(sorted(s.overrides.items()))


def lean_on_target(s: RunSpec | dict) -> bool:
    """True for a run that no notebook shows on the Lab's own target (not in
    :func:`shown_on_target`): the studies read its forget ES at matched retain only."""
    return _run_of(s) not in _SHOWN


def target_overrides(s: RunSpec | dict) -> dict:
    """The :class:`~satimp_lab.studies.lab.Setting` fields of a study's run on the Lab's own
    target (``Lab.sweep_population(..., on_target=target_overrides)``), by what the notebooks
    show of it: ``LEAN_OVERRIDES`` (no final metrics, ends at the bracket of its matched point)
    for a run none shows (:func:`lean_on_target`); ``TABLE_OVERRIDES`` (evaluated up to that
    bracket, then run to the end with the last step evaluated: the same final metrics) for one
    whose curves none shows; ``{}`` (every evaluation) for the :func:`curves_on_target`. Both
    evaluate the retain split every ``eval_every`` steps up to the bracket and the forget split
    at the bracket (``Setting.forget_at_bracket``), so forget ES at matched retain, what the
    studies decide on, is the whole run's to the last bit by construction."""
    if lean_on_target(s):
        return dict(LEAN_OVERRIDES)
    return {} if _run_of(s) in _CURVES else dict(TABLE_OVERRIDES)


def population_overrides(s: RunSpec | dict) -> dict:
    """The :class:`~satimp_lab.studies.lab.Setting` fields of a study's run on a target model other
    than the Lab's own, on top of ``POPULATION_OVERRIDES`` (``Lab.sweep_population(...,
    on_others=population_overrides)``): ``forget_at_bracket`` (the forget split evaluated at the
    bracket of the matched point alone) for a run whose population curves no figure draws, ``{}``
    for observation (i)'s runs and the references (:func:`curves_on_target`: notebook 04's
    population curves). Forget ES at matched retain is the whole run's to the last bit either way."""
    return {} if _run_of(s) in _CURVES else {"forget_at_bracket": True}


_SHOWN = frozenset(map(_run_of, shown_on_target()))
_CURVES = frozenset(map(_run_of, curves_on_target()))
