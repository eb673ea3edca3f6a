# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Observation (ii): which tokens each scheme weights
#
# **The paper's claim.** Saturation and importance pull in opposite directions: saturation weights
# ($w = p^{\beta}$, SimSat) give *low* weight to *low-likelihood* tokens — tokens the model has
# already (nearly) unlearned — while importance weights ($w = (1-p)^{\beta}$, SimImp) give them
# *high* weight. Importance can also come from annotation: the key tokens of an answer (names,
# places, dates). If annotated key tokens are the low-likelihood ones, annotation-based importance
# is "importance" in the same sense as SimImp — that is the non-trivial part of the observation.
#
# **What we look at.** First the verdict: the study `satimp_lab.studies.obs2` measures the
# likelihood of key and other answer tokens on every target model of the population (nothing is
# unlearned) and decides the claim. Then, on this lab's own target model, the real per-token traces
# of the observation (i) runs (the runs the observation (i) study makes on this target: notebook 04
# and this one share the cache) plus NPO and SimNPO: the likelihood and the weight of every forget
# token at every step. For NPO and SimNPO the weights are their *implicit* per-token weights (the
# factor their gradient puts on each token's NLL gradient). Methods differ in the overall scale of
# their weights (which acts like a learning rate), so the figures use the **relative weight**:
# weight / mean weight of the same micro-batch.

# %% tags=["parameters"]
SIZE = "full"  # "full" (tiny tier, the real reproduction) or "fast" (micro model, for tests)
TIER = None  # None: the size's tier; "base": a bigger from-scratch model; "small": SmolLM2-135M
OUT_DIR = None  # where figures and tables go when run by `satimp-lab reproduce`

# %%
import pandas as pd
from IPython.display import HTML, display

from satimp_lab.unlearning import weight_stats
from satimp_lab.ui import plots
from satimp_lab.experiments import Lab
from satimp_lab.studies import tables
from satimp_lab.studies.tables import save_table
from satimp_lab.studies import obs2

pd.set_option("display.max_colwidth", 120)
lab = Lab(SIZE, **({"tier": TIER} if TIER else {}))
setting = lab.setting
seeds = setting.seeds
print(f"setting {setting.name!r}: tier {setting.tier!r}, forget split {setting.forget_split!r}, "
      f"target models {list(setting.target_seeds)}, seeds {list(seeds)}")

# %% [markdown]
# ## 1. The verdict, decided on the population
# Whether key tokens are the low-likelihood ones depends on how a target model learned the
# answers, so the claim is decided on every target model of `setting.target_seeds`: the mean
# likelihood of the other answer tokens minus that of the key tokens (teacher-forced, before any
# unlearning), paired on target models, with a 95 % bootstrap interval over them and the verdict of
# `satimp_lab.studies.verdicts` (its docstring states the rule).

# %%
result = obs2.STUDY.run(lab)
result.save(OUT_DIR)
result.show()

# %% [markdown]
# ## 2. The runs and their traces
# The study above unlearns nothing, so the traces come from an illustration sweep on this lab's own
# target: the observation (i) methods (the same cached runs as notebook 04's study on this target)
# and the references NPO and SimNPO, with every seed.

# %%
sweep = result.target_sweep(lab, desc="observation (i) runs and references")  # obs2.STUDY.extras
traces = tables.relative_weights(sweep.traces())
print(f"{len(traces):,} token records from {traces.groupby(['method', 'seed']).ngroups} runs "
      f"({traces.step.nunique()} steps each)")

# %% [markdown]
# ## 3. Mean relative weight per likelihood bin
# Every traced token of every step and seed, binned by its likelihood $p$ at the moment it was
# weighted. A rising line = the scheme favours tokens the model still predicts well (saturation
# direction); a falling line = it favours tokens already hard to predict (importance direction).
# GA is flat by definition. The schemes differ a lot in how far from the batch average they go, so
# each line is divided by its own largest bin value (1 = the likelihood range the scheme favours
# most); the table below the figure has the unscaled values.

# %%
schemes = ["ga", "simsat", "simimp", "satimp", "annotated", "npo", "simnpo"]
binned = tables.binned_by_method(traces[traces.method.isin(schemes)], n_bins=10, scale="max")
fig = plots.binned_weights(binned, label="method",
                           title="Which likelihoods each scheme weights (real traces, all steps and seeds)")
fig.update_layout(yaxis_title="mean relative weight in the bin / its maximum")
plots.save_figure(fig, OUT_DIR, "03_weight_vs_likelihood")
raw = binned.pivot_table(index="centre", columns="method", values="mean_weight_raw", sort=False)[schemes]
raw.index.name = "likelihood bin centre"
save_table(raw.reset_index(), OUT_DIR, "03_binned_relative_weights")
display(raw.round(2))
fig

# %% [markdown]
# ## 4. Spearman correlation between weight and likelihood
# One value per run (all its tokens and steps pooled); mean ± std over seeds, and how many runs have
# a correlation at all. The signs of SimSat (+) and SimImp (−) follow from their formulas; GA's
# constant weights have no correlation (n/a, 0 runs with one).

# %%
rho = tables.spearman_by_run(traces)
rho_table = (rho.groupby("method", sort=False)["spearman_weight_likelihood"]
             .agg(["mean", "std", "count"]).reset_index()
             .rename(columns={"mean": "spearman_mean", "std": "spearman_std", "count": "runs_with_a_correlation"}))
save_table(rho_table, OUT_DIR, "03_spearman")
rho_table

# %% [markdown]
# ## 5. Key tokens on this target
# Every answer token of the forget split under this target model (before any unlearning): key
# tokens (inside an annotated fact span) against the other answer tokens, with a Mann-Whitney U
# test over tokens -- one target's view of the per-target values the study compared. As a per-seed
# view, each run's step 0 (the first micro-batch, still the target model).

# %%
key_table = weight_stats.key_vs_other(tables.target_token_table(lab))
step0 = weight_stats.key_vs_other(traces[traces.method == "ga"], by="seed", step=0)
save_table(key_table, OUT_DIR, "03_key_vs_other_target")
save_table(step0, OUT_DIR, "03_key_vs_other_step0")
display(key_table)
step0

# %% [markdown]
# How much of each scheme's weight lands on key tokens, against their share of the tokens
# (relative weights, all steps and seeds):

# %%
shares = weight_stats.key_vs_other(traces.assign(weight=traces.relative_weight.fillna(0.0)), by="method")
key_share = shares[shares.token_group == "key"][["method", "n_tokens", "mean_weight", "weight_share"]]
n_by_method = shares.groupby("method")["n_tokens"].sum()
key_share = key_share.assign(token_share=key_share.n_tokens / key_share.method.map(n_by_method))
save_table(key_share, OUT_DIR, "03_key_weight_share")
key_share

# %% [markdown]
# ## 6. One answer, token by token
# The same forget answer at step 0 (the target model, so every scheme sees identical likelihoods),
# shaded by each scheme's weight (darker = more weight, scaled per scheme to its own maximum on this
# answer); key tokens are underlined and bold. Hover a token for its likelihood and weight.

# %%
tok = lab.target.tokenizer
first = traces[(traces.seed == seeds[0]) & (traces.step == 0)]
example = int(first.example_id.iloc[0])
for method in ["simsat", "simimp", "satimp", "annotated", "npo"]:
    rows = first[(first.method == method) & (first.example_id == example)].sort_values("position")
    display(HTML(f"<b>{method}</b>: " + plots.token_html(
        [tok.decode([t]) for t in rows.token_id], rows.weight.tolist(), rows.p.tolist(), rows.is_key.tolist())))

# %% [markdown]
# ## 7. How the mean weight moves during training
# Saturation weights should fall as the forget tokens are unlearned (their likelihood drops);
# importance weights should rise. Raw (not relative) mean weight per step, mean ± std over seeds;
# the table gives each method's first and last value.

# %%
dyn = weight_stats.dynamics(traces[traces.method.isin(["simsat", "simimp", "satimp", "npo"])], "mean_weight")
fig = plots.param_sweep(dyn, x="step", y="value", group="method", error="std",
                        title="Mean token weight on the forget batch during unlearning",
                        x_title="optimiser step", y_title="mean weight of the step's forget tokens")
plots.save_figure(fig, OUT_DIR, "03_weight_dynamics")
display(dyn.groupby("method").agg(first=("value", "first"), last=("value", "last")).round(3))
fig
