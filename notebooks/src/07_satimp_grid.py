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
# # 07 · SatImp: the β_sat × β_imp grid
#
# **The paper's method.** SatImp weights each forget token by
# $w = p^{\beta_{sat}}(1-p)^{\beta_{imp}}$: the saturation factor $p^{\beta_{sat}}$ stops spending
# effort on tokens already unlearned, the importance factor $(1-p)^{\beta_{imp}}$ keeps weight on the
# tokens still to be unlearned. The official README recommends β_sat = 5, β_imp = 0.1. The grid
# contains the other methods as its edges: the **β_imp = 0 row is SimSat**, the **β_sat = 0 column is
# SimImp**, and the corner (0, 0) is plain **GA** — those cells are literally the same runs as in
# notebooks 04 and 05 (read back from the cache).
#
# **Claims checked here.** (1) The recommended (5, 0.1) is the best cell of the grid. (2) With every
# method at its best β in the grid, SatImp beats pure saturation and pure importance. Efficacy is
# forget ES at matched retain ES (lower = better), as in notebook 04. The study
# `satimp_lab.studies.grid` decides both on a population of target models; the heatmap below
# shows the same runs.

# %% tags=["parameters"]
SIZE = "full"  # "full" (tiny tier, the real reproduction) or "fast" (micro model, for tests)
TIER = None  # None: the size's tier; "base": a bigger from-scratch model; "small": SmolLM2-135M
OUT_DIR = None  # where figures and tables go when run by `satimp-lab reproduce`

# %%
import pandas as pd
from IPython.display import display

from satimp_lab.ui import plots
from satimp_lab.experiments import Lab
from satimp_lab.studies.tables import save_table
from satimp_lab.studies import grid, specs

pd.set_option("display.max_colwidth", 120)
lab = Lab(SIZE, **({"tier": TIER} if TIER else {}))
setting = lab.setting
print(f"setting {setting.name!r}: target models {list(setting.target_seeds)} x seeds {list(setting.seeds)}; "
      f"β_sat in {list(specs.GRID_BETA_SAT)}, β_imp in {list(specs.GRID_BETA_IMP)} ({len(grid.specs())} cells)")

# %% [markdown]
# ## 1. The verdicts, decided on the population
# The whole grid on every unit (each target model of `setting.target_seeds` x each unlearning
# seed); each comparison is a set of paired differences, and `satimp_lab.studies.verdicts` gives the mean
# improvement, a 95 % bootstrap interval over target models, P(improvement) and the verdict (its
# docstring states the rule). The best cells are picked on the same runs that measure them, which
# flatters the picked cell (said with each claim).

# %%
result = grid.STUDY.run(lab)
result.save(OUT_DIR)
result.show()

# %% [markdown]
# ## 2. The grid
# Each cell: forget ES at matched retain ES, mean over every unit of the study above (lower =
# better forgotten; darker = better). Bottom row (β_imp = 0) = SimSat, left column (β_sat = 0) =
# SimImp, bottom-left = GA; `rank` 1 is the lowest mean.

# %%
cells = grid.grid_table(result.summary)
save_table(cells, OUT_DIR, "07_grid")
fig = plots.heatmap(cells, x="beta_sat", y="beta_imp", z=f"{grid.METRIC}_mean",
                    title=f"SatImp grid: forget ES at matched retain (mean of {int(cells.n_runs.max())} units; "
                          f"lower = better)",
                    x_title="β_sat (exponent on p: saturation)", y_title="β_imp (exponent on 1-p: importance)",
                    z_title="forget ES at matched retain", fmt=".3f")
plots.save_figure(fig, OUT_DIR, "07_grid_heatmap")
fig

# %% [markdown]
# The spread over units per cell (rows β_imp, columns β_sat), and the five best cells:

# %%
display(cells.pivot_table(index="beta_imp", columns="beta_sat", values=f"{grid.METRIC}_std").round(3))
cells.sort_values("rank").head(5)[["label", "kind", "rank", f"{grid.METRIC}_mean", f"{grid.METRIC}_std", "reached_all"]]
