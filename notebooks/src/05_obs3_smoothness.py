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
# # 05 · Observation (iii-a): smoothness of the weights
#
# **The paper's claim.** How *smooth* the weight distribution is strongly affects how well
# reweighted unlearning works. In the weight family $w = p^{\beta}$ (SimSat) and $w = (1-p)^{\beta}$
# (SimImp) the exponent $\beta$ is the smoothness knob: $\beta \to 0$ gives uniform weights (plain
# GA), a large $\beta$ concentrates the weight on a few tokens. The extreme of sharpness is *hard
# sampling*: train on a fixed share of each answer's tokens only. The code's hard-sampling
# experiment compares keeping the lowest-likelihood tokens (top-k by loss, the importance direction)
# with keeping the highest-likelihood ones (bottom-k, the saturation direction); observation (i)
# predicts that bottom-k wins.
#
# **How we test it.** A β sweep for SimSat and SimImp, a β_sat sweep for SatImp (at the recommended
# β_imp), and top-k / bottom-k / random at *matched token counts* (each keeps the same share of every
# answer). Efficacy is the forget ES at matched retain ES (lower = better), as in notebook 04. To
# connect "smoothness" to numbers we also measure the weight distributions the runs actually used
# (normalised entropy, effective sample size, Gini, from the traces). The verdicts come first,
# decided by the study `satimp_lab.studies.smoothness` on a population of target models; the
# figures after them show one target model's runs.

# %% tags=["parameters"]
SIZE = "full"  # "full" (tiny tier, the real reproduction) or "fast" (micro model, for tests)
TIER = None  # None: the size's tier; "base": a bigger from-scratch model; "small": SmolLM2-135M
OUT_DIR = None  # where figures and tables go when run by `satimp-lab reproduce`

# %%
import pandas as pd
from IPython.display import display

from satimp_lab.unlearning import weight_stats
from satimp_lab.ui import plots
from satimp_lab.experiments import Lab
from satimp_lab.studies import tables
from satimp_lab.experiments.identity import NAMES, fields_table
from satimp_lab.studies.tables import save_table
from satimp_lab.studies import smoothness, specs

pd.set_option("display.max_colwidth", 120)
lab = Lab(SIZE, **({"tier": TIER} if TIER else {}))
setting = lab.setting
print(f"setting {setting.name!r}: target models {list(setting.target_seeds)} x seeds {list(setting.seeds)}; "
      f"β values {list(specs.BETAS)}; kept token shares {list(specs.HARD_FRACTIONS)}")

# %% [markdown]
# ## 1. The verdicts, decided on the population
# Every β of SimSat and SimImp and the hard-sampling runs on every unit (each target model of
# `setting.target_seeds` x each unlearning seed); each comparison is a set of paired differences,
# and `satimp_lab.studies.verdicts` gives the mean improvement, a 95 % bootstrap interval over target
# models, P(improvement) and the verdict (its docstring states the rule). β = 1 for SimSat and
# SimImp are the observation (i) runs (shared cache with notebook 04).

# %%
result = smoothness.STUDY.run(lab)
result.save(OUT_DIR)
result.show()

# %% [markdown]
# ## 2. One target model up close: efficacy against β
# The study's runs on this lab's own target model (`setting.target_seed`), not run again, plus two
# illustration references run on this target only (no claim is decided on them): SatImp's β_sat
# sweep at the recommended β_imp (a row of notebook 07's grid, shared cache) and GA (uniform
# weights, all tokens) next to hard sampling. Forget ES at matched retain ES for each β (mean ± std
# over this target's seeds; lower = better forgotten).

# %%
satimp_row = specs.satimp_row()
sweep = result.target_sweep(lab, desc="SatImp row and GA")  # smoothness.STUDY.extras: satimp_row + GA
summary = sweep.final()  # every run with its final model's metrics (the study declares them)
beta_runs = specs.beta_specs() + satimp_row
beta_labels = [s["label"] for s in beta_runs]
fields = fields_table(beta_runs)[["label", "family", "beta", "beta_sat"]]  # each run's family and exponents
table = tables.results_table(summary, beta_labels).merge(fields, on="label")
table["beta"] = table["beta"].fillna(table["beta_sat"])  # SatImp's row varies β_sat, β_imp fixed
table["unreached"] = table["reached"] < table["seeds"]
fig = plots.param_sweep(table, x="beta", y="matched_forget_mean", group="family", error="matched_forget_std",
                        flag="unreached", flag_name="a seed never reached the matched level (value = upper bound)",
                        title=f"Smoothness on target {setting.target_seed}: forget ES at matched retain vs exponent "
                              f"(mean ± std, {len(setting.seeds)} seed(s))",
                        x_title="exponent β (SimSat: p^β, SimImp: (1-p)^β, SatImp: β_sat with β_imp fixed)",
                        y_title="forget ES at matched retain (lower = better forgotten)",
                        names={**NAMES, "satimp": f"{NAMES['satimp']} (β_imp={specs.RECOMMENDED[1]:g})"})
plots.save_figure(fig, OUT_DIR, "05_beta_sweep")
shown = tables.results_table(summary, beta_labels, columns=("matched_forget", "matched_step", "eval_model_utility"),
                               text=True)
save_table(shown, OUT_DIR, "05_beta_sweep")
display(shown)
fig

# %% [markdown]
# ## 3. What β does to the weight distribution
# Per run, the statistics of each step's weights over its forget tokens, averaged over steps, then
# mean over seeds: **normalised entropy** (1 = uniform, 0 = one token), **ESS fraction** (Kish
# effective sample size / tokens: the share of tokens that effectively carry the loss) and **Gini**
# (0 = equal weights). Larger β should mean a sharper (less smooth) distribution. β changes *where*
# the weight sits (which likelihoods) as well as how smooth it is.

# %%
stats = table[["label", "family", "beta", "matched_forget_mean"]].merge(
    tables.trace_statistics(sweep.traces(beta_labels), label="method").rename(columns={"method": "label"}), on="label")
save_table(stats, OUT_DIR, "05_weight_distribution")
fig2 = plots.param_sweep(stats, x="beta", y="ess_fraction_mean", group="family", error="ess_fraction_std",
                         title="Smoothness of the weights the runs used: effective share of tokens",
                         x_title="exponent β", y_title="ESS / number of tokens (1 = uniform weights)",
                         names=NAMES)
plots.save_figure(fig2, OUT_DIR, "05_weight_smoothness")
display(stats[["label", "normalised_entropy_mean", "ess_fraction_mean", "gini_mean", "matched_forget_mean"]].round(3))
fig2

# %% [markdown]
# ## 4. Hard sampling at matched token counts
# Each method trains on the same share of every answer's tokens (weight 1 on kept tokens, 0 on the
# others, token mean over all answer tokens as for every method): **top** keeps the lowest-likelihood
# tokens (highest loss), **bottom** the highest-likelihood ones, **random** a random subset. GA trains
# on all tokens.

# %%
hard_labels = [s["label"] for s in specs.hard_specs()] + ["ga"]
hbar = plots.bar_with_errors(tables.results_table(summary, hard_labels), "matched_forget_mean",
                             error="matched_forget_std",
                             title=f"Hard sampling on target {setting.target_seed}: forget ES at matched retain "
                                   f"(mean ± std, {len(setting.seeds)} seed(s))",
                             y_title="forget ES at matched retain", lower_is_better=True)
plots.save_figure(hbar, OUT_DIR, "05_hard_sampling")
hard_text = tables.results_table(summary, hard_labels, columns=("matched_forget", "matched_step",
                                                                  "eval_model_utility"), text=True)
save_table(hard_text, OUT_DIR, "05_hard_sampling")
display(hard_text)
hbar

# %% [markdown]
# Which tokens do the selections keep? The share of each method's weight that falls on annotated
# key tokens (the facts), against the key tokens' share of all answer tokens, and the mean
# likelihood of the tokens it trains on (all steps and seeds):

# %%
hard_traces = sweep.traces(hard_labels)
kv = weight_stats.key_vs_other(hard_traces, by="method")
key_rows = kv[kv.token_group == "key"].set_index("method")
selection = pd.DataFrame({"weight share on key tokens": key_rows["weight_share"],
                          "key share of tokens": key_rows["n_tokens"] / kv.groupby("method")["n_tokens"].sum(),
                          "mean likelihood of trained tokens": hard_traces[hard_traces.weight > 0].groupby("method")["p"].mean()
                          }).loc[hard_labels]
save_table(selection.reset_index(), OUT_DIR, "05_hard_sampling_selection")
selection.round(3)
