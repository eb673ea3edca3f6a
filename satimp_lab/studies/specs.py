"""The run specs the studies sweep and the notebooks show, written once: the sweeps' values
(declared in ``satimp_lab.unlearning.params``) and each observation's list of runs.

Every spec is made by ``experiments.identity.spec`` (canonical: hyper-parameters equal to the registry
default dropped, so a run that two studies ask for is one cache entry), labelled on the axis its
study varies (``experiments.identity.run_label``).
"""

from __future__ import annotations

from ..experiments.identity import RunSpec, spec
from ..unlearning.objectives import METHODS
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
