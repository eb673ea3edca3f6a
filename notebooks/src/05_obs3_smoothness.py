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
# (normalised entropy, effective sample size, Gini, from the traces).

# %% tags=["parameters"]
SIZE = "full"  # "full" (tiny tier, the real reproduction) or "fast" (micro model, for tests)
TIER = None  # None: the size's tier; "base": a bigger from-scratch model; "small": SmolLM2-135M
OUT_DIR = None  # where figures and tables go when run by `satimp-lab reproduce`

# %%
import pandas as pd
from IPython.display import Markdown, display

from satimp_lab import analysis, findings, plots
from satimp_lab.experiments import Lab
from satimp_lab.report import record_claim, save_table

pd.set_option("display.max_colwidth", 120)
lab = Lab(SIZE, **({"tier": TIER} if TIER else {}))
setting = lab.setting
seeds = setting.seeds[:2]  # a wide sweep: two seeds per setting (notebook 04 uses all of them)
beta_specs = findings.beta_specs()
satimp_specs = [findings.grid_spec(b, findings.RECOMMENDED[1]) for b in findings.GRID_BETA_SAT if b > 0]
hard_specs = findings.hard_specs() + [findings.spec("ga")]
print(f"setting {setting.name!r}: seeds {list(seeds)} of {list(setting.seeds)}; "
      f"β values {list(findings.BETAS)}; kept token shares {list(findings.HARD_FRACTIONS)}")

# %% [markdown]
# ## 1. The runs
# β = 1 for SimSat and SimImp, and SatImp at its recommended exponents, are the observation (i)
# runs; the SatImp β_sat sweep is a row of notebook 07's grid. All come from the cache when those
# notebooks already ran.

# %%
sweep = lab.sweep(beta_specs + satimp_specs + hard_specs, seeds=seeds, desc="smoothness")
summary = sweep.summary
params = findings.spec_params(beta_specs + satimp_specs)
print(f"{len(summary)} runs ({summary.label.nunique()} settings x {len(seeds)} seeds)")

# %% [markdown]
# ## 2. Efficacy against β
# Forget ES at matched retain ES for each β (mean ± std over seeds; lower = better forgotten).
# For SatImp the x-axis is β_sat with β_imp fixed at the recommended value.

# %%
table = findings.results_table(summary, [s["label"] for s in beta_specs + satimp_specs])
table = table.merge(params, on="label")
table["family"] = table["method"]
table["beta"] = table.apply(lambda r: r["beta_sat"] if r["family"] in ("simsat", "satimp") else r["beta_imp"], axis=1)
table["unreached"] = table["reached"] < table["seeds"]
fig = plots.param_sweep(table, x="beta", y="matched_forget_mean", group="family", error="matched_forget_std",
                        flag="unreached", flag_name="a seed never reached the matched level (value = upper bound)",
                        title=f"Smoothness: forget ES at matched retain vs exponent (mean ± std, {len(seeds)} seeds)",
                        x_title="exponent β (SimSat: p^β, SimImp: (1-p)^β, SatImp: β_sat with β_imp fixed)",
                        y_title="forget ES at matched retain (lower = better forgotten)",
                        names={"simsat": "SimSat", "simimp": "SimImp", "satimp": f"SatImp (β_imp={findings.RECOMMENDED[1]:g})"})
plots.save_figure(fig, OUT_DIR, "05_beta_sweep")
shown = findings.results_table(summary, [s["label"] for s in beta_specs + satimp_specs],
                               columns=("matched_forget", "matched_step", "eval_model_utility"), text=True)
save_table(shown, OUT_DIR, "05_beta_sweep")
display(shown)
fig

# %% [markdown]
# ## 3. What β does to the weight distribution
# Per run, the statistics of each step's weights over its forget tokens, averaged over steps, then
# mean over seeds: **normalised entropy** (1 = uniform, 0 = one token), **ESS fraction** (Kish
# effective sample size / tokens: the share of tokens that effectively carry the loss) and **Gini**
# (0 = equal weights). Larger β should mean a sharper (less smooth) distribution.

# %%
traces = sweep.traces([s["label"] for s in beta_specs + satimp_specs])
stats = table[["label", "family", "beta", "matched_forget_mean"]].merge(
    findings.trace_statistics(traces, label="method").rename(columns={"method": "label"}), on="label")
save_table(stats, OUT_DIR, "05_weight_distribution")
fig2 = plots.param_sweep(stats, x="beta", y="ess_fraction_mean", group="family", error="ess_fraction_std",
                         title="Smoothness of the weights the runs used: effective share of tokens",
                         x_title="exponent β", y_title="ESS / number of tokens (1 = uniform weights)",
                         names={"simsat": "SimSat", "simimp": "SimImp", "satimp": "SatImp"})
plots.save_figure(fig2, OUT_DIR, "05_weight_smoothness")
display(stats[["label", "normalised_entropy_mean", "ess_fraction_mean", "gini_mean", "matched_forget_mean"]].round(3))
fig2

# %%
rho_sm = stats[["ess_fraction_mean", "matched_forget_mean"]].corr(method="spearman").iloc[0, 1]
display(Markdown(
    f"Across all {len(stats)} β settings, the Spearman correlation between the ESS fraction of the weights and "
    f"the forget ES at matched retain is {rho_sm:+.2f} "
    + ("(smoother weights went with *worse* unlearning here)." if rho_sm > 0 else
       "(smoother weights went with *better* unlearning here)." if rho_sm < 0 else "(no relation).")
    + " Smoothness is not the only thing β changes: it also moves *where* the weight sits (which "
      "likelihoods), so this is a description, not a causal effect."))

# %% [markdown]
# ## 4. Hard sampling at matched token counts
# Each method trains on the same share of every answer's tokens (weight 1 on kept tokens, 0 on the
# others, token mean over all answer tokens as for every method): **top** keeps the lowest-likelihood
# tokens (highest loss), **bottom** the highest-likelihood ones, **random** a random subset. GA trains
# on all tokens.

# %%
hard_labels = [s["label"] for s in hard_specs]
hard = findings.results_table(summary, hard_labels)
hard_traces = sweep.traces(hard_labels)
hbar = plots.bar_with_errors(hard, "matched_forget_mean", error="matched_forget_std",
                             title=f"Hard sampling: forget ES at matched retain (mean ± std, {len(seeds)} seeds)",
                             y_title="forget ES at matched retain", lower_is_better=True)
plots.save_figure(hbar, OUT_DIR, "05_hard_sampling")
hard_text = findings.results_table(summary, hard_labels, columns=("matched_forget", "matched_step",
                                                                  "eval_model_utility"), text=True)
save_table(hard_text, OUT_DIR, "05_hard_sampling")
display(hard_text)
hbar

# %% [markdown]
# Which tokens do the selections keep? The share of each method's weight that falls on annotated
# key tokens (the facts), against the key tokens' share of all answer tokens, and the mean
# likelihood of the tokens it trains on (all steps and seeds):

# %%
kv = analysis.key_vs_other(hard_traces, by="method")
key_rows = kv[kv.token_group == "key"].set_index("method")
kept = hard_traces[hard_traces.weight > 0].groupby("method")["p"].mean()
selection = pd.DataFrame({"weight share on key tokens": key_rows["weight_share"],
                          "key share of tokens": key_rows["n_tokens"] / kv.groupby("method")["n_tokens"].sum(),
                          "mean likelihood of trained tokens": kept}).loc[hard_labels]
save_table(selection.reset_index(), OUT_DIR, "05_hard_sampling_selection")
selection.round(3)

# %% [markdown]
# ## 5. Verdicts

# %%
families = {fam: [s["label"] for s in beta_specs if s["method"] == fam] for fam in ("simsat", "simimp")}
families["satimp"] = [s["label"] for s in satimp_specs]
claims = [record_claim(OUT_DIR, findings.obs3_smoothness(summary, families, sweep.curves)),
          record_claim(OUT_DIR, findings.obs3_hard_sampling(summary, curves=sweep.curves))]
for c in claims:
    display(Markdown(f"**{c.claim}**\n\nVerdict: **{c.verdict}** — the claim {findings.verdict_phrase(c.verdict)}.\n\n{c.evidence}"))

# %%
best = table.loc[table.groupby("family")["matched_forget_mean"].idxmin(), ["family", "beta", "matched_forget_mean"]]
sel = selection.rename(columns=lambda c: c.replace(" ", "_"))
hard_words = "; ".join(
    f"{l} trains on tokens of mean likelihood {sel.loc[l, 'mean_likelihood_of_trained_tokens']:.3f} and puts "
    f"{sel.loc[l, 'weight_share_on_key_tokens']:.0%} of its weight on key tokens"
    for l in hard_labels if l.split("-")[0] in ("top", "bottom"))
display(Markdown(
    "Best β per family at this scale: " + "; ".join(f"{r.family} β={r.beta:g} ({r.matched_forget_mean:.3f})"
                                                    for r in best.itertuples()) + ". "
    + f"Hard sampling: {hard_words} (key tokens are "
      f"{sel['key_share_of_tokens'].mean():.0%} of the answer tokens). "
    + ("" if all(c.verdict == "reproduced" for c in claims) else
       "Where a verdict is not 'reproduced': " + findings.scale_caveat(lab, int(sweep.curves.step.max()), len(seeds)))))

# %% [markdown]
# ## 6. The population: the claims decided on several target models
# Training a model from scratch is chaotic: another training seed -- or the same seed on another
# CPU, whose kernels round differently -- gives another target, and one target's verdict is one
# sample. So the claims are decided on a population: every method runs on the same units (each
# target model of `setting.target_seeds` x each unlearning seed), each comparison is a set of
# paired differences, and `satimp_lab.verdicts` gives the mean improvement, a 95 % bootstrap
# interval over target models, P(improvement) and the verdict (its docstring states the rule).
# Here: every β of SimSat and SimImp and the hard-sampling runs on every unit.

# %%
from satimp_lab.studies import smoothness

population = smoothness.STUDY.run(lab)
population.save(OUT_DIR)
population.show()
