"""A run's identity is typed (studies/specs.py): a spec's fields make its label through one function
(``run_label``) and its display name through one table (``NAMES``); the figures read the fields of
a label from the specs that made it, never from the label's text. No training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from satimp_lab import tiers
from satimp_lab.errors import InputError
from satimp_lab.experiments import attacks
from satimp_lab.studies import STUDIES, base, figures, relearning
from satimp_lab.experiments import identity as I
from satimp_lab.studies import specs as S
from satimp_lab.experiments import RunSpec, get_setting
from satimp_lab.experiments.identity import _default_label
from satimp_lab.unlearning.objectives import ALIASES, METHODS

SWEPT = [s for s in STUDIES if s.measure is None]


def _summary(labels, targets=(0, 1, 2), seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"label": l, "target_seed": t, "seed": 0, "reached": True,
                          "matched_forget": 0.3 + rng.normal(0, 0.05)} for l in labels for t in targets])


@pytest.mark.parametrize("study", SWEPT, ids=[s.id for s in SWEPT])
def test_every_study_label_is_made_from_its_fields_and_read_back_as_them(study):
    runs = [RunSpec.of(s) for s in study.specs()]
    by_label = I.fields_by_label(runs)  # raises if one label named two different runs
    assert len(by_label) == len({s.default_label for s in runs})
    for s in runs:
        fields = s.fields
        # fields -> label: the label is run_label of the spec's fields, on one of the axes
        assert s.default_label in {I.run_label(fields, axis) for axis in I.LABEL_AXES
                                   if _labels_on(fields, axis)}, s
        assert by_label[s.default_label] == fields
    # label -> the figures' reading of the fields: the same fields, row by row
    summary = _summary([s.default_label for s in runs], targets=(0,))
    read = figures.with_fields(summary, runs)
    assert list(read["label"]) == [s.default_label for s in runs]
    for s, (_, row) in zip(runs, read.iterrows()):
        f = s.fields
        want = {"method": f.method, "family": f.family, "granularity": f.granularity, "group_size": f.group_size,
                "beta_sat": f.beta_sat, "beta_imp": f.beta_imp, "mode": f.mode, "fraction": f.fraction,
                "retain": f.retain, "level": f.level, "beta": f.beta, "name": I.display_name(f)}
        for col, value in want.items():
            got = row[col]
            assert (pd.isna(got) if value is None else got == value), (s.default_label, col, got, value)


def _labels_on(fields, axis) -> bool:
    try:
        I.run_label(fields, axis)
    except InputError:
        return False
    return True


def test_the_spec_builders_label_on_their_axis():
    for axis, runs in (("beta", S.beta_specs()), ("hard", S.hard_specs()), ("level", S.granularity_specs()),
                       ("grid", S.satimp_grid_specs()), ("method", S.obs1_specs() + S.reference_specs())):
        for s in runs:
            assert s.label == I.run_label(s.fields, axis), (axis, s)
    # the study labels as published (docs/results, tests/unit/main_run_specs.json)
    assert S.spec("simsat", axis="beta", beta=0.5).label == "simsat(β=0.5)"
    assert S.spec("hard_bottom", axis="hard", k=0.7).label == "bottom-30%"
    assert S.spec("group_simimp", axis="level", group_size=20).label == "simimp/G=20"
    assert S.spec("instance_norm_simsat", axis="level").label == "simsat/instance-norm"
    assert S.grid_spec(0, 0).label == "satimp(0, 0)" and S.grid_spec(5, 0.1).label == "satimp(5, 0.1)"
    with pytest.raises(InputError, match="no 'beta' label"):
        I.run_label(I.run_fields("npo"), "beta")
    with pytest.raises(InputError, match="unknown label axis"):
        I.run_label(I.run_fields("ga"), "colour")


def test_method_labels_are_one_formatter_with_each_callers_number_format():
    from satimp_lab.ui import playground

    assert S.spec("simsat", beta=2).label == "simsat(beta_sat=2)" == I.params_label("simsat", {"beta_sat": 2.0})
    assert _default_label("simsat", {"beta_sat": 2.0}) == "simsat(beta_sat=2.0)"  # Lab.run without a label
    assert _default_label("ga", {}) == "ga" == RunSpec("ga").default_label
    assert playground.run_request("satimp", {"beta_sat": 2.0, "beta_imp": 0.1}, lr=1e-3, seed=1)["label"] \
        == "satimp(beta_sat=2, lr=0.001) seed 1"


def test_figures_read_fields_not_label_text():
    # the same runs under labels no pattern would recognise: the figures draw them by their fields
    betas = [S.spec("simsat", f"run {i}", beta=b) for i, b in enumerate((0.5, 2.0, 10.0))]
    ax = figures.beta_sweep(_summary([s.label for s in betas]), specs=betas).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.5", "2", "10"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["SimSat"]  # specs.NAMES

    cells = [S.spec("satimp", f"cell {a} {b}", beta_sat=a, beta_imp=b) for a in (1.0, 2.0) for b in (0.1, 0.5)]
    ax = figures.grid_heatmap(_summary([s.label for s in cells]), specs=cells).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.1", "0.5"]

    levels = list(reversed(S.granularity_specs(("simimp",), (5,))))  # coarsest first: the figure sorts
    ax = figures.granularity(_summary([s.label for s in levels]), specs=levels).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["token", "G=5", "instance", "instance-norm", "batch"]

    hard = S.hard_specs((0.3,))
    ax = figures.hard_sampling(_summary([s.label for s in hard]), specs=hard).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["30 %"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [I.NAMES[f] for f in
                                                                   ("hard_bottom", "hard_top", "hard_random")]


def test_a_label_that_names_two_runs_is_refused():
    with pytest.raises(InputError, match="names two different runs"):
        I.fields_by_label([S.spec("simsat", "x"), S.spec("simimp", "x")])
    assert len(I.fields_by_label([S.spec("simsat"), S.spec("simsat")])) == 1


def test_the_display_name_table_covers_every_method_family_of_the_registry():
    families = {I.run_fields(name).family for name in [*METHODS, *ALIASES]}
    assert families == set(I.NAMES)  # every family named, and no name for a family the registry lacks
    for name in METHODS:
        f = I.run_fields(name)
        assert I.display_name(f).startswith(I.NAMES[f.family]) and f.retain in I.RETAIN_NAMES
    assert I.display_name(S.spec("satimp_gd")) == "SatImp + retain NLL"
    # the claims' names of observation (i) and relearning come from it
    from satimp_lab.studies import obs1

    assert obs1.NAMES == {"ga": "GA", "simsat": "SimSat", "simimp": "SimImp", "annotated": "annotation",
                          "satimp": "SatImp"}
    assert relearning.NAMES == {**{m: I.NAMES[m] for m in relearning.LABELS}, relearning.REFERENCE: "retain model"}


def test_metric_is_defined_once():
    from satimp_lab.experiments import matched

    assert figures.METRIC is base.METRIC is matched.METRIC == "matched_forget"
    assert "\nMETRIC = " not in (Path(base.__file__)).read_text() + Path(figures.__file__).read_text()


def test_size_keyed_tables_live_in_tiers_and_are_read_by_size_not_by_name_text():
    assert attacks.ATTACK_CONFIGS == {"full": attacks.AttackConfig(),
                                      "fast": attacks.AttackConfig(relearn_steps=(0, 1, 2, 4), retain_max_examples=16)}
    assert relearning.SEEDS == tiers.RELEARNING_SEEDS == {"full": (0,)}
    for size in tiers.SIZES:
        for tier in (None, *tiers.TIER_RECIPES):
            extra = {"base_model": "microsoft/phi-1_5"} if tier == "paper" else {}
            setting = get_setting(size, **({"tier": tier, **extra} if tier else {}))
            assert tiers.size_of(setting) == size, setting.name
            assert attacks.attack_config(setting) == attacks.ATTACK_CONFIGS.get(size, attacks.ATTACK_CONFIGS["full"])
            want = tiers.RELEARNING_SEEDS.get(size, setting.seeds)
            assert relearning.seeds_for(setting) == want
    renamed = get_setting("fast", name="fast-by-hand")  # no size of its own: the defaults
    assert tiers.size_of(renamed) is None
    assert attacks.attack_config(renamed) == attacks.ATTACK_CONFIGS["full"]
    assert relearning.seeds_for(renamed) == renamed.seeds
