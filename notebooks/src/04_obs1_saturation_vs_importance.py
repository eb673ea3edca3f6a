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
# falls to a fixed share of its starting value (lower forget ES = better forgotten). Each method is
# run with every seed of the setting; the tables show mean ± std over seeds. GA (uniform weights)
# and NPO are reference baselines.

# %% tags=["parameters"]
SIZE = "full"  # "full" (tiny tier, the real reproduction) or "fast" (micro model, for tests)
TIER = None  # None: the size's tier; "base": a bigger from-scratch model; "small": SmolLM2-135M
OUT_DIR = None  # where figures and tables go when run by `satimp-lab reproduce`

# %%
import pandas as pd
import plotly.graph_objects as go
from IPython.display import Markdown, display

from satimp_lab import findings, plots
from satimp_lab.experiments import Lab
from satimp_lab.report import record_claim, save_table

pd.set_option("display.max_colwidth", 120)
lab = Lab(SIZE, **({"tier": TIER} if TIER else {}))
setting = lab.setting
specs = findings.obs1_specs()
seeds = setting.seeds
print(f"setting {setting.name!r}: tier {setting.tier!r}, forget split {setting.forget_split!r}, "
      f"lr {setting.base.lr:g}, {setting.base.epochs:g} epochs of batch {setting.base.batch_size}, "
      f"seeds {list(seeds)}")
findings.spec_params(specs).astype(object).fillna("")

# %% [markdown]
# ## 1. The runs
# One cached run per method and seed (a second execution of this notebook reads them back).
# Notebooks 03 and 07 reuse these runs from the cache.

# %%
sweep = lab.sweep(specs, seeds=seeds, desc="observation (i)")
summary = sweep.summary
save_table(summary[["label", "seed", "matched_forget", "matched_step", "reached", "eval_forget_es",
                    "eval_retain_es", "eval_forget_quality", "eval_model_utility"]],
           OUT_DIR, "04_runs_per_seed")
print(f"{len(summary)} runs: {summary.label.nunique()} methods x {summary.seed.nunique()} seeds")

# %% [markdown]
# ## 2. Forget vs retain trade-off curves
# Each line follows one method through training (mean over seeds at each evaluation step), starting
# at the top right (the target model). Further down at the same retain ES = better unlearning.
# The stars are the two ends of the scale: the **target** (trained on everything) and the **retain
# model** (never saw the forget authors — what "forgotten" should look like). The dotted line is
# the matched retain level used for the comparison below.

# %%
ref = lab.reference_metrics
reference = {"target": (ref["target"]["retain_es"], ref["target"]["forget_es"]),
             "retain model": (ref["retain"]["retain_es"], ref["retain"]["forget_es"])}
curves = sweep.curves
start = curves[curves.step == 0][["retain_es", "forget_es"]].mean()
level = setting.match_level * start["retain_es"]
fig = plots.tradeoff_curves(curves, reference=reference,
                            title=f"Observation (i): forget vs retain ES during unlearning "
                                  f"(mean over {len(seeds)} seed(s))")
fig.add_trace(go.Scatter(x=[level, level], y=[0, float(curves.forget_es.max())], mode="lines",
                         name=f"matched retain level ({setting.match_level:.0%} of start)",
                         line=dict(color="grey", dash="dot")))
plots.save_figure(fig, OUT_DIR, "04_tradeoff_curves")
print(f"curves start at retain ES {start['retain_es']:.3f}, forget ES {start['forget_es']:.3f} "
      f"(teacher-forced, first {setting.base.eval_max_examples} rows of each split); the target's final-metric "
      f"ES on up to {setting.final_max_examples} rows: retain {reference['target'][0]:.3f}, forget {reference['target'][1]:.3f}")
fig

# %% [markdown]
# ## 3. Forget ES at matched retain ES
# `matched_forget` is the forget ES where retain ES first falls to the matched level (linear
# interpolation between evaluations); `reached` counts the seeds that got there within the budget
# (otherwise the value is the final forget ES, an upper bound).

# %%
labels = [s["label"] for s in specs]
table = findings.results_table(summary, labels)
save_table(findings.results_table(summary, labels, text=True), OUT_DIR, "04_matched_forget")
bar = plots.bar_with_errors(table, "matched_forget_mean", error="matched_forget_std",
                            title=f"Forget ES at matched retain ES (mean ± std over {len(seeds)} seed(s))",
                            y_title="forget ES at matched retain", lower_is_better=True)
plots.save_figure(bar, OUT_DIR, "04_matched_forget")
display(findings.results_table(summary, labels, columns=("matched_forget", "matched_step"), text=True))
bar

# %% [markdown]
# ## 4. Final metrics after the whole budget
# These are measured on each run's *final* model, after the same number of steps for every method —
# not at matched retain quality, so a method that is simply more aggressive looks better on forget
# metrics and worse on utility. Forget quality: KS-test p-value of the truth ratios against the
# retain model (higher = closer to never having learned the forget set); model utility: harmonic
# mean of the retain and world-facts metrics (higher = more knowledge kept).

# %%
final_cols = ("eval_forget_es", "eval_forget_es_paraphrased", "eval_retain_es", "eval_forget_quality",
              "eval_model_utility", "eval_mia_loss")
final = findings.results_table(summary, labels, columns=final_cols, text=True)
ref_rows = pd.DataFrame([{"label": f"[{name}]", "seeds": 0, "reached": None,
                          **{c: f"{ref[name][c[len('eval_'):]]:.3f}" for c in final_cols if c[len('eval_'):] in ref[name]}}
                         for name in ("target", "retain")])
final = pd.concat([final, ref_rows], ignore_index=True)
save_table(final, OUT_DIR, "04_final_metrics")
final

# %% [markdown]
# ## 5. Where the weight goes
# The weights are not normalised (as in the official code), but the optimiser (AdamW) divides each
# parameter's step by the running size of its gradients, which largely cancels a global scale of the
# loss. What differs between the schemes is therefore mostly *how the weight is spread*: the ESS
# fraction is the share of forget tokens that effectively carry the loss (1 = all equally), measured
# on the traces of each run (per step, then averaged; NPO's implicit weights are per sequence and
# left out).

# %%
traces = sweep.traces()
weight_stats = findings.trace_statistics(traces, label="method")
token_level = [l for l in labels if l != "npo"]
spread = weight_stats.set_index("method").loc[token_level, ["mean_weight_mean", "ess_fraction_mean",
                                                            "spearman_weight_likelihood_mean"]]
spread["reached"] = table.set_index("label").loc[token_level, "reached"]
spread["seeds"] = table.set_index("label").loc[token_level, "seeds"]
save_table(spread.reset_index(), OUT_DIR, "04_weight_spread")
display(Markdown("; ".join(
    f"{m}: ESS fraction {spread.loc[m, 'ess_fraction_mean']:.2f}, matched level reached in "
    f"{int(spread.loc[m, 'reached'])} of {int(spread.loc[m, 'seeds'])} seeds" for m in token_level) + "."))
spread.round(3)

# %% [markdown]
# ## 6. Verdicts
# Decided by `satimp_lab.findings` (rules in its docstring): "A beats B" only when the mean
# difference of matched forget ES exceeds both the pooled seed std and a minimum effect. A method
# whose retain ES never fell to the matched level within the budget (it is gentler) has no matched
# forget value, only an upper bound; it is then compared at matched *forget* ES instead: the other
# method's retain ES where its forget ES first fell to the level the gentle method stopped at.

# %%
claims = [record_claim(OUT_DIR, findings.obs1_saturation_vs_importance(summary, curves)),
          record_claim(OUT_DIR, findings.obs1_combination(summary, curves))]
for c in claims:
    display(Markdown(f"**{c.claim}**\n\nVerdict: **{c.verdict}** — the claim {findings.verdict_phrase(c.verdict)}.\n\n{c.evidence}"))

# %%
ranked = table.sort_values("matched_forget_mean")
order = ", ".join(f"{r.label} ({r.matched_forget_mean:.3f})" for r in ranked.itertuples())
text = (f"Measured order at matched retain, best first: {order}. "
        + ("Both parts of observation (i) hold here beyond the seed spread."
           if all(c.verdict == "reproduced" for c in claims) else
           "Where a verdict is not 'reproduced': "
           + findings.scale_caveat(lab, int(curves.step.max()), len(seeds))))
display(Markdown(text))

# %% [markdown]
# ## 7. The population: the claims decided on several target models
# Training a model from scratch is chaotic: another training seed -- or the same seed on another
# CPU, whose kernels round differently -- gives another target, and one target's verdict is one
# sample. So the claims are decided on a population: every method runs on the same units (each
# target model of `setting.target_seeds` x each unlearning seed), each comparison is a set of
# paired differences, and `satimp_lab.verdicts` gives the mean improvement, a 95 % bootstrap
# interval over target models, P(improvement) and the verdict (its docstring states the rule).
# Here: observation (i), GA, SimSat, SimImp, annotation and SatImp on every unit.

# %%
from satimp_lab.studies import obs1

population = obs1.STUDY.run(lab)
population.save(OUT_DIR)
population.show()
