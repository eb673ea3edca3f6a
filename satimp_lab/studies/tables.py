"""The tables of runs that the studies and the notebooks show, and how they are saved.

- per-label mean ± std of a sweep summary (:func:`results_table`, :func:`mean_std`, :func:`fmt_pm`);
- traces: relative weights and their likelihood bins (:func:`relative_weights`,
  :func:`binned_by_method`), per-run statistics (:func:`spearman_by_run`, :func:`trace_statistics`),
  built on the weight statistics of ``satimp_lab.unlearning.weight_stats``;
- the target model's own token likelihoods (:func:`target_token_table`, :func:`target_batch`);
- ``tables/<name>.csv`` and ``.md`` under a run's output folder (:func:`save_table`) and
  JSON-safe values for the claim files (:func:`json_safe`).

They describe runs; the claims are decided by the studies (``satimp_lab.studies``).

A bottom module of ``studies`` (it imports no other study module), so that the study classes
(``studies.base``) and the report (``mainjob.report``) both use it without importing each other.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..store import atomic_write
from ..unlearning.weight_stats import binned_mean_weight, summarise_trace

__all__ = ["DEFAULT_COLUMNS", "binned_by_method", "fmt_pm", "json_safe", "mean_std", "relative_weights",
           "results_table", "save_table", "spearman_by_run", "target_batch", "target_token_table",
           "trace_statistics"]


def json_safe(value):
    """``value`` with dict keys as strings, numpy scalars as Python numbers and nan/inf as None
    (JSON has no nan): what ``json.dumps`` of a claim or a setting needs."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


COUNT_COLUMNS = ("step", "seed", "target_seed", "seeds", "runs", "n", "units", "reached")
"""Columns that hold whole numbers (steps, seeds, counts): a table's markdown shows them without
decimals even where a merge made them floats (``step`` 4, not 4.000)."""


def _for_markdown(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every :data:`COUNT_COLUMNS` column whose values are all whole numbers shown
    as integers (blank where missing); other columns untouched."""
    out = frame.copy()
    for col in out.columns:
        values = out[col]
        if col in COUNT_COLUMNS and pd.api.types.is_float_dtype(values):
            known = values.dropna()
            if len(known) and (known == known.round()).all():
                out[col] = [("" if pd.isna(v) else int(v)) for v in values]
    return out


def save_table(frame: pd.DataFrame, out_dir: str | Path | None, name: str, floatfmt: str = ".3f") -> None:
    """Write ``tables/<name>.csv`` (every value as computed) and ``.md`` (floats with ``floatfmt``,
    whole-number columns without decimals, :data:`COUNT_COLUMNS`) under ``out_dir`` (no-op when None)."""
    if out_dir is None:
        return
    folder = Path(out_dir) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / f"{name}.csv", frame.to_csv(index=False))
    atomic_write(folder / f"{name}.md", _for_markdown(frame).to_markdown(index=False, floatfmt=floatfmt))


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


def spearman_by_run(traces: pd.DataFrame, by: tuple[str, ...] = ("method", "seed")) -> pd.DataFrame:
    """Spearman(weight, likelihood) over all traced tokens of each run (every step pooled)."""
    return summarise_trace(traces, by=by)[[*[c for c in by if c in traces], "n_tokens",
                                           "spearman_weight_likelihood"]]


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
    """:func:`~satimp_lab.unlearning.weight_stats.binned_mean_weight` of ``weight`` vs likelihood per ``label`` (all rows pooled).

    ``scale="max"`` divides each label's bin means by its largest bin mean (1 = the likelihood range
    the scheme favours most), so schemes of very different spread share one axis; the unscaled
    value stays in ``mean_weight_raw``.
    """
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

    from ..data.batching import encode_dataset, iterate_batches
    from ..models.reading import token_logprobs

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
    """``models.reading.TokenLogprobs`` of the first ``n`` forget rows under the target model (no grad)."""
    import torch

    from ..data.batching import collate, encode_dataset
    from ..models.reading import token_logprobs

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
    stats = summarise_trace(traces, by=(label, "seed", "step"))
    cols = ["normalised_entropy", "ess_fraction", "gini", "spearman_weight_likelihood", "mean_weight"]
    per_run = stats.groupby([label, "seed"], sort=False)[cols].mean().reset_index()
    agg = per_run.groupby(label, sort=False)[cols].agg(["mean", "std"])
    agg.columns = [f"{c}_{s}" for c, s in agg.columns]
    return agg.reset_index()
