"""Each notebook and its jupytext source (notebooks/src/*.py) hold the same cells, and both carry a
Python 3 kernelspec (without one, JupyterLab asks "Select Kernel" every time a notebook is opened)."""

import jupytext
import nbformat
import pytest

from satimp_lab.mainjob.reproduce import NOTEBOOK_DIR, list_notebooks

REGENERATE = "regenerate with `cd notebooks && jupytext --to ipynb src/{source} -o {notebook}`"


@pytest.mark.parametrize("path", list_notebooks(), ids=lambda p: p.stem)
def test_notebook_matches_its_source(path):
    source = NOTEBOOK_DIR / "src" / f"{path.stem}.py"
    assert source.exists(), f"{source} is missing: keep the jupytext source next to the notebook"
    from_source = jupytext.read(source)
    stored = nbformat.read(path, as_version=4)
    cells = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells]  # noqa: E731
    assert cells(stored) == cells(from_source), (
        f"{path.name} differs from {source.name}: " + REGENERATE.format(source=source.name, notebook=path.name))
    assert stored.metadata.get("kernelspec") == from_source.metadata.get("kernelspec"), (
        f"{path.name} and {source.name} carry different kernelspecs: "
        + REGENERATE.format(source=source.name, notebook=path.name))


@pytest.mark.parametrize("path", list_notebooks(), ids=lambda p: p.stem)
def test_notebook_names_a_python3_kernel(path):
    spec = nbformat.read(path, as_version=4).metadata.get("kernelspec", {})
    assert spec.get("name") == "python3" and spec.get("language") == "python", (
        f"{path.name} has kernelspec {spec or 'none'}; keep `notebook_metadata_filter: kernelspec,...` and a "
        "python3 kernelspec in the jupytext header of notebooks/src/" + f"{path.stem}.py")
