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
# # 11 · MUSE-shaped text: does SatImp's advantage carry over?
#
# Notebooks 03-07 test the paper's observations on TOFU-shaped *question answering*: the model
# forgets short answers about fictitious authors. The paper also reports that SatImp keeps its
# advantage on **MUSE** (Shi et al., 2024), where a model has read *text* -- news articles, books --
# and must stop reciting it (verbatim memory), stop knowing what it said (knowledge memory), and
# stop giving away that it ever read it (privacy leakage), while keeping what it knows of
# everything else (utility).
#
# **The data.** An offline stand-in for MUSE's news corpus (`satimp_lab.data.muse`): short local news
# reports about invented towns, whose facts (people, places, organisations, dates, numbers) are
# known exactly, with three questions per article. The **target** model read every forget and
# retain article and the questions about them; the **retrained** model read only the retain
# articles and their questions: it is what "never read the forget articles" looks like.
#
# **How we test it.** Every method unlearns the forget articles as raw text, with the same model,
# data and learning rate. Unlearning without a retain term eventually destroys everything, so each
# run is stopped and scored at **matched utility**: the step where its utility reading (the
# teacher-forced extraction strength of the retain articles' questions) first falls to 90 % of its
# start. MUSE's four metrics are computed on the model there:
#
# | metric | what it asks | better |
# |---|---|---|
# | **VerbMem on D_f** | continue a forget article from its first 32 tokens: how much of the true continuation comes out (ROUGE-L F1) | lower |
# | **KnowMem on D_f** | answer the questions about the forget articles (ROUGE-L F1 against the fact) | lower |
# | **KnowMem on D_r** | answer the questions about the retain articles: the utility MUSE keeps | higher |
# | **PrivLeak** | can a membership attack (min-k % probability) tell the forget articles from articles no model read, relative to the retrained model? 0 = as private as the retrained model, -100 = as exposed as the target | closer to 0 |
#
# The claims are **ours**, phrased from the paper's statement that SatImp's efficacy holds on MUSE,
# and decided by `satimp_lab.studies.muse` on a population of target models with the same paired
# intervals as every other study (docs/methods.md, sections "MUSE-shaped corpus", "The MUSE-shaped
# study" and "MUSE metrics"). This notebook only shows them; then it looks at one article up close.

# %% tags=["parameters"]
SIZE = "full"  # "full" (tiny tier, the real reproduction) or "fast" (micro model, for tests)
TIER = None  # None: the size's tier; "base": a bigger from-scratch model; "small": SmolLM2-135M
OUT_DIR = None  # where figures and tables go when run by `satimp-lab reproduce`

# %%
import time

import pandas as pd
import plotly.graph_objects as go
from IPython.display import HTML, Markdown, display

from satimp_lab.data.families import text_block_source
from satimp_lab.data.muse_family import muse_model_rows
from satimp_lab.evaluation.muse import VERBMEM_PREFIX_TOKENS, knowledge_memorization, verbatim_memorization
from satimp_lab.experiments import Lab
from satimp_lab.studies import muse
from satimp_lab.studies.tables import save_table
from satimp_lab.ui import muse_view, plots
from satimp_lab.unlearning import weight_stats
from satimp_lab.unlearning.objectives import get_method

pd.set_option("display.max_colwidth", 120)
lab = Lab(SIZE, **({"tier": TIER} if TIER else {}))
mlab = lab.family_lab("muse")  # the same size and tier on the MUSE-shaped corpus
setting = mlab.setting
print(f"setting {setting.name!r}: tier {setting.tier!r}; {len(mlab.benchmark['forget'])} forget, "
      f"{len(mlab.benchmark['retain'])} retain and {len(mlab.benchmark['holdout'])} held-out articles; "
      f"lr {setting.base.lr:g}, batch {setting.base.batch_size}, at most {setting.base.epochs:g} epochs; "
      f"target models {list(setting.target_seeds)} x unlearning seeds {list(setting.seeds)}; "
      f"matched at {setting.match_level:.0%} of the starting utility")

# %% [markdown]
# The study's runs: every method of `muse.METHODS` on every unit of the population (target model
# x unlearning seed), each stopped at its matched point and scored there. They are cached: a second
# execution reads them back. On this lab's own target model the runs also keep their curves up to
# the matched point and their token traces, which sections 3-6 read.

# %%
started = time.perf_counter()
result = muse.STUDY.run(lab)
sweep = result.target_sweep(mlab)  # the study's runs on the own target, not run again
SEED = setting.seeds[0]
runs = {r.label: r for r in sweep.results if r.config.seed == SEED}  # one run per method, for the close-ups
print(f"{len(result.summary)} runs of the population ({time.perf_counter() - started:.0f} s, cached after the "
      f"first execution); {len(sweep.results)} on target {setting.target_seed}")

# %% [markdown]
# ## 1. The corpus, and what the models read
# One forget article: the first one whose opening block the runs read (section 5 shows the weights
# each scheme gave it then). Each fact is highlighted with its slot (the *key spans*
# that annotation weighting up-weights). Below it, the questions KnowMem asks about it, with the
# answers of the target and of the retrained model (greedy, as KnowMem reads them).

# %%
seen = runs["satimp"].trace_frame.groupby("example_id")["step"].min()  # the step each block was first read
first_blocks = seen[[text_block_source(e)[1] == 0 for e in seen.index]]  # VerbMem reads an article's first block
EXAMPLE = int(first_blocks.idxmin())
DOC_ID = text_block_source(EXAMPLE)[0]
article = next(r for r in mlab.benchmark["forget"] if r["doc_id"] == DOC_ID)
tok, fmt = mlab.target.tokenizer, mlab.target.tier.prompt_format
n_tokens = len(tok(article["text"], add_special_tokens=False)["input_ids"])
display(Markdown(f"**Forget article {DOC_ID}** (topic *{article['topic']}*, {len(article['text'].split())} words, "
                 f"{n_tokens} tokens; {len(article['key_spans'])} fact spans)"))
display(HTML(muse_view.key_facts_html(article["text"], article["key_spans"], article["key_facts"])))

# %%
questions = [q for q in mlab.benchmark["forget_qa"] if q["doc_id"] == DOC_ID]
answers = {name: knowledge_memorization(bundle.model, bundle.tokenizer, questions, prompt_format=fmt)
           for name, bundle in (("target", mlab.target), ("retrained", mlab.retain_model))}
pd.DataFrame({"question": [q["question"] for q in questions], "fact": [q["fact_type"] for q in questions],
              "answer": [q["answer"] for q in questions],
              **{f"{name}'s answer": [a.extra["generations"][q["qa_id"]] for q in questions]
                 for name, a in answers.items()},
              **{f"{name} ROUGE-L": [a.value_by_index[q["qa_id"]] for q in questions] for name, a in answers.items()}})

# %% [markdown]
# **What each model read** (`data.muse_family.muse_model_rows`): the retrained model is the target
# without every row about a forget article, its text and its questions. Both end points of the
# scale, scored by MUSE's metrics, are below: unlearning should move the target's row towards the
# retrained model's. The retrained model's VerbMem on the forget articles is not 0: the articles
# share sentence templates ("The runner-up, ..., received ... votes"), so a model that read only
# the retain articles still recites part of every forget article's wording; its facts it does not
# know (KnowMem on D_f).

# %%
read = pd.DataFrame([{"model": name, **{f"{kind} rows": len(rows) for kind, rows in
                                        muse_model_rows(mlab.benchmark, model_kind, setting.forget_split).items()}}
                     for name, model_kind in (("target", "target"), ("retrained", "retain"))])
display(read)
ref = mlab.reference_metrics
reference = pd.DataFrame([{"model": name, **{muse.METRICS[f"eval_{k}"]: v for k, v in ref[kind].items()
                                             if f"eval_{k}" in muse.METRICS}}
                          for name, kind in (("target", "target"), ("retrained", "retain"))])
save_table(reference, OUT_DIR, "11_reference_metrics")
reference.round(3)

# %% [markdown]
# ## 2. The claims, decided on the population
# Training a small model from scratch is chaotic: each target model of the population is another
# sample. Every method runs on the same units (target model x unlearning seed), each comparison is
# a set of paired differences, and `satimp_lab.studies.verdicts` gives the mean improvement, a 95 %
# bootstrap interval over target models, P(improvement) and the outcome (its docstring states the
# rule). Every metric compared is "lower is better" (PrivLeak as its distance to 0, |PrivLeak| /
# 100, so the minimum effect of 0.02 is two points of PrivLeak). A run that never reached the
# matched level is scored at its last step and counted as unreached.
#
# Below the claims: each comparison's paired differences (dots, one per unit, coloured by target
# model) with their mean and 95 % interval; then, for VerbMem, KnowMem on D_f and |PrivLeak| / 100,
# each method's value on every unit (dots) with the population mean and its interval; then the
# per-unit tables the effects are computed from.

# %%
result.save(OUT_DIR)
result.show()

# %% [markdown]
# ## 3. MUSE's four metrics
# The population mean of each metric at matched utility (`reached`: how many units got to the
# matched level), with the two end points of the scale below it.

# %%
metrics = result.tables["muse_metrics"]
ends = reference.assign(label=["[target]", "[retrained]"], method=reference["model"]).drop(columns="model")
table = pd.concat([metrics, ends], ignore_index=True)
save_table(table, OUT_DIR, "11_muse_metrics")
table.round(3)

# %% [markdown]
# ### On this lab's own target, run by run
# The same metrics for each run on target model `setting.target_seed` (one row per method and
# unlearning seed), with the step each run was stopped at (`matched_step`, interpolated) and the
# forget-text extraction strength there (`matched_forget`).

# %%
final = sweep.final()
columns = ["label", "seed", "reached", "matched_step", "matched_forget", *[c for c in muse.METRICS if c in final]]
save_table(final[columns], OUT_DIR, "11_runs_own_target")
final[columns].round(3)

# %% [markdown]
# ### Trade-off curves during unlearning
# Each line follows one method through training (mean over seeds at each evaluation step), from the
# target model (top right) to the matched point, where the run stops. y: the extraction strength of
# the forget articles' text (lower = the text is less predictable, i.e. more forgotten). Further
# down at the same x is better unlearning.
#
# First, x = the utility reading the runs are matched on: the extraction strength of the retain
# articles' *questions*, teacher forced (1 = every answer token predicted). The dotted line is the
# matched level, where each run stops.

# %%
curves = sweep.curves
start = curves[curves.step == 0]
target_point = (float(start["utility_es"].mean()), float(start["forget_es"].mean()))
level = setting.match_level * target_point[0]
fig = plots.tradeoff_curves(
    curves, x="utility_es", y="forget_es", reference={"target": target_point},
    title=f"Forget text vs retain questions during unlearning, target {setting.target_seed} "
          f"(mean over {len(setting.seeds)} seed(s))",
    x_title="utility: retain questions' extraction strength (higher = kept)",
    y_title="forget articles' ES (lower = forgotten)")
fig.update_layout(height=560)
fig.add_trace(go.Scatter(x=[level, level], y=[0, float(curves.forget_es.max())], mode="lines",
                         name=f"matched level ({setting.match_level:.0%} of start)",
                         line=dict(color="grey", dash="dot")))
plots.save_figure(fig, OUT_DIR, "11_tradeoff_curves")
fig

# %% [markdown]
# The same runs against the extraction strength of the retain articles' *text* (x; the loop reads
# it at every step too, but the runs are not matched on it). Where the curves of the first figure
# run straight down at utility 1 and only bend at the end, the text of the retain articles is being
# unlearned with the forget text: the questions are a much coarser reading of utility than the
# text. Where each curve ends (its matched point) is how much of the retain text the method kept.

# %%
text_fig = plots.tradeoff_curves(
    curves, x="retain_es", y="forget_es",
    reference={"target": (float(start["retain_es"].mean()), target_point[1])},
    title=f"Forget text vs retain text during unlearning, target {setting.target_seed} "
          f"(mean over {len(setting.seeds)} seed(s))",
    x_title="retain articles' extraction strength (higher = kept)",
    y_title="forget articles' ES (lower = forgotten)")
text_fig.update_layout(height=560)
plots.save_figure(text_fig, OUT_DIR, "11_tradeoff_curves_text")
text_fig

# %% [markdown]
# MUSE draws its trade-off as utility against verbatim memory at the end of unlearning. Here each
# method's point is its mean over this target's seeds at the matched point: KnowMem on the retain
# questions (x, higher = kept) against VerbMem on the forget articles (y, lower = forgotten). The
# stars are the target and the retrained model. A VerbMem below the retrained model's is below
# what a model that never read the forget articles recites: the sentence templates the articles
# share are being unlearned too, not only what is particular to the forget articles.

# %%
ends_xy = {name: (ref[kind]["retain_qa_knowmem"], ref[kind]["forget_verbmem"])
           for name, kind in (("target", "target"), ("retrained model", "retain"))}
muse_fig = plots.tradeoff_curves(
    final.assign(step=0), x=muse.KNOWMEM_R, y=muse.VERBMEM, reference=ends_xy,
    title=f"MUSE's trade-off at matched utility on target {setting.target_seed} "
          f"(mean over {len(setting.seeds)} seed(s))",
    x_title="KnowMem on the retain questions (ROUGE-L F1, higher = kept)",
    y_title="VerbMem on D_f (lower = forgotten)")
muse_fig.update_layout(height=560)
plots.save_figure(muse_fig, OUT_DIR, "11_verbmem_vs_knowmem")
muse_fig

# %% [markdown]
# ## 4. The article, continued by each model
# VerbMem gives a model the article's first 32 tokens and lets it continue greedily for as many
# tokens as the true continuation has. Below: the prompt, the true continuation, then each model's
# continuation with the tokens that differ from the **target's** continuation on a red background
# (the target's own row is compared with the true continuation), and its ROUGE-L F1 against the
# true continuation (this article's VerbMem). A continuation can score low in two ways: other
# words (the facts or the wording replaced: the model still writes, but not this article), or no
# words at all (runs of punctuation: it has stopped writing text). ROUGE-L counts only words, so
# both score near 0: read the continuations, not only the number.
#
# The cache keeps each run's numbers and trace, not its model, so each method's model at its
# matched point is **made again here**: the run on this target with the first seed is re-run with
# the same recipe (a seeded CPU run is bit-identical; `muse_view.rerun_at_match` checks its
# readings against the cached ones), a few seconds per method. As a check that it is the model
# the tables scored, VerbMem over every forget article is recomputed on it.

# %%
def continuation(model, row):
    return verbatim_memorization(model, tok, [row], prompt_format=fmt)


text_ids = tok(article["text"], add_special_tokens=False)["input_ids"]
prompt = tok.decode(text_ids[:VERBMEM_PREFIX_TOKENS])
shown = {"target": continuation(mlab.target.model, article),
         "retrained": continuation(mlab.retain_model.model, article)}
started, rows_checked = time.perf_counter(), []
for label in muse.METHODS:
    remade = muse_view.rerun_at_match(mlab, runs[label])
    shown[label] = continuation(remade.model, article)
    again = verbatim_memorization(remade.model, tok, mlab.benchmark["forget"], prompt_format=fmt).agg_value
    rows_checked.append({"method": muse.NAMES[label], "stopped at step": int(remade.history.step.max()),
                         "VerbMem recomputed": again, "VerbMem in the table": runs[label].summary[muse.VERBMEM]})
    del remade
print(f"{len(muse.METHODS)} runs made again in {time.perf_counter() - started:.0f} s")
pd.DataFrame(rows_checked).round(4)

# %%
def pieces(text):
    return [tok.decode([t]) for t in tok(text, add_special_tokens=False)["input_ids"]]


truth = shown["target"].extra["references"][DOC_ID]
lines = [f"<p><b>prompt</b> ({VERBMEM_PREFIX_TOKENS} tokens): <i>{prompt}</i></p>",
         f"<p><b>true continuation</b>: {truth}</p>", "<table>"]
for label, vm in shown.items():
    name = muse.NAMES.get(label, label)
    against = truth if label == "target" else shown["target"].extra["generations"][DOC_ID]
    lines.append(f"<tr><td style='text-align:left; vertical-align:top'><b>{name}</b><br>VerbMem "
                 f"{vm.value_by_index[DOC_ID]:.2f}</td><td style='text-align:left'>"
                 + muse_view.diff_html(pieces(vm.extra["generations"][DOC_ID]), pieces(against)) + "</td></tr>")
display(HTML("\n".join(lines) + "</table>"))

# %% [markdown]
# ## 5. Where each scheme put its weight on this passage
# The token trace records, at every step, the likelihood p of each forget token and the weight the
# loss gave it. Below: the article's first block (VerbMem's prompt and continuation) at the first
# step each run read it. At step 0 that is through the target model, so every scheme saw the same
# likelihoods; a block first read a few steps in was seen through each run's own, slightly
# unlearned, model (the step is given). Darker green = more weight (each scheme scaled to its own
# maximum on the passage); fact tokens are bold and underlined; hover a token for p and w. GA
# weights every token 1; NPO and SimNPO weight whole sequences (notebook 02) and are left out.
#
# What to look for (the runs' exponents):
#
# * **SimSat** (p, β_sat = 1): the weight is the likelihood itself, so the tokens the model
#   predicts well (most of a memorised article) carry it and the tokens it already gets wrong get
#   little.
# * **SimImp** (1 - p, β_imp = 1): the reverse -- the weight sits on the few badly predicted tokens.
# * **annotation**: weight 1 on the fact tokens, 0 elsewhere.
# * **SatImp** (p^5 (1-p)^0.1): saturation sharpened by β_sat = 5 (tokens with p below ~0.5 get
#   almost nothing), with a small importance factor that takes the weight off the tokens the model is
#   certain of (p close to 1).

# %%
schemes = [label for label in ("ga", "simsat", "simimp", "annotated", "satimp") if label in runs]
traced = {label: muse_view.first_seen(runs[label].trace_frame, EXAMPLE) for label in schemes}
target_reading = muse_view.passage_reading(mlab.target, article)  # the target's likelihoods on the block
tokens = [tok.decode([t]) for t in target_reading.token_id]
for label, rows in traced.items():
    display(HTML(f"<b>{muse.NAMES[label]}</b> (step {int(rows.step.iloc[0])}): " + plots.token_html(
        tokens, rows.weight.tolist(), rows.p.tolist(), rows.is_key.tolist())))

# %% [markdown]
# The same weights along the passage (each scheme scaled to max 1), with the target's likelihood p
# of each token as grey bars (fact tokens yellow). Left of the dotted line is VerbMem's prompt; VerbMem
# scores what the model says after it.

# %%
weights_fig = go.Figure()
weights_fig.add_trace(go.Bar(x=target_reading.position, y=target_reading.p, opacity=0.6,
                             name="target's likelihood p (fact tokens yellow)", hovertext=tokens,
                             marker_color=["#ffc300" if k else "#d9d9d9" for k in target_reading.is_key]))
for label, rows in traced.items():
    weights_fig.add_trace(go.Scatter(x=rows.position, y=rows.weight / rows.weight.max(), mode="lines",
                                     name=muse.NAMES[label], line=dict(color=plots.color_for(label)),
                                     hovertext=tokens))
weights_fig.add_vline(x=VERBMEM_PREFIX_TOKENS - 0.5, line=dict(color="grey", dash="dot"))
weights_fig.update_layout(title=f"Traced token weights on forget article {DOC_ID}'s first block, the first step "
                                f"each run read it (each scheme scaled to max 1)",
                          xaxis_title="token position in the article", yaxis_title="relative weight / likelihood p",
                          template="plotly_white", legend_title_text="scheme")
plots.save_figure(weights_fig, OUT_DIR, "11_traced_weights")
weights_fig

# %% [markdown]
# How much of each scheme's weight lands on the fact tokens, against their share of the tokens
# (`weight_share` of the key row vs `n_tokens`), with the fact and other tokens' mean likelihood
# under the target (`unlearning.weight_stats.key_vs_other`, on this passage at that step):

# %%
share = weight_stats.key_vs_other(pd.concat([rows.assign(method=muse.NAMES[label]) for label, rows in traced.items()]),
                                  by="method")
share = share[["method", "token_group", "n_tokens", "mean_likelihood", "mean_weight", "weight_share"]]
save_table(share, OUT_DIR, "11_key_weight_share")
share.round(3)

# %% [markdown]
# ## 6. Move β and watch the weights move
# The weights are pure functions of the likelihoods, so the target's likelihoods on the block are
# read once (`muse_view.passage_reading`, the reading a run's step 0 traces), and the sliders recompute SimSat's p^β_sat, SimImp's (1-p)^β_imp and SatImp's
# p^β_sat (1-p)^β_imp along the passage with the library's own weighting functions
# (`unlearning.weight_curves.token_weights_on_grid`) -- the very weights training used (the
# sliders start at SatImp's defaults, β_sat = 5 and β_imp = 0.1; SimSat and SimImp use β = 1 in the
# runs). Raise β_sat: the weight concentrates on the tokens the model is surest of (the template
# words). Raise β_imp: SatImp's peak moves to lower likelihood, p* = β_sat / (β_sat + β_imp), and
# the facts the model is unsure of gain weight. The shaded passage below the figure is SatImp's
# weight at the sliders' values.

# %%
explorer = muse_view.passage_weights_widget(tokens, target_reading.p.to_numpy(), target_reading.is_key.tolist(),
                                            beta_sat=5.0,
                                            beta_imp=0.1, prefix=VERBMEM_PREFIX_TOKENS)
plots.save_figure(explorer.figure, OUT_DIR, "11_passage_weights")
explorer

# %% [markdown]
# The sliders' weights are those of training: at the runs' own exponents, on the likelihoods each
# run traced, they equal the traced weights of section 5 (largest difference printed below).

# %%
gaps = {}
for label in ("simsat", "simimp", "satimp"):
    params = get_method(label).params
    formula = muse_view.passage_weights(traced[label].p.to_numpy(), params.get("beta_sat", 0.0),
                                        params.get("beta_imp", 0.0))[label]
    gaps[muse.NAMES[label]] = float(abs(formula - traced[label].weight.to_numpy()).max())
print("largest |weight from the formula - traced weight|: "
      + ", ".join(f"{name} {gap:.2e}" for name, gap in gaps.items()))

# %%
table_by = metrics.set_index("label")
line = "; ".join(f"{muse.NAMES[m]} VerbMem {table_by.loc[m, muse.METRICS[muse.VERBMEM]]:.3f}, KnowMem D_f "
                 f"{table_by.loc[m, muse.METRICS[muse.KNOWMEM_F]]:.3f}, PrivLeak "
                 f"{table_by.loc[m, muse.METRICS[muse.PRIVLEAK]]:.1f}" for m in table_by.index)
floor = int((result.summary[muse.PRIVLEAK] <= -100.0).sum())
display(Markdown(f"**Measured here** (population means at matched utility): {line}. The retrained model: "
                 f"VerbMem {ref['retain']['forget_verbmem']:.3f}, KnowMem D_f {ref['retain']['forget_qa_knowmem']:.3f}. "
                 f"PrivLeak is -100 (the membership attack still separates every forget article from every "
                 f"held-out one) on {floor} of {len(result.summary)} runs."))
