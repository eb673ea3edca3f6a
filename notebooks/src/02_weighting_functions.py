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
# # 02 · The weighting functions: who gets pushed, and how hard
#
# Every method in this lab unlearns by gradient ascent on the forget answers, with a **weight per
# token**. This notebook draws those weights as functions of the token's likelihood
# $p = \exp(-\mathrm{CE})$ under the current model, all on the same axes:
#
# | method | weight on a token of likelihood $p$ |
# |---|---|
# | GA | $1$ |
# | SimSat (= WGA) | $p^{\beta_{sat}}$ — *saturation*: ignore tokens that are already forgotten |
# | SimImp | $(1-p)^{\beta_{imp}}$ — *importance*: favour tokens the model is unsure of |
# | SatImp | $p^{\beta_{sat}}(1-p)^{\beta_{imp}}$ — both |
# | NPO (implicit) | $2r^{\beta}/(1+r^{\beta})$, $r = \pi_\theta(y\mid x)/\pi_{ref}(y\mid x)$ — one weight per *sequence* |
# | SimNPO (implicit) | $2\bar p^{\beta}/(1+\bar p^{\beta})$, $\bar p$ = geometric-mean token likelihood of the sequence |
#
# Every curve is computed by calling `satimp_lab.unlearning.weighting` on a grid of likelihoods (through
# `satimp_lab.unlearning.weight_curves`; `widgets` draws them); nothing is re-implemented here. No unlearning run is needed, so this
# notebook is fast at any size.

# %% tags=["parameters"]
SIZE = "full"  # "full" or "fast": this notebook does the same (cheap) work at both sizes
TIER = None  # unused here (no model is trained)
OUT_DIR = None  # where figures and tables go when run by `satimp-lab reproduce`

# %%
import numpy as np
import pandas as pd

from satimp_lab.ui import plots, widgets
from satimp_lab.unlearning import weight_curves
from satimp_lab.unlearning.objectives import get_method
from satimp_lab.studies.tables import save_table

SATIMP = get_method("satimp").params           # the recommended exponents (README of the official code)
BETA_SAT, BETA_IMP = SATIMP["beta_sat"], SATIMP["beta_imp"]
NPO_BETA = get_method("npo").params["npo_beta"]
SIMNPO_BETA = get_method("simnpo").params["npo_beta"]
print(f"SatImp defaults: β_sat = {BETA_SAT:g}, β_imp = {BETA_IMP:g}; NPO β = {NPO_BETA:g}; SimNPO β = {SIMNPO_BETA:g}")

# %% [markdown]
# ## 1. The whole family on one plot
#
# Move the sliders: **β_sat** sharpens the saturation factor (tokens with low $p$ — already
# unlearned — lose their weight), **β_imp** the importance factor (tokens with $p \to 1$ lose
# theirs). The star marks where SatImp peaks. SimSat and SimImp on the plot use the same two
# exponents, so SatImp is visibly their product. The dashed NPO and SimNPO curves are sequence-level
# weights: read their x-axis as the sequence's likelihood relative to the reference (NPO) or its
# geometric-mean token likelihood (SimNPO); their β are the registry defaults.

# %%
explorer = widgets.family_widget(BETA_SAT, BETA_IMP)
explorer

# %% [markdown]
# The same figure as a static copy (what the report shows), at the recommended exponents:

# %%
family = widgets.family_figure(BETA_SAT, BETA_IMP)
plots.save_figure(family, OUT_DIR, "02_weight_family")
plots.save_png(widgets.static_family_figure(BETA_SAT, BETA_IMP), OUT_DIR, "02_weight_family")
family

# %% [markdown]
# ## 2. Where does SatImp peak?
#
# Setting $\frac{d}{dp}\log w = \beta_{sat}/p - \beta_{imp}/(1-p) = 0$ gives
# $p^* = \beta_{sat}/(\beta_{sat}+\beta_{imp})$. With a large β_sat and a small β_imp the peak sits
# close to 1: SatImp concentrates on tokens the model still remembers well but not with certainty.
# The table checks the closed form against a brute-force argmax on a fine grid.

# %%
peak = weight_curves.satimp_peak(BETA_SAT, BETA_IMP)
print(weight_curves.peak_text(BETA_SAT, BETA_IMP))
print(f"grid check: argmax at p = {peak['grid_p']:.4f} (w = {peak['grid_w']:.4f})")

pairs = [(BETA_SAT, BETA_IMP), (BETA_SAT, 1.0), (1.0, 1.0), (1.0, BETA_SAT), (BETA_SAT, 0.0)]
peaks = weight_curves.peaks_table(pairs)
save_table(peaks, OUT_DIR, "02_satimp_peaks")
peaks.round(4)

# %% [markdown]
# ## 3. The numbers behind the curves (the weight table of docs/methods.md)
#
# Weights at a few likelihoods, computed from the library's functions. Read across a row:
# SimSat grows with $p$, SimImp shrinks, SatImp rises and then falls just before $p = 1$ — and with
# a larger β_imp (the open-unlearning port's default, last row) the whole SatImp curve is much lower
# and peaks earlier.

# %%
table = weight_curves.weight_table()
save_table(table, OUT_DIR, "02_weight_table")
table.round(4)

# %%
satimp_row = table.set_index("scheme").loc[f"satimp(β_sat={BETA_SAT:g}, β_imp={BETA_IMP:g})"]
simsat_row = table.set_index("scheme").loc[f"simsat(β_sat={BETA_SAT:g})"]
print(f"At the highest likelihood in the table ({satimp_row.index[-1]}), SatImp gives "
      f"{satimp_row.iloc[-1]:.3f} where SimSat gives {simsat_row.iloc[-1]:.3f}: the importance factor "
      f"trims {1 - satimp_row.iloc[-1] / simsat_row.iloc[-1]:.0%} of the weight of nearly-certain tokens.")

# %% [markdown]
# ## 4. NPO's implicit weight: a sequence-level saturation
#
# NPO's gradient is GA's gradient on each forget sequence scaled by
# $w_i = 2\sigma(-\beta(L_\theta - L_{ref}))$, where $L$ is the *summed* NLL of the answer
# (docs/methods.md, "Implicit weights"). It starts at 1 (the model equals the reference) and falls as the sequence is
# forgotten, so NPO is a saturation weight over whole sequences. Because $L$ is a sum over tokens,
# the fall is measured in nats of the whole answer: with a small β it takes many nats.

# %%
npo_fig = widgets.npo_shape_figure(betas=sorted({NPO_BETA, 1.0, SIMNPO_BETA}))
plots.save_figure(npo_fig, OUT_DIR, "02_npo_shape")
npo_fig

# %%
for beta in sorted({NPO_BETA, 1.0, SIMNPO_BETA}):
    drop = np.log(3.0) / beta        # 2σ(-βΔ) = 1/2  <=>  βΔ = log 3
    w = weight_curves.npo_weights_on_grid(np.exp([-drop]), beta)[0]
    print(f"NPO β = {beta:g}: the weight halves (w = {w:.2f}) once the answer's summed NLL has risen {drop:.1f} nats")

# %% [markdown]
# ## 5. The GA logit view: why saturation matters
#
# For a token with likelihood $p$ and target logit $z$, $\partial\,\mathrm{CE}/\partial z = -(1-p)$.
# So plain GA already pushes **hardest on tokens with low p** — the ones that are already
# unlearned — and keeps pushing them towards $p = 0$, which spends the update (and damages the
# model) where nothing is left to forget. A weighted method multiplies that push by $w(p)$: the
# push on the target logit becomes $w(p)\,(1-p)$. The saturation factor $p^{\beta_{sat}}$ cancels
# GA's bias towards low $p$; the importance factor reinforces it.
#
# The curves are computed by autograd through the library's own forget losses
# (`objectives.get_method(...).forget_term`), not from the formula.

# %%
p_check = weight_curves.likelihood_grid(99, include_ends=False)
grad = weight_curves.target_logit_gradient(p_check)
print(f"autograd vs -(1-p) on {len(p_check)} likelihoods: max |difference| = {np.abs(grad + (1 - p_check)).max():.1e}")

push = widgets.logit_push_figure(BETA_SAT, BETA_IMP, beta=1.0)
plots.save_figure(push, OUT_DIR, "02_logit_push")
plots.save_png(widgets.static_logit_push_figure(BETA_SAT, BETA_IMP, beta=1.0), OUT_DIR, "02_logit_push")
push

# %%
p_grid = weight_curves.likelihood_grid(2001, include_ends=False)
pushes = {name: weight_curves.logit_push(name, p_grid) for name in ("ga", "satimp")}
argmax = {name: p_grid[np.argmax(v)] for name, v in pushes.items()}
summary = pd.DataFrame({"method": list(pushes), "likelihood p pushed hardest": [argmax[n] for n in pushes],
                        "push there": [pushes[n].max() for n in pushes]})
save_table(summary, OUT_DIR, "02_logit_push_peaks")
print(f"GA pushes hardest at the smallest p on the grid (p = {argmax['ga']:.2g}); SatImp at p = {argmax['satimp']:.3f}")
summary.round(4)

# %% [markdown]
# **Take-away.** GA's push on a token's logit is $1-p$: largest on tokens that are already gone.
# Saturation ($p^{\beta_{sat}}$) moves the push to tokens that are still remembered; importance
# ($(1-p)^{\beta_{imp}}$, with a small exponent) only trims the nearly-certain ones. NPO and SimNPO
# behave like saturation at the level of whole sequences. The finding notebooks test what these
# shapes do to unlearning.
