"""findings.py: the specs the notebooks share and the rules that decide the verdicts.

Hand-made summary tables (no training): every verdict branch is reached, and each test can fail.
"""

import math

import numpy as np
import pandas as pd
import pytest

from satimp_lab import findings as F
from satimp_lab.objectives import get_method
from satimp_lab.report import VERDICTS


def summary(spec: dict[str, list[float]], reached: dict[str, list[bool]] | None = None) -> pd.DataFrame:
    """label -> per-seed matched_forget values (reached defaults to True)."""
    rows = []
    for label, values in spec.items():
        flags = (reached or {}).get(label, [True] * len(values))
        for seed, (v, r) in enumerate(zip(values, flags)):
            rows.append({"label": label, "method": label.split("(")[0], "seed": seed, "matched_forget": v,
                         "reached": r, "eval_model_utility": 0.5})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- specs


def test_spec_is_canonical_so_runs_are_shared():
    # beta=1 for simsat is the registry default: the spec is the plain observation (i) run
    assert F.spec("simsat", beta=1) == {"method": "simsat", "label": "simsat"}
    assert F.spec("simsat", "x", beta=1.0) == {"method": "simsat", "label": "x"}
    s = F.spec("simimp", beta=2)
    assert s["params"] == {"beta_imp": 2.0} and isinstance(s["params"]["beta_imp"], float)
    assert F.spec("group_simsat", group_size=5.0)["params"] == {"group_size": 5}
    assert F.spec("satimp", beta_sat=5.0, beta_imp=0.1) == {"method": "satimp", "label": "satimp"}
    with pytest.raises(ValueError):
        F.spec("simsat", nonsense=1)


def test_specs_resolve_to_valid_methods_and_share_cache_keys():
    all_specs = (F.obs1_specs() + F.obs2_extra_specs() + F.beta_specs() + F.hard_specs()
                 + F.granularity_specs() + F.satimp_grid_specs())
    for s in all_specs:
        get_method(s["method"], **s.get("params", {}))
    key = lambda s: (s["method"], tuple(sorted(s.get("params", {}).items())))  # noqa: E731
    obs1 = {key(s) for s in F.obs1_specs()}
    # the grid's corners and edges are the observation (i) / beta-sweep runs, not new ones
    grid = {key(s) for s in F.satimp_grid_specs()}
    assert {key(F.spec("ga")), key(F.spec("satimp")), key(F.spec("simsat"))} <= grid & obs1
    expected_new = ({key(F.spec("simsat", beta=b)) for b in F.BETAS if b not in F.GRID_BETA_SAT}
                    | {key(F.spec("simimp", beta=b)) for b in F.BETAS if b not in F.GRID_BETA_IMP})
    assert {key(s) for s in F.beta_specs()} - grid == expected_new
    labels = [s["label"] for s in F.satimp_grid_specs()]
    assert len(labels) == len(set(labels)) == len(F.GRID_BETA_SAT) * len(F.GRID_BETA_IMP)


def test_hard_specs_keep_matched_token_counts():
    p = F.spec_params(F.hard_specs((0.3,))).set_index("label")
    assert p.loc["top-30%", "k"] == pytest.approx(0.3)
    assert p.loc["bottom-30%", "k"] == pytest.approx(0.7)  # official bottom-k keeps ~(1-k)
    assert p.loc["random-30%", "k"] == pytest.approx(0.3)


def test_spec_params_lists_defaults_too():
    p = F.spec_params(F.beta_specs(("simsat",), (1.0, 5.0))).set_index("label")
    assert p.loc["simsat(β=1)", "beta_sat"] == 1.0 and p.loc["simsat(β=5)", "beta_sat"] == 5.0


# ---------------------------------------------------------------------------------------------- compare


def test_compare_better_worse_tie_inconclusive():
    s = summary({"a": [0.10, 0.12, 0.11], "b": [0.30, 0.31, 0.29], "c": [0.11, 0.115, 0.105],
                 "noisy": [0.0, 0.4, 0.2], "one": [0.0]})
    assert F.compare(s, "a", "b").outcome == "better"
    assert F.compare(s, "b", "a").outcome == "worse"
    assert F.compare(s, "a", "c").outcome == "tie"
    noisy = F.compare(s, "a", "noisy")
    assert noisy.outcome == "inconclusive" and "spread" in noisy.reason
    assert F.compare(s, "a", "one").outcome == "inconclusive"
    # higher-is-better metrics flip the sign
    assert F.compare(s, "b", "a", lower_is_better=False).outcome == "better"


def test_compare_upper_bound_rule_for_runs_that_never_reached_the_level():
    s = summary({"a": [0.10, 0.11], "b": [0.30, 0.31]}, reached={"a": [False, False]})
    assert F.compare(s, "a", "b").outcome == "better"  # a's value is an upper bound: still lower
    assert F.compare(s, "b", "a").outcome == "worse"  # b loses even to a's upper bound
    s1 = summary({"a": [0.30, 0.31], "b": [0.10, 0.11]}, reached={"a": [False, True]})
    out = F.compare(s1, "a", "b")
    assert out.outcome == "inconclusive" and "upper bound" in out.reason
    s2 = summary({"a": [0.10, 0.11], "b": [0.105, 0.10]}, reached={"b": [True, False]})
    assert F.compare(s2, "a", "b").outcome == "inconclusive"


def curve_frame(runs: dict[tuple[str, int], list[tuple[float, float]]]) -> pd.DataFrame:
    """(label, seed) -> [(retain_es, forget_es), ...] at steps 0, 2, 4, ..."""
    rows = [{"label": label, "seed": seed, "step": 2 * i, "retain_es": r, "forget_es": f}
            for (label, seed), points in runs.items() for i, (r, f) in enumerate(points)]
    return pd.DataFrame(rows)


def test_retain_at_forget_interpolates_first_crossing():
    c = curve_frame({("a", 0): [(0.9, 0.9), (0.8, 0.5), (0.6, 0.1)]})
    assert F.retain_at_forget(c, "a", 0, 0.3) == pytest.approx(0.7)
    assert F.retain_at_forget(c, "a", 0, 0.95) == pytest.approx(0.9)
    assert math.isnan(F.retain_at_forget(c, "a", 0, 0.05))


def fallback_case(a_curves):
    # b (gentle) never reached the matched retain level: it stopped at retain 0.85, forget 0.6
    s = summary({"a": [0.2, 0.21], "b": [0.6, 0.6]}, reached={"b": [False, False]})
    s["matched_retain"] = np.where(s["label"] == "b", 0.85, 0.81)
    c = curve_frame({("a", 0): a_curves, ("a", 1): a_curves,
                     ("b", 0): [(0.9, 0.9), (0.85, 0.6)], ("b", 1): [(0.9, 0.9), (0.85, 0.6)]})
    return s, c


def test_compare_falls_back_to_matched_forget_when_the_loser_never_reached():
    s, c = fallback_case([(0.9, 0.9), (0.89, 0.6), (0.8, 0.2)])   # a at forget 0.6 keeps retain 0.89
    out = F.compare(s, "a", "b", curves=c)
    assert out.outcome == "better" and "matched forget" in out.reason
    assert F.compare(s, "b", "a", curves=c).outcome == "worse"
    assert F.compare(s, "a", "b").outcome == "inconclusive"          # without curves: undecided
    s, c = fallback_case([(0.9, 0.9), (0.84, 0.6), (0.8, 0.2)])   # a keeps no more retain there
    out = F.compare(s, "a", "b", curves=c)
    assert out.outcome == "inconclusive" and "matched forget" in out.reason
    s, c = fallback_case([(0.9, 0.9), (0.89, 0.7)])               # a never gets down to forget 0.6
    assert F.compare(s, "a", "b", curves=c).outcome == "inconclusive"


def test_effect_range_uses_unreached_worst_only_as_weak():
    s, c = fallback_case([(0.9, 0.9), (0.89, 0.6), (0.8, 0.2)])
    assert F.effect_range(s, ["a", "b"]).outcome == "inconclusive"
    r = F.effect_range(s, ["a", "b"], curves=c)
    assert (r.worst, r.outcome) == ("b", "weak")


def test_compare_threshold_is_at_least_min_effect():
    s = summary({"a": [0.100, 0.101], "b": [0.110, 0.111]})  # tiny std, difference 0.01 < MIN_EFFECT
    assert F.compare(s, "a", "b").outcome == "tie"
    assert F.compare(s, "a", "b", min_effect=0.001).outcome == "better"


def test_compare_rejects_unknown_labels_and_columns():
    s = summary({"a": [0.1, 0.2]})
    with pytest.raises(ValueError, match="no run labelled"):
        F.compare(s, "a", "zzz")
    with pytest.raises(ValueError, match="no column"):
        F.compare(s, "a", "a", metric="nope")


def test_effect_range_outcomes():
    strong = summary({"x1": [0.1, 0.11], "x2": [0.4, 0.41], "x3": [0.2, 0.21]})
    r = F.effect_range(strong, ["x1", "x2", "x3"])
    assert (r.best, r.worst, r.outcome) == ("x1", "x2", "strong") and r.gap == pytest.approx(0.3)
    assert F.effect_range(summary({"x1": [0.1, 0.11], "x2": [0.16, 0.17]}), ["x1", "x2"]).outcome == "weak"
    assert F.effect_range(summary({"x1": [0.1, 0.11], "x2": [0.11, 0.12]}), ["x1", "x2"]).outcome == "none"
    assert F.effect_range(summary({"x1": [0.1], "x2": [0.5]}), ["x1", "x2"]).outcome == "inconclusive"
    # an unreached setting can be the best but never the worst
    r = F.effect_range(summary({"x1": [0.1, 0.11], "x2": [0.4, 0.41], "x3": [0.9, 0.91]},
                               reached={"x3": [False, False]}), ["x1", "x2", "x3"])
    assert r.worst == "x2"


# ---------------------------------------------------------------------------------------------- claims


OBS1 = {"ga": [0.5, 0.52, 0.51], "annotated": [0.6, 0.62, 0.61]}


@pytest.mark.parametrize("sat, imp, expected", [
    ([0.2, 0.21, 0.22], [0.5, 0.51, 0.49], "reproduced"),
    ([0.2, 0.21, 0.22], [0.2, 0.21, 0.22], "partly reproduced"),   # beats annotated, ties SimImp
    ([0.9, 0.91, 0.92], [0.5, 0.51, 0.49], "not reproduced"),       # loses to both
    ([0.55, 0.56, 0.57], [0.2, 0.21, 0.22], "partly reproduced"),   # beats annotated, loses to SimImp
    ([0.2], [0.5], "inconclusive"),                                  # one seed
])
def test_obs1_saturation_vs_importance(sat, imp, expected):
    s = summary({**OBS1, "simsat": sat, "simimp": imp})
    claim = F.obs1_saturation_vs_importance(s)
    assert claim.verdict == expected and claim.verdict in VERDICTS
    assert "SimSat" in claim.evidence
    assert ("fewer than 2 seeds" if expected == "inconclusive" else "±") in claim.evidence


@pytest.mark.parametrize("satimp, expected", [
    ([0.1, 0.11, 0.12], "reproduced"),
    ([0.3, 0.31, 0.32], "partly reproduced"),
    ([0.8, 0.81, 0.82], "not reproduced"),
    ([0.0, 0.5, 1.0], "inconclusive"),
])
def test_obs1_combination(satimp, expected):
    s = summary({"simsat": [0.3, 0.31, 0.32], "simimp": [0.5, 0.51, 0.52], "satimp": satimp})
    assert F.obs1_combination(s).verdict == expected


def test_direction_verdict_all_ties_is_not_reproduced():
    assert F._direction_verdict(["tie", "tie"]) == "not reproduced"
    assert F._direction_verdict(["tie", "inconclusive"]) == "inconclusive"


@pytest.mark.parametrize("sat, imp, expected", [
    ([1.0, 0.98], [-1.0, -0.97], "reproduced"),
    ([1.0, 0.98], [0.5, 0.6], "partly reproduced"),
    ([-0.9, -0.8], [0.7, 0.9], "not reproduced"),
    ([0.1, -0.1], [-0.1, 0.05], "inconclusive"),
])
def test_obs2_direction(sat, imp, expected):
    rho = pd.DataFrame({"method": ["simsat"] * len(sat) + ["simimp"] * len(imp) + ["npo"],
                        "spearman_weight_likelihood": sat + imp + [0.4]})
    claim = F.obs2_direction(rho)
    assert claim.verdict == expected
    assert "NPO" in claim.evidence and "by construction" in claim.evidence


def test_obs2_direction_missing_method_is_inconclusive():
    rho = pd.DataFrame({"method": ["simsat"], "spearman_weight_likelihood": [1.0]})
    assert F.obs2_direction(rho).verdict == "inconclusive"


def key_table(key_mean, other_mean, p):
    return pd.DataFrame({"token_group": ["key", "other"], "n_tokens": [100, 300],
                         "mean_likelihood": [key_mean, other_mean], "median_likelihood": [key_mean, other_mean],
                         "mannwhitney_p": [p, p]})


def test_obs2_key_tokens_branches():
    assert F.obs2_key_tokens(key_table(0.4, 0.8, 1e-6)).verdict == "reproduced"
    assert F.obs2_key_tokens(key_table(0.9, 0.6, 1e-6)).verdict == "not reproduced"
    assert F.obs2_key_tokens(key_table(0.4, 0.8, 0.3)).verdict == "inconclusive"
    assert F.obs2_key_tokens(key_table(0.4, 0.8, float("nan"))).verdict == "inconclusive"
    per_run = pd.concat([key_table(0.4, 0.8, 0.01).assign(seed=0), key_table(0.9, 0.8, 0.5).assign(seed=1)])
    claim = F.obs2_key_tokens(key_table(0.4, 0.8, 1e-6), per_run)
    assert "1 of 2 seeds" in claim.evidence
    with pytest.raises(ValueError):
        F.obs2_key_tokens(key_table(0.4, 0.8, 0.01).iloc[:1])


def test_key_tokens_on_real_analysis_output():
    from satimp_lab.analysis import key_vs_other

    rng = np.random.default_rng(0)
    trace = pd.DataFrame({"step": 0, "logp": np.log(np.r_[rng.uniform(0.1, 0.5, 50), rng.uniform(0.6, 1, 150)]),
                          "weight": 1.0, "is_key": np.r_[np.ones(50, bool), np.zeros(150, bool)]})
    assert F.obs2_key_tokens(key_vs_other(trace)).verdict == "reproduced"


@pytest.mark.parametrize("values, expected", [
    ({"s1": [0.1, 0.11], "s2": [0.5, 0.51], "i1": [0.2, 0.21], "i2": [0.6, 0.61]}, "reproduced"),
    ({"s1": [0.1, 0.11], "s2": [0.5, 0.51], "i1": [0.2, 0.21], "i2": [0.21, 0.2]}, "partly reproduced"),
    ({"s1": [0.1, 0.11], "s2": [0.11, 0.1], "i1": [0.2, 0.21], "i2": [0.21, 0.2]}, "not reproduced"),
    ({"s1": [0.1], "s2": [0.5], "i1": [0.2], "i2": [0.6]}, "inconclusive"),
])
def test_obs3_smoothness_and_granularity(values, expected):
    s = summary(values)
    families = {"simsat": ["s1", "s2"], "simimp": ["i1", "i2"]}
    assert F.obs3_smoothness(s, families).verdict == expected
    claim = F.obs3_granularity(s, families)
    assert claim.verdict == expected and claim.id == "obs3_granularity_matters"


@pytest.mark.parametrize("bottom, top, expected", [
    ([0.1, 0.11], [0.4, 0.41], "reproduced"),
    ([0.4, 0.41], [0.1, 0.11], "not reproduced"),
    ([0.1, 0.5], [0.3, 0.31], "inconclusive"),
])
def test_obs3_hard_sampling(bottom, top, expected):
    s = summary({"bottom-50%": bottom, "top-50%": top, "random-50%": [0.3, 0.3]})
    claim = F.obs3_hard_sampling(s, fractions=(0.5,))
    assert claim.verdict == expected and "random-50%" in claim.evidence


def test_obs3_hard_sampling_partly():
    s = summary({"bottom-50%": [0.1, 0.11], "top-50%": [0.4, 0.41],
                 "bottom-30%": [0.3, 0.31], "top-30%": [0.3, 0.31]})
    assert F.obs3_hard_sampling(s, fractions=(0.5, 0.3)).verdict == "partly reproduced"


def grid_summary(cells: dict[tuple[float, float], list[float]]) -> pd.DataFrame:
    return summary({F.grid_label(a, b): v for (a, b), v in cells.items()})


def small_grid(rec, others=0.5, best=None):
    sats, imps = (0.0, 1.0, 5.0), (0.0, 0.1, 1.0)
    cells = {(a, b): [others, others + 0.01] for a in sats for b in imps}
    cells[(5.0, 0.1)] = rec
    if best:
        cells[(1.0, 1.0)] = best
    s = grid_summary(cells)
    return s, F.grid_table(s, sats, imps)


def test_grid_table_kinds_and_rank():
    s, g = small_grid([0.1, 0.11])
    row = g.set_index("label").loc[F.grid_label(5, 0.1)]
    assert row["kind"] == "SatImp" and row["rank"] == 1 and row["n_seeds"] == 2
    kinds = g.set_index(["beta_sat", "beta_imp"])["kind"]
    assert kinds[(0.0, 0.0)] == "GA" and kinds[(1.0, 0.0)] == "SimSat" and kinds[(0.0, 1.0)] == "SimImp"


def test_satimp_recommendation_branches():
    s, g = small_grid([0.1, 0.11])
    assert F.satimp_recommendation(s, g).verdict == "reproduced"            # the best cell
    s, g = small_grid([0.105, 0.11], best=[0.1, 0.105])
    assert F.satimp_recommendation(s, g).verdict == "reproduced"            # ties the best
    s, g = small_grid([0.3, 0.31], best=[0.1, 0.105])
    assert F.satimp_recommendation(s, g).verdict == "partly reproduced"     # rank 2 of 9: top third
    s, g = small_grid([0.9, 0.91], best=[0.1, 0.105])
    assert F.satimp_recommendation(s, g).verdict == "not reproduced"
    s, g = small_grid([0.0, 0.6], best=[0.1, 0.105])
    assert F.satimp_recommendation(s, g).verdict == "inconclusive"
    s = summary({"other": [0.1, 0.2]})
    assert F.satimp_recommendation(s, F.grid_table(s)).verdict == "inconclusive"


def test_satimp_tuned_combination():
    s, g = small_grid([0.1, 0.11])
    claim = F.satimp_tuned_combination(s, g)
    assert claim.verdict == "reproduced" and claim.numbers["SatImp"] == F.grid_label(5, 0.1)
    # every SatImp cell 0.9, SimImp cells 0.5, one SimSat cell 0.1: SatImp loses to both
    s, _ = small_grid([0.9, 0.91], others=0.5)
    for label in s["label"].unique():
        a, b = (float(x) for x in label[len("satimp("):-1].split(", "))
        if a > 0 and b > 0:
            s.loc[s["label"] == label, "matched_forget"] = [0.9, 0.91]
    s.loc[s["label"] == F.grid_label(1.0, 0.0), "matched_forget"] = [0.1, 0.11]
    g = F.grid_table(s, (0.0, 1.0, 5.0), (0.0, 0.1, 1.0))
    claim = F.satimp_tuned_combination(s, g)
    assert claim.verdict == "not reproduced" and claim.numbers["SimSat"] == F.grid_label(1.0, 0.0)
    # beats SimImp, loses to SimSat: partly
    s.loc[s["label"].str.startswith("satimp(5, 0.1"), "matched_forget"] = [0.3, 0.31]
    assert F.satimp_tuned_combination(s, F.grid_table(s, (0.0, 1.0, 5.0), (0.0, 0.1, 1.0))).verdict == \
        "partly reproduced"


# ---------------------------------------------------------------------------------------------- helpers


def test_results_table_and_fmt():
    s = summary({"a": [0.1, 0.3], "b": [0.2]})
    t = F.results_table(s, columns=("matched_forget",)).set_index("label")
    assert t.loc["a", "matched_forget_mean"] == pytest.approx(0.2)
    assert t.loc["a", "matched_forget_std"] == pytest.approx(np.std([0.1, 0.3], ddof=1))
    assert math.isnan(t.loc["b", "matched_forget_std"]) and t.loc["a", "reached"] == 2
    txt = F.results_table(s, columns=("matched_forget",), text=True).set_index("label")
    assert txt.loc["a", "matched_forget"] == "0.200 ± 0.141" and txt.loc["b", "matched_forget"] == "0.200"
    assert F.fmt_pm(float("nan"), 0.1) == "n/a"


def test_relative_weights_and_binning():
    tr = pd.DataFrame({"method": ["m"] * 4, "seed": 0, "step": [0, 0, 1, 1], "weight": [1.0, 3.0, 0.0, 0.0],
                       "p": [0.05, 0.95, 0.5, 0.5], "logp": np.log([0.05, 0.95, 0.5, 0.5])})
    rel = F.relative_weights(tr)
    assert rel["relative_weight"].iloc[:2].tolist() == [0.5, 1.5]
    assert rel["relative_weight"].iloc[2:].isna().all()       # all-zero step: no distribution
    b = F.binned_by_method(rel, n_bins=2)
    assert b.set_index("bin")["mean_weight"].tolist() == [0.5, 1.5]
    b = F.binned_by_method(rel, n_bins=2, scale="max")
    assert b["mean_weight"].tolist() == pytest.approx([1 / 3, 1.0]) and b["mean_weight_raw"].tolist() == [0.5, 1.5]


def test_verdict_phrase_covers_every_verdict():
    assert all(F.verdict_phrase(v) for v in VERDICTS)
