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
# # 04 · Observation (i): saturation vs importance
#
# **The paper's claim.** Reweighting the forget loss by *saturation* — giving less weight to tokens
# the model has already unlearned, $w = p^{\beta}$ (SimSat) — unlearns more effectively than
# reweighting by *importance* — giving more weight to the tokens that matter, approximated either by
# low likelihood, $w = (1-p)^{\beta}$ (SimImp), or by annotated key tokens. Their combination,
# SatImp, $w = p^{\beta_{sat}}(1-p)^{\beta_{imp}}$, is better than either.
#
# **How we test it.** Every method gets the same model, data, learning rate and number of steps.
# Because unlearning without a retain term eventually destroys everything, we compare the methods
# at *matched retain quality*: the forget extraction strength (ES) at the step where retain ES first
# falls to a fixed share of its starting value (lower forget ES = better forgotten). The verdicts
# come first, decided by the study `satimp_lab.studies.obs1` on a population of target models;
# the rest of the notebook looks at one target model's runs up close. GA (uniform weights) and NPO
# are reference baselines.

# %% tags=["parameters"]
SIZE = "full"  # "full" (tiny tier, the real reproduction) or "fast" (micro model, for tests)
TIER = None  # None: the size's tier; "base": a bigger from-scratch model; "small": SmolLM2-135M
OUT_DIR = None  # where figures and tables go when run by `satimp-lab reproduce`

# %%
import pandas as pd
import plotly.graph_objects as go
from IPython.display import display

from satimp_lab.ui import plots
from satimp_lab.experiments import Lab
from satimp_lab.studies import tables
from satimp_lab.experiments.identity import spec_params
from satimp_lab.studies.tables import save_table
from satimp_lab.studies import obs1

pd.set_option("display.max_colwidth", 120)
lab = Lab(SIZE, **({"tier": TIER} if TIER else {}))
setting = lab.setting
print(f"setting {setting.name!r}: tier {setting.tier!r}, forget split {setting.forget_split!r}, "
      f"lr {setting.base.lr:g}, {setting.base.epochs:g} epochs of batch {setting.base.batch_size}, "
      f"target models {list(setting.target_seeds)} x seeds {list(setting.seeds)}")

# %% [markdown]
# ## 1. The verdicts, decided on the population
# Training a model from scratch is chaotic: another training seed -- or the same seed on another
# CPU, whose kernels round differently -- gives another target, and one target's verdict is one
# sample. So the claims are decided on a population: every method runs on the same units (each
# target model of `setting.target_seeds` x each unlearning seed), each comparison is a set of
# paired differences, and `satimp_lab.studies.verdicts` gives the mean improvement, a 95 % bootstrap
# interval over target models, P(improvement) and the verdict (its docstring states the rule).
# Here: GA, SimSat, SimImp, annotation and SatImp on every unit (cached: a second execution reads
# them back; notebooks 03 and 07 reuse them).

# %%
result = obs1.STUDY.run(lab)
result.save(OUT_DIR)
result.show()

# %% [markdown]
# ## 2. One target model up close
# The study's runs on this lab's own target model (`setting.target_seed`; they also carry the
# final metrics), not run again, plus **NPO** as a reference: NPO is not part of any claim, so it
# is an illustration run on this target only.

# %%
npo = obs1.STUDY.extras()  # [spec("npo")]
sweep = result.target_sweep(lab, desc="NPO reference")
summary, curves = sweep.final(), sweep.curves  # final metrics and curves: what the study declares
labels = list(dict.fromkeys(summary.label))
save_table(summary[["label", "seed", "matched_forget", "matched_step", "reached", "eval_forget_es",
                    "eval_retain_es", "eval_forget_quality", "eval_model_utility"]],
           OUT_DIR, "04_runs_per_seed")
spec_params(obs1.specs() + npo).astype(object).fillna("")

# %% [markdown]
# ### Forget vs retain trade-off curves
# Each line follows one method through training (mean over seeds at each evaluation step), starting
# at the top right (the target model). Further down at the same retain ES = better unlearning.
# The stars are the two ends of the scale: the **target** (trained on everything) and the **retain
# model** (never saw the forget authors — what "forgotten" should look like). The dotted line is
# the matched retain level the study compares at.

# %%
ref = lab.reference_metrics
reference = {"target": (ref["target"]["retain_es"], ref["target"]["forget_es"]),
             "retain model": (ref["retain"]["retain_es"], ref["retain"]["forget_es"])}
level = setting.match_level * curves[curves.step == 0]["retain_es"].mean()
fig = plots.tradeoff_curves(curves, reference=reference,
                            title=f"Observation (i) on target {setting.target_seed}: forget vs retain ES "
                                  f"during unlearning (mean over {len(setting.seeds)} seed(s))")
fig.add_trace(go.Scatter(x=[level, level], y=[0, float(curves.forget_es.max())], mode="lines",
                         name=f"matched retain level ({setting.match_level:.0%} of start)",
                         line=dict(color="grey", dash="dot")))
plots.save_figure(fig, OUT_DIR, "04_tradeoff_curves")
fig

# %% [markdown]
# ### Forget ES at matched retain ES on this target
# `matched_forget` is the forget ES where retain ES first falls to the matched level (linear
# interpolation between evaluations); `reached` counts the seeds that got there within the budget
# (otherwise the value is the final forget ES, an upper bound). Mean ± std over this target's
# seeds: one target's numbers, for looking; the verdicts are the population's, above.

# %%
table = tables.results_table(summary, labels)
save_table(tables.results_table(summary, labels, text=True), OUT_DIR, "04_matched_forget")
bar = plots.bar_with_errors(table, "matched_forget_mean", error="matched_forget_std",
                            title=f"Forget ES at matched retain ES on target {setting.target_seed} "
                                  f"(mean ± std over {len(setting.seeds)} seed(s))",
                            y_title="forget ES at matched retain", lower_is_better=True)
plots.save_figure(bar, OUT_DIR, "04_matched_forget")
display(tables.results_table(summary, labels, columns=("matched_forget", "matched_step"), text=True))
bar

# %% [markdown]
# ## 3. Final metrics after the whole budget
# These are measured on each run's *final* model, after the same number of steps for every method —
# not at matched retain quality, so a method that is simply more aggressive looks better on forget
# metrics and worse on utility. Forget quality: KS-test p-value of the truth ratios against the
# retain model (higher = closer to never having learned the forget set); model utility: harmonic
# mean of the retain and world-facts metrics (higher = more knowledge kept).

# %%
final_cols = ("eval_forget_es", "eval_forget_es_paraphrased", "eval_retain_es", "eval_forget_quality",
              "eval_model_utility", "eval_mia_loss")
final = tables.results_table(summary, labels, columns=final_cols, text=True)
ref_rows = pd.DataFrame([{"label": f"[{name}]", "seeds": 0, "reached": None,
                          **{c: f"{ref[name][c[len('eval_'):]]:.3f}" for c in final_cols if c[len('eval_'):] in ref[name]}}
                         for name in ("target", "retain")])
final = pd.concat([final, ref_rows], ignore_index=True)
save_table(final, OUT_DIR, "04_final_metrics")
final

# %% [markdown]
# ## 4. Where the weight goes
# The weights are not normalised (as in the official code), but the optimiser (AdamW) divides each
# parameter's step by the running size of its gradients, which largely cancels a global scale of the
# loss. What differs between the schemes is therefore mostly *how the weight is spread*: the ESS
# fraction is the share of forget tokens that effectively carry the loss (1 = all equally), measured
# on the traces of each run (per step, then averaged; NPO's implicit weights are per sequence and
# left out).

# %%
token_level = [l for l in labels if l != "npo"]
spread = tables.trace_statistics(sweep.traces(token_level), label="method").set_index("method")
spread = spread.loc[token_level, ["mean_weight_mean", "ess_fraction_mean", "spearman_weight_likelihood_mean"]]
spread = spread.join(table.set_index("label")[["reached", "seeds"]])
save_table(spread.reset_index(), OUT_DIR, "04_weight_spread")
spread.round(3)
