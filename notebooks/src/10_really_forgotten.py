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
# # 10 · Is it really forgotten? Relearning and quantization attacks
#
# Unlearning methods are judged by how low the forget metrics go right after unlearning. That can
# be shallow: the knowledge may still be in the weights, hidden by a small change that a little
# more training, or a coarser copy of the weights, undoes.
#
# * **Relearning attack** (Hu et al., ICLR 2025; Deeb & Roger, 2024): fine-tune the unlearned
#   model for a few steps on a fixed quarter of the forget *authors* and watch the forget
#   extraction strength (ES) of the *other* authors. One fictitious author's facts say nothing
#   about another's, so what comes back there was still in the weights. The **retain model**,
#   which never saw the forget authors, relearning the same rows is the reference for "never knew
#   it".
# * **Quantization attack** (Zhang et al., ICLR 2025): round the weights to 8 or 4 bits
#   (per-channel round-to-nearest) and measure forget ES again.
# * **Membership inference** (LOSS attack): can the held-out forget rows still be told apart from
#   authors the model never saw, before and after each attack? (AUC 0.5: no; near 1: yes.)
#
# Every method is attacked where it stands at **matched retain quality** (the step where retain
# ES first falls to the matched level, as in notebook 04): the cached run is re-run to that step
# with the same seed. The question no one has answered: **does saturation reweighting, which
# stops pushing tokens once they are down, forget more shallowly than GA or importance
# reweighting?** The claims below are **ours**, not the paper's, and are decided with the same
# paired intervals as every other study, whichever way the data go.

# %% tags=["parameters"]
SIZE = "full"  # "full" (tiny tier, the real reproduction) or "fast" (micro model, for tests)
TIER = None  # None: the size's tier; "base": a bigger from-scratch model; "small": SmolLM2-135M
OUT_DIR = None  # where figures and tables go when run by `satimp-lab reproduce`

# %%
import pandas as pd
from IPython.display import Image, Markdown, display

from satimp_lab.experiments.attacks import attack_config
from satimp_lab.experiments import Lab
from satimp_lab.studies.tables import save_table
from satimp_lab.studies import relearning

pd.set_option("display.max_colwidth", 120)
lab = Lab(SIZE, **({"tier": TIER} if TIER else {}))
setting, config = lab.setting, attack_config(lab.setting)
seeds = relearning.seeds_for(setting)
print(f"setting {setting.name!r}: tier {setting.tier!r}, forget split {setting.forget_split!r}; "
      f"{len(setting.target_seeds)} target models x unlearning seed(s) {list(seeds)}")
print(f"relearning: {config.relearn_fraction:.0%} of the forget authors, steps {list(config.relearn_steps)}, "
      f"lr {config.relearn_lr or setting.base.lr:g}; quantization to {list(config.bits)} bits; "
      f"MIA attack {config.mia_attack!r}")

# %% [markdown]
# ## 1. The attacked models
# One cached unlearning run per method and unit (shared with notebook 04), re-run to its matched
# step, then attacked; every attack is cached too, so a second execution reads them back.
# `attack_step` is the optimiser step attacked (`reached`: how many units got to the matched
# level; the others are attacked at their last step).

# %%
result = relearning.STUDY.run(lab)
summary = result.summary
attacked = summary[summary["label"].isin([*relearning.LABELS, relearning.REFERENCE])]
overview = attacked.groupby("label", sort=False).agg(
    units=("seed", "size"), reached=("reached", "sum"), attack_step=("attack_step", "mean"),
    held_out_rows=("n_held_out", "first"), relearned_rows=("n_relearned", "first")).reset_index()
overview

# %% [markdown]
# ## 2. Relearning: what comes back on the other authors
# Forget ES of the held-out authors after each number of relearning steps, mean over units, with
# the 95 % cluster-bootstrap interval over target models shaded. A method whose curve climbs
# above the retain model's (dashed) had hidden, not removed, the held-out authors' answers.
# `relearn_auc` is the area under the curve divided by the number of steps (the curve's mean
# level); `relearn_gain` is that area minus the starting ES (what relearning brought back);
# `relearned_fit_es` checks that the attacker did fit the rows it trained on.

# %%
display(Image(relearning.recovery_png(summary)))
recovery = result.tables["relearning_recovery"]
recovery.round(3)

# %% [markdown]
# The same curves for key-token accuracy (the annotated fact tokens alone, teacher-forced):
# whether the facts themselves come back, not just the wording around them.

# %%
display(Image(relearning.recovery_png(summary, "key")))

# %% [markdown]
# ## 3. Quantization: before and after rounding the weights
# Forget ES of the held-out authors and retain ES, before and after rounding every linear
# layer's weights to 8 and 4 bits (embeddings, norms and the output head kept). Forget ES going
# *up* after rounding means the rounding undid part of the unlearning.

# %%
quantization = result.tables["relearning_quantization"]
quantization.round(3)

# %% [markdown]
# ## 4. Membership inference before and after each attack
# LOSS-attack AUC, held-out forget rows (members of the target's training set) vs holdout
# authors (never trained on): 0.5 means the forget rows look like unseen data.

# %%
result.tables["relearning_membership"].round(3)

# %% [markdown]
# ## 5. Verdicts (ours)
# Each claim is decided on paired (target, seed) units by `satimp_lab.studies.verdicts`: mean paired
# difference, 95 % cluster-bootstrap interval over target models, P(improvement). The quantized
# copies are compared with the unquantized models as models of their own (`<method>/4-bit`).
# The figure shows each unit's paired difference (dots, coloured by target model), the mean and
# its interval; the table below it is each unit's recovery gain.

# %%
result.save(OUT_DIR)
units = summary.drop_duplicates(["target_seed", "seed"])
display(Markdown(f"*{units['target_seed'].nunique()} target models x {units['seed'].nunique()} unlearning "
                 f"seed(s): {len(units)} paired units*"))
display(result)
display(Image(result.figure_png()))
result.tables["relearning_gain_by_unit"].round(3)

# %%
rec = recovery.set_index("label")
lines = [f"{relearning.NAMES[m]}: forget ES {rec.loc[m, 'relearn_es_k0']:.3f} at the matched step, "
         f"recovery gain {rec.loc[m, 'relearn_gain']:+.3f} (area {rec.loc[m, 'relearn_auc']:.3f})"
         for m in rec.index]
quant = quantization.set_index("label")
bits = min(config.bits)
lines += [f"{bits}-bit rounding moves held-out forget ES by "
          + ", ".join(f"{relearning.NAMES[m]} {quant.loc[m, f'forget_es_q{bits}'] - quant.loc[m, 'forget_es']:+.3f}"
                      for m in quant.index)]
display(Markdown("**Measured here.** " + "; ".join(lines) + "."))
