"""Verdicts on a population of target models: paired differences, a cluster-bootstrap interval,
P(improvement), and one rule that turns them into a verdict.

**The unit.** A claim compares methods that ran on the same *units*: (target seed, unlearning
seed) pairs -- the same target model, the same data order. For each unit the *paired difference*
of the matched metric is taken, signed so that a positive value is an improvement of A over B::

    d(t, s) = B(t, s) - A(t, s)     when lower is better (forget ES at matched retain)
    d(t, s) = A(t, s) - B(t, s)     when higher is better

**The effect** is the mean of the per-target means of ``d`` (each target weighs the same, however
many seeds it has). **The 95 % interval** is a percentile bootstrap over *targets* of those
per-target means, computed by ``scipy.stats.bootstrap`` (10 000 resamples, fixed random seed):
a cluster bootstrap. Targets are the independent replicates (every unit of one target shares its
model); resampling the clusters alone carries the within-target (seed) variation along, because
each cluster mean already contains it, whereas resampling both stages counts it twice (Davison &
Hinkley, *Bootstrap Methods and their Application*, 1997, §3.8). With a single target the
clusters are its seeds (the interval then speaks for that target only), and with fewer than two
clusters there is no interval. (``rliable``'s stratified bootstrap was not used: it keeps the
strata -- here the targets -- fixed and resamples runs within them, so it would leave out exactly
the between-target variation that made single-target verdicts move.) The percentile interval of
a few clusters is narrow (with 5 targets its coverage is below 95 %); the minimum effect guards
against reading much into a barely-excluded 0.

**P(improvement)** is the paired analogue of the probability of improvement of Agarwal et al.
(NeurIPS 2021, ``rliable``): the share of units where A beats B (ties count one half), averaged
over seeds within each target and then over targets.

**The rule** (:func:`decide`), with ``[lo, hi]`` the interval and ``m`` the minimum effect
(:data:`MIN_EFFECT` = 0.02 forget ES unless a claim states another):

* **reproduced**   -- ``lo > 0`` and the effect ``>= m``: the interval excludes 0 in the claimed
  direction and the effect is large enough to matter;
* **contradicted** -- ``hi < 0`` and the effect ``<= -m``: excluded in the opposite direction;
* **inconclusive** -- otherwise (the interval holds 0, the effect is below the minimum, or there
  are fewer than two clusters).

A claim with several parts (e.g. "SimSat beats SimImp *and* annotation") combines them with
:func:`combine`: every part the same verdict -> that verdict; parts that disagree -> **partly**
when at least one part is reproduced, **contradicted** when none is and at least one is
contradicted, **inconclusive** otherwise.

**Runs that never reach the matched level.** ``experiments.matched.forget_at_matched_retain`` gives such
a run its *final* forget ES with ``reached=False``: an upper bound of what it would reach at the
level, i.e. a value at least as bad as its true one. The unit stays in the pairing with that
value (never dropped), so the rule can only understate that method; the number of such units per
method is reported (``unreached_a``, ``unreached_b``) and shown with the verdict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

MIN_EFFECT = 0.02
"""Smallest effect (in the metric's units; 0.02 = two points of forget ES) a verdict counts."""
CONFIDENCE = 0.95
N_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
"""The bootstrap's random seed: a verdict is a deterministic function of the table."""
UNIT = ("target_seed", "seed")
"""Columns that name a unit: the target model's training seed and the unlearning seed."""

VERDICTS = ("reproduced", "partly", "contradicted", "inconclusive")


def paired_differences(table: pd.DataFrame, a: str, b: str, metric: str = "matched_forget",
                       lower_is_better: bool = True, label: str = "label",
                       unit: tuple[str, ...] = UNIT) -> pd.DataFrame:
    """One row per unit run by both A and B: ``target_seed, seed, a, b, diff, a_reached,
    b_reached``; ``diff`` > 0 means A is better (signed as in the module docstring).

    ``table``: one row per run with the ``unit`` columns, ``label`` and ``metric`` (and
    ``reached``, taken as True when absent). Raises ValueError naming the missing column, a label
    with no runs, units run by only one of the two methods (the pairing would break), a unit run
    twice, or a non-finite value.
    """
    missing = [c for c in (*unit, label, metric) if c not in table.columns]
    if missing:
        raise ValueError(f"the table has no column(s) {missing}; has {list(table.columns)}")
    sides = {}
    for name in (a, b):
        rows = table[table[label] == name]
        if rows.empty:
            raise ValueError(f"no run labelled {name!r} (labels: {sorted(set(table[label]))})")
        if rows.duplicated(list(unit)).any():
            dup = rows[rows.duplicated(list(unit), keep=False)][list(unit)].drop_duplicates().values.tolist()
            raise ValueError(f"{name!r} has several runs on the unit(s) {dup}")
        reached = rows["reached"].astype(bool) if "reached" in rows else pd.Series(True, index=rows.index)
        sides[name] = rows.assign(_value=pd.to_numeric(rows[metric], errors="coerce"),
                                  _reached=reached)[[*unit, "_value", "_reached"]]
    merged = sides[a].merge(sides[b], on=list(unit), how="outer", suffixes=("_a", "_b"), indicator=True)
    unpaired = merged[merged["_merge"] != "both"]
    if not unpaired.empty:
        raise ValueError(f"{a!r} and {b!r} did not run on the same units; unpaired: "
                         f"{unpaired[list(unit)].values.tolist()}")
    bad = merged[~np.isfinite(merged[["_value_a", "_value_b"]].to_numpy(float)).all(axis=1)]
    if not bad.empty:
        raise ValueError(f"non-finite {metric!r} for {a!r} or {b!r} on unit(s) {bad[list(unit)].values.tolist()}")
    sign = -1.0 if lower_is_better else 1.0
    out = pd.DataFrame({**{c: merged[c] for c in unit}, "a": merged["_value_a"], "b": merged["_value_b"]})
    out["diff"] = sign * (out["a"] - out["b"])
    out["a_reached"], out["b_reached"] = merged["_reached_a"].astype(bool), merged["_reached_b"].astype(bool)
    return out.sort_values(list(unit)).reset_index(drop=True)


def _clusters(diffs: pd.DataFrame, values: pd.Series, unit: tuple[str, ...]) -> np.ndarray:
    """Per-cluster means of ``values``: clusters are targets, or seeds when there is one target."""
    target = unit[0]
    key = target if diffs[target].nunique() > 1 else list(unit)
    return values.groupby([diffs[k] for k in ([key] if isinstance(key, str) else key)]).mean().to_numpy(float)


def interval(diffs: pd.DataFrame, confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
             seed: int = BOOTSTRAP_SEED, unit: tuple[str, ...] = UNIT) -> tuple[float, float, float, int]:
    """(effect, low, high, number of clusters) of :func:`paired_differences` output: the mean of
    cluster means and its percentile cluster-bootstrap interval (``scipy.stats.bootstrap``).
    low = high = nan with fewer than two clusters."""
    means = _clusters(diffs, diffs["diff"], unit)
    effect = float(means.mean()) if len(means) else math.nan
    if len(means) < 2:
        return effect, math.nan, math.nan, len(means)
    if np.ptp(means) == 0:  # every cluster the same: the bootstrap distribution is one point
        return effect, effect, effect, len(means)
    res = stats.bootstrap((means,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", rng=np.random.default_rng(seed))
    return effect, float(res.confidence_interval.low), float(res.confidence_interval.high), len(means)


def p_improvement(diffs: pd.DataFrame, unit: tuple[str, ...] = UNIT) -> float:
    """Share of units where A beats B (ties: 1/2), averaged within targets, then over targets."""
    wins = np.sign(diffs["diff"].to_numpy(float)) * 0.5 + 0.5
    per_target = pd.Series(wins).groupby(diffs[unit[0]].to_numpy()).mean()
    return float(per_target.mean()) if len(per_target) else math.nan


def decide(effect: float, low: float, high: float, min_effect: float = MIN_EFFECT) -> str:
    """The verdict rule of the module docstring: reproduced / contradicted / inconclusive."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if low > 0 and effect >= min_effect:
        return "reproduced"
    if high < 0 and effect <= -min_effect:
        return "contradicted"
    return "inconclusive"


def combine(verdicts: list[str]) -> str:
    """Verdict of a claim made of several parts (module docstring). Raises on an empty list or an
    unknown verdict."""
    if not verdicts:
        raise ValueError("a claim needs at least one part")
    unknown = [v for v in verdicts if v not in VERDICTS]
    if unknown:
        raise ValueError(f"unknown verdict(s) {unknown}; valid: {VERDICTS}")
    if len(set(verdicts)) == 1:
        return verdicts[0]
    if "reproduced" in verdicts or "partly" in verdicts:
        return "partly"
    return "contradicted" if "contradicted" in verdicts else "inconclusive"


@dataclass(frozen=True)
class PairedComparison:
    """"A beats B on ``metric``", decided on paired units."""

    a: str
    b: str
    metric: str
    lower_is_better: bool
    effect: float
    """Mean paired improvement of A over B (positive: A better), in the metric's units."""
    low: float
    high: float
    p_improvement: float
    n_targets: int
    n_units: int
    unreached_a: int
    """Units where A never reached the matched level (its final value used, with this count)."""
    unreached_b: int
    min_effect: float
    verdict: str
    mean_a: float
    mean_b: float

    def text(self, names: dict | None = None, digits: int = 3) -> str:
        names = names or {}
        na, nb = names.get(self.a, self.a), names.get(self.b, self.b)
        ci = (f"[{self.low:+.{digits}f}, {self.high:+.{digits}f}]" if np.isfinite(self.low) else "no interval")
        flags = ", ".join(f"{n} never reached the level in {k}" for n, k in ((na, self.unreached_a), (nb, self.unreached_b)) if k)
        return (f"{na} {self.mean_a:.{digits}f} vs {nb} {self.mean_b:.{digits}f}: improvement "
                f"{self.effect:+.{digits}f} {ci}, P(improvement) {self.p_improvement:.2f}, "
                f"{self.n_targets} targets x {self.n_units} units -> {self.verdict}"
                + (f" ({flags} unit(s))" if flags else ""))


def compare(table: pd.DataFrame, a: str, b: str, metric: str = "matched_forget",
            lower_is_better: bool = True, min_effect: float = MIN_EFFECT, label: str = "label",
            unit: tuple[str, ...] = UNIT, confidence: float = CONFIDENCE,
            n_resamples: int = N_RESAMPLES) -> PairedComparison:
    """Is A better than B? Paired differences, cluster-bootstrap interval, P(improvement) and the
    verdict of :func:`decide`. Errors as in :func:`paired_differences`."""
    diffs = paired_differences(table, a, b, metric, lower_is_better, label, unit)
    effect, low, high, _ = interval(diffs, confidence, n_resamples, unit=unit)
    return PairedComparison(
        a=a, b=b, metric=metric, lower_is_better=lower_is_better, effect=effect, low=low, high=high, p_improvement=p_improvement(diffs, unit),
        n_targets=int(diffs[unit[0]].nunique()), n_units=len(diffs),
        unreached_a=int((~diffs["a_reached"]).sum()), unreached_b=int((~diffs["b_reached"]).sum()),
        min_effect=min_effect, verdict=decide(effect, low, high, min_effect),
        mean_a=float(diffs["a"].mean()), mean_b=float(diffs["b"].mean()))


@dataclass
class PopulationClaim:
    """A claim decided on the population: its parts (one :class:`PairedComparison` each) and the
    combined verdict (:func:`combine`)."""

    id: str
    statement: str
    parts: list[PairedComparison]
    study: str = ""
    names: dict = field(default_factory=dict)
    source: str = ""
    """Where the claim comes from: ``"paper abstract"``, ``"paper body"``, ``"official code"``
    (its README's recommendation) or ``"ours"`` (an inference of this project)."""

    @property
    def verdict(self) -> str:
        return combine([p.verdict for p in self.parts])

    def rows(self) -> pd.DataFrame:
        """One row per part: claim id, comparison, effect, interval, P(improvement), units,
        unreached counts, the part's verdict and the claim's."""
        return pd.DataFrame([{"claim": self.id, "comparison": f"{self.names.get(p.a, p.a)} vs {self.names.get(p.b, p.b)}",
                              "effect": p.effect, "ci_low": p.low, "ci_high": p.high,
                              "p_improvement": p.p_improvement, "targets": p.n_targets, "units": p.n_units,
                              "unreached_a": p.unreached_a, "unreached_b": p.unreached_b,
                              "part_verdict": p.verdict, "verdict": self.verdict} for p in self.parts])

    def evidence(self) -> str:
        return "; ".join(p.text(self.names) for p in self.parts) + "."

    def to_dict(self) -> dict:
        return {"id": self.id, "statement": self.statement, "study": self.study, "source": self.source,
                "verdict": self.verdict,
                "parts": [asdict(p) for p in self.parts]}

    def _repr_markdown_(self) -> str:
        return (f"**{self.id}** -- {self.statement}\n\n**verdict: {self.verdict}**\n\n"
                + self.rows().to_markdown(index=False, floatfmt=".3f"))


def claims_table(claims: list[PopulationClaim]) -> pd.DataFrame:
    """Every part of every claim (:meth:`PopulationClaim.rows`), in order: the report's first table."""
    return pd.concat([c.rows() for c in claims], ignore_index=True) if claims else pd.DataFrame()
