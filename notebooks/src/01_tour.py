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
# # 01 · A tour of satimp_lab
#
# This notebook walks through the whole pipeline once, on the tiny tier, in about a minute:
#
# 1. the **benchmark** — fictitious authors with exact fact-span annotations;
# 2. the **target model** (trained on everything) and the **retain model** (never saw the
#    forget authors — the reference for "forgotten");
# 3. one **SatImp** unlearning run, with the likelihood and weight of every forget token traced
#    at every step;
# 4. the **metrics** of the target, the retain model and the unlearned model side by side.
#
# Every number below is computed here (or read from the cache a previous run of this notebook
# wrote). Change `SIZE` to `"fast"` for a seconds-long version.

# %% tags=["parameters"]
SIZE = "full"  # "full" (tiny tier, the real reproduction) or "fast" (micro model, for tests)
TIER = None  # None: the size's tier; "base": a bigger from-scratch model; "small": SmolLM2-135M
OUT_DIR = None  # where figures and tables go when run by `satimp-lab reproduce`

# %%
import pandas as pd
from IPython.display import HTML, display

from satimp_lab.evaluation import metrics
from satimp_lab.ui import plots
from satimp_lab.experiments import Lab
from satimp_lab.studies.tables import save_table
from satimp_lab.studies.figures import curves_over_steps

pd.set_option("display.max_colwidth", 90)
lab = Lab(SIZE, **({"tier": TIER} if TIER else {}))
setting = lab.setting
print(f"setting {setting.name!r}: tier {setting.tier!r}, forget split {setting.forget_split!r}")

# %% [markdown]
# ## 1. The benchmark
# Each row is a question about one author, an answer built from a template, a paraphrase, wrong
# answers in the same template (for the truth ratio) and the **key spans**: the characters of the
# fact values inside the answer.

# %%
bench = lab.benchmark
print({name: len(split) for name, split in bench.items()})
forget = bench[setting.forget_split]
rows = forget.select(range(3)).to_pandas()
rows["key facts"] = [[a[s:e] for s, e in spans] for a, spans in zip(rows["answer"], rows["key_spans"])]
rows[["question", "answer", "key facts", "perturbed_answer"]]

# %% [markdown]
# ## 2. Target and retain models
# Both are trained (or loaded from the on-disk cache) here. Memorisation is measured under
# teacher forcing: the share of answer tokens, and of key (fact) tokens, whose argmax is right.

# %%
target, retain = lab.target, lab.retain_model
models_table = pd.DataFrame([
    {"model": "target", "trained on": "full + world_facts", **{k: target.report[k] for k in ("answer_accuracy", "key_accuracy", "epochs")}},
    {"model": "retain", "trained on": f"retain split + world_facts", **{k: retain.report[k] for k in ("answer_accuracy", "key_accuracy", "epochs")}},
])
n_params = sum(p.numel() for p in target.model.parameters())
print(f"{n_params / 1e6:.2f}M parameters")
save_table(models_table, OUT_DIR, "01_models")
models_table

# %% [markdown]
# ## 3. One SatImp run
# SatImp weights each forget token by $w = p^{\beta_{sat}}(1-p)^{\beta_{imp}}$ (defaults 5 and 0.1)
# and ascends the weighted NLL. The run's history holds the loss and, every few steps, a
# teacher-forced evaluation of the forget and retain sets.

# %%
run = lab.run("satimp", seed=setting.seeds[0])
evals = run.history.dropna(subset=["forget_es"])
curve = plots.tradeoff_curves(evals.assign(label="satimp"), title="SatImp: forget vs retain ES along the run")
plots.save_figure(curve, OUT_DIR, "01_satimp_tradeoff")
plots.save_png(curves_over_steps(evals.assign(label="satimp", target_seed=run.target_seed, seed=run.config.seed),
                                 title="One SatImp run: forget and retain ES along the run (one run: no interval)"),
               OUT_DIR, "01_satimp_tradeoff")   # the report's static copy
curve

# %%
first, last = evals.iloc[0], evals.iloc[-1]
print(f"forget ES {first.forget_es:.3f} -> {last.forget_es:.3f}; retain ES {first.retain_es:.3f} -> {last.retain_es:.3f} "
      f"after {int(last.step)} steps")
print(f"at matched retain ({setting.match_level:.0%} of its start): forget ES {run.summary['matched_forget']:.3f} "
      f"at step {run.summary['matched_step']:.1f}")

# %% [markdown]
# ## 4. The trace: every forget token, every step
# The trace comes from the very forward pass that computed the loss. Below, one answer at the first
# and the last step: darker green means more weight; key (fact) tokens are underlined. Hover a token
# to read its likelihood and weight.

# %%
trace = run.trace_frame
print(f"{len(trace):,} token records over {trace.step.nunique()} steps")
example = int(trace.example_id.iloc[0])
seen = trace[trace.example_id == example]
tok = target.tokenizer
for label, step in (("first", seen.step.min()), ("last", seen.step.max())):
    rows = seen[seen.step == step].sort_values("position")
    display(HTML(f"<b>{label} step this example was seen (step {step})</b>: " + plots.token_html(
        [tok.decode([t]) for t in rows.token_id], rows.weight.tolist(), rows.p.tolist(), rows.is_key.tolist(),
        vmax=float(trace.weight.max()))))

# %%
summary = trace.groupby("step").agg(mean_likelihood=("p", "mean"), mean_weight=("weight", "mean")).reset_index()
save_table(summary, OUT_DIR, "01_trace_by_step")
summary.head(10)

# %% [markdown]
# ## 5. Metrics: target, retain model, unlearned model
# Extraction strength (ES, lower on forget = better forgotten), exact memorisation, answer
# probability, truth ratio, forget quality (KS-test p-value against the retain model; 1 = the
# forget set looks as if never learned), model utility and the loss-based membership-inference AUC.
# The unlearned model's row is computed on the run's final model.

# %%
reference = lab.reference_metrics
table = pd.DataFrame({"target": reference["target"], "retain model": reference["retain"],
                      "SatImp (unlearned)": {k[5:]: v for k, v in run.summary.items() if k.startswith("eval_")}})
table.index.name = "metric"
save_table(table.reset_index(), OUT_DIR, "01_metrics")
table.round(3)

# %% [markdown]
# **Reading it.** The target model reproduces the forget answers (high forget ES); the retain model
# never saw them (low forget ES, forget quality 1 by construction). SatImp should move the forget
# numbers toward the retain model's while keeping the retain and world-facts numbers near the
# target's. The finding notebooks (03–07) compare methods at *matched* retain quality, which is
# the fair way to read such tables.
