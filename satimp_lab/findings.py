"""The finding notebooks' sweeps and the rules that turn their results into verdicts.

Two kinds of things live here:

* **Specs** -- the lists of ``lab.sweep`` specs each finding notebook runs. They are built by
  :func:`spec`, which writes every run in one canonical way (hyper-parameters equal to the
  registry default are dropped), so the same run requested by two notebooks has the same cache
  key and is computed once. :func:`spec_params` gives every spec's full hyper-parameters.
* **Verdicts** -- pure functions from sweep tables (``Sweep.summary``: one row per run, with
  ``label``, ``seed``, ``matched_forget``, ``reached``; traces and ``analysis`` tables) to
  :class:`~satimp_lab.report.Claim` objects.

The rules (every threshold is a module constant, so a reader can check and change them):

* Methods are compared at **matched retain quality**
  (docs/methods.md#forget-es-at-matched-retain) on ``matched_forget``:
  forget ES where retain ES first falls to ``match_level`` (90 %) of its start; lower is better.
  If a run never got there (``reached`` False), its value is the final forget ES, an *upper
  bound* of its matched value: it can still be shown to beat another method, but not to lose
  to one, nor to tie.
* :func:`compare` (A vs B, per-seed values): with fewer than :data:`MIN_SEEDS` seeds on either
  side the answer is ``inconclusive``. Otherwise let ``d`` = mean(B) − mean(A) and
  ``s`` = pooled std = sqrt((sd_A² + sd_B²) / 2). A is **better** if d > max(s, MIN_EFFECT), **worse**
  if d < −max(s, MIN_EFFECT) (subject to the upper-bound rule above: when the apparent loser never
  reached the matched level and the runs' curves are given, the pair is compared at matched
  *forget* ES instead -- the winner's retain ES where its forget ES first falls to the loser's
  final forget ES, against the loser's final retain ES, same threshold rule); if
  |d| ≤ max(s, MIN_EFFECT) it is a **tie** when s ≤ MIN_EFFECT (the seeds resolve differences of
  MIN_EFFECT and there is none) and ``inconclusive`` when the seed spread is larger than the
  difference.
* :func:`effect_range` ("does this knob matter?"): the best and the worst setting are compared
  with :func:`compare`; the effect is **strong** if the best is better and the gap is at least
  :data:`STRONG_EFFECT`, **weak** if better by less (or better only at matched forget), **none**
  on a tie.

Verdict words (``report.VERDICTS``): *reproduced* -- every comparison the claim makes goes the
paper's way beyond the seed spread; *partly reproduced* -- some do, none goes decisively the
other way (or, where stated, some go each way); *not reproduced* -- the measured direction is
the opposite, or the effect is absent although the seeds could resolve it; *inconclusive* --
single seed, seed spread larger than the differences, or runs that never reached the matched
level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .objectives import get_method
from .report import Claim

# ----------------------------------------------------------------------------------------------
# constants of the rules

METRIC = "matched_forget"
"""The efficacy number: forget ES at matched retain ES (lower = better forgotten)."""
MIN_EFFECT = 0.03
"""Differences of forget ES below this are treated as no difference (3 points of ES)."""
STRONG_EFFECT = 0.10
"""A knob "strongly" affects efficacy if its best and worst settings differ by this much ES."""
MIN_SEEDS = 2
"""Fewer seeds than this per method: no comparison is decided (``inconclusive``)."""
RHO_MIN = 0.3
"""|Spearman(weight, likelihood)| above this counts as a clear direction."""
ALPHA = 0.05
"""Significance level of the key-vs-other token likelihood test (Mann-Whitney U)."""

# ----------------------------------------------------------------------------------------------
# specs shared by the notebooks (identical specs hit the same cached runs)

BETAS = (0.5, 1.0, 2.0, 5.0, 10.0)
"""SimSat / SimImp exponents of the smoothness sweep (docs/methods.md#the-weight-family)."""
HARD_FRACTIONS = (0.5, 0.3)
"""Shares of each answer's tokens kept by top-k / bottom-k / random at matched token counts."""
GROUP_SIZES = (2, 5, 20)
"""Group sizes G of the granularity sweep (on the synthetic benchmark G = 20 is about a whole answer:
a per-answer mean)."""
GRID_BETA_SAT = (0.0, 1.0, 2.0, 5.0, 10.0)
GRID_BETA_IMP = (0.0, 0.1, 0.5, 1.0)
RECOMMENDED = (5.0, 0.1)
"""The official README's SatImp recommendation (beta_sat, beta_imp)."""

NAMES = {"ga": "GA", "simsat": "SimSat", "simimp": "SimImp", "satimp": "SatImp",
         "annotated": "annotation", "npo": "NPO", "simnpo": "SimNPO"}


def _fmt_num(v) -> str:
    return f"{float(v):g}"


def spec(method: str, label: str | None = None, **params) -> dict:
    """One ``lab.sweep`` spec, written canonically so identical runs share a cache entry.

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
    out = {"method": method}
    if changed:
        out["params"] = changed
    out["label"] = label or (method if not changed else
                             method + "(" + ", ".join(f"{k}={_fmt_num(v)}" for k, v in changed.items()) + ")")
    return out


def spec_params(specs: list[dict]) -> pd.DataFrame:
    """One row per spec: ``label``, ``method`` and every resolved hyper-parameter of the method."""
    rows = []
    for s in specs:
        m = get_method(s["method"], **s.get("params", {}))
        rows.append({"label": s.get("label", s["method"]), "method": s["method"], **m.params})
    return pd.DataFrame(rows)


def obs1_specs(include_npo: bool = True) -> list[dict]:
    """Observation (i): GA, SimSat, SimImp, annotation-based importance, SatImp (and NPO)."""
    names = ["ga", "simsat", "simimp", "annotated", "satimp"] + (["npo"] if include_npo else [])
    return [spec(n) for n in names]


def obs2_extra_specs() -> list[dict]:
    """Observation (ii) adds SimNPO (its implicit weights) to the observation (i) runs."""
    return [spec("simnpo")]


def beta_label(method: str, beta: float) -> str:
    return f"{method}(β={_fmt_num(beta)})"


def beta_specs(methods: tuple[str, ...] = ("simsat", "simimp"), betas: tuple[float, ...] = BETAS) -> list[dict]:
    """Observation (iii-a): SimSat and SimImp at every beta (beta = 1 is the observation (i) run)."""
    return [spec(m, beta_label(m, b), beta=b) for m in methods for b in betas]


def hard_label(mode: str, fraction: float) -> str:
    return f"{mode}-{round(100 * fraction)}%"


def hard_specs(fractions: tuple[float, ...] = HARD_FRACTIONS) -> list[dict]:
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


GRANULARITY_LEVELS = ("token", "group", "instance", "instance_norm", "batch")


def granularity_specs(families: tuple[str, ...] = ("simsat", "simimp"),
                      group_sizes: tuple[int, ...] = GROUP_SIZES) -> list[dict]:
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


def grid_spec(beta_sat: float, beta_imp: float) -> dict:
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
                      beta_imps: tuple[float, ...] = GRID_BETA_IMP) -> list[dict]:
    return [grid_spec(a, b) for b in beta_imps for a in beta_sats]


def grid_table(summary: pd.DataFrame, beta_sats=GRID_BETA_SAT, beta_imps=GRID_BETA_IMP,
               metric: str = METRIC) -> pd.DataFrame:
    """Per grid cell: ``beta_sat, beta_imp, label, kind`` (GA / SimSat / SimImp / SatImp), the mean,
    std and count of ``metric`` over seeds, ``reached_all`` and ``rank`` (1 = lowest mean)."""
    rows = []
    for b in beta_imps:
        for a in beta_sats:
            label = grid_label(a, b)
            sel = summary[summary["label"] == label]
            vals = pd.to_numeric(sel[metric], errors="coerce").dropna()
            kind = ("GA" if a == 0 and b == 0 else "SimSat" if b == 0 else "SimImp" if a == 0 else "SatImp")
            rows.append({"beta_sat": a, "beta_imp": b, "label": label, "kind": kind,
                         f"{metric}_mean": vals.mean() if len(vals) else np.nan,
                         f"{metric}_std": vals.std() if len(vals) > 1 else np.nan,
                         "n_seeds": len(vals),
                         "reached_all": bool(sel["reached"].astype(bool).all()) if len(sel) else False})
    out = pd.DataFrame(rows)
    out["rank"] = out[f"{metric}_mean"].rank(method="min").astype("Int64")
    return out


# ----------------------------------------------------------------------------------------------
# tables


def mean_std(values) -> tuple[float, float, int]:
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    return (float(v.mean()) if len(v) else math.nan, float(v.std()) if len(v) > 1 else math.nan, len(v))


def fmt_pm(mean: float, std: float, digits: int = 3) -> str:
    """``"0.412 ± 0.031"`` (``"0.412"`` when the std is undefined, e.g. one seed)."""
    if mean is None or not np.isfinite(mean):
        return "n/a"
    if std is None or not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


DEFAULT_COLUMNS = ("matched_forget", "matched_step", "eval_forget_es", "eval_forget_es_paraphrased",
                   "eval_retain_es", "eval_forget_quality", "eval_model_utility")


def results_table(summary: pd.DataFrame, labels: list[str] | None = None,
                  columns: tuple[str, ...] = DEFAULT_COLUMNS, text: bool = False) -> pd.DataFrame:
    """One row per label (in ``labels`` order): mean and std over seeds of each column, the number
    of seeds and how many reached the matched retain level. ``text=True`` gives ``"m ± s"``
    strings instead of ``_mean``/``_std`` column pairs (for display)."""
    labels = labels or list(dict.fromkeys(summary["label"]))
    rows = []
    for label in labels:
        sel = summary[summary["label"] == label]
        row = {"label": label, "seeds": len(sel),
               "reached": int(sel["reached"].astype(bool).sum()) if "reached" in sel else np.nan}
        for c in columns:
            if c not in sel:
                continue
            m, s, _ = mean_std(sel[c])
            if text:
                row[c] = fmt_pm(m, s)
            else:
                row[f"{c}_mean"], row[f"{c}_std"] = m, s
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# comparisons


@dataclass
class Comparison:
    """A vs B on one metric; ``outcome`` in {"better", "worse", "tie", "inconclusive"} is A's."""

    a: str
    b: str
    mean_a: float
    mean_b: float
    std_a: float
    std_b: float
    n_a: int
    n_b: int
    diff: float
    """mean(B) − mean(A) when lower is better (positive: A better); the sign flips otherwise."""
    threshold: float
    outcome: str
    reason: str = ""

    def text(self, names: dict | None = None) -> str:
        names = names or {}
        na, nb = names.get(self.a, self.a), names.get(self.b, self.b)
        return (f"{na} {fmt_pm(self.mean_a, self.std_a)} vs {nb} {fmt_pm(self.mean_b, self.std_b)} "
                f"(n={self.n_a}/{self.n_b}; {self.outcome}" + (f": {self.reason}" if self.reason else "") + ")")


def _values(summary: pd.DataFrame, label: str, metric: str) -> tuple[np.ndarray, bool]:
    if "label" not in summary.columns:
        raise ValueError("the summary has no 'label' column (pass Sweep.summary)")
    if metric not in summary.columns:
        raise ValueError(f"the summary has no column {metric!r}; has {list(summary.columns)}")
    sel = summary[summary["label"] == label]
    if sel.empty:
        raise ValueError(f"no run labelled {label!r} in the summary (labels: {sorted(set(summary['label']))})")
    vals = pd.to_numeric(sel[metric], errors="coerce").to_numpy(float)
    ok = np.isfinite(vals)
    reached = bool(sel["reached"].astype(bool)[ok].all()) if "reached" in sel else True
    return vals[ok], reached


def retain_at_forget(curves: pd.DataFrame, label: str, seed, level: float, forget_col: str = "forget_es",
                     retain_col: str = "retain_es") -> float:
    """Retain ES of run (``label``, ``seed``) where its forget ES first falls to ``level`` (linear
    interpolation between the two evaluations around the crossing, as in
    ``experiments.forget_at_matched_retain``); nan if it never gets there."""
    ev = curves[(curves["label"] == label) & (curves["seed"] == seed)].dropna(subset=[forget_col, retain_col])
    ev = ev.sort_values("step")
    forget, retain = ev[forget_col].to_numpy(float), ev[retain_col].to_numpy(float)
    below = np.nonzero(forget <= level)[0]
    if len(below) == 0:
        return math.nan
    j = below[0]
    if j == 0:
        return float(retain[0])
    t = (forget[j - 1] - level) / max(forget[j - 1] - forget[j], 1e-12)
    return float(retain[j - 1] + t * (retain[j] - retain[j - 1]))


def _at_matched_forget(summary: pd.DataFrame, curves: pd.DataFrame, winner: str, loser: str,
                       min_effect: float, min_seeds: int) -> tuple[bool, str]:
    """Fallback when ``loser`` never reached the matched retain level: compare at matched *forget*.

    Per seed, the point where ``loser``'s run stopped (its final forget and retain ES; its matched
    point for seeds that did reach the level) is a point of its trade-off curve. ``winner``'s retain
    ES where its own forget ES first falls to that forget level is compared with ``loser``'s retain
    ES there (higher = better), with the same threshold rule as :func:`compare`.
    Returns (winner is better beyond the threshold, text).
    """
    w_vals, l_vals = [], []
    for row in summary[summary["label"] == loser].itertuples():
        w = retain_at_forget(curves, winner, row.seed, row.matched_forget)
        if np.isfinite(w) and np.isfinite(row.matched_retain):
            w_vals.append(w)
            l_vals.append(float(row.matched_retain))
    if len(w_vals) < min_seeds:
        return False, (f"{loser} never reached the matched retain level and {winner} did not reach {loser}'s "
                       f"forget level in {min_seeds} seeds")
    mw, ml = float(np.mean(w_vals)), float(np.mean(l_vals))
    sw, sl = float(np.std(w_vals, ddof=1)), float(np.std(l_vals, ddof=1))
    threshold = max(math.sqrt((sw ** 2 + sl ** 2) / 2), min_effect)
    text = (f"{loser} never reached the matched retain level; at matched forget ES instead, retain ES "
            f"{winner} {fmt_pm(mw, sw)} vs {loser} {fmt_pm(ml, sl)}")
    return mw - ml > threshold, text


def compare(summary: pd.DataFrame, a: str, b: str, metric: str = METRIC, lower_is_better: bool = True,
            min_effect: float = MIN_EFFECT, min_seeds: int = MIN_SEEDS,
            curves: pd.DataFrame | None = None) -> Comparison:
    """Is A better than B on ``metric``? The rule is in the module docstring.

    ``curves`` (``Sweep.curves``): when the apparent loser on a ``matched_*`` metric never reached
    the matched retain level, decide at matched forget ES instead (:func:`_at_matched_forget`);
    without curves such a comparison is inconclusive.
    """
    va, ra = _values(summary, a, metric)
    vb, rb = _values(summary, b, metric)
    ma, mb = (float(v.mean()) if len(v) else math.nan for v in (va, vb))
    sa, sb = (float(v.std(ddof=1)) if len(v) > 1 else math.nan for v in (va, vb))
    sign = 1.0 if lower_is_better else -1.0
    diff = sign * (mb - ma)
    pooled = math.sqrt((sa ** 2 + sb ** 2) / 2) if np.isfinite(sa) and np.isfinite(sb) else math.nan
    threshold = max(pooled, min_effect) if np.isfinite(pooled) else math.nan
    base = dict(a=a, b=b, mean_a=ma, mean_b=mb, std_a=sa, std_b=sb, n_a=len(va), n_b=len(vb), diff=diff,
                threshold=threshold)
    if min(len(va), len(vb)) < min_seeds:
        return Comparison(**base, outcome="inconclusive", reason=f"fewer than {min_seeds} seeds")
    # "matched" only applies to the matched_* columns: other metrics have no upper-bound caveat
    bounded = metric.startswith("matched_")
    for winner, loser, loser_reached, outcome in ((a, b, rb, "better"), (b, a, ra, "worse")):
        if (diff > threshold) if outcome == "better" else (diff < -threshold):
            if not bounded or loser_reached:
                return Comparison(**base, outcome=outcome)
            if curves is None:
                return Comparison(**base, outcome="inconclusive",
                                  reason=f"{loser} did not reach the matched retain level (its value is an upper bound)")
            ok, text = _at_matched_forget(summary, curves, winner, loser, min_effect, min_seeds)
            return Comparison(**base, outcome=outcome if ok else "inconclusive", reason=text)
    if pooled > min_effect:
        return Comparison(**base, outcome="inconclusive", reason="seed spread larger than the difference")
    if bounded and not (ra and rb):
        return Comparison(**base, outcome="inconclusive", reason="a run did not reach the matched retain level")
    return Comparison(**base, outcome="tie")


@dataclass
class EffectRange:
    """How much one knob moves ``metric``: its best vs its worst setting."""

    labels: list[str]
    best: str
    worst: str
    gap: float
    comparison: Comparison | None
    outcome: str
    """"strong", "weak", "none" or "inconclusive"."""
    means: dict = field(default_factory=dict)

    def text(self, names: dict | None = None) -> str:
        names = names or {}
        if self.comparison is None:
            return f"{self.outcome} (fewer than two settings reached the matched level)"
        return (f"best {names.get(self.best, self.best)} {fmt_pm(self.comparison.mean_a, self.comparison.std_a)}, "
                f"worst {names.get(self.worst, self.worst)} {fmt_pm(self.comparison.mean_b, self.comparison.std_b)}: "
                f"gap {self.gap:.3f} -> {self.outcome}"
                + (f" ({self.comparison.reason})" if self.comparison.reason else ""))


def effect_range(summary: pd.DataFrame, labels: list[str], metric: str = METRIC, min_effect: float = MIN_EFFECT,
                 strong: float = STRONG_EFFECT, min_seeds: int = MIN_SEEDS,
                 curves: pd.DataFrame | None = None) -> EffectRange:
    """Best vs worst of ``labels`` (lower ``metric`` = better).

    The best is the lowest mean over all labels; the worst the highest mean over the labels whose
    runs all reached the matched level (an unreached run's value is only an upper bound, so it
    cannot be shown to be the worst) -- with ``curves``, an unreached label with a higher mean is
    tried first (compared at matched forget, see :func:`compare`), and kept if that comparison is
    decided. Outcome: "strong" if the best is better than the worst
    (:func:`compare`) by at least ``strong``; "weak" if better by less; "none" on a tie;
    "inconclusive" otherwise.
    """
    means, reached = {}, {}
    for label in labels:
        v, r = _values(summary, label, metric)
        if len(v):
            means[label], reached[label] = float(v.mean()), r
    if len(means) < 2:
        return EffectRange(list(labels), "", "", math.nan, None, "inconclusive", means)
    best = min(means, key=means.get)
    others = [l for l in means if reached[l] and l != best]
    worst, cmp, outcome = "", None, "inconclusive"
    if others:
        worst = max(others, key=means.get)
        cmp = compare(summary, best, worst, metric, min_effect=min_effect, min_seeds=min_seeds)
        outcome = {"better": "strong" if cmp.diff >= strong else "weak", "tie": "none"}.get(cmp.outcome, "inconclusive")
    if curves is not None and outcome != "strong":
        unreached = [l for l in means if not reached[l] and l != best and (not worst or means[l] > means[worst])]
        if unreached:
            alt = max(unreached, key=means.get)
            alt_cmp = compare(summary, best, alt, metric, min_effect=min_effect, min_seeds=min_seeds, curves=curves)
            if alt_cmp.outcome == "better":
                # decided at matched forget: a real difference, but its size in forget ES at matched
                # retain is unknown (the unreached value is an upper bound): at most "weak"
                worst, cmp, outcome = alt, alt_cmp, "weak"
    if cmp is None:
        return EffectRange(list(labels), best, worst, math.nan, None, "inconclusive", means)
    return EffectRange(list(labels), best, worst, cmp.diff, cmp, outcome, means)


def _direction_verdict(outcomes: list[str]) -> str:
    """Verdict of a claim made of several "A beats B" comparisons (outcomes are A's)."""
    better, worse = outcomes.count("better"), outcomes.count("worse")
    if better == len(outcomes):
        return "reproduced"
    if better and not worse:
        return "partly reproduced"
    if worse and not better:
        return "not reproduced"
    if better and worse:
        return "partly reproduced"
    if outcomes and all(o == "tie" for o in outcomes):
        return "not reproduced"
    return "inconclusive"


def _seeds_note(summary: pd.DataFrame, labels: list[str]) -> str:
    n = summary[summary["label"].isin(labels)].groupby("label")["seed"].nunique()
    return f"{int(n.min())}-{int(n.max())} seeds" if len(n) and n.min() != n.max() else f"{int(n.max()) if len(n) else 0} seed(s)"


# ----------------------------------------------------------------------------------------------
# observation (i)


def obs1_saturation_vs_importance(summary: pd.DataFrame, curves: pd.DataFrame | None = None,
                                  notebook: str = "04_obs1_saturation_vs_importance",
                                  saturation: str = "simsat", importance: tuple[str, ...] = ("simimp", "annotated"),
                                  metric: str = METRIC) -> Claim:
    """"Saturation beats importance": SimSat vs each importance scheme (the likelihood proxy SimImp
    and the annotation-based weights), at matched retain. Verdict by :func:`_direction_verdict`."""
    comps = [compare(summary, saturation, imp, metric, curves=curves) for imp in importance]
    verdict = _direction_verdict([c.outcome for c in comps])
    evidence = (f"Forget ES at matched retain (lower = better; mean ± std over {_seeds_note(summary, [saturation, *importance])}): "
                + "; ".join(c.text(NAMES) for c in comps) + ".")
    return Claim("obs1_saturation_beats_importance", notebook,
                 "Observation (i): saturation-based reweighting (SimSat) unlearns more effectively than "
                 "importance-based reweighting (SimImp, annotated key tokens).",
                 verdict, evidence,
                 {f"{c.b}": {"mean": c.mean_b, "std": c.std_b, "n": c.n_b} for c in comps}
                 | {saturation: {"mean": comps[0].mean_a, "std": comps[0].std_a, "n": comps[0].n_a},
                    "outcomes": {c.b: c.outcome for c in comps}})


def obs1_combination(summary: pd.DataFrame, curves: pd.DataFrame | None = None,
                     notebook: str = "04_obs1_saturation_vs_importance",
                     combined: str = "satimp", parts: tuple[str, ...] = ("simsat", "simimp"),
                     metric: str = METRIC) -> Claim:
    """"The combination is better still": SatImp vs SimSat and vs SimImp at matched retain."""
    comps = [compare(summary, combined, p, metric, curves=curves) for p in parts]
    verdict = _direction_verdict([c.outcome for c in comps])
    evidence = (f"Forget ES at matched retain (mean ± std over {_seeds_note(summary, [combined, *parts])}): "
                + "; ".join(c.text(NAMES) for c in comps) + ".")
    return Claim("obs1_combination_beats_both", notebook,
                 "Observation (i): combining saturation and importance (SatImp) unlearns better than either alone.",
                 verdict, evidence,
                 {c.b: {"mean": c.mean_b, "std": c.std_b, "outcome": c.outcome} for c in comps}
                 | {combined: {"mean": comps[0].mean_a, "std": comps[0].std_a}})


# ----------------------------------------------------------------------------------------------
# observation (ii)


def spearman_by_run(traces: pd.DataFrame, by: tuple[str, ...] = ("method", "seed")) -> pd.DataFrame:
    """Spearman(weight, likelihood) over all traced tokens of each run (every step pooled)."""
    from .analysis import summarise_trace

    return summarise_trace(traces, by=by)[[*[c for c in by if c in traces], "n_tokens",
                                           "spearman_weight_likelihood"]]


def obs2_direction(rho: pd.DataFrame, notebook: str = "03_obs2_weights_vs_likelihood",
                   saturation: str = "simsat", importance: str = "simimp", column: str = "method",
                   rho_min: float = RHO_MIN) -> Claim:
    """Saturation weights rise with likelihood, importance weights fall (Spearman, per run).

    ``rho``: one row per run with ``column`` (method) and ``spearman_weight_likelihood``. Each
    direction holds if the mean rho over runs has the right sign with |rho| > ``rho_min`` and no
    run has the wrong sign. True by construction for token-level SimSat/SimImp (w is a monotone
    function of p): the check guards the implementation; the other methods are reported.
    """
    col = "spearman_weight_likelihood"

    def stat(name):
        v = pd.to_numeric(rho.loc[rho[column] == name, col], errors="coerce").dropna()
        return v

    sat, imp = stat(saturation), stat(importance)
    checks = []
    for v, sign in ((sat, 1.0), (imp, -1.0)):
        if v.empty:
            checks.append("missing")
        elif (sign * v > 0).all() and sign * v.mean() > rho_min:
            checks.append("better")
        elif (sign * v < 0).all() and -sign * v.mean() > rho_min:
            checks.append("worse")
        else:
            checks.append("inconclusive")
    verdict = _direction_verdict(checks) if "missing" not in checks else "inconclusive"
    others = []
    for name in dict.fromkeys(rho[column]):
        v = stat(name)
        if not v.empty:
            others.append(f"{NAMES.get(name, name)} {fmt_pm(v.mean(), v.std() if len(v) > 1 else math.nan, 2)}")
    evidence = ("Spearman rho(weight, likelihood) over every traced forget token (mean ± std over runs): "
                + ", ".join(others) + ". For token-level SimSat/SimImp the sign holds by construction "
                "(w = p^β and (1-p)^β are monotone in p); the check verifies the implementation.")
    return Claim("obs2_weight_direction", notebook,
                 "Observation (ii): saturation gives low weight to low-likelihood tokens, importance gives "
                 "them high weight.", verdict, evidence,
                 {NAMES.get(n, n): float(stat(n).mean()) for n in dict.fromkeys(rho[column]) if not stat(n).empty})


def obs2_key_tokens(key_table: pd.DataFrame, per_run: pd.DataFrame | None = None,
                    notebook: str = "03_obs2_weights_vs_likelihood", alpha: float = ALPHA,
                    where: str = "the target model") -> Claim:
    """Annotated key tokens have lower likelihood than the other answer tokens
    (docs/methods.md#annotation-weighting).

    ``key_table``: :func:`analysis.key_vs_other` output for one token set (two rows, key and
    other). The Mann-Whitney p-value in it must be two-sided. Reproduced if the key mean is lower
    and p < ``alpha``; not reproduced if it is higher and p < ``alpha``; inconclusive otherwise.
    ``per_run`` (optional; the same table with a ``seed`` column, e.g. each run's step 0) adds the
    per-seed means to the evidence.
    """
    rows = key_table.set_index("token_group")
    if not {"key", "other"} <= set(rows.index):
        raise ValueError("key_table needs rows for token_group 'key' and 'other'")
    k, o = rows.loc["key"], rows.loc["other"]
    p_value = float(k["mannwhitney_p"])
    if not (np.isfinite(p_value) and np.isfinite(k["mean_likelihood"]) and np.isfinite(o["mean_likelihood"])):
        verdict = "inconclusive"
    elif p_value < alpha:
        verdict = "reproduced" if k["mean_likelihood"] < o["mean_likelihood"] else "not reproduced"
    else:
        verdict = "inconclusive"
    evidence = (f"On {where}: key tokens mean likelihood {k['mean_likelihood']:.3f} (median "
                f"{k['median_likelihood']:.3f}, n={int(k['n_tokens'])}) vs other answer tokens "
                f"{o['mean_likelihood']:.3f} (median {o['median_likelihood']:.3f}, n={int(o['n_tokens'])}); "
                f"Mann-Whitney two-sided p = {p_value:.2g}.")
    numbers = {"key_mean": float(k["mean_likelihood"]), "other_mean": float(o["mean_likelihood"]), "p": p_value}
    if per_run is not None and len(per_run):
        piv = per_run.pivot_table(index="seed", columns="token_group", values="mean_likelihood")
        lower = int((piv["key"] < piv["other"]).sum())
        evidence += (f" At step 0 of each run (one micro-batch each), key < other in {lower} of {len(piv)} seeds "
                     f"(key {fmt_pm(piv['key'].mean(), piv['key'].std())}, other "
                     f"{fmt_pm(piv['other'].mean(), piv['other'].std())}).")
        numbers["per_seed_key_lower"] = lower
    return Claim("obs2_key_tokens_low_likelihood", notebook,
                 "Importance annotation picks low-likelihood tokens: annotated key tokens are less likely "
                 "under the fine-tuned model than the other answer tokens.", verdict, evidence, numbers)


# ----------------------------------------------------------------------------------------------
# observation (iii)


def _range_verdict(outcomes: list[str]) -> str:
    strong, weak, none = (outcomes.count(x) for x in ("strong", "weak", "none"))
    if outcomes and strong == len(outcomes):
        return "reproduced"
    if strong or weak:
        return "partly reproduced"
    if none:
        return "not reproduced"
    return "inconclusive"


def _knob_claim(claim_id: str, notebook: str, statement: str, knob: str, summary: pd.DataFrame,
                families: dict[str, list[str]], curves: pd.DataFrame | None, metric: str,
                note: str = "") -> Claim:
    """A "this knob strongly affects efficacy" claim: :func:`effect_range` over each family's
    settings of the knob (``families``: name -> labels); reproduced if strong in every family."""
    ranges = {fam: effect_range(summary, labels, metric, curves=curves) for fam, labels in families.items()}
    verdict = _range_verdict([r.outcome for r in ranges.values()])
    evidence = (f"Forget ES at matched retain across {knob} (mean ± std over "
                f"{_seeds_note(summary, sum(families.values(), []))}{note}): "
                + "; ".join(f"{NAMES.get(f, f)}: {r.text()}" for f, r in ranges.items()) + ".")
    return Claim(claim_id, notebook, statement, verdict, evidence,
                 {f: {"best": r.best, "worst": r.worst, "gap": r.gap, "outcome": r.outcome} for f, r in ranges.items()})


def obs3_smoothness(summary: pd.DataFrame, families: dict[str, list[str]], curves: pd.DataFrame | None = None,
                    notebook: str = "05_obs3_smoothness", metric: str = METRIC) -> Claim:
    """"Smoothness (beta) strongly affects efficacy": :func:`effect_range` over each family's beta
    settings (``families``: name -> labels). Reproduced if strong in every family."""
    return _knob_claim("obs3_smoothness_matters", notebook,
                       "Observation (iii): the smoothness of the weights (the exponent β) strongly affects "
                       "unlearning efficacy.", "β", summary, families, curves, metric,
                       note=f"; 'strong' = best beats worst beyond the seed spread by ≥ {STRONG_EFFECT}")


def obs3_hard_sampling(summary: pd.DataFrame, fractions: tuple[float, ...] = HARD_FRACTIONS,
                       curves: pd.DataFrame | None = None, notebook: str = "05_obs3_smoothness",
                       metric: str = METRIC) -> Claim:
    """"Focusing on high-likelihood tokens (bottom-k) beats focusing on low-likelihood ones (top-k)"
    at matched token counts (docs/methods.md#hard-sampling), one comparison per kept fraction."""
    comps = [compare(summary, hard_label("bottom", f), hard_label("top", f), metric, curves=curves) for f in fractions]
    verdict = _direction_verdict([c.outcome for c in comps])
    labels = [hard_label(m, f) for f in fractions for m in ("bottom", "top", "random")]
    evidence = (f"Forget ES at matched retain (mean ± std over {_seeds_note(summary, labels)}), bottom = the "
                "highest-likelihood tokens, top = the lowest-likelihood ones, same number of tokens: "
                + "; ".join(c.text() for c in comps))
    randoms = [l for l in labels if l.startswith("random") and l in set(summary["label"])]
    if randoms:
        evidence += "; random control: " + ", ".join(
            f"{l} {fmt_pm(*mean_std(summary.loc[summary['label'] == l, metric])[:2])}" for l in randoms)
    return Claim("obs3_hard_sampling_bottom_beats_top", notebook,
                 "Hard sampling: unlearning only the high-likelihood tokens (bottom-k, the saturation direction) "
                 "is more effective than unlearning only the low-likelihood tokens (top-k).",
                 verdict, evidence + ".", {c.a: {"mean": c.mean_a, "vs": c.b, "vs_mean": c.mean_b, "outcome": c.outcome}
                                           for c in comps})


def obs3_granularity(summary: pd.DataFrame, families: dict[str, list[str]], curves: pd.DataFrame | None = None,
                     notebook: str = "06_obs3_granularity", metric: str = METRIC) -> Claim:
    """"Granularity strongly affects efficacy": :func:`effect_range` over each family's granularity
    levels. The paper gives no direction; the evidence names the measured best and worst."""
    return _knob_claim("obs3_granularity_matters", notebook,
                       "Observation (iii): the granularity of the weights (token, group, instance, batch) "
                       "strongly affects unlearning efficacy.", "granularities", summary, families, curves, metric)


# ----------------------------------------------------------------------------------------------
# SatImp grid


def satimp_recommendation(summary: pd.DataFrame, grid: pd.DataFrame, recommended: tuple[float, float] = RECOMMENDED,
                          curves: pd.DataFrame | None = None, notebook: str = "07_satimp_grid",
                          metric: str = METRIC) -> Claim:
    """Where the official (5, 0.1) lands in the grid (``grid``: :func:`grid_table`).

    Reproduced if it is the best cell or ties with the best (:func:`compare`); partly reproduced
    if the best cell beats it but it ranks in the top third; not reproduced if the best beats it
    and it ranks lower; inconclusive when the comparison with the best is.
    """
    rec_label = grid_label(*recommended)
    col = f"{metric}_mean"
    if rec_label not in set(grid["label"]) or not np.isfinite(grid.loc[grid["label"] == rec_label, col]).all():
        return Claim("satimp_recommended_near_best", notebook, _REC_CLAIM, "inconclusive",
                     f"the recommended cell {rec_label} was not run", {})
    valid = grid.dropna(subset=[col])
    rank = int(valid.loc[valid["label"] == rec_label, "rank"].iloc[0])
    n = len(valid)
    best = valid.sort_values(col).iloc[0]["label"]
    top_third = rank <= math.ceil(n / 3)
    if best == rec_label:
        verdict, cmp = "reproduced", None
    else:
        cmp = compare(summary, best, rec_label, metric, curves=curves)
        verdict = {"tie": "reproduced", "better": "partly reproduced" if top_third else "not reproduced"}.get(
            cmp.outcome, "inconclusive")
    evidence = (f"{rec_label} ranks {rank} of {n} grid cells by mean forget ES at matched retain "
                f"({_seeds_note(summary, list(valid['label']))} per cell)"
                + ("; it is the best cell." if cmp is None else f"; best cell {cmp.text()}."))
    return Claim("satimp_recommended_near_best", notebook, _REC_CLAIM, verdict, evidence,
                 {"rank": rank, "cells": n, "best": best})


_REC_CLAIM = ("SatImp's recommended exponents (β_sat = 5, β_imp = 0.1) are a good setting: at or near the "
              "best of a β_sat × β_imp grid.")


def satimp_tuned_combination(summary: pd.DataFrame, grid: pd.DataFrame, curves: pd.DataFrame | None = None,
                             notebook: str = "07_satimp_grid", metric: str = METRIC) -> Claim:
    """Best SatImp cell (both exponents > 0) vs the best pure SimSat (β_imp = 0) and the best pure
    SimImp (β_sat = 0) cell: the combination claim with every method at its best grid β. The
    winners are picked on the same runs, so the comparison is optimistic for all three alike."""
    col = f"{metric}_mean"
    valid = grid.dropna(subset=[col])
    best = {kind: valid[valid["kind"] == kind].sort_values(col)["label"].iloc[0]
            for kind in ("SatImp", "SimSat", "SimImp") if (valid["kind"] == kind).any()}
    if "SatImp" not in best or len(best) < 3:
        return Claim("satimp_tuned_combination", notebook, _TUNED_CLAIM, "inconclusive",
                     "the grid lacks SatImp, SimSat or SimImp cells", {})
    comps = [compare(summary, best["SatImp"], best[k], metric, curves=curves) for k in ("SimSat", "SimImp")]
    verdict = _direction_verdict([c.outcome for c in comps])
    evidence = ("Best cell of each kind in the grid (forget ES at matched retain): "
                + "; ".join(c.text() for c in comps) + ".")
    return Claim("satimp_tuned_combination", notebook, _TUNED_CLAIM, verdict, evidence,
                 {k: v for k, v in best.items()} | {"outcomes": [c.outcome for c in comps]})


_TUNED_CLAIM = ("With each method at its best β in the grid, SatImp (both exponents > 0) unlearns better than "
                "pure saturation and pure importance weighting.")


# ----------------------------------------------------------------------------------------------
# helpers for the notebooks' figures and text


def verdict_phrase(verdict: str) -> str:
    """Plain words for a verdict, for generated prose."""
    return {"reproduced": "reproduces at this scale",
            "partly reproduced": "reproduces only in part at this scale",
            "not reproduced": "does not reproduce at this scale",
            "inconclusive": "cannot be decided at this scale (the seeds disagree, a run did not reach "
                            "the matched level, or there is a single seed)"}[verdict]


def relative_weights(traces: pd.DataFrame, by: tuple[str, ...] = ("method", "seed", "step")) -> pd.DataFrame:
    """The traces with ``relative_weight`` = weight / mean weight of its (run, step) micro-batch.

    Methods differ in the scale of their weights (SatImp's peak is 0.6, NPO's sequence weights
    use a per-sequence reduction); the scale acts like a learning rate. Dividing by the batch mean
    keeps what the observations are about: *which* tokens get more than the average weight.
    """
    keys = [c for c in by if c in traces.columns]
    mean = traces.groupby(keys)["weight"].transform("mean")
    out = traces.copy()
    out["relative_weight"] = np.where(mean > 0, traces["weight"] / mean.where(mean > 0, 1.0), np.nan)
    return out


def binned_by_method(traces: pd.DataFrame, n_bins: int = 10, weight: str = "relative_weight",
                     label: str = "method", scale: str | None = None) -> pd.DataFrame:
    """:func:`analysis.binned_mean_weight` of ``weight`` vs likelihood per ``label`` (all rows pooled).

    ``scale="max"`` divides each label's bin means by its largest bin mean (1 = the likelihood range
    the scheme favours most), so schemes of very different spread share one axis; the unscaled
    value stays in ``mean_weight_raw``.
    """
    from .analysis import binned_mean_weight

    if scale not in (None, "max"):
        raise ValueError(f"scale must be None or 'max', got {scale!r}")
    frames = []
    for name, rows in traces.groupby(label, sort=False):
        rows = rows.dropna(subset=[weight])
        b = binned_mean_weight(rows["p"].clip(0, 1), rows[weight], n_bins=n_bins)
        b["mean_weight_raw"] = b["mean_weight"]
        if scale == "max" and np.nanmax(b["mean_weight"].to_numpy(float), initial=0.0) > 0:
            b["mean_weight"] = b["mean_weight"] / np.nanmax(b["mean_weight"].to_numpy(float))
        frames.append(b.assign(**{label: name}))
    return pd.concat(frames, ignore_index=True)


def target_token_table(lab, split: str | None = None, batch_size: int = 64) -> pd.DataFrame:
    """Every answer token of the forget split under the *target* model (before any unlearning), as
    a trace-like table: ``example_id, position, token_id, logp, p, is_key`` (``weight`` = 1)."""
    import torch

    from .batching import encode_dataset, iterate_batches, token_logprobs

    target = lab.target
    split = split or lab.setting.forget_split
    encoded = encode_dataset(target.tokenizer, lab.benchmark[split], target.tier.prompt_format)
    frames = []
    model = target.model
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in iterate_batches(encoded, batch_size, target.tokenizer.pad_token_id):
            out = token_logprobs(model, batch)
            rows, pos = out.mask.nonzero(as_tuple=True)
            frames.append(pd.DataFrame({
                "example_id": batch["example_id"][rows.cpu()].numpy(), "position": pos.cpu().numpy(),
                "token_id": out.labels[out.mask].cpu().numpy(), "logp": out.logp[out.mask].cpu().double().numpy(),
                "is_key": out.key_mask[out.mask].cpu().numpy()}))
    model.train(was_training)
    table = pd.concat(frames, ignore_index=True)
    table["p"] = np.exp(table["logp"])
    table["weight"] = 1.0
    return table


def target_batch(lab, n: int = 8, split: str | None = None):
    """``batching.TokenLogprobs`` of the first ``n`` forget rows under the target model (no grad)."""
    import torch

    from .batching import collate, encode_dataset, token_logprobs

    target = lab.target
    split = split or lab.setting.forget_split
    rows = lab.benchmark[split].select(range(min(n, len(lab.benchmark[split]))))
    encoded = encode_dataset(target.tokenizer, rows, target.tier.prompt_format)
    model = target.model
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = token_logprobs(model, collate(encoded, target.tokenizer.pad_token_id))
    model.train(was_training)
    return out


def trace_statistics(traces: pd.DataFrame, label: str = "label") -> pd.DataFrame:
    """Weight-distribution statistics per run, averaged over the run's steps, then over seeds:
    ``label``, and mean (and std over seeds) of ``normalised_entropy``, ``ess_fraction``,
    ``gini``, ``spearman_weight_likelihood``, ``mean_weight``."""
    from .analysis import summarise_trace

    stats = summarise_trace(traces, by=(label, "seed", "step"))
    cols = ["normalised_entropy", "ess_fraction", "gini", "spearman_weight_likelihood", "mean_weight"]
    per_run = stats.groupby([label, "seed"], sort=False)[cols].mean().reset_index()
    agg = per_run.groupby(label, sort=False)[cols].agg(["mean", "std"])
    agg.columns = [f"{c}_{s}" for c, s in agg.columns]
    return agg.reset_index()


def scale_caveat(lab, n_steps: int | None = None, n_seeds: int | None = None) -> str:
    """Why a claim measured on 7B models may not transfer to this setting, with this setting's
    own numbers (model size, data, steps, seeds) -- for the notebooks' generated prose."""
    s = lab.setting
    n_params = sum(p.numel() for p in lab.target.model.parameters())
    n_forget = len(lab.benchmark[s.forget_split])
    steps = f"{n_steps} optimiser steps" if n_steps is not None else f"{s.base.epochs:g} epochs"
    seeds = n_seeds if n_seeds is not None else len(s.seeds)
    return (f"Plausible reasons at this scale: a {n_params / 1e6:.2f}M-parameter model (tier {s.tier!r}) trained "
            f"from scratch instead of a 7B chat model; {n_forget} templated synthetic forget answers in which "
            f"many tokens are trivially predictable; {steps} at lr {s.base.lr:g}; and {seeds} seed(s), so "
            f"differences smaller than the seed spread (or than {MIN_EFFECT} ES) are not counted.")
