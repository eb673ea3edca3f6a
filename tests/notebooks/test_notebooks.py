"""Execute every notebook at the small size (through `satimp-lab reproduce --fast`), once."""

import json

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
