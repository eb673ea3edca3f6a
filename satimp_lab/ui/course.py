"""The course notebook's (09) reference solutions and its progress table.

The reference solutions (:data:`SOLUTIONS`) live here, not in the notebook's cells, so "Run All"
leaves every exercise open: a student sees one only on request (:func:`solution_button`,
:func:`show_solution`), and it is shown, never run. :func:`check_reference_solutions` runs each
one through its checker, for the teacher and the tests. :func:`progress` is the table of the
students' check results at the end of the notebook.

The checkers: :mod:`~satimp_lab.ui.exercises` (the coding exercises, and :class:`CheckResult`,
what every check returns), :mod:`~satimp_lab.ui.example_answer` (the worked example) and
:mod:`~satimp_lab.ui.multiple_choice` (the questions).
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import torch

from .example_answer import check_top_token
from .exercises import CheckResult, check_logit_gradient, check_peak, check_satimp, check_simimp
from .multiple_choice import check_choice

__all__ = [
    "progress",
    "SOLUTIONS",
    "solution_code",
    "show_solution",
    "solution_button",
    "reference_results",
    "check_reference_solutions",
]


def progress(results) -> pd.DataFrame:
    """A table of check results (e.g. at the end of the notebook): exercise, status, symbol."""
    return pd.DataFrame([{"exercise": r.exercise, "status": r.status, "": r.symbol} for r in results])


# =============================================================================================
# reference solutions: shown on request, never run by the notebook


SOLUTIONS: dict[int, dict] = {
    1: {"title": "the gradient of CE with respect to the target logit",
        "code": "def dce_dz(p):\n"
                "    # CE = -z_target + log sum_j exp(z_j), so d CE / d z_target = -1 + p\n"
                "    return -(1 - p)\n",
        "checks": lambda ns: [check_logit_gradient(ns["dce_dz"])]},
    2: {"title": "SimImp's weight",
        "code": "def my_simimp(logp, mask, beta):\n"
                "    p = logp.detach().exp()            # the weight is a constant for autograd\n"
                "    return torch.where(mask, (1 - p).pow(beta), torch.zeros_like(p))\n",
        "checks": lambda ns: [check_simimp(ns["my_simimp"])]},
    3: {"title": "SatImp's weight",
        "code": "def my_satimp(logp, mask, beta_sat, beta_imp):\n"
                "    p = logp.detach().exp()\n"
                "    return torch.where(mask, p.pow(beta_sat) * (1 - p).pow(beta_imp), torch.zeros_like(p))\n",
        "checks": lambda ns: [check_satimp(ns["my_satimp"])]},
    4: {"title": "which tokens SatImp up-weights",
        "code": "# p* = 5 / (5 + 0.1) = 0.980: ' born' (p = 0.98) sits right at the peak\n"
                "top_token = \"born\"\n"
                "answer_upweighted = \"b\"   # high but not certain likelihood\n",
        "checks": lambda ns: [check_top_token(ns["top_token"]), check_choice("upweighted", ns["answer_upweighted"])]},
    5: {"title": "the peak p*",
        "code": "def peak(beta_sat, beta_imp):\n"
                "    # d/dp log w = beta_sat / p - beta_imp / (1 - p) = 0\n"
                "    return beta_sat / (beta_sat + beta_imp)\n",
        "checks": lambda ns: [check_peak(ns["peak"])]},
    6: {"title": "the granularity question",
        "code": "answer_granularity = \"c\"   # instance: one weight per sequence, from that sequence\n",
        "checks": lambda ns: [check_choice("granularity", ns["answer_granularity"])]},
}
"""Exercise number -> its title, the reference solution's source ("code", what a student is shown)
and "checks" (the namespace the code defines -> the CheckResults of its checkers)."""


def _solution(n: int) -> dict:
    if n not in SOLUTIONS:
        raise ValueError(f"no exercise {n!r}; the exercises are {sorted(SOLUTIONS)}")
    return SOLUTIONS[n]


def solution_code(n: int) -> str:
    """The reference solution of exercise ``n`` (1-6) as source text. Raises ValueError for an
    unknown exercise."""
    return _solution(n)["code"]


def show_solution(n: int):
    """Exercise ``n``'s reference solution as Markdown, to display (it is not run: paste it into
    your cell to try it)."""
    from IPython.display import Markdown

    sol = _solution(n)
    return Markdown(f"**Reference solution of exercise {n}** ({sol['title']}); it is not run, your answer "
                    f"stays yours:\n\n```python\n{sol['code']}```")


def solution_button(n: int):
    """A "Show solution n" button that reveals (and hides again) exercise ``n``'s reference
    solution below it. Running the cell only draws the button: nothing is shown or run until a
    student presses it. Returns the ipywidgets VBox (``.button``, ``.shown`` attributes)."""
    import ipywidgets as ipw

    sol = _solution(n)
    button = ipw.Button(description=f"Show solution {n}", icon="eye", layout=ipw.Layout(width="auto"),
                        tooltip=f"the reference solution of exercise {n}; it is shown, not run")
    shown = ipw.HTML()

    def toggle(_=None):
        if shown.value:
            shown.value, button.description, button.icon = "", f"Show solution {n}", "eye"
        else:
            shown.value = (f"<div style='font-family: sans-serif'>Reference solution of exercise {n} "
                           f"({html.escape(sol['title'])}); it is not run, your answer stays yours:</div>"
                           f"<pre style='background:#f5f5f5; padding:6px 10px'>{html.escape(sol['code'])}</pre>")
            button.description, button.icon = f"Hide solution {n}", "eye-slash"

    button.on_click(toggle)
    box = ipw.VBox([button, shown], layout=ipw.Layout(align_items="flex-start"))   # a button, not a bar
    box.button, box.shown = button, shown
    return box


def reference_results(n: int) -> list[CheckResult]:
    """Run exercise ``n``'s reference solution (:func:`solution_code`) in a fresh namespace and
    return what its checker(s) say about it."""
    namespace = {"torch": torch, "np": np, "math": math}
    exec(compile(solution_code(n), f"<solution {n}>", "exec"), namespace)  # noqa: S102 -- our own text
    return _solution(n)["checks"](namespace)


def check_reference_solutions() -> pd.DataFrame:
    """For the teacher: every reference solution through its checker. One row per check: exercise
    number, the check's name and whether the reference passes (no answers or messages, so a
    student can see it)."""
    rows = []
    for n in SOLUTIONS:
        for result in reference_results(n):
            rows.append({"exercise": n, "check": result.exercise, "reference passes": bool(result)})
    return pd.DataFrame(rows)
