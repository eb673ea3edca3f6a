"""Execute every notebook at the small size (through `satimp-lab reproduce --fast`), once."""

import json
import math

import nbformat
import pytest

from satimp_lab.reproduce import NOTEBOOK_DIR, list_notebooks, reproduce

NOTEBOOKS = [p.stem for p in list_notebooks()]


@pytest.fixture(scope="session")
def fast_reproduction(tmp_path_factory, session_cache, micro_target, micro_retain):
    # the micro models are trained once by the fixtures; the kernels find them in the same cache
    out = tmp_path_factory.mktemp("reproduction")
    code = reproduce(out, fast=True)
    runs = {r["name"]: r for r in json.loads((out / "runs.json").read_text())}
    return out, code, runs


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(fast_reproduction, name):
    out, _, runs = fast_reproduction
    assert runs[name]["status"] == "ok", f"{name} failed: {runs[name]['error']} (see {out / runs[name]['output']})"


def test_report_lists_claims_first(fast_reproduction):
    out, code, _ = fast_reproduction
    report = (out / "report.md").read_text()
    assert code == 0
    claims_at = report.index("## Paper claims and our verdicts")
    assert claims_at < report.index("## Notebooks")
    assert "No notebook recorded a claim" not in report
    assert list((out / "figures").glob("*.png")), "no static figure was written"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stored_clean_with_parameters(name):
    nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code_cells), "outputs are stored"
    tagged = [c for c in code_cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "SIZE" in tagged[0].source and "OUT_DIR" in tagged[0].source


# -- the population's claims, as the reader reads them -------------------------------------------


def check_population_report(out, notebooks=None):
    """The report's first table is the studies' claims; every verdict shown equals the library
    rule applied to the saved numbers; each finding notebook shows its study's claim ids.
    Returns the saved claims."""
    from satimp_lab import verdicts
    from satimp_lab.studies import STUDIES, load_population_claims

    report = (out / "report.md").read_text()
    claims = load_population_claims(out)
    studies = [s for s in STUDIES if notebooks is None or s.notebook in notebooks]
    assert {c["study"] for c in claims} == {s.id for s in studies}
    first_table = report.index("| claim | statement | source | comparison |")
    assert report.index("## Paper claims and our verdicts") < first_table < report.index("### Claims recorded by the notebooks")
    rows = [line for line in report[first_table:report.index("## Notebooks")].splitlines() if line.startswith("| ")]
    import pandas as pd

    units = pd.concat([pd.read_csv(f) for f in (out / "tables").glob("*_units.csv")], ignore_index=True)
    units = units.drop_duplicates("label").set_index("label")
    for claim in claims:
        parts = claim["parts"]
        for part in parts:
            # the rule, restated here rather than called, so that a library rule that flipped its
            # directions fails (the fast size decides parts both ways, see the test below)
            low, high, effect, minimum = part["low"], part["high"], part["effect"], part["min_effect"]
            expected = ("inconclusive" if low is None or high is None else
                        "reproduced" if low > 0 and effect >= minimum else
                        "contradicted" if high < 0 and effect <= -minimum else "inconclusive")
            assert part["verdict"] == expected, part
            # the sign convention, from the per-unit values the notebooks show (positive: the claim's way)
            # (the *_units tables hold matched forget ES; other metrics' studies have no such table)
            if part["metric"] == "matched_forget" and part["a"] in units.index and part["b"] in units.index:
                a, b = units.loc[part["a"], "mean"], units.loc[part["b"], "mean"]
                assert effect == pytest.approx(b - a if part["lower_is_better"] else a - b, abs=1e-9), part
            row = [r for r in rows if r.startswith(f"| {claim['id']} |") and f"| {part['a']} vs {part['b']} |" in r]
            assert len(row) == 1, (claim["id"], part["a"], part["b"])
            cells = [c.strip() for c in row[0].strip("|").split("|")]
            assert cells[-2].split(" (")[0] == part["verdict"] and cells[-1] == f"**{claim['verdict']}**"
            assert cells[4] == f"{part['effect']:+.3f}" and cells[2] == claim["source"] != ""
        assert verdicts.combine([p["verdict"] for p in parts]) == claim["verdict"]
    for study in studies:
        nb = nbformat.read(out / "notebooks" / f"{study.notebook}.ipynb", as_version=4)
        shown = "".join(str(o.get("data", {}).get("text/markdown", "")) for c in nb.cells
                        if c.cell_type == "code" for o in c.outputs)
        for claim in (c for c in claims if c["study"] == study.id):
            assert f"**{claim['id']}**" in shown and f"verdict: {claim['verdict']}" in shown, (study.notebook, claim["id"])
    return claims


def test_population_claims_as_the_reader_reads_them(fast_reproduction):
    out, code, runs = fast_reproduction
    assert code == 0
    claims = check_population_report(out)
    # the fast size decides some comparisons each way, so a rule that flipped its directions
    # (or decided nothing) would show here
    decided = {p["verdict"] for c in claims for p in c["parts"]}
    assert {"reproduced", "contradicted"} <= decided, decided


# -- the single-target claims each notebook records (satimp_lab.findings) -------------------------

NOTEBOOK_CLAIMS = {
    "03_obs2_weights_vs_likelihood": {"obs2_weight_direction", "obs2_key_tokens_low_likelihood"},
    "04_obs1_saturation_vs_importance": {"obs1_saturation_beats_importance", "obs1_combination_beats_both"},
    "05_obs3_smoothness": {"obs3_smoothness_matters", "obs3_hard_sampling_bottom_beats_top"},
    "06_obs3_granularity": {"obs3_granularity_matters"},
    "07_satimp_grid": {"satimp_recommended_near_best", "satimp_tuned_combination"},
}
"""The claim ids each finding notebook records through ``report.record_claim``."""


def direction_rule(outcomes):
    """``findings._direction_verdict``, restated (outcomes are A's in "A beats B")."""
    better, worse = outcomes.count("better"), outcomes.count("worse")
    if better == len(outcomes):
        return "reproduced"
    if better:
        return "partly reproduced"
    if worse:
        return "not reproduced"
    return "not reproduced" if outcomes and all(o == "tie" for o in outcomes) else "inconclusive"


def range_rule(outcomes):
    """``findings._range_verdict``, restated (outcomes of "best vs worst setting of a knob")."""
    if outcomes and all(o == "strong" for o in outcomes):
        return "reproduced"
    if "strong" in outcomes or "weak" in outcomes:
        return "partly reproduced"
    return "not reproduced" if "none" in outcomes else "inconclusive"


def check_outcome_against_means(outcome, mean_a, mean_b, min_effect):
    """An outcome of ``findings.compare`` (lower is better) agrees with the two means it saw:
    "better" needs A below B by more than the minimum effect, "worse" the opposite."""
    if outcome == "better":
        assert mean_b - mean_a > min_effect, (outcome, mean_a, mean_b)
    elif outcome == "worse":
        assert mean_a - mean_b > min_effect, (outcome, mean_a, mean_b)


def expected_notebook_verdict(claim):
    """The verdict ``findings`` gives for a recorded claim's saved numbers (restated), or None
    with a set of allowed verdicts where the numbers saved do not fix it."""
    from satimp_lab import findings as F

    cid, n = claim["id"], claim["numbers"]
    if cid == "obs1_saturation_beats_importance":
        for b, outcome in n["outcomes"].items():
            check_outcome_against_means(outcome, n["simsat"]["mean"], n[b]["mean"], F.MIN_EFFECT)
        return direction_rule(list(n["outcomes"].values()))
    if cid == "obs1_combination_beats_both":
        parts = {k: v for k, v in n.items() if "outcome" in v}
        combined = next(k for k, v in n.items() if "outcome" not in v)
        for b, v in parts.items():
            check_outcome_against_means(v["outcome"], n[combined]["mean"], v["mean"], F.MIN_EFFECT)
        return direction_rule([v["outcome"] for v in parts.values()])
    if cid == "obs3_hard_sampling_bottom_beats_top":
        for v in n.values():
            check_outcome_against_means(v["outcome"], v["mean"], v["vs_mean"], F.MIN_EFFECT)
        return direction_rule([v["outcome"] for v in n.values()])
    if cid == "satimp_tuned_combination":
        return direction_rule(n["outcomes"]) if n else "inconclusive"
    if cid in ("obs3_smoothness_matters", "obs3_granularity_matters"):
        for v in n.values():
            assert v["outcome"] != "strong" or v["gap"] >= F.STRONG_EFFECT, v
        return range_rule([v["outcome"] for v in n.values()])
    if cid == "obs2_key_tokens_low_likelihood":
        if n["p"] is None or not n["p"] < F.ALPHA:
            return "inconclusive"
        return "reproduced" if n["key_mean"] < n["other_mean"] else "not reproduced"
    if cid == "obs2_weight_direction":  # the per-run signs are not saved: the means must agree
        sat, imp = n.get(F.NAMES["simsat"]), n.get(F.NAMES["simimp"])
        if claim["verdict"] == "reproduced":
            assert sat > F.RHO_MIN and imp < -F.RHO_MIN, n
        elif claim["verdict"] == "not reproduced":
            assert sat < -F.RHO_MIN and imp > F.RHO_MIN, n
        return None
    if cid == "satimp_recommended_near_best":
        if not n:
            return "inconclusive"
        if n["best"] == F.grid_label(*F.RECOMMENDED):
            return "reproduced"
        top_third = n["rank"] <= math.ceil(n["cells"] / 3)
        allowed = {"reproduced", "inconclusive", "partly reproduced" if top_third else "not reproduced"}
        assert claim["verdict"] in allowed, (claim["verdict"], n)
        return None
    raise AssertionError(f"no restated rule for the claim {cid!r}")


def check_notebook_claims(out, notebooks=None):
    """Each finding notebook recorded exactly its claim ids; each verdict is findings' rule on
    the saved numbers; the report's second table shows each claim with its file's verdict.
    Returns the claims."""
    from satimp_lab.report import load_claims

    report = (out / "report.md").read_text()
    second = report[report.index("### Claims recorded by the notebooks"):report.index("## Notebooks")]
    claims = [c.__dict__ for c in load_claims(out)]
    wanted = {nb: ids for nb, ids in NOTEBOOK_CLAIMS.items() if notebooks is None or nb in notebooks}
    recorded = {nb: {c["id"] for c in claims if c["notebook"] == nb} for nb in {c["notebook"] for c in claims}}
    assert recorded == wanted
    for claim in claims:
        expected = expected_notebook_verdict(claim)
        assert expected is None or claim["verdict"] == expected, (claim["id"], claim["verdict"], expected)
        rows = [r for r in second.splitlines() if r.startswith(f"| {claim['claim']} | **{claim['verdict']}** |")
                and r.endswith(f"| {claim['notebook']} |")]
        assert len(rows) == 1, claim["id"]
    return claims


def test_notebook_claims_follow_the_findings_rules(fast_reproduction):
    out, code, _ = fast_reproduction
    assert code == 0
    check_notebook_claims(out)
