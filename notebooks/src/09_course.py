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
# # 09 · Lecture: reweighting the loss to unlearn
#
# A short lecture with exercises. You will implement the SatImp family of token weights yourself and
# check your answers against the library. Each exercise has:
#
# 1. a **stub** for you to fill in — until you do, its checker says *○ not attempted yet*;
# 2. a **checker** that compares *your* answer with `satimp_lab` on random and edge inputs and says
#    ✓ or ✗ — with the first input where your answer goes wrong and, for common mistakes, a hint;
# 3. a **Show solution** button: it reveals a reference solution when you press it. The solution is
#    shown, never run, so your answer stays yours (`course.show_solution(n)` prints it too).
#
# "Run All" is safe: it runs the checkers on the stubs, so every exercise starts open, and your
# progress at the end counts only the answers you wrote. No model is trained here.

# %% tags=["parameters"]
SIZE = "full"  # "full" or "fast": the lecture does the same (cheap) work at both sizes
TIER = None  # unused here (no model is trained)
OUT_DIR = None  # where figures and tables go when run by `satimp-lab reproduce`

# %%
import torch
from IPython.display import display

from satimp_lab.ui import course, example_answer, exercises, multiple_choice, plots, widgets
from satimp_lab.unlearning.objectives import get_method
from satimp_lab.studies.tables import save_table

results = {}   # every check below records its latest result here, for the summary at the end
SATIMP = get_method("satimp").params
print(f"SatImp's recommended exponents: β_sat = {SATIMP['beta_sat']:g}, β_imp = {SATIMP['beta_imp']:g}")

# %% [markdown]
# ## 1. Unlearning in one paragraph
#
# A **target model** was fine-tuned on a data set that includes a **forget set** (here: the facts
# about some fictitious authors). We want a model that behaves as if it had never seen the forget
# set, while keeping everything else (the **retain set** and general knowledge). The gold standard is
# the **retain model**, trained without the forget set — too expensive to retrain in practice, so we
# edit the target instead.
#
# **Gradient ascent (GA)** is the simplest edit: *raise* the cross-entropy of the forget answers,
# i.e. minimise $F = -\frac{1}{N}\sum_t \mathrm{CE}_t$ over the $N$ answer tokens. It keeps pushing
# tokens that are already forgotten (section 2 computes that push); what this costs the retain set
# is what the finding notebooks measure.
#
# **Reweighting** gives each token a weight $w_t$ and minimises $F = -\frac{1}{N}\sum_t w_t\,\mathrm{CE}_t$.
# The weight is computed from the token's likelihood under the current model,
# $p_t = \exp(-\mathrm{CE}_t)$, and is a **constant for autograd** (computed from a detached $p$),
# so the gradient is simply $-\frac{1}{N}\sum_t w_t \nabla \mathrm{CE}_t$.
#
# In code, a batch of answers is a tensor `logp` [batch, positions] of per-token log-likelihoods and
# a boolean `mask` that is True on answer tokens and False on question and padding positions. A
# weight function returns one weight per position, **exactly 0 where the mask is False**.

# %% [markdown]
# ## 2. The GA logit view
#
# Write a token's cross-entropy with its logits $z$: $\mathrm{CE} = -z_{target} + \log\sum_j e^{z_j}$.
#
# ### Exercise 1 — the gradient of CE with respect to the target logit
# Complete `dce_dz(p)`: given a tensor of likelihoods $p$ of the target token, return
# $\partial\,\mathrm{CE}/\partial z_{target}$ (one value per likelihood).

# %%
def dce_dz(p):
    # YOUR CODE HERE
    raise NotImplementedError


results["logit"] = exercises.check_logit_gradient(dce_dz)
results["logit"]

# %%
course.solution_button(1)   # shows the reference solution when pressed; it is not run

# %% [markdown]
# So one GA step lowers the target logit by (learning rate) × $(1-p)$: **the lower $p$, the harder
# the push** — GA concentrates on tokens that are already nearly forgotten. The figure shows that
# push for GA and for the weighted methods of the next sections, computed by autograd through the
# library's losses.

# %%
push = widgets.logit_push_figure(SATIMP["beta_sat"], SATIMP["beta_imp"], beta=1.0)
plots.save_figure(push, OUT_DIR, "09_logit_push")
plots.save_png(widgets.static_logit_push_figure(SATIMP["beta_sat"], SATIMP["beta_imp"], beta=1.0), OUT_DIR,
               "09_logit_push")   # the report's static copy
push

# %% [markdown]
# ## 3. Saturation and importance
#
# The SatImp paper separates two ideas about which tokens deserve weight:
#
# * **saturation** — a token whose likelihood is already low is *saturated* (already unlearned);
#   stop pushing it: $w = p^{\beta_{sat}}$ (**SimSat**, the same as WGA);
# * **importance** — a token the model is unsure of carries the information that distinguishes the
#   answer; push it more: $w = (1-p)^{\beta_{imp}}$ (**SimImp**).
#
# The exponents set how sharp each preference is; an exponent of 0 gives GA back.
#
# ### Exercise 2 — implement SimImp
# Complete `my_simimp(logp, mask, beta)`: the weight $(1-p)^\beta$ with $p$ = `exp(logp)` computed
# **without gradient**, and exactly 0 where `mask` is False.

# %%
def my_simimp(logp, mask, beta):
    # YOUR CODE HERE
    raise NotImplementedError


results["simimp"] = exercises.check_simimp(my_simimp)
results["simimp"]

# %%
course.solution_button(2)   # shows the reference solution when pressed; it is not run

# %% [markdown]
# ## 4. SatImp: both at once
#
# SatImp multiplies the two factors: $w = p^{\beta_{sat}}\,(1-p)^{\beta_{imp}}$. Its recommended
# exponents are the ones the first code cell printed (from the library's method registry).
#
# ### Exercise 3 — implement SatImp's weight
# Complete `my_satimp(logp, mask, beta_sat, beta_imp)`. Mind which exponent goes where: β_sat on
# $p$, β_imp on $1-p$.

# %%
def my_satimp(logp, mask, beta_sat, beta_imp):
    # YOUR CODE HERE
    raise NotImplementedError


results["satimp"] = exercises.check_satimp(my_satimp)
results["satimp"]

# %%
course.solution_button(3)   # shows the reference solution when pressed; it is not run

# %% [markdown]
# ### Exercise 4 — predict which tokens SatImp up-weights
# Here is one answer part-way through unlearning, with the likelihood of each token. Before computing
# anything: which token gets the **largest** SatImp weight (recommended exponents)? Answer with the
# token's text or its position. Then answer the multiple-choice question about the general pattern.

# %%
example_answer.example_tokens()

# %%
top_token = ...   # YOUR ANSWER, e.g. "Lima" or 4

results["top token"] = example_answer.check_top_token(top_token)
results["top token"]

# %%
multiple_choice.question("upweighted")

# %%
answer_upweighted = ...   # YOUR ANSWER: a letter

results["upweighted"] = multiple_choice.check_choice("upweighted", answer_upweighted)
results["upweighted"]

# %%
course.solution_button(4)   # shows the reference solution when pressed; it is not run

# %% [markdown]
# Once your answer passes: the answer's token weights under each scheme, and under the figure a
# table computed from them that says where each scheme puts its weight: the token it weights most,
# the share of its weight on the nearly forgotten and on the well-remembered tokens, and what the
# most certain token gets next to the largest weight. (Both give exercise 4 away, so they wait for
# your answer: rerun the cell then.)

# %%
example = example_answer.example_weights_figure()
plots.save_figure(example, OUT_DIR, "09_example_token_weights")
plots.save_png(example_answer.static_example_weights_figure(), OUT_DIR, "09_example_token_weights")
if results["top token"]:
    display(example, example_answer.example_weight_summary().round(3))
else:
    print("The figure appears here once your answer to exercise 4 passes (then run this cell again).")

# %% [markdown]
# ### Exercise 5 — compute the peak p*
# Complete `peak(beta_sat, beta_imp)`: the likelihood at which $p^{\beta_{sat}}(1-p)^{\beta_{imp}}$
# is largest. (A closed form exists; a numerical argmax on a fine grid is accepted too.)

# %%
def peak(beta_sat, beta_imp):
    # YOUR CODE HERE
    raise NotImplementedError


results["peak"] = exercises.check_peak(peak)
results["peak"]

# %%
course.solution_button(5)   # shows the reference solution when pressed; it is not run

# %% [markdown]
# Once your answer passes, play with the exponents: the sliders redraw every weight curve and the
# star marks the peak (the readout gives exercise 5 away, so it waits for your answer too).

# %%
if results["peak"]:
    display(widgets.family_widget(SATIMP["beta_sat"], SATIMP["beta_imp"]))
else:
    print("The explorer appears here once your answer to exercise 5 passes (then run this cell again).")

# %% [markdown]
# ## 5. Granularity: where does the weight live?
#
# A weight can be computed per **token** (the methods above), per **group** of similarly-weighted
# tokens within a sequence, per **instance** (one weight per sequence from its sequence likelihood),
# or per **batch** (one weight per micro-batch). The paper compares these; the finding notebooks
# test the comparison at our scale.
#
# ### Exercise 6

# %%
multiple_choice.question("granularity")

# %%
answer_granularity = ...   # YOUR ANSWER: a letter

results["granularity"] = multiple_choice.check_choice("granularity", answer_granularity)
results["granularity"]

# %%
course.solution_button(6)   # shows the reference solution when pressed; it is not run

# %% [markdown]
# ## Your progress
#
# The status of every exercise: the latest check of *your* answer in each exercise cell (rerun
# this cell after you answer more). Before you write anything, every line reads ○.

# %%
progress = course.progress(results.values())
n_done = sum(bool(r) for r in results.values())
print(f"{n_done} of {len(results)} exercises correct")
progress

# %% [markdown]
# ## Summary
#
# * GA pushes each forget token's target logit down in proportion to $1-p$: hardest on tokens that
#   are already forgotten.
# * Saturation weights ($p^{\beta_{sat}}$) undo that bias; importance weights ($(1-p)^{\beta_{imp}}$)
#   reinforce it. SatImp multiplies the two and peaks at $p^* = \beta_{sat}/(\beta_{sat}+\beta_{imp})$.
# * Weights are constants for autograd and zero off the answer mask.
# * The finding notebooks test the paper's claims with real unlearning runs; the playground
#   (notebook 08) lets you run any method yourself.

# %% [markdown]
# ## For instructors: the reference solutions pass their checkers
#
# Each reference solution (the text the buttons show) run through its checker, in a namespace of
# its own: your answers are untouched, and the table shows no answer, only whether it passes.

# %%
reference = course.check_reference_solutions()
save_table(reference, OUT_DIR, "09_reference_solutions")
assert reference["reference passes"].all(), reference
reference
