"""Unit tests for satimp_lab.unlearning.weight_stats: exact values on hand-made inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from satimp_lab.studies import tables as T
from satimp_lab.unlearning import weight_stats as A

# ----------------------------------------------------------------------------- smoothness statistics


@pytest.mark.parametrize("n", [2, 7, 10, 30, 101])
def test_uniform_weights(n):
    w = np.full(n, 0.37)
    assert A.normalised_entropy(w) == pytest.approx(1.0, abs=1e-12)
    assert A.effective_sample_size(w) == pytest.approx(n)
    assert A.gini(w) == pytest.approx(0.0, abs=1e-12)
    assert A.top_share(w, 0.1) == pytest.approx(math.ceil(round(0.1 * n, 9)) / n)


def test_uniform_top_share_known_values():
    assert A.top_share(np.ones(30), 0.1) == pytest.approx(3 / 30)
    assert A.top_share(np.ones(7), 0.1) == pytest.approx(1 / 7)
    assert A.top_share(np.ones(11), 0.1) == pytest.approx(2 / 11)
    # float traps: 0.07 * 100 = 7.000000000000001 and 0.28 * 25 = 7.000000000000001, whose ceil is 8
    assert A.top_share(np.ones(100), 0.07) == pytest.approx(7 / 100)
    assert A.top_share(np.ones(25), 0.28) == pytest.approx(7 / 25)


@pytest.mark.parametrize("n", [2, 5, 10])
def test_one_hot_weights(n):
    w = np.zeros(n)
    w[n // 2] = 2.5
    assert A.normalised_entropy(w) == pytest.approx(0.0, abs=1e-12)
    assert A.effective_sample_size(w) == pytest.approx(1.0)
    assert A.gini(w) == pytest.approx((n - 1) / n)
    assert A.top_share(w, 0.1) == pytest.approx(1.0)


def test_hand_computed_small_array():
    w = np.array([3.0, 1.0, 4.0, 2.0])  # unsorted on purpose
    # ESS = (1+2+3+4)^2 / (1+4+9+16) = 100/30
    assert A.effective_sample_size(w) == pytest.approx(10 / 3)
    # Gini = sum_ij |wi - wj| / (2 n sum w) = 2*(1+2+3+1+2+1) / (2*4*10) = 0.25
    assert A.gini(w) == pytest.approx(0.25)
    q = np.array([0.1, 0.2, 0.3, 0.4])
    assert A.normalised_entropy(w) == pytest.approx(-(q * np.log(q)).sum() / np.log(4))
    assert A.normalised_entropy(w) == pytest.approx(0.923220, abs=1e-6)
    assert A.top_share(w, 0.25) == pytest.approx(0.4)
    assert A.top_share(w, 0.5) == pytest.approx(0.7)
    assert A.top_share(w, 1.0) == pytest.approx(1.0)


def test_statistics_are_scale_invariant_and_accept_torch():
    w = np.array([0.5, 0.1, 0.9, 0.3, 0.3])
    s1 = A.distribution_summary(w)
    s2 = A.distribution_summary(torch.tensor(w * 7.0, dtype=torch.float32))
    for key in ("normalised_entropy", "ess", "ess_fraction", "gini", "top_share"):
        assert s1[key] == pytest.approx(s2[key], rel=1e-6)
    assert s2["mean"] == pytest.approx(7 * w.mean(), rel=1e-6)


def test_distribution_summary_keys_and_values():
    w = np.array([1.0, 2.0, 3.0, 4.0])
    s = A.distribution_summary(w)
    assert tuple(s) == A.SUMMARY_STATISTICS
    assert s["n"] == 4
    assert s["mean"] == pytest.approx(2.5)
    assert s["std"] == pytest.approx(np.std(w))
    assert s["ess"] == pytest.approx(10 / 3)
    assert s["ess_fraction"] == pytest.approx(10 / 12)
    assert s["gini"] == pytest.approx(0.25)


def test_all_zero_weights_are_nan():
    w = np.zeros(5)
    assert math.isnan(A.normalised_entropy(w))
    assert math.isnan(A.effective_sample_size(w))
    assert math.isnan(A.gini(w))
    assert math.isnan(A.top_share(w))
    s = A.distribution_summary(w)
    assert s["mean"] == 0 and s["n"] == 5


def test_single_weight():
    assert math.isnan(A.normalised_entropy([3.0]))
    assert A.effective_sample_size([3.0]) == 1.0
    assert A.gini([3.0]) == 0.0
    assert A.top_share([3.0]) == 1.0


@pytest.mark.parametrize(
    "fn",
    [A.normalised_entropy, A.effective_sample_size, A.gini, A.top_share, A.distribution_summary],
)
def test_empty_and_invalid_weights_raise(fn):
    with pytest.raises(ValueError, match="empty"):
        fn(np.array([]))
    with pytest.raises(ValueError, match="negative"):
        fn(np.array([1.0, -0.5]))
    with pytest.raises(ValueError, match="nan"):
        fn(np.array([1.0, np.nan]))


def test_top_share_rejects_bad_fraction():
    with pytest.raises(ValueError, match="fraction"):
        A.top_share([1.0, 2.0], 0.0)
    with pytest.raises(ValueError, match="fraction"):
        A.top_share([1.0, 2.0], 1.5)


# ----------------------------------------------------------------------------- observation (ii)


def test_spearman_signs():
    p = np.array([0.05, 0.9, 0.3, 0.5, 0.12, 0.77, 0.61])
    assert A.weight_likelihood_spearman(p**2, p) == pytest.approx(1.0)
    assert A.weight_likelihood_spearman((1 - p) ** 2, p) == pytest.approx(-1.0)
    # ranks only: logp gives the same answer as p
    assert A.weight_likelihood_spearman((1 - p) ** 2, np.log(p)) == pytest.approx(-1.0)


def test_spearman_partial_value():
    # ranks w: [1,3,2,4], p: [1,2,3,4] -> d^2 = 0+1+1+0 = 2 -> rho = 1 - 6*2/(4*15) = 0.8
    assert A.weight_likelihood_spearman([1.0, 3.0, 2.0, 4.0], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.8)


def test_spearman_constant_is_nan_without_warning(recwarn):
    assert math.isnan(A.weight_likelihood_spearman(np.ones(4), [0.1, 0.2, 0.3, 0.4]))
    assert math.isnan(A.weight_likelihood_spearman([0.1, 0.2, 0.3, 0.4], np.full(4, 0.5)))
    assert math.isnan(A.weight_likelihood_spearman([0.3], [0.4]))
    assert len(recwarn) == 0


def test_spearman_errors():
    with pytest.raises(ValueError, match="empty"):
        A.weight_likelihood_spearman([], [])
    with pytest.raises(ValueError, match="size"):
        A.weight_likelihood_spearman([1.0, 2.0], [0.1, 0.2, 0.3])


def test_binned_mean_weight_hand_example():
    p = np.array([0.1, 0.2, 0.6, 0.65, 0.9, 1.0])
    w = np.array([1.0, 3.0, 2.0, 4.0, 5.0, 7.0])
    df = A.binned_mean_weight(p, w, n_bins=4)
    assert list(df["bin"]) == [0, 1, 2, 3]
    np.testing.assert_allclose(df["left"], [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(df["right"], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(df["centre"], [0.125, 0.375, 0.625, 0.875])
    assert list(df["count"]) == [2, 0, 2, 2]  # p = 1.0 lands in the last bin
    np.testing.assert_allclose(df["mean_weight"], [2.0, np.nan, 3.0, 6.0])
    np.testing.assert_allclose(df["mean_likelihood"], [0.15, np.nan, 0.625, 0.95])
    np.testing.assert_allclose(df["weight_share"], [4 / 22, 0.0, 6 / 22, 12 / 22])


def test_binned_mean_weight_errors():
    with pytest.raises(ValueError, match="empty"):
        A.binned_mean_weight([], [])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        A.binned_mean_weight([-0.5, -1.0], [1.0, 1.0])  # log-likelihoods passed by mistake
    with pytest.raises(ValueError, match="n_bins"):
        A.binned_mean_weight([0.5], [1.0], n_bins=0)


def _key_trace():
    p_key = [0.1, 0.2, 0.15, 0.05, 0.12]
    p_other = [0.8, 0.9, 0.7, 0.95, 0.85]
    p = np.array(p_key + p_other)
    return pd.DataFrame(
        {
            "step": 0,
            "example_id": [0] * 5 + [1] * 5,
            "position": np.arange(10),
            "token_id": np.arange(10) + 100,
            "logp": np.log(p),
            "weight": [2.0] * 5 + [0.5] * 5,
            "is_key": [True] * 5 + [False] * 5,
        }
    )


def test_key_vs_other_hand_made():
    df = A.key_vs_other(_key_trace())
    key = df.set_index("token_group").loc["key"]
    other = df.set_index("token_group").loc["other"]
    assert key["n_tokens"] == 5 and other["n_tokens"] == 5
    assert key["mean_likelihood"] == pytest.approx(0.124)
    assert key["median_likelihood"] == pytest.approx(0.12)
    assert other["mean_likelihood"] == pytest.approx(0.84)
    assert key["mean_logp"] == pytest.approx(np.mean(np.log([0.1, 0.2, 0.15, 0.05, 0.12])))
    assert key["mean_weight"] == pytest.approx(2.0)
    assert key["weight_share"] == pytest.approx(0.8)
    assert other["weight_share"] == pytest.approx(0.2)
    # completely separated samples of 5 vs 5: exact two-sided p = 2 / C(10, 5)
    assert key["mannwhitney_p"] == pytest.approx(2 / 252)
    assert df.attrs["mannwhitney_p"] == pytest.approx(2 / 252)
    less = A.key_vs_other(_key_trace(), alternative="less")
    assert less.attrs["mannwhitney_p"] == pytest.approx(1 / 252)
    greater = A.key_vs_other(_key_trace(), alternative="greater")
    assert greater.attrs["mannwhitney_p"] > 0.99


def test_key_vs_other_step_and_by():
    t0 = _key_trace()
    t1 = t0.assign(step=1, logp=np.log(np.full(10, 0.5)))
    both = pd.concat([t0.assign(method="a"), t1.assign(method="a"), t0.assign(method="b")])
    df = A.key_vs_other(both, by="method", step=1)
    assert list(df["method"]) == ["a", "a"]
    assert df["mean_likelihood"].tolist() == pytest.approx([0.5, 0.5])
    df = A.key_vs_other(both, by=("method", "seed"))  # 'seed' absent: dropped
    assert list(zip(df["method"], df["token_group"])) == [("a", "key"), ("a", "other"), ("b", "key"), ("b", "other")]
    assert df.loc[(df.method == "b") & (df.token_group == "key"), "n_tokens"].item() == 5
    with pytest.raises(ValueError, match="step 7"):
        A.key_vs_other(both, step=7)


def test_key_vs_other_one_side_empty():
    t = _key_trace().assign(is_key=False)
    df = A.key_vs_other(t)
    key = df.set_index("token_group").loc["key"]
    assert key["n_tokens"] == 0 and math.isnan(key["mean_likelihood"]) and math.isnan(key["mannwhitney_p"])


# ----------------------------------------------------------------------------- traces


def _toy_trace():
    """Two methods x two steps, 4 tokens each; weights built from p so the signs are known."""
    rows = []
    p = np.array([0.2, 0.4, 0.6, 0.8])
    for method, wfun in (("simsat", lambda q: q**2), ("simimp", lambda q: (1 - q) ** 2)):
        for step, shift in ((0, 0.0), (1, -0.1)):
            q = p + shift
            for i, (qi, wi) in enumerate(zip(q, wfun(q))):
                rows.append(dict(method=method, step=step, example_id=i // 2, position=i % 2, token_id=i,
                                 logp=np.log(qi), weight=wi, is_key=i == 0))
    return pd.DataFrame(rows)


def test_summarise_trace_groups():
    t = _toy_trace()
    s = A.summarise_trace(t)
    assert len(s) == 4
    assert list(zip(s["method"], s["step"])) == [("simimp", 0), ("simimp", 1), ("simsat", 0), ("simsat", 1)]
    assert (s["n_tokens"] == 4).all()
    sat0 = s[(s.method == "simsat") & (s.step == 0)].iloc[0]
    assert sat0["mean_weight"] == pytest.approx(np.mean([0.04, 0.16, 0.36, 0.64]))
    assert sat0["mean_likelihood"] == pytest.approx(0.5)
    assert sat0["mean_logp"] == pytest.approx(np.mean(np.log([0.2, 0.4, 0.6, 0.8])))
    assert sat0["spearman_weight_likelihood"] == pytest.approx(1.0)
    assert sat0["ess"] == pytest.approx(A.effective_sample_size([0.04, 0.16, 0.36, 0.64]))
    imp1 = s[(s.method == "simimp") & (s.step == 1)].iloc[0]
    assert imp1["mean_weight"] == pytest.approx(np.mean((1 - np.array([0.1, 0.3, 0.5, 0.7])) ** 2))
    assert imp1["spearman_weight_likelihood"] == pytest.approx(-1.0)
    for col in ("weight_std", "normalised_entropy", "ess_fraction", "gini", "top_share"):
        assert col in s.columns


def test_summarise_trace_missing_optional_columns():
    t = _toy_trace()
    s = A.summarise_trace(t[t.method == "simsat"].drop(columns="method"))
    assert list(s["step"]) == [0, 1] and "method" not in s.columns
    whole = A.summarise_trace(t, by=None)
    assert len(whole) == 1 and whole["n_tokens"].item() == 16
    with pytest.raises(ValueError, match="empty"):
        A.summarise_trace(t.iloc[:0])
    with pytest.raises(ValueError, match="weight"):
        A.summarise_trace(t.drop(columns="weight"))


def test_dynamics_single_run_and_callable():
    t = _toy_trace()
    d = A.dynamics(t, "mean_weight")
    assert list(d.columns) == ["method", "step", "value", "std", "n_runs"]
    sat = d[d.method == "simsat"]
    # SimSat weights fall as likelihoods fall (spec E.13)
    assert sat["value"].tolist() == pytest.approx(
        [np.mean(np.array([0.2, 0.4, 0.6, 0.8]) ** 2), np.mean(np.array([0.1, 0.3, 0.5, 0.7]) ** 2)]
    )
    assert sat["value"].iloc[1] < sat["value"].iloc[0]
    assert (d["n_runs"] == 1).all() and d["std"].isna().all()
    ent = A.dynamics(t, "normalised_entropy")
    assert ent["value"].tolist() == pytest.approx(
        [A.normalised_entropy(g.weight) for _, g in t.groupby(["method", "step"])]
    )
    n = A.dynamics(t, lambda g: float(len(g)))
    assert (n["value"] == 4).all()
    with pytest.raises(ValueError, match="unknown statistic"):
        A.dynamics(t, "no_such_statistic")


def test_dynamics_averages_over_seeds():
    t = _toy_trace()
    t = t[t.method == "simsat"].drop(columns="method")
    t2 = pd.concat([t.assign(seed=0), t.assign(seed=1, weight=t.weight * 3)])
    d = A.dynamics(t2, "mean_weight")
    assert list(d.columns) == ["step", "value", "std", "n_runs"]
    m0 = np.mean(np.array([0.2, 0.4, 0.6, 0.8]) ** 2)
    assert d["value"].iloc[0] == pytest.approx(2 * m0)  # mean of m0 and 3*m0
    assert d["std"].iloc[0] == pytest.approx(np.std([m0, 3 * m0], ddof=1))
    assert (d["n_runs"] == 2).all()


def test_dynamics_requires_step():
    with pytest.raises(ValueError, match="step"):
        A.dynamics(_toy_trace().drop(columns="step"))


# ----------------------------------------------------------------------------- granularity


def _batch():
    g = torch.Generator().manual_seed(0)
    logp = torch.log(torch.rand(3, 12, generator=g, dtype=torch.float64) * 0.6 + 0.4)  # p in [0.4, 1)
    mask = torch.zeros(3, 12)
    mask[0, :12] = 1
    mask[1, 2:9] = 1
    mask[2, 1:5] = 1
    return logp, mask


@pytest.mark.parametrize("kind", ["saturation", "importance"])
def test_granularity_summary(kind):
    from satimp_lab.unlearning import weighting

    logp, mask = _batch()
    beta = 2.0
    df = A.granularity_summary(logp, mask, beta, kind=kind, group_sizes=(2, 5))
    assert list(df["granularity"]) == ["token", "group", "group", "instance", "instance_norm", "batch"]
    from satimp_lab.unlearning.objectives import GRANULARITIES

    assert list(dict.fromkeys(df["granularity"])) == list(GRANULARITIES)  # one vocabulary: the methods'
    assert df["group_size"].iloc[1] == 2 and df["group_size"].iloc[2] == 5 and df["group_size"].isna().iloc[0]

    valid = mask.bool()
    fn = weighting.saturation if kind == "saturation" else weighting.importance
    direct = A.distribution_summary(fn(logp, mask, beta)[valid].double().numpy())
    token = df.iloc[0]
    n = int(valid.sum())
    assert token["n"] == n
    for key in A.SUMMARY_STATISTICS:
        assert token[key] == pytest.approx(direct[key], rel=1e-6)
    sign = 1.0 if kind == "saturation" else -1.0
    assert token["spearman_weight_likelihood"] == pytest.approx(sign)

    # group means preserve each sequence's weight sum, so the mean over all tokens is unchanged
    assert df.iloc[1]["mean"] == pytest.approx(token["mean"], rel=1e-6)
    # coarser buckets are smoother
    assert df.iloc[2]["normalised_entropy"] >= df.iloc[1]["normalised_entropy"] >= token["normalised_entropy"] - 1e-12

    batch = df.iloc[-1]
    assert batch["n"] == n
    assert batch["normalised_entropy"] == pytest.approx(1.0)
    assert batch["ess"] == pytest.approx(n)
    assert batch["gini"] == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(batch["spearman_weight_likelihood"])


def test_granularity_summary_rejects_bad_input():
    logp, mask = _batch()
    with pytest.raises(ValueError, match="kind"):
        A.granularity_summary(logp, mask, 1.0, kind="both")
    with pytest.raises(ValueError, match="valid"):
        A.granularity_summary(logp, torch.zeros_like(mask), 1.0)
    with pytest.raises(ValueError, match="shape"):
        A.granularity_summary(logp, mask[:, :5], 1.0)


# -- tables of sweep summaries and traces (the notebooks' illustrations) -------------------------


def seed_summary(spec: dict[str, list[float]]) -> pd.DataFrame:
    """label -> per-seed matched_forget values, as a sweep summary (every run reached the level)."""
    return pd.DataFrame([{"label": label, "seed": seed, "matched_forget": v, "reached": True}
                         for label, values in spec.items() for seed, v in enumerate(values)])


def test_results_table_and_fmt():
    s = seed_summary({"a": [0.1, 0.3], "b": [0.2]})
    t = T.results_table(s, columns=("matched_forget",)).set_index("label")
    assert t.loc["a", "matched_forget_mean"] == pytest.approx(0.2)
    assert t.loc["a", "matched_forget_std"] == pytest.approx(np.std([0.1, 0.3], ddof=1))
    assert math.isnan(t.loc["b", "matched_forget_std"]) and t.loc["a", "reached"] == 2
    txt = T.results_table(s, columns=("matched_forget",), text=True).set_index("label")
    assert txt.loc["a", "matched_forget"] == "0.200 ± 0.141" and txt.loc["b", "matched_forget"] == "0.200"
    assert T.fmt_pm(float("nan"), 0.1) == "n/a"


def test_relative_weights_and_binning():
    tr = pd.DataFrame({"method": ["m"] * 4, "seed": 0, "step": [0, 0, 1, 1], "weight": [1.0, 3.0, 0.0, 0.0],
                       "p": [0.05, 0.95, 0.5, 0.5], "logp": np.log([0.05, 0.95, 0.5, 0.5])})
    rel = T.relative_weights(tr)
    assert rel["relative_weight"].iloc[:2].tolist() == [0.5, 1.5]
    assert rel["relative_weight"].iloc[2:].isna().all()       # all-zero step: no distribution
    b = T.binned_by_method(rel, n_bins=2)
    assert b.set_index("bin")["mean_weight"].tolist() == [0.5, 1.5]
    b = T.binned_by_method(rel, n_bins=2, scale="max")
    assert b["mean_weight"].tolist() == pytest.approx([1 / 3, 1.0]) and b["mean_weight_raw"].tolist() == [0.5, 1.5]
