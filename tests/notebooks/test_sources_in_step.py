"""Each notebook and its jupytext source (notebooks/src/*.py) hold the same cells."""

import jupytext
import nbformat
import pytest

from satimp_lab.reproduce import NOTEBOOK_DIR, list_notebooks


@pytest.mark.parametrize("path", list_notebooks(), ids=lambda p: p.stem)
def test_notebook_matches_its_source(path):
    source = NOTEBOOK_DIR / "src" / f"{path.stem}.py"
    assert source.exists(), f"{source} is missing: keep the jupytext source next to the notebook"
    from_source = jupytext.read(source)
    stored = nbformat.read(path, as_version=4)
    cells = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells]  # noqa: E731
    assert cells(stored) == cells(from_source), (
        f"{path.name} differs from {source.name}: regenerate with "
        f"`cd notebooks && jupytext --to ipynb src/{source.name} -o {path.name}`")
