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
# # 06 · Observation (iii-b): granularity of the weights
#
# **The paper's claim.** The *granularity* at which weights are assigned strongly affects
# unlearning efficacy. The official code computes SimSat / SimImp weights at four levels:
#
# * **token** — each token its own weight $p_t^{\beta}$ or $(1-p_t)^{\beta}$;
# * **group (G)** — within each answer, tokens sorted by weight are cut into buckets of G and every
#   token gets its bucket's mean (G = 1 is token level; G ≥ answer length is a per-answer mean);
# * **instance** — one weight per answer from the answer likelihood $P = \prod_t p_t$ (official; the
#   loss is then the *summed* NLL of the answer), and our length-normalised variant with the
#   geometric-mean likelihood and the usual token-mean loss;
# * **batch** — one weight for the whole micro-batch.
#
# The paper does not say which direction wins: the claim is that the level matters (each family's
# best vs worst level), and the figures show which level is best here.
#
# **How we test it.** Every level for SimSat and SimImp at β = 1, same recipe as notebook 04, forget
# ES at matched retain ES (lower = better). The verdict comes first, decided by the study
# `satimp_lab.studies.granularity` on a population of target models; then, on one batch of this
# lab's target model, what each level does to the weight distribution, and that target's runs.

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
from satimp_lab.experiments.identity import NAMES, fields_table, level_name, spec_params
from satimp_lab.studies.tables import save_table
from satimp_lab.studies import granularity, specs

pd.set_option("display.max_colwidth", 120)
lab = Lab(SIZE, **({"tier": TIER} if TIER else {}))
setting = lab.setting
print(f"setting {setting.name!r}: target models {list(setting.target_seeds)} x seeds {list(setting.seeds)}; "
      f"group sizes {list(specs.GROUP_SIZES)}")
spec_params(granularity.specs()).astype(object).fillna("")

# %% [markdown]
# ## 1. The verdict, decided on the population
# Every granularity level of SimSat and SimImp on every unit (each target model of
# `setting.target_seeds` x each unlearning seed); each comparison is a set of paired differences,
# and `satimp_lab.studies.verdicts` gives the mean improvement, a 95 % bootstrap interval over target
# models, P(improvement) and the verdict (its docstring states the rule). The paper gives no
# direction, so the claim compares each family's best and worst level.

# %%
result = granularity.STUDY.run(lab)
result.save(OUT_DIR)
result.show()

# %% [markdown]
# ## 2. One batch, every granularity
# The first micro-batch of forget answers under this lab's target model, β = 1. Statistics over the
# batch's answer tokens of the weight each token receives: normalised entropy (1 = uniform), ESS
# fraction (share of tokens that effectively carry the loss), Gini (0 = equal), and the Spearman
# correlation of the weight with the token's own likelihood (how much of the token-level signal
# survives). At the official instance level the weight comes from the answer likelihood
# $P = \prod_t p_t$: for long, imperfectly memorised answers $P$ is tiny (instance-SimSat ≈ 0,
# instance-SimImp ≈ 1, i.e. GA on the summed NLL), unless the target reproduces its short answers
# so well that $P$ stays far from 0 (compare the `mean` column with the token level). The
# length-normalised variant keeps the weights on the token scale.

# %%
batch = tables.target_batch(lab, n=setting.base.batch_size)
n_tokens = batch.mask.sum(dim=1)
print(f"{batch.mask.shape[0]} answers, {int(n_tokens.min())}-{int(n_tokens.max())} answer tokens each")
gran = pd.concat([weight_stats.granularity_summary(batch.logp, batch.mask, beta=1.0, kind=kind,
                                               group_sizes=specs.GROUP_SIZES).assign(kind=kind)
                  for kind in ("saturation", "importance")], ignore_index=True)
gran["level"] = [level_name(g, size) for g, size in zip(gran["granularity"], gran["group_size"])]
save_table(gran, OUT_DIR, "06_one_batch_statistics")
gran[["kind", "level", "mean", "normalised_entropy", "ess_fraction", "gini", "spearman_weight_likelihood"]].round(3)

# %% [markdown]
# ## 3. One target model up close: efficacy per granularity
# The study's runs on this lab's own target model (`setting.target_seed`), not run again. Forget ES
# at matched retain ES, mean ± std over this target's seeds (lower = better forgotten), from the
# finest (token) to the coarsest (batch) level; `G=n` is the group level with groups of n tokens,
# `instance` the official per-answer weight, `instance-norm` our length-normalised variant.
# `reached` counts the seeds whose retain ES fell to the matched level within the budget; for the
# others the value is the final forget ES, an upper bound.

# %%
summary = result.target_sweep(lab).final()  # every run with its final model's metrics
labels = [s["label"] for s in granularity.specs()]
text = tables.results_table(summary, labels, columns=("matched_forget", "matched_step", "eval_forget_es",
                                                        "eval_model_utility"), text=True)
save_table(text, OUT_DIR, "06_granularity")
fields = fields_table(granularity.specs())[["label", "family", "level"]]  # each run's family and level
table = tables.results_table(summary, labels).merge(fields, on="label")
table["unreached"] = table["reached"] < table["seeds"]
fig = plots.param_sweep(table, x="level", y="matched_forget_mean", group="family", error="matched_forget_std",
                        flag="unreached", flag_name="a seed never reached the matched level (value = upper bound)",
                        title=f"Granularity on target {setting.target_seed}: forget ES at matched retain "
                              f"(mean ± std, {len(setting.seeds)} seed(s), β = 1)",
                        x_title="granularity of the weights (fine → coarse)",
                        y_title="forget ES at matched retain (lower = better forgotten)",
                        names=NAMES)
plots.save_figure(fig, OUT_DIR, "06_granularity")
display(text)
fig

# %% [markdown]
# A single weight per micro-batch multiplies that batch's whole gradient. Gradient clipping and
# AdamW's per-parameter normalisation largely cancel such a scalar, so batch-level SimSat and SimImp
# may behave almost identically although their weights differ (see the one-batch table above);
# per seed on this target:

# %%
summary[summary.label.isin(["simsat/batch", "simimp/batch"])].pivot_table(
    index="seed", columns="label", values="matched_forget")
