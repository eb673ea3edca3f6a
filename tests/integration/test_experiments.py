"""Cached sweeps: cache hits, stale keys, corrupt entries, matched-retain comparison."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from satimp_lab.experiments import Lab, forget_at_matched_retain
from satimp_lab.unlearning.plan import CURVES_TO_MATCH, FINAL, FULL, MATCHED
from satimp_lab.models.cache import get_model
from satimp_lab.store import CacheError


def test_matched_retain_interpolates_and_flags_unreached():
    history = pd.DataFrame({"step": [0, 2, 4, 6], "retain_es": [1.0, 0.95, 0.85, 0.5],
                            "forget_es": [0.9, 0.7, 0.5, 0.1]})
    out = forget_at_matched_retain(history, level=0.9)
    # retain crosses 0.9 halfway between steps 2 and 4
    assert out["reached"] and out["matched_step"] == pytest.approx(3.0)
    assert out["matched_forget"] == pytest.approx(0.6)
    gentle = history.assign(retain_es=[1.0, 0.99, 0.98, 0.97])
    out = forget_at_matched_retain(gentle, level=0.9)
    assert not out["reached"] and out["matched_forget"] == pytest.approx(0.1)
    for result in (out, forget_at_matched_retain(history, level=0.9)):  # plain Python values (readable reprs)
        assert [type(result[k]) for k in ("matched_forget", "matched_retain", "matched_step", "reached")] == \
            [float, float, float, bool]
    with pytest.raises(ValueError, match="eval_every"):
        forget_at_matched_retain(history.drop(columns=["retain_es"]))


def test_matched_retain_level_is_a_share_of_the_start():
    # retain starts at 0.8: the 0.9 level is retain 0.72, crossed a quarter of the way from
    # step 2 (0.76) to step 4 (0.60); worked by hand, not with the function's own arithmetic
    history = pd.DataFrame({"step": [0, 2, 4, 6], "retain_es": [0.8, 0.76, 0.60, 0.4],
                            "forget_es": [0.9, 0.7, 0.3, 0.1]})
    out = forget_at_matched_retain(history, level=0.9)
    assert out["reached"] and out["matched_step"] == pytest.approx(2.5)
    assert out["matched_retain"] == pytest.approx(0.72) and out["matched_forget"] == pytest.approx(0.6)
    # a curve that starts low and loses less than 10 % never reaches its level
    low = history.assign(retain_es=[0.5, 0.49, 0.48, 0.47])
    out = forget_at_matched_retain(low, level=0.9)
    assert not out["reached"] and out["matched_step"] == 6 and out["matched_forget"] == pytest.approx(0.1)
    # a curve that starts above 1 (a utility-like score) crosses 0.9 x 2.0 = 1.8
    high = history.assign(retain_es=[2.0, 1.9, 1.7, 1.0])
    out = forget_at_matched_retain(high, level=0.9)
    assert out["matched_step"] == pytest.approx(3.0) and out["matched_forget"] == pytest.approx(0.5)


@pytest.fixture(scope="module")
def lab(session_cache, micro_target, micro_retain):
    return Lab("fast", progress=False, final_metrics=("es",))


@pytest.fixture
def private_lab(session_cache, micro_target, micro_retain, tmp_path, monkeypatch):
    """A Lab on a run cache of this test's own, for tests that rewrite or corrupt cache entries:
    the session cache stays as other tests expect it. (Run keys name the target by its key digest,
    so the shipped micro models serve this Lab wherever the cache is.)"""
    monkeypatch.setenv("SATIMP_LAB_CACHE", str(tmp_path))
    lab = Lab("fast", progress=False, final_metrics=("es",))
    assert lab.run("ga", seed=0).folder.is_relative_to(tmp_path)
    return lab


def test_run_is_cached_and_keyed_by_config(lab):
    first = lab.run("satimp", seed=0)
    again = lab.run("satimp", seed=0)
    assert again.folder == first.folder
    pd.testing.assert_frame_equal(again.history, first.history)
    assert again.summary["eval_forget_es"] == first.summary["eval_forget_es"]
    other = lab.run("satimp", seed=0, params={"beta_sat": 2.0})
    assert other.folder != first.folder
    assert lab.run("satimp", seed=0, lr=5e-4).folder != first.folder


def test_runspec_keys_are_the_dict_keys_and_a_run_looks_its_method_up_once(private_lab, monkeypatch):
    import json
    from pathlib import Path

    import satimp_lab.unlearning.objectives as O
    import satimp_lab.unlearning.run as U  # UnlearnConfig resolves its method here
    from satimp_lab.experiments import RunSpec
    from satimp_lab.experiments.identity import _default_label
    from satimp_lab.store import cache_dir

    lab = private_lab
    frozen = json.loads((Path(__file__).parents[1] / "unit" / "main_run_specs.json").read_text(encoding="utf-8"))
    for d in [d for specs in frozen["studies"].values() for d in specs] + frozen["references"]:
        # main's Lab._entry, inline: config, label, key text, folder of a spec dict
        extra = {k: v for k, v in d.items() if k not in ("method", "params", "label")}
        config = lab.config(d["method"], 2, d.get("params"), **extra)
        key_text, digest = lab._key(config, lab.plan())
        old = (config, lab.plan(), d.get("label") or _default_label(d["method"], d.get("params")), key_text,
               cache_dir() / "runs" / f"{d['method']}-{digest[:16]}")
        assert lab._entry(RunSpec.of(d), 2) == old
    lookups = []
    real = O.get_method
    monkeypatch.setattr(U, "get_method", lambda *a, **k: lookups.append(a[0]) or real(*a, **k))
    lab.run("simsat", seed=0, params={"beta_sat": 2.0})  # computed: main looked it up 3 times
    assert lookups == ["simsat"]
    lookups.clear()
    lab.sweep([RunSpec("simimp", {"beta_imp": 2.0})], seeds=(1,), executor="serial")  # main: 5
    assert lookups == ["simimp"]


def test_more_final_metrics_recompute_the_same_run(private_lab):
    lab = private_lab
    few = lab.run("ga", seed=0)
    richer = Lab("fast", progress=False, final_metrics=("es", "probability"))
    many = richer.run("ga", seed=0)
    assert "eval_forget_probability" in many.summary and "eval_forget_probability" not in few.summary
    np.testing.assert_allclose(many.history["loss"].dropna(), few.history["loss"].dropna())  # deterministic
    # and a request for fewer metrics is served by the richer entry
    assert "eval_forget_probability" in lab.run("ga", seed=0).summary


def test_corrupt_entry_is_named(private_lab):
    lab = private_lab
    run = lab.run("simsat", seed=0)
    (run.folder / "summary.json").write_text("{broken")
    with pytest.raises(CacheError, match="corrupt cached run"):
        lab.run("simsat", seed=0)


def test_sweep_tables(lab):
    sweep = lab.sweep([{"method": "ga"}, {"method": "simsat", "params": {"beta": 2.0}}], seeds=(0,))
    assert list(sweep.summary["label"]) == ["ga", "simsat(beta=2.0)"]
    assert {"matched_forget", "reached", "eval_forget_es"} <= set(sweep.summary.columns)
    agg = sweep.aggregate(["matched_forget"])
    assert list(agg["label"]) == ["ga", "simsat(beta=2.0)"] and (agg["matched_forget_count"] == 1).all()
    assert set(sweep.curves["label"]) == {"ga", "simsat(beta=2.0)"}
    assert len(sweep.traces()) > 0


def test_another_target_seed_is_another_model_and_other_runs(lab):
    other = lab.with_target_seed(1)
    assert other.setting.target_seed == 1 and other.setting.seeds == lab.setting.seeds
    assert other.target.path != lab.target.path and other.retain_model.path != lab.retain_model.path
    moved = [not torch.equal(a, b) for a, b in zip(other.target.model.parameters(), lab.target.model.parameters())]
    assert all(moved)
    # seed 0 is the default model: the same cache entry as a plain get_model
    assert lab.target.path == get_model(lab.benchmark, "target", lab.setting.forget_split, lab.setting.tier,
                                        progress=False).path
    config = lab.config("simsat")
    assert other._key(config, lab.plan()) != lab._key(config, lab.plan())
    # the population's other targets choose other runs; they do not change this run's key
    wider = Lab(replace(lab.setting, target_seeds=(0, 5, 6)), progress=False)
    assert wider._key(config, lab.plan()) == lab._key(config, lab.plan())


def test_sweep_population_runs_every_spec_on_every_unit(lab):
    specs = [{"method": "ga"}, {"method": "simsat"}]
    pop = lab.sweep_population(specs, target_seeds=(0, 1))
    units = pop.summary.groupby("label")[["target_seed", "seed"]].apply(lambda f: sorted(map(tuple, f.values)))
    assert units.to_dict() == {"ga": [(0, 0), (1, 0)], "simsat": [(0, 0), (1, 0)]}
    assert set(pop.curves["target_seed"]) == {0, 1}
    # target 0's runs are this lab's own (same cache entries); target 1's are other numbers
    own = lab.sweep(specs).summary
    mine = pop.summary[pop.summary["target_seed"] == 0].reset_index(drop=True)
    assert np.allclose(mine["final_forget_es"], own["final_forget_es"])
    other = pop.summary[pop.summary["target_seed"] == 1]["final_forget_es"].to_numpy()
    assert not np.allclose(other, mine["final_forget_es"].to_numpy())
    # keywords reach Lab.sweep (e.g. an executor)
    with pytest.raises(TypeError, match="no_such_keyword"):
        lab.sweep_population(specs, target_seeds=(0,), no_such_keyword=1)
    with pytest.raises(ValueError, match="target_seeds is empty"):
        lab.sweep_population(specs, target_seeds=())


def test_plans_give_the_own_targets_runs_what_they_record(lab):
    """``sweep_population(..., plan=...)``: on the Lab's own target, a spec given the MATCHED
    plan has its retain split evaluated every step up to the bracket of its matched
    point, its forget split at the bracket, and ends there (its own cache entry, no final
    metrics); one given FINAL is evaluated so, then run to the end with the last step
    evaluated. Their evaluations are the whole run's up to the bracket (so the matched numbers
    are, by construction), the final metrics and last evaluation too, to the last bit; a spec
    given FULL and the other targets' runs (CURVES_TO_MATCH) keep their entries."""
    specs = [{"method": "ga"}, {"method": "simsat"}, {"method": "satimp"}]
    schedule = {"ga": FULL, "simsat": MATCHED, "satimp": FINAL}
    plain = lab.sweep_population(specs, target_seeds=(0, 1))
    mixed = lab.sweep_population(specs, target_seeds=(0, 1),
                                 plan=lambda spec, own: schedule[spec.method] if own else CURVES_TO_MATCH)
    by_unit = {(r.label, r.target_seed): r for r in mixed.results}
    before = {(r.label, r.target_seed): r for r in plain.results}
    assert by_unit["ga", 0].folder == before["ga", 0].folder and "eval_forget_es" in by_unit["ga", 0].summary
    assert all(by_unit[m, 1].folder == before[m, 1].folder for m in schedule)
    matched = ("matched_forget", "matched_retain", "matched_step", "reached")
    evals = ["step", "forget_es", "retain_es", "forget_mean_logp", "retain_mean_logp"]
    for method in ("simsat", "satimp"):
        run, whole = by_unit[method, 0], before[method, 0]
        assert run.folder != whole.folder and run.target_seed == 0 and whole.summary["reached"]
        assert run.plan.match_level == lab.setting.match_level and not run.plan.curves
        assert all(run.summary[k] == whole.summary[k] for k in matched), method
        er, ew = (r.history.dropna(subset=["retain_es"])[evals].reset_index(drop=True) for r in (run, whole))
        bracket = int(np.ceil(whole.summary["matched_step"]))  # the first evaluation at or below the level
        upto = ew[ew["step"] <= bracket].reset_index(drop=True)
        retain = ["step", "retain_es", "retain_mean_logp"]
        pd.testing.assert_frame_equal(er[er["step"] <= bracket][retain].reset_index(drop=True), upto[retain])
        read = er.dropna(subset=["forget_es"])  # the forget split: step 0 and the bracket
        assert list(read["step"][read["step"] <= bracket]) == [0, bracket - 1, bracket], (method, list(read["step"]))
        pd.testing.assert_frame_equal(read[read["step"] <= bracket].reset_index(drop=True),
                                      upto[upto["step"].isin([0, bracket - 1, bracket])].reset_index(drop=True))
        after = list(er["step"][er["step"] > bracket])
        assert after == ([] if method == "simsat" else [ew["step"].iloc[-1]]), (method, after)
    lean = by_unit["simsat", 0]
    assert not any(k.startswith("eval_") for k in lean.summary)
    assert lean.folder == lab.run("simsat", plan=MATCHED).folder
    with pytest.raises(Exception, match="recorded no curves"):
        mixed.curves  # a figure asking the lean run for its curves is told which run lacks them
    with pytest.raises(Exception, match="simsat.*recorded no final_metrics"):
        mixed.final()
    table, whole = by_unit["satimp", 0], before["satimp", 0]
    assert table.plan.until == "end" and bracket < ew["step"].iloc[-1]
    for key in (k for k in whole.summary if k.startswith(("eval_", "final_"))):
        assert table.summary[key] == whole.summary[key], key
    assert table.history["lr"].notna().sum() == whole.history["lr"].notna().sum()  # every step taken


def test_plan_for_follows_what_the_studies_declare():
    """``studies.base.plan_for``: the runs whose curves notebook 04 and 03 draw (observation (i),
    NPO, SimNPO; relearning attacks the same runs) record every evaluation; the other runs the
    notebooks' tables show (smoothness, hard sampling, granularity) run to the end with their
    final metrics; of the grid only the cells that are no other study's run record their matched
    number alone (ending at the bracket)."""
    from satimp_lab.studies import STUDIES, obs1, plan_for, relearning, specs

    for s in obs1.specs() + specs.reference_specs() + relearning.specs():
        assert plan_for(s, True) == FULL, s
    for s in specs.beta_specs() + specs.hard_specs() + specs.granularity_specs():
        assert plan_for(s, True) in (FULL, FINAL), s
    assert plan_for(specs.spec("simsat", beta=2.0), True) == FINAL
    assert plan_for(specs.spec("satimp", beta_sat=2.0, beta_imp=1.0), True) == MATCHED

    shown = [s for study in STUDIES if study.id != "grid" and study.family == "tofu" for s in study.specs()]
    assert shown and MATCHED not in {plan_for(s, True) for s in shown + specs.reference_specs()}
    lean = [s["label"] for s in specs.satimp_grid_specs() if plan_for(s, True) == MATCHED]
    assert len(lean) == 9 and "satimp(5, 0.1)" not in lean and "satimp(0, 0)" not in lean
    assert not any(s["label"] in lean for s in specs.satimp_row())  # notebook 05 shows their utility
    extras = [s for study in STUDIES for s in study.extras()]
    assert extras and MATCHED not in {plan_for(s, True) for s in extras}
    # on the other targets, only the runs whose population curves a figure draws keep every forget evaluation
    for s in obs1.specs() + specs.reference_specs():
        assert plan_for(s, False) == CURVES_TO_MATCH, s
    drawn = {(c.method, tuple(sorted(c.params.items()))) for c in obs1.specs() + specs.reference_specs()}
    others = [s for s in specs.beta_specs() + specs.granularity_specs() + specs.satimp_grid_specs()
              if (s.method, tuple(sorted(s.params.items()))) not in drawn]  # labels aside
    assert len(others) > 20 and all(plan_for(s, False) == MATCHED for s in others)
    assert plan_for(specs.spec("satimp", "another label", beta_sat=2.0, beta_imp=1.0), True) == MATCHED  # labels aside


def test_forget_at_bracket_reads_the_forget_split_at_the_bracket_alone(lab):
    """A run with the MATCHED plan (``EvalPlan(curves=False, until="match")``) evaluates the retain split at every step the whole run does up to its bracket, with the whole
    run's numbers, and the forget split only at step 0 and the two evaluations that bracket the
    matched point (the earlier one from the weights kept there), or at the last step of a run that
    never reaches the level, with the whole run's numbers there: forget ES at matched retain is
    the whole run's to the last bit. Without the kept weights' evaluation the bracket would move."""
    whole = Lab("fast", progress=False, final_metrics=())
    skipped = kept_read = 0
    for method in ("ga", "simsat", "satimp", "simimp"):
        a, b = whole.run(method, seed=0), whole.run(method, seed=0, plan=MATCHED)
        assert not b.plan.curves and b.folder != a.folder
        for key in ("matched_forget", "matched_retain", "matched_step", "reached"):
            assert b.summary[key] == a.summary[key], (method, key)
        ea, eb = (r.history.dropna(subset=["retain_es"]).reset_index(drop=True) for r in (a, b))
        retain = ["step", "retain_es", "retain_mean_logp", "retain_key_accuracy"]
        pd.testing.assert_frame_equal(eb[retain], ea[ea["step"].isin(eb["step"])][retain].reset_index(drop=True))
        below = np.nonzero(ea["retain_es"].to_numpy() <= lab.setting.match_level * ea["retain_es"].iloc[0])[0]
        expected = [0] + ([int(ea["step"][below[0] - 1]), int(ea["step"][below[0]])] if len(below)
                          else [int(ea["step"].iloc[-1])])
        read = eb.dropna(subset=["forget_es"])
        assert sorted(set(read["step"])) == sorted(set(expected)), (method, list(read["step"]), expected)
        forget = [c for c in ea.columns if c.startswith("forget_") and c != "forget_loss"]  # the evaluation columns
        pd.testing.assert_frame_equal(read[["step"] + forget].reset_index(drop=True),
                                      ea[ea["step"].isin(expected)][["step"] + forget].reset_index(drop=True))
        skipped += len(eb) - len(read)
        kept_read += bool(len(below) and below[0] > 1)
    assert skipped and kept_read, "no forget evaluation was skipped, or none read kept weights: the test checks too little"


def test_population_runs_end_at_their_matched_point_with_the_same_numbers(lab):
    """A population run (CURVES_TO_MATCH: evaluated every ``eval_every`` steps, stopped at the
    evaluation that closes the bracket of its matched point) has the whole run's evaluations at
    the steps it evaluated and its matched numbers, to the last bit; a run that never reaches the
    level runs every step."""
    whole = Lab("fast", progress=False, final_metrics=())
    stopped_any = False
    for method in ("ga", "simsat", "satimp"):
        a, b = whole.run(method, seed=0), whole.run(method, seed=0, plan=CURVES_TO_MATCH)
        assert b.folder != a.folder  # another experiment: another cache entry
        for key in ("matched_forget", "matched_retain", "matched_step", "reached"):
            assert b.summary[key] == a.summary[key], (method, key)
        evals = ["step", "forget_es", "retain_es", "forget_mean_logp", "retain_mean_logp"]
        ea, eb = (r.history.dropna(subset=["retain_es"])[evals].reset_index(drop=True) for r in (a, b))
        # every evaluation the stopped run made is the whole run's at that step, to the last bit
        pd.testing.assert_frame_equal(eb, ea[ea["step"].isin(eb["step"])].reset_index(drop=True))
        steps = b.history["lr"].notna().sum()
        if a.summary["reached"]:
            # both bracket ends evaluated, nothing after them
            assert {np.floor(a.summary["matched_step"]), np.ceil(a.summary["matched_step"])} <= set(eb["step"])
            assert steps == eb["step"].iloc[-1] and steps <= np.ceil(a.summary["matched_step"]) + 1
            stopped_any |= bool(steps < a.history["lr"].notna().sum())
        else:
            assert steps == a.history["lr"].notna().sum()
    assert stopped_any, "no run stopped: the test checks too little"
    # a run that records everything keeps the cache key it had before plans existed
    key_text = lab._key(lab.config("ga"), lab.plan())[0]
    assert not any(f in key_text for f in ("stop_below", "forget_at_bracket", "run_on", "stop_at_match"))
    assert lab.population_lab(0) is lab and lab.population_lab(1).setting.target_seed == 1
