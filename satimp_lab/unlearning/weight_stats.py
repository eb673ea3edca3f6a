"""Statistics of token-weight distributions: the numbers behind the paper's observations.

SatImp's observations (Part 2, E of the spec) are statements about *where* a reweighted
unlearning loss puts its weight and *how spread out* that weight is:

* observation (ii): saturation weights ``p^beta`` give low weight to low-likelihood tokens,
  importance weights ``(1-p)^beta`` the opposite; annotated key tokens tend to be the
  low-likelihood ones (-> :func:`weight_likelihood_spearman`, :func:`binned_mean_weight`,
  :func:`key_vs_other`);
* observation (iii): smoothness and granularity of the weights matter
  (-> :func:`normalised_entropy`, :func:`effective_sample_size`, :func:`gini`,
  :func:`top_share`, :func:`distribution_summary`, :func:`granularity_summary`);
* saturation dynamics: the mean weight falls (SimSat) or rises (SimImp) over training
  (-> :func:`summarise_trace`, :func:`dynamics`).

The notebooks' tables of runs built on these statistics (per-label mean ± std of a sweep summary,
relative weights, per-run statistics of traces, the target model's own token likelihoods) are in
``satimp_lab.studies.tables``; the claims are decided by ``satimp_lab.studies``.

Inputs are plain numpy arrays or torch tensors (converted, detached, to float64 numpy) and
*traces*: tidy DataFrames with one row per valid forget token per training step and columns
``step, example_id, position, token_id, logp, weight, is_key`` plus, optionally, ``method``
and ``seed`` when several runs are concatenated.  ``likelihood`` always means
``p = exp(logp)`` of the label token.

Conventions shared by every statistic (all are scale-invariant except mean/std):

* weights must be finite and non-negative; anything else raises ``ValueError``;
* empty input raises ``ValueError`` (a statistic of nothing is a bug upstream, not a nan);
* all-zero weights define no distribution, so entropy, ESS, Gini and top share are ``nan``;
* a single weight (n = 1) has normalised entropy ``nan`` (log n = 0), ESS 1, Gini 0,
  top share 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "SUMMARY_STATISTICS",
    "weight_likelihood_spearman",
    "binned_mean_weight",
    "normalised_entropy",
    "effective_sample_size",
    "gini",
    "top_share",
    "distribution_summary",
    "summarise_trace",
    "key_vs_other",
    "dynamics",
    "granularity_summary",
]

#: Keys of :func:`distribution_summary`, in output order.
SUMMARY_STATISTICS: tuple[str, ...] = (
    "n",
    "mean",
    "std",
    "normalised_entropy",
    "ess",
    "ess_fraction",
    "gini",
    "top_share",
)

_REQUIRED_TRACE_COLUMNS = ("step", "logp", "weight")


# ----------------------------------------------------------------------------- helpers


def _to_numpy(x: Any) -> np.ndarray:
    """Flatten ``x`` (array-like or torch tensor) to a 1-D float64 numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64).ravel()


def _weights(weights: Any, name: str = "weights") -> np.ndarray:
    """Validate a weight vector: non-empty, finite, non-negative."""
    w = _to_numpy(weights)
    if w.size == 0:
        raise ValueError(f"{name} is empty: a weight-distribution statistic needs at least one weight")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name} contains nan or inf values")
    if np.any(w < 0):
        raise ValueError(f"{name} contains negative values; weights must be non-negative")
    return w


def _finite(values: Any, name: str) -> np.ndarray:
    v = _to_numpy(values)
    if v.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contains nan or inf values")
    return v


def _likelihoods(values: Any, name: str = "likelihoods") -> np.ndarray:
    p = _finite(values, name)
    if np.any(p < 0) or np.any(p > 1):
        raise ValueError(f"{name} must lie in [0, 1] (did you pass log-likelihoods?)")
    return p


def _check_trace(trace: pd.DataFrame, required: Iterable[str] = _REQUIRED_TRACE_COLUMNS) -> None:
    if not isinstance(trace, pd.DataFrame):
        raise TypeError(f"trace must be a pandas DataFrame, got {type(trace).__name__}")
    missing = [c for c in required if c not in trace.columns]
    if missing:
        raise ValueError(f"trace is missing required column(s) {missing}; has {list(trace.columns)}")
    if len(trace) == 0:
        raise ValueError("trace is empty: no token rows to summarise")


def _present(trace: pd.DataFrame, by: Sequence[str] | str | None) -> list[str]:
    """The grouping columns of ``by`` that the trace actually has (optional columns drop out)."""
    if by is None:
        return []
    if isinstance(by, str):
        by = (by,)
    return [c for c in by if c in trace.columns]


# ----------------------------------------------------------------------------- observation (ii)


def weight_likelihood_spearman(weights: Any, likelihoods: Any) -> float:
    r"""Spearman rank correlation rho between token weights and token likelihoods.

    rho = Pearson correlation of the ranks, rank(w) vs rank(p) (ties get average ranks;
    computed with :func:`scipy.stats.spearmanr`).  rho > 0: high-likelihood tokens get more
    weight (saturation, ``p^beta``); rho < 0: low-likelihood tokens get more weight
    (importance, ``(1-p)^beta``).  Because rho only uses ranks, passing ``logp`` instead of
    ``p`` gives the same value.

    Returns ``nan`` (never a warning) when fewer than two tokens are given or when either
    side is constant, e.g. GA's all-ones weights or batch-level weights: a correlation with
    a constant is undefined.  Raises ``ValueError`` on empty, mismatched or non-finite input.
    """
    w = _finite(weights, "weights")
    p = _finite(likelihoods, "likelihoods")
    if w.shape != p.shape:
        raise ValueError(f"weights and likelihoods differ in size: {w.size} vs {p.size}")
    # checking constancy ourselves avoids scipy's ConstantInputWarning and makes nan explicit
    if w.size < 2 or np.ptp(w) == 0 or np.ptp(p) == 0:
        return float("nan")
    return float(stats.spearmanr(w, p).statistic)


def binned_mean_weight(likelihoods: Any, weights: Any, n_bins: int = 10) -> pd.DataFrame:
    """Mean weight per equal-width likelihood bin on [0, 1]: the empirical w-vs-p curve.

    Bin k (0-based) is ``[k/n_bins, (k+1)/n_bins)``; a token goes to bin
    ``min(floor(p * n_bins), n_bins - 1)``, so p = 1 falls in the last bin.  Every bin is
    returned, empty ones with ``count = 0`` and ``mean_weight = nan`` (so curves from several
    runs align row by row).

    Columns: ``bin, left, right, centre, count, mean_likelihood, mean_weight, weight_share``
    where ``weight_share`` = Σ_{t in bin} w_t / Σ_t w_t (``nan`` if all weights are 0).
    """
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    n_bins = int(n_bins)
    p = _likelihoods(likelihoods, "likelihoods")
    w = _weights(weights, "weights")
    if p.shape != w.shape:
        raise ValueError(f"likelihoods and weights differ in size: {p.size} vs {w.size}")
    # floor(p * n) rather than comparing to linspace edges: the edges 0.1*k are inexact in
    # binary, and floor keeps e.g. p = 0.3 in bin [0.3, 0.4) as a reader expects
    idx = np.minimum(np.floor(p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    sum_w = np.bincount(idx, weights=w, minlength=n_bins)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    total = w.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_w = np.where(count > 0, sum_w / np.maximum(count, 1), np.nan)
        mean_p = np.where(count > 0, sum_p / np.maximum(count, 1), np.nan)
        share = sum_w / total if total > 0 else np.full(n_bins, np.nan)
    k = np.arange(n_bins)
    return pd.DataFrame(
        {
            "bin": k,
            "left": k / n_bins,
            "right": (k + 1) / n_bins,
            "centre": (k + 0.5) / n_bins,
            "count": count.astype(np.int64),
            "mean_likelihood": mean_p,
            "mean_weight": mean_w,
            "weight_share": share,
        }
    )


# ----------------------------------------------------------------------------- observation (iii): smoothness


def normalised_entropy(weights: Any) -> float:
    r"""Normalised Shannon entropy of the weights seen as a distribution over tokens.

    q_t = w_t / Σ_s w_s,  H = −Σ_t q_t log q_t (with 0 log 0 = 0),  H_norm = H / log n.

    Uniform weights → 1 (smoothest), all weight on one token → 0 (sharpest).  ``nan`` when
    all weights are zero (no distribution) or n = 1 (log n = 0, uniform and one-hot coincide).
    """
    w = _weights(weights)
    n, total = w.size, w.sum()
    if total == 0 or n == 1:
        return float("nan")
    q = w[w > 0] / total
    h = -np.sum(q * np.log(q))
    # clip: rounding can push a uniform vector a hair above 1
    return float(min(max(h / math.log(n), 0.0), 1.0))


def effective_sample_size(weights: Any) -> float:
    r"""Kish effective sample size: ESS = (Σ_t w_t)² / Σ_t w_t².

    The number of equally weighted tokens that would carry the same information: uniform
    weights → n, one non-zero weight → 1.  Scale-invariant.  ``nan`` for all-zero weights.
    Divide by n (``ess_fraction`` in :func:`distribution_summary`) to compare batches of
    different sizes.
    """
    w = _weights(weights)
    sq = float(np.sum(w * w))
    if sq == 0:
        return float("nan")
    return float(w.sum() ** 2 / sq)


def gini(weights: Any) -> float:
    r"""Gini coefficient of the weights (inequality; 0 = perfectly even).

    G = Σ_i Σ_j |w_i − w_j| / (2 n Σ_t w_t), computed from the ascending sort
    w_(1) ≤ … ≤ w_(n) as G = 2 Σ_i i·w_(i) / (n Σ w) − (n + 1)/n.

    Uniform → 0; all mass on one of n tokens → (n − 1)/n (the uncorrected Gini, so its
    maximum depends on n).  ``nan`` for all-zero weights.
    """
    w = np.sort(_weights(weights))
    n, total = w.size, w.sum()
    if total == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    g = 2.0 * np.sum(i * w) / (n * total) - (n + 1) / n
    return float(max(g, 0.0))  # rounding can give -1e-17 for uniform weights


def top_share(weights: Any, fraction: float = 0.1) -> float:
    r"""Share of the total weight carried by the top ``fraction`` of tokens.

    k = ceil(fraction · n) (at least 1), share = Σ_{t in top k} w_t / Σ_t w_t.  Uniform
    weights → k/n; one-hot → 1.  ``nan`` for all-zero weights.  ``fraction`` must be in (0, 1].
    """
    if not (0 < fraction <= 1):
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    w = _weights(weights)
    n, total = w.size, w.sum()
    if total == 0:
        return float("nan")
    # subtract a tolerance: 0.07 * 100 = 7.000000000000001 in floating point, whose ceil is 8
    k = max(1, math.ceil(fraction * n - 1e-9))
    top = np.partition(w, n - k)[n - k:]
    return float(top.sum() / total)


def distribution_summary(weights: Any, top_fraction: float = 0.1) -> dict[str, float]:
    """All smoothness statistics of one weight vector, as a dict keyed by ``SUMMARY_STATISTICS``.

    ``n`` (count), ``mean``, ``std`` (population, ddof = 0), ``normalised_entropy``,
    ``ess``, ``ess_fraction`` = ESS / n, ``gini``, ``top_share`` (of the top
    ``top_fraction``).  Raises ``ValueError`` on empty input.
    """
    w = _weights(weights)
    ess = effective_sample_size(w)
    return {
        "n": int(w.size),
        "mean": float(w.mean()),
        "std": float(w.std()),
        "normalised_entropy": normalised_entropy(w),
        "ess": ess,
        "ess_fraction": ess / w.size,
        "gini": gini(w),
        "top_share": top_share(w, top_fraction),
    }


# ----------------------------------------------------------------------------- traces


def _group_row(group: pd.DataFrame, top_fraction: float) -> dict[str, float]:
    logp = group["logp"].to_numpy(dtype=np.float64)
    p = np.exp(logp)
    w = group["weight"].to_numpy(dtype=np.float64)
    row: dict[str, float] = {
        "n_tokens": int(len(group)),
        "mean_logp": float(logp.mean()),
        "mean_likelihood": float(p.mean()),
        "mean_weight": float(w.mean()),
        "spearman_weight_likelihood": weight_likelihood_spearman(w, p),
    }
    summary = distribution_summary(w, top_fraction)
    for key in ("std", "normalised_entropy", "ess", "ess_fraction", "gini", "top_share"):
        row["weight_std" if key == "std" else key] = summary[key]
    return row


def summarise_trace(
    trace: pd.DataFrame,
    by: Sequence[str] | str | None = ("method", "seed", "step"),
    top_fraction: float = 0.1,
) -> pd.DataFrame:
    """Per-group summary of a trace: likelihood, weight, weight–likelihood correlation, smoothness.

    Groups by the columns of ``by`` that the trace has (``method`` and ``seed`` are
    optional, so a single-run trace is grouped by ``step`` alone; ``by=None`` or no present
    column gives one row for the whole trace).  The default includes ``seed`` because one
    step of one run is one weight distribution; pooling seeds would mix different batches
    into one "distribution".  Average over seeds afterwards (see :func:`dynamics`).

    Columns: the group keys, then ``n_tokens``, ``mean_logp``, ``mean_likelihood``
    (mean of exp(logp)), ``mean_weight``, ``spearman_weight_likelihood``
    (:func:`weight_likelihood_spearman`), ``weight_std``, ``normalised_entropy``, ``ess``,
    ``ess_fraction``, ``gini``, ``top_share`` (see :func:`distribution_summary`).
    """
    _check_trace(trace, ("logp", "weight"))
    keys = _present(trace, by)
    if not keys:
        return pd.DataFrame([_group_row(trace, top_fraction)])
    rows = []
    for values, group in trace.groupby(keys, sort=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        rows.append({**dict(zip(keys, values)), **_group_row(group, top_fraction)})
    return pd.DataFrame(rows)


def key_vs_other(
    trace: pd.DataFrame,
    by: Sequence[str] | str | None = None,
    step: int | None = None,
    alternative: str = "two-sided",
) -> pd.DataFrame:
    """Key (annotated fact-span) tokens vs the other answer tokens.

    Answers "does importance annotation pick low-likelihood tokens?" (spec E.14: on the
    fine-tuned model key tokens should have lower likelihood; use ``step`` = the first step
    for that question).  Rows are filtered to ``step`` if given; otherwise every row counts,
    so a token traced at T steps appears T times and the test's p-value is optimistic
    (pseudo-replication): prefer a single step.

    One row per (``by`` groups present in the trace) × ``token_group`` in ("key", "other"):
    ``n_tokens``, ``mean_likelihood``, ``median_likelihood``, ``mean_logp``, ``mean_weight``,
    ``weight_share`` = Σ_{group} w / Σ_{all rows of the by-group} w (nan if that is 0), and
    ``mannwhitney_p``: the p-value of the Mann–Whitney U test (scipy, ``alternative`` as in
    :func:`scipy.stats.mannwhitneyu`, with the key likelihoods as the first sample, so
    ``alternative="less"`` tests "key < other") comparing key and other likelihoods; the
    same value in both rows of a by-group, nan if either side is empty.  The p-value of the
    first (or only) by-group is also stored in ``result.attrs["mannwhitney_p"]``.
    """
    _check_trace(trace, ("logp", "weight", "is_key"))
    if step is not None:
        if "step" not in trace.columns:
            raise ValueError("step was given but the trace has no 'step' column")
        trace = trace[trace["step"] == step]
        if len(trace) == 0:
            raise ValueError(f"trace has no rows at step {step}")
    keys = _present(trace, by)
    groups = trace.groupby(keys, sort=True, dropna=False) if keys else [((), trace)]
    rows = []
    for values, group in groups:
        values = values if isinstance(values, tuple) else (values,)
        is_key = group["is_key"].to_numpy(dtype=bool)
        logp_all = group["logp"].to_numpy(dtype=np.float64)
        p_all = np.exp(logp_all)
        w_all = group["weight"].to_numpy(dtype=np.float64)
        total = w_all.sum()
        p_key, p_other = p_all[is_key], p_all[~is_key]
        if p_key.size and p_other.size:
            p_value = float(stats.mannwhitneyu(p_key, p_other, alternative=alternative).pvalue)
        else:
            p_value = float("nan")
        for label, sel in (("key", is_key), ("other", ~is_key)):
            p, w, n = p_all[sel], w_all[sel], int(sel.sum())
            rows.append(
                {
                    **dict(zip(keys, values)),
                    "token_group": label,
                    "n_tokens": n,
                    "mean_likelihood": float(p.mean()) if n else float("nan"),
                    "median_likelihood": float(np.median(p)) if n else float("nan"),
                    "mean_logp": float(logp_all[sel].mean()) if n else float("nan"),
                    "mean_weight": float(w.mean()) if n else float("nan"),
                    "weight_share": float(w.sum() / total) if total > 0 else float("nan"),
                    "mannwhitney_p": p_value,
                }
            )
    result = pd.DataFrame(rows)
    result.attrs["mannwhitney_p"] = float(result["mannwhitney_p"].iloc[0])
    return result


def dynamics(
    trace: pd.DataFrame,
    statistic: str | Callable[[pd.DataFrame], float] = "mean_weight",
    top_fraction: float = 0.1,
) -> pd.DataFrame:
    """One statistic per training step (and per method if the trace has ``method``).

    ``statistic`` is a column name of :func:`summarise_trace` (e.g. ``"mean_weight"``,
    ``"normalised_entropy"``, ``"spearman_weight_likelihood"``, ``"mean_likelihood"``) or a
    callable mapping the rows of one (method, seed, step) group to a float.  The statistic is
    computed per run (per seed) and step, then averaged over seeds:

    columns ``[method,] step, value, std, n_runs`` where ``value`` is the mean over runs,
    ``std`` the sample std over runs (ddof = 1; nan with one run) and ``n_runs`` the number
    of runs with a finite value.  Runs where the statistic is nan (e.g. entropy of all-zero
    weights) are skipped in the mean.
    """
    _check_trace(trace, ("step",) if callable(statistic) else _REQUIRED_TRACE_COLUMNS)
    run_keys = _present(trace, ("method", "seed", "step"))
    if callable(statistic):
        rows = []
        for values, group in trace.groupby(run_keys, sort=True, dropna=False):
            values = values if isinstance(values, tuple) else (values,)
            rows.append({**dict(zip(run_keys, values)), "_value": float(statistic(group))})
        per_run = pd.DataFrame(rows)
    else:
        per_run = summarise_trace(trace, by=run_keys, top_fraction=top_fraction)
        if statistic not in per_run.columns or statistic in run_keys:
            options = [c for c in per_run.columns if c not in run_keys]
            raise ValueError(f"unknown statistic {statistic!r}; choose one of {options} or pass a callable")
        per_run = per_run.rename(columns={statistic: "_value"})
    out_keys = [k for k in run_keys if k != "seed"]
    agg = (
        per_run.groupby(out_keys, sort=True, dropna=False)["_value"]
        .agg(value="mean", std="std", n_runs="count")
        .reset_index()
    )
    agg["n_runs"] = agg["n_runs"].astype(np.int64)
    return agg


# ----------------------------------------------------------------------------- observation (iii): granularity


def granularity_summary(
    logp: Any,
    mask: Any,
    beta: float,
    kind: str = "saturation",
    group_sizes: Iterable[int] = (2, 5, 10, 20),
    top_fraction: float = 0.1,
) -> pd.DataFrame:
    """Smoothness of the per-token effective weights of one batch at every granularity.

    For the same ``logp``/``mask`` [batch, pos] and exponent ``beta``, builds the weight each
    valid token receives under (spec Part 1 item 3, via :mod:`satimp_lab.unlearning.weighting`):

    ========================  ==========================================================
    ``token``                 ``saturation/importance(logp, mask, beta)``: w_t = p_t^β or (1−p_t)^β
    ``group``  (one per G)    ``group_average(token weights, mask, G)``: rank-bucket means
    ``instance``              ``instance_weights(..., length_normalised=False)`` broadcast:
                              w_i = P_i^β or (1−P_i)^β with P_i = Π_t p_t (official)
    ``instance_norm``         the same with the geometric-mean likelihood (ours)
    ``batch``                 ``batch_weights(..., length_normalised=False)``: one scalar
    ========================  ==========================================================

    The statistics (:func:`distribution_summary`) are taken over the valid tokens
    (mask == 1) of the whole batch.  Entropy, ESS, Gini and top share are scale-invariant,
    so they compare granularities directly; ``mean``/``std`` are the raw weight values and
    ignore that instance/batch losses act on *summed* NLL (a per-token factor of sequence
    length).  ``spearman_weight_likelihood`` is rho between the effective weight and the
    token likelihood p_t (nan for batch: constant weights).

    The ``granularity`` names are the methods' own (``unlearning.objectives.GRANULARITIES``; until
    2026-11-30 the instance rows were ``instance_official`` and ``instance_length_norm``).
    Columns: ``granularity, group_size`` (G for group rows, else <NA>), then
    ``SUMMARY_STATISTICS`` and ``spearman_weight_likelihood``.
    """
    import torch

    from satimp_lab.unlearning import weighting

    if kind not in ("saturation", "importance"):
        raise ValueError(f"kind must be 'saturation' or 'importance', got {kind!r}")
    logp_t = logp if isinstance(logp, torch.Tensor) else torch.as_tensor(np.asarray(logp, dtype=np.float64))
    mask_t = mask if isinstance(mask, torch.Tensor) else torch.as_tensor(np.asarray(mask))
    if logp_t.dim() != 2 or logp_t.shape != mask_t.shape:
        raise ValueError(
            f"logp and mask must both be [batch, pos] of the same shape, got {tuple(logp_t.shape)} and {tuple(mask_t.shape)}"
        )
    valid = mask_t.detach().cpu().numpy().astype(bool)
    if not valid.any():
        raise ValueError("mask has no valid tokens: nothing to summarise")
    p_valid = np.exp(logp_t.detach().cpu().double().numpy()[valid])

    token_fn = weighting.saturation if kind == "saturation" else weighting.importance
    token_w = token_fn(logp_t, mask_t, beta)

    def seq(length_normalised: bool):
        w_seq = weighting.instance_weights(logp_t, mask_t, beta, kind=kind, length_normalised=length_normalised)
        return weighting.broadcast_to_tokens(w_seq, mask_t)

    # one scalar per micro-batch; broadcast_to_tokens puts it on every valid token
    scalar = weighting.batch_weights(logp_t, mask_t, beta, kind=kind, length_normalised=False)
    batch_w = weighting.broadcast_to_tokens(scalar, mask_t)

    levels: list[tuple[str, Any, Any]] = [("token", pd.NA, token_w)]
    for g in group_sizes:
        levels.append(("group", int(g), weighting.group_average(token_w, mask_t, int(g))))
    levels += [
        ("instance", pd.NA, seq(False)),
        ("instance_norm", pd.NA, seq(True)),
        ("batch", pd.NA, batch_w),
    ]

    rows = []
    for name, g, w in levels:
        w_valid = _to_numpy_2d(w)[valid]
        rows.append(
            {
                "granularity": name,
                "group_size": g,
                **distribution_summary(w_valid, top_fraction),
                "spearman_weight_likelihood": weight_likelihood_spearman(w_valid, p_valid),
            }
        )
    out = pd.DataFrame(rows)
    out["group_size"] = out["group_size"].astype("Int64")
    return out


def _to_numpy_2d(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)
