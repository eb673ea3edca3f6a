"""The verdict rule on synthetic tables with known effects (satimp_lab.studies.verdicts).

Each table has two methods, A and B, on 5 targets x 3 seeds; matched forget ES, lower is better,
so an improvement of A over B is B - A > 0.
"""

import numpy as np
import pandas as pd
import pytest

from satimp_lab.studies import verdicts as V


def table(effect_by_target, noise=0.005, seeds=(0, 1, 2), base=0.5, seed=0, reached_a=True):
    """A's values are B's minus the target's effect (+ noise): effect > 0 means A better."""
    rng = np.random.default_rng(seed)
    rows = []
    for t, effect in enumerate(effect_by_target):
        for s in seeds:
            b = base + rng.normal(0, 0.05)  # unit-level variation shared by both methods
            rows.append({"target_seed": t, "seed": s, "label": "B", "matched_forget": b, "reached": True})
            rows.append({"target_seed": t, "seed": s, "label": "A", "reached": reached_a,
                         "matched_forget": b - effect + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def test_positive_effect_is_reproduced():
    c = V.compare(table([0.1] * 5), "A", "B")
    assert c.verdict == "reproduced"
    assert c.effect == pytest.approx(0.1, abs=0.01)
    assert 0 < c.low < c.effect < c.high
    assert c.p_improvement == 1.0
    assert (c.n_targets, c.n_units) == (5, 15)


def test_negative_effect_is_contradicted():
    c = V.compare(table([-0.1] * 5), "A", "B")
    assert c.verdict == "contradicted"
    assert c.high < 0
    assert c.p_improvement == 0.0


def test_swapping_the_methods_flips_the_verdict():
    t = table([0.1] * 5)
    assert V.compare(t, "B", "A").verdict == "contradicted"


def test_higher_is_better_flips_the_sign():
    c = V.compare(table([0.1] * 5), "A", "B", lower_is_better=False)
    assert c.effect == pytest.approx(-0.1, abs=0.01) and c.verdict == "contradicted"


def test_null_effect_is_inconclusive():
    c = V.compare(table([0.0] * 5, noise=0.05), "A", "B")
    assert c.verdict == "inconclusive"
    assert c.low < 0 < c.high


def test_effect_below_the_minimum_is_inconclusive_even_when_the_interval_excludes_zero():
    c = V.compare(table([0.005] * 5, noise=0.0005), "A", "B")
    assert c.low > 0 and c.effect < V.MIN_EFFECT
    assert c.verdict == "inconclusive"
    assert V.compare(table([0.005] * 5, noise=0.0005), "A", "B", min_effect=0.001).verdict == "reproduced"


def test_one_reversed_target_makes_it_inconclusive():
    # four targets say +0.1, one says -0.5: the mean is still negative-ish; no single target carries it
    c = V.compare(table([0.1, 0.1, 0.1, 0.1, -0.5]), "A", "B")
    assert c.verdict == "inconclusive"
    assert c.low < 0 < c.high or c.effect < V.MIN_EFFECT


def test_one_noisy_target_with_the_same_mean_still_reproduces():
    t = table([0.1] * 5)
    noisy = (t["target_seed"] == 4) & (t["label"] == "A")
    t.loc[noisy, "matched_forget"] += np.array([0.15, -0.15, 0.0])  # big seed spread, same target mean
    c = V.compare(t, "A", "B")
    assert c.verdict == "reproduced"
    assert c.p_improvement < 1.0


def test_targets_are_the_clusters():
    # every seed of a target agrees, targets disagree in sign: the interval must contain 0
    c = V.compare(table([0.2, -0.2, 0.2, -0.2, 0.2], noise=0.0), "A", "B")
    assert c.low < 0 < c.high and c.verdict == "inconclusive"


def test_single_target_uses_its_seeds_and_two_units_minimum():
    one = table([0.1], seeds=(0, 1, 2))
    assert V.compare(one, "A", "B").verdict == "reproduced"
    single = table([0.1], seeds=(0,))
    c = V.compare(single, "A", "B")
    assert c.verdict == "inconclusive" and np.isnan(c.low)


def test_bootstrap_is_deterministic():
    t = table([0.05, 0.1, 0.0, 0.08, 0.12], noise=0.03)
    assert V.compare(t, "A", "B") == V.compare(t, "A", "B")


def test_unreached_units_stay_paired_and_are_counted():
    t = table([0.1] * 5, reached_a=False)
    c = V.compare(t, "A", "B")
    assert c.n_units == 15 and c.unreached_a == 15 and c.unreached_b == 0
    assert "never reached" in c.text()


def test_broken_pairing_is_an_error():
    t = table([0.1] * 5)
    t = t.drop(t[(t["label"] == "A") & (t["target_seed"] == 2) & (t["seed"] == 1)].index)
    with pytest.raises(ValueError, match=r"same units.*\[2, 1\]"):
        V.compare(t, "A", "B")


def test_missing_label_and_column_are_named():
    t = table([0.1] * 5)
    with pytest.raises(ValueError, match="'C'"):
        V.compare(t, "A", "C")
    with pytest.raises(ValueError, match="es_at_x"):
        V.compare(t, "A", "B", metric="es_at_x")


@pytest.mark.parametrize("effect,low,high,expected", [
    (0.1, 0.05, 0.15, "reproduced"), (-0.1, -0.15, -0.05, "contradicted"), (0.1, -0.01, 0.2, "inconclusive"),
    (0.01, 0.005, 0.015, "inconclusive"), (-0.01, -0.015, -0.005, "inconclusive"),
    (0.1, float("nan"), float("nan"), "inconclusive")])
def test_decide(effect, low, high, expected):
    assert V.decide(effect, low, high, min_effect=0.02) == expected


@pytest.mark.parametrize("parts,expected", [
    (["reproduced", "reproduced"], "reproduced"), (["contradicted", "contradicted"], "contradicted"),
    (["inconclusive"], "inconclusive"), (["reproduced", "inconclusive"], "partly"),
    (["reproduced", "contradicted"], "partly"), (["contradicted", "inconclusive"], "contradicted")])
def test_combine(parts, expected):
    assert V.combine(parts) == expected


def test_claim_rows_and_verdict():
    pos, neg = V.compare(table([0.1] * 5), "A", "B"), V.compare(table([-0.1] * 5), "A", "B")
    claim = V.PopulationClaim("x", "A beats B", [pos, neg])
    assert claim.verdict == "partly"
    rows = claim.rows()
    assert list(rows["part_verdict"]) == ["reproduced", "contradicted"]
    assert set(rows.columns) >= {"effect", "ci_low", "ci_high", "p_improvement", "verdict"}
    assert "verdict: partly" in claim._repr_markdown_()
