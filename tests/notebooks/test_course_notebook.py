"""The course (09) run top to bottom, as "Run All" does: every exercise stays open, the progress
counts only the student's own answers, and answers the student writes are what gets checked."""

import re

import nbformat
import pytest

from satimp_lab.ui import course
from satimp_lab.mainjob.reproduce import NOTEBOOK_DIR, execute_notebook

STUB_VARIABLES = {"dce_dz": 1, "my_simimp": 2, "my_satimp": 3, "top_token": 4, "answer_upweighted": 4,
                  "peak": 5, "answer_granularity": 6}
"""What each exercise cell defines -> the exercise whose reference solution answers it."""


def _outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            parts += [str(out.get("text", "")), str(data.get("text/plain", "")), str(data.get("text/html", "")),
                      str(data.get("text/markdown", ""))]
    return "\n".join(parts)


def _run(tmp_path, nb) -> tuple[dict, str]:
    path = tmp_path / "09_course.ipynb"
    nbformat.write(nb, path)
    run = execute_notebook(path, tmp_path / "out.ipynb", {"SIZE": "fast", "TIER": None, "OUT_DIR": None},
                           timeout=600)
    return run, _outputs_text(nbformat.read(tmp_path / "out.ipynb", as_version=4))


def _stub_cells(nb):
    for cell in nb.cells:
        if cell.cell_type == "code" and ("YOUR CODE HERE" in cell.source or "YOUR ANSWER" in cell.source):
            name = re.match(r"\s*(?:def\s+)?(\w+)", cell.source).group(1)
            yield cell, STUB_VARIABLES[name]


def test_run_all_leaves_every_exercise_open(tmp_path):
    nb = nbformat.read(NOTEBOOK_DIR / "09_course.ipynb", as_version=4)
    assert len(list(_stub_cells(nb))) == len(STUB_VARIABLES)
    run, text = _run(tmp_path, nb)
    assert run["status"] == "ok", run["error"]
    assert "✓" not in text, "an exercise shows ✓ after Run All: a solution ran"
    assert f"0 of {len(STUB_VARIABLES)} exercises correct" in text
    for n in course.SOLUTIONS:
        assert course.solution_code(n).strip() not in text, f"solution {n} is shown after Run All"


def test_the_students_answers_are_what_gets_checked(tmp_path):
    """Fill every stub with the reference solution, as a student would type it: all pass."""
    nb = nbformat.read(NOTEBOOK_DIR / "09_course.ipynb", as_version=4)
    for cell, n in _stub_cells(nb):
        head, sep, tail = cell.source.partition("\n\nresults[")
        assert sep, f"exercise {n}: the stub cell does not record `results[...]`"
        cell.source = course.solution_code(n) + sep + tail
    run, text = _run(tmp_path, nb)
    assert run["status"] == "ok", run["error"]
    assert f"{len(STUB_VARIABLES)} of {len(STUB_VARIABLES)} exercises correct" in text
    assert "appears here once your answer" not in text     # the gated figure and explorer are shown
    assert "largest weight on" in text     # with the computed table the prose under exercise 4 points to


@pytest.mark.parametrize("n", sorted(course.SOLUTIONS))
def test_solution_is_shown_only_when_asked(n):
    box = course.solution_button(n)
    assert box.shown.value == ""
    box.button.click()
    assert "Reference solution" in box.shown.value and box.button.description.startswith("Hide")
    box.button.click()
    assert box.shown.value == ""
    assert course.solution_code(n) in course.show_solution(n).data
