"""Each study's claims on synthetic population tables with known effects (satimp_lab.studies)."""

import numpy as np
import pandas as pd
import pytest

from satimp_lab.studies import STUDIES, get_study, grid, obs1, obs2, smoothness
from satimp_lab.studies.specs import beta_specs, grid_spec, hard_specs


def population(values: dict, targets=(0, 1, 2, 3, 4), seeds=(0, 1, 2), noise=0.005, seed=0) -> pd.DataFrame:
    """A sweep-summary-like table: every label on every unit, ``matched_forget`` = its value + noise."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"label": label, "target_seed": t, "seed": s, "reached": True,
                          "matched_forget": value + rng.normal(0, noise)}
                         for t in targets for s in seeds for label, value in values.items()])


def verdicts_of(claims):
    return {c.id: c.verdict for c in claims}


def test_declared_studies():
    assert [s.id for s in STUDIES] == ["obs1", "obs2", "smoothness", "granularity", "grid", "relearning", "muse"]
    assert get_study("grid") is grid.STUDY
    with pytest.raises(ValueError, match="'nope'"):
        get_study("nope")


def test_obs1_directions():
    holds = population({"ga": 0.5, "simsat": 0.2, "simimp": 0.5, "annotated": 0.45, "satimp": 0.1})
    assert verdicts_of(obs1.decide(holds)) == {"obs1_saturation_beats_importance": "reproduced",
                                               "obs1_combination_beats_both": "reproduced"}
    reversed_ = population({"ga": 0.5, "simsat": 0.6, "simimp": 0.3, "annotated": 0.3, "satimp": 0.7})
    assert verdicts_of(obs1.decide(reversed_)) == {"obs1_saturation_beats_importance": "contradicted",
                                                   "obs1_combination_beats_both": "contradicted"}
    mixed = population({"ga": 0.5, "simsat": 0.2, "simimp": 0.5, "annotated": 0.45, "satimp": 0.2})
    assert verdicts_of(obs1.decide(mixed))["obs1_combination_beats_both"] == "partly"


def test_hard_sampling_and_smoothness():
    values = {s.label: 0.3 + (0.2 if s.fields.beta == 10.0 else 0.0)
              for s in beta_specs(("simsat", "simimp"), (0.5, 1.0, 2.0, 5.0, 10.0))}
    values |= {s.label: {"bottom": 0.2, "top": 0.5, "random": 0.35}[s.fields.mode] for s in hard_specs((0.5, 0.3))}
    got = verdicts_of(smoothness.decide(population(values)))
    assert got == {"obs3_smoothness_matters": "reproduced", "obs3_hard_sampling_bottom_beats_top": "reproduced"}
    # a gap below the "strong" minimum (0.10) is not enough, however consistent
    small = {k: (0.35 if k.endswith("β=10)") else 0.3) if "β" in k else v for k, v in values.items()}
    assert verdicts_of(smoothness.decide(population(small)))["obs3_smoothness_matters"] == "inconclusive"


def test_grid_recommended_cell():
    cells = {s["label"]: 0.4 for s in grid.specs()}
    cells["satimp(5, 0.1)"] = 0.2
    got = verdicts_of(grid.decide(population(cells)))
    assert got["satimp_recommended_is_best"] == "reproduced"
    cells["satimp(5, 0.1)"], cells["satimp(10, 0.5)"] = 0.4, 0.2
    got = verdicts_of(grid.decide(population(cells)))
    assert got["satimp_recommended_is_best"] == "contradicted"
    assert got["satimp_tuned_combination"] == "reproduced"


def test_grid_table_kinds_rank_and_counts():
    sats, imps = (0.0, 1.0, 5.0), (0.0, 0.1, 1.0)
    cells = {grid_spec(a, b).label: 0.5 for a in sats for b in imps}
    cells[grid_spec(5, 0.1).label] = 0.1
    table = grid.grid_table(population(cells, targets=(0, 1), seeds=(0,)), sats, imps).set_index("label")
    row = table.loc[grid_spec(5, 0.1).label]
    assert row["kind"] == "SatImp" and row["rank"] == 1 and row["n_runs"] == 2
    assert (table.drop(grid_spec(5, 0.1).label)["rank"] > 1).all()
    kinds = table.set_index(["beta_sat", "beta_imp"])["kind"]
    assert kinds[(0.0, 0.0)] == "GA" and kinds[(1.0, 0.0)] == "SimSat" and kinds[(0.0, 1.0)] == "SimImp"


def test_obs2_other_minus_key():
    rows = [{"label": g, "target_seed": t, "seed": 0, "reached": True,
             "mean_likelihood": {"key": 0.7, "other": 0.8}[g] + 0.001 * t} for t in range(5) for g in ("key", "other")]
    claim, = obs2.decide(pd.DataFrame(rows))
    assert claim.verdict == "reproduced" and claim.parts[0].effect == pytest.approx(0.1)
    flipped = pd.DataFrame(rows).replace({"label": {"key": "other", "other": "key"}})
    assert obs2.decide(flipped)[0].verdict == "contradicted"


def test_saved_claims_reach_the_report_first(tmp_path):
    from satimp_lab.mainjob.report import build_report
    from satimp_lab.studies import StudyResult, load_population_claims

    summary = population({"ga": 0.5, "simsat": 0.2, "simimp": 0.5, "annotated": 0.1, "satimp": 0.2})
    claims = obs1.decide(summary)
    for c in claims:
        c.study = "obs1"
    StudyResult(obs1.STUDY, summary, claims, obs1.tables(summary)).save(tmp_path)
    saved = load_population_claims(tmp_path)
    assert [c["id"] for c in saved] == [c.id for c in claims]
    assert (tmp_path / "figures" / "04_obs1_paired_differences.png").stat().st_size > 0
    report = build_report(tmp_path, [], {"size": "test"}).read_text()
    assert "### Claims recorded by the notebooks" not in report  # one design: the population's table only
    table = report[report.index("| claim | statement |"):report.index("## Notebooks")]
    # SimSat beats SimImp, annotation beats SimSat: one part each way, so the claim is partly
    assert "| paper abstract | simsat vs simimp |" in table and "| reproduced | **partly** |" in table
    assert "| simsat vs annotated |" in table and "| contradicted | **partly** |" in table


def test_population_sizes():
    from satimp_lab.experiments import SETTINGS
    from satimp_lab.tiers import SHIPPED_TARGET_SEEDS

    full, fast = SETTINGS["full"], SETTINGS["fast"]
    assert len(full.target_seeds) >= 5 and len(full.seeds) >= 3
    assert len(fast.target_seeds) >= 2  # the bootstrap resamples target models: at least two
    # every target of both populations is shipped, so every machine unlearns the same models
    assert set(full.target_seeds) <= set(SHIPPED_TARGET_SEEDS[full.tier])
    assert set(fast.target_seeds) <= set(SHIPPED_TARGET_SEEDS[fast.tier])


class _Run:
    def __init__(self, label, target_seed):
        self.label, self.target_seed = label, target_seed


class _Lab:
    """What ``StudyResult.target_sweep`` reads of a Lab: the setting and ``sweep`` for extra specs."""

    def __init__(self, target_seed=1):
        from satimp_lab.experiments import get_setting

        self.setting = get_setting("fast", target_seed=target_seed)
        self.swept = []

    def sweep_population(self, specs, target_seeds=None, desc="", plan=None):
        from satimp_lab.experiments import Sweep
        from satimp_lab.studies.base import plan_for

        assert target_seeds == (self.setting.target_seed,) and plan is plan_for
        self.swept.append([s["label"] for s in specs])
        return Sweep([_Run(s["label"], self.setting.target_seed) for s in specs], self.setting)


def test_target_sweep_is_the_studys_own_runs_on_the_labs_target():
    from satimp_lab.experiments import Sweep
    from satimp_lab.studies import StudyResult
    from satimp_lab.experiments.identity import spec

    runs = [_Run(label, t) for t in (0, 1, 2) for label in ("ga", "simsat")]
    result = StudyResult(obs1.STUDY, pd.DataFrame(), [], {}, Sweep(runs, None))
    lab = _Lab(target_seed=1)
    own = result.target_sweep(lab, [])
    assert [(r.label, r.target_seed) for r in own.results] == [("ga", 1), ("simsat", 1)] and lab.swept == []
    with_npo = result.target_sweep(lab, [spec("npo", "NPO")])
    assert [r.label for r in with_npo.results] == ["ga", "simsat", "NPO"] and lab.swept == [["NPO"]]
    declared = result.target_sweep(lab)  # the study's extras: NPO for observation (i)
    assert [r.label for r in declared.results] == ["ga", "simsat", "npo"] and lab.swept[-1] == ["npo"]
    measured = StudyResult(obs2.STUDY, pd.DataFrame(), [], {}, None)
    assert [r.label for r in measured.target_sweep(lab).results] == [s["label"] for s in obs2.STUDY.extras()]
    with pytest.raises(ValueError, match="'obs2' made no run on target seed 1"):
        measured.target_sweep(lab, [])



class _Recorder:
    """A Lab whose population sweeps record their keywords and stop the study there."""

    def __init__(self):
        self.calls = []

    def sweep_population(self, specs, **kwargs):
        self.calls.append(("sweep_population", kwargs))
        raise StopIteration

    def sweep_groups(self, groups, **kwargs):
        self.calls.append(("sweep_groups", kwargs))
        raise StopIteration

    def family_lab(self, family):
        self.calls.append(("family_lab", family))
        return self


def test_studies_sweep_by_what_the_studies_declare():
    """A study's sweep and the main job's one pass give each run the plan of what the studies
    declare their notebooks read of it (``plan=studies.base.plan_for``), unless the caller says
    otherwise."""
    from satimp_lab.studies import plan_for, run_studies

    for call in (lambda lab: grid.STUDY.run(lab), lambda lab: run_studies(lab, studies=(grid.STUDY,))):
        lab = _Recorder()
        with pytest.raises(StopIteration):
            call(lab)
        assert lab.calls[0] == ("family_lab", "tofu") and lab.calls[1][1]["plan"] is plan_for
    lab = _Recorder()
    with pytest.raises(StopIteration):
        grid.STUDY.run(lab, plan=None)
    assert lab.calls[1][1]["plan"] is None


def test_the_report_says_what_its_verdicts_rest_on(tmp_path):
    """The report names the population its verdicts rest on, and warns that the fast size (the
    micro tier) checks the machinery, not the paper's claims; the full size has no such warning."""
    from satimp_lab.mainjob.report import build_report, report_settings, scale_note

    fast, full = scale_note("fast"), scale_note("full")
    assert "3 target models x 1 unlearning seed(s) of the `micro` tier" in fast and "not evidence" in fast
    assert "5 target models x 3 unlearning seed(s) of the `tiny` tier" in full and "not evidence" not in full
    report = build_report(tmp_path, [], {"size": "fast", "tier": "default"}, note=fast).read_text()
    assert fast in report.split("## Paper claims and our verdicts")[0]
    assert report_settings(tmp_path)["size"] == "fast"  # the settings line still parses
    with pytest.raises(ValueError, match="huge"):
        scale_note("huge")


def test_saved_tables_show_steps_and_seeds_as_whole_numbers(tmp_path):
    """A step or seed column that a merge turned into floats reads ``4`` in the markdown (blank
    where missing), while the csv keeps every value as computed and metrics keep their decimals."""
    from satimp_lab.studies.tables import save_table

    frame = pd.DataFrame({"step": [0.0, 2.0, np.nan], "target_seed": [0.0, 1.0, 2.0],
                          "forget_es": [0.9, 0.5, 1.0], "matched_step": [2.5, 3.0, 4.0]})
    save_table(frame, tmp_path, "t")
    md = (tmp_path / "tables" / "t.md").read_text().splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in md[2:]]
    assert [row[0] for row in cells] == ["0", "2", ""] and [row[1] for row in cells] == ["0", "1", "2"]
    assert [row[2] for row in cells] == ["0.900", "0.500", "1.000"]  # a metric stays a float
    assert [row[3] for row in cells] == ["2.500", "3.000", "4.000"]  # not a count column
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "tables" / "t.csv"), frame)


def test_a_study_not_yet_in_studies_gets_what_it_declares():
    """``Study.run`` and ``run_studies`` plan with the study's own declarations even before it is
    in ``studies.STUDIES`` (a newcomer runs a study first, registers it later)."""
    from satimp_lab.experiments.identity import spec
    from satimp_lab.studies import STUDIES, Study, plan_for, planner
    from satimp_lab.unlearning.plan import CURVES_TO_MATCH, FINAL, FULL, MATCHED

    new = Study("new", "11_new", "new", lambda: [spec("gd"), spec("npo_gd")], lambda summary: [],
                curves=lambda: [spec("gd")], final=lambda: [spec("npo_gd")])
    assert plan_for(spec("gd"), True) == MATCHED  # no registered study declares it
    plan = planner([new])
    assert (plan(spec("gd"), True), plan(spec("gd"), False)) == (FULL, CURVES_TO_MATCH)
    assert (plan(spec("npo_gd"), True), plan(spec("npo_gd"), False)) == (FINAL, MATCHED)
    assert plan(spec("simsat", axis="beta", beta=2.0), True) == plan_for(spec("simsat", axis="beta", beta=2.0), True)
    tofu = [s for s in STUDIES if s.family == "tofu"]
    assert planner(tofu) is plan_for and planner([STUDIES[0]]) is plan_for
    lab = _Recorder()
    with pytest.raises(StopIteration):
        new.run(lab)
    assert lab.calls[1][1]["plan"](spec("gd"), True) == FULL
