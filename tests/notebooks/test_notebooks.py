"""Execute every notebook at the small size (through `satimp-lab reproduce --fast`), once."""

import json
import re

import nbformat
import pytest

from satimp_lab.mainjob.reproduce import NOTEBOOK_DIR, list_notebooks, reproduce
from satimp_lab.mainjob.report import metric_name

from oracles import restated_verdict

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
    assert "No study decided a claim" not in report
    assert "### Claims recorded by the notebooks" not in report  # one design: the population's table only
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
    from satimp_lab.studies import verdicts
    from satimp_lab.studies import STUDIES, load_population_claims

    report = (out / "report.md").read_text()
    claims = load_population_claims(out)
    studies = [s for s in STUDIES if notebooks is None or s.notebook in notebooks]
    assert {c["study"] for c in claims} == {s.id for s in studies}
    first_table = report.index("| claim | statement | source | comparison |")
    assert report.index("## Paper claims and our verdicts") < first_table < report.index("## Notebooks")
    rows = [line for line in report[first_table:report.index("## Notebooks")].splitlines() if line.startswith("| ")]
    import pandas as pd

    frames = [pd.read_csv(f) for f in (out / "tables").glob("*_units.csv")]  # none for observation (ii) alone
    units = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"label": [], "mean": []})
    units = units.drop_duplicates("label").set_index("label")
    for claim in claims:
        parts = claim["parts"]
        for part in parts:
            # the rule's independent oracle, so that a library rule that flipped its directions
            # fails (the fast size decides parts both ways, see the test below)
            assert part["verdict"] == restated_verdict(part), part
            effect = part["effect"]
            # the sign convention, from the per-unit values the notebooks show (positive: the claim's way)
            # (the *_units tables hold matched forget ES; other metrics' studies have no such table)
            if part["metric"] == "matched_forget" and part["a"] in units.index and part["b"] in units.index:
                a, b = units.loc[part["a"], "mean"], units.loc[part["b"], "mean"]
                assert effect == pytest.approx(b - a if part["lower_is_better"] else a - b, abs=1e-9), part
            row = [r for r in rows if r.startswith(f"| {claim['id']} |") and f"| {part['a']} vs {part['b']} |" in r]
            assert len(row) == 1, (claim["id"], part["a"], part["b"])
            cells = [c.strip() for c in row[0].strip("|").split("|")]
            assert cells[-2].split(" (")[0] == part["verdict"] and cells[-1] == f"**{claim['verdict']}**"
            assert cells[4] == metric_name(part["metric"], part["lower_is_better"]), (cells[4], part["metric"])
            assert cells[5] == f"{part['effect']:+.3f}" and cells[2] == claim["source"] != ""
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


# -- notebooks show, the library decides ---------------------------------------------------------


def code_of(notebook: str) -> str:
    nb = nbformat.read(NOTEBOOK_DIR / f"{notebook}.ipynb", as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("study_id", ["obs1", "obs2", "smoothness", "granularity", "grid", "muse"])
def test_finding_notebook_runs_its_study_first_and_decides_nothing(study_id):
    """A finding notebook's verdicts come only from its study: it runs ``STUDY.run(lab)`` before any
    sweep of its own, shows the study's runs without sweeping them again (``result.summary``, or
    ``result.target_sweep(lab, extra_specs)`` for its target; only a notebook whose study unlearns
    nothing sweeps illustration runs itself), and no code cell records, phrases or thresholds a
    verdict."""
    from satimp_lab.studies import get_study

    study = get_study(study_id)
    code = code_of(study.notebook)
    run_at = code.index(f"{study_id}.STUDY.run(lab)")
    sweeps = [m.start() for m in re.finditer(r"\blab\.sweep(_population)?\(", code)]
    assert all(at > run_at for at in sweeps), "a sweep runs before the study"
    if study.specs():  # the study has the runs: the notebook reads them, it does not sweep them again
        assert not sweeps
    for word in ("record_claim", "findings", "verdict", "reproduced", "MIN_EFFECT", "compare("):
        assert word not in code, f"{study.notebook} code mentions {word!r}"
