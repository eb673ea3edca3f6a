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
# # 08 · Playground: run any method, compare the trade-offs
#
# Pick a method, set its hyper-parameters, the learning rate, the length of the run and the seed,
# press **Run**. Each run is added to the comparison below the form: its forget-vs-retain trade-off
# curve (extraction strength on the forget and retain sets at every evaluation step) and a row of
# summary numbers, including the forget ES at the point where retain ES has fallen to the matched
# level (the fair way to compare methods, docs/methods.md, "Forget ES at matched retain").
#
# Runs go through `lab.run(...)`, which caches every configuration on disk: pressing Run again on a
# configuration you (or another notebook) already ran returns at once. On the tiny tier a run takes
# a few seconds on a laptop CPU; the first use trains (or loads) the target model.

# %% tags=["parameters"]
SIZE = "full"  # "full" (tiny tier) or "fast" (micro model, for tests)
TIER = None  # None keeps the size's tier
OUT_DIR = None  # where figures and tables go when run by `satimp-lab reproduce`

# %%
import pandas as pd

from satimp_lab.ui import plots
from satimp_lab.experiments import Lab
from satimp_lab.studies.tables import save_table
from satimp_lab.studies.figures import curves_over_steps
from satimp_lab.ui.playground import Playground, PlaygroundUI

pd.set_option("display.max_colwidth", 60)
lab = Lab(SIZE, **({"tier": TIER} if TIER else {}))
setting = lab.setting
print(f"setting {setting.name!r}: tier {setting.tier!r}, forget split {setting.forget_split!r}; "
      f"recipe lr {setting.base.lr:g}, {setting.base.epochs:g} epochs, batch {setting.base.batch_size}")
target = lab.target        # trained on first use, then loaded from the cache
print(f"target model ready ({'from the cache' if target.from_cache else 'trained now'})")

# %% [markdown]
# ## The form
#
# * **method** — every registered method (`satimp_lab.unlearning.objectives.list_methods()`); the sliders
#   below it change with the method (β_sat/β_imp for the weighted methods, the group size for
#   group granularity, k for hard sampling, NPO's β, the retain weight of the `_gd` variants …).
# * **lr**, **epochs** (or an exact number of **steps**; 0 = use epochs), **seed**.
# * **Run** runs (or loads) the configuration and adds it to the comparison; **Clear** empties it.

# %%
playground = Playground(lab)
ui = PlaygroundUI(playground, method="satimp")
ui

# %% [markdown]
# ## A first comparison: SatImp against plain GA
#
# So that this notebook shows something when it runs unattended (and as a starting point for the
# form above), we add two runs through the same functions the Run button calls: SatImp and GA at the
# setting's recipe and first seed.

# %%
seed = setting.seeds[0]
for method in ("satimp", "ga"):
    playground.add_run(method, seed=seed)
ui.refresh()           # the form's figure and table now show these runs too
comparison = playground.figure()
plots.save_figure(comparison, OUT_DIR, "08_playground_tradeoff")
plots.save_png(curves_over_steps(playground.curves(), title="Playground: forget and retain ES along each run "
                                                          "(one run per method: no interval)"),
               OUT_DIR, "08_playground_tradeoff")   # the report's static copy
comparison

# %%
table = playground.table()
save_table(table.drop(columns=["seconds", "from cache"]), OUT_DIR, "08_playground_runs")   # they vary
table.round(3)

# %%
rows = table.set_index("run")
col = "forget ES at matched retain"
better = rows[col].idxmin()
print(f"At the matched retain level ({setting.match_level:.0%} of retain ES at the start), forget ES is "
      + ", ".join(f"{run} {rows.loc[run, col]:.3f}" for run in rows.index)
      + f": {better} forgets more at the same cost"
      + ("" if rows["retain fell to the level"].all() else
         " (a run that never reached the level is read at its final step, an upper bound)") + ".")

# %% [markdown]
# **Try next.** Lower β_sat towards 0 (SatImp → SimImp), or set β_imp to 0 (SatImp → SimSat), and
# watch the curve move; compare `group_simsat` at a few group sizes; raise the learning rate until
# retain ES collapses. One seed is noisy at this scale: before believing a difference, rerun both
# methods with other seeds.
